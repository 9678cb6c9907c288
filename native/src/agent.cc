// The uprobe agent's control channel, host side (backends/userspace/attach/channel.ts): a socketpair,
// whole-frame sends with SCM_RIGHTS, and a blocking receive bounded by poll(2), all synchronous.
//   agentSocketpair() -> [hostFd, childFd]; agentSend(fd, frame, fds); agentRecv(fd, out, timeoutMs) -> n
#include <napi.h>
#include <poll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <vector>

#include "errors.h"
#include "util.h"

namespace wbn {

namespace {

int64_t NowMs() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<int64_t>(ts.tv_sec) * 1000 + ts.tv_nsec / 1000000;
}

Napi::Uint8Array BytesArg(const Napi::CallbackInfo& info, size_t i, const char* what) {
  if (i >= info.Length() || !info[i].IsTypedArray() || info[i].As<Napi::TypedArray>().TypedArrayType() != napi_uint8_array)
    throw Napi::TypeError::New(info.Env(), std::string(what) + " must be a Uint8Array");
  return info[i].As<Napi::Uint8Array>();
}

}  // namespace

// agentSocketpair() -> [hostFd, childFd]: AF_UNIX SOCK_STREAM, both close-on-exec
Napi::Value AgentSocketpair(const Napi::CallbackInfo& info) {
  int sv[2];
  if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0) ThrowErrno(info.Env(), "socketpair", errno);
  auto a = Napi::Array::New(info.Env(), 2);
  a.Set(0u, sv[0]);
  a.Set(1u, sv[1]);
  return a;
}

// agentSend(fd, frame, fds): the whole frame (looping on partial writes), fds as SCM_RIGHTS with its first
// bytes; MSG_NOSIGNAL (a closed peer is EPIPE, not SIGPIPE). Throws the errno Error.
Napi::Value AgentSend(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int32_t fd = ArgInt(info, 0, "fd");
  Napi::Uint8Array frame = BytesArg(info, 1, "frame");
  std::vector<int> fds;
  if (info.Length() > 2 && info[2].IsArray()) {
    auto a = info[2].As<Napi::Array>();
    for (uint32_t i = 0; i < a.Length(); i++) {
      Napi::Value v = a.Get(i);
      if (!v.IsNumber()) throw Napi::TypeError::New(env, "fds must be numbers");
      fds.push_back(v.As<Napi::Number>().Int32Value());
    }
  }
  if (fds.size() > 8) ThrowErrno(env, "agentSend", EINVAL, "at most 8 fds per frame");
  const uint8_t* p = frame.Data();
  size_t left = frame.ByteLength();
  std::vector<char> cbuf(CMSG_SPACE(sizeof(int) * (fds.empty() ? 1 : fds.size())));
  bool first = true;
  while (left > 0) {
    iovec iov = {const_cast<uint8_t*>(p), left};
    msghdr mh{};
    mh.msg_iov = &iov;
    mh.msg_iovlen = 1;
    if (first && !fds.empty()) {
      mh.msg_control = cbuf.data();
      mh.msg_controllen = CMSG_SPACE(sizeof(int) * fds.size());
      cmsghdr* c = CMSG_FIRSTHDR(&mh);
      c->cmsg_level = SOL_SOCKET;
      c->cmsg_type = SCM_RIGHTS;
      c->cmsg_len = CMSG_LEN(sizeof(int) * fds.size());
      memcpy(CMSG_DATA(c), fds.data(), sizeof(int) * fds.size());
    }
    ssize_t n = sendmsg(fd, &mh, MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) ThrowErrno(env, "sendmsg", errno, "agent channel fd " + std::to_string(fd));
    first = false;
    p += n;
    left -= static_cast<size_t>(n);
  }
  return env.Undefined();
}

// agentRecv(fd, out, timeoutMs) -> bytes read into out (> 0), 0 at EOF, -ETIMEDOUT when nothing came within
// timeoutMs (0: don't wait; -1: no limit), or -errno. Never throws for the channel's state.
Napi::Value AgentRecv(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int32_t fd = ArgInt(info, 0, "fd");
  Napi::Uint8Array out = BytesArg(info, 1, "out");
  int32_t timeoutMs = ArgInt(info, 2, "timeoutMs");
  int64_t deadline = NowMs() + (timeoutMs > 0 ? timeoutMs : 0);
  for (;;) {
    pollfd pf = {fd, POLLIN, 0};
    int wait = timeoutMs < 0 ? -1 : static_cast<int>(std::max<int64_t>(0, deadline - NowMs()));
    int r = poll(&pf, 1, wait);
    if (r < 0 && errno == EINTR) continue;
    if (r < 0) return Napi::Number::New(env, -errno);
    if (r == 0) return Napi::Number::New(env, -ETIMEDOUT);
    ssize_t n = recv(fd, out.Data(), out.ByteLength(), MSG_DONTWAIT);
    if (n < 0 && (errno == EINTR || errno == EAGAIN)) continue;
    if (n < 0) return Napi::Number::New(env, errno == ECONNRESET ? 0 : -errno);
    return Napi::Number::New(env, static_cast<double>(n));
  }
}

}  // namespace wbn
