// The Linux kernel backend: libbpf through the native addon, or through koffi when the addon is not built
// (./kernellib.ts). It loads what the selector (src/select)
// prepared: the bytes, opened once, with the compat passes' edits (src/object/edits.ts) applied.
import type { Backend, LoadedObject, LoadOptions, MapInfo, ProgramInfo, RecordSource } from '../backend.js';
import type { DirectMapOps, DirectPoll, FastPaths } from '../fastpath.js';
import { isPerCpuMap } from '../backend.js';
import { BackendError } from '../../src/errors.js';
import { DEFAULT_POLICY } from '../../src/policy/policy.js';
import { mark } from '../../src/trace.js';
import type { KernelLib } from './native.js';
import { openKernelLib, type KernelPath, type KernelPathChoice } from './kernellib.js';
import { attachProgram } from './attach.js';
import { ERRNO, MAP_TYPE, PROG_TYPE } from '../../src/kernel/uapi.js';
import { nativeCall, toBackendError } from './errors.js';
import { explainLoadFailure } from './explain.js';
import { accessCode, guestAccessFor, MAP_TYPE_FD } from './mapaccess.js';
import { confinePinning } from './pinning.js';
import { linkedStructOps, structOpsMapsByProgram } from './structops.js';
import type { HostMap } from '../../src/object/edits.js';

const PERF_BUFFER_PAGES = 64;

export class LinuxBackend implements Backend, FastPaths {
  readonly name = 'linux' as const;
  private readonly native: KernelLib;
  /** which native part runs it: the addon or libbpf through FFI, and why */
  readonly kernelPath: KernelPath;
  readonly kernelPathWhy: string;
  private wake = -1;
  /** vmlinux BTF for CO-RE when the kernel has none (BTFHub, compat/btfhub): libbpf's btf_custom_path */
  private readonly btfCustomPath: string | undefined;

  constructor(native?: KernelLib, opts: { btfCustomPath?: string; libbpf?: KernelPathChoice } = {}) {
    const opened = native ? { lib: native, path: 'library' in native ? ('ffi' as const) : ('addon' as const), why: 'given by the caller' } : openKernelLib(opts.libbpf);
    this.native = opened.lib;
    this.kernelPath = opened.path;
    this.kernelPathWhy = opened.why;
    this.btfCustomPath = opts.btfCustomPath;
  }

  wakeFd(): number {
    if (this.wake < 0) this.wake = this.native.eventFd();
    return this.wake;
  }

  /** the addon's wasm_bpf_map_operate in C (native/src/guestmaps.cc), when this build has V8 fast calls */
  directMapOps(): DirectMapOps | undefined {
    const n = this.native;
    if (!n.fastCalls || !n.guestMapOpen || !n.guestMapBind || !n.guestMapSet || !n.guestMapClose || !n.guestMapRelease) return undefined;
    const opened = n.guestMapOpen();
    if (!opened) return undefined; // every slot taken: the ABI layer's JavaScript path serves this guest
    const [slot, fn] = opened;
    const { guestMapBind: bind, guestMapSet: set, guestMapClose: close, guestMapRelease: release } = n;
    // once released, the slot may belong to another guest: nothing may touch it through this object
    let released = false;
    let poll: DirectPoll | undefined;
    const pollFns = n.guestPollFunctions?.(slot);
    const { guestPollBind: pBind, guestPollSet: pSet, guestPollHandle: pHandle } = n;
    if (pollFns && pBind && pSet && pHandle) {
      poll = {
        fill: pollFns[0],
        done: pollFns[1],
        bind: (wakeFd, stop) => void (released || pBind(slot, wakeFd, stop)),
        handle: (handle, open) => void (released || pHandle(slot, handle, open)),
        buffer: (fd, src) => {
          if (released) return false;
          if (src === undefined) {
            pSet(slot, fd, -1);
            return true;
          }
          if (!(src instanceof LinuxRecordSource) || src.closed) return false;
          return pSet(slot, fd, src.nativeId);
        },
      };
    }
    return {
      owner: 'linux',
      fn,
      ...(poll ? { poll } : {}),
      bind: (memory) => void (released || bind(slot, memory.buffer)),
      add: (fd, keySize, opValueSize, access) => void (released || set(slot, fd, keySize, opValueSize, accessCode(access))),
      remove: (fd) => void (released || set(slot, fd)),
      close: () => void (released || close(slot)),
      release: () => {
        if (released) return;
        released = true;
        release(slot); // forgets the maps and the memory too
      },
    };
  }

  dispose(): void {
    if (this.wake >= 0) this.native.closeFd(this.wake);
    this.wake = -1;
  }

  load(bytes: Uint8Array, opts: LoadOptions): LoadedObject {
    const native = this.native;
    const flushLog = (): string => {
      const text = native.takeLog();
      if (opts.verbose && text) opts.log(text.trimEnd());
      return text;
    };
    const openOpts = {
      logLevel: opts.verbose ? 2 : 0,
      ...(this.btfCustomPath ? { btfCustomPath: this.btfCustomPath } : {}),
    };
    // maps the compat passes asked for: created first, their fds written into (a copy of) the bytes
    const hostFds: number[] = [];
    let obj = -1;
    try {
      if (opts.edits?.hostMaps?.length) bytes = withHostMaps(native, bytes, opts.edits.hostMaps, hostFds);
      mark('open:start');
      obj = nativeCall(() => native.open(bytes, opts.objectName, openOpts), `libbpf cannot open the object (${bytes.length} bytes)`);
      mark('open:end');
      flushLog();
      for (const r of opts.edits?.retype ?? []) {
        nativeCall(() => native.setMapType(obj, r.name, r.type, r.keySize, r.valueSize, r.maxEntries), `map '${r.name}' cannot change type`);
      }
      if (opts.edits?.mapFlags?.length) {
        const current = new Map(native.maps(obj).map((m) => [m.name, m.flags]));
        for (const f of opts.edits.mapFlags) {
          const flags = current.get(f.name);
          if (flags === undefined) throw new BackendError(`no map named '${f.name}' in the object`, ERRNO.ENOENT);
          nativeCall(() => native.setMapFlags(obj, f.name, (flags | f.flags) >>> 0), `map '${f.name}' cannot take flags 0x${f.flags.toString(16)}`);
        }
      }
      const programs: ProgramInfo[] = native.programs(obj).map((p) => ({ name: p.name, section: p.section, type: p.type }));
      // every map private to the run; struct_ops registrations tied to it
      confinePinning(native, obj, opts);
      const structOpsLinked = linkedStructOps(native, obj, opts);
      try {
        mark('load:start');
        native.load(obj);
        mark('load:end');
      } catch (err) {
        throw explainLoadFailure(err, programs);
      } finally {
        // the programs hold their own references to the host's maps
        for (const fd of hostFds.splice(0)) native.closeFd(fd);
      }
      flushLog();
      const ncpu = native.numPossibleCpus();
      const maps: MapInfo[] = native.maps(obj).map((m) => {
        const access = guestAccessFor(m.type);
        return {
          name: m.name,
          type: m.type,
          keySize: m.keySize,
          valueSize: m.valueSize,
          maxEntries: m.maxEntries,
          fd: m.fd,
          opValueSize: isPerCpuMap(m.type) ? ((m.valueSize + 7) & ~7) * ncpu : m.valueSize,
          ...(access ? { guestAccess: access } : {}),
        };
      });
      const structOps = maps.some((m) => m.type === MAP_TYPE_FD.STRUCT_OPS)
        ? { linked: structOpsLinked, mapsByProgram: structOpsMapsByProgram(bytes) }
        : undefined;
      return new LinuxObject(native, obj, programs, maps, opts, () => this.wakeFd(), structOps);
    } catch (err) {
      for (const fd of hostFds) native.closeFd(fd);
      if (obj >= 0) native.close(obj);
      native.takeLog();
      throw err;
    }
  }
}

/** creates each host map and writes its fd at its offsets, in a copy of `bytes`; the fds go to `fds` */
function withHostMaps(native: KernelLib, bytes: Uint8Array, maps: readonly HostMap[], fds: number[]): Uint8Array {
  const out = new Uint8Array(bytes);
  const dv = new DataView(out.buffer, out.byteOffset, out.byteLength);
  for (const m of maps) {
    const fd = nativeCall(() => native.mapCreate(m.type, m.keySize, m.valueSize, m.maxEntries, m.name), `cannot create map '${m.name}'`);
    fds.push(fd);
    for (const at of m.fdAt) {
      if (at < 0 || at + 4 > out.length) throw new BackendError(`map '${m.name}': fd offset ${at} is outside the object`, ERRNO.EINVAL);
      dv.setInt32(at, fd, true);
    }
  }
  return out;
}

class LinuxObject implements LoadedObject {
  readonly backend = 'linux' as const;
  private readonly links: number[] = [];
  private readonly sources = new Set<LinuxRecordSource>();
  private closed = false;
  /** native.mapOp held directly: the addon's exports object has too many properties for V8 to keep
   * it in fast mode, so loading the function from it on every call is a generic property lookup */
  private readonly mapOp: KernelLib['mapOp'];

  constructor(
    private readonly native: KernelLib,
    private readonly obj: number,
    readonly programs: readonly ProgramInfo[],
    readonly maps: readonly MapInfo[],
    private readonly opts: LoadOptions,
    private readonly wakeFd: () => number,
    /** the object's struct_ops maps: those that register through a link, and which programs they name */
    private readonly structOps?: { linked: ReadonlySet<string>; mapsByProgram: ReadonlyMap<string, readonly string[]> },
  ) {
    this.mapOp = native.mapOp;
  }

  /** struct_ops maps registered so far (each once) */
  private readonly registered = new Set<string>();

  /**
   * Registers struct_ops maps: `name` is one of them, or a struct_ops program (the maps that name it:
   * attaching each program of a skeleton registers its maps once).
   */
  private attachStructOps(name: string, maps: readonly string[]): void {
    for (const map of maps) {
      if (this.registered.has(map)) continue;
      const link = this.structOps?.linked.has(map) ?? false;
      const what = `struct_ops map '${map}'${map === name ? '' : ` (of program '${name}')`}`;
      mark('attach:start');
      try {
        this.links.push(nativeCall(() => this.native.attachStructOps(this.obj, map, link), what));
        this.registered.add(map);
      } finally {
        mark('attach:end');
        const log = this.native.takeLog();
        if (this.opts.verbose && log) this.opts.log(log.trimEnd());
      }
    }
  }

  attach(program: string, target: string | undefined): void {
    if (this.closed) throw new BackendError('the object is closed', ERRNO.EBADF);
    const info = this.programs.find((p) => p.name === program);
    if (!info && this.maps.some((m) => m.name === program && m.type === MAP_TYPE_FD.STRUCT_OPS)) {
      this.attachStructOps(program, [program]);
      return;
    }
    if (info?.type === PROG_TYPE.STRUCT_OPS) {
      const maps = this.structOps?.mapsByProgram.get(program);
      if (!maps?.length) {
        throw new BackendError(
          `struct_ops program '${program}' is not in any struct_ops map of the object`,
          ERRNO.ENOENT,
          '',
          'a struct_ops program runs once a struct_ops map (SEC(".struct_ops")) that names it is attached',
        );
      }
      this.attachStructOps(program, maps);
      return;
    }
    if (!info) {
      throw new BackendError(
        `no program named '${program}' in the object (programs: ${this.programs.map((p) => p.name).join(', ') || 'none'})`,
        ERRNO.ENOENT,
      );
    }
    mark('attach:start');
    try {
      this.links.push(
        ...attachProgram(this.native, {
          obj: this.obj,
          program,
          section: info.section,
          type: info.type,
          target,
          policy: this.opts.policy ?? DEFAULT_POLICY,
          warn: this.opts.log,
        }),
      );
    } finally {
      mark('attach:end');
      const log = this.native.takeLog();
      if (this.opts.verbose && log) this.opts.log(log.trimEnd());
    }
  }

  mapOperate(cmd: number, fd: number, mem: Uint8Array, keyOff: number, valOff: number, flags: number): number {
    const op = this.mapOp;
    return op(cmd, fd, mem, keyOff, valOff, flags);
  }

  openRecords(fd: number): RecordSource {
    const info = this.maps.find((m) => m.fd === fd);
    if (!info) throw new BackendError(`map fd ${fd} does not belong to this object`, ERRNO.EBADF);
    const native = this.native;
    let id: number;
    try {
      id =
        info.type === MAP_TYPE.RINGBUF
          ? native.ringbufOpen(fd)
          : info.type === MAP_TYPE.PERF_EVENT_ARRAY
            ? native.perfbufOpen(fd, PERF_BUFFER_PAGES)
            : -1;
    } catch (err) {
      throw toBackendError(err, `opening a reader on map '${info.name}'`);
    }
    if (id < 0) throw new BackendError(`map '${info.name}' is neither a ring buffer nor a perf event array`, ERRNO.EINVAL);
    const src = new LinuxRecordSource(native, id, this.wakeFd(), () => this.sources.delete(src));
    this.sources.add(src);
    return src;
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    for (const s of [...this.sources]) s.close();
    // native.close destroys every link of the object, then the object itself
    this.native.close(this.obj);
    this.links.length = 0;
  }
}

class LinuxRecordSource implements RecordSource {
  private open = true;
  get closed(): boolean {
    return !this.open;
  }
  /** the native buffer's id (for the direct poll, native/src/guestmaps.cc) */
  get nativeId(): number {
    return this.id;
  }
  /** held directly, as LinuxObject.mapOp */
  private readonly bufferPoll: KernelLib['bufferPoll'];
  constructor(
    private readonly native: KernelLib,
    private readonly id: number,
    private readonly wakeFd: number,
    private readonly onClose: () => void,
  ) {
    this.bufferPoll = native.bufferPoll;
  }
  poll(timeoutMs: number, out: Uint8Array): number {
    const poll = this.bufferPoll;
    // A poll that does not wait needs no wake fd (the ABI layer checks the stop flag before every
    // poll): without one, an empty buffer is answered without a syscall.
    return poll(this.id, timeoutMs, timeoutMs === 0 ? -1 : this.wakeFd, out);
  }
  pendingSize(): number {
    return this.native.bufferPendingSize(this.id);
  }
  lost(): number {
    return this.native.bufferLost(this.id);
  }
  close(): void {
    if (!this.open) return;
    this.open = false;
    this.native.bufferClose(this.id);
    this.onClose();
  }
}
