// ringbufOpen / perfbufOpen / bufferPoll / bufferPendingSize / bufferLost / bufferClose
//
// Records are copied by libbpf's sample callback straight into the caller's `out` buffer as
// [u32 size][u32 0][size bytes, zero-padded to 8]. A record that does not fit goes, in order, to a
// native pending queue that the next poll delivers first; nothing is dropped or reordered.
// For ring buffers the callback then stops the consume loop (the record is already consumed, so it
// is the only one queued; the rest stays in the kernel ring). Perf buffers cannot be stopped, so
// every record after the first one that did not fit is queued too (order!).
#include <bpf/libbpf.h>
#include <fcntl.h>
#include <node_api.h>
#include <sys/epoll.h>
#include <unistd.h>
#include <time.h>

#include <cerrno>
#include <cstdint>
#include <cstring>

#include "errors.h"
#include "fastcall.h"
#include "log.h"
#include "registry.h"
#include "util.h"

namespace wbn {

namespace {

constexpr int kStop = -ENOSPC;  // returned by the ring buffer callback to end ring_buffer__consume

inline size_t RecordSpace(size_t size) { return 8 + ((size + 7) & ~size_t(7)); }

inline bool WriteRecord(Buf* b, const void* data, size_t size) {
  size_t need = RecordSpace(size);
  if (b->cap - b->off < need) return false;
  uint8_t* p = b->out + b->off;
  uint32_t hdr[2] = {static_cast<uint32_t>(size), 0};
  memcpy(p, hdr, sizeof hdr);
  memcpy(p + 8, data, size);
  size_t pad = need - 8 - size;
  if (pad) memset(p + 8 + size, 0, pad);
  b->off += need;
  b->count++;
  return true;
}

inline void Queue(Buf* b, const void* data, size_t size) {
  const uint8_t* d = static_cast<const uint8_t*>(data);
  b->pending.emplace_back(d, d + size);
}

int RingSample(void* ctx, void* data, size_t size) {
  Buf* b = static_cast<Buf*>(ctx);
  if (!b->full && WriteRecord(b, data, size)) return 0;
  b->full = true;
  Queue(b, data, size);
  return kStop;
}

void PerfSample(void* ctx, int /*cpu*/, void* data, __u32 size) {
  Buf* b = static_cast<Buf*>(ctx);
  if (!b->full && WriteRecord(b, data, size)) return;
  b->full = true;
  Queue(b, data, size);
}

void PerfLost(void* ctx, int /*cpu*/, __u64 cnt) {
  static_cast<Buf*>(ctx)->lost.fetch_add(cnt, std::memory_order_relaxed);
}

/** drains what the kernel has (no syscall); 0 or -errno */
inline int Consume(Buf* b) {
  if (b->rb) {
    int r = ring_buffer__consume(b->rb);
    return (r < 0 && !b->full) ? r : 0;  // with `full` set, r is our kStop
  }
  int r = perf_buffer__consume(b->pb);
  return r < 0 ? r : 0;
}

inline int64_t NowMs() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<int64_t>(ts.tv_sec) * 1000 + ts.tv_nsec / 1000000;
}

constexpr int kNothing = INT32_MIN;

/** after a consume: the poll result, or kNothing */
inline int Outcome(Buf* b, int err) {
  if (b->count > 0) return b->count;
  if (!b->pending.empty()) return -ENOBUFS;  // the next record alone is larger than out
  if (err < 0) return err;
  return kNothing;
}

/** the buffer's epoll set with waitFd and (a dup of) wakeFd registered; 0 or -errno */
int EnsureEpoll(Buf* b, int wakeFd) {
  if (b->epfd < 0) {
    int ep = epoll_create1(EPOLL_CLOEXEC);
    if (ep < 0) return -errno;
    epoll_event ev{};
    ev.events = EPOLLIN;
    ev.data.u32 = 0;
    if (epoll_ctl(ep, EPOLL_CTL_ADD, b->waitFd, &ev) < 0) {
      int e = errno;
      close(ep);
      return -e;
    }
    b->epfd = ep;
  }
  if (wakeFd == b->wakeArg) return 0;
  // another wake fd than last time (in practice: the first wait, or a test): re-register
  if (b->wakeDup >= 0) {
    epoll_ctl(b->epfd, EPOLL_CTL_DEL, b->wakeDup, nullptr);
    close(b->wakeDup);
    b->wakeDup = -1;
    b->wakeArg = -1;
  }
  if (wakeFd < 0) return 0;
  // our own reference: the set stays valid even if the caller closes its fd while we wait
  int d = fcntl(wakeFd, F_DUPFD_CLOEXEC, 3);
  if (d < 0) return errno == EBADF ? -EBADF : -errno;
  epoll_event ev{};
  ev.events = EPOLLIN;
  ev.data.u32 = 1;
  if (epoll_ctl(b->epfd, EPOLL_CTL_ADD, d, &ev) < 0) {
    int e = errno;
    close(d);
    return -e;
  }
  b->wakeDup = d;
  b->wakeArg = wakeFd;
  return 0;
}

int PollLocked(Buf* b, int timeoutMs, int wakeFd) {
  // 1. records left over from an earlier call come first
  while (!b->pending.empty()) {
    const auto& rec = b->pending.front();
    if (!WriteRecord(b, rec.data(), rec.size())) {
      b->full = true;
      return b->count > 0 ? b->count : -ENOBUFS;
    }
    b->pending.pop_front();
  }
  // 2. whatever is already in the kernel buffer: no syscall, no wait
  int r = Outcome(b, Consume(b));
  if (r != kNothing) return r;
  // Nothing there, no wait asked for and no wake fd to report: done without a syscall (the consume
  // above read the same producer position that readiness is computed from)
  if (timeoutMs == 0 && wakeFd < 0) return 0;
  // 3. wait for data or for the wake fd
  r = EnsureEpoll(b, wakeFd);
  if (r < 0) return r;
  int64_t deadline = timeoutMs > 0 ? NowMs() + timeoutMs : 0;
  int wait = timeoutMs < 0 ? -1 : timeoutMs;
  for (;;) {
    epoll_event evs[2];
    int n = epoll_wait(b->epfd, evs, 2, wait);
    if (n < 0 && errno != EINTR) return -errno;
    bool data = false;
    for (int i = 0; i < n; i++) {
      if (evs[i].data.u32 == 1) return -EINTR;  // woken; the eventfd counter is left for the caller
      data = true;
    }
    if (data) {
      r = Outcome(b, Consume(b));
      if (r != kNothing) return r;
    }
    // timeout, signal, or readiness without a record (e.g. discarded ring buffer records)
    if (timeoutMs == 0) return 0;
    if (timeoutMs > 0) {
      int64_t left = deadline - NowMs();
      if (left <= 0) return 0;
      wait = static_cast<int>(left);
    }
  }
}

inline napi_value Int(napi_env env, int32_t v) {
  napi_value r;
  napi_create_int32(env, v, &r);
  return r;
}

}  // namespace

Napi::Value RingbufOpen(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int32_t mapFd = ArgInt(info, 0, "mapFd");
  auto b = std::make_shared<Buf>();
  b->envId = EnvId(env);
  LogScope scope(LIBBPF_WARN);
  errno = 0;
  b->rb = ring_buffer__new(mapFd, RingSample, b.get(), nullptr);
  if (!b->rb) ThrowErrno(env, "ring_buffer__new", errno ? errno : EINVAL, "map fd " + std::to_string(mapFd), scope.Captured());
  // Wait on the map fd itself (ringbuf_map_poll: readable while data is available): one level of
  // wakeup instead of a nested epoll. Our dup keeps the map alive as long as the buffer.
  b->waitFd = fcntl(mapFd, F_DUPFD_CLOEXEC, 3);
  if (b->waitFd < 0) ThrowErrno(env, "fcntl(F_DUPFD_CLOEXEC)", errno, "map fd " + std::to_string(mapFd));
  b->ownsWaitFd = true;
  return Napi::Number::New(env, gBufs.Add(std::move(b)));
}

Napi::Value PerfbufOpen(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int32_t mapFd = ArgInt(info, 0, "mapFd");
  int32_t pageCount = ArgInt(info, 1, "pageCount");
  auto b = std::make_shared<Buf>();
  b->envId = EnvId(env);
  LogScope scope(LIBBPF_WARN);
  errno = 0;
  b->pb = perf_buffer__new(mapFd, pageCount < 0 ? 0 : static_cast<size_t>(pageCount), PerfSample, PerfLost, b.get(), nullptr);
  if (!b->pb) ThrowErrno(env, "perf_buffer__new", errno ? errno : EINVAL, "map fd " + std::to_string(mapFd), scope.Captured());
  b->waitFd = perf_buffer__epoll_fd(b->pb);
  return Napi::Number::New(env, gBufs.Add(std::move(b)));
}

int32_t BufferPollOn(Buf* b, int32_t timeoutMs, int32_t wakeFd, uint8_t* out, size_t len, bool* full) {
  std::lock_guard<std::mutex> g(b->mu);
  if (b->closed.load(std::memory_order_relaxed)) return -EBADF;
  b->out = out;
  b->cap = out ? len : 0;
  b->off = 0;
  b->count = 0;
  b->full = false;
  int r = PollLocked(b, timeoutMs, wakeFd);
  if (full) *full = b->full;
  b->out = nullptr;
  b->cap = 0;
  return r;
}

int32_t BufferPollCore(int32_t id, int32_t timeoutMs, int32_t wakeFd, uint8_t* out, size_t len) {
  auto b = gBufs.Get(id);
  if (!b) return -EBADF;
  return BufferPollOn(b.get(), timeoutMs, wakeFd, out, len, nullptr);
}

std::shared_ptr<Buf> BufferById(int32_t id) { return gBufs.Get(id); }

// The plain N-API entry point (registered when the addon is built without V8 fast calls; the fast
// call in fastcall.cc shares BufferPollCore). Returns a count or -errno; never throws.
napi_value BufferPoll(napi_env env, napi_callback_info info) {
  size_t argc = 4;
  napi_value argv[4];
  if (napi_get_cb_info(env, info, &argc, argv, nullptr, nullptr) != napi_ok || argc < 4) return Int(env, -EINVAL);
  int32_t id, timeoutMs, wakeFd;
  if (napi_get_value_int32(env, argv[0], &id) != napi_ok || napi_get_value_int32(env, argv[1], &timeoutMs) != napi_ok ||
      napi_get_value_int32(env, argv[2], &wakeFd) != napi_ok)
    return Int(env, -EINVAL);
  void* data = nullptr;
  size_t len = 0;
  if (napi_get_arraybuffer_info(env, argv[3], &data, &len) != napi_ok) {
    bool isView = false;
    napi_value ab;
    size_t off;
    if (napi_is_dataview(env, argv[3], &isView) == napi_ok && isView) {
      if (napi_get_dataview_info(env, argv[3], &len, &data, &ab, &off) != napi_ok) return Int(env, -EINVAL);
    } else if (napi_is_typedarray(env, argv[3], &isView) == napi_ok && isView) {
      napi_typedarray_type t;
      if (napi_get_typedarray_info(env, argv[3], &t, &len, &data, &ab, &off) != napi_ok || t != napi_uint8_array)
        return Int(env, -EINVAL);
    } else {
      return Int(env, -EINVAL);
    }
  }
  return Int(env, BufferPollCore(id, timeoutMs, wakeFd, static_cast<uint8_t*>(data), data ? len : 0));
}

Napi::Value BufferPendingSize(const Napi::CallbackInfo& info) {
  auto b = RequireBuf(info.Env(), ArgInt(info, 0, "buf"), "bufferPendingSize");
  std::lock_guard<std::mutex> g(b->mu);
  return Napi::Number::New(info.Env(), b->pending.empty() ? 0.0 : static_cast<double>(b->pending.front().size()));
}

Napi::Value BufferLost(const Napi::CallbackInfo& info) {
  auto b = RequireBuf(info.Env(), ArgInt(info, 0, "buf"), "bufferLost");
  return Napi::Number::New(info.Env(), static_cast<double>(b->lost.load(std::memory_order_relaxed)));
}

Napi::Value BufferClose(const Napi::CallbackInfo& info) {
  // unknown / already closed: no-op. Marked closed (polls then get -EBADF) and freed
  // (ring_buffer__free / perf_buffer__free, pending queue) as soon as no poll on another thread and no
  // direct-poll slot (guestmaps.cc; the ABI layer unregisters it before closing) holds it.
  if (auto b = gBufs.Remove(ArgInt(info, 0, "buf"))) b->closed.store(true);
  return info.Env().Undefined();
}

}  // namespace wbn
