// The shared-memory maps (native/agent/maps/, the same C sources the agent links) reached from Node:
// shmMapCreate / shmMapOpen / shmMapClose, shmMapOp (mapOp's signature), shmMapFreeze, the ring consumer (shmRingPoll
// into the RecordSource record format, shmRingPendingSize, shmMapDrops) and, for tests, the program-side
// outputs. Ids are process-unique; a map stays mapped until its last call returns.
#include <napi.h>

#include <cerrno>
#include <cstdint>
#include <cstring>
#include <memory>

#include "../agent/maps/wbpf_maps.h"
#include "errors.h"
#include "registry.h"
#include "util.h"

namespace wbn {

namespace {

struct ShmMap {
  wbpf_map m{};
  bool ownsFds = false;  // created here (the memfd and eventfd are this map's) or opened from a caller's fds
  ~ShmMap() { wbpf_map_close(&m, ownsFds); }
};

Registry<ShmMap>& Maps() {
  static Registry<ShmMap> r;
  return r;
}

std::shared_ptr<ShmMap> Require(Napi::Env env, int32_t id, const char* op) {
  auto m = Maps().Get(id);
  if (!m) ThrowErrno(env, op, EBADF, "no shared-memory map " + std::to_string(id));
  return m;
}

Napi::Object Describe(Napi::Env env, int32_t id, const ShmMap& s) {
  auto o = Napi::Object::New(env);
  o.Set("id", id);
  o.Set("fd", s.m.fd);
  o.Set("notifyFd", s.m.notify_fd);
  o.Set("opValueSize", wbpf_map_op_value_size(&s.m));
  return o;
}

/** bytes of a Uint8Array argument */
bool Bytes(const Napi::Value& v, uint8_t** data, size_t* len) {
  if (!v.IsTypedArray()) return false;
  auto a = v.As<Napi::Uint8Array>();
  *data = a.Data();
  *len = a.ByteLength();
  return true;
}

}  // namespace

// shmMapCreate(type, keySize, valueSize, maxEntries, mapFlags, ncpus, perfBytesPerCpu, name) -> { id, fd, notifyFd, opValueSize }
Napi::Value ShmMapCreate(const Napi::CallbackInfo& info) {
  std::string name = ArgString(info, 7, "name");
  wbpf_map_spec s{};
  s.type = static_cast<uint32_t>(ArgInt(info, 0, "type"));
  s.key_size = static_cast<uint32_t>(ArgInt(info, 1, "keySize"));
  s.value_size = static_cast<uint32_t>(ArgInt(info, 2, "valueSize"));
  s.max_entries = static_cast<uint32_t>(ArgInt64(info, 3, "maxEntries"));
  s.map_flags = static_cast<uint32_t>(ArgInt64(info, 4, "mapFlags"));
  s.ncpus = static_cast<uint32_t>(ArgInt(info, 5, "ncpus"));
  s.perf_bytes_per_cpu = static_cast<uint32_t>(ArgInt64(info, 6, "perfBytesPerCpu"));
  s.name = name.c_str();
  auto sm = std::make_shared<ShmMap>();
  int r = wbpf_map_create(&s, &sm->m);
  if (r < 0) ThrowErrno(info.Env(), "wbpf_map_create", r, "map '" + name + "'");
  sm->ownsFds = true;
  int32_t id = Maps().Add(sm);
  return Describe(info.Env(), id, *sm);
}

// shmMapOpen(fd, notifyFd) -> { id, ... }: another mapping of an existing map (as an agent maps it); the fds stay the caller's
Napi::Value ShmMapOpen(const Napi::CallbackInfo& info) {
  auto sm = std::make_shared<ShmMap>();
  int r = wbpf_map_open(ArgInt(info, 0, "fd"), ArgInt(info, 1, "notifyFd"), &sm->m);
  if (r < 0) ThrowErrno(info.Env(), "wbpf_map_open", r);
  int32_t id = Maps().Add(sm);
  return Describe(info.Env(), id, *sm);
}

Napi::Value ShmMapClose(const Napi::CallbackInfo& info) {
  Maps().Remove(ArgInt(info, 0, "id"));
  return info.Env().Undefined();
}

// shmMapOp(cmd, id, mem, keyOff, valOff, flags) -> 0 or -errno, as mapOp: keyOff -1 is a NULL key;
// valOff is the value (lookup, update, lookup-and-delete) or the next key (get_next_key); never throws
Napi::Value ShmMapOp(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  auto ret = [&](int32_t v) { return Napi::Number::New(env, v); };
  int32_t cmd = info[0].As<Napi::Number>().Int32Value();
  auto sm = Maps().Get(info[1].As<Napi::Number>().Int32Value());
  if (!sm) return ret(-EBADF);
  uint8_t* mem = nullptr;
  size_t len = 0;
  if (!Bytes(info[2], &mem, &len)) return ret(-EFAULT);
  int64_t keyOff = info[3].As<Napi::Number>().Int64Value();
  int64_t valOff = info[4].As<Napi::Number>().Int64Value();
  double fl = info[5].As<Napi::Number>().DoubleValue();
  if (!(fl >= 0 && fl <= 4294967295.0)) return ret(-EINVAL);
  uint64_t flags = static_cast<uint64_t>(fl);
  wbpf_map* m = &sm->m;
  uint32_t keySize = wbpf_map_key_size(m), vs = wbpf_map_op_value_size(m);
  // offsets are bounds-checked here (the C side reads key_size / op value size bytes); -1 is NULL
  auto in = [&](int64_t off, uint64_t n) -> uint8_t* {
    if (off < 0) return nullptr;
    if (static_cast<uint64_t>(off) + n > len) return reinterpret_cast<uint8_t*>(-1);
    return mem + off;
  };
  uint8_t* key = in(keyOff, keySize);
  if (key == reinterpret_cast<uint8_t*>(-1)) return ret(-EFAULT);
  uint8_t* val;
  switch (cmd) {
    case 1:
    case 2:
    case 21:
      val = in(valOff, vs);
      if (val == nullptr || val == reinterpret_cast<uint8_t*>(-1)) return ret(-EFAULT);
      if (cmd == 1) return ret(wbpf_map_sys_lookup(m, key, val, flags));
      if (cmd == 2) return ret(wbpf_map_sys_update(m, key, val, flags));
      return ret(wbpf_map_sys_lookup_and_delete(m, key, val, flags));
    case 3:
      return ret(wbpf_map_sys_delete(m, key, flags));
    case 4:
      val = in(valOff, keySize);
      if ((val == nullptr && keySize > 0) || val == reinterpret_cast<uint8_t*>(-1)) return ret(-EFAULT);
      return ret(wbpf_map_sys_next_key(m, key, val, flags));
    default:
      return ret(-EINVAL);
  }
}

// shmRingPoll(id, timeoutMs, out, stopFd) -> records copied as [u32 size][u32 0][data padded to 8], 0 on
// timeout, -EINTR when stopFd is readable, -ENOBUFS when the next record alone does not fit
Napi::Value ShmRingPoll(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  auto sm = Require(env, ArgInt(info, 0, "id"), "shmRingPoll");
  int32_t timeout = ArgInt(info, 1, "timeoutMs");
  uint8_t* out = nullptr;
  size_t len = 0;
  if (!Bytes(info[2], &out, &len)) ThrowErrno(env, "shmRingPoll", EINVAL, "out must be a Uint8Array");
  int32_t stop = ArgInt(info, 3, "stopFd");
  int n = wbpf_ring_drain(&sm->m, out, len);
  if (n == 0) {
    int w = wbpf_ring_wait(&sm->m, timeout, stop);
    n = w < 0 ? w : w > 0 ? wbpf_ring_drain(&sm->m, out, len) : 0;
  }
  return Napi::Number::New(env, n);
}

Napi::Value ShmRingPendingSize(const Napi::CallbackInfo& info) {
  auto sm = Require(info.Env(), ArgInt(info, 0, "id"), "shmRingPendingSize");
  return Napi::Number::New(info.Env(), wbpf_ring_pending_size(&sm->m));
}

Napi::Value ShmMapDrops(const Napi::CallbackInfo& info) {
  auto sm = Require(info.Env(), ArgInt(info, 0, "id"), "shmMapDrops");
  return Napi::Number::New(info.Env(), static_cast<double>(wbpf_map_drops(&sm->m)));
}

Napi::Value ShmMapFreeze(const Napi::CallbackInfo& info) {
  auto sm = Require(info.Env(), ArgInt(info, 0, "id"), "shmMapFreeze");
  wbpf_map_freeze(&sm->m);
  return info.Env().Undefined();
}

Napi::Value ShmPerfOpenReaders(const Napi::CallbackInfo& info) {
  auto sm = Require(info.Env(), ArgInt(info, 0, "id"), "shmPerfOpenReaders");
  wbpf_perf_open_readers(&sm->m);
  return info.Env().Undefined();
}

// the program side, for tests (agents call the C functions at the hook):
// shmRingbufOutput(id, data, flags) and shmPerfEventOutput(id, flags, data, cpu) -> 0 or -errno
Napi::Value ShmRingbufOutput(const Napi::CallbackInfo& info) {
  auto sm = Require(info.Env(), ArgInt(info, 0, "id"), "shmRingbufOutput");
  uint8_t* d = nullptr;
  size_t n = 0;
  if (!Bytes(info[1], &d, &n)) ThrowErrno(info.Env(), "shmRingbufOutput", EINVAL, "data must be a Uint8Array");
  long r = wbpf_ringbuf_output(&sm->m, d, n, static_cast<uint64_t>(ArgInt64(info, 2, "flags")));
  return Napi::Number::New(info.Env(), static_cast<double>(r));
}

Napi::Value ShmPerfEventOutput(const Napi::CallbackInfo& info) {
  auto sm = Require(info.Env(), ArgInt(info, 0, "id"), "shmPerfEventOutput");
  bool lossless = true;
  uint64_t flags = info[1].As<Napi::BigInt>().Uint64Value(&lossless);
  uint8_t* d = nullptr;
  size_t n = 0;
  if (!Bytes(info[2], &d, &n)) ThrowErrno(info.Env(), "shmPerfEventOutput", EINVAL, "data must be a Uint8Array");
  wbpf_map_set_thread_cpu(ArgInt(info, 3, "cpu"));
  long r = wbpf_perf_event_output(&sm->m, flags, d, n);
  wbpf_map_set_thread_cpu(-1);
  return Napi::Number::New(info.Env(), static_cast<double>(r));
}

}  // namespace wbn
