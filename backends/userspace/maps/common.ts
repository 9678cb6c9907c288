// What every userspace map shares: the interface the backend and the helpers use, kernel errnos, flags,
// and the key/value plumbing. Two sides, as in the kernel:
//   - the syscall side (sys*): what bpf(BPF_MAP_*_ELEM) does for the guest's map_operate; buffers are
//     plain byte views, lookups copy values out (per-CPU maps: every CPU's value, each padded to 8);
//   - the program side (prog*): what the helpers do; values live in the VM's memory and a lookup
//     returns their address (0 for NULL), so programs read and write them in place.

import type { Region, VmMemory } from '../vm/api.js';
import { BPF_F, BPF_UPDATE, ERRNO } from '../../../src/kernel/uapi.js';

const { EPERM, ENOENT, E2BIG, EBADF, ENOMEM, EFAULT, EBUSY, EEXIST, EINVAL, ENOSPC, EOPNOTSUPP, ENOTSUPP } = ERRNO;
export const E = {
  EPERM,
  ENOENT,
  E2BIG,
  EBADF,
  ENOMEM,
  EFAULT,
  EBUSY,
  EEXIST,
  EINVAL,
  ENOSPC,
  EOPNOTSUPP,
  /** the kernel's internal ENOTSUPP, which map operations leak to user space */
  ENOTSUPP,
} as const;

/** update flags */
export const { ANY: BPF_ANY, NOEXIST: BPF_NOEXIST, EXIST: BPF_EXIST } = BPF_UPDATE;
export const BPF_F_LOCK = BPF_F.LOCK;

/** map_flags */
const { NO_PREALLOC, NO_COMMON_LRU, NUMA_NODE, RDONLY, WRONLY, STACK_BUILD_ID, ZERO_SEED, RDONLY_PROG, WRONLY_PROG, CLONE, MMAPABLE, PRESERVE_ELEMS, INNER_MAP } = BPF_F;
export const MAP_F = {
  NO_PREALLOC,
  NO_COMMON_LRU,
  NUMA_NODE,
  RDONLY,
  WRONLY,
  STACK_BUILD_ID,
  ZERO_SEED,
  RDONLY_PROG,
  WRONLY_PROG,
  CLONE,
  MMAPABLE,
  PRESERVE_ELEMS,
  INNER_MAP,
} as const;

/** the kernel's map-creation failure: errno and a sentence */
export class MapCreateError extends Error {
  constructor(
    message: string,
    readonly errno: number,
  ) {
    super(message);
    this.name = 'MapCreateError';
  }
}

export interface MapSpec {
  name: string;
  type: number;
  keySize: number;
  valueSize: number;
  maxEntries: number;
  flags: number;
}

export interface MapEnv {
  /** the address space map values live in */
  memory: VmMemory;
  /** "possible CPUs": per-CPU maps hold this many values per element */
  ncpus: number;
  /** the CPU the running program is on (per-CPU lookups, perf output) */
  cpu(): number;
  /** refuse maps whose storage would exceed this many bytes */
  maxMapBytes: number;
}

export const round8 = (n: number): number => (n + 7) & ~7;

/** key bytes as a string usable as a JS Map key */
export function keyString(b: Uint8Array): string {
  let s = '';
  for (let i = 0; i < b.length; i++) s += String.fromCharCode(b[i]!);
  return s;
}

/** flags check shared by hash and array updates (both sides): ANY/NOEXIST/EXIST, BPF_F_LOCK needs a spin lock */
export function badUpdateFlags(flags: number): boolean {
  // no map of this backend has a bpf_spin_lock in its value, so BPF_F_LOCK is always EINVAL (as in the kernel)
  return (flags & ~BPF_F_LOCK) > BPF_EXIST || (flags & BPF_F_LOCK) !== 0;
}

export abstract class UserMap {
  /** bytes a syscall-side lookup writes / update reads (per-CPU: round8(valueSize) * ncpus) */
  readonly opValueSize: number;
  /** frozen (bpf_map_freeze, as libbpf does to .rodata after load): syscall-side writes fail with EPERM */
  frozen = false;
  protected readonly regions: Region[] = [];
  private closed = false;

  constructor(
    readonly spec: MapSpec,
    protected readonly env: MapEnv,
    opValueSize = spec.valueSize,
  ) {
    this.opValueSize = opValueSize;
  }

  get name(): string {
    return this.spec.name;
  }

  /** allocate VM memory for values, refusing more than the limit */
  protected allocValues(bytes: number, what: string, writable = true, why?: string): Region {
    if (bytes > this.env.maxMapBytes) {
      throw new MapCreateError(
        `map '${this.spec.name}' needs ${bytes} bytes of ${what} (${why ?? `max_entries ${this.spec.maxEntries} x value size ${this.spec.valueSize}`}), more than the userspace backend's limit of ${this.env.maxMapBytes} bytes per map`,
        E.E2BIG,
      );
    }
    let r: Region;
    try {
      r = this.env.memory.alloc(bytes, { kind: 'map-value', name: this.spec.name, writable });
    } catch (e) {
      if (e instanceof RangeError) throw new MapCreateError(`map '${this.spec.name}': cannot allocate ${bytes} bytes of VM memory (${e.message})`, E.ENOMEM);
      throw e;
    }
    this.regions.push(r);
    return r;
  }

  // ---- the syscall side (map_operate) ----------------------------------------------------------------
  // key is undefined when the caller passed NULL

  abstract sysLookup(key: Uint8Array | undefined, out: Uint8Array, flags: number): number;
  abstract sysUpdate(key: Uint8Array | undefined, value: Uint8Array, flags: number): number;
  abstract sysDelete(key: Uint8Array | undefined, flags: number): number;
  abstract sysNextKey(key: Uint8Array | undefined, out: Uint8Array, flags: number): number;
  /** BPF_MAP_LOOKUP_AND_DELETE_ELEM */
  sysLookupAndDelete(key: Uint8Array | undefined, out: Uint8Array, flags: number): number {
    void key;
    void out;
    void flags;
    return -E.ENOTSUPP;
  }

  // ---- the program side (helpers) ----------------------------------------------------------------------

  /** address of the value (this CPU's for per-CPU maps), or 0 */
  progLookup(key: Uint8Array): number {
    void key;
    return 0;
  }
  progUpdate(key: Uint8Array, value: Uint8Array, flags: number): number {
    void key;
    void value;
    void flags;
    return -E.EINVAL;
  }
  progDelete(key: Uint8Array): number {
    void key;
    return -E.EINVAL;
  }
  progPush(value: Uint8Array, flags: number): number {
    void value;
    void flags;
    return -E.EINVAL;
  }
  /** pop/peek write the value into `out` (a view of VM memory); 0 or -errno */
  progPop(out: Uint8Array): number {
    void out;
    return -E.EINVAL;
  }
  progPeek(out: Uint8Array): number {
    void out;
    return -E.EINVAL;
  }

  /** lddw MAP_VALUE: address of element 0's value (array maps only) */
  directValue(): number | undefined {
    return undefined;
  }

  /** called after every program run (ring buffers discard what the program left reserved) */
  afterRun(): void {}

  close(): void {
    if (this.closed) return;
    this.closed = true;
    for (const r of this.regions) this.env.memory.free(r);
    this.regions.length = 0;
  }

  /** map_flags RDONLY / WRONLY restrict the syscall side */
  protected sysReadable(): boolean {
    return (this.spec.flags & MAP_F.WRONLY) === 0;
  }
  protected sysWritable(): boolean {
    return (this.spec.flags & MAP_F.RDONLY) === 0 && !this.frozen;
  }
}

/** the common map_alloc_check for key/value/max_entries */
export function checkSizes(spec: MapSpec, want: { key?: 'any' | 'zero' | number; value?: 'any' | 'zero' | number; entries?: 'any' | 'nonzero' }): void {
  const fail = (what: string): never => {
    throw new MapCreateError(`map '${spec.name}' (${spec.type}): ${what}`, E.EINVAL);
  };
  const k = want.key ?? 'any';
  if (k === 'zero' && spec.keySize !== 0) fail(`key size must be 0, not ${spec.keySize}`);
  if (k === 'any' && spec.keySize === 0) fail('key size must not be 0');
  if (typeof k === 'number' && spec.keySize !== k) fail(`key size must be ${k}, not ${spec.keySize}`);
  const v = want.value ?? 'any';
  if (v === 'zero' && spec.valueSize !== 0) fail(`value size must be 0, not ${spec.valueSize}`);
  if (v === 'any' && spec.valueSize === 0) fail('value size must not be 0');
  if (typeof v === 'number' && spec.valueSize !== v) fail(`value size must be ${v}, not ${spec.valueSize}`);
  if ((want.entries ?? 'nonzero') === 'nonzero' && spec.maxEntries === 0) fail('max_entries must not be 0');
}
