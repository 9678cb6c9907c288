// open / programs / maps / setMapType / load / close
#include <bpf/libbpf.h>

#include <cerrno>
#include <cstring>

#include "errors.h"
#include "log.h"
#include "registry.h"
#include "util.h"

namespace wbn {

// Objects under a lock: `closed` is re-checked because close() may have won the race for the mutex.
#define LOCK_OBJ(o, op)                       \
  std::lock_guard<std::mutex> lock__((o)->mu); \
  if ((o)->closed || !(o)->obj) ThrowErrno(env, op, EBADF, "bpf object is closed")

Napi::Value Open(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const uint8_t* data = nullptr;
  size_t len = 0;
  if (info.Length() >= 1 && info[0].IsTypedArray()) {
    Napi::TypedArray ta = info[0].As<Napi::TypedArray>();
    data = static_cast<const uint8_t*>(ta.ArrayBuffer().Data()) + ta.ByteOffset();
    len = ta.ByteLength();
  } else if (info.Length() >= 1 && info[0].IsArrayBuffer()) {
    Napi::ArrayBuffer ab = info[0].As<Napi::ArrayBuffer>();
    data = static_cast<const uint8_t*>(ab.Data());
    len = ab.ByteLength();
  } else {
    throw Napi::TypeError::New(env, "bytes must be a Uint8Array");
  }
  std::string name = ArgString(info, 1, "objectName");

  auto o = std::make_shared<Obj>();
  o->name = name;
  o->envId = EnvId(env);
  uint32_t kernelLogLevel = 0;
  if (info.Length() >= 3 && info[2].IsObject()) {
    Napi::Object opts = info[2].As<Napi::Object>();
    Napi::Value v = opts.Get("btfCustomPath");
    if (v.IsString()) o->btfCustomPath = v.As<Napi::String>().Utf8Value();
    v = opts.Get("logLevel");
    if (v.IsNumber()) o->logLevel = v.As<Napi::Number>().Int32Value();
    v = opts.Get("kernelLogLevel");
    if (v.IsNumber()) {
      int64_t k = v.As<Napi::Number>().Int64Value();
      kernelLogLevel = k < 0 ? 0 : static_cast<uint32_t>(k);
    }
  }

  // Our own copy of the ELF image: the caller's memory may be reused or moved by the GC, and
  // libbpf may refer to the buffer while the object lives.
  o->bytes.assign(data, data + len);

  LogScope scope(o->logLevel);
  LIBBPF_OPTS(bpf_object_open_opts, oo);
  oo.object_name = o->name.empty() ? nullptr : o->name.c_str();
  oo.btf_custom_path = o->btfCustomPath.empty() ? nullptr : o->btfCustomPath.c_str();
  oo.kernel_log_level = kernelLogLevel;
  errno = 0;
  bpf_object* obj = bpf_object__open_mem(o->bytes.data(), o->bytes.size(), &oo);
  if (!obj) {
    int err = errno;
    ThrowErrno(env, "bpf_object__open_mem", err ? err : EINVAL, "object '" + name + "'", scope.Captured());
  }
  o->obj = obj;
  return Napi::Number::New(env, gObjects.Add(std::move(o)));
}

Napi::Value Programs(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  auto o = RequireObj(env, ArgInt(info, 0, "obj"), "programs");
  LOCK_OBJ(o, "programs");
  Napi::Array arr = Napi::Array::New(env);
  uint32_t i = 0;
  bpf_program* p;
  bpf_object__for_each_program(p, o->obj) {
    Napi::Object e = Napi::Object::New(env);
    e.Set("name", Napi::String::New(env, bpf_program__name(p)));
    const char* sec = bpf_program__section_name(p);
    e.Set("section", Napi::String::New(env, sec ? sec : ""));
    e.Set("type", Napi::Number::New(env, static_cast<double>(bpf_program__type(p))));
    e.Set("expectedAttachType", Napi::Number::New(env, static_cast<double>(bpf_program__expected_attach_type(p))));
    arr.Set(i++, e);
  }
  return arr;
}

Napi::Value Maps(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  auto o = RequireObj(env, ArgInt(info, 0, "obj"), "maps");
  LOCK_OBJ(o, "maps");
  Napi::Array arr = Napi::Array::New(env);
  uint32_t i = 0;
  bpf_map* m;
  bpf_object__for_each_map(m, o->obj) {
    Napi::Object e = Napi::Object::New(env);
    e.Set("name", Napi::String::New(env, bpf_map__name(m)));
    e.Set("type", Napi::Number::New(env, static_cast<double>(bpf_map__type(m))));
    e.Set("keySize", Napi::Number::New(env, bpf_map__key_size(m)));
    e.Set("valueSize", Napi::Number::New(env, bpf_map__value_size(m)));
    e.Set("maxEntries", Napi::Number::New(env, bpf_map__max_entries(m)));
    int fd = bpf_map__fd(m);  // libbpf 1.x returns -EINVAL before load
    e.Set("fd", Napi::Number::New(env, fd < 0 ? -1 : fd));
    e.Set("flags", Napi::Number::New(env, bpf_map__map_flags(m)));
    const char* pin = bpf_map__pin_path(m);  // set at open for pinning = LIBBPF_PIN_BY_NAME
    e.Set("pinPath", Napi::String::New(env, pin ? pin : ""));
    arr.Set(i++, e);
  }
  return arr;
}

Napi::Value SetMapType(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  auto o = RequireObj(env, ArgInt(info, 0, "obj"), "setMapType");
  std::string mapName = ArgString(info, 1, "mapName");
  int32_t type = ArgInt(info, 2, "type");
  int32_t keySize = ArgInt(info, 3, "keySize");
  int32_t valueSize = ArgInt(info, 4, "valueSize");
  int32_t maxEntries = ArgInt(info, 5, "maxEntries");
  LOCK_OBJ(o, "setMapType");
  LogScope scope(o->logLevel);
  bpf_map* m = bpf_object__find_map_by_name(o->obj, mapName.c_str());
  if (!m) ThrowErrno(env, "bpf_object__find_map_by_name", ENOENT, "no map '" + mapName + "' in object '" + o->name + "'", scope.Captured());
  std::string what = "map '" + mapName + "'";
  int err;
  if (type >= 0 && (err = bpf_map__set_type(m, static_cast<bpf_map_type>(type))) < 0)
    ThrowErrno(env, "bpf_map__set_type", err, what, scope.Captured());
  if (keySize >= 0 && (err = bpf_map__set_key_size(m, static_cast<__u32>(keySize))) < 0)
    ThrowErrno(env, "bpf_map__set_key_size", err, what, scope.Captured());
  if (valueSize >= 0 && (err = bpf_map__set_value_size(m, static_cast<__u32>(valueSize))) < 0)
    ThrowErrno(env, "bpf_map__set_value_size", err, what, scope.Captured());
  if (maxEntries >= 0 && (err = bpf_map__set_max_entries(m, static_cast<__u32>(maxEntries))) < 0)
    ThrowErrno(env, "bpf_map__set_max_entries", err, what, scope.Captured());
  return env.Undefined();
}

/** setMapPinPath(obj, mapName, path): bpf_map__set_pin_path before load; '' clears it (no reuse, no pin) */
Napi::Value SetMapPinPath(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  auto o = RequireObj(env, ArgInt(info, 0, "obj"), "setMapPinPath");
  std::string mapName = ArgString(info, 1, "mapName");
  std::string path = ArgString(info, 2, "path");
  LOCK_OBJ(o, "setMapPinPath");
  LogScope scope(o->logLevel);
  bpf_map* m = bpf_object__find_map_by_name(o->obj, mapName.c_str());
  if (!m) ThrowErrno(env, "bpf_object__find_map_by_name", ENOENT, "no map '" + mapName + "' in object '" + o->name + "'", scope.Captured());
  int err = bpf_map__set_pin_path(m, path.empty() ? nullptr : path.c_str());
  if (err < 0) ThrowErrno(env, "bpf_map__set_pin_path", err, "map '" + mapName + "'", scope.Captured());
  return env.Undefined();
}

/** setMapFlags(obj, mapName, flags): bpf_map__set_map_flags before load */
Napi::Value SetMapFlags(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  auto o = RequireObj(env, ArgInt(info, 0, "obj"), "setMapFlags");
  std::string mapName = ArgString(info, 1, "mapName");
  uint32_t flags = static_cast<uint32_t>(ArgInt64(info, 2, "flags"));
  LOCK_OBJ(o, "setMapFlags");
  LogScope scope(o->logLevel);
  bpf_map* m = bpf_object__find_map_by_name(o->obj, mapName.c_str());
  if (!m) ThrowErrno(env, "bpf_object__find_map_by_name", ENOENT, "no map '" + mapName + "' in object '" + o->name + "'", scope.Captured());
  int err = bpf_map__set_map_flags(m, flags);
  if (err < 0) ThrowErrno(env, "bpf_map__set_map_flags", err, "map '" + mapName + "'", scope.Captured());
  return env.Undefined();
}

Napi::Value Load(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  auto o = RequireObj(env, ArgInt(info, 0, "obj"), "load");
  LOCK_OBJ(o, "load");
  LogScope scope(o->logLevel);
  int err = bpf_object__load(o->obj);
  if (err < 0) ThrowErrno(env, "bpf_object__load", err, "object '" + o->name + "'", scope.Captured());
  return env.Undefined();
}

Napi::Value Close(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  LogScope scope(LIBBPF_WARN);
  CloseObject(ArgInt(info, 0, "obj"));
  return env.Undefined();
}

}  // namespace wbn
