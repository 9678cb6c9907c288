// libbpf print capture. libbpf's print callback is process-global; messages are appended to a
// thread_local buffer (each JS thread — main or worker — has its own), filtered by the level
// that the current call set (the object's open() logLevel; warnings only otherwise).
#pragma once

#include <cstdint>
#include <string>

namespace wbn {

/** Installs the libbpf print callback (once per process). */
void InstallLibbpfPrint();

/** Returns and clears this thread's captured log. */
std::string TakeLog();

/** For the duration of one native call: sets the capture level and remembers where its log starts. */
class LogScope {
 public:
  explicit LogScope(int level);
  ~LogScope();
  LogScope(const LogScope&) = delete;
  LogScope& operator=(const LogScope&) = delete;
  /** what libbpf printed since this scope began (on this thread) */
  std::string Captured() const;

 private:
  uint64_t start_;
  int prevLevel_;
};

}  // namespace wbn
