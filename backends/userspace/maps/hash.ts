// Hash maps: hash, percpu_hash, lru_hash, lru_percpu_hash (kernel/bpf/hashtab.c semantics).
//
// Storage is preallocated like the kernel's default (no BPF_F_NO_PREALLOC): max_entries value slots of
// round8(value_size) (per-CPU: times ncpus) in one VM memory region, so a value's address stays valid
// (and its slot is reused) after a delete, as in the kernel. Keys live on the JS side: a Map from the
// key's bytes to its slot. Iteration (get_next_key) walks slots in order.
//
// Errnos: lookup/delete of a missing key ENOENT; BPF_NOEXIST on an existing key EEXIST; BPF_EXIST on a
// missing key ENOENT; a new key in a full hash E2BIG; flags > BPF_EXIST, or BPF_F_LOCK (no spin lock in
// values here), EINVAL. LRU maps never fail with E2BIG: the least recently used element is evicted.
// Recency: a program's lookup or update, and any update, make an element the most recent; syscall-side
// lookups do not (the kernel's lookup_elem_sys_only path does not set the reference bit). This is exact
// LRU: the kernel's is approximate (per-CPU free lists, active/inactive lists), so under pressure
// the kernel may evict a slightly different element.

import {
  BPF_EXIST,
  BPF_NOEXIST,
  badUpdateFlags,
  checkSizes,
  E,
  keyString,
  MAP_F,
  MapCreateError,
  type MapEnv,
  type MapSpec,
  round8,
  UserMap,
} from './common.js';

const HTAB_CREATE_FLAGS =
  MAP_F.NO_PREALLOC | MAP_F.NO_COMMON_LRU | MAP_F.NUMA_NODE | MAP_F.RDONLY | MAP_F.WRONLY | MAP_F.RDONLY_PROG | MAP_F.WRONLY_PROG | MAP_F.ZERO_SEED;

export class HashMap extends UserMap {
  readonly percpu: boolean;
  readonly lru: boolean;
  /** bytes per element: round8(valueSize), times ncpus for per-CPU maps */
  private readonly stride: number;
  private readonly vsz8: number;
  private readonly base: number;
  private readonly index = new Map<string, number>();
  /** key bytes per slot */
  private readonly keys: Uint8Array;
  private readonly used: Uint8Array;
  private readonly freeSlots: Int32Array;
  private nfree: number;
  // LRU list over slots (head = least recent)
  private readonly prev: Int32Array;
  private readonly next: Int32Array;
  private head = -1;
  private tail = -1;

  constructor(spec: MapSpec, env: MapEnv, opts: { percpu: boolean; lru: boolean }) {
    const vsz8 = round8(spec.valueSize);
    super(spec, env, opts.percpu ? vsz8 * env.ncpus : spec.valueSize);
    this.percpu = opts.percpu;
    this.lru = opts.lru;
    checkSizes(spec, { key: 'any', value: 'any' });
    if (spec.flags & ~HTAB_CREATE_FLAGS) throw new MapCreateError(`map '${spec.name}': unsupported map_flags 0x${spec.flags.toString(16)} for a hash map`, E.EINVAL);
    if ((spec.flags & MAP_F.NO_COMMON_LRU) && !opts.lru) throw new MapCreateError(`map '${spec.name}': BPF_F_NO_COMMON_LRU needs an LRU map`, E.EINVAL);
    if ((spec.flags & MAP_F.NO_PREALLOC) && opts.lru) throw new MapCreateError(`map '${spec.name}': LRU maps are always preallocated (BPF_F_NO_PREALLOC)`, E.ENOTSUPP);
    if (spec.keySize > 512) throw new MapCreateError(`map '${spec.name}': key size ${spec.keySize} is larger than 512`, E.E2BIG);
    this.vsz8 = vsz8;
    this.stride = opts.percpu ? vsz8 * env.ncpus : vsz8;
    const n = spec.maxEntries;
    const keyBytes = n * spec.keySize;
    if (keyBytes > env.maxMapBytes) throw new MapCreateError(`map '${spec.name}' needs ${keyBytes} bytes of keys, more than the limit of ${env.maxMapBytes}`, E.E2BIG);
    this.base = this.allocValues(n * this.stride, 'values').addr;
    this.keys = new Uint8Array(keyBytes);
    this.used = new Uint8Array(n);
    this.freeSlots = new Int32Array(n);
    // pop from the end: slot 0 is handed out first
    for (let i = 0; i < n; i++) this.freeSlots[i] = n - 1 - i;
    this.nfree = n;
    this.prev = new Int32Array(opts.lru ? n : 0);
    this.next = new Int32Array(opts.lru ? n : 0);
  }

  /** number of elements */
  get size(): number {
    return this.index.size;
  }

  private addr(slot: number): number {
    return this.base + slot * this.stride;
  }

  // ---- LRU list -----------------------------------------------------------------------------------

  private unlink(s: number): void {
    const p = this.prev[s]!;
    const n = this.next[s]!;
    if (p >= 0) this.next[p] = n;
    else this.head = n;
    if (n >= 0) this.prev[n] = p;
    else this.tail = p;
  }
  private pushTail(s: number): void {
    this.prev[s] = this.tail;
    this.next[s] = -1;
    if (this.tail >= 0) this.next[this.tail] = s;
    else this.head = s;
    this.tail = s;
  }
  private touch(s: number): void {
    if (!this.lru || this.tail === s) return;
    this.unlink(s);
    this.pushTail(s);
  }

  /** keys from least to most recently used (LRU maps), for tests and diagnostics */
  lruOrder(): Uint8Array[] {
    const out: Uint8Array[] = [];
    for (let s = this.head; s >= 0; s = this.next[s]!) out.push(this.keyAt(s));
    return out;
  }

  private keyAt(slot: number): Uint8Array {
    const ks = this.spec.keySize;
    return this.keys.slice(slot * ks, (slot + 1) * ks);
  }

  private removeSlot(k: string, slot: number): void {
    this.index.delete(k);
    this.used[slot] = 0;
    if (this.lru) this.unlink(slot);
    this.freeSlots[this.nfree++] = slot;
  }

  /** a free slot for a new element: E2BIG when full (LRU: evict the least recent) */
  private takeSlot(): number {
    if (this.nfree === 0) {
      if (!this.lru || this.head < 0) return -E.E2BIG;
      const victim = this.head;
      this.removeSlot(keyString(this.keyAt(victim)), victim);
    }
    return this.freeSlots[--this.nfree]!;
  }

  /**
   * insert or replace; `write(addr)` fills the value. `allCpus`: the syscall side writes every CPU's
   * value; a program writes its own CPU's and, for a new element, zeroes the others.
   */
  private upsert(key: Uint8Array, flags: number, write: (addr: number, fresh: boolean) => void): number {
    if (badUpdateFlags(flags)) return -E.EINVAL;
    const k = keyString(key);
    const slot = this.index.get(k);
    if (slot !== undefined) {
      if ((flags & 3) === BPF_NOEXIST) return -E.EEXIST;
      write(this.addr(slot), false);
      this.touch(slot);
      return 0;
    }
    if ((flags & 3) === BPF_EXIST) return -E.ENOENT;
    const s = this.takeSlot();
    if (s < 0) return s;
    this.index.set(k, s);
    this.used[s] = 1;
    this.keys.set(key, s * this.spec.keySize);
    if (this.lru) this.pushTail(s);
    write(this.addr(s), true);
    return 0;
  }

  // ---- syscall side -----------------------------------------------------------------------------------

  sysLookup(key: Uint8Array | undefined, out: Uint8Array, flags: number): number {
    if (flags !== 0) return -E.EINVAL;
    if (!key) return -E.EFAULT;
    if (!this.sysReadable()) return -E.EPERM;
    const slot = this.index.get(keyString(key));
    if (slot === undefined) return -E.ENOENT;
    const a = this.addr(slot);
    const mem = this.env.memory.bytes();
    out.set(mem.subarray(a, a + this.opValueSize));
    return 0;
  }

  sysUpdate(key: Uint8Array | undefined, value: Uint8Array, flags: number): number {
    if (!key) return -E.EFAULT;
    if (!this.sysWritable()) return -E.EPERM;
    return this.upsert(key, flags, (a) => {
      const mem = this.env.memory.bytes();
      if (!this.percpu) mem.set(value.subarray(0, this.spec.valueSize), a);
      else {
        for (let c = 0; c < this.env.ncpus; c++) {
          const o = c * this.vsz8;
          mem.set(value.subarray(o, o + this.spec.valueSize), a + o);
        }
      }
    });
  }

  sysDelete(key: Uint8Array | undefined, flags: number): number {
    if (flags !== 0) return -E.EINVAL;
    if (!key) return -E.EFAULT;
    if (!this.sysWritable()) return -E.EPERM;
    return this.del(key);
  }

  sysNextKey(key: Uint8Array | undefined, out: Uint8Array, flags: number): number {
    if (flags !== 0) return -E.EINVAL;
    if (!this.sysReadable()) return -E.EPERM;
    let from = 0;
    if (key) {
      const slot = this.index.get(keyString(key));
      // a missing key restarts the walk (the kernel's find_first_elem)
      if (slot !== undefined) from = slot + 1;
    }
    for (let s = from; s < this.used.length; s++) {
      if (this.used[s]) {
        out.set(this.keys.subarray(s * this.spec.keySize, (s + 1) * this.spec.keySize));
        return 0;
      }
    }
    return -E.ENOENT;
  }

  override sysLookupAndDelete(key: Uint8Array | undefined, out: Uint8Array, flags: number): number {
    if (flags !== 0) return -E.EINVAL;
    const r = this.sysLookup(key, out, 0);
    if (r < 0) return r;
    if (!this.sysWritable()) return -E.EPERM;
    return this.del(key!);
  }

  private del(key: Uint8Array): number {
    const k = keyString(key);
    const slot = this.index.get(k);
    if (slot === undefined) return -E.ENOENT;
    this.removeSlot(k, slot);
    return 0;
  }

  // ---- program side -------------------------------------------------------------------------------------

  override progLookup(key: Uint8Array): number {
    const slot = this.index.get(keyString(key));
    if (slot === undefined) return 0;
    this.touch(slot);
    return this.addr(slot) + (this.percpu ? this.env.cpu() * this.vsz8 : 0);
  }

  override progUpdate(key: Uint8Array, value: Uint8Array, flags: number): number {
    if (this.spec.flags & MAP_F.RDONLY_PROG) return -E.EPERM;
    return this.upsert(key, flags, (a, fresh) => {
      const mem = this.env.memory.bytes();
      if (!this.percpu) mem.set(value.subarray(0, this.spec.valueSize), a);
      else {
        if (fresh) mem.fill(0, a, a + this.stride);
        mem.set(value.subarray(0, this.spec.valueSize), a + this.env.cpu() * this.vsz8);
      }
    });
  }

  override progDelete(key: Uint8Array): number {
    if (this.spec.flags & MAP_F.RDONLY_PROG) return -E.EPERM;
    return this.del(key);
  }
}
