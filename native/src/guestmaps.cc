// wasm_bpf_map_operate served by C, imported by the guest directly (no JavaScript on the path).
//
// With V8 fast calls a Wasm module that imports an API function whose signature matches calls the C
// function directly: Wasm -> C, about 5 ns, instead of Wasm -> JS -> N-API (60-100 ns with cold
// caches after the syscall). For that the C side needs what src/abi/host.ts's mapOperate uses: the
// guest's memory and the key/value sizes of the maps the guest's objects own. A "slot" holds them for
// one guest instance; each slot has its own C entry point (a template instance), because a fast call
// gets no per-function data. 64 slots: a process that runs more guests at once gives the rest the
// JavaScript path.
//
// Memory: the slot keeps the guest memory's v8::BackingStore. On 64-bit V8 a wasm32 memory reserves
// its whole address range up front (bounds checks by guard pages), so memory.grow grows that same
// store in place: its data pointer stays, ByteLength() follows the grow (test/abi.test.ts
// and test/native.test.ts check operations on freshly grown memory).
//
// The checks and results are host.ts's mapOperate's, in the same order (-EBADF, access -EPERM, key
// -EFAULT, flags -EINVAL, value/next -EFAULT, update access -EPERM/-EBADF, unknown command -EINVAL);
// test/mapop.test.ts runs one table of cases (test/fixtures/mapop-cases.ts) through both.
//
// The same slot also serves wasm_bpf_buffer_poll's common case without JavaScript: src/abi/pollgate.ts
// builds a small Wasm function (per guest) that calls the slot's `fill` here, which polls a ring or
// perf buffer the ABI layer registered and writes its records straight into the staging area of the
// guest's own poll buffer; the Wasm function then copies each record to data_ptr and calls the
// guest's callback through its table. Anything unusual (an unregistered fd or handle, a pointer this
// check does not like, a record larger than the staging area, a stop request) answers kSlow or an
// errno, and the Wasm function hands the call to the host's JavaScript poll (src/abi/records.ts), which
// knows every rule.
#include <linux/bpf.h>

#include <array>
#include <map>
#include <atomic>
#include <cerrno>
#include <cstring>
#include <memory>
#include <mutex>
#include <vector>

#include "fastcall.h"
#include "registry.h"

#if WBN_FAST_CALLS

namespace wbn {

namespace {

/** what the guest may do on a map (DirectMapOps.add's access, backends/backend.ts GuestMapAccess) */
enum Access : uint8_t {
  kAll = 0,
  kNone = 1,          // every command -EPERM (struct_ops)
  kNoUpdate = 2,      // UPDATE -EPERM (values that are fds of programs, sockets, perf events, cgroups)
  kOwnMapValues = 3,  // UPDATE's value (a u32 fd) must be a map of the guest's, else -EBADF (map-in-map)
  kNoProgFd = 4,      // UPDATE whose value names a program (int32 fd > 0 at byte 4: devmap, cpumap) -EPERM
};

struct MapDef {
  uint32_t keySize = 0;
  uint32_t opValueSize = 0;
  bool valid = false;
  Access access = kAll;
};

// A slot is taken from guestMapOpen until guestMapRelease (the ABI layer calls it once the guest's
// instance has been garbage collected, or right away when instantiation failed) or until its JS
// environment ends: a C entry point is never handed to a second guest while the first could still
// call it. guestMapClose only forgets the maps and the memory (calls then get -EBADF).
struct PollDef {
  std::shared_ptr<Buf> buf;  // the record buffer this fd's polls read; null: the host's path
  bool busy = false;         // its records are being delivered: a poll from inside a callback gets -EBUSY
};

struct Slot {
  std::atomic<bool> used{false};
  uint32_t envId = 0;
  std::shared_ptr<v8::BackingStore> memory;  // null until bound
  std::vector<MapDef> maps;                  // by fd
  std::vector<PollDef> polls;                // by fd
  std::vector<uint8_t> handles;              // by object handle: 1 while open
  int32_t wakeFd = -1;                       // the backend's wake eventfd (blocking polls)
  std::shared_ptr<v8::BackingStore> stop;    // the run's stop flag (an int32, nonzero once stopped)
};

constexpr int kSlots = 64;
std::array<Slot, kSlots> gSlots;
std::mutex gSlotsMu;  // allocation and release only; a slot's contents belong to its one thread

// The functions of each slot, per isolate, made once: V8 keeps every function instantiated from a
// FunctionTemplate alive, so a new one per guest would never be freed.
struct SlotFunctions {
  v8::Global<v8::Function> mapOp, pollFill, pollDone;
};
std::map<v8::Isolate*, std::array<SlotFunctions, kSlots>> gFunctions;  // under gSlotsMu

/** drops the maps and the memory: every call gets -EBADF */
void Forget(Slot& s) {
  s.memory.reset();
  s.maps.clear();
  s.maps.shrink_to_fit();
  s.polls.clear();
  s.polls.shrink_to_fit();
  s.handles.clear();
  s.handles.shrink_to_fit();
  s.wakeFd = -1;
  s.stop.reset();
}

int32_t GuestMapOp(Slot& s, int32_t fd, int32_t cmd, uint32_t key, uint32_t value, uint32_t next, int64_t flags) {
  if (fd < 0 || static_cast<size_t>(fd) >= s.maps.size() || !s.maps[fd].valid) return -EBADF;
  const MapDef& m = s.maps[fd];
  if (m.access == kNone) return -EPERM;
  uint8_t* mem = s.memory ? static_cast<uint8_t*>(s.memory->Data()) : nullptr;
  uint64_t len = s.memory ? s.memory->ByteLength() : 0;
  // int64_t on both arms: `keySize == 0 ? -1 : key` would be unsigned (4294967295), not NULL
  int64_t keyOff = m.keySize == 0 ? int64_t{-1} : int64_t{key};
  if (m.keySize != 0 && uint64_t{key} + m.keySize > len) return -EFAULT;
  if (flags < 0 || flags > 0xffffffffLL) return -EINVAL;
  switch (cmd) {
    case BPF_MAP_UPDATE_ELEM:
      if (uint64_t{value} + m.opValueSize > len) return -EFAULT;
      if (m.access == kNoUpdate) return -EPERM;
      if (m.access == kOwnMapValues) {
        if (m.opValueSize < 4) return -EINVAL;
        uint32_t inner;
        memcpy(&inner, mem + value, 4);
        if (inner >= s.maps.size() || !s.maps[inner].valid) return -EBADF;
      }
      if (m.access == kNoProgFd && m.opValueSize >= 8) {
        int32_t prog;
        memcpy(&prog, mem + value + 4, 4);
        if (prog > 0) return -EPERM;
      }
      return MapOpCore(mem, len, cmd, fd, keyOff, value, flags);
    case BPF_MAP_LOOKUP_ELEM:
    case BPF_MAP_LOOKUP_AND_DELETE_ELEM:
      if (uint64_t{value} + m.opValueSize > len) return -EFAULT;
      return MapOpCore(mem, len, cmd, fd, keyOff, value, flags);
    case BPF_MAP_DELETE_ELEM:
      return MapOpCore(mem, len, cmd, fd, keyOff, -1, flags);
    case BPF_MAP_GET_NEXT_KEY:
      if (uint64_t{next} + m.keySize > len) return -EFAULT;
      return MapOpCore(mem, len, cmd, fd, key == 0 ? -1 : keyOff, next, flags);
    default:
      return -EINVAL;
  }
}

// the Wasm import's signature: (i32 fd, i32 cmd, i32 key, i32 value, i32 next, i64 flags) -> i32
template <int I>
int32_t GuestMapOpFast(v8::Local<v8::Value> /*receiver*/, int32_t fd, int32_t cmd, int32_t key, int32_t value,
                       int32_t next, int64_t flags) {
  CountFastCall();
  return GuestMapOp(gSlots[I], fd, cmd, static_cast<uint32_t>(key), static_cast<uint32_t>(value),
                    static_cast<uint32_t>(next), flags);
}

/** the V8 description of fast function F (its receiver first, then `Args...`) returning int32 */
template <auto F, const v8::CTypeInfo&... Args>
const v8::CFunction* Describe() {
  static const v8::CTypeInfo args[] = {kRecv, Args...};
  static const v8::CFunctionInfo info(kI32, sizeof...(Args) + 1, args);
  static const v8::CFunction fn(reinterpret_cast<const void*>(F), &info);
  return &fn;
}

/** every slot's description of one entry point: Entry<I>::Get for I in [0, kSlots) */
template <template <int> class Entry, int... I>
constexpr std::array<const v8::CFunction* (*)(), sizeof...(I)> SlotTable(std::integer_sequence<int, I...>) {
  return {&Entry<I>::Get...};
}

template <int I>
struct MapOpEntry {
  static const v8::CFunction* Get() { return Describe<&GuestMapOpFast<I>, kI32, kI32, kI32, kI32, kI32, kI64>(); }
};
constexpr auto kCFunctions = SlotTable<MapOpEntry>(std::make_integer_sequence<int, kSlots>{});

// ---- wasm_bpf_buffer_poll's record source ---------------------------------------------------------

/** "not here": the caller (pollgate.ts's Wasm) hands the poll to the ABI layer's JavaScript */
constexpr int32_t kSlow = -65536;
/** or'ed into a record count: the staging area filled up, the ring may hold more (poll again at once) */
constexpr int32_t kMore = 1 << 30;

/**
 * Polls the ring or perf buffer registered for fd (waiting up to timeoutMs unless `more`), writing whole
 * records as [u32 size][u32 0][data padded to 8] into guest memory [stage, stage + len). The record
 * count (| kMore when the area filled up before the ring was empty), 0 on timeout, -EBUSY for a poll
 * from inside the callback of the same buffer (`more` = 0), -EINTR when the run is stopped, -ENOBUFS
 * when the next record alone does not fit, -EBADF for a closed buffer, other -errno, or kSlow.
 */
int32_t GuestPollFill(Slot& s, int64_t handle, int32_t fd, uint32_t stage, uint32_t len, int32_t timeoutMs, int32_t more) {
  if (handle <= 0 || static_cast<uint64_t>(handle) >= s.handles.size() || !s.handles[handle]) return kSlow;
  if (fd < 0 || static_cast<size_t>(fd) >= s.polls.size() || !s.polls[fd].buf || !s.memory) return kSlow;
  PollDef& p = s.polls[fd];
  if (p.busy && !more) return -EBUSY;
  if (s.stop && __atomic_load_n(static_cast<int32_t*>(s.stop->Data()), __ATOMIC_SEQ_CST) != 0) {
    p.busy = false;
    return -EINTR;
  }
  if (uint64_t{stage} + len > s.memory->ByteLength()) return kSlow;
  bool full = false;
  int32_t r = BufferPollOn(p.buf.get(), more ? 0 : timeoutMs, more || timeoutMs == 0 ? -1 : s.wakeFd,
                           static_cast<uint8_t*>(s.memory->Data()) + stage, len, &full);
  p.busy = r > 0;
  return r > 0 && full ? r | kMore : r;
}

/** the records of the last fill were delivered (or handed back to the ABI layer) */
int32_t GuestPollDone(Slot& s, int32_t fd) {
  if (fd >= 0 && static_cast<size_t>(fd) < s.polls.size()) s.polls[fd].busy = false;
  return 0;
}

// (i64 handle, i32 fd, i32 stage, i32 len, i32 timeoutMs, i32 more) -> i32
template <int I>
int32_t GuestPollFillFast(v8::Local<v8::Value> /*receiver*/, int64_t handle, int32_t fd, int32_t stage, int32_t len,
                          int32_t timeoutMs, int32_t more) {
  CountFastCall();
  return GuestPollFill(gSlots[I], handle, fd, static_cast<uint32_t>(stage), static_cast<uint32_t>(len), timeoutMs, more);
}

template <int I>
int32_t GuestPollDoneFast(v8::Local<v8::Value> /*receiver*/, int32_t fd) {
  CountFastCall();
  return GuestPollDone(gSlots[I], fd);
}

template <int I>
struct PollFillEntry {
  static const v8::CFunction* Get() { return Describe<&GuestPollFillFast<I>, kI64, kI32, kI32, kI32, kI32, kI32>(); }
};
template <int I>
struct PollDoneEntry {
  static const v8::CFunction* Get() { return Describe<&GuestPollDoneFast<I>, kI32>(); }
};
constexpr auto kFillFunctions = SlotTable<PollFillEntry>(std::make_integer_sequence<int, kSlots>{});
constexpr auto kDoneFunctions = SlotTable<PollDoneEntry>(std::make_integer_sequence<int, kSlots>{});

/** an i64 argument as Wasm's generic call path passes it (a BigInt), or a Number; false if neither */
bool ArgInt64(const v8::FunctionCallbackInfo<v8::Value>& info, int i, int64_t* out) {
  if (info[i]->IsBigInt()) {
    bool lossless = false;
    *out = info[i].As<v8::BigInt>()->Int64Value(&lossless);
    return lossless;
  }
  return info[i]->IsNumber() && ToInt64(info[i].As<v8::Number>()->Value(), out);
}

void GuestPollFillSlow(const v8::FunctionCallbackInfo<v8::Value>& info) {
  v8::Local<v8::Context> ctx = info.GetIsolate()->GetCurrentContext();
  int32_t slot = info.Data()->Int32Value(ctx).FromMaybe(-1);
  int32_t r = kSlow;
  int64_t handle;
  if (slot >= 0 && slot < kSlots && info.Length() >= 6 && ArgInt64(info, 0, &handle)) {
    auto i32 = [&](int i) { return info[i]->Int32Value(ctx).FromMaybe(-1); };
    r = GuestPollFill(gSlots[slot], handle, i32(1), static_cast<uint32_t>(i32(2)), static_cast<uint32_t>(i32(3)), i32(4), i32(5));
  }
  info.GetReturnValue().Set(r);
}

void GuestPollDoneSlow(const v8::FunctionCallbackInfo<v8::Value>& info) {
  v8::Local<v8::Context> ctx = info.GetIsolate()->GetCurrentContext();
  int32_t slot = info.Data()->Int32Value(ctx).FromMaybe(-1);
  if (slot >= 0 && slot < kSlots && info.Length() >= 1) GuestPollDone(gSlots[slot], info[0]->Int32Value(ctx).FromMaybe(-1));
  info.GetReturnValue().Set(0);
}

/** the slow path (unoptimized callers): the same operation; the slot index is the function's data */
void GuestMapOpSlow(const v8::FunctionCallbackInfo<v8::Value>& info) {
  v8::Local<v8::Context> ctx = info.GetIsolate()->GetCurrentContext();
  int32_t slot = info.Data()->Int32Value(ctx).FromMaybe(-1);
  int32_t r = -EINVAL;
  if (slot >= 0 && slot < kSlots && info.Length() >= 6 && info[0]->IsNumber() && info[1]->IsNumber() &&
      info[2]->IsNumber() && info[3]->IsNumber() && info[4]->IsNumber()) {
    int64_t flags = -1;
    if (info[5]->IsBigInt()) {
      bool lossless = false;
      flags = info[5].As<v8::BigInt>()->Int64Value(&lossless);
      if (!lossless) flags = -1;
    } else if (info[5]->IsNumber() && !ToInt64(info[5].As<v8::Number>()->Value(), &flags)) {
      flags = -1;  // GuestMapOp answers -EINVAL, as for any flags outside [0, 2^32)
    }
    auto u = [&](int i) { return info[i]->Uint32Value(ctx).FromMaybe(0); };
    r = GuestMapOp(gSlots[slot], info[0]->Int32Value(ctx).FromMaybe(-1), info[1]->Int32Value(ctx).FromMaybe(-1),
                   u(2), u(3), u(4), flags);
  }
  info.GetReturnValue().Set(r);
}

/** frees the slot for another guest (the caller holds gSlotsMu; fn already reset) */
void Release(Slot& s) {
  Forget(s);
  s.used.store(false);
}

inline bool SlotArg(const v8::FunctionCallbackInfo<v8::Value>& info, int i, int32_t* slot) {
  if (!info[i]->IsInt32()) return false;
  *slot = info[i].As<v8::Int32>()->Value();
  return *slot >= 0 && *slot < kSlots && gSlots[*slot].used.load();
}

// guestMapOpen(): [slot, fn] or null when every slot is taken
void Open(const v8::FunctionCallbackInfo<v8::Value>& info) {
  v8::Isolate* isolate = info.GetIsolate();
  int slot = -1;
  {
    std::lock_guard<std::mutex> g(gSlotsMu);
    for (int i = 0; i < kSlots; i++) {
      if (!gSlots[i].used.load()) {
        gSlots[i].used.store(true);
        slot = i;
        break;
      }
    }
  }
  if (slot < 0) {
    info.GetReturnValue().SetNull();
    return;
  }
  Slot& s = gSlots[slot];
  s.memory.reset();
  s.maps.clear();
  s.envId = static_cast<uint32_t>(info.Data()->Uint32Value(isolate->GetCurrentContext()).FromMaybe(0));
  v8::Local<v8::Function> fn;
  {
    std::lock_guard<std::mutex> g(gSlotsMu);
    v8::Global<v8::Function>& cached = gFunctions[isolate][slot].mapOp;
    if (cached.IsEmpty()) {
      fn = NewFastFunction(isolate, "wasm_bpf_map_operate", GuestMapOpSlow, v8::Integer::New(isolate, slot),
                           kCFunctions[slot](), 6);
      if (!fn.IsEmpty()) cached.Reset(isolate, fn);
    } else {
      fn = cached.Get(isolate);
    }
  }
  if (fn.IsEmpty()) {
    s.used.store(false);
    info.GetReturnValue().SetNull();
    return;
  }
  v8::Local<v8::Array> pair = v8::Array::New(isolate, 2);
  v8::Local<v8::Context> ctx = isolate->GetCurrentContext();
  pair->Set(ctx, 0, v8::Integer::New(isolate, slot)).Check();
  pair->Set(ctx, 1, fn).Check();
  info.GetReturnValue().Set(pair);
}

// guestMapBind(slot, memory.buffer): true, or false for a bad slot / not an (Shared)ArrayBuffer
void Bind(const v8::FunctionCallbackInfo<v8::Value>& info) {
  int32_t slot;
  bool ok = info.Length() >= 2 && SlotArg(info, 0, &slot) && (info[1]->IsArrayBuffer() || info[1]->IsSharedArrayBuffer());
  if (ok) {
    gSlots[slot].memory = info[1]->IsArrayBuffer() ? info[1].As<v8::ArrayBuffer>()->GetBackingStore()
                                                   : info[1].As<v8::SharedArrayBuffer>()->GetBackingStore();
  }
  info.GetReturnValue().Set(ok);
}

// guestMapSet(slot, fd, keySize, opValueSize[, access]) / guestMapSet(slot, fd) to forget the fd
void Set(const v8::FunctionCallbackInfo<v8::Value>& info) {
  int32_t slot;
  if (info.Length() < 2 || !SlotArg(info, 0, &slot) || !info[1]->IsInt32()) {
    info.GetReturnValue().Set(false);
    return;
  }
  int32_t fd = info[1].As<v8::Int32>()->Value();
  if (fd < 0 || fd > (1 << 20)) {
    info.GetReturnValue().Set(false);
    return;
  }
  Slot& s = gSlots[slot];
  if (static_cast<size_t>(fd) >= s.maps.size()) s.maps.resize(fd + 1);
  MapDef& m = s.maps[fd];
  if (info.Length() >= 4 && info[2]->IsUint32() && info[3]->IsUint32()) {
    m.keySize = info[2].As<v8::Uint32>()->Value();
    m.opValueSize = info[3].As<v8::Uint32>()->Value();
    uint32_t access = info.Length() >= 5 && info[4]->IsUint32() ? info[4].As<v8::Uint32>()->Value() : uint32_t{kAll};
    m.access = access <= kNoProgFd ? static_cast<Access>(access) : kNone;
    m.valid = true;
  } else {
    m = MapDef{};
  }
  info.GetReturnValue().Set(true);
}

// guestMapClose(slot): the guest is done; its function answers -EBADF from now on (idempotent)
void Close(const v8::FunctionCallbackInfo<v8::Value>& info) {
  int32_t slot;
  if (info.Length() >= 1 && SlotArg(info, 0, &slot)) Forget(gSlots[slot]);
}

// guestMapRelease(slot): no instance can call the slot's function any more; another guest may get it
void ReleaseFn(const v8::FunctionCallbackInfo<v8::Value>& info) {
  int32_t slot;
  if (info.Length() >= 1 && SlotArg(info, 0, &slot)) {
    std::lock_guard<std::mutex> g(gSlotsMu);
    Release(gSlots[slot]);
  }
}

// guestPollFunctions(slot): [fill, done], the slot's C functions for pollgate.ts's Wasm, or null
void PollFunctions(const v8::FunctionCallbackInfo<v8::Value>& info) {
  v8::Isolate* isolate = info.GetIsolate();
  int32_t slot;
  if (info.Length() < 1 || !SlotArg(info, 0, &slot)) {
    info.GetReturnValue().SetNull();
    return;
  }
  v8::Local<v8::Function> fill, done;
  {
    std::lock_guard<std::mutex> g(gSlotsMu);
    SlotFunctions& f = gFunctions[isolate][slot];
    if (f.pollFill.IsEmpty()) {
      v8::Local<v8::Function> a = NewFastFunction(isolate, "wasm_bpf_poll_fill", GuestPollFillSlow,
                                                  v8::Integer::New(isolate, slot), kFillFunctions[slot](), 6);
      v8::Local<v8::Function> b = NewFastFunction(isolate, "wasm_bpf_poll_done", GuestPollDoneSlow,
                                                  v8::Integer::New(isolate, slot), kDoneFunctions[slot](), 1);
      if (!a.IsEmpty() && !b.IsEmpty()) {
        f.pollFill.Reset(isolate, a);
        f.pollDone.Reset(isolate, b);
      }
    }
    if (!f.pollFill.IsEmpty()) {
      fill = f.pollFill.Get(isolate);
      done = f.pollDone.Get(isolate);
    }
  }
  if (fill.IsEmpty()) {
    info.GetReturnValue().SetNull();
    return;
  }
  v8::Local<v8::Array> pair = v8::Array::New(isolate, 2);
  v8::Local<v8::Context> ctx = isolate->GetCurrentContext();
  pair->Set(ctx, 0, fill).Check();
  pair->Set(ctx, 1, done).Check();
  info.GetReturnValue().Set(pair);
}

// guestPollBind(slot, wakeFd, stop: SharedArrayBuffer): true, or false for a bad slot or argument
void PollBind(const v8::FunctionCallbackInfo<v8::Value>& info) {
  int32_t slot;
  bool ok = info.Length() >= 3 && SlotArg(info, 0, &slot) && info[1]->IsInt32() && info[2]->IsSharedArrayBuffer();
  if (ok) {
    auto store = info[2].As<v8::SharedArrayBuffer>()->GetBackingStore();
    ok = store->ByteLength() >= 4;
    if (ok) {
      gSlots[slot].wakeFd = info[1].As<v8::Int32>()->Value();
      gSlots[slot].stop = std::move(store);
    }
  }
  info.GetReturnValue().Set(ok);
}

// guestPollSet(slot, fd, buf): fd's polls read record buffer `buf` (a bufferPoll id) here; buf < 0:
// the host's path. False for a bad slot, fd or buffer id.
void PollSet(const v8::FunctionCallbackInfo<v8::Value>& info) {
  int32_t slot;
  bool ok = info.Length() >= 3 && SlotArg(info, 0, &slot) && info[1]->IsInt32() && info[2]->IsInt32();
  int32_t fd = ok ? info[1].As<v8::Int32>()->Value() : -1;
  int32_t id = ok ? info[2].As<v8::Int32>()->Value() : -1;
  ok = ok && fd >= 0 && fd <= (1 << 20);
  std::shared_ptr<Buf> buf;
  if (ok && id >= 0) {
    // held here (not looked up in the registry on every poll); bufferClose marks it closed
    buf = BufferById(id);
    ok = buf != nullptr;
  }
  if (ok) {
    Slot& s = gSlots[slot];
    if (static_cast<size_t>(fd) >= s.polls.size()) s.polls.resize(fd + 1);
    s.polls[fd].buf = std::move(buf);
    s.polls[fd].busy = false;
  }
  info.GetReturnValue().Set(ok);
}

// guestPollHandle(slot, handle, open): whether `handle` names an open object of the guest
void PollHandle(const v8::FunctionCallbackInfo<v8::Value>& info) {
  int32_t slot;
  bool ok = info.Length() >= 3 && SlotArg(info, 0, &slot) && info[1]->IsInt32();
  int32_t h = ok ? info[1].As<v8::Int32>()->Value() : 0;
  ok = ok && h > 0 && h <= (1 << 20);
  if (ok) {
    Slot& s = gSlots[slot];
    if (static_cast<size_t>(h) >= s.handles.size()) s.handles.resize(h + 1);
    s.handles[h] = info[2]->BooleanValue(info.GetIsolate()) ? 1 : 0;
  }
  info.GetReturnValue().Set(ok);
}

// guestPollBusy(slot, fd): a direct poll of fd is delivering its records right now
void PollBusy(const v8::FunctionCallbackInfo<v8::Value>& info) {
  int32_t slot;
  bool busy = false;
  if (info.Length() >= 2 && SlotArg(info, 0, &slot) && info[1]->IsInt32()) {
    int32_t fd = info[1].As<v8::Int32>()->Value();
    const Slot& s = gSlots[slot];
    busy = fd >= 0 && static_cast<size_t>(fd) < s.polls.size() && s.polls[fd].busy;
  }
  info.GetReturnValue().Set(busy);
}

}  // namespace

bool SetGuestMapFunctions(napi_env env, napi_value exports) {
  v8::Isolate* isolate = v8::Isolate::GetCurrent();
  if (!isolate || !SameV8()) return false;
  v8::Local<v8::Context> ctx = isolate->GetCurrentContext();
  v8::Local<v8::Object> ex = ToLocal(exports).As<v8::Object>();
  v8::Local<v8::Value> envId = v8::Integer::NewFromUnsigned(isolate, EnvIdRaw(env));
  auto set = [&](const char* name, v8::FunctionCallback cb) {
    v8::Local<v8::Function> fn;
    if (!v8::FunctionTemplate::New(isolate, cb, envId)->GetFunction(ctx).ToLocal(&fn)) return false;
    return ex->Set(ctx, v8::String::NewFromUtf8(isolate, name).ToLocalChecked(), fn).FromMaybe(false);
  };
  return set("guestMapOpen", Open) && set("guestMapBind", Bind) && set("guestMapSet", Set) && set("guestMapClose", Close) &&
         set("guestMapRelease", ReleaseFn) && set("guestPollFunctions", PollFunctions) && set("guestPollBind", PollBind) &&
         set("guestPollSet", PollSet) && set("guestPollHandle", PollHandle) && set("guestPollBusy", PollBusy);
}

void ReleaseGuestMapSlots(uint32_t envId) {
  std::lock_guard<std::mutex> g(gSlotsMu);
  for (Slot& s : gSlots)
    if (s.used.load() && s.envId == envId) Release(s);
  // this env's isolate is going away (a worker's: one env per isolate)
  if (v8::Isolate* isolate = v8::Isolate::TryGetCurrent()) gFunctions.erase(isolate);
}

}  // namespace wbn

#else

namespace wbn {
bool SetGuestMapFunctions(napi_env, napi_value) { return false; }
void ReleaseGuestMapSlots(uint32_t) {}
}  // namespace wbn

#endif
