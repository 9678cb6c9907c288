// BPF ring buffer (kernel/bpf/ringbuf.c semantics).
//
// max_entries is the data capacity in bytes (a power of two, a multiple of the 4096-byte page). Each
// record takes round8(size + 8) bytes (an 8-byte header, then the data) at logical position pos; it
// lives in VM memory at data + (pos & mask) + 8, so programs write reserved records in place. The
// kernel maps the data area twice so that a record crossing the end stays contiguous; here the region
// is 2 x capacity bytes and a record simply runs into the second half, which is equivalent because
// every record is read back from where it was written.
//
// reserve fails (NULL) when the producer would get more than capacity - 1 bytes ahead of the consumer
// or of the oldest record still reserved (as Linux 6.8+); output then returns -EAGAIN. The consumer
// (the RecordSource the backend hands to the ABI layer) takes records in reservation order and stops at
// the first one still reserved; discarded records are skipped. A program run that ends with records
// still reserved (the kernel's verifier forbids it) has them discarded by afterRun().

import type { VmMemory } from '../vm/api.js';
import { checkSizes, E, MAP_F, MapCreateError, type MapEnv, type MapSpec, UserMap } from './common.js';
import { BPF_RB, ERRNO } from '../../../src/kernel/uapi.js';
import { recordView, writeRecord } from '../../../src/records.js';

const { NO_WAKEUP: BPF_RB_NO_WAKEUP, FORCE_WAKEUP: BPF_RB_FORCE_WAKEUP } = BPF_RB;
const { AVAIL_DATA: BPF_RB_AVAIL_DATA, RING_SIZE: BPF_RB_RING_SIZE, CONS_POS: BPF_RB_CONS_POS, PROD_POS: BPF_RB_PROD_POS } = BPF_RB;
const { EAGAIN, ENOBUFS } = ERRNO;
const HDR = 8;
const PAGE_SIZE = 4096;

type State = 'busy' | 'committed' | 'discarded';

interface Rec {
  pos: number;
  size: number;
  state: State;
}

export class RingBufMap extends UserMap {
  readonly capacity: number;
  private readonly data: number;
  private readonly mask: number;
  private prod = 0;
  private cons = 0;
  /** records between cons and prod, in order */
  private readonly recs: Rec[] = [];
  private head = 0;
  /** data address -> record, for submit/discard */
  private readonly byAddr = new Map<number, Rec>();
  /** notified when records become available (the backend's wait) */
  onData: (() => void) | undefined;

  constructor(spec: MapSpec, env: MapEnv) {
    super(spec, env);
    checkSizes(spec, { key: 'zero', value: 'zero' });
    const n = spec.maxEntries;
    if (spec.flags & ~MAP_F.NUMA_NODE) throw new MapCreateError(`map '${spec.name}': unsupported map_flags 0x${spec.flags.toString(16)} for a ring buffer`, E.EINVAL);
    if (n < PAGE_SIZE || (n & (n - 1)) !== 0) {
      throw new MapCreateError(`ring buffer '${spec.name}': max_entries ${n} must be a power of two and at least the page size (${PAGE_SIZE})`, E.EINVAL);
    }
    this.capacity = n;
    this.mask = n - 1;
    const r = this.allocValues(2 * n, 'ring buffer data', true, `twice max_entries ${n}: records may run past the end`);
    this.data = r.addr;
  }

  private get memory(): VmMemory {
    return this.env.memory;
  }

  /** bytes reserved or submitted and not yet consumed */
  get used(): number {
    return this.prod - this.cons;
  }

  /** oldest record still reserved (the kernel's pending_pos) */
  private pendingPos(): number {
    for (let i = this.head; i < this.recs.length; i++) if (this.recs[i]!.state === 'busy') return this.recs[i]!.pos;
    return this.prod;
  }

  /** bpf_ringbuf_reserve: the record's address, or 0 */
  reserve(size: number, flags: number): number {
    if (flags !== 0) return 0;
    if (size < 0 || size > 0x3fffffff) return 0;
    const len = (size + HDR + 7) & ~7;
    if (len > this.capacity) return 0;
    const newProd = this.prod + len;
    if (newProd - this.cons > this.mask || newProd - this.pendingPos() > this.mask) return 0;
    const pos = this.prod;
    this.prod = newProd;
    const rec: Rec = { pos, size, state: 'busy' };
    this.recs.push(rec);
    const hdr = this.data + (pos & this.mask);
    const dv = this.memory.view();
    // header: len with the busy bit, then the page offset (kept for realism; programs never read it)
    dv.setUint32(hdr, (size | 0x80000000) >>> 0, true);
    dv.setUint32(hdr + 4, 0, true);
    this.byAddr.set(hdr + HDR, rec);
    return hdr + HDR;
  }

  private finish(addr: number, state: 'committed' | 'discarded', what: string): void {
    const rec = this.byAddr.get(addr);
    if (!rec || rec.state !== 'busy') {
      throw new Error(`bpf_ringbuf_${what}: 0x${addr.toString(16)} is not a record reserved from ring buffer '${this.spec.name}'`);
    }
    this.byAddr.delete(addr);
    rec.state = state;
    const hdr = addr - HDR;
    this.memory.view().setUint32(hdr, (rec.size | (state === 'discarded' ? 0x40000000 : 0)) >>> 0, true);
    if (state === 'committed') this.onData?.();
  }

  /** bpf_ringbuf_submit */
  submit(addr: number, flags: number): void {
    void flags;
    this.finish(addr, 'committed', 'submit');
  }

  /** bpf_ringbuf_discard */
  discard(addr: number, flags: number): void {
    void flags;
    this.finish(addr, 'discarded', 'discard');
  }

  /** does this address belong to a reserved record of this ring buffer? */
  owns(addr: number): boolean {
    return this.byAddr.has(addr);
  }

  /** bpf_ringbuf_output: 0, -EINVAL (flags) or -EAGAIN (full) */
  output(data: Uint8Array, flags: number): number {
    if (flags & ~(BPF_RB_NO_WAKEUP | BPF_RB_FORCE_WAKEUP)) return -E.EINVAL;
    const a = this.reserve(data.length, 0);
    if (a === 0) return -EAGAIN;
    this.memory.bytes().set(data, a);
    this.submit(a, flags);
    return 0;
  }

  /** bpf_ringbuf_query */
  query(flags: number): bigint {
    switch (flags) {
      case BPF_RB_AVAIL_DATA:
        return BigInt(this.prod - this.cons);
      case BPF_RB_RING_SIZE:
        return BigInt(this.capacity);
      case BPF_RB_CONS_POS:
        return BigInt(this.cons);
      case BPF_RB_PROD_POS:
        return BigInt(this.prod);
      default:
        return 0n;
    }
  }

  override afterRun(): void {
    for (const addr of [...this.byAddr.keys()]) this.discard(addr, 0);
  }

  // ---- the consumer ---------------------------------------------------------------------------------

  /** drop discarded records at the head, advancing the consumer position */
  private skipDiscarded(): void {
    while (this.head < this.recs.length && this.recs[this.head]!.state === 'discarded') this.advance();
  }

  private advance(): void {
    const r = this.recs[this.head++]!;
    this.cons = r.pos + ((r.size + HDR + 7) & ~7);
    if (this.head > 1024 && this.head * 2 > this.recs.length) {
      this.recs.splice(0, this.head);
      this.head = 0;
    }
  }

  /** size of the next deliverable record, or 0 */
  pendingSize(): number {
    this.skipDiscarded();
    const r = this.recs[this.head];
    return r && r.state === 'committed' ? r.size : 0;
  }

  /**
   * Copies whole committed records into `out` (src/records.ts's framing: [u32 size][u32 0][data padded to 8]), in order, up to
   * the first record still reserved. Returns the count, or -ENOBUFS when the next one alone does not fit.
   */
  drain(out: Uint8Array): number {
    const view = recordView(out);
    const bytes = this.memory.bytes();
    let off = 0;
    let n = 0;
    for (;;) {
      this.skipDiscarded();
      const r = this.recs[this.head];
      if (!r || r.state !== 'committed') break;
      const a = this.data + (r.pos & this.mask) + HDR;
      const next = writeRecord(out, view, off, bytes.subarray(a, a + r.size));
      if (next < 0) {
        if (n === 0) return -ENOBUFS;
        break;
      }
      off = next;
      n++;
      this.advance();
    }
    return n;
  }

  // ---- syscall side: nothing (the kernel answers ENOTSUPP) -------------------------------------------

  sysLookup(_key: Uint8Array | undefined, _out: Uint8Array, _flags: number): number {
    return -E.ENOTSUPP;
  }
  sysUpdate(_key: Uint8Array | undefined, _value: Uint8Array, _flags: number): number {
    return -E.ENOTSUPP;
  }
  sysDelete(_key: Uint8Array | undefined, _flags: number): number {
    return -E.ENOTSUPP;
  }
  sysNextKey(_key: Uint8Array | undefined, _out: Uint8Array, _flags: number): number {
    return -E.ENOTSUPP;
  }
}
