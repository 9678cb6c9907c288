// Error reporting: every failing native call throws a JS Error carrying
// { errno (positive), code ('EPERM'), op (libbpf operation), log (libbpf log of this call) }.
#pragma once

#include <napi.h>

#include <string>

namespace wbn {

/** 'EPERM', 'EINVAL', ... ('E<n>' for unknown values) */
std::string ErrnoName(int err);

/** "No such file or directory", ... */
std::string ErrnoDesc(int err);

/**
 * Builds the Error: message "<op>: <detail>: <desc> (<CODE>)" (": <detail>" omitted when empty).
 * err may be given positive or negative.
 */
Napi::Error MakeErrnoError(Napi::Env env, const std::string& op, int err, const std::string& detail,
                           const std::string& log);

/** throw MakeErrnoError(...) (C++ exception, turned into a JS exception by node-addon-api) */
[[noreturn]] void ThrowErrno(Napi::Env env, const std::string& op, int err, const std::string& detail = "",
                             const std::string& log = "");

/** Raw N-API variant (used by the functions registered without node-addon-api's wrapper). */
void ThrowErrnoRaw(napi_env env, const std::string& op, int err, const std::string& detail);

}  // namespace wbn
