// The six `wasm_bpf` host functions (and TinyGo's `callback-wrapper` poll), exactly as in the
// wasm-bpf ABI. Every guest pointer, handle, fd and length is checked here, and the handles are owned
// here; backends receive offsets known to be inside guest memory; records.ts delivers the records.
// Knows nothing of kernels: it talks to a Backend.
import type { GuestMapAccess, LoadedObject, MapInfo, ObjectLoader } from '../../backends/backend.js';
import { hasFastPaths, type DirectMapOps } from '../../backends/fastpath.js';
import { BackendError, Interrupted, ModuleError, errorMessage } from '../errors.js';
import type { FuncType, ModuleShape, ValType } from '../wasm/imports.js';
import { formatFuncType } from '../wasm/imports.js';
import { EBADF, EFAULT, EINVAL, ENOENT, EPERM } from './errno.js';
import { GuestMemory, ptr64 } from './memory.js';
import { RecordDelivery, type StopFlag } from './records.js';
import { createDirectPoll, createPollGate, type DirectPollFunction, type PollGate } from './pollgate.js';
import { mark } from '../trace.js';
import type { Policy } from '../policy/policy.js';
import type { Diag } from '../style.js';

const WASM_BPF_MODULE = 'wasm_bpf';

const CMD_LOOKUP = 1;
const CMD_UPDATE = 2;
const CMD_DELETE = 3;
const CMD_NEXT_KEY = 4;
/** pop for queue and stack maps (and lookup-and-delete for hash maps) */
const CMD_LOOKUP_AND_DELETE = 21;

export interface HostOptions {
  backend: ObjectLoader;
  /** used as the libbpf object name of every object the guest loads */
  objectName: string;
  verbose: boolean;
  /** the run's policy (default: DEFAULT_POLICY) */
  policy?: Policy;
  /** TinyGo: import module carrying the table-less poll, and the callback the host calls */
  wrapperModule: string;
  callbackExport: string;
  stop: StopFlag;
  /** diagnostics (host stderr) */
  /** a diagnostic line for stderr; `kind` styles it (src/style.ts) where the output is a terminal */
  log: (line: string, kind?: Diag) => void;
  /** serve map_operate from JavaScript even when the backend has a direct one (tests compare the two) */
  noDirectMapOps?: boolean;
  /** serve wasm_bpf_buffer_poll from JavaScript only, even when the backend has a direct record source */
  noDirectPoll?: boolean;
  /**
   * called at the guest's first buffer_poll (a launched command waits until the app is set up); the
   * direct poll takes over only after it, so the first poll always passes through here
   */
  beforeFirstPoll?: () => void;
}

interface MapEntry {
  obj: LoadedObject;
  info: MapInfo;
  handle: number;
}

const EXPECTED: Record<string, { params: Array<ValType | 'ptr'>; results: ValType[] }> = {
  wasm_load_bpf_object: { params: ['i32', 'i32'], results: ['i64'] },
  wasm_attach_bpf_program: { params: ['i64', 'i32', 'i32'], results: ['i32'] },
  wasm_bpf_buffer_poll: { params: ['i64', 'i32', 'i32', 'i32', 'i32', 'i32', 'i32'], results: ['i32'] },
  wasm_bpf_map_fd_by_name: { params: ['i64', 'i32'], results: ['i32'] },
  wasm_bpf_map_operate: { params: ['i32', 'i32', 'ptr', 'ptr', 'ptr', 'i64'], results: ['i32'] },
  wasm_close_bpf_object: { params: ['i64'], results: ['i32'] },
};
const EXPECTED_WRAPPER: Record<string, { params: ValType[]; results: ValType[] }> = {
  wasm_bpf_buffer_poll: { params: ['i64', 'i32', 'i32', 'i32', 'i32', 'i32'], results: ['i32'] },
};

function sameSignature(actual: FuncType, params: Array<ValType | 'ptr'>, results: ValType[]): boolean {
  if (actual.params.length !== params.length || actual.results.length !== results.length) return false;
  for (let i = 0; i < params.length; i++) {
    const want = params[i];
    const got = actual.params[i];
    if (want === 'ptr' ? got !== 'i32' && got !== 'i64' : got !== want) return false;
  }
  return actual.results.every((r, i) => r === results[i]);
}

function describe(params: Array<ValType | 'ptr'>, results: ValType[]): string {
  return formatFuncType({ params: params.map((p) => (p === 'ptr' ? 'i32' : p)), results });
}

/** A direct map_operate (DirectMapOps) goes back to its backend once the instance importing it is
 * garbage collected: only then can no call through it arrive any more. */
const directRelease = new FinalizationRegistry<DirectMapOps>((d) => d.release());

/** The host side of one guest instance: its objects and maps (its record buffers: records.ts). */
export class WasmBpfHost {
  private readonly objects = new Map<number, LoadedObject>();
  /** the guest's maps by fd (small integers: an array is the cheapest lookup on the map_operate path) */
  private readonly maps: Array<MapEntry | undefined> = [];
  /** wasm_bpf_buffer_poll's record delivery: buffers, callbacks, the one-poll-at-a-time flag (records.ts) */
  private readonly records: RecordDelivery;
  private nextHandle = 1;
  private mem: GuestMemory | undefined;
  /** map_operate (and buffer_poll) served by the backend without JavaScript, when it can (see imports()) */
  private direct: DirectMapOps | undefined;
  /** the guest's map_operate import is direct.fn */
  private directMaps = false;
  /** the guest's wasm_bpf_buffer_poll import, and what it calls once the guest is bound */
  private gate: PollGate | undefined;
  private directPoll: DirectPollFunction | undefined;
  /** HostOptions.beforeFirstPoll until the first poll, and the direct poll's attach it holds back */
  private firstPoll: (() => void) | undefined;
  private afterFirstPoll: (() => void) | undefined;

  constructor(private readonly opts: HostOptions) {
    const { verbose, wrapperModule, callbackExport, stop, log } = opts;
    this.firstPoll = opts.beforeFirstPoll;
    this.records = new RecordDelivery({
      verbose,
      wrapperModule,
      callbackExport,
      stop,
      log,
      memory: () => this.memory,
      map: (fd) => this.maps[fd],
      report: (err, what) => this.report(err, what),
    });
  }

  /** Checks the module's wasm_bpf / wrapper imports and returns the import objects for them. */
  imports(shape: ModuleShape): Record<string, Record<string, (...args: never[]) => unknown>> {
    const result: Record<string, Record<string, (...args: never[]) => unknown>> = {};
    const { wrapperModule } = this.opts;
    // map_operate imported with i32 pointers only (the C and Rust SDKs): the backend's own function
    // when it has one, imported by the guest directly; it applies mapOperate's checks (below) in C.
    // A module that also imports it with i64 pointers gets the JavaScript function for both.
    const mapOps = shape.imports.filter((i) => i.module === WASM_BPF_MODULE && i.name === 'wasm_bpf_map_operate');
    const wideOps = mapOps.some((i) => i.type?.params.slice(2, 5).some((p) => p === 'i64'));
    // wasm_bpf_buffer_poll: a gate (pollgate.ts) that calls the backend's record source from Wasm once
    // the guest is bound, and the JavaScript poll for everything else
    const polls = shape.imports.some((i) => i.module === WASM_BPF_MODULE && i.name === 'wasm_bpf_buffer_poll');
    const wantMaps = mapOps.length > 0 && !wideOps && !this.opts.noDirectMapOps;
    const wantPoll = polls && !this.opts.noDirectPoll;
    const backend = this.opts.backend;
    if (wantMaps || wantPoll) this.direct ??= hasFastPaths(backend) ? backend.directMapOps() : undefined;
    this.directMaps = wantMaps && this.direct !== undefined;
    if (mapOps.length > 0) {
      this.debug(`map_operate: ${this.directMaps ? 'served by the backend directly (no JavaScript per call)' : `served by the host in JavaScript${wideOps ? ' (i64 pointers)' : ''}`}`);
    }
    if (wantPoll && this.direct?.poll) this.gate = createPollGate(this.fns.wasm_bpf_buffer_poll);
    this.records.guest(shape, this.hostWasmImports());
    for (const imp of shape.imports) {
      if (imp.module !== WASM_BPF_MODULE && imp.module !== wrapperModule) continue;
      const table = imp.module === WASM_BPF_MODULE ? EXPECTED : EXPECTED_WRAPPER;
      const want = table[imp.name];
      const where = `${imp.module}.${imp.name}`;
      if (!want) {
        throw new ModuleError(
          'WASM_IMPORT',
          `the module imports ${where}, which this runtime does not provide (${imp.module} provides: ${Object.keys(table).join(', ')})`,
        );
      }
      if (imp.kind !== 'func' || !imp.type || !sameSignature(imp.type, want.params, want.results)) {
        const got = imp.type ? formatFuncType(imp.type) : imp.kind;
        throw new ModuleError(
          'WASM_IMPORT',
          `import ${where} has type ${got}, expected ${describe(want.params, want.results)}` +
            (imp.name === 'wasm_bpf_map_operate' ? ' (the three pointers may each be i32 or i64)' : ''),
        );
      }
      const mod = (result[imp.module] ??= {});
      if (imp.module === WASM_BPF_MODULE) {
        if (imp.name === 'wasm_bpf_map_operate') {
          mod[imp.name] = wideOps ? this.mapOperateWide : this.directMaps ? this.direct!.fn : this.fns.wasm_bpf_map_operate;
        } else if (imp.name === 'wasm_bpf_buffer_poll' && this.gate) {
          mod[imp.name] = this.gate.poll;
        } else {
          mod[imp.name] = this.fns[imp.name as keyof WasmBpfHost['fns']];
        }
      } else {
        mod[imp.name] = this.wrapperPoll;
      }
    }
    return result;
  }

  /** Call after instantiation: gives the host the guest's memory, table and TinyGo callback. */
  bind(instance: WebAssembly.Instance): void {
    const { memory, __indirect_function_table: table } = instance.exports;
    if (!(memory instanceof WebAssembly.Memory)) {
      throw new ModuleError('WASM_EXPORT', 'the module does not export its memory as "memory"');
    }
    this.mem = new GuestMemory(memory);
    if (this.direct) {
      this.direct.bind(memory);
      directRelease.register(instance, this.direct);
    }
    const fnTable = table instanceof WebAssembly.Table ? table : undefined;
    this.records.instance(fnTable, instance.exports[this.opts.callbackExport]);
    const dp = this.direct?.poll;
    if (this.gate && dp && fnTable) {
      this.directPoll = createDirectPoll({
        memory,
        table: fnTable,
        fill: dp.fill,
        done: dp.done,
        slow: this.fns.wasm_bpf_buffer_poll,
        keep: this.records.keep,
      });
      if (this.directPoll) {
        this.records.useDirect(this.directPoll, dp);
        dp.bind(this.opts.backend.wakeFd(), this.opts.stop.shared);
        const gate = this.gate;
        const direct = this.directPoll.poll;
        if (this.firstPoll) this.afterFirstPoll = () => gate.attach(direct);
        else gate.attach(direct);
      }
    }
    if (this.gate) this.debug(`buffer_poll: ${this.directPoll ? 'served by the backend from Wasm (no JavaScript per poll)' : 'served by the host in JavaScript'}`);
  }

  /** Closes every object the guest left open (detaching every link); the guest is done. Also after
   * a failed instantiation (bind() never called). */
  closeAll(): void {
    for (const handle of [...this.objects.keys()]) this.closeObject(handle);
    if (this.direct) {
      this.direct.close();
      if (!this.mem) this.direct.release(); // no instance was made with it
    }
  }

  get openObjectCount(): number {
    return this.objects.size;
  }

  private get memory(): GuestMemory {
    // before bind(): a call from the module's start function (a Wasm start section runs inside
    // instantiation, before its exports, its memory among them, exist)
    if (!this.mem) {
      throw new ModuleError(
        'WASM_IMPORT',
        `the module called a ${WASM_BPF_MODULE} function from its start function, before its instantiation finished: the host cannot reach its memory yet (call ${WASM_BPF_MODULE} functions from _start or main)`,
      );
    }
    return this.mem;
  }

  private report(err: unknown, what: string): number {
    if (err instanceof Interrupted) throw err;
    if (err instanceof BackendError) {
      this.opts.log(`wasm-bpf: ${what}: ${err.message}`, 'error');
      if (err.hint) this.opts.log(`wasm-bpf: hint: ${err.hint}`, 'hint');
      if (this.opts.verbose && err.log) this.opts.log(err.log.trimEnd());
      else if (err.log && !err.hint?.includes('--verbose')) this.opts.log('wasm-bpf: (run with --verbose for the libbpf and verifier log)', 'note');
      return -(err.errno || EINVAL);
    }
    this.opts.log(`wasm-bpf: ${what}: ${errorMessage(err)}`, 'error');
    return -EINVAL;
  }

  private debug(line: string): void {
    if (this.opts.verbose) this.opts.log(`wasm-bpf: ${line}`);
  }

  private object(handle: bigint): [number, LoadedObject] | undefined {
    if (handle <= 0n || handle > 0x7fffffffn) return undefined;
    const h = Number(handle);
    const obj = this.objects.get(h);
    return obj ? [h, obj] : undefined;
  }

  private closeObject(handle: number): boolean {
    const obj = this.objects.get(handle);
    if (!obj) return false;
    for (let fd = 0; fd < this.maps.length; fd++) {
      const entry = this.maps[fd];
      if (entry === undefined || entry.handle !== handle) continue;
      this.records.close(fd);
      this.maps[fd] = undefined;
      this.direct?.remove(fd);
    }
    this.objects.delete(handle);
    this.direct?.poll?.handle(handle, false);
    obj.close();
    return true;
  }

  // ---- the six functions ------------------------------------------------------------------------

  private readonly fns = {
    wasm_load_bpf_object: (objPtr: number, objLen: number): bigint => {
      const bytes = this.memory.copyOut(objPtr >>> 0, objLen);
      if (!bytes) {
        this.opts.log(`wasm-bpf: wasm_load_bpf_object: object [${objPtr >>> 0}, +${objLen}) is outside guest memory`);
        return 0n;
      }
      try {
        const obj = this.opts.backend.load(bytes, {
          objectName: this.opts.objectName,
          verbose: this.opts.verbose,
          policy: this.opts.policy,
          log: this.opts.log,
        });
        const handle = this.nextHandle++;
        this.objects.set(handle, obj);
        this.direct?.poll?.handle(handle, true);
        for (const info of obj.maps) {
          if (info.fd < 0) continue;
          this.maps[info.fd] = { obj, info, handle };
          if (obj.backend === this.direct?.owner) this.direct.add(info.fd, info.keySize, info.opValueSize, info.guestAccess);
        }
        this.debug(`loaded object ${handle}: ${obj.programs.length} programs, ${obj.maps.length} maps`);
        return BigInt(handle);
      } catch (err) {
        this.report(err, 'wasm_load_bpf_object');
        return 0n;
      }
    },

    wasm_attach_bpf_program: (handle: bigint, namePtr: number, targetPtr: number): number => {
      const found = this.object(handle);
      if (!found) return -EINVAL;
      const name = this.memory.cstring(namePtr >>> 0);
      if (name === undefined) return -EFAULT;
      let target: string | undefined;
      if (targetPtr !== 0) {
        target = this.memory.cstring(targetPtr >>> 0);
        if (target === undefined) return -EFAULT;
        if (target === '') target = undefined;
      }
      try {
        found[1].attach(name, target);
        this.debug(`attached ${name}${target ? ` to ${target}` : ''}`);
        return 0;
      } catch (err) {
        return this.report(err, `attaching program '${name}'${target ? ` to '${target}'` : ''} failed`);
      }
    },

    wasm_bpf_buffer_poll: (
      handle: bigint,
      fd: number,
      sampleFunc: number,
      ctx: number,
      data: number,
      maxSize: number,
      timeoutMs: number,
    ): number => {
      mark('poll');
      if (this.firstPoll) this.pollStarts();
      if (!this.object(handle)) return -EINVAL;
      return this.records.tablePoll(sampleFunc, fd, ctx, data, maxSize, timeoutMs);
    },

    wasm_bpf_map_fd_by_name: (handle: bigint, namePtr: number): number => {
      const found = this.object(handle);
      if (!found) return -EINVAL;
      const name = this.memory.cstring(namePtr >>> 0);
      if (name === undefined) return -EFAULT;
      const maps = found[1].maps;
      // libbpf names internal maps "<obj prefix>.rodata"; guests ask for ".rodata"
      const info =
        maps.find((m) => m.name === name) ?? (name.startsWith('.') ? maps.find((m) => m.name.endsWith(name)) : undefined);
      if (!info) {
        this.debug(`no map named '${name}' in object ${handle} (maps: ${maps.map((m) => m.name).join(', ')})`);
        return -ENOENT;
      }
      return info.fd;
    },

    wasm_bpf_map_operate: (fd: number, cmd: number, keyPtr: number, valuePtr: number, nextPtr: number, flags: bigint): number =>
      this.mapOperate(fd, cmd, keyPtr >>> 0, valuePtr >>> 0, nextPtr >>> 0, flags),

    wasm_close_bpf_object: (handle: bigint): number => {
      const found = this.object(handle);
      if (!found) return -EINVAL;
      try {
        this.closeObject(found[0]);
        this.debug(`closed object ${found[0]}`);
        return 0;
      } catch (err) {
        return this.report(err, 'closing the eBPF object failed');
      }
    },
  };

  /** map_operate for guests whose SDK declares the pointers as i64 (each may be either width) */
  private readonly mapOperateWide = (
    fd: number,
    cmd: number,
    keyPtr: number | bigint,
    valuePtr: number | bigint,
    nextPtr: number | bigint,
    flags: bigint,
  ): number => {
    const k = typeof keyPtr === 'bigint' ? ptr64(keyPtr) : keyPtr >>> 0;
    const v = typeof valuePtr === 'bigint' ? ptr64(valuePtr) : valuePtr >>> 0;
    const n = typeof nextPtr === 'bigint' ? ptr64(nextPtr) : nextPtr >>> 0;
    if (k < 0 || v < 0 || n < 0) return -EFAULT;
    return this.mapOperate(fd, cmd, k, v, n, flags);
  };

  /** the first buffer_poll: beforeFirstPoll, then the direct poll takes over */
  private pollStarts(): void {
    const first = this.firstPoll;
    this.firstPoll = undefined;
    first?.();
    this.afterFirstPoll?.();
    this.afterFirstPoll = undefined;
  }

  private readonly wrapperPoll = (
    handle: bigint,
    fd: number,
    ctx: number,
    data: number,
    maxSize: number,
    timeoutMs: number,
  ): number => {
    if (this.firstPoll) this.pollStarts();
    if (!this.object(handle)) return -EINVAL;
    return this.records.wrapperPoll(fd, ctx, data, maxSize, timeoutMs);
  };

  // ---- map operations: one backend call, one syscall ------------------------------------------------
  // (the direct path, native/src/guestmaps.cc, makes the same checks in the same order: test/mapop.test.ts)

  private mapOperate(fd: number, cmd: number, key: number, value: number, next: number, flags: bigint): number {
    const entry = fd >= 0 ? this.maps[fd] : undefined;
    if (entry === undefined) return -EBADF;
    const { keySize, opValueSize, guestAccess } = entry.info;
    if (guestAccess === 'none') return -EPERM;
    const buf = this.memory.u8;
    const len = buf.length;
    const keyOff = keySize === 0 ? -1 : key;
    if (keySize !== 0 && key + keySize > len) return -EFAULT;
    const f = flags === 0n ? 0 : flags <= 0xffffffffn && flags >= 0n ? Number(flags) : -1;
    if (f < 0) return -EINVAL;
    switch (cmd) {
      case CMD_UPDATE:
        if (value + opValueSize > len) return -EFAULT;
        if (guestAccess !== undefined) {
          const refused = this.updateRefused(guestAccess, buf, value, opValueSize);
          if (refused) return refused;
        }
        return entry.obj.mapOperate(cmd, fd, buf, keyOff, value, f);
      case CMD_LOOKUP:
      case CMD_LOOKUP_AND_DELETE:
        if (value + opValueSize > len) return -EFAULT;
        return entry.obj.mapOperate(cmd, fd, buf, keyOff, value, f);
      case CMD_DELETE:
        return entry.obj.mapOperate(cmd, fd, buf, keyOff, -1, f);
      case CMD_NEXT_KEY:
        if (next + keySize > len) return -EFAULT;
        return entry.obj.mapOperate(cmd, fd, buf, key === 0 ? -1 : keyOff, next, f);
      default:
        return -EINVAL;
    }
  }

  /** the backend's rule for an update of this map (MapInfo.guestAccess): 0 or -errno */
  private updateRefused(access: GuestMapAccess, buf: Uint8Array, value: number, opValueSize: number): number {
    switch (access) {
      case 'none':
      case 'no-update':
        return -EPERM;
      case 'own-map-values': {
        // the value is the fd of the inner map: one of the guest's own, nothing else of the process
        if (opValueSize < 4) return -EINVAL;
        const inner = (buf[value]! | (buf[value + 1]! << 8) | (buf[value + 2]! << 16) | (buf[value + 3]! << 24)) >>> 0;
        return this.maps[inner] === undefined ? -EBADF : 0;
      }
      case 'no-prog-fd':
        // int32 at byte 4: bpf_devmap_val / bpf_cpumap_val's bpf_prog.fd (> 0: a program)
        return opValueSize >= 8 && (buf[value + 4]! | (buf[value + 5]! << 8) | (buf[value + 6]! << 16) | (buf[value + 7]! << 24)) > 0 ? -EPERM : 0;
    }
  }

  /** the imports the host gives the guest as Wasm functions of its own modules (callback.ts) */
  private hostWasmImports(): Map<unknown, string> {
    const known = new Map<unknown, string>();
    if (this.gate) known.set(this.gate.poll, `${WASM_BPF_MODULE}.wasm_bpf_buffer_poll`);
    return known;
  }
}
