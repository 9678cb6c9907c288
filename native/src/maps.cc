// mapOp: the hot path. No allocation, no libbpf, exactly one bpf() syscall. Returns 0 or -errno and
// never throws. MapOpCore is shared by the plain N-API entry point below and the V8 fast call
// (fastcall.cc).
#include <linux/bpf.h>
#include <node_api.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <cstddef>
#include <cstdint>
#include <cstring>

#include "fastcall.h"
#include "guesterrno.h"

namespace wbn {

namespace {

inline napi_value Int(napi_env env, int32_t v) {
  napi_value r;
  napi_create_int32(env, v, &r);
  return r;
}

// The part of union bpf_attr used by the *_ELEM commands (what libbpf passes as the attr size too).
constexpr size_t kElemAttrSize = offsetof(union bpf_attr, flags) + sizeof(((union bpf_attr*)nullptr)->flags);

/** data/length of an ArrayBuffer (or, off the fast path, of a TypedArray/DataView view) */
inline bool BufferOf(napi_env env, napi_value v, uint8_t** data, size_t* len) {
  void* p = nullptr;
  if (napi_get_arraybuffer_info(env, v, &p, len) == napi_ok) {
    *data = static_cast<uint8_t*>(p);
    return true;
  }
  bool is = false;
  if (napi_is_typedarray(env, v, &is) == napi_ok && is) {
    napi_typedarray_type t;
    size_t n, off;
    napi_value ab;
    if (napi_get_typedarray_info(env, v, &t, &n, &p, &ab, &off) != napi_ok) return false;
    *data = static_cast<uint8_t*>(p);  // already points at the view's first byte
    size_t el = 1;
    switch (t) {
      case napi_int16_array: case napi_uint16_array: el = 2; break;
      case napi_int32_array: case napi_uint32_array: case napi_float32_array: el = 4; break;
      case napi_float64_array: case napi_bigint64_array: case napi_biguint64_array: el = 8; break;
      default: break;
    }
    *len = n * el;
    return true;
  }
  if (napi_is_dataview(env, v, &is) == napi_ok && is) {
    napi_value ab;
    size_t off;
    if (napi_get_dataview_info(env, v, len, &p, &ab, &off) != napi_ok) return false;
    *data = static_cast<uint8_t*>(p);
    return true;
  }
  return false;
}

}  // namespace

int32_t MapOpCore(uint8_t* mem, size_t len, int32_t cmd, int32_t fd, int64_t keyOff, int64_t valOff, int64_t flags) {
  switch (cmd) {
    case BPF_MAP_LOOKUP_ELEM:
    case BPF_MAP_UPDATE_ELEM:
    case BPF_MAP_DELETE_ELEM:
    case BPF_MAP_GET_NEXT_KEY:
    case BPF_MAP_LOOKUP_AND_DELETE_ELEM:
      break;
    default:
      return -EINVAL;
  }
  // Offsets are bounds-checked (against the key/value sizes) by the caller; here only make sure a
  // detached or too-small memory cannot turn an offset into a wild pointer.
  if ((keyOff >= 0 && static_cast<uint64_t>(keyOff) >= len) || (valOff >= 0 && static_cast<uint64_t>(valOff) >= len) ||
      ((keyOff >= 0 || valOff >= 0) && mem == nullptr))
    return -EFAULT;

  union bpf_attr attr;
  memset(&attr, 0, kElemAttrSize);
  attr.map_fd = static_cast<uint32_t>(fd);
  attr.key = keyOff < 0 ? 0 : reinterpret_cast<uint64_t>(mem + keyOff);
  attr.value = valOff < 0 ? 0 : reinterpret_cast<uint64_t>(mem + valOff);  // == next_key
  attr.flags = static_cast<uint64_t>(flags);
  long r = syscall(__NR_bpf, cmd, &attr, kElemAttrSize);
  return r < 0 ? -GuestErrno(errno) : 0;
}

// The plain N-API entry point (replaced by fastcall.cc's function where the build and the running V8
// have fast calls).
napi_value MapOp(napi_env env, napi_callback_info info) {
  size_t argc = 6;
  napi_value argv[6];
  if (napi_get_cb_info(env, info, &argc, argv, nullptr, nullptr) != napi_ok || argc < 6) return Int(env, -EINVAL);
  int32_t cmd, fd;
  int64_t keyOff, valOff, flags;
  uint8_t* mem = nullptr;
  size_t len = 0;
  if (napi_get_value_int32(env, argv[0], &cmd) != napi_ok || napi_get_value_int32(env, argv[1], &fd) != napi_ok ||
      napi_get_value_int64(env, argv[3], &keyOff) != napi_ok || napi_get_value_int64(env, argv[4], &valOff) != napi_ok ||
      napi_get_value_int64(env, argv[5], &flags) != napi_ok)
    return Int(env, -EINVAL);
  if (!BufferOf(env, argv[2], &mem, &len)) return Int(env, -EINVAL);
  return Int(env, MapOpCore(mem, len, cmd, fd, keyOff, valOff, flags));
}

}  // namespace wbn
