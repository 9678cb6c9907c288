// prog_array: the slots bpf_tail_call jumps through (kernel/bpf/arraymap.c, fd arrays).
//
// The syscall side stores programs by fd (update value: a program fd of the same backend; any flags
// but BPF_ANY are EINVAL; an index past max_entries E2BIG; an unknown fd EBADF); lookup gives the
// program's id (here: its fd); delete empties a slot (ENOENT when already empty). Programs cannot
// look prog arrays up; the VM resolves tail calls through slot().

import { BPF_ANY, checkSizes, E, MAP_F, MapCreateError, type MapEnv, type MapSpec, UserMap } from './common.js';

export interface ProgRef<P> {
  fd: number;
  program: P;
}

export class ProgArrayMap<P> extends UserMap {
  private readonly slots: (ProgRef<P> | undefined)[];

  constructor(
    spec: MapSpec,
    env: MapEnv,
    private readonly byFd: (fd: number) => ProgRef<P> | undefined,
  ) {
    super(spec, env);
    checkSizes(spec, { key: 4, value: 4 });
    if (spec.flags & ~(MAP_F.NUMA_NODE | MAP_F.RDONLY | MAP_F.WRONLY)) {
      throw new MapCreateError(`map '${spec.name}': unsupported map_flags 0x${spec.flags.toString(16)} for a prog array`, E.EINVAL);
    }
    this.slots = new Array<ProgRef<P> | undefined>(spec.maxEntries);
  }

  private idx(key: Uint8Array): number {
    return (key[0]! | (key[1]! << 8) | (key[2]! << 16) | (key[3]! << 24)) >>> 0;
  }

  /** the program in slot i, if any */
  slot(i: number): P | undefined {
    return i >= 0 && i < this.slots.length ? this.slots[i]?.program : undefined;
  }

  set(i: number, ref: ProgRef<P> | undefined): void {
    this.slots[i] = ref;
  }

  sysLookup(key: Uint8Array | undefined, out: Uint8Array, flags: number): number {
    if (flags !== 0) return -E.EINVAL;
    if (!key) return -E.EFAULT;
    const i = this.idx(key);
    if (i >= this.spec.maxEntries) return -E.ENOENT;
    const s = this.slots[i];
    if (!s) return -E.ENOENT;
    new DataView(out.buffer, out.byteOffset, 4).setUint32(0, s.fd, true);
    return 0;
  }
  sysUpdate(key: Uint8Array | undefined, value: Uint8Array, flags: number): number {
    if (!key) return -E.EFAULT;
    if (flags !== BPF_ANY) return -E.EINVAL;
    if (!this.sysWritable()) return -E.EPERM;
    const i = this.idx(key);
    if (i >= this.spec.maxEntries) return -E.E2BIG;
    const fd = new DataView(value.buffer, value.byteOffset, 4).getInt32(0, true);
    const ref = this.byFd(fd);
    if (!ref) return -E.EBADF;
    this.slots[i] = ref;
    return 0;
  }
  sysDelete(key: Uint8Array | undefined, flags: number): number {
    if (flags !== 0) return -E.EINVAL;
    if (!key) return -E.EFAULT;
    if (!this.sysWritable()) return -E.EPERM;
    const i = this.idx(key);
    if (i >= this.spec.maxEntries) return -E.E2BIG;
    if (!this.slots[i]) return -E.ENOENT;
    this.slots[i] = undefined;
    return 0;
  }
  sysNextKey(key: Uint8Array | undefined, out: Uint8Array, flags: number): number {
    if (flags !== 0) return -E.EINVAL;
    const n = this.spec.maxEntries;
    let next = 0;
    if (key) {
      const i = this.idx(key);
      if (i < n) {
        if (i === n - 1) return -E.ENOENT;
        next = i + 1;
      }
    }
    new DataView(out.buffer, out.byteOffset, 4).setUint32(0, next, true);
    return 0;
  }
}
