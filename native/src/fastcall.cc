// V8 fast API calls for mapOp and bufferPoll (see fastcall.h for why and when).
#include "fastcall.h"

#include <cerrno>
#include <cstdio>
#include <cstring>

#if WBN_FAST_CALLS

#include <atomic>

namespace wbn {

namespace {

std::atomic<double> gFastCalls{0};

/** bytes of a Uint8Array / ArrayBuffer / other view (the slow path's argument), or false */
bool BytesOf(v8::Local<v8::Value> v, uint8_t** data, size_t* len) {
  if (v->IsArrayBufferView()) {
    auto view = v.As<v8::ArrayBufferView>();
    auto ab = view->Buffer();
    *data = static_cast<uint8_t*>(ab->Data()) + view->ByteOffset();
    *len = view->ByteLength();
    if (ab->Data() == nullptr) *data = nullptr;
    return true;
  }
  if (v->IsArrayBuffer()) {
    auto ab = v.As<v8::ArrayBuffer>();
    *data = static_cast<uint8_t*>(ab->Data());
    *len = ab->ByteLength();
    return true;
  }
  return false;
}

inline bool ArgI32(const v8::FunctionCallbackInfo<v8::Value>& info, int i, int32_t* out) {
  if (!info[i]->IsNumber()) return false;
  *out = info[i]->Int32Value(info.GetIsolate()->GetCurrentContext()).FromMaybe(0);
  return true;
}

inline bool ArgI64(const v8::FunctionCallbackInfo<v8::Value>& info, int i, int64_t* out) {
  return info[i]->IsNumber() && ToInt64(info[i].As<v8::Number>()->Value(), out);
}

// ---- mapOp(cmd, fd, mem, keyOff, valOff, flags) ------------------------------------------------------

int32_t MapOpFast(v8::Local<v8::Value> /*receiver*/, int32_t cmd, int32_t fd, const FastBytes& mem, double keyOff,
                  double valOff, double flags) {
  CountFastCall();
  int64_t k, v, f;
  if (!ToInt64(keyOff, &k) || !ToInt64(valOff, &v) || !ToInt64(flags, &f)) return -EINVAL;
  return MapOpCore(static_cast<uint8_t*>(mem.data), mem.data ? mem.length : 0, cmd, fd, k, v, f);
}

void MapOpSlow(const v8::FunctionCallbackInfo<v8::Value>& info) {
  int32_t cmd, fd;
  int64_t k, v, f;
  uint8_t* mem = nullptr;
  size_t len = 0;
  int32_t r = -EINVAL;
  if (info.Length() >= 6 && ArgI32(info, 0, &cmd) && ArgI32(info, 1, &fd) && BytesOf(info[2], &mem, &len) &&
      ArgI64(info, 3, &k) && ArgI64(info, 4, &v) && ArgI64(info, 5, &f))
    r = MapOpCore(mem, len, cmd, fd, k, v, f);
  info.GetReturnValue().Set(r);
}

// ---- bufferPoll(buf, timeoutMs, wakeFd, out) ---------------------------------------------------------

int32_t BufferPollFast(v8::Local<v8::Value> /*receiver*/, int32_t id, int32_t timeoutMs, int32_t wakeFd,
                       const FastBytes& out) {
  CountFastCall();
  return BufferPollCore(id, timeoutMs, wakeFd, static_cast<uint8_t*>(out.data), out.data ? out.length : 0);
}

void BufferPollSlow(const v8::FunctionCallbackInfo<v8::Value>& info) {
  int32_t id, timeoutMs, wakeFd;
  uint8_t* out = nullptr;
  size_t len = 0;
  int32_t r = -EINVAL;
  if (info.Length() >= 4 && ArgI32(info, 0, &id) && ArgI32(info, 1, &timeoutMs) && ArgI32(info, 2, &wakeFd) &&
      BytesOf(info[3], &out, &len))
    r = BufferPollCore(id, timeoutMs, wakeFd, out, len);
  info.GetReturnValue().Set(r);
}

const v8::CFunction* MapOpCFunction() {
  static const v8::CTypeInfo args[] = {kRecv, kI32, kI32, kBytes, kF64, kF64, kF64};
  static const v8::CFunctionInfo info(kI32, 7, args);
  static const v8::CFunction fn(reinterpret_cast<const void*>(&MapOpFast), &info);
  return &fn;
}

const v8::CFunction* BufferPollCFunction() {
  static const v8::CTypeInfo args[] = {kRecv, kI32, kI32, kI32, kBytes};
  static const v8::CFunctionInfo info(kI32, 5, args);
  static const v8::CFunction fn(reinterpret_cast<const void*>(&BufferPollFast), &info);
  return &fn;
}

bool SetFast(napi_env /*env*/, napi_value exports, const char* name, v8::FunctionCallback slow,
             const v8::CFunction* fast, int length) {
  v8::Isolate* isolate = v8::Isolate::GetCurrent();
  if (!isolate || !SameV8()) return false;
  v8::Local<v8::Context> context = isolate->GetCurrentContext();
  v8::Local<v8::Function> fn = NewFastFunction(isolate, name, slow, v8::Local<v8::Value>(), fast, length);
  if (fn.IsEmpty()) return false;
  return ToLocal(exports).As<v8::Object>()->Set(context, fn->GetName(), fn).FromMaybe(false);
}

}  // namespace

bool SameV8() {
  // the declarations in fastcall.h are V8 11.3's: a node running another V8 than the one this addon
  // was built against (upgraded without `npm install`) keeps the plain N-API functions
  static const bool same = [] {
    char built[32];
    snprintf(built, sizeof built, "%d.%d.", V8_MAJOR_VERSION, V8_MINOR_VERSION);
    return strncmp(v8::V8::GetVersion(), built, strlen(built)) == 0;
  }();
  return same;
}

v8::Local<v8::Function> NewFastFunction(v8::Isolate* isolate, const char* name, v8::FunctionCallback slow,
                                        v8::Local<v8::Value> data, const v8::CFunction* fast, int length) {
  v8::Local<v8::Context> context = isolate->GetCurrentContext();
  v8::Local<v8::FunctionTemplate> tmpl =
      v8::FunctionTemplate::New(isolate, slow, data, v8::Local<v8::Signature>(), length,
                                v8::ConstructorBehavior::kThrow, v8::SideEffectType::kHasSideEffect, fast);
  v8::Local<v8::Function> fn;
  v8::Local<v8::String> key;
  if (!tmpl->GetFunction(context).ToLocal(&fn) || !v8::String::NewFromUtf8(isolate, name).ToLocal(&key)) return {};
  fn->SetName(key);
  return fn;
}

void CountFastCall() { gFastCalls.store(gFastCalls.load(std::memory_order_relaxed) + 1, std::memory_order_relaxed); }

bool SetFastMapOp(napi_env env, napi_value exports) { return SetFast(env, exports, "mapOp", MapOpSlow, MapOpCFunction(), 6); }
bool SetFastBufferPoll(napi_env env, napi_value exports) {
  return SetFast(env, exports, "bufferPoll", BufferPollSlow, BufferPollCFunction(), 4);
}
double FastCallCount() { return gFastCalls.load(std::memory_order_relaxed); }

}  // namespace wbn

#else  // no fast calls in this build: the plain N-API functions stay registered

namespace wbn {
bool SetFastMapOp(napi_env, napi_value) { return false; }
bool SetFastBufferPoll(napi_env, napi_value) { return false; }
double FastCallCount() { return 0; }
}  // namespace wbn

#endif
