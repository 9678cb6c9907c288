// The userspace backend: eBPF objects run in the TypeScript VM (./vm) instead of the kernel.
//
// load(): src/object/loader.ts reads and links the object, src/object/core.ts applies CO-RE against a
// target BTF (the object's own by default, see UserspaceBackendOptions.coreTarget), every map becomes a
// userspace map (./maps) whose values live in the object's VM memory, and every program is validated
// and resolved by vm.load() against an environment whose helpers are ./helpers.ts. The ABI layer then
// reaches maps through mapOperate() and ring/perf buffers through openRecords(), exactly as with the
// kernel. Programs run when something calls UserspaceObject.run() (tests, later: live attach).

import fs from 'node:fs';
import os from 'node:os';
import type { Backend, LoadedObject, LoadOptions, MapInfo, ProgramInfo, RecordSource } from '../backend.js';
import { BackendError } from '../../src/errors.js';
import { hasEdits } from '../../src/object/edits.js';
import { type Btf, BtfError, parseBtf } from '../../src/object/btf.js';
import { applyCoreRelocations, CoreError } from '../../src/object/core.js';
import { type BpfObject, type BpfProgram, insn as I, loadObject, ObjectError, OP_CALL, OP_LDDW } from '../../src/object/loader.js';
import { vm, VmError, type Engine, type Helper, type RunResult, type VmEnvironment, type VmMemory, type VmProgram } from './vm/index.js';
import { buildHelpers, type CurrentTask, helperName, type RunContext } from './helpers.js';
import { ERRNO, HELPER, MAP_TYPE } from '../../src/kernel/uapi.js';
import { SHARED_MAP_TYPES, SharedMap } from './maps/shared.js';
import type { AgentGroup, AgentNotice } from './attach/session.js';
import { agentInsns, type MapForAgent } from './attach/program.js';
import { checkAgentHelpers } from './attach/agent-helpers.js';
import { uprobeTarget } from './attach/target.js';
import { syscallEvent, syscallTarget } from './attach/syscall-target.js';
import { callsHelper, encodeTaskLayout, taskFieldsRead, taskFieldsUnfilled, taskLayout } from './attach/task-layout.js';
import { resolveUprobe } from './attach/symbols.js';
import { loadNative } from '../linux/native.js';
import { DEFAULT_POLICY, type Policy } from '../../src/policy/policy.js';
import { allowUprobe } from '../../src/policy/enforce.js';
import {
  createMap,
  E,
  MapCreateError,
  mapTypeName,
  PerfEventArrayMap,
  ProgArrayMap,
  RingBufMap,
  type UserMap,
} from './maps/index.js';

export type { CurrentTask } from './helpers.js';

export interface UserspaceBackendOptions {
  /** "possible CPUs" of per-CPU maps and perf buffers (default: this machine's CPU count) */
  ncpus?: number;
  /** largest storage one map may take, in bytes (default 64 MiB); larger maps fail to load with E2BIG */
  maxMapBytes?: number;
  /** VM memory per object, in 64 KiB pages (default 16384 = 1 GiB) */
  maxMemoryPages?: number;
  /**
   * BTF that CO-RE relocations resolve against: 'local' (default: the object's own BTF, so the layouts
   * the program was compiled with; what a userspace run whose contexts the backend builds wants),
   * 'vmlinux' (/sys/kernel/btf/vmlinux: layouts of the running kernel), or any parsed Btf.
   */
  coreTarget?: 'local' | 'vmlinux' | Btf;
  /** VM engine for runs (default 'jit') */
  engine?: Engine;
  /** instruction budget per run (default: the VM's) */
  budget?: number;
  /**
   * The run's StopSignal shared buffer (src/runtime/stop.ts): blocking polls wait on it and return
   * -EINTR once it is set. Without it a poll waits at most its timeout (never forever: no program can
   * produce records while the guest's thread is blocked).
   */
  stop?: SharedArrayBuffer;
  /** bpf_trace_printk output (default: kept in UserspaceObject.traceLines only) */
  trace?: (text: string) => void;
  /** perf_event_array: bytes of records per CPU buffer (default 64 pages, as the linux backend) */
  perfBytesPerCpu?: number;
  /** the task runs pretend to be in (default: this process) */
  task?: CurrentTask;
  /** CLOCK_MONOTONIC in ns (default process.hrtime.bigint) */
  clock?: () => bigint;
  /**
   * The agents of the run (the launched command's, joined processes', ./attach/session.ts): with them, maps of the types
   * native/agent/maps implements live in shared memory and uprobe/uretprobe programs attach in the traced
   * process, running there at each hit. Without it, attach() has no process to trace.
   */
  agent?: AgentGroup;
  /** with agents: an eventfd the run's stop already writes (another backend's wake fd), else one is made */
  stopFd?: number;
  /** what every user must see (a hook disabled by a fault, a full ring buffer's drops): the host's stderr */
  warn?: (line: string) => void;
  /** diagnostics (--verbose) */
  log?: (line: string) => void;
}

export interface RunOptions {
  /** the current task for this run (default: the backend's) */
  task?: CurrentTask;
  /** the CPU this run is on (default 0; < ncpus) */
  cpu?: number;
  engine?: Engine;
  budget?: number;
  /** r1..r5; default r1 = address of the ctx copy, r2 = its length */
  args?: readonly bigint[];
}

/** the tier the agent's reply to a HOOK names: the trap tier says so ('hook 3 at 0x... (trap hook: ...)') */
function hookTier(message: string): string {
  return /\(trap hook\b/.test(message) ? 'trap hook (an int3 per hit, ~2-3 us: the inline hook refused this entry)' : 'inline hook';
}

const DEFAULT_MAX_MAP_BYTES = 64 * 1024 * 1024;
/** the section heads attach() takes: uprobes and uretprobes, run by the agent of a traced process */
const USERSPACE_HEADS = new Set(['uprobe', 'uprobe.s', 'uretprobe', 'uretprobe.s']);
/** opaque map handles: far above any VM address, so a program dereferencing one faults */
const HANDLE_BASE = 1n << 40n;
/** fds of userspace maps and programs: unique in the process, not real file descriptors */
let nextFd = 1 << 20;

let vmlinuxBtf: Btf | undefined;
/** the BTF each loaded object was CO-RE relocated against (the task_struct image is laid out by it) */
const coreTargets = new WeakMap<BpfObject, Btf>();
function hostVmlinux(): Btf {
  if (!vmlinuxBtf) {
    const path = '/sys/kernel/btf/vmlinux';
    if (!fs.existsSync(path)) throw new BackendError(`CO-RE target 'vmlinux' needs ${path}, which this system lacks`, E.ENOENT);
    vmlinuxBtf = parseBtf(new Uint8Array(fs.readFileSync(path)));
  }
  return vmlinuxBtf;
}

function defaultTask(): CurrentTask {
  return {
    pid: process.pid,
    tgid: process.pid,
    uid: process.getuid?.() ?? 0,
    gid: process.getgid?.() ?? 0,
    comm: (process.title || 'node').slice(0, 15),
  };
}

export class UserspaceBackend implements Backend {
  readonly name = 'userspace' as const;
  readonly ncpus: number;
  private readonly stopFlag: Int32Array | undefined;
  private readonly objects = new Set<UserspaceObject>();
  /** with agents: the eventfd a stop writes, which shared rings' polls also wait on */
  private readonly stopFd: number;

  constructor(readonly options: UserspaceBackendOptions = {}) {
    this.ncpus = Math.max(1, options.ncpus ?? os.cpus().length);
    this.stopFlag = options.stop ? new Int32Array(options.stop, 0, 1) : undefined;
    this.stopFd = !options.agent ? -1 : (options.stopFd ?? loadNative().eventFd());
    options.agent?.onNotice((n, pid) => this.notice(n, pid));
  }

  /**
   * Without agents no eventfd: blocking polls wait on the stop flag (UserspaceBackendOptions.stop). With
   * agents, the eventfd the run's stop writes: polls of shared rings wait on it beside the ring's own.
   */
  wakeFd(): number {
    return this.stopFd;
  }

  dispose(): void {
    for (const o of [...this.objects]) o.close();
    if (this.stopFd >= 0 && this.options.stopFd === undefined) loadNative().closeFd(this.stopFd);
  }

  private notice(n: AgentNotice, pid: number): void {
    if (n.kind === 'trace') {
      const text = n.message.replace(/\n$/, '');
      this.options.trace?.(text);
      this.options.log?.(`wasm-bpf: bpf_trace_printk (pid ${pid}, hook ${n.hookId}): ${text}`);
    } else {
      (this.options.warn ?? this.options.log)?.(`wasm-bpf: userspace: in pid ${pid}: ${n.message}`);
    }
  }

  load(bytes: Uint8Array, opts?: LoadOptions): UserspaceObject {
    const what = opts?.objectName ? `object '${opts.objectName}'` : 'the eBPF object';
    if (hasEdits(opts?.edits)) {
      // the plan applies edits (ring buffers as perf event arrays) only for the kernel, where ring buffers are missing
      throw new BackendError(`cannot load ${what}: the userspace backend does not apply map edits of compat passes`, E.EOPNOTSUPP);
    }
    let obj: BpfObject;
    try {
      obj = opts?.parsed ?? loadObject(bytes);
    } catch (e) {
      if (e instanceof ObjectError) throw new BackendError(`cannot load ${what}: ${e.message}`, e.code === 'OBJECT_UNSUPPORTED' ? E.EOPNOTSUPP : E.EINVAL, '', undefined, { cause: e });
      throw e;
    }
    if (obj.programs.length === 0 && obj.maps.length === 0) throw new BackendError(`${what} has neither programs nor maps`, E.EINVAL);
    if (obj.coreRelocs.length > 0) {
      const t = this.options.coreTarget ?? 'local';
      try {
        const target = t === 'local' ? obj.btf! : t === 'vmlinux' ? hostVmlinux() : t;
        applyCoreRelocations(obj, target);
        coreTargets.set(obj, target);
      } catch (e) {
        if (e instanceof CoreError || e instanceof BtfError) throw new BackendError(`CO-RE relocation of ${what} failed: ${e.message}`, E.EINVAL, '', undefined, { cause: e });
        throw e;
      }
    }
    const objects = this.objects;
    const o: UserspaceObject = new UserspaceObject(this, obj, this.stopFlag, opts?.policy ?? DEFAULT_POLICY, function (this: void, self: UserspaceObject) {
      objects.delete(self);
    });
    objects.add(o);
    return o;
  }
}

interface MapEntry {
  /** a TypeScript map in the object's VM memory (runs in this process), or ... */
  map?: UserMap;
  /** ... a map in shared memory (with agents, for the types native/agent/maps implements) */
  shared?: SharedMap;
  info: MapInfo;
  handle: bigint;
}

interface ProgEntry {
  info: ProgramInfo;
  source: BpfProgram;
  fd: number;
  vm: VmProgram;
  /** the run's id for it and its instructions for the agents, once attached */
  agentId?: number;
  agentInsns?: Uint8Array;
}

/** where a shared map's value seems to be to the TypeScript VM's checks (programs of such objects run in the agents) */
const SHARED_VALUE_BASE = 1n << 44n;

/** a global-data map's value address as the VM resolves `lddw src 6` (shared maps: a stand-in, see SHARED_VALUE_BASE) */
function directValue(e: MapEntry | undefined): bigint | undefined {
  if (e?.shared) return e.shared.spec.type === MAP_TYPE.ARRAY ? SHARED_VALUE_BASE + (BigInt(e.info.fd) << 20n) : undefined;
  const a = e?.map?.directValue();
  return a === undefined ? undefined : BigInt(a);
}

export class UserspaceObject implements LoadedObject {
  readonly backend = 'userspace' as const;
  readonly programs: ProgramInfo[] = [];
  readonly maps: MapInfo[] = [];
  /** bpf_trace_printk output of every run, in order */
  readonly traceLines: string[] = [];
  readonly memory: VmMemory;
  readonly object: BpfObject;
  private readonly byFd = new Map<number, MapEntry>();
  private readonly byHandle = new Map<bigint, UserMap>();
  private readonly mapList: MapEntry[] = [];
  private readonly progs = new Map<string, ProgEntry>();
  private readonly progsByFd = new Map<number, ProgEntry>();
  private readonly sources = new Set<RecordSource>();
  private readonly ringbufs: RingBufMap[] = [];
  private readonly helpers: Map<number, Helper>;
  private runCtx: RunContext;
  private closed = false;
  private running = false;
  /** the agent's ids of this object's hooks */
  private readonly hooks: number[] = [];

  constructor(
    private readonly owner: UserspaceBackend,
    obj: BpfObject,
    private readonly stopFlag: Int32Array | undefined,
    /** what the run's policy lets the object attach to (uprobe binaries) */
    private readonly policy: Policy,
    private readonly onClose: (self: UserspaceObject) => void,
  ) {
    this.object = obj;
    const bopts = owner.options;
    this.memory = vm.createMemory({ maximumPages: bopts.maxMemoryPages ?? 16384 });
    this.runCtx = { task: bopts.task ?? defaultTask(), cpu: 0, taskAddr: 0 };
    const clock = bopts.clock ?? ((): bigint => process.hrtime.bigint());
    this.helpers = buildHelpers({
      mapByHandle: (h) => this.byHandle.get(h),
      ringbufs: () => this.ringbufs,
      run: () => this.runCtx,
      trace: (text) => {
        this.traceLines.push(text);
        bopts.trace?.(text);
      },
      now: clock,
      poisonInfo: (call) => `program '${call.program.name}' insn ${call.pc}`,
    });
    try {
      this.createMaps();
      this.loadPrograms();
    } catch (e) {
      this.close();
      throw e;
    }
  }

  // ---- load ---------------------------------------------------------------------------------------------

  private createMaps(): void {
    const ncpus = this.owner.ncpus;
    const env = {
      memory: this.memory,
      ncpus,
      cpu: () => this.runCtx.cpu,
      maxMapBytes: this.owner.options.maxMapBytes ?? DEFAULT_MAX_MAP_BYTES,
    };
    for (const def of this.object.maps) {
      const isPerf = def.type === MAP_TYPE.PERF_EVENT_ARRAY;
      const spec = {
        name: def.name,
        type: def.type,
        // libbpf fills these for perf event arrays
        keySize: isPerf && def.keySize === 0 ? 4 : def.keySize,
        valueSize: isPerf && def.valueSize === 0 ? 4 : def.valueSize,
        maxEntries: isPerf && def.maxEntries === 0 ? ncpus : def.maxEntries,
        flags: def.flags,
      };
      const fd = nextFd++;
      const handle = HANDLE_BASE + BigInt(fd);
      if (this.owner.options.agent && SHARED_MAP_TYPES.has(spec.type)) {
        let shared: SharedMap;
        try {
          shared = new SharedMap(spec, ncpus, this.owner.options.perfBytesPerCpu ?? 64 * 4096, def.kind === 'data' ? def.initial : undefined);
        } catch (e) {
          if (e instanceof MapCreateError) throw new BackendError(`cannot create map '${def.name}' (${mapTypeName(def.type)}) in shared memory: ${e.message}`, e.errno, '', undefined, { cause: e });
          throw e;
        }
        if (def.kind === 'data' && def.readonly) shared.freeze();
        const info: MapInfo = { name: def.name, type: spec.type, keySize: spec.keySize, valueSize: spec.valueSize, maxEntries: spec.maxEntries, fd, opValueSize: shared.opValueSize };
        const entry: MapEntry = { shared, info, handle };
        this.mapList.push(entry);
        this.byFd.set(fd, entry);
        this.maps.push(info);
        continue;
      }
      let map: UserMap;
      try {
        map = createMap<ProgEntry>(spec, env, {
          initial: def.initial,
          perfBytesPerCpu: this.owner.options.perfBytesPerCpu,
          progByFd: (fd) => {
            const p = this.progsByFd.get(fd);
            return p ? { fd, program: p } : undefined;
          },
        });
      } catch (e) {
        if (e instanceof MapCreateError) throw new BackendError(`cannot create map '${def.name}' (${mapTypeName(def.type)}): ${e.message}`, e.errno, '', undefined, { cause: e });
        throw e;
      }
      // libbpf freezes .rodata after load: the syscall side can no longer write it
      if (def.kind === 'data' && def.readonly) map.frozen = true;
      if (map instanceof RingBufMap) this.ringbufs.push(map);
      const info: MapInfo = { name: def.name, type: spec.type, keySize: spec.keySize, valueSize: spec.valueSize, maxEntries: spec.maxEntries, fd, opValueSize: map.opValueSize };
      const entry: MapEntry = { map, info, handle };
      this.mapList.push(entry);
      this.byFd.set(fd, entry);
      this.byHandle.set(handle, map);
      this.maps.push(info);
    }
  }

  private environment(): VmEnvironment {
    const list = this.mapList;
    return {
      memory: this.memory,
      helper: (id) => this.helpers.get(id),
      mapByFd: (fd) => this.byFd.get(fd)?.handle,
      mapValue: (fd) => directValue(this.byFd.get(fd)),
      mapByIndex: (i) => list[i]?.handle,
      mapValueByIndex: (i) => directValue(list[i]),
      tailCall: (handle, index) => {
        const m = this.byHandle.get(handle);
        return m instanceof ProgArrayMap ? (m.slot(index) as ProgEntry | undefined)?.vm : undefined;
      },
    };
  }

  private loadPrograms(): void {
    const env = this.environment();
    for (const p of this.object.programs) {
      const where = `program '${p.name}' (${p.section})`;
      const ext = p.externRelocs[0];
      if (ext) {
        throw new BackendError(
          `${where} uses the extern ${ext.kind === 'kconfig' ? 'Kconfig value' : ext.via === 'call' ? 'kernel function (kfunc)' : 'kernel symbol'} '${ext.name}', which the userspace backend cannot provide`,
          E.EOPNOTSUPP,
        );
      }
      // unknown helpers, named (the VM would refuse them too, by number)
      for (let i = 0; i < p.insns.length / 8; i++) {
        const op = I.code(p.insns, i);
        if (op === OP_LDDW) {
          i++;
          continue;
        }
        if (op !== OP_CALL || I.src(p.insns, i) !== 0) continue;
        const id = I.imm(p.insns, i);
        if (id !== HELPER.tail_call && !this.helpers.has(id)) {
          throw new BackendError(`${where} calls ${helperName(id)} at insn ${i}, which the userspace backend does not implement`, E.EINVAL);
        }
      }
      // with agents, uprobe programs run in the traced process: only the helpers the agent implements
      if (this.owner.options.agent && (USERSPACE_HEADS.has(p.section.split('/', 1)[0]!) || syscallEvent(p.section))) checkAgentHelpers(where, p.insns);
      let loaded: VmProgram;
      try {
        loaded = vm.load(p.insns, { name: p.name, env });
      } catch (e) {
        if (e instanceof VmError) throw new BackendError(`${where} was refused by the userspace VM: ${e.message}`, E.EINVAL, '', undefined, { cause: e });
        throw e;
      }
      const fd = nextFd++;
      const info: ProgramInfo = { name: p.name, section: p.section, type: p.type };
      const entry: ProgEntry = { info, source: p, fd, vm: loaded };
      this.programs.push(info);
      this.progs.set(p.name, entry);
      this.progsByFd.set(fd, entry);
    }
    // prog_array `values = { [i] = &prog }` initializers
    for (const def of this.object.maps) {
      if (def.initSlots.length === 0) continue;
      const m = this.mapList[def.index]!.map;
      if (!(m instanceof ProgArrayMap)) {
        throw new BackendError(`map '${def.name}' (${mapTypeName(def.type)}): initial values are only supported for prog arrays`, E.EOPNOTSUPP);
      }
      for (const s of def.initSlots) {
        const p = this.progs.get(s.target);
        if (!p) throw new BackendError(`map '${def.name}' slot ${s.slot} names '${s.target}', which is not a program of the object`, E.EINVAL);
        m.set(s.slot, { fd: p.fd, program: p });
      }
    }
  }

  // ---- LoadedObject ---------------------------------------------------------------------------------------

  attach(program: string, target: string | undefined): void {
    if (this.closed) throw new BackendError('the object is closed', E.EBADF);
    const p = this.progs.get(program);
    if (!p) {
      throw new BackendError(`no program named '${program}' in the object (programs: ${this.programs.map((x) => x.name).join(', ') || 'none'})`, E.ENOENT);
    }
    const what = `program '${program}' (${p.info.section}${target ? `, target '${target}'` : ''})`;
    const head = p.info.section.split('/', 1)[0]!;
    const sys = syscallEvent(p.info.section);
    if (!USERSPACE_HEADS.has(head) && !sys) {
      throw new BackendError(
        `attaching ${what} is not supported by the userspace backend yet: it attaches uprobe and uretprobe programs, and tracepoint/syscalls/sys_enter_*|sys_exit_* (x86_64, arm64), tracepoint/raw_syscalls/sys_enter|sys_exit (x86_64) and tp/sched/sched_process_exec|exit|fork (x86_64, arm64) programs in launched commands (this is a ${head} program)`,
        E.EOPNOTSUPP,
        '',
        'use --backend linux (root, or CAP_BPF and CAP_PERFMON) to run it in the kernel',
      );
    }
    const agent = this.owner.options.agent;
    if (!agent) {
      throw new BackendError(
        `attaching ${what} needs a process to trace: the userspace backend runs ${sys ? 'syscall and process event tracepoint' : 'uprobe'} programs inside the processes it launches`,
        E.EOPNOTSUPP,
        '',
        'run the command to trace under the app: wasm-bpf run APP.wasm [ARGS] -- COMMAND [ARGS], or use --backend linux as root',
      );
    }
    if (sys) return this.attachSyscall(p, what);
    this.sendTaskLayout(p, what);
    const t = uprobeTarget(p.info.section, target);
    // the policy's uprobe binaries: what was checked is what is probed
    const resolved = resolveUprobe({ ...t, binary: allowUprobe(this.policy, t.binary, `attaching ${what}`) });
    if (!agent.open) throw new BackendError(`attaching ${what}: no traced process is running any more (pids ${agent.pids})`, ERRNO.ESRCH);
    if (p.agentId === undefined || p.agentInsns === undefined) {
      p.agentInsns = agentInsns(program, p.source.insns, (i) => this.mapForAgent(i));
      p.agentId = agent.programId();
    }
    const shared = this.mapList.flatMap((e) => (e.shared ? [e.shared] : []));
    const h = agent.hook(shared, { id: p.agentId, name: program, insns: p.agentInsns }, resolved);
    this.hooks.push(h.id);
    const where = `${resolved.path}:${resolved.func?.name ?? `0x${resolved.fileOffset.toString(16)}`}`;
    for (const ph of h.processes) {
      if (ph.pending) this.owner.options.log?.(`wasm-bpf: userspace: ${what}: ${where} is not mapped in pid ${ph.pid} (yet); the hook waits for it (${ph.message})`);
      else this.owner.options.log?.(`wasm-bpf: userspace: ${what} hooked ${where} in pid ${ph.pid}: ${hookTier(ph.message)} (${ph.message})`);
    }
  }

  /** a tp/syscalls program: its number's libc sites rewritten in every traced process (attach/syscall-target.ts) */
  private attachSyscall(p: ProgEntry, what: string): void {
    const agent = this.owner.options.agent!;
    const t = syscallTarget(p.info.section);
    if (!agent.open) throw new BackendError(`attaching ${what}: no traced process is running any more (pids ${agent.pids})`, ERRNO.ESRCH);
    if (p.agentId === undefined || p.agentInsns === undefined) {
      p.agentInsns = agentInsns(p.info.name, p.source.insns, (i) => this.mapForAgent(i));
      p.agentId = agent.programId();
    }
    this.sendTaskLayout(p, what);
    const shared = this.mapList.flatMap((e) => (e.shared ? [e.shared] : []));
    const h = agent.syscall(shared, { id: p.agentId, name: p.info.name, insns: p.agentInsns }, t);
    this.hooks.push(h.id);
    for (const ph of h.processes) this.owner.options.log?.(`wasm-bpf: userspace: ${what} traces ${t.event} (${t.sched ? 'process event' : t.raw ? 'every syscall' : `syscall ${t.nr}`}, layout from ${t.layout.source}) in pid ${ph.pid}: ${ph.message}`);
  }

  /**
   * A program calling bpf_get_current_task(_btf): the agents get the task_struct image's layout from the BTF
   * the object was relocated against (its own, else its programs' local types); --verbose names the fields it
   * reads that the image leaves zero, once per program.
   */
  private sendTaskLayout(p: ProgEntry, what: string): void {
    if (!callsHelper(p.source.insns, [HELPER.get_current_task, HELPER.get_current_task_btf])) return;
    const btf = coreTargets.get(this.object) ?? this.object.btf;
    const layout = btf ? taskLayout(btf) : undefined;
    if (!layout) {
      this.owner.options.log?.(`wasm-bpf: userspace: ${what} calls bpf_get_current_task, but its BTF has no struct task_struct: the helper returns NULL (reads through it: -EFAULT)`);
      return;
    }
    this.owner.options.agent!.task(encodeTaskLayout(layout));
    const unfilled = taskFieldsUnfilled(taskFieldsRead(this.object).get(p.info.name) ?? []);
    if (unfilled.length) this.owner.options.log?.(`wasm-bpf: userspace: ${what} reads task_struct.${unfilled.join(', task_struct.')}, which the userspace backend leaves 0`);
  }

  private mapForAgent(index: number): MapForAgent {
    const e = this.mapList[index];
    if (!e) return { refused: `it names map index ${index}, which the object does not have` };
    if (e.shared) return { id: e.shared.id };
    return { refused: `it uses map '${e.info.name}' (${mapTypeName(e.info.type)}), which cannot live in shared memory (the agent has: ${[...SHARED_MAP_TYPES].map(mapTypeName).join(', ')})` };
  }

  mapOperate(cmd: number, fd: number, mem: Uint8Array, keyOff: number, valOff: number, flags: number): number {
    const entry = this.closed ? undefined : this.byFd.get(fd);
    if (!entry) return -E.EBADF;
    if (entry.shared) return entry.shared.operate(cmd, mem, keyOff, valOff, flags);
    const { map, info } = entry;
    if (!map) return -E.EBADF;
    const len = mem.byteLength;
    const view = (off: number, n: number): Uint8Array | undefined => (off < 0 ? undefined : off + n <= len ? mem.subarray(off, off + n) : undefined);
    if (keyOff >= 0 && keyOff + info.keySize > len) return -E.EFAULT;
    const key = view(keyOff, info.keySize);
    try {
      switch (cmd) {
        case 1: {
          const out = view(valOff, map.opValueSize);
          if (!out) return -E.EFAULT;
          return map.sysLookup(key, out, flags);
        }
        case 2: {
          const value = view(valOff, map.opValueSize);
          if (!value) return -E.EFAULT;
          return map.sysUpdate(key, value, flags);
        }
        case 3:
          return map.sysDelete(key, flags);
        case 4: {
          const out = view(valOff, info.keySize);
          if (!out && info.keySize > 0) return -E.EFAULT;
          return map.sysNextKey(key, out ?? new Uint8Array(0), flags);
        }
        case 21: {
          const out = view(valOff, map.opValueSize);
          if (!out) return -E.EFAULT;
          return map.sysLookupAndDelete(key, out, flags);
        }
        default:
          return -E.EINVAL;
      }
    } catch {
      return -E.EINVAL;
    }
  }

  openRecords(fd: number): RecordSource {
    if (this.closed) throw new BackendError('the object is closed', E.EBADF);
    const entry = this.byFd.get(fd);
    if (!entry) throw new BackendError(`map fd ${fd} does not belong to this object`, E.EBADF);
    if (entry.shared) {
      if (!entry.shared.isRing) throw new BackendError(`map '${entry.info.name}' is neither a ring buffer nor a perf event array`, E.EINVAL);
      entry.shared.openReaders();
      const src = new SharedRecordSource(entry.shared, this.owner.wakeFd(), this.owner.options.agent, () => this.sources.delete(src));
      this.sources.add(src);
      return src;
    }
    const m = entry.map;
    if (!(m instanceof RingBufMap) && !(m instanceof PerfEventArrayMap)) {
      throw new BackendError(`map '${entry.info.name}' is neither a ring buffer nor a perf event array`, E.EINVAL);
    }
    if (m instanceof PerfEventArrayMap) m.openReaders();
    const src = new UserspaceRecordSource(m, this.stopFlag, () => this.sources.delete(src));
    this.sources.add(src);
    return src;
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    const agent = this.owner.options.agent;
    for (const h of this.hooks) {
      try {
        agent?.unhook(h);
      } catch (e) {
        this.owner.options.log?.(`wasm-bpf: userspace: removing hook ${h}: ${e instanceof Error ? e.message : String(e)}`);
      }
    }
    this.hooks.length = 0;
    // what the object had in the agents goes with it (a run that loads and closes objects again and again
    // must not fill the agents' tables)
    try {
      agent?.drop(
        [...this.progs.values()].flatMap((p) => (p.agentId !== undefined ? [p.agentId] : [])),
        this.mapList.flatMap((e) => (e.shared ? [e.shared.id] : [])),
      );
    } catch (e) {
      this.owner.options.log?.(`wasm-bpf: userspace: freeing the object in the agents: ${e instanceof Error ? e.message : String(e)}`);
    }
    for (const s of [...this.sources]) s.close();
    for (const e of this.mapList) {
      if (e.shared) {
        const drops = e.shared.drops();
        if (drops > 0) {
          const what = e.info.type === MAP_TYPE.RINGBUF ? 'records refused because it was full' : 'samples lost because its buffer was full';
          this.owner.options.warn?.(`wasm-bpf: userspace: map '${e.info.name}': ${drops} ${what}`);
        }
        e.shared.close();
      } else e.map?.close();
    }
    this.byFd.clear();
    this.byHandle.clear();
    this.onClose(this);
  }

  // ---- beyond LoadedObject: runs, and access for tests ---------------------------------------------------

  /** the userspace map behind a name */
  map(name: string): UserMap | undefined {
    return this.mapList.find((e) => e.info.name === name)?.map;
  }

  /** the shared-memory map behind a name (with agents) */
  sharedMap(name: string): SharedMap | undefined {
    return this.mapList.find((e) => e.info.name === name)?.shared;
  }

  /** the program's fd (what a prog_array update takes) */
  programFd(name: string): number | undefined {
    return this.progs.get(name)?.fd;
  }

  /** the loaded VM program (for disassembly, compile timing) */
  vmProgram(name: string): VmProgram | undefined {
    return this.progs.get(name)?.vm;
  }

  /**
   * Runs a program once with `ctx` copied into VM memory (r1 = its address; the copy is written back
   * into `ctx` after the run). Returns r0 and the instruction count; throws VmError on a fault (the
   * message names the instruction) and BackendError for a bad program name / closed object.
   */
  run(program: string, ctx?: Uint8Array, opts: RunOptions = {}): RunResult {
    if (this.closed) throw new BackendError('the object is closed', E.EBADF);
    const p = this.progs.get(program);
    if (!p) throw new BackendError(`no program named '${program}' in the object`, E.ENOENT);
    if (this.running) throw new BackendError('a run of this object is already in progress (runs do not nest)', E.EBUSY);
    const cpu = opts.cpu ?? 0;
    if (!(cpu >= 0 && cpu < this.owner.ncpus)) throw new BackendError(`cpu ${cpu} is out of range (ncpus ${this.owner.ncpus})`, E.EINVAL);
    const task = opts.task ?? this.owner.options.task ?? this.runCtx.task;
    let taskRegion;
    this.running = true;
    try {
      const ts = task.taskStruct;
      const size = ts === undefined ? 0 : ts instanceof Uint8Array ? ts.length : ts.size;
      if (ts !== undefined && size > 0) {
        taskRegion = this.memory.alloc(size, { kind: 'other', name: 'task_struct', writable: false });
        const image = ts instanceof Uint8Array ? ts : ts.build(taskRegion.addr);
        this.memory.bytes().set(image.subarray(0, size), taskRegion.addr);
      }
      this.runCtx = { task, cpu, taskAddr: taskRegion?.addr ?? 0 };
      return vm.execute(p.vm, ctx, {
        engine: opts.engine ?? this.owner.options.engine,
        budget: opts.budget ?? this.owner.options.budget,
        inputKind: 'ctx',
        args: opts.args,
      });
    } finally {
      for (const e of this.mapList) e.map?.afterRun();
      if (taskRegion) this.memory.free(taskRegion);
      this.running = false;
    }
  }
}

/** a shared ring buffer or perf event array: records the agents wrote, waiting on its eventfd and the run's stop fd */
class SharedRecordSource implements RecordSource {
  private open = true;

  constructor(
    private readonly map: SharedMap,
    private readonly stopFd: number,
    private readonly agent: AgentGroup | undefined,
    private readonly onClose: () => void,
  ) {}

  poll(timeoutMs: number, out: Uint8Array): number {
    if (!this.open) return -E.EBADF;
    const n = this.map.poll(timeoutMs, out, this.stopFd);
    this.agent?.poll();
    return n;
  }

  pendingSize(): number {
    return this.map.pendingSize();
  }

  lost(): number {
    return this.map.spec.type === MAP_TYPE.PERF_EVENT_ARRAY ? this.map.drops() : 0;
  }

  close(): void {
    if (!this.open) return;
    this.open = false;
    this.onClose();
  }
}

class UserspaceRecordSource implements RecordSource {
  private open = true;
  private readonly idle: Int32Array;

  constructor(
    private readonly map: RingBufMap | PerfEventArrayMap,
    private readonly stopFlag: Int32Array | undefined,
    private readonly onClose: () => void,
  ) {
    this.idle = new Int32Array(new SharedArrayBuffer(4));
  }

  poll(timeoutMs: number, out: Uint8Array): number {
    if (!this.open) return -E.EBADF;
    const n = this.map.drain(out);
    if (n !== 0) return n;
    if (this.stopFlag && Atomics.load(this.stopFlag, 0) !== 0) return -ERRNO.EINTR;
    if (timeoutMs === 0) return 0;
    if (this.stopFlag) {
      // nothing in this thread can produce records while we wait: sleep until the timeout or a stop
      const r = Atomics.wait(this.stopFlag, 0, 0, timeoutMs < 0 ? Infinity : timeoutMs);
      if (r !== 'timed-out' && Atomics.load(this.stopFlag, 0) !== 0) return -ERRNO.EINTR;
    } else if (timeoutMs > 0) {
      Atomics.wait(this.idle, 0, 0, timeoutMs);
    }
    return this.map.drain(out);
  }

  pendingSize(): number {
    return this.map.pendingSize();
  }

  lost(): number {
    return this.map instanceof PerfEventArrayMap ? this.map.lost() : 0;
  }

  close(): void {
    if (!this.open) return;
    this.open = false;
    if (this.map instanceof PerfEventArrayMap) this.map.closeReaders();
    this.onClose();
  }
}

