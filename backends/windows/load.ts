// The Windows backend's load path, on the one binding interface (./ebpfapi.ts): an object translated for
// eBPF for Windows (./translate) opened from memory, the translation's map edits applied, loaded (JIT
// mode, host maps created first); or, when the bytes are a PE image (a bpf2c driver, .sys), loaded in native mode through
// ebpf_object_load_native_by_fds. Programs attach by their hook: XDP by interface name (its index),
// sock_ops and sock_addr (and bind) through bpf_prog_attach with Windows' attach types. Ring and perf
// buffers are read through ring_buffer__poll / perf_buffer__poll into the ABI's record framing
// (src/records.ts). Everything the run created is released by close(), links first.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { BackendError } from '../../src/errors.js';
import { ERRNO } from '../../src/kernel/uapi.js';
import { WIN_ATTACH_TYPE, WIN_PROG_TYPE } from '../../src/kernel/ebpf-windows.js';
import { recordView, writeRecord } from '../../src/records.js';
import type { RecordSource } from '../backend.js';
import type { EbpfBinding, Handle, MapDef } from './ebpfapi.js';
import type { Translation } from './translate/index.js';

const { ENOENT, ENODEV, EINVAL, ENOBUFS, EINTR, EOPNOTSUPP, EBADF } = ERRNO;

/** how a program attaches: XDP to an interface, or bpf_prog_attach with an attach type */
export type Hook = { kind: 'xdp' } | { kind: 'prog'; attachType: number };

export interface LoadPlan {
  /** the object's name (messages, the native driver's file name) */
  name: string;
  /** the translated ELF, or a PE image (native mode) */
  bytes: Uint8Array;
  /** JIT mode: each program's hook, by name */
  programs: ReadonlyArray<{ name: string; hook: Hook }>;
  /** JIT mode: maps whose definition changes before the load */
  retype?: ReadonlyArray<MapDef & { name: string }>;
  /** JIT mode: maps the backend creates, their fd written at each offset of `fdAt` in the bytes (src/object/edits.ts) */
  hostMaps?: ReadonlyArray<MapDef & { name: string; fdAt: readonly number[] }>;
}

/** A failed binding call: what was done, the errno, and the binding's name. */
export class WindowsBackendError extends BackendError {
  readonly op: string;
  constructor(op: string, errno: number, detail: string, library: string) {
    super(`${op}: ${detail} (errno ${errno}, ${library})`, errno, '', undefined, { code: errno === EOPNOTSUPP ? 'UNSUPPORTED' : errno === ENOENT || errno === ENODEV ? 'NOT_FOUND' : 'BACKEND' });
    this.name = 'WindowsBackendError';
    this.op = op;
  }
}

/** a bpf2c driver: the bytes start with a DOS header ("MZ") whose e_lfanew points at "PE\0\0" */
export function isPeImage(bytes: Uint8Array): boolean {
  if (bytes.length < 0x40 || bytes[0] !== 0x4d || bytes[1] !== 0x5a) return false;
  const lfanew = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength).getUint32(0x3c, true);
  return lfanew + 4 <= bytes.length && bytes[lfanew] === 0x50 && bytes[lfanew + 1] === 0x45 && bytes[lfanew + 2] === 0 && bytes[lfanew + 3] === 0;
}

/** the hook of a Windows program type (+ attach type for sock_addr), or why it has none */
export function windowsHook(progType: number, attachType: number): Hook | string {
  if (progType === WIN_PROG_TYPE.XDP) return { kind: 'xdp' };
  if (progType === WIN_PROG_TYPE.SOCK_OPS) return { kind: 'prog', attachType: WIN_ATTACH_TYPE.CGROUP_SOCK_OPS };
  if (progType === WIN_PROG_TYPE.BIND) return { kind: 'prog', attachType: WIN_ATTACH_TYPE.BIND };
  if (progType === WIN_PROG_TYPE.CGROUP_SOCK_ADDR) {
    return attachType >= WIN_ATTACH_TYPE.CGROUP_INET4_CONNECT && attachType <= WIN_ATTACH_TYPE.CGROUP_INET6_RECV_ACCEPT
      ? { kind: 'prog', attachType }
      : 'a sock_addr program needs its hook: connect4, connect6, recv_accept4 or recv_accept6';
  }
  return `Windows program type ${progType} has no hook this backend attaches`;
}

/** sock_addr hooks by name (native mode: the attach target names the hook; the driver does not say) */
const SOCK_ADDR_HOOKS: Readonly<Record<string, number>> = {
  connect4: WIN_ATTACH_TYPE.CGROUP_INET4_CONNECT,
  connect6: WIN_ATTACH_TYPE.CGROUP_INET6_CONNECT,
  recv_accept4: WIN_ATTACH_TYPE.CGROUP_INET4_RECV_ACCEPT,
  recv_accept6: WIN_ATTACH_TYPE.CGROUP_INET6_RECV_ACCEPT,
};

/** The load plan of an accepted translation (JIT mode). */
export function planFromTranslation(name: string, t: Translation): LoadPlan {
  if (!t.accepted) throw new WindowsBackendError('translate', EOPNOTSUPP, `object '${name}' does not translate for Windows: ${t.refusals.map((r) => `${r.subject}: ${r.reason}`).join('; ')}`, 'translate');
  const programs = t.programs.map((p) => {
    const hook = windowsHook(p.windows.progType, p.windows.attachType);
    if (typeof hook === 'string') throw new WindowsBackendError('plan', EOPNOTSUPP, `program '${p.name}': ${hook}`, 'translate');
    return { name: p.name, hook };
  });
  const retype = (t.edits?.retype ?? []).map((r) => ({ name: r.name, type: r.type, keySize: r.keySize, valueSize: r.valueSize, maxEntries: r.maxEntries }));
  const hostMaps = (t.edits?.hostMaps ?? []).map((m) => ({ name: m.name, type: m.type, keySize: m.keySize, valueSize: m.valueSize, maxEntries: m.maxEntries, fdAt: m.fdAt }));
  return { name, bytes: t.bytes, programs, retype, hostMaps };
}

interface Program {
  fd: number;
  /** JIT mode: from the plan; native mode: from the driver's program type (sock_addr waits for the target) */
  hook: Hook | string;
  /** native mode: the Windows program type */
  type?: number;
}

type Link = { kind: 'xdp'; ifindex: number } | { kind: 'prog'; fd: number; target: number; attachType: number };

/** One loaded object on the binding: its programs, its links, its record readers. */
export class WindowsObject {
  readonly mode: 'jit' | 'native';
  private obj: Handle | undefined;
  private readonly programs = new Map<string, Program>();
  private readonly links: Link[] = [];
  private readonly readers = new Set<WindowsRecords>();
  /** fds the object's run owns: host maps (JIT mode), the driver's maps and programs (native mode) */
  private readonly ownFds: number[] = [];
  private sysFile: string | undefined;
  private closed = false;

  private constructor(private readonly b: EbpfBinding, private readonly plan: LoadPlan) {
    this.mode = isPeImage(plan.bytes) ? 'native' : 'jit';
  }

  /** Opens, edits and loads the object (or its driver); on failure nothing it created is left. */
  static load(b: EbpfBinding, plan: LoadPlan): WindowsObject {
    const o = new WindowsObject(b, plan);
    try {
      if (o.mode === 'native') o.loadNative();
      else o.loadJit();
    } catch (err) {
      o.close();
      throw err;
    }
    return o;
  }

  private fail(op: string, r: number, detail: string): never {
    throw new WindowsBackendError(op, -r, detail, this.b.library);
  }

  private loadJit(): void {
    const { b, plan } = this;
    let bytes = plan.bytes;
    if (plan.hostMaps?.length) {
      bytes = new Uint8Array(plan.bytes);
      const dv = new DataView(bytes.buffer);
      for (const m of plan.hostMaps) {
        const fd = b.mapCreate(m);
        if (fd < 0) this.fail('bpf_map_create', fd, `map '${m.name}' for '${plan.name}'`);
        this.ownFds.push(fd);
        for (const at of m.fdAt) {
          if (!Number.isInteger(at) || at < 0 || at + 4 > bytes.length) this.fail('bpf_map_create', -EINVAL, `map '${m.name}': fd offset ${at} is outside the object`);
          dv.setInt32(at, fd, true);
        }
      }
    }
    const obj = b.objectOpenMem(bytes, plan.name);
    if (typeof obj === 'number') this.fail('bpf_object__open_mem', obj, `object '${plan.name}'`);
    this.obj = obj;
    for (const def of plan.retype ?? []) {
      const r = b.mapSetDef(obj, def.name, def);
      if (r < 0) this.fail('bpf_map__set_type', r, `map '${def.name}' of '${plan.name}'`);
    }
    const r = b.objectLoad(obj);
    if (r < 0) this.fail('bpf_object__load', r, `object '${plan.name}'`);
    for (const p of plan.programs) {
      const fd = b.programFd(obj, p.name);
      if (fd < 0) this.fail('bpf_program__fd', fd, `program '${p.name}' of '${plan.name}'`);
      this.programs.set(p.name, { fd, hook: p.hook });
    }
  }

  private loadNative(): void {
    const { b, plan } = this;
    // ebpf_object_load_native_by_fds takes a file: the driver goes to a directory of our own until close
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'wasm-bpf-sys-'));
    this.sysFile = path.join(dir, `${plan.name.replace(/[^A-Za-z0-9_.-]/g, '_') || 'object'}.sys`);
    fs.writeFileSync(this.sysFile, plan.bytes, { mode: 0o600 });
    const r = b.loadNative(this.sysFile);
    if (typeof r === 'number') this.fail('ebpf_object_load_native_by_fds', r, `driver of '${plan.name}'`);
    this.ownFds.push(...r.mapFds, ...r.progFds);
    for (const fd of r.progFds) {
      const info = b.programInfo(fd);
      if (typeof info === 'number') this.fail('bpf_obj_get_info_by_fd', info, `a program of driver '${plan.name}'`);
      this.programs.set(info.name, { fd, type: info.type, hook: windowsHook(info.type, WIN_ATTACH_TYPE.UNSPEC) });
    }
  }

  /** a map's fd by name (JIT mode), or throws */
  mapFd(name: string): number {
    if (this.obj === undefined) this.fail('bpf_map__fd', -EOPNOTSUPP, `map '${name}': native mode gives map fds without names`);
    const fd = this.b.mapFd(this.obj, name);
    if (fd < 0) this.fail('bpf_map__fd', fd, `map '${name}' of '${this.plan.name}'`);
    return fd;
  }

  /** the loaded programs' names */
  programNames(): string[] {
    return [...this.programs.keys()];
  }

  /**
   * Attaches a program by its hook: XDP to the interface named `target`; sock_ops, bind and sock_addr
   * machine-wide (compartment 0; native mode's sock_addr: `target` names the hook, connect4 ...).
   * Returns the link's index (for detach).
   */
  attach(name: string, target: string): number {
    if (this.closed) this.fail('attach', -EBADF, 'the object is closed');
    const p = this.programs.get(name);
    if (!p) this.fail('attach', -ENOENT, `no program '${name}' in '${this.plan.name}' (it has: ${this.programNames().join(', ') || 'none'})`);
    let hook = p.hook;
    if (typeof hook === 'string' && p.type === WIN_PROG_TYPE.CGROUP_SOCK_ADDR && SOCK_ADDR_HOOKS[target] !== undefined) hook = { kind: 'prog', attachType: SOCK_ADDR_HOOKS[target] };
    if (typeof hook === 'string') this.fail('attach', -EOPNOTSUPP, `program '${name}': ${hook}`);
    if (hook.kind === 'xdp') {
      if (!target) this.fail('bpf_xdp_attach', -EINVAL, `program '${name}' is XDP: name the interface to attach it to`);
      const ifindex = this.b.ifIndex(target);
      if (!ifindex) this.fail('if_nametoindex', -ENODEV, `no network interface '${target}' for program '${name}'`);
      const r = this.b.xdpAttach(ifindex, p.fd, 0);
      if (r < 0) this.fail('bpf_xdp_attach', r, `program '${name}' on '${target}' (ifindex ${ifindex})`);
      return this.links.push({ kind: 'xdp', ifindex }) - 1;
    }
    const r = this.b.progAttach(p.fd, 0, hook.attachType);
    if (r < 0) this.fail('bpf_prog_attach', r, `program '${name}' (attach type ${hook.attachType})`);
    return this.links.push({ kind: 'prog', fd: p.fd, target: 0, attachType: hook.attachType }) - 1;
  }

  /** A reader of the ring buffer (ring_buffer__*) or perf event array (perf_buffer__*) map `mapName`. */
  records(mapName: string, kind: 'ring' | 'perf', opts: { pages?: number; stopped?: () => boolean } = {}): RecordSource {
    if (this.closed) this.fail('records', -EBADF, 'the object is closed');
    if (this.obj === undefined) this.fail('records', -EOPNOTSUPP, `map '${mapName}': native mode gives map fds without names; its buffers are not read yet`);
    const fd = this.b.mapFd(this.obj, mapName);
    if (fd < 0) this.fail('bpf_map__fd', fd, `map '${mapName}' of '${this.plan.name}'`);
    const r = new WindowsRecords(this.b, fd, kind, opts.pages ?? 8, opts.stopped ?? (() => false), () => this.readers.delete(r));
    this.readers.add(r);
    return r;
  }

  /** Detaches every link (newest first), frees the readers, closes the object or the driver's fds; idempotent. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    const b = this.b;
    for (const l of this.links.splice(0).reverse()) {
      if (l.kind === 'xdp') b.xdpDetach(l.ifindex, 0);
      else b.progDetach(l.fd, l.target, l.attachType);
    }
    for (const r of [...this.readers]) r.close();
    if (this.obj !== undefined) b.objectClose(this.obj);
    this.obj = undefined;
    for (const fd of this.ownFds.splice(0)) b.closeFd(fd);
    if (this.sysFile) fs.rmSync(path.dirname(this.sysFile), { recursive: true, force: true });
  }
}

/** poll slices while waiting, so a stop request is seen (the binding's polls have no wake fd) */
const POLL_SLICE_MS = 100;

/** RecordSource over ring_buffer__poll / perf_buffer__poll: records copied at the callback, delivered in the ABI's framing. */
class WindowsRecords implements RecordSource {
  private readonly pending: Uint8Array[] = [];
  private lostCount = 0;
  private handle: Handle | undefined;
  constructor(
    private readonly b: EbpfBinding,
    mapFd: number,
    private readonly kind: 'ring' | 'perf',
    pages: number,
    private readonly stopped: () => boolean,
    private readonly onClose: () => void,
  ) {
    const h = kind === 'ring'
      ? b.ringBufferNew(mapFd, (data) => void this.pending.push(data))
      : b.perfBufferNew(mapFd, pages, (_cpu, data) => void this.pending.push(data), (_cpu, n) => void (this.lostCount += n));
    if (typeof h === 'number') throw new WindowsBackendError(kind === 'ring' ? 'ring_buffer__new' : 'perf_buffer__new', -h, `map fd ${mapFd}`, b.library);
    this.handle = h;
  }

  private pollOnce(timeoutMs: number): number {
    if (this.handle === undefined) return -EBADF;
    const r = this.kind === 'ring' ? this.b.ringBufferPoll(this.handle, timeoutMs) : this.b.perfBufferPoll(this.handle, timeoutMs);
    return r === -EINTR ? 0 : r;
  }

  poll(timeoutMs: number, out: Uint8Array): number {
    if (this.pending.length === 0) {
      const deadline = timeoutMs > 0 ? Date.now() + timeoutMs : Infinity;
      for (;;) {
        if (this.stopped()) return -EINTR;
        const slice = timeoutMs === 0 ? 0 : Math.max(0, Math.min(POLL_SLICE_MS, deadline - Date.now()));
        const r = this.pollOnce(slice);
        if (r < 0) return r;
        if (this.pending.length || timeoutMs === 0 || Date.now() >= deadline) break;
      }
    }
    const view = recordView(out);
    let at = 0;
    let n = 0;
    while (this.pending.length) {
      const next = writeRecord(out, view, at, this.pending[0]!);
      if (next < 0) break;
      at = next;
      n++;
      this.pending.shift();
    }
    return n > 0 || this.pending.length === 0 ? n : -ENOBUFS;
  }

  pendingSize(): number {
    return this.pending[0]?.length ?? 0;
  }

  lost(): number {
    return this.lostCount;
  }

  close(): void {
    if (this.handle === undefined) return;
    if (this.kind === 'ring') this.b.ringBufferFree(this.handle);
    else this.b.perfBufferFree(this.handle);
    this.handle = undefined;
    this.onClose();
  }
}

