// The one interface every backend implements (linux/, userspace/, windows/). The ABI layer talks to
// backends only through these types; it knows nothing of kernels. (The kernel backend's optional fast
// paths are a capability of their own: fastpath.ts.)

import { MAP_TYPE } from '../src/kernel/uapi.js';
import type { Policy } from '../src/policy/policy.js';
import type { ObjectEdits } from '../src/object/edits.js';
import type { BpfObject } from '../src/object/loader.js';

export type BackendName = 'linux' | 'userspace' | 'windows';

export interface ProgramInfo {
  name: string;
  /** ELF section, e.g. 'tp/sched/sched_process_exec' */
  section: string;
  /** enum bpf_prog_type */
  type: number;
}

export interface MapInfo {
  name: string;
  /** enum bpf_map_type */
  type: number;
  keySize: number;
  valueSize: number;
  maxEntries: number;
  fd: number;
  /** bytes a lookup writes (per-CPU maps: round_up(valueSize, 8) * possible CPUs) */
  opValueSize: number;
  /** what a guest's map_operate may do on this map, when the backend restricts it (absent: everything) */
  guestAccess?: GuestMapAccess;
}

/**
 * A backend's rule for a guest's map_operate on one of its maps:
 * - 'none': every command gets -EPERM (struct_ops maps: an update registers kernel state, naming
 *   program fds the guest would have to guess);
 * - 'no-update': an update gets -EPERM (maps whose values are fds of programs, sockets, perf events or
 *   cgroups: the guest could name any such fd of the host process);
 * - 'own-map-values': an update's value (a u32 fd) must be a map of the guest's own, else -EBADF
 *   (maps of maps);
 * - 'no-prog-fd': an update whose value names a program (an int32 fd > 0 at byte 4: devmap and cpumap
 *   entries with a program) gets -EPERM.
 */
export type GuestMapAccess = 'none' | 'no-update' | 'own-map-values' | 'no-prog-fd';

export interface LoadOptions {
  /** shown in logs and used as libbpf's object name */
  objectName: string;
  /** show libbpf debug output and the verifier log */
  verbose: boolean;
  /** what the run's policy allows objects to attach to (default: DEFAULT_POLICY); backends check every target with src/policy/enforce.ts */
  policy?: Policy;
  /** where diagnostics go (stderr of the host) */
  log: (line: string) => void;
  /** what the selector's compat passes ask of the backend as it opens the bytes (map retyping, maps it creates) */
  edits?: ObjectEdits;
  /** the selector's parse of exactly these bytes (src/object/loader.ts): a backend that parses objects itself may use it, and modify it */
  parsed?: BpfObject;
}

/** A source of records (ring buffer or perf buffer) that the ABI layer drains into the guest. */
export interface RecordSource {
  /**
   * Wait up to timeoutMs for records (or for the run to be stopped) and copy whole records into `out`
   * (a view starting at its buffer's byte 0) as [u32 size][u32 0][data padded to 8]. Returns the record count, 0 on timeout, -EINTR when stopped,
   * -ENOBUFS when the next record alone is larger than `out` (see pendingSize), or -errno.
   */
  poll(timeoutMs: number, out: Uint8Array): number;
  pendingSize(): number;
  /** records the kernel reported lost (perf buffers) */
  lost(): number;
  close(): void;
}

export interface LoadedObject {
  /** the backend that loaded it */
  readonly backend: BackendName;
  readonly programs: readonly ProgramInfo[];
  readonly maps: readonly MapInfo[];
  /** attach a program by its section, or to an explicit target; throws BackendError */
  attach(program: string, target: string | undefined): void;
  /**
   * one map operation, key/value at offsets in `mem` (a view of the whole guest memory, already
   * bounds-checked); 0 or -errno, never throws. A Uint8Array, not an ArrayBuffer: the kernel backend's
   * native call has a V8 fast path for typed arrays (native/src/fastcall.h).
   */
  mapOperate(cmd: number, fd: number, mem: Uint8Array, keyOff: number, valOff: number, flags: number): number;
  /** open a reader on a ring buffer / perf event array map of this object; throws BackendError */
  openRecords(fd: number): RecordSource;
  /** detach every link and free everything; idempotent */
  close(): void;
}

export interface Backend {
  readonly name: BackendName;
  /**
   * open + load (with CO-RE) an ELF object the selector has validated, planned and prepared (src/select);
   * throws BackendError naming the program and errno. A backend applies `opts.edits` or refuses the object.
   */
  load(object: Uint8Array, opts: LoadOptions): LoadedObject;
  /** an eventfd that, once written, makes every blocking poll of this backend return -EINTR (-1: none) */
  wakeFd(): number;
  /** release what the backend holds (its wake fd); objects are closed by their owners first */
  dispose(): void;
}

/** What loads objects for the ABI layer (src/abi/host.ts): a backend, or the selector in front of several (src/select). */
export type ObjectLoader = Omit<Backend, 'name'>;

/** enum bpf_map_type (src/kernel/uapi.ts) */
export { MAP_TYPE };

export function isPerCpuMap(type: number): boolean {
  return (
    type === MAP_TYPE.PERCPU_HASH ||
    type === MAP_TYPE.PERCPU_ARRAY ||
    type === MAP_TYPE.LRU_PERCPU_HASH ||
    type === MAP_TYPE.PERCPU_CGROUP_STORAGE
  );
}
