// Queue (FIFO) and stack (LIFO) maps (kernel/bpf/queue_stack_maps.c semantics).
//
// No keys (key_size 0). push with flags 0 fails with E2BIG when full; with BPF_EXIST it overwrites the
// oldest element; any other flags are EINVAL. pop/peek of an empty map are ENOENT. The syscall side
// maps lookup to peek, update to push, lookup-and-delete to pop; delete and get_next_key are EINVAL.
// Values are copied in and out (programs never hold pointers to them), so they live on the JS side.

import { BPF_EXIST, BPF_NOEXIST, checkSizes, E, MAP_F, MapCreateError, type MapEnv, type MapSpec, UserMap } from './common.js';

export class QueueStackMap extends UserMap {
  readonly lifo: boolean;
  /** ring of max_entries + 1 slots, as the kernel */
  private readonly buf: Uint8Array;
  private readonly slots: number;
  private head = 0;
  private tail = 0;

  constructor(spec: MapSpec, env: MapEnv, opts: { lifo: boolean }) {
    super(spec, env);
    this.lifo = opts.lifo;
    checkSizes(spec, { key: 'zero', value: 'any' });
    if (spec.flags & ~(MAP_F.NUMA_NODE | MAP_F.RDONLY | MAP_F.WRONLY | MAP_F.RDONLY_PROG | MAP_F.WRONLY_PROG)) {
      throw new MapCreateError(`map '${spec.name}': unsupported map_flags 0x${spec.flags.toString(16)} for a ${opts.lifo ? 'stack' : 'queue'}`, E.EINVAL);
    }
    this.slots = spec.maxEntries + 1;
    const bytes = this.slots * spec.valueSize;
    if (bytes > env.maxMapBytes) {
      throw new MapCreateError(
        `map '${spec.name}' needs ${bytes} bytes (max_entries ${spec.maxEntries} x value size ${spec.valueSize}), more than the userspace backend's limit of ${env.maxMapBytes} bytes per map`,
        E.E2BIG,
      );
    }
    this.buf = new Uint8Array(bytes);
  }

  get length(): number {
    return (this.head - this.tail + this.slots) % this.slots;
  }

  push(value: Uint8Array, flags: number): number {
    if (flags & BPF_NOEXIST || flags > BPF_EXIST) return -E.EINVAL;
    const vs = this.spec.valueSize;
    if (this.length === this.slots - 1) {
      if (!(flags & BPF_EXIST)) return -E.E2BIG;
      // overwrite the oldest element
      this.tail = (this.tail + 1) % this.slots;
    }
    this.buf.set(value.subarray(0, vs), this.head * vs);
    this.head = (this.head + 1) % this.slots;
    return 0;
  }

  /** copies the next element into out; removes it when `remove` */
  take(out: Uint8Array, remove: boolean): number {
    if (this.head === this.tail) return -E.ENOENT;
    const vs = this.spec.valueSize;
    let i: number;
    if (this.lifo) {
      i = (this.head - 1 + this.slots) % this.slots;
      if (remove) this.head = i;
    } else {
      i = this.tail;
      if (remove) this.tail = (this.tail + 1) % this.slots;
    }
    out.set(this.buf.subarray(i * vs, (i + 1) * vs));
    return 0;
  }

  sysLookup(key: Uint8Array | undefined, out: Uint8Array, flags: number): number {
    void key;
    if (flags !== 0) return -E.EINVAL; // only BPF_F_LOCK is defined, and no value here has a spin lock
    if (!this.sysReadable()) return -E.EPERM;
    return this.take(out, false);
  }
  sysUpdate(key: Uint8Array | undefined, value: Uint8Array, flags: number): number {
    void key;
    if (!this.sysWritable()) return -E.EPERM;
    return this.push(value, flags);
  }
  sysDelete(_key: Uint8Array | undefined, _flags: number): number {
    return -E.EINVAL;
  }
  sysNextKey(_key: Uint8Array | undefined, _out: Uint8Array, _flags: number): number {
    return -E.EINVAL;
  }
  override sysLookupAndDelete(key: Uint8Array | undefined, out: Uint8Array, flags: number): number {
    void key;
    if (flags !== 0) return -E.EINVAL;
    if (!this.sysReadable() || !this.sysWritable()) return -E.EPERM;
    return this.take(out, true);
  }

  override progPush(value: Uint8Array, flags: number): number {
    if (this.spec.flags & MAP_F.RDONLY_PROG) return -E.EPERM;
    return this.push(value, flags);
  }
  override progPop(out: Uint8Array): number {
    return this.take(out, true);
  }
  override progPeek(out: Uint8Array): number {
    return this.take(out, false);
  }
}
