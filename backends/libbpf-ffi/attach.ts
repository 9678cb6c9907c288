// Attaching through the FFI path, as native/src/attach.cc does: each link an id owned by its object
// (closing the object destroys them): libbpf links, XDP by bpf_xdp_attach, sockets by SO_ATTACH_BPF.
import { libbpfApi, type Ptr } from './api.js';
import { linuxApi, uprobeOptsSize } from './linux.js';
import { libcApi } from './libc.js';
import { captureLog } from './log.js';
import { checkPtr, ffiError, checkInt } from './errors.js';
import { requireObject, type FfiObject } from './objects.js';
import { lastErrno } from './libc.js';
import { ERRNO } from '../../src/kernel/uapi.js';

const { ENOENT } = ERRNO;

const MAP_TYPE_STRUCT_OPS = 26;
/** BPF_STRUCT_OPS in enum bpf_attach_type */
const ATTACH_STRUCT_OPS = 44;
const SOL_SOCKET = 1;
const SO_ATTACH_BPF = 50;

type Link =
  | { kind: 'link'; obj: FfiObject; link: bigint }
  | { kind: 'xdp'; obj: FfiObject; ifindex: number; flags: number; progFd: number }
  | { kind: 'socket'; obj: FfiObject; sockFd: number }
  /** a struct_ops map registered through a BPF link (BPF_F_LINK): closing linkFd unregisters it */
  | { kind: 'structops'; obj: FfiObject; link: bigint; linkFd: number };

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

/**
 * Registers a struct_ops map (bpf_map__attach_struct_ops writes the program fds into its value); a map
 * declared with BPF_F_LINK then gets its BPF link, whose fd holds the registration, as the addon does.
 */
export function attachStructOps(id: number, mapName: string, link: boolean): number {
  const o = requireObject(id, 'attachStructOps');
  const log = captureLog(o.logLevel);
  const { api } = libbpfApi();
  const m = api.bpf_object__find_map_by_name(o.obj, mapName);
  if (!m || api.bpf_map__type(m) !== MAP_TYPE_STRUCT_OPS) throw ffiError('bpf_object__find_map_by_name', ENOENT, `no struct_ops map '${mapName}' in object '${o.name}'`, log());
  const l = checkPtr(linuxApi().bpf_map__attach_struct_ops(m), 'bpf_map__attach_struct_ops', `struct_ops map '${mapName}'`, log);
  if (!link) return add({ kind: 'link', obj: o, link: l });
  // BPF_LINK_CREATE with the map's fd in prog_fd's place (link_create.map_fd for BPF_STRUCT_OPS)
  const fd = linuxApi().bpf_link_create(api.bpf_map__fd(m), 0, ATTACH_STRUCT_OPS, null);
  if (fd < 0) {
    api.bpf_link__destroy(l);
    throw ffiError('BPF_LINK_CREATE (BPF_STRUCT_OPS)', fd, `struct_ops map '${mapName}'`, log());
  }
  return add({ kind: 'structops', obj: o, link: l, linkFd: fd });
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
  else if (l.kind === 'structops') {
    // the registration is the link's: closing it unregisters (as the process's death would); libbpf's own
    // detach would delete the map's element, nothing to undo once the link is gone
    err = libcApi().close(l.linkFd) < 0 && lastErrno() !== 4 ? -lastErrno() : 0;
    linuxApi().bpf_link__disconnect(l.link);
    libbpfApi().api.bpf_link__destroy(l.link);
  }
  else if (l.kind === 'socket') err = libcApi().close(l.sockFd) < 0 ? -lastErrno() : 0;
  else {
    const sz = 16;
    err = libbpfApi().api.bpf_xdp_detach(l.ifindex, l.flags >>> 0, { sz, old_prog_fd: l.progFd });
  }
  if (err < 0) throw ffiError(l.kind === 'socket' || l.kind === 'structops' ? 'close' : l.kind === 'xdp' ? 'bpf_xdp_detach' : 'bpf_link__destroy', err, `link ${id}`, log());
}
