// perf_event_array (kernel/bpf/arraymap.c + bpf_perf_event_output in kernel/trace/bpf_trace.c).
//
// Slot i is "CPU i"'s perf buffer. A slot is empty until a reader opens the map (as libbpf's
// perf_buffer__new puts one BPF_OUTPUT perf event per CPU into the map); output to an empty slot is
// -ENOENT, to another CPU's slot -EOPNOTSUPP (the kernel's event->oncpu != cpu), to an index past
// max_entries -E2BIG, with flags outside BPF_F_INDEX_MASK -EINVAL. Each CPU's buffer holds `bytesPerCpu`
// bytes of records (a sample takes 8 + round8(size + 4) bytes: header, u32 raw size, padded data);
// when full the record is lost (counted, -ENOSPC). Readers see the raw sample as libbpf delivers it:
// the data padded with zeros so that size + 4 is a multiple of 8.

import { checkSizes, E, MAP_F, MapCreateError, type MapEnv, type MapSpec, UserMap } from './common.js';
import { BPF_F, ERRNO } from '../../../src/kernel/uapi.js';
import { recordView, writeRecord } from '../../../src/records.js';

const BPF_F_INDEX_MASK = BigInt(BPF_F.INDEX_MASK);
const BPF_F_CURRENT_CPU = BigInt(BPF_F.CURRENT_CPU);

interface Sample {
  cpu: number;
  data: Uint8Array;
  cost: number;
}

export class PerfEventArrayMap extends UserMap {
  /** per-CPU bytes of buffered records and whether a reader put an event in the slot */
  private readonly usedBytes: Int32Array;
  private readonly open: Uint8Array;
  private readonly queue: Sample[] = [];
  private head = 0;
  private lostCount = 0;
  onData: (() => void) | undefined;

  constructor(
    spec: MapSpec,
    env: MapEnv,
    readonly bytesPerCpu: number,
  ) {
    super(spec, env);
    checkSizes(spec, { key: 4, value: 4 });
    if (spec.flags & ~(MAP_F.NUMA_NODE | MAP_F.RDONLY | MAP_F.WRONLY | MAP_F.PRESERVE_ELEMS)) {
      throw new MapCreateError(`map '${spec.name}': unsupported map_flags 0x${spec.flags.toString(16)} for a perf event array`, E.EINVAL);
    }
    this.usedBytes = new Int32Array(spec.maxEntries);
    this.open = new Uint8Array(spec.maxEntries);
  }

  /** a reader opened the map: every CPU slot below ncpus gets an event (libbpf's perf_buffer__new) */
  openReaders(): void {
    const n = Math.min(this.env.ncpus, this.spec.maxEntries);
    for (let i = 0; i < n; i++) this.open[i] = 1;
  }

  closeReaders(): void {
    this.open.fill(0);
    this.queue.length = 0;
    this.head = 0;
    this.usedBytes.fill(0);
  }

  /** bpf_perf_event_output / bpf_skb_output with the data already read: 0 or -errno */
  output(flags: bigint, data: Uint8Array): number {
    if ((flags & ~BPF_F_INDEX_MASK) !== 0n) return -E.EINVAL;
    const cpu = this.env.cpu();
    const index = flags === BPF_F_CURRENT_CPU ? cpu : Number(flags);
    if (index >= this.spec.maxEntries) return -E.E2BIG;
    if (!this.open[index]) return -E.ENOENT;
    if (index !== cpu) return -E.EOPNOTSUPP;
    const raw = ((data.length + 4 + 7) & ~7) - 4;
    const cost = 8 + raw + 4;
    if (this.usedBytes[index]! + cost > this.bytesPerCpu) {
      this.lostCount++;
      return -E.ENOSPC;
    }
    const copy = new Uint8Array(raw);
    copy.set(data);
    this.usedBytes[index]! += cost;
    this.queue.push({ cpu: index, data: copy, cost });
    this.onData?.();
    return 0;
  }

  lost(): number {
    return this.lostCount;
  }

  pendingSize(): number {
    return this.queue[this.head]?.data.length ?? 0;
  }

  /** as RingBufMap.drain */
  drain(out: Uint8Array): number {
    const view = recordView(out);
    let off = 0;
    let n = 0;
    while (this.head < this.queue.length) {
      const s = this.queue[this.head]!;
      const next = writeRecord(out, view, off, s.data);
      if (next < 0) {
        if (n === 0) return -ERRNO.ENOBUFS;
        break;
      }
      off = next;
      n++;
      this.usedBytes[s.cpu]! -= s.cost;
      this.head++;
    }
    if (this.head === this.queue.length) {
      this.queue.length = 0;
      this.head = 0;
    }
    return n;
  }

  private idx(key: Uint8Array): number {
    return (key[0]! | (key[1]! << 8) | (key[2]! << 16) | (key[3]! << 24)) >>> 0;
  }

  // the syscall side of an fd array: no perf event fds exist in a userspace run
  sysLookup(key: Uint8Array | undefined, out: Uint8Array, flags: number): number {
    void key;
    void out;
    if (flags !== 0) return -E.EINVAL;
    return -E.ENOTSUPP;
  }
  sysUpdate(key: Uint8Array | undefined, value: Uint8Array, flags: number): number {
    void value;
    if (!key) return -E.EFAULT;
    if (flags !== 0) return -E.EINVAL;
    if (this.idx(key) >= this.spec.maxEntries) return -E.E2BIG;
    return -E.EBADF; // the value would be a perf event fd; the userspace backend has none
  }
  sysDelete(key: Uint8Array | undefined, flags: number): number {
    if (flags !== 0) return -E.EINVAL;
    if (!key) return -E.EFAULT;
    const i = this.idx(key);
    if (i >= this.spec.maxEntries) return -E.E2BIG;
    if (!this.open[i]) return -E.ENOENT;
    this.open[i] = 0;
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
