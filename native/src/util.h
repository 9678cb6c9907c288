// Small argument helpers for the node-addon-api entry points (not used on the hot paths).
#pragma once

#include <napi.h>

#include <cstdint>
#include <memory>
#include <string>

#include "errors.h"
#include "registry.h"

namespace wbn {

inline int32_t ArgInt(const Napi::CallbackInfo& info, size_t i, const char* what) {
  if (i >= info.Length() || !info[i].IsNumber())
    throw Napi::TypeError::New(info.Env(), std::string(what) + " must be a number");
  return info[i].As<Napi::Number>().Int32Value();
}

inline int64_t ArgInt64(const Napi::CallbackInfo& info, size_t i, const char* what) {
  if (i >= info.Length() || !info[i].IsNumber())
    throw Napi::TypeError::New(info.Env(), std::string(what) + " must be a number");
  return info[i].As<Napi::Number>().Int64Value();
}

inline std::string ArgString(const Napi::CallbackInfo& info, size_t i, const char* what) {
  if (i >= info.Length() || !info[i].IsString())
    throw Napi::TypeError::New(info.Env(), std::string(what) + " must be a string");
  return info[i].As<Napi::String>().Utf8Value();
}

inline bool ArgBool(const Napi::CallbackInfo& info, size_t i, const char* what) {
  if (i >= info.Length() || !info[i].IsBoolean())
    throw Napi::TypeError::New(info.Env(), std::string(what) + " must be a boolean");
  return info[i].As<Napi::Boolean>().Value();
}

/** the object behind an id, or throws EBADF naming the id */
inline std::shared_ptr<Obj> RequireObj(Napi::Env env, int32_t id, const char* op) {
  auto o = gObjects.Get(id);
  if (!o) ThrowErrno(env, op, EBADF, "no open bpf object with id " + std::to_string(id));
  return o;
}

/** the buffer behind an id, or throws EBADF */
inline std::shared_ptr<Buf> RequireBuf(Napi::Env env, int32_t id, const char* op) {
  auto b = gBufs.Get(id);
  if (!b) ThrowErrno(env, op, EBADF, "no open buffer with id " + std::to_string(id));
  return b;
}

}  // namespace wbn
