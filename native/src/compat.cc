// mapCreate: one BPF_MAP_CREATE (bpf_map_create), used by the ringbuf -> perf buffer compat pass
// (compat/ringbuf/) for its per-CPU scratch map. The caller owns the returned fd.
#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include <cerrno>
#include <string>

#include "errors.h"
#include "log.h"
#include "util.h"

namespace wbn {

Napi::Value MapCreate(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int32_t type = ArgInt(info, 0, "type");
  int32_t keySize = ArgInt(info, 1, "keySize");
  int32_t valueSize = ArgInt(info, 2, "valueSize");
  int32_t maxEntries = ArgInt(info, 3, "maxEntries");
  std::string name = ArgString(info, 4, "name");
  LogScope scope(LIBBPF_WARN);
  int fd = bpf_map_create(static_cast<bpf_map_type>(type), name.c_str(), static_cast<__u32>(keySize),
                          static_cast<__u32>(valueSize), static_cast<__u32>(maxEntries), nullptr);
  if (fd < 0) ThrowErrno(env, "bpf_map_create", fd, "map '" + name + "'", scope.Captured());
  return Napi::Number::New(env, fd);
}

}  // namespace wbn
