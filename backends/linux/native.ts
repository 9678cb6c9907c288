// The contract of the native addon (native/, node-addon-api + cmake-js, linking Debian's libbpf).
// Everything here is thin: one call, one libbpf or kernel operation. Decisions live in TypeScript.
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import path from 'node:path';
import fs from 'node:fs';

/** Thrown by every native function that fails: a plain Error with these extra fields. */
export interface NativeErrorFields {
  /** positive errno (EPERM = 1, ...) */
  errno: number;
  /** 'EPERM', 'EINVAL', ... */
  code: string;
  /** the libbpf operation that failed, e.g. 'bpf_object__load' */
  op: string;
  /** libbpf's log captured during the call (includes the verifier log on a load failure) */
  log: string;
}

export interface NativeProgramInfo {
  name: string;
  section: string;
  /** enum bpf_prog_type */
  type: number;
  /** enum bpf_attach_type */
  expectedAttachType: number;
}

export interface NativeMapInfo {
  name: string;
  /** enum bpf_map_type */
  type: number;
  keySize: number;
  valueSize: number;
  maxEntries: number;
  /** -1 before load */
  fd: number;
  /** map_flags (BPF_F_*) */
  flags: number;
  /** where libbpf would pin it (and reuse a map already pinned there): set at open for a map declared
   * with pinning = LIBBPF_PIN_BY_NAME; '' for none */
  pinPath: string;
}

export interface NativeOpenOptions {
  /** libbpf btf_custom_path (vmlinux BTF used for CO-RE) */
  btfCustomPath?: string;
  /** 0 = capture warnings only, 1 = info, 2 = debug */
  logLevel?: number;
  /** per-program verifier log level passed to the kernel (0 = off; libbpf retries with 1 on failure) */
  kernelLogLevel?: number;
}

export interface NativeAddon {
  /** bpf_object__open_mem. Returns an object id (> 0). */
  open(bytes: Uint8Array, objectName: string, opts: NativeOpenOptions): number;
  programs(obj: number): NativeProgramInfo[];
  maps(obj: number): NativeMapInfo[];
  /** bpf_map__set_type + related (before load), e.g. ringbuf -> perf event array */
  setMapType(obj: number, mapName: string, type: number, keySize: number, valueSize: number, maxEntries: number): void;
  /** bpf_map__set_pin_path before load; '' clears it: the map is neither reused from nor pinned to bpffs */
  setMapPinPath(obj: number, mapName: string, path: string): void;
  /** bpf_map__set_map_flags before load */
  setMapFlags(obj: number, mapName: string, flags: number): void;
  /** bpf_object__load */
  load(obj: number): void;
  /** detach every link of the object, then bpf_object__close. Idempotent. */
  close(obj: number): void;

  /** bpf_program__attach (auto attach by section name). Returns a link id (> 0). */
  attachAuto(obj: number, prog: string): number;
  attachXdp(obj: number, prog: string, ifindex: number, flags: number): number;
  attachCgroup(obj: number, prog: string, cgroupFd: number): number;
  /** funcName '' means: offset is an absolute file offset */
  attachUprobe(obj: number, prog: string, retprobe: boolean, pid: number, binaryPath: string, funcName: string, offset: number): number;
  attachPerfEvent(obj: number, prog: string, perfFd: number): number;
  /** setsockopt(SO_ATTACH_BPF) on sockFd; the link owns sockFd and closes it on detach */
  attachSocket(obj: number, prog: string, sockFd: number): number;
  /**
   * bpf_map__attach_struct_ops on a loaded struct_ops map (registers it, e.g. a TCP congestion control).
   * link = true for a map created with BPF_F_LINK: then BPF_LINK_CREATE registers it and the link's fd
   * holds the registration (closing it, or the process's death, unregisters). Returns a link id.
   */
  attachStructOps(obj: number, mapName: string, link: boolean): number;
  /** destroy one link */
  detach(link: number): void;

  /** perf_event_open(attr{type, config, sample_period or sample_freq}, pid, cpu, -1, CLOEXEC) */
  perfEventOpen(type: number, config: number, freq: boolean, periodOrFreq: number, pid: number, cpu: number): number;
  /** socket(AF_PACKET, SOCK_RAW|SOCK_NONBLOCK|SOCK_CLOEXEC, htons(ETH_P_ALL)), bound to ifindex when > 0 */
  openPacketSocket(ifindex: number): number;
  /** if_nametoindex; 0 when no such interface */
  ifIndex(name: string): number;
  /** eventfd(0, EFD_CLOEXEC|EFD_NONBLOCK) */
  eventFd(): number;
  closeFd(fd: number): void;
  /** _exit(code): ends the process without waiting for its threads (a guest thread that does not yield) */
  exitNow(code: number): never;
  numPossibleCpus(): number;

  /** true when mapOp and bufferPoll have a V8 fast path in this build (Node 20 / V8 11.3, x86-64) */
  readonly fastCalls: boolean;
  /** calls that took the fast path so far (approximate; for tests and benchmarks) */
  fastCallCount(): number;

  // wasm_bpf_map_operate in C, for the guest to import directly (native/src/guestmaps.cc); present
  // only when fastCalls is true
  /** a slot and its function (the import, (i32 fd, i32 cmd, i32 key, i32 value, i32 next, i64 flags)
   * -> i32), or null when every slot is taken */
  guestMapOpen?(): [number, (...args: never[]) => number] | null;
  /** the guest's memory (its current buffer; memory.grow keeps the same store) */
  guestMapBind?(slot: number, buffer: ArrayBuffer): boolean;
  /** a map fd the guest may use, with its key size, map_operate value size and access (mapaccess.ts's
   * accessCode; 0: everything); without sizes: forget it */
  guestMapSet?(slot: number, fd: number, keySize?: number, opValueSize?: number, access?: number): boolean;
  /** the guest is done: its function answers -EBADF from now on */
  guestMapClose?(slot: number): void;
  /** no instance can call the slot's function any more (it was collected, or never instantiated): the
   * slot may go to another guest */
  guestMapRelease?(slot: number): void;
  // the same slot's record source for wasm_bpf_buffer_poll (src/abi/pollgate.ts)
  /** [fill, done]: fill (i64 handle, i32 fd, i32 stage, i32 len, i32 timeoutMs, i32 more) -> i32 and
   * done (i32 fd) -> i32, the slot's C functions, or null */
  guestPollFunctions?(slot: number): [(...args: never[]) => number, (...args: never[]) => number] | null;
  /** the backend's wake eventfd and the run's stop flag (an Int32 in shared memory) */
  guestPollBind?(slot: number, wakeFd: number, stop: SharedArrayBuffer): boolean;
  /** fd's polls read record buffer `buf` (a bufferPoll id) in C; -1: through the host's JavaScript */
  guestPollSet?(slot: number, fd: number, buf: number): boolean;
  /** whether an object handle of the guest is open */
  guestPollHandle?(slot: number, handle: number, open: boolean): boolean;
  /** a direct poll of fd is delivering its records right now */
  guestPollBusy?(slot: number, fd: number): boolean;

  /**
   * One bpf() syscall on a map; keys and values live in `mem` (the guest memory) at the given offsets,
   * already bounds-checked by the caller. keyOff -1 passes NULL (GET_NEXT_KEY's first key, queue maps).
   * cmd: 1 LOOKUP_ELEM (valOff = value), 2 UPDATE_ELEM (valOff = value), 3 DELETE_ELEM,
   * 4 GET_NEXT_KEY (valOff = next key). Returns 0 or -errno; never throws. With a Uint8Array `mem`,
   * optimized callers reach it as a V8 fast call (see fastCalls); any ArrayBuffer or view also works.
   */
  mapOp(cmd: number, fd: number, mem: Uint8Array | ArrayBuffer, keyOff: number, valOff: number, flags: number): number;

  /** ring_buffer__new on a BPF_MAP_TYPE_RINGBUF fd. Returns a buffer id. */
  ringbufOpen(mapFd: number): number;
  /** perf_buffer__new on a BPF_MAP_TYPE_PERF_EVENT_ARRAY fd. Returns a buffer id. */
  perfbufOpen(mapFd: number, pageCount: number): number;
  /**
   * Wait up to timeoutMs (0 = don't wait, -1 = forever) for records or for wakeFd to become readable,
   * then copy whole records into `out` as [u32 size][u32 reserved][size bytes, padded to 8] ...
   * Returns the number of records written (0 on timeout), -EINTR if wakeFd is readable (its counter is
   * left as is), -ENOBUFS if the next record alone does not fit `out` (see bufferPendingSize), or -errno.
   * wakeFd -1 means none; a poll with timeout 0 and no wake fd makes no syscall when nothing is queued.
   * The buffer keeps one epoll set (and a dup of the last wakeFd) between calls: pass the same wakeFd.
   * Records consumed from the kernel that do not fit are kept natively and delivered first next time;
   * none is ever dropped.
   */
  bufferPoll(buf: number, timeoutMs: number, wakeFd: number, out: Uint8Array | ArrayBuffer): number;
  /** size of the next pending record (0 if none) */
  bufferPendingSize(buf: number): number;
  /** perf buffer samples the kernel reported lost so far */
  bufferLost(buf: number): number;
  bufferClose(buf: number): void;

  /** libbpf's log captured since the last call on this thread (all levels up to logLevel) */
  takeLog(): string;

  // Feature probes (native/src/probe.cc, used by src/probe/). Never throw for a kernel refusal; every fd
  // they open is closed before they return.
  /** BPF_PROG_LOAD of `insns`, then (if loaded and `link` given) one BPF_LINK_CREATE. err/linkErr: 0 or -errno. */
  probeLoad(req: NativeProbeLoad): { err: number; linkErr: number; log: string };
  /** BPF_MAP_CREATE with the parameters the type needs: 0 or -errno (STRUCT_OPS: -524 means the type exists) */
  probeMapType(type: number): number;
  /**
   * perf_event_open (disabled) of each event on a background thread, in order, then close (closing waits
   * for RCU grace periods). Returns a batch id for probePerfEventsWait. name non-empty = kprobe/uprobe PMU
   * target (config1 = name, config2 = offset).
   */
  probePerfEventsStart(specs: NativePerfSpec[]): number;
  /** waits for the opens of a batch: 0 or -errno per event */
  probePerfEventsWait(batch: number): number[];
  /** lsm_list_modules(2) (Linux 6.8+): LSM ids, or -errno */
  lsmListModules(): number[] | number;

  // native/src/testrun.cc (the userspace VM's kernel differential tests)
  /**
   * BPF_PROG_LOAD of raw instructions (license GPL) as `progType`, one BPF_PROG_TEST_RUN with `data`
   * as data_in (repeat times), then close. Throws the errno Error (load failures carry the verifier log).
   */
  /** bpf_map_create (native/src/compat.cc): a map the caller owns (closeFd it), e.g. the ringbuf compat pass's scratch map */
  mapCreate(type: number, keySize: number, valueSize: number, maxEntries: number, name: string): number;
  /** the member names (nested ones included) of the object's BTF structs named pt_regs / user_pt_regs
   * (or ___flavours), and whether a user_pt_regs one exists (compat/ptregs' quick check) */
  ptRegsMembers(obj: number): { members: string[]; userPtRegs: boolean };

  progTestRun(insns: Uint8Array, progType: number, data: Uint8Array | undefined, repeat: number): { retval: number; durationNs: number; dataOut: Uint8Array };

  // the agent's eBPF engine (native/agent/vm/) in process: the userspace VM's 'native' engine
  // (backends/userspace/vm/native.ts; the binding is native/src/vm.cc)
  /**
   * Load (decode and check) instructions whose map references are already plain lddw constants.
   * `owner` is handed back to the hooks (held weakly); `resolve(owner, id)` says whether a helper id is
   * known (at load, and at run time for callx). Throws an Error with `kind` ('invalid' | 'unsupported')
   * and `pc` (or undefined) when the engine refuses the program.
   */
  vmLoad?(insns: Uint8Array, owner: object, tailCall: boolean, resolve: NativeVmResolve): NativeVmProgram;
  /**
   * Run from the entry with r1..r5 = args on `memory`'s bytes: its region table at layout[0] (u32
   * count, u32 address; entries u32 start, end, flags), layout[1] the writable flag, layout[2] the
   * stack's flag; the stack's 4 KiB at stackAddr. Hooks return undefined to abort the run.
   */
  vmRun?(
    program: NativeVmProgram,
    memory: WebAssembly.Memory,
    args: BigUint64Array,
    budget: number,
    packetAddr: number,
    packetSize: number,
    stackAddr: number,
    layout: Uint32Array,
    helper: NativeVmHelper,
    resolve: NativeVmResolve,
    tail: NativeVmTail,
  ): NativeVmResult;
  // native/src/shmmaps.cc: the agent's shared-memory maps (native/agent/maps/README.md), for the
  // userspace backend. Ids are process-unique; the memfd (and, for ring types, the eventfd) go to agents.
  /** wbpf_map_create with the kernel's creation checks; throws the errno Error (EINVAL, E2BIG, EOPNOTSUPP, 524 ENOTSUPP) */
  shmMapCreate(type: number, keySize: number, valueSize: number, maxEntries: number, mapFlags: number, ncpus: number, perfBytesPerCpu: number, name: string): NativeShmMap;
  /** another mapping of an existing map's memfd, as an agent maps it (the fds stay the caller's) */
  shmMapOpen(fd: number, notifyFd: number): NativeShmMap;
  /** unmap (and, for a created map, close its fds); idempotent */
  shmMapClose(id: number): void;
  /** as mapOp: key/value at offsets of `mem` (keyOff -1: NULL), flags a u32; 0 or -errno, never throws */
  shmMapOp(cmd: number, id: number, mem: Uint8Array, keyOff: number, valOff: number, flags: number): number;
  /**
   * ring buffer / perf event array: records into `out` as [u32 size][u32 0][data padded to 8] (RecordSource.poll's
   * format), waiting up to timeoutMs in poll(2) on the map's eventfd and stopFd (-1: none); the count, 0 on
   * timeout, -EINTR when stopFd is readable (its counter left as is), -ENOBUFS when the next record alone does not fit
   */
  shmRingPoll(id: number, timeoutMs: number, out: Uint8Array, stopFd: number): number;
  shmRingPendingSize(id: number): number;
  /** bpf_map_freeze: syscall-side writes then fail with EPERM (libbpf freezes .rodata after load) */
  shmMapFreeze(id: number): void;
  /** ring buffer: outputs refused because it was full; perf event array: lost samples */
  shmMapDrops(id: number): number;
  /** perf event array: a reader opened it (slots below ncpus accept output) */
  shmPerfOpenReaders(id: number): void;
  /** the program side, for tests: bpf_ringbuf_output / bpf_perf_event_output (on `cpu`): 0 or -errno */
  shmRingbufOutput(id: number, data: Uint8Array, flags: number): number;
  shmPerfEventOutput(id: number, flags: bigint, data: Uint8Array, cpu: number): number;

  // native/src/agent.cc: the uprobe agent's control channel, host side (backends/userspace/attach/channel.ts)
  /** socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC): [hostFd, childFd] */
  agentSocketpair(): [number, number];
  /** sendmsg of the whole frame (partial writes continued), `fds` as SCM_RIGHTS with its first bytes,
   * MSG_NOSIGNAL; throws the errno Error (EPIPE: the peer closed its end) */
  agentSend(fd: number, frame: Uint8Array, fds: readonly number[]): void;
  /** poll(2) up to timeoutMs (0: don't wait, -1: no limit), then one recv into `out`: bytes read, 0 at EOF,
   * -ETIMEDOUT when nothing came, or -errno; never throws for the channel's state */
  agentRecv(fd: number, out: Uint8Array, timeoutMs: number): number;
}

/**
 * What the kernel backend (index.ts, attach.ts, pinning.ts, structops.ts) needs of its native part: the
 * addon, or the FFI binding to the system's libbpf (backends/libbpf-ffi/) when the addon is not built.
 */
export type KernelLib = Pick<
  NativeAddon,
  | 'open' | 'programs' | 'maps' | 'setMapType' | 'setMapPinPath' | 'setMapFlags' | 'load' | 'close'
  | 'attachAuto' | 'attachXdp' | 'attachCgroup' | 'attachUprobe' | 'attachPerfEvent' | 'attachSocket' | 'attachStructOps' | 'detach'
  | 'perfEventOpen' | 'openPacketSocket' | 'ifIndex' | 'eventFd' | 'closeFd' | 'numPossibleCpus'
  | 'fastCalls' | 'mapOp' | 'ringbufOpen' | 'perfbufOpen' | 'bufferPoll' | 'bufferPendingSize' | 'bufferLost' | 'bufferClose'
  | 'takeLog' | 'mapCreate'
  | 'guestMapOpen' | 'guestMapBind' | 'guestMapSet' | 'guestMapClose' | 'guestMapRelease'
  | 'guestPollFunctions' | 'guestPollBind' | 'guestPollSet' | 'guestPollHandle'
>;

/** a shared-memory map as the addon hands it out */
export interface NativeShmMap {
  id: number;
  /** the memfd holding the map */
  fd: number;
  /** ring buffer / perf event array: the eventfd producers write when the consumer sleeps; else -1 */
  notifyFd: number;
  /** bytes a lookup writes / an update reads (per-CPU: round8(value size) * ncpus) */
  opValueSize: number;
}

/** a program loaded by vmLoad (an opaque handle; freed when collected) */
export type NativeVmProgram = { readonly __nativeVmProgram: unique symbol };
export type NativeVmResolve = (owner: object, id: number) => boolean;
/** a helper call: its r0 (u64), or undefined to abort the run */
export type NativeVmHelper = (owner: object, pc: number, id: number, r1: bigint, r2: bigint, r3: bigint, r4: bigint, r5: bigint) => bigint | undefined;
/** bpf_tail_call: the target's handle, null to fall through, or undefined to abort the run */
export type NativeVmTail = (owner: object, pc: number, map: bigint, index: number) => NativeVmProgram | null | undefined;
/** [status, r0, budget left, fault pc, faulting program's owner, address, width, write, stack low, callx value] */
export type NativeVmResult = [number, bigint, number, number, object | undefined, bigint, number, boolean, number, bigint];

export interface NativePerfSpec {
  type: number;
  config: number;
  name?: string;
  offset?: number;
  retprobe?: boolean;
  pid: number;
  cpu: number;
}

export interface NativeProbeLoad {
  progType: number;
  expectedAttachType?: number;
  attachBtfId?: number;
  /** struct bpf_insn[] as bytes (little-endian) */
  insns: Uint8Array;
  license?: string;
  progFlags?: number;
  kernVersion?: number;
  /** 0: no verifier log, 1: log */
  logLevel?: number;
  /** kind 1: kprobe_multi with no addresses; 2: uprobe_multi on "/" (libbpf's probe shapes); 3: BPF_RAW_TRACEPOINT_OPEN of the program's own BTF target (fentry/fexit/lsm), closed at once */
  link?: { attachType: number; target: number; kind?: 0 | 1 | 2 | 3 };
}

let cached: NativeAddon | undefined;

/** the repository's root, from the TypeScript source tree or from dist/ (where native/ is found) */
function nativeRoots(): string[] {
  const here = path.dirname(fileURLToPath(import.meta.url));
  return [path.resolve(here, '../..'), path.resolve(here, '../../..')];
}

/**
 * The uprobe agent, native/agent/build/libwbpf_agent.so (built by `npm install`: make -C native/agent),
 * or undefined when it is not built (another arch, or a checkout without the build).
 */
export function agentLibraryPath(): string | undefined {
  return nativeRoots()
    .map((r) => path.join(r, 'native', 'agent', 'build', 'libwbpf_agent.so'))
    .find((c) => fs.existsSync(c));
}

/**
 * Why the addon is missing, as the install script (native/install.js) recorded it in native/install-status.json
 * (an installed package), else the fix for a checkout.
 */
function installReason(candidates: string[]): string {
  for (const c of candidates) {
    try {
      const status = JSON.parse(fs.readFileSync(path.resolve(c, '../../../install-status.json'), 'utf8')) as { addon?: { ok?: boolean; reason?: string } };
      if (status.addon && !status.addon.ok && status.addon.reason) return `npm's install script did not build it: ${status.addon.reason.replace(/^not built: /, '')}`;
    } catch {
      // no status there
    }
  }
  return 'run `npm install`';
}

/** where the addon may be: from the TypeScript source tree and from dist/ */
function addonCandidates(): string[] {
  const here = path.dirname(fileURLToPath(import.meta.url));
  return [path.resolve(here, '../../native/build/Release/wasm_bpf_native.node'), path.resolve(here, '../../../native/build/Release/wasm_bpf_native.node')];
}

/** native/install-status.json, where npm's install script records why a native part was not built (when there is one) */
export function installStatusFile(): string | undefined {
  return nativeRoots()
    .map((r) => path.join(r, 'native', 'install-status.json'))
    .find((c) => fs.existsSync(c));
}

/**
 * For tests and the matrix: WASM_BPF_NO_ADDON=1 hides a built addon, as if npm's install script had not built
 * it (the kernel backend then runs on libbpf through FFI, backends/libbpf-ffi/).
 */
export const NO_ADDON_ENV = 'WASM_BPF_NO_ADDON';
const addonHidden = (): boolean => process.env[NO_ADDON_ENV] === '1';

/** the addon's file, when built */
export function addonFile(): string | undefined {
  if (addonHidden()) return undefined;
  return addonCandidates().find((c) => fs.existsSync(c));
}

/** Loads native/build/Release/wasm_bpf_native.node (built by `npm install`). */
export function loadNative(): NativeAddon {
  if (cached) return cached;
  if (addonHidden()) throw new Error(`native addon hidden by ${NO_ADDON_ENV}=1 (a test setting: unset it to use the addon)`);
  const candidates = addonCandidates();
  const file = candidates.find((c) => fs.existsSync(c));
  if (!file) {
    const roots = candidates.map((c) => path.resolve(c, '../../../..'));
    throw new Error(`native addon not built (no native/build/Release/wasm_bpf_native.node in ${roots.join(' or ')}): ${installReason(candidates)}`);
  }
  const require = createRequire(import.meta.url);
  cached = require(file) as NativeAddon;
  return cached;
}
