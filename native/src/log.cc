#include "log.h"

#include <bpf/libbpf.h>
#include <bpf/libbpf_legacy.h>

#include <cerrno>
#include <cstdarg>
#include <cstdio>
#include <mutex>

namespace wbn {

namespace {

// Captured text; `dropped` counts bytes trimmed from the front when the buffer grew too large
// (nobody calling takeLog()), so LogScope positions stay meaningful.
thread_local std::string tlLog;
thread_local uint64_t tlDropped = 0;
thread_local int tlLevel = LIBBPF_WARN;

constexpr size_t kMaxLog = 16u << 20;  // verifier logs can be several MiB

int Print(enum libbpf_print_level level, const char* fmt, va_list ap) {
  if (static_cast<int>(level) > tlLevel) return 0;
  int savedErrno = errno;  // libbpf reads errno after printing in places
  char small[512];
  va_list ap2;
  va_copy(ap2, ap);
  int n = vsnprintf(small, sizeof small, fmt, ap);
  if (n > 0) {
    if (static_cast<size_t>(n) < sizeof small) {
      tlLog.append(small, static_cast<size_t>(n));
    } else {
      size_t old = tlLog.size();
      tlLog.resize(old + static_cast<size_t>(n) + 1);
      vsnprintf(&tlLog[old], static_cast<size_t>(n) + 1, fmt, ap2);
      tlLog.resize(old + static_cast<size_t>(n));
    }
    if (tlLog.size() > kMaxLog) {
      size_t cut = tlLog.size() - kMaxLog / 2;
      tlLog.erase(0, cut);
      tlDropped += cut;
    }
  }
  va_end(ap2);
  errno = savedErrno;
  return 0;
}

std::once_flag installOnce;

}  // namespace

void InstallLibbpfPrint() {
  std::call_once(installOnce, [] {
    libbpf_set_print(Print);
    // Default behaviour of libbpf 1.x already; harmless and explicit.
    libbpf_set_strict_mode(LIBBPF_STRICT_ALL);
  });
}

std::string TakeLog() {
  std::string out;
  out.swap(tlLog);
  tlDropped += out.size();
  return out;
}

LogScope::LogScope(int level) : start_(tlDropped + tlLog.size()), prevLevel_(tlLevel) {
  if (level < LIBBPF_WARN) level = LIBBPF_WARN;
  if (level > LIBBPF_DEBUG) level = LIBBPF_DEBUG;
  tlLevel = level;
}

LogScope::~LogScope() { tlLevel = prevLevel_; }

std::string LogScope::Captured() const {
  uint64_t begin = start_ > tlDropped ? start_ - tlDropped : 0;
  if (begin >= tlLog.size()) return std::string();
  return tlLog.substr(static_cast<size_t>(begin));
}

}  // namespace wbn
