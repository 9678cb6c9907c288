#include "registry.h"

#include "fastcall.h"

#include <bpf/libbpf.h>
#include <unistd.h>

namespace wbn {

namespace {
std::atomic<int32_t> gNextId{1};
std::atomic<uint32_t> gNextEnv{1};

void CleanupEnv(void* arg) {
  uint32_t env = static_cast<uint32_t>(reinterpret_cast<uintptr_t>(arg));
  // Resources this env created and left open: detach and free them (a terminated worker must not
  // leave programs attached). Links first, then objects (with any links other envs made on them),
  // then buffers.
  for (auto& l : gLinks.RemoveIf([env](const Link& l) { return l.envId == env; })) l->Destroy();
  for (int32_t id : gObjects.IdsWhere([env](const Obj& o) { return o.envId == env; })) CloseObject(id);
  for (auto& b : gBufs.RemoveIf([env](const Buf& b) { return b.envId == env; })) b->closed.store(true);
  ReleaseGuestMapSlots(env);
}
}  // namespace

Registry<Obj> gObjects;
Registry<Link> gLinks;
Registry<Buf> gBufs;

int32_t NextId() {
  int32_t id = gNextId.fetch_add(1, std::memory_order_relaxed);
  return id;
}

Obj::~Obj() {
  if (obj) bpf_object__close(obj);
  obj = nullptr;
}

Buf::~Buf() {
  if (rb) ring_buffer__free(rb);
  if (pb) perf_buffer__free(pb);
  if (epfd >= 0) close(epfd);
  if (wakeDup >= 0) close(wakeDup);
  if (ownsWaitFd && waitFd >= 0) close(waitFd);
  rb = nullptr;
  pb = nullptr;
}

void InitEnv(Napi::Env env) {
  // The env id is stored in the instance-data pointer itself: nothing to free, no teardown ordering.
  void* data = reinterpret_cast<void*>(static_cast<uintptr_t>(gNextEnv.fetch_add(1)));
  napi_set_instance_data(env, data, nullptr, nullptr);
  napi_add_env_cleanup_hook(env, CleanupEnv, data);
}

uint32_t EnvIdRaw(napi_env env) {
  void* d = nullptr;
  if (napi_get_instance_data(env, &d) != napi_ok || !d) return 0;
  return static_cast<uint32_t>(reinterpret_cast<uintptr_t>(d));
}

uint32_t EnvId(Napi::Env env) { return EnvIdRaw(env); }

void CloseObject(int32_t id) {
  auto o = gObjects.Remove(id);
  if (!o) return;  // unknown or already closed: no-op
  std::lock_guard<std::mutex> g(o->mu);
  o->closed = true;
  // destroy in creation order (links of this object only)
  auto links = gLinks.RemoveIf([id](const Link& l) { return l.objId == id; });
  for (auto& l : links) l->Destroy();
  links.clear();
  // bpf_object__close happens in ~Obj when the last user (normally us, right here) drops it
}

}  // namespace wbn
