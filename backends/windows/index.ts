// The Windows backend (`--backend windows`): the Backend contract (backends/backend.ts) over the load path
// (./load.ts) and its binding (./ebpfapi.ts). Each object is translated for eBPF for Windows (./translate),
// refused with the reasons when it does not translate, loaded, its maps listed under their Linux types (what
// the guest's ABI speaks), its programs attached by their Windows hooks under the run's policy, its ring and
// perf buffers read into the ABI's records. The selector makes it on Windows only (src/select/backend.ts);
// on Linux it is exercised with a recording binding (test/windows-load.test.ts, test/windows-route.test.ts). Never run on Windows.
import os from 'node:os';
import { BackendError } from '../../src/errors.js';
import { ERRNO } from '../../src/kernel/uapi.js';
import { WIN_MAP_TYPE } from '../../src/kernel/ebpf-windows.js';
import { loadObject, type BpfObject } from '../../src/object/loader.js';
import { hasEdits } from '../../src/object/edits.js';
import { DEFAULT_POLICY, type Policy } from '../../src/policy/policy.js';
import { allowInterface, enforceLoad } from '../../src/policy/enforce.js';
import { MAP_TYPE, isPerCpuMap, type Backend, type GuestMapAccess, type LoadOptions, type LoadedObject, type MapInfo, type ProgramInfo, type RecordSource } from '../backend.js';
import type { EbpfBinding } from './ebpfapi.js';
import { planFromTranslation, WindowsObject, type Hook } from './load.js';
import { translateForWindows, type Translation } from './translate/index.js';

const { EBADF, EINVAL, EOPNOTSUPP } = ERRNO;

export interface WindowsBackendOptions {
  /** the run's StopSignal buffer (src/runtime/stop.ts): polls return -EINTR once its first word is set */
  stop?: SharedArrayBuffer;
}

/** maps whose values name kernel objects (program arrays, maps of maps): a guest may not update them */
function guestAccess(linuxType: number): GuestMapAccess | undefined {
  return linuxType === MAP_TYPE.PROG_ARRAY || linuxType === MAP_TYPE.ARRAY_OF_MAPS || linuxType === MAP_TYPE.HASH_OF_MAPS ? 'no-update' : undefined;
}

export class WindowsBackend implements Backend {
  readonly name = 'windows' as const;
  private readonly stopped: () => boolean;

  constructor(private readonly binding: EbpfBinding, opts: WindowsBackendOptions = {}) {
    const flag = opts.stop ? new Int32Array(opts.stop, 0, 1) : undefined;
    this.stopped = flag ? () => Atomics.load(flag, 0) !== 0 : () => false;
  }

  load(object: Uint8Array, opts: LoadOptions): LoadedObject {
    const parsed = opts.parsed ?? loadObject(object);
    const policy = opts.policy ?? DEFAULT_POLICY;
    enforceLoad(policy, parsed);
    // the selector's compat passes speak Linux numbers and the Linux backend's edits: the translation makes its own
    if (hasEdits(opts.edits)) throw new BackendError(`object '${opts.objectName}': the Windows backend does not take the selector's compat edits (it translates the object itself)`, EOPNOTSUPP);
    const t = translateForWindows(object, parsed);
    const plan = planFromTranslation(opts.objectName, t);
    if (opts.verbose) for (const line of [...t.steps, ...t.caveats.map((c) => `caveat: ${c}`)]) opts.log(`wasm-bpf: windows: ${line}`);
    const o = WindowsObject.load(this.binding, plan);
    try {
      return new WindowsLoaded(this.binding, o, t, parsed, plan.programs, policy, this.stopped);
    } catch (err) {
      o.close();
      throw err;
    }
  }

  /** no wake fd: the binding's polls wait in slices and look at the stop flag (load.ts) */
  wakeFd(): number {
    return -1;
  }

  dispose(): void {}
}

class WindowsLoaded implements LoadedObject {
  readonly backend = 'windows' as const;
  readonly programs: readonly ProgramInfo[];
  readonly maps: readonly MapInfo[];
  private readonly sources = new Set<RecordSource>();
  private closed = false;

  constructor(
    private readonly b: EbpfBinding,
    private readonly o: WindowsObject,
    private readonly t: Translation,
    parsed: BpfObject,
    private readonly hooks: ReadonlyArray<{ name: string; hook: Hook }>,
    private readonly policy: Policy,
    private readonly stopped: () => boolean,
  ) {
    this.programs = t.programs.map((p) => ({ name: p.name, section: p.section, type: p.linux.progType }));
    const cpus = Math.max(1, os.availableParallelism());
    this.maps = t.maps.map((m) => {
      const def = parsed.map(m.name);
      const fd = o.mapFd(m.name);
      if (!def) throw new BackendError(`map '${m.name}' of the translation is not in the object`, EINVAL);
      const access = guestAccess(m.linuxType);
      return {
        name: m.name,
        type: m.linuxType,
        keySize: def.keySize,
        valueSize: def.valueSize,
        maxEntries: def.maxEntries,
        fd,
        opValueSize: isPerCpuMap(m.linuxType) ? ((def.valueSize + 7) & ~7) * cpus : def.valueSize,
        ...(access ? { guestAccess: access } : {}),
      };
    });
  }

  attach(program: string, target: string | undefined): void {
    const h = this.hooks.find((p) => p.name === program);
    if (h?.hook.kind === 'xdp') allowInterface(this.policy, target, `program '${program}' (xdp)`);
    this.o.attach(program, target ?? '');
  }

  mapOperate(cmd: number, fd: number, mem: Uint8Array, keyOff: number, valOff: number, flags: number): number {
    if (this.closed) return -EBADF;
    return this.b.mapOp(cmd, fd, mem, keyOff, valOff, flags);
  }

  openRecords(fd: number): RecordSource {
    const m = this.t.maps.find((x) => this.maps.find((i) => i.fd === fd)?.name === x.name);
    if (!m) throw new BackendError(`map fd ${fd} does not belong to this object`, EBADF);
    const kind = m.windowsType === WIN_MAP_TYPE.RINGBUF ? 'ring' : m.windowsType === WIN_MAP_TYPE.PERF_EVENT_ARRAY ? 'perf' : undefined;
    if (!kind) throw new BackendError(`map '${m.name}' is neither a ring buffer nor a perf event array`, EINVAL);
    const src = this.o.records(m.name, kind, { stopped: this.stopped });
    this.sources.add(src);
    return src;
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.sources.clear();
    this.o.close();
  }
}
