// Process-wide tables of objects, links and buffers. Ids are process-unique integers > 0, so an id
// created on one JS thread (main or worker) is valid on any other. Every table is guarded by its own
// mutex; entries are shared_ptrs so that a close racing with a call on another thread only frees the
// resource when that call is done with it.
#pragma once

#include <napi.h>

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>
#include <vector>

struct bpf_object;
struct bpf_link;
struct ring_buffer;
struct perf_buffer;

namespace wbn {

/** next process-unique id (> 0) */
int32_t NextId();

template <class T>
class Registry {
 public:
  int32_t Add(std::shared_ptr<T> v) {
    int32_t id = NextId();
    std::lock_guard<std::mutex> g(mu_);
    map_.emplace(id, std::move(v));
    return id;
  }
  std::shared_ptr<T> Get(int32_t id) {
    std::lock_guard<std::mutex> g(mu_);
    auto it = map_.find(id);
    return it == map_.end() ? nullptr : it->second;
  }
  std::shared_ptr<T> Remove(int32_t id) {
    std::lock_guard<std::mutex> g(mu_);
    auto it = map_.find(id);
    if (it == map_.end()) return nullptr;
    auto v = std::move(it->second);
    map_.erase(it);
    return v;
  }
  /** ids (ascending) of the entries matching pred */
  std::vector<int32_t> IdsWhere(const std::function<bool(const T&)>& pred) {
    std::vector<int32_t> ids;
    {
      std::lock_guard<std::mutex> g(mu_);
      for (auto& kv : map_)
        if (pred(*kv.second)) ids.push_back(kv.first);
    }
    std::sort(ids.begin(), ids.end());
    return ids;
  }
  /** removes and returns (ordered by id) every entry matching pred */
  std::vector<std::shared_ptr<T>> RemoveIf(const std::function<bool(const T&)>& pred) {
    std::vector<std::pair<int32_t, std::shared_ptr<T>>> hits;
    {
      std::lock_guard<std::mutex> g(mu_);
      for (auto it = map_.begin(); it != map_.end();) {
        if (pred(*it->second)) {
          hits.emplace_back(it->first, std::move(it->second));
          it = map_.erase(it);
        } else {
          ++it;
        }
      }
    }
    std::sort(hits.begin(), hits.end(), [](const auto& a, const auto& b) { return a.first < b.first; });
    std::vector<std::shared_ptr<T>> out;
    out.reserve(hits.size());
    for (auto& h : hits) out.push_back(std::move(h.second));
    return out;
  }

 private:
  std::mutex mu_;
  std::unordered_map<int32_t, std::shared_ptr<T>> map_;
};

/** An opened bpf_object. All operations on one object are serialised by `mu`. */
struct Obj {
  std::mutex mu;
  bpf_object* obj = nullptr;
  std::vector<uint8_t> bytes;  // our copy of the ELF image, alive as long as the object
  std::string name;
  std::string btfCustomPath;
  int logLevel = 0;
  uint32_t envId = 0;
  bool closed = false;
  ~Obj();
};

/** An attachment. Destroyed by detach(), close(obj) or env teardown. */
struct Link {
  enum Kind { kBpfLink, kSocket, kXdp, kStructOps };
  Kind kind = kBpfLink;
  int32_t objId = 0;
  uint32_t envId = 0;
  bpf_link* link = nullptr;  // kBpfLink; kStructOps: libbpf's (bpf_map__attach_struct_ops)
  int linkFd = -1;           // kStructOps: the BPF_LINK_CREATE link that holds the registration
  int sockFd = -1;           // kSocket: owned, closed on destroy
  int ifindex = 0;           // kXdp (bpf_xdp_attach with flags)
  uint32_t xdpFlags = 0;
  int progFd = -1;
  bool destroyed = false;
  /** detaches; returns 0 or -errno. Idempotent. */
  int Destroy();
  ~Link() { Destroy(); }
};

/** A ring buffer or perf buffer with its pending queue. */
struct Buf {
  std::mutex mu;  // held for a whole poll
  ring_buffer* rb = nullptr;
  perf_buffer* pb = nullptr;
  // What bufferPoll waits on: for a ring buffer our own dup of the map fd (polled directly, no
  // nested epoll); for a perf buffer libbpf's epoll fd over the per-CPU perf events.
  int waitFd = -1;
  bool ownsWaitFd = false;
  // One epoll set per buffer, made at the first wait: waitFd (data.u32 0) and our dup of the caller's
  // wake eventfd (data.u32 1), registered once instead of poll(2) adding and removing two wait-queue
  // entries on every call. wakeArg is the caller's fd number the dup was made from (-1: none).
  int epfd = -1;
  int wakeDup = -1;
  int wakeArg = -1;
  uint32_t envId = 0;
  // per-poll output cursor (valid while a poll holds mu)
  uint8_t* out = nullptr;
  size_t cap = 0;
  size_t off = 0;
  int32_t count = 0;
  bool full = false;
  // records consumed from the kernel that did not fit; delivered first, in order
  std::deque<std::vector<uint8_t>> pending;
  std::atomic<uint64_t> lost{0};
  // closed by its owner (bufferClose, env teardown): a holder of the shared_ptr outside the registry
  // (a direct-poll slot, native/src/guestmaps.cc) must not poll it any more
  std::atomic<bool> closed{false};
  ~Buf();
};

extern Registry<Obj> gObjects;
extern Registry<Link> gLinks;
extern Registry<Buf> gBufs;

/** id of the JS environment (main thread or worker) the current call runs in */
uint32_t EnvId(Napi::Env env);
uint32_t EnvIdRaw(napi_env env);
/** registers the per-env instance data and the cleanup hook (closes what this env left open) */
void InitEnv(Napi::Env env);

/** destroys the object's links, then closes it (the bpf_object is freed once no call uses it) */
void CloseObject(int32_t id);

}  // namespace wbn
