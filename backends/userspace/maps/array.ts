// Array maps: array and percpu_array (kernel/bpf/arraymap.c semantics), including the global-data maps
// (.data, .rodata, .bss: one element holding the section).
//
// Every element always exists: lookup of an index >= max_entries is ENOENT, update E2BIG; BPF_NOEXIST
// is EEXIST; delete is always EINVAL; get_next_key walks 0..max_entries-1 (a NULL or out-of-range key
// starts at 0, the last index gives ENOENT). Values are round8(value_size) apart in one VM region
// (per-CPU: ncpus copies per element). A BPF_F_RDONLY_PROG map's region is read-only to programs.

import {
  BPF_NOEXIST,
  badUpdateFlags,
  checkSizes,
  E,
  MAP_F,
  MapCreateError,
  type MapEnv,
  type MapSpec,
  round8,
  UserMap,
} from './common.js';

const ARRAY_CREATE_FLAGS =
  MAP_F.NUMA_NODE | MAP_F.MMAPABLE | MAP_F.RDONLY | MAP_F.WRONLY | MAP_F.RDONLY_PROG | MAP_F.WRONLY_PROG | MAP_F.INNER_MAP | MAP_F.PRESERVE_ELEMS;
/** the kernel's PCPU_MIN_UNIT_SIZE: the largest per-CPU value */
const PCPU_MIN_UNIT_SIZE = 32768;

export class ArrayMap extends UserMap {
  readonly percpu: boolean;
  private readonly stride: number;
  private readonly vsz8: number;
  readonly base: number;

  constructor(spec: MapSpec, env: MapEnv, opts: { percpu: boolean; initial?: Uint8Array }) {
    const vsz8 = round8(spec.valueSize);
    super(spec, env, opts.percpu ? vsz8 * env.ncpus : spec.valueSize);
    this.percpu = opts.percpu;
    checkSizes(spec, { key: 4, value: 'any' });
    if (spec.flags & ~ARRAY_CREATE_FLAGS) throw new MapCreateError(`map '${spec.name}': unsupported map_flags 0x${spec.flags.toString(16)} for an array`, E.EINVAL);
    if (opts.percpu && spec.flags & (MAP_F.MMAPABLE | MAP_F.INNER_MAP)) throw new MapCreateError(`map '${spec.name}': BPF_F_MMAPABLE / BPF_F_INNER_MAP are for plain arrays`, E.EINVAL);
    if (opts.percpu && vsz8 > PCPU_MIN_UNIT_SIZE) throw new MapCreateError(`map '${spec.name}': per-CPU value size ${spec.valueSize} is larger than ${PCPU_MIN_UNIT_SIZE}`, E.E2BIG);
    this.vsz8 = vsz8;
    this.stride = opts.percpu ? vsz8 * env.ncpus : vsz8;
    const region = this.allocValues(spec.maxEntries * this.stride, 'values', (spec.flags & MAP_F.RDONLY_PROG) === 0);
    this.base = region.addr;
    if (opts.initial) {
      if (opts.percpu || spec.maxEntries !== 1 || opts.initial.length > spec.valueSize) throw new Error(`map '${spec.name}': initial data only for one-element arrays`);
      env.memory.bytes().set(opts.initial, this.base);
    }
  }

  private index(key: Uint8Array): number {
    return (key[0]! | (key[1]! << 8) | (key[2]! << 16) | (key[3]! << 24)) >>> 0;
  }

  /** address of element i (CPU 0's copy for per-CPU maps) */
  addr(i: number): number {
    return this.base + i * this.stride;
  }

  sysLookup(key: Uint8Array | undefined, out: Uint8Array, flags: number): number {
    if (flags !== 0) return -E.EINVAL;
    if (!key) return -E.EFAULT;
    if (!this.sysReadable()) return -E.EPERM;
    const i = this.index(key);
    if (i >= this.spec.maxEntries) return -E.ENOENT;
    const a = this.addr(i);
    out.set(this.env.memory.bytes().subarray(a, a + this.opValueSize));
    return 0;
  }

  sysUpdate(key: Uint8Array | undefined, value: Uint8Array, flags: number): number {
    if (!key) return -E.EFAULT;
    if (badUpdateFlags(flags)) return -E.EINVAL;
    if (!this.sysWritable()) return -E.EPERM;
    const i = this.index(key);
    if (i >= this.spec.maxEntries) return -E.E2BIG;
    if ((flags & 3) === BPF_NOEXIST) return -E.EEXIST;
    const mem = this.env.memory.bytes();
    const a = this.addr(i);
    if (!this.percpu) mem.set(value.subarray(0, this.spec.valueSize), a);
    else for (let c = 0; c < this.env.ncpus; c++) mem.set(value.subarray(c * this.vsz8, c * this.vsz8 + this.spec.valueSize), a + c * this.vsz8);
    return 0;
  }

  sysDelete(key: Uint8Array | undefined, flags: number): number {
    if (flags !== 0) return -E.EINVAL;
    void key;
    return -E.EINVAL;
  }

  sysNextKey(key: Uint8Array | undefined, out: Uint8Array, flags: number): number {
    if (flags !== 0) return -E.EINVAL;
    const n = this.spec.maxEntries;
    let next = 0;
    if (key) {
      const i = this.index(key);
      if (i < n) {
        if (i === n - 1) return -E.ENOENT;
        next = i + 1;
      }
    }
    new DataView(out.buffer, out.byteOffset, 4).setUint32(0, next, true);
    return 0;
  }

  override progLookup(key: Uint8Array): number {
    const i = this.index(key);
    if (i >= this.spec.maxEntries) return 0;
    return this.addr(i) + (this.percpu ? this.env.cpu() * this.vsz8 : 0);
  }

  override progUpdate(key: Uint8Array, value: Uint8Array, flags: number): number {
    if (this.spec.flags & MAP_F.RDONLY_PROG) return -E.EPERM;
    if (badUpdateFlags(flags)) return -E.EINVAL;
    const i = this.index(key);
    if (i >= this.spec.maxEntries) return -E.E2BIG;
    if ((flags & 3) === BPF_NOEXIST) return -E.EEXIST;
    const a = this.addr(i) + (this.percpu ? this.env.cpu() * this.vsz8 : 0);
    this.env.memory.bytes().set(value.subarray(0, this.spec.valueSize), a);
    return 0;
  }

  override progDelete(key: Uint8Array): number {
    void key;
    return -E.EINVAL;
  }

  override directValue(): number | undefined {
    return this.percpu ? undefined : this.base;
  }
}
