// Attaching through the FFI path, as native/src/attach.cc does: each link an id owned by its object
// (closing the object destroys them): libbpf links, XDP by bpf_xdp_attach, sockets by SO_ATTACH_BPF.
import { libbpfApi, type Ptr } from './api.js';
import { linuxApi, uprobeOptsSize } from './linux.js';
import { libcApi } from './libc.js';
import { captureLog } from './log.js';
import { checkPtr, ffiError, checkInt } from './errors.js';
import { requireObject, type FfiObject } from './objects.js';
import { lastErrno } from './libc.js';

const ENOENT = 2;
const EOPNOTSUPP = 95;
const SOL_SOCKET = 1;
const SO_ATTACH_BPF = 50;

type Link =
  | { kind: 'link'; obj: FfiObject; link: bigint }
  | { kind: 'xdp'; obj: FfiObject; ifindex: number; flags: number; progFd: number }
  | { kind: 'socket'; obj: FfiObject; sockFd: number };

const links = new Map<number, Link>();
let nextLink = 1;

function add(l: Link): number {
  const id = nextLink++;
  links.set(id, l);
  l.obj.links.add(id);
  return id;
}

/** the program `prog` of object `id`, with the object's log scope started */
function program(id: number, prog: string, op: string): { o: FfiObject; p: bigint; log: () => string } {
  const o = requireObject(id, op);
  const log = captureLog(o.logLevel);
  const p = libbpfApi().api.bpf_object__find_program_by_name(o.obj, prog);
  if (!p) throw ffiError('bpf_object__find_program_by_name', ENOENT, `no program '${prog}' in object '${o.name}'`, log());
  return { o, p, log };
}

function fromLink(o: FfiObject, ret: Ptr, op: string, prog: string, log: () => string): number {
  return add({ kind: 'link', obj: o, link: checkPtr(ret, op, `program '${prog}'`, log) });
}

export function attachAuto(id: number, prog: string): number {
  const { o, p, log } = program(id, prog, 'attachAuto');
  return fromLink(o, libbpfApi().api.bpf_program__attach(p), 'bpf_program__attach', prog, log);
}

export function attachXdp(id: number, prog: string, ifindex: number, flags: number): number {
  const { o, p, log } = program(id, prog, 'attachXdp');
  if (flags === 0) return fromLink(o, linuxApi().bpf_program__attach_xdp(p, ifindex), 'bpf_program__attach_xdp', prog, log);
  const fd = libbpfApi().api.bpf_program__fd(p);
  checkInt(libbpfApi().api.bpf_xdp_attach(ifindex, fd, flags >>> 0, null), 'bpf_xdp_attach', `program '${prog}'`, log);
  return add({ kind: 'xdp', obj: o, ifindex, flags, progFd: fd });
}

export function attachCgroup(id: number, prog: string, cgroupFd: number): number {
  const { o, p, log } = program(id, prog, 'attachCgroup');
  return fromLink(o, linuxApi().bpf_program__attach_cgroup(p, cgroupFd), 'bpf_program__attach_cgroup', prog, log);
}

export function attachUprobe(id: number, prog: string, retprobe: boolean, pid: number, binaryPath: string, funcName: string, offset: number): number {
  const { o, p, log } = program(id, prog, 'attachUprobe');
  const opts = { sz: uprobeOptsSize(), ref_ctr_offset: 0, bpf_cookie: 0, retprobe, func_name: funcName === '' ? null : funcName };
  return fromLink(o, linuxApi().bpf_program__attach_uprobe_opts(p, pid, binaryPath, offset, opts), 'bpf_program__attach_uprobe_opts', prog, log);
}

export function attachPerfEvent(id: number, prog: string, perfFd: number): number {
  const { o, p, log } = program(id, prog, 'attachPerfEvent');
  return fromLink(o, linuxApi().bpf_program__attach_perf_event(p, perfFd), 'bpf_program__attach_perf_event', prog, log);
}

/** setsockopt(SO_ATTACH_BPF): the link owns sockFd from now on (closed at detach), as the addon's */
export function attachSocket(id: number, prog: string, sockFd: number): number {
  const { o, p, log } = program(id, prog, 'attachSocket');
  const fd = new Int32Array([libbpfApi().api.bpf_program__fd(p)]);
  if (libcApi().setsockopt(sockFd, SOL_SOCKET, SO_ATTACH_BPF, new Uint8Array(fd.buffer), 4) < 0) {
    throw ffiError('setsockopt(SO_ATTACH_BPF)', lastErrno(), `program '${prog}'`, log());
  }
  return add({ kind: 'socket', obj: o, sockFd });
}

/** struct_ops maps registered by a map update (a BPF_F_LINK map needs BPF_LINK_CREATE: the addon's only) */
export function attachStructOps(id: number, mapName: string, link: boolean): number {
  const o = requireObject(id, 'attachStructOps');
  const log = captureLog(o.logLevel);
  if (link) {
    throw ffiError(
      'attachStructOps',
      EOPNOTSUPP,
      `struct_ops map '${mapName}' is declared with BPF_F_LINK, which the FFI libbpf path cannot register (libbpf 1.1 has no call for it): build the native addon (npm rebuild wasm-bpf) or use SEC(".struct_ops") without BPF_F_LINK`,
    );
  }
  const m = libbpfApi().api.bpf_object__find_map_by_name(o.obj, mapName);
  if (!m) throw ffiError('bpf_object__find_map_by_name', ENOENT, `no struct_ops map '${mapName}' in object '${o.name}'`, log());
  return add({ kind: 'link', obj: o, link: checkPtr(linuxApi().bpf_map__attach_struct_ops(m), 'bpf_map__attach_struct_ops', `struct_ops map '${mapName}'`, log) });
}

/** destroys one link; an unknown id (already destroyed, e.g. by its object's close) is a no-op */
export function detach(id: number): void {
  const l = links.get(id);
  if (!l) return;
  const log = captureLog(0);
  links.delete(id);
  l.obj.links.delete(id);
  let err = 0;
  if (l.kind === 'link') err = libbpfApi().api.bpf_link__destroy(l.link);
  else if (l.kind === 'socket') err = libcApi().close(l.sockFd) < 0 ? -lastErrno() : 0;
  else {
    const sz = 16;
    err = libbpfApi().api.bpf_xdp_detach(l.ifindex, l.flags >>> 0, { sz, old_prog_fd: l.progFd });
  }
  if (err < 0) throw ffiError(l.kind === 'socket' ? 'close' : l.kind === 'xdp' ? 'bpf_xdp_detach' : 'bpf_link__destroy', err, `link ${id}`, log());
}
