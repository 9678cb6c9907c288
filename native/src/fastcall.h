// V8 fast API calls for the two hot entry points (mapOp, bufferPoll).
//
// A function created with a v8::CFunction is called by TurboFan-optimized JavaScript as a plain C
// call: no CallApiCallback, no FunctionCallbackInfo, no N-API argument unpacking. On this VM that is
// 3 ns instead of 45-70 ns per call, about 100 ns of a map lookup once the caches are cold after the
// syscall (bench/ANALYSIS.md). Unoptimized callers, and arguments of other types, go to the slow
// callback, which gives the same results.
//
// Node 20 (V8 11.3) exports the fast-call API (CFunctionInfo, CFunction, FunctionTemplate::New with a
// CFunction) but does not ship v8-fast-api-calls.h, so this header declares the few pieces it needs,
// written from the exported symbols' signatures and V8 11.3's type numbering. They are compiled only
// against V8 11.3 (checked below); on any other V8 the addon registers its plain N-API functions.
#pragma once

#include <node_api.h>

#include <cstddef>
#include <cstdint>
#include <cmath>
#include <cstring>
#include <memory>

#if defined(__has_include)
#if __has_include(<v8-version.h>) && __has_include(<v8.h>)
#include <v8-version.h>
#if V8_MAJOR_VERSION == 11 && V8_MINOR_VERSION == 3 && defined(__x86_64__)
#define WBN_FAST_CALLS 1
#endif
#endif
#endif

#ifndef WBN_FAST_CALLS
#define WBN_FAST_CALLS 0
#endif

#if WBN_FAST_CALLS
#include <v8.h>

// V8 11.3's fast-call types, declared from the node binary's exported symbols (test/native.test.ts
// checks on every run that calls take the fast path and give the slow path's results)
// (v8::CFunctionInfo::CFunctionInfo(CTypeInfo const&, unsigned, CTypeInfo const*),
// v8::CFunction::CFunction(void const*, CFunctionInfo const*)). The constructors are V8's own; the
// storage given to CFunctionInfo is larger than V8 11.3's object (a CTypeInfo, a count, a pointer).
namespace v8 {
class CTypeInfo {
 public:
  // V8 11.3 numbering of CTypeInfo::Type and CTypeInfo::SequenceType
  enum : uint8_t { kVoid = 0, kBool = 1, kUint8 = 2, kInt32 = 3, kUint32 = 4, kInt64 = 5, kUint64 = 6,
                   kFloat32 = 7, kFloat64 = 8, kPointer = 9, kV8Value = 10 };
  enum : uint8_t { kScalar = 0, kIsSequence = 1, kIsTypedArray = 2 };
  uint8_t type;
  uint8_t sequence;
  uint8_t flags;
};
class V8_EXPORT CFunctionInfo {
 public:
  CFunctionInfo(const CTypeInfo& return_info, unsigned int arg_count, const CTypeInfo* arg_info);

 private:
  alignas(8) unsigned char storage_[64];
};
class V8_EXPORT CFunction {
 public:
  CFunction(const void* address, const CFunctionInfo* type_info);

 private:
  const void* address_;
  const CFunctionInfo* type_info_;
};
}  // namespace v8

namespace wbn {

constexpr v8::CTypeInfo kRecv{v8::CTypeInfo::kV8Value, v8::CTypeInfo::kScalar, 0};
constexpr v8::CTypeInfo kI32{v8::CTypeInfo::kInt32, v8::CTypeInfo::kScalar, 0};
constexpr v8::CTypeInfo kI64{v8::CTypeInfo::kInt64, v8::CTypeInfo::kScalar, 0};
constexpr v8::CTypeInfo kF64{v8::CTypeInfo::kFloat64, v8::CTypeInfo::kScalar, 0};
constexpr v8::CTypeInfo kBytes{v8::CTypeInfo::kUint8, v8::CTypeInfo::kIsTypedArray, 0};

// napi_value is Node's handle slot pointer, i.e. a v8::Local's content (node's js_native_api_v8.h
// converts with memcpy the same way)
inline v8::Local<v8::Value> ToLocal(napi_value v) {
  v8::Local<v8::Value> local;
  memcpy(static_cast<void*>(&local), &v, sizeof v);
  return local;
}

/** an integral double in [-2^53, 2^53] as int64, else false (NaN, fractions, huge values) */
inline bool ToInt64(double d, int64_t* out) {
  if (!(d >= -9007199254740992.0 && d <= 9007199254740992.0) || std::trunc(d) != d) return false;
  *out = static_cast<int64_t>(d);
  return true;
}

/** a function whose calls from optimized JavaScript or from Wasm go straight to `fast` */
v8::Local<v8::Function> NewFastFunction(v8::Isolate* isolate, const char* name, v8::FunctionCallback slow,
                                        v8::Local<v8::Value> data, const v8::CFunction* fast, int length);
/** counts a call that took a fast path (FastCallCount) */
void CountFastCall();
/** the running V8 is the major.minor this addon was compiled against */
bool SameV8();

}  // namespace wbn
#endif

namespace wbn {

// The operations behind both the N-API entry points and the fast calls (maps.cc, buffer.cc).
int32_t MapOpCore(uint8_t* mem, size_t len, int32_t cmd, int32_t fd, int64_t keyOff, int64_t valOff, int64_t flags);
int32_t BufferPollCore(int32_t id, int32_t timeoutMs, int32_t wakeFd, uint8_t* out, size_t len);
struct Buf;
/** BufferPollCore on a buffer the caller holds; *full (if given): a record did not fit `out` */
int32_t BufferPollOn(Buf* b, int32_t timeoutMs, int32_t wakeFd, uint8_t* out, size_t len, bool* full);
/** the buffer with that id, or null */
std::shared_ptr<Buf> BufferById(int32_t id);

/** a typed array argument as V8 11.3 hands it to a fast call (FastApiTypedArray<uint8_t>) */
struct FastBytes {
  size_t length;
  void* data;
};

/** Replaces exports[name] with a function that has a fast path. Returns false (and leaves the
 * export alone) when this build has no fast calls. */
bool SetFastMapOp(napi_env env, napi_value exports);
bool SetFastBufferPoll(napi_env env, napi_value exports);
/** guestMapOpen & co. (guestmaps.cc); false without fast calls */
bool SetGuestMapFunctions(napi_env env, napi_value exports);
/** releases the guest map slots a JS environment left open */
void ReleaseGuestMapSlots(uint32_t envId);

/** how many calls took the fast path so far (approximate: counted without atomic read-modify-write) */
double FastCallCount();

}  // namespace wbn
