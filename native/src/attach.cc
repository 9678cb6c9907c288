// attachAuto / attachXdp / attachCgroup / attachUprobe / attachPerfEvent / attachSocket / detach
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <linux/if_link.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "errors.h"
#include "log.h"
#include "registry.h"
#include "util.h"

#ifndef SO_ATTACH_BPF
#define SO_ATTACH_BPF 50
#endif

namespace wbn {

namespace {
// enum bpf_attach_type's BPF_STRUCT_OPS (Linux 6.4; the build's uapi headers may predate it)
constexpr int kBpfStructOpsAttach = 44;
}  // namespace

int Link::Destroy() {
  if (destroyed) return 0;
  destroyed = true;
  int err = 0;
  switch (kind) {
    case kBpfLink:
      if (link) err = bpf_link__destroy(link);
      link = nullptr;
      break;
    case kSocket:
      if (sockFd >= 0 && close(sockFd) < 0 && errno != EINTR) err = -errno;
      sockFd = -1;
      break;
    case kStructOps:
      if (linkFd >= 0) {
        // the registration is the link's: closing it unregisters (as the process's death would)
        if (close(linkFd) < 0 && errno != EINTR) err = -errno;
        linkFd = -1;
        if (link) {
          bpf_link__disconnect(link);  // libbpf's detach would delete the map's element: nothing to undo
          bpf_link__destroy(link);
        }
      } else if (link) {
        err = bpf_link__destroy(link);  // deletes the map's element: unregisters
      }
      link = nullptr;
      break;
    case kXdp: {
      // Only detach if our program is still the one attached in that mode.
      LIBBPF_OPTS(bpf_xdp_attach_opts, xo, .old_prog_fd = progFd);
      uint32_t f = (xdpFlags & XDP_FLAGS_MODES) | XDP_FLAGS_REPLACE;
      err = bpf_xdp_detach(ifindex, f, &xo);
      break;
    }
  }
  return err;
}

namespace {

/** Runs `attach` on the named program of a loaded object and registers the resulting link. */
template <class F>
Napi::Value DoAttach(const Napi::CallbackInfo& info, const char* what, F&& attach) {
  Napi::Env env = info.Env();
  int32_t objId = ArgInt(info, 0, "obj");
  std::string progName = ArgString(info, 1, "prog");
  auto o = RequireObj(env, objId, what);
  std::lock_guard<std::mutex> lock(o->mu);
  if (o->closed || !o->obj) ThrowErrno(env, what, EBADF, "bpf object is closed");
  LogScope scope(o->logLevel);
  bpf_program* prog = bpf_object__find_program_by_name(o->obj, progName.c_str());
  if (!prog)
    ThrowErrno(env, "bpf_object__find_program_by_name", ENOENT,
               "no program '" + progName + "' in object '" + o->name + "'", scope.Captured());
  auto link = std::make_shared<Link>();
  link->objId = objId;
  link->envId = EnvId(env);
  std::string op;
  int err = attach(prog, *link, op);  // fills link; returns 0 or -errno
  if (err < 0) {
    link->destroyed = true;  // nothing to undo
    ThrowErrno(env, op, err, "program '" + progName + "'", scope.Captured());
  }
  return Napi::Number::New(env, gLinks.Add(std::move(link)));
}

/** for the libbpf attach functions returning a bpf_link* (NULL + errno on failure) */
int FromLink(bpf_link* l, Link& link) {
  if (!l) {
    int err = errno;
    return err > 0 ? -err : -EINVAL;
  }
  link.kind = Link::kBpfLink;
  link.link = l;
  return 0;
}

}  // namespace

Napi::Value AttachAuto(const Napi::CallbackInfo& info) {
  return DoAttach(info, "attachAuto", [](bpf_program* prog, Link& link, std::string& op) {
    op = "bpf_program__attach";
    errno = 0;
    return FromLink(bpf_program__attach(prog), link);
  });
}

Napi::Value AttachXdp(const Napi::CallbackInfo& info) {
  int32_t ifindex = ArgInt(info, 2, "ifindex");
  uint32_t flags = static_cast<uint32_t>(ArgInt64(info, 3, "flags"));
  return DoAttach(info, "attachXdp", [&](bpf_program* prog, Link& link, std::string& op) {
    if (flags == 0) {
      op = "bpf_program__attach_xdp";
      errno = 0;
      return FromLink(bpf_program__attach_xdp(prog, ifindex), link);
    }
    // libbpf 1.1's attach_xdp takes no flags: netlink attach, detached by the pseudo link.
    op = "bpf_xdp_attach";
    int fd = bpf_program__fd(prog);
    if (fd < 0) return fd;
    int err = bpf_xdp_attach(ifindex, fd, flags, nullptr);
    if (err < 0) return err;
    link.kind = Link::kXdp;
    link.ifindex = ifindex;
    link.xdpFlags = flags;
    link.progFd = fd;
    return 0;
  });
}

Napi::Value AttachCgroup(const Napi::CallbackInfo& info) {
  int32_t cgroupFd = ArgInt(info, 2, "cgroupFd");
  return DoAttach(info, "attachCgroup", [&](bpf_program* prog, Link& link, std::string& op) {
    op = "bpf_program__attach_cgroup";
    errno = 0;
    return FromLink(bpf_program__attach_cgroup(prog, cgroupFd), link);
  });
}

Napi::Value AttachUprobe(const Napi::CallbackInfo& info) {
  bool retprobe = ArgBool(info, 2, "retprobe");
  int32_t pid = ArgInt(info, 3, "pid");
  std::string binaryPath = ArgString(info, 4, "binaryPath");
  std::string funcName = ArgString(info, 5, "funcName");
  int64_t offset = ArgInt64(info, 6, "offset");
  return DoAttach(info, "attachUprobe", [&](bpf_program* prog, Link& link, std::string& op) {
    op = "bpf_program__attach_uprobe_opts";
    LIBBPF_OPTS(bpf_uprobe_opts, uo);
    uo.retprobe = retprobe;
    uo.func_name = funcName.empty() ? nullptr : funcName.c_str();
    errno = 0;
    return FromLink(bpf_program__attach_uprobe_opts(prog, pid, binaryPath.c_str(),
                                                    static_cast<size_t>(offset < 0 ? 0 : offset), &uo),
                    link);
  });
}

Napi::Value AttachPerfEvent(const Napi::CallbackInfo& info) {
  int32_t perfFd = ArgInt(info, 2, "perfFd");
  return DoAttach(info, "attachPerfEvent", [&](bpf_program* prog, Link& link, std::string& op) {
    op = "bpf_program__attach_perf_event";
    errno = 0;
    return FromLink(bpf_program__attach_perf_event(prog, perfFd), link);
  });
}

Napi::Value AttachSocket(const Napi::CallbackInfo& info) {
  int32_t sockFd = ArgInt(info, 2, "sockFd");
  return DoAttach(info, "attachSocket", [&](bpf_program* prog, Link& link, std::string& op) {
    op = "setsockopt(SO_ATTACH_BPF)";
    int fd = bpf_program__fd(prog);
    if (fd < 0) return fd;
    if (setsockopt(sockFd, SOL_SOCKET, SO_ATTACH_BPF, &fd, sizeof fd) < 0) return -errno;
    link.kind = Link::kSocket;
    link.sockFd = sockFd;  // owned from now on
    return 0;
  });
}

// attachStructOps(obj, mapName, link): registers a struct_ops map (e.g. a tcp_congestion_ops) with its
// programs. link = true: the map was created with BPF_F_LINK (Linux 6.4+); the update only prepares
// it and a BPF_LINK_CREATE (attach type BPF_STRUCT_OPS) registers it, so that closing the link fd,
// whoever closes it (detach, close(obj), the process's death), unregisters it.
Napi::Value AttachStructOps(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int32_t objId = ArgInt(info, 0, "obj");
  std::string mapName = ArgString(info, 1, "map");
  bool useLink = ArgBool(info, 2, "link");
  auto o = RequireObj(env, objId, "attachStructOps");
  std::lock_guard<std::mutex> lock(o->mu);
  if (o->closed || !o->obj) ThrowErrno(env, "attachStructOps", EBADF, "bpf object is closed");
  LogScope scope(o->logLevel);
  bpf_map* m = bpf_object__find_map_by_name(o->obj, mapName.c_str());
  if (!m || bpf_map__type(m) != BPF_MAP_TYPE_STRUCT_OPS)
    ThrowErrno(env, "bpf_object__find_map_by_name", ENOENT, "no struct_ops map '" + mapName + "' in object '" + o->name + "'",
               scope.Captured());
  auto link = std::make_shared<Link>();
  link->objId = objId;
  link->envId = EnvId(env);
  link->kind = Link::kStructOps;
  errno = 0;
  bpf_link* l = bpf_map__attach_struct_ops(m);  // writes the program fds into the value, updates the map
  if (!l) {
    int err = errno;
    link->destroyed = true;
    ThrowErrno(env, "bpf_map__attach_struct_ops", err > 0 ? err : EINVAL, "struct_ops map '" + mapName + "'", scope.Captured());
  }
  link->link = l;
  if (useLink) {
    union bpf_attr attr;
    memset(&attr, 0, sizeof attr);
    attr.link_create.prog_fd = static_cast<uint32_t>(bpf_map__fd(m));  // link_create.map_fd for BPF_STRUCT_OPS
    attr.link_create.attach_type = static_cast<bpf_attach_type>(kBpfStructOpsAttach);
    int fd = static_cast<int>(syscall(__NR_bpf, BPF_LINK_CREATE, &attr, sizeof attr));
    if (fd < 0) {
      int err = errno;
      link->Destroy();
      ThrowErrno(env, "BPF_LINK_CREATE (BPF_STRUCT_OPS)", err, "struct_ops map '" + mapName + "'", scope.Captured());
    }
    link->linkFd = fd;
  }
  return Napi::Number::New(env, gLinks.Add(std::move(link)));
}

Napi::Value Detach(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int32_t id = ArgInt(info, 0, "link");
  auto link = gLinks.Remove(id);
  if (!link) return env.Undefined();  // unknown / already destroyed (e.g. by close(obj)): no-op
  LogScope scope(LIBBPF_WARN);
  int err = link->Destroy();
  if (err < 0) ThrowErrno(env, "bpf_link__destroy", err, "link " + std::to_string(id), scope.Captured());
  return env.Undefined();
}

}  // namespace wbn
