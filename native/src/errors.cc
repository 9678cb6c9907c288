#include "errors.h"

#include <bpf/libbpf.h>
#include <string.h>

namespace wbn {

namespace {
// libbpf's private error numbers (enum libbpf_errno, 4000...), unknown to glibc
const char* const kLibbpfNames[] = {"LIBELF", "FORMAT", "KVERSION", "ENDIAN", "INTERNAL", "RELOC", "LOAD",
                                    "VERIFY", "PROG2BIG", "KVER", "PROGTYPE", "WRNGPID", "INVSEQ", "NLPARSE"};
constexpr int kLibbpfFirst = 4000;
constexpr int kLibbpfCount = sizeof kLibbpfNames / sizeof kLibbpfNames[0];
}  // namespace

// Kernel-internal errnos (include/linux/errno.h) that bpf() returns but libc does not know.
struct KernelErrno {
  int err;
  const char* name;
  const char* desc;
};
constexpr KernelErrno kKernelErrnos[] = {
    {512, "ERESTARTSYS", "Interrupted, restart the call"},
    {524, "ENOTSUPP", "Operation not supported by this kernel (kernel-internal ENOTSUPP)"},
    {525, "ETOOSMALL", "Buffer or request too small"},
};
const KernelErrno* KernelErr(int err) {
  for (const auto& k : kKernelErrnos)
    if (k.err == err) return &k;
  return nullptr;
}

std::string ErrnoName(int err) {
  if (err < 0) err = -err;
  const char* name = strerrorname_np(err);  // glibc >= 2.32
  if (name) return name;
  if (const KernelErrno* k = KernelErr(err)) return k->name;
  if (err >= kLibbpfFirst && err < kLibbpfFirst + kLibbpfCount)
    return std::string("LIBBPF_ERRNO__") + kLibbpfNames[err - kLibbpfFirst];
  return "E" + std::to_string(err);
}

std::string ErrnoDesc(int err) {
  if (err < 0) err = -err;
  const char* desc = strerrordesc_np(err);  // thread-safe, unlike strerror()
  if (desc) return desc;
  if (const KernelErrno* k = KernelErr(err)) return k->desc;
  if (err >= kLibbpfFirst) {
    char buf[128];
    if (libbpf_strerror(err, buf, sizeof buf) == 0) return buf;
  }
  return "Unknown error " + std::to_string(err);
}

static std::string Message(const std::string& op, int err, const std::string& detail) {
  std::string msg = op;
  msg += ": ";
  if (!detail.empty()) {
    msg += detail;
    msg += ": ";
  }
  msg += ErrnoDesc(err);
  msg += " (";
  msg += ErrnoName(err);
  msg += ")";
  return msg;
}

Napi::Error MakeErrnoError(Napi::Env env, const std::string& op, int err, const std::string& detail,
                           const std::string& log) {
  if (err < 0) err = -err;
  if (err == 0) err = EIO;  // a failure without errno: report something truthful-ish rather than 0
  Napi::Error e = Napi::Error::New(env, Message(op, err, detail));
  Napi::Object o = e.Value();
  o.Set("errno", Napi::Number::New(env, err));
  o.Set("code", Napi::String::New(env, ErrnoName(err)));
  o.Set("op", Napi::String::New(env, op));
  o.Set("log", Napi::String::New(env, log));
  return e;
}

void ThrowErrno(Napi::Env env, const std::string& op, int err, const std::string& detail, const std::string& log) {
  throw MakeErrnoError(env, op, err, detail, log);
}

void ThrowErrnoRaw(napi_env env, const std::string& op, int err, const std::string& detail) {
  if (err < 0) err = -err;
  if (err == 0) err = EIO;
  napi_value msg, code, error, num, opv, logv;
  std::string name = ErrnoName(err);
  std::string text = Message(op, err, detail);
  napi_create_string_utf8(env, text.c_str(), text.size(), &msg);
  napi_create_string_utf8(env, name.c_str(), name.size(), &code);
  napi_create_error(env, nullptr, msg, &error);
  napi_create_int32(env, err, &num);
  napi_create_string_utf8(env, op.c_str(), op.size(), &opv);
  napi_create_string_utf8(env, "", 0, &logv);
  napi_set_named_property(env, error, "errno", num);
  napi_set_named_property(env, error, "code", code);
  napi_set_named_property(env, error, "op", opv);
  napi_set_named_property(env, error, "log", logv);
  napi_throw(env, error);
}

}  // namespace wbn
