// Feature probes for the prober (src/probe/, contract: backends/linux/native.ts, NativeAddon.probe*).
// Each call tries one thing against the kernel, closes every descriptor it opened before returning, and
// reports the raw errno: deciding what an errno means is left to TypeScript (src/probe/live.ts).
//
//   probeLoad(req)            BPF_PROG_LOAD of caller-built instructions, optionally followed by one
//                             BPF_LINK_CREATE -> { err, log, linkErr }
//   probeMapType(type)        BPF_MAP_CREATE with the parameters that type needs (libbpf's table) -> 0 / -errno
//   probePerfEventsStart(specs) / probePerfEventsWait(id)
//                             perf_event_open of a few events (tracepoint, software clock, kprobe/uprobe PMU)
//                             on a background thread, so they overlap the other probes; the wait returns
//                             0 / -errno per event; the events are closed by that thread afterwards
//   lsmListModules()          lsm_list_modules(2) (Linux 6.8+) -> array of LSM ids, or -errno
//
// Raw bpf(2) is used rather than libbpf's libbpf_probe_* helpers: those fold every failure (EPERM
// included) into "not supported" and get tracing/ext/lsm wrong on Debian's libbpf 1.1.
#include <linux/bpf.h>
#include <linux/perf_event.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <condition_variable>
#include <cstring>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "errors.h"
#include "util.h"

#ifndef __NR_lsm_list_modules
#define __NR_lsm_list_modules 461  // same number on every architecture (asm-generic table, Linux 6.8)
#endif

namespace wbn {

namespace {

// Newer than Debian's uapi headers (6.1): spelled out here.
constexpr uint32_t kMapTypeArena = 33;
constexpr uint32_t kMapTypeCgrpStorage = 32;
constexpr uint32_t kBpfFMmapable = 1u << 10;

// union bpf_attr, BPF_LINK_CREATE: the common head, then the per-kind tail. Written out because the
// uprobe_multi tail (6.6) is missing from Debian's header. Size: the kernel accepts any size and
// checks that bytes it does not know are zero.
struct LinkCreateAttr {
  uint32_t prog_fd;
  uint32_t target_fd;  // or target_ifindex
  uint32_t attach_type;
  uint32_t flags;
  union {
    struct {
      uint32_t flags;
      uint32_t cnt;
      uint64_t syms;
      uint64_t addrs;
      uint64_t cookies;
    } kprobe_multi;
    struct {
      uint64_t path;
      uint64_t offsets;
      uint64_t ref_ctr_offsets;
      uint64_t cookies;
      uint32_t cnt;
      uint32_t flags;
      uint32_t pid;
    } uprobe_multi;
    uint8_t pad[64];
  };
};

long SysBpf(int cmd, void* attr, unsigned size) { return syscall(__NR_bpf, cmd, attr, size); }

/** Closes fd if >= 0, keeping errno. */
void CloseKeep(int fd) {
  if (fd < 0) return;
  int saved = errno;
  close(fd);
  errno = saved;
}

uint32_t U32Prop(const Napi::Object& o, const char* key, uint32_t dflt = 0) {
  Napi::Value v = o.Get(key);
  if (v.IsUndefined()) return dflt;
  if (!v.IsNumber()) throw Napi::TypeError::New(o.Env(), std::string(key) + " must be a number");
  return static_cast<uint32_t>(v.As<Napi::Number>().Int64Value());
}

int32_t I32Prop(const Napi::Object& o, const char* key, int32_t dflt = 0) {
  Napi::Value v = o.Get(key);
  if (v.IsUndefined()) return dflt;
  if (!v.IsNumber()) throw Napi::TypeError::New(o.Env(), std::string(key) + " must be a number");
  return v.As<Napi::Number>().Int32Value();
}

/** BTF with `int` [1], `struct bpf_spin_lock { int val; }` [2], `struct val { int cnt; struct bpf_spin_lock l; }` [3]
 *  (the local storage maps need a BTF-described value; same blob libbpf's probe builds). */
int LoadStorageBtf() {
  static const char strs[] = "\0bpf_spin_lock\0val\0cnt\0l";
  auto info = [](uint32_t kind, uint32_t vlen) { return (kind << 24) | vlen; };
  const uint32_t types[] = {
      0, info(1, 0), 4, (1u << 24) | 32,  // [1] int: signed, 32 bits
      1, info(4, 1), 4,                   // [2] struct bpf_spin_lock
      15, 1, 0,                           //     int val
      15, info(4, 2), 8,                  // [3] struct val
      19, 1, 0,                           //     int cnt
      23, 2, 32,                          //     struct bpf_spin_lock l (bit offset 32)
  };
  std::vector<uint8_t> blob(24 + sizeof types + sizeof strs);
  uint32_t hdr[6] = {0x0001eB9F, 24, 0, static_cast<uint32_t>(sizeof types), static_cast<uint32_t>(sizeof types),
                     static_cast<uint32_t>(sizeof strs)};
  // magic u16 0xeB9F, version u8 1, flags u8 0
  memcpy(blob.data(), hdr, sizeof hdr);
  memcpy(blob.data() + 24, types, sizeof types);
  memcpy(blob.data() + 24 + sizeof types, strs, sizeof strs);
  union bpf_attr a;
  memset(&a, 0, sizeof a);
  a.btf = reinterpret_cast<uint64_t>(blob.data());
  a.btf_size = static_cast<uint32_t>(blob.size());
  return static_cast<int>(SysBpf(BPF_BTF_LOAD, &a, sizeof a));
}

int MapCreate(uint32_t type, uint32_t key, uint32_t value, uint32_t max, uint32_t flags, int inner, int btfFd,
              uint32_t btfKey, uint32_t btfValue, uint32_t vmlinuxValue) {
  union bpf_attr a;
  memset(&a, 0, sizeof a);
  a.map_type = type;
  a.key_size = key;
  a.value_size = value;
  a.max_entries = max;
  a.map_flags = flags;
  if (inner >= 0) a.inner_map_fd = static_cast<uint32_t>(inner);
  if (btfFd >= 0) {
    a.btf_fd = static_cast<uint32_t>(btfFd);
    a.btf_key_type_id = btfKey;
    a.btf_value_type_id = btfValue;
  }
  a.btf_vmlinux_value_type_id = vmlinuxValue;
  return static_cast<int>(SysBpf(BPF_MAP_CREATE, &a, sizeof a));
}

}  // namespace

// probeLoad({ progType, expectedAttachType?, attachBtfId?, insns: Uint8Array, license?, progFlags?,
//             kernVersion?, logLevel?, link?: { attachType, target, kind?: 0 plain | 1 kprobe_multi | 2 uprobe_multi
//                                                               | 3 BPF_RAW_TRACEPOINT_OPEN without a name (trampolines) } })
Napi::Value ProbeLoad(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 1 || !info[0].IsObject()) throw Napi::TypeError::New(env, "probeLoad: request object expected");
  Napi::Object req = info[0].As<Napi::Object>();
  Napi::Value insnsV = req.Get("insns");
  if (!insnsV.IsTypedArray() || insnsV.As<Napi::TypedArray>().TypedArrayType() != napi_uint8_array)
    throw Napi::TypeError::New(env, "probeLoad: insns must be a Uint8Array");
  Napi::Uint8Array insns = insnsV.As<Napi::Uint8Array>();
  if (insns.ByteLength() == 0 || insns.ByteLength() % 8 != 0)
    throw Napi::TypeError::New(env, "probeLoad: insns must be a non-empty multiple of 8 bytes");
  std::vector<uint8_t> code(insns.Data(), insns.Data() + insns.ByteLength());  // aligned copy
  std::string license = "GPL";
  Napi::Value lic = req.Get("license");
  if (lic.IsString()) license = lic.As<Napi::String>().Utf8Value();
  uint32_t logLevel = U32Prop(req, "logLevel");

  std::string log;
  if (logLevel > 0) log.assign(64 * 1024, '\0');
  union bpf_attr a;
  memset(&a, 0, sizeof a);
  a.prog_type = U32Prop(req, "progType");
  a.insns = reinterpret_cast<uint64_t>(code.data());
  a.insn_cnt = static_cast<uint32_t>(code.size() / 8);
  a.license = reinterpret_cast<uint64_t>(license.c_str());
  a.expected_attach_type = U32Prop(req, "expectedAttachType");
  a.attach_btf_id = U32Prop(req, "attachBtfId");
  a.prog_flags = U32Prop(req, "progFlags");
  a.kern_version = U32Prop(req, "kernVersion");
  if (logLevel > 0) {
    a.log_level = logLevel;
    a.log_buf = reinterpret_cast<uint64_t>(&log[0]);
    a.log_size = static_cast<uint32_t>(log.size());
  }
  int fd;
  int tries = 0;
  do {
    fd = static_cast<int>(SysBpf(BPF_PROG_LOAD, &a, sizeof a));
  } while (fd < 0 && errno == EAGAIN && ++tries < 5);  // the verifier may ask to retry
  int err = fd < 0 ? -errno : 0;

  int linkErr = 0;
  Napi::Value linkV = req.Get("link");
  if (fd >= 0 && linkV.IsObject()) {
    Napi::Object l = linkV.As<Napi::Object>();
    int32_t kind = I32Prop(l, "kind");
    LinkCreateAttr la;
    memset(&la, 0, sizeof la);
    la.prog_fd = static_cast<uint32_t>(fd);
    la.target_fd = static_cast<uint32_t>(I32Prop(l, "target", -1));
    la.attach_type = U32Prop(l, "attachType");
    static const char kRoot[] = "/";
    uint64_t zero = 0;
    if (kind == 1) {
      // kprobe_multi with an empty address list: EINVAL when supported, EOPNOTSUPP without CONFIG_FPROBE
      la.kprobe_multi.cnt = 0;
    } else if (kind == 2) {
      // uprobe_multi on "/" (a directory): EBADF when supported (libbpf's probe)
      la.uprobe_multi.path = reinterpret_cast<uint64_t>(kRoot);
      la.uprobe_multi.offsets = reinterpret_cast<uint64_t>(&zero);
      la.uprobe_multi.cnt = 1;
    }
    int lfd;
    if (kind == 3) {
      // how libbpf 1.1 attaches fentry/fexit/lsm: the program's own BTF target, attached (then closed
      // at once) to see whether the kernel can build the trampoline at all (arm64 6.1: ENOTSUPP)
      union bpf_attr ra;
      memset(&ra, 0, sizeof ra);
      ra.raw_tracepoint.prog_fd = static_cast<uint32_t>(fd);
      lfd = static_cast<int>(SysBpf(BPF_RAW_TRACEPOINT_OPEN, &ra, sizeof ra));
    } else {
      lfd = static_cast<int>(SysBpf(BPF_LINK_CREATE, &la, sizeof la));
    }
    linkErr = lfd < 0 ? -errno : 0;
    CloseKeep(lfd);
  }
  CloseKeep(fd);

  Napi::Object out = Napi::Object::New(env);
  out.Set("err", Napi::Number::New(env, err));
  out.Set("linkErr", Napi::Number::New(env, linkErr));
  out.Set("log", Napi::String::New(env, logLevel > 0 ? std::string(log.c_str()) : std::string()));
  return out;
}

// probeMapType(type) -> 0 or -errno (parameters as in libbpf's probe_map_create)
Napi::Value ProbeMapType(const Napi::CallbackInfo& info) {
  uint32_t type = static_cast<uint32_t>(ArgInt(info, 0, "type"));
  uint32_t key = 4, value = 4, max = 1, flags = 0, btfKey = 0, btfValue = 0, vmlinuxValue = 0;
  int inner = -1, btfFd = -1;
  switch (type) {
    case BPF_MAP_TYPE_STACK_TRACE:
      value = 8;
      break;
    case BPF_MAP_TYPE_LPM_TRIE:
      key = 8;
      value = 8;
      flags = BPF_F_NO_PREALLOC;
      break;
    case BPF_MAP_TYPE_CGROUP_STORAGE:
    case BPF_MAP_TYPE_PERCPU_CGROUP_STORAGE:
      key = sizeof(struct bpf_cgroup_storage_key);
      value = 8;
      max = 0;
      break;
    case BPF_MAP_TYPE_QUEUE:
    case BPF_MAP_TYPE_STACK:
      key = 0;
      break;
    case BPF_MAP_TYPE_SK_STORAGE:
    case BPF_MAP_TYPE_INODE_STORAGE:
    case BPF_MAP_TYPE_TASK_STORAGE:
    case kMapTypeCgrpStorage:
      btfFd = LoadStorageBtf();
      if (btfFd < 0) return Napi::Number::New(info.Env(), -errno);
      btfKey = 1;
      btfValue = 3;
      value = 8;
      max = 0;
      flags = BPF_F_NO_PREALLOC;
      break;
    case BPF_MAP_TYPE_RINGBUF:
    case BPF_MAP_TYPE_USER_RINGBUF:
      key = 0;
      value = 0;
      max = static_cast<uint32_t>(sysconf(_SC_PAGE_SIZE));
      break;
    case BPF_MAP_TYPE_STRUCT_OPS:
      vmlinuxValue = 1;  // not a struct_ops type: ENOTSUPP (524) when the map type exists
      break;
    case BPF_MAP_TYPE_BLOOM_FILTER:
      key = 0;
      break;
    case kMapTypeArena:
      key = 0;
      value = 0;
      flags = kBpfFMmapable;
      break;
    case BPF_MAP_TYPE_ARRAY_OF_MAPS:
    case BPF_MAP_TYPE_HASH_OF_MAPS:
      inner = MapCreate(BPF_MAP_TYPE_HASH, 4, 4, 1, 0, -1, -1, 0, 0, 0);
      if (inner < 0) return Napi::Number::New(info.Env(), -errno);
      break;
    case BPF_MAP_TYPE_UNSPEC:
      return Napi::Number::New(info.Env(), -EINVAL);
    default:
      break;
  }
  int fd = MapCreate(type, key, value, max, flags, inner, btfFd, btfKey, btfValue, vmlinuxValue);
  int err = fd < 0 ? -errno : 0;
  CloseKeep(fd);
  CloseKeep(inner);
  CloseKeep(btfFd);
  return Napi::Number::New(info.Env(), err);
}

namespace {

struct PerfSpec {
  perf_event_attr attr;
  std::string name;
  int pid;
  int cpu;
};

struct PerfBatch {
  std::mutex mu;
  std::condition_variable cv;
  bool done = false;
  std::vector<int> errs;
};

std::mutex gBatchMu;
std::map<int32_t, std::shared_ptr<PerfBatch>> gBatches;
int32_t gNextBatch = 1;

/** Opens each event in order, publishes the errnos, then closes them (the slow part). */
void RunBatch(std::vector<PerfSpec> specs, std::shared_ptr<PerfBatch> b) {
  std::vector<int> fds;
  std::vector<int> errs;
  for (PerfSpec& s : specs) {
    if (!s.name.empty()) s.attr.config1 = reinterpret_cast<uint64_t>(s.name.c_str());
    long fd = syscall(__NR_perf_event_open, &s.attr, s.pid, s.cpu, -1, PERF_FLAG_FD_CLOEXEC);
    errs.push_back(fd < 0 ? -errno : 0);
    if (fd >= 0) fds.push_back(static_cast<int>(fd));
  }
  {
    std::lock_guard<std::mutex> lock(b->mu);
    b->errs = std::move(errs);
    b->done = true;
  }
  b->cv.notify_all();
  // Closing a tracepoint/kprobe/uprobe event waits for RCU grace periods (30-80 ms measured here).
  for (int fd : fds) close(fd);
}

}  // namespace

// probePerfEventsStart([{ type, config, name?, offset?, retprobe?, pid, cpu }]) -> batch id.
// A background thread opens each event (disabled) in order, then closes them all; name non-empty means a
// kprobe/uprobe PMU target (config1 = name, config2 = offset; retprobe sets config bit 0).
Napi::Value ProbePerfEventsStart(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 1 || !info[0].IsArray()) throw Napi::TypeError::New(env, "probePerfEventsStart: array expected");
  Napi::Array arr = info[0].As<Napi::Array>();
  std::vector<PerfSpec> specs;
  for (uint32_t i = 0; i < arr.Length(); i++) {
    Napi::Value v = arr.Get(i);
    if (!v.IsObject()) throw Napi::TypeError::New(env, "probePerfEventsStart: objects expected");
    Napi::Object o = v.As<Napi::Object>();
    PerfSpec s;
    memset(&s.attr, 0, sizeof s.attr);
    s.attr.size = sizeof s.attr;
    s.attr.type = U32Prop(o, "type");
    Napi::Value cfg = o.Get("config");
    s.attr.config = cfg.IsNumber() ? static_cast<uint64_t>(cfg.As<Napi::Number>().Int64Value()) : 0;
    if (o.Get("retprobe").ToBoolean().Value()) s.attr.config |= 1;
    s.attr.disabled = 1;
    Napi::Value name = o.Get("name");
    if (name.IsString()) s.name = name.As<Napi::String>().Utf8Value();
    Napi::Value off = o.Get("offset");
    if (!s.name.empty()) s.attr.config2 = off.IsNumber() ? static_cast<uint64_t>(off.As<Napi::Number>().Int64Value()) : 0;
    s.pid = I32Prop(o, "pid", -1);
    s.cpu = I32Prop(o, "cpu", -1);
    specs.push_back(std::move(s));
  }
  auto b = std::make_shared<PerfBatch>();
  int32_t id;
  {
    std::lock_guard<std::mutex> lock(gBatchMu);
    id = gNextBatch++;
    gBatches[id] = b;
  }
  try {
    std::thread(RunBatch, std::move(specs), b).detach();
  } catch (...) {
    RunBatch(std::move(specs), b);  // no thread: do it inline
  }
  return Napi::Number::New(env, id);
}

// probePerfEventsWait(id) -> number[] (0 or -errno per event, in order); waits for the opens only.
Napi::Value ProbePerfEventsWait(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int32_t id = ArgInt(info, 0, "id");
  std::shared_ptr<PerfBatch> b;
  {
    std::lock_guard<std::mutex> lock(gBatchMu);
    auto it = gBatches.find(id);
    if (it == gBatches.end()) ThrowErrno(env, "probePerfEventsWait", EBADF, "no perf probe batch " + std::to_string(id));
    b = it->second;
    gBatches.erase(it);
  }
  std::unique_lock<std::mutex> lock(b->mu);
  b->cv.wait(lock, [&] { return b->done; });
  Napi::Array out = Napi::Array::New(env, b->errs.size());
  for (size_t i = 0; i < b->errs.size(); i++) out.Set(static_cast<uint32_t>(i), Napi::Number::New(env, b->errs[i]));
  return out;
}

// lsmListModules() -> number[] of LSM ids (LSM_ID_*), or -errno (ENOSYS before Linux 6.8)
Napi::Value LsmListModules(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  uint64_t ids[32];
  uint32_t size = sizeof ids;
  long n = syscall(__NR_lsm_list_modules, ids, &size, 0);
  if (n < 0) return Napi::Number::New(env, -errno);
  Napi::Array out = Napi::Array::New(env);
  for (long i = 0; i < n && i < 32; i++) out.Set(static_cast<uint32_t>(i), Napi::Number::New(env, static_cast<double>(ids[i])));
  return out;
}

}  // namespace wbn
