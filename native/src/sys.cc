// perfEventOpen / openPacketSocket / ifIndex / eventFd / closeFd / numPossibleCpus / takeLog / exitNow
#include <arpa/inet.h>
#include <bpf/libbpf.h>
#include <linux/if_ether.h>
#include <linux/perf_event.h>
#include <net/if.h>
#include <netpacket/packet.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "errors.h"
#include "log.h"
#include "util.h"

namespace wbn {

Napi::Value PerfEventOpen(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  uint32_t type = static_cast<uint32_t>(ArgInt64(info, 0, "type"));
  uint64_t config = static_cast<uint64_t>(ArgInt64(info, 1, "config"));
  bool freq = ArgBool(info, 2, "freq");
  uint64_t periodOrFreq = static_cast<uint64_t>(ArgInt64(info, 3, "periodOrFreq"));
  int32_t pid = ArgInt(info, 4, "pid");
  int32_t cpu = ArgInt(info, 5, "cpu");
  perf_event_attr attr;
  memset(&attr, 0, sizeof attr);
  attr.size = sizeof attr;
  attr.type = type;
  attr.config = config;
  if (freq) {
    attr.freq = 1;
    attr.sample_freq = periodOrFreq;
  } else {
    attr.sample_period = periodOrFreq;
  }
  long fd = syscall(__NR_perf_event_open, &attr, pid, cpu, -1, PERF_FLAG_FD_CLOEXEC);
  if (fd < 0) ThrowErrno(env, "perf_event_open", errno);
  return Napi::Number::New(env, static_cast<double>(fd));
}

Napi::Value OpenPacketSocket(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int32_t ifindex = ArgInt(info, 0, "ifindex");
  int fd = socket(AF_PACKET, SOCK_RAW | SOCK_NONBLOCK | SOCK_CLOEXEC, htons(ETH_P_ALL));
  if (fd < 0) ThrowErrno(env, "socket(AF_PACKET)", errno);
  if (ifindex > 0) {
    sockaddr_ll sll;
    memset(&sll, 0, sizeof sll);
    sll.sll_family = AF_PACKET;
    sll.sll_protocol = htons(ETH_P_ALL);
    sll.sll_ifindex = ifindex;
    if (bind(fd, reinterpret_cast<sockaddr*>(&sll), sizeof sll) < 0) {
      int err = errno;
      close(fd);
      ThrowErrno(env, "bind(AF_PACKET)", err, "ifindex " + std::to_string(ifindex));
    }
  }
  return Napi::Number::New(env, fd);
}

Napi::Value IfIndex(const Napi::CallbackInfo& info) {
  std::string name = ArgString(info, 0, "name");
  return Napi::Number::New(info.Env(), if_nametoindex(name.c_str()));  // 0 when unknown
}

Napi::Value EventFd(const Napi::CallbackInfo& info) {
  int fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  if (fd < 0) ThrowErrno(info.Env(), "eventfd", errno);
  return Napi::Number::New(info.Env(), fd);
}

Napi::Value CloseFd(const Napi::CallbackInfo& info) {
  int32_t fd = ArgInt(info, 0, "fd");
  // EINTR after close() still means the descriptor is gone on Linux: don't retry, don't report.
  if (close(fd) < 0 && errno != EINTR) ThrowErrno(info.Env(), "close", errno, "fd " + std::to_string(fd));
  return info.Env().Undefined();
}

// _exit(code): ends the process at once, without joining its threads. process.exit() waits for every
// worker thread to stop, which never happens while a guest's thread does not yield (e.g. a Wasm loop
// of memory.grow, which V8 does not interrupt); the kernel closes the process's descriptors.
Napi::Value ExitNow(const Napi::CallbackInfo& info) {
  int32_t code = ArgInt(info, 0, "code");
  _exit(code & 0xff);
}

Napi::Value NumPossibleCpus(const Napi::CallbackInfo& info) {
  LogScope scope(LIBBPF_WARN);
  int n = libbpf_num_possible_cpus();
  if (n < 0) ThrowErrno(info.Env(), "libbpf_num_possible_cpus", n, "", scope.Captured());
  return Napi::Number::New(info.Env(), n);
}

Napi::Value TakeLogFn(const Napi::CallbackInfo& info) {
  return Napi::String::New(info.Env(), TakeLog());
}

}  // namespace wbn
