// One VM address space: a WebAssembly.Memory, a region table for bounds checks, and a small allocator.
// Layout: [0, NULL_GUARD) never mapped; [NULL_GUARD, NULL_GUARD + stack) the call-frame stacks
// (MAX_CALL_DEPTH frames of STACK_FRAME_SIZE, frame 0 at the top); then allocations.

import {
  MAX_CALL_DEPTH,
  NULL_GUARD,
  STACK_FRAME_SIZE,
  VmError,
  type AllocOptions,
  type MemoryOptions,
  type Region,
  type VmMemory,
} from './api.js';

const PAGE = 65536;
/**
 * The region table, mirrored into linear memory for the compiled code's inline lookups: at TABLE_INFO
 * (inside the never-mapped NULL page) u32 count, u32 address of the entries; each entry is 16 bytes:
 * u32 start, u32 end, u32 flags (REGION_WRITABLE | REGION_STACK), u32 0; sorted by start.
 */
export const TABLE_INFO = 0x100;
export const REGION_WRITABLE = 1;
export const REGION_STACK = 2;
/** unmapped bytes after every region, so that small overruns fault instead of reaching a neighbour */
const GUARD = 64;
export const STACK_BASE = NULL_GUARD;
export const STACK_SIZE = STACK_FRAME_SIZE * MAX_CALL_DEPTH;
export const STACK_TOP = STACK_BASE + STACK_SIZE;

class RegionImpl implements Region {
  constructor(
    readonly addr: number,
    readonly size: number,
    readonly kind: Region['kind'],
    readonly name: string,
    readonly writable: boolean,
    /** bytes reserved (>= size, rounded) */
    readonly span: number,
  ) {}
  live = true;
}

export class Memory implements VmMemory {
  readonly wasm: WebAssembly.Memory;
  /** live regions sorted by addr */
  private list: RegionImpl[] = [];
  /** free blocks by span */
  private free_ = new Map<number, number[]>();
  private brk: number;
  private readonly maxPages: number;
  readonly stack: Region;
  /** set while a run is using this memory (runs do not nest on one memory) */
  running = false;
  private u8: Uint8Array;
  private dv: DataView;

  constructor(opts: MemoryOptions = {}) {
    const initial = Math.max(1, opts.initialPages ?? 4);
    this.maxPages = Math.max(initial, opts.maximumPages ?? 16384);
    this.wasm = new WebAssembly.Memory({ initial, maximum: this.maxPages });
    this.u8 = new Uint8Array(this.wasm.buffer);
    this.dv = new DataView(this.wasm.buffer);
    this.brk = STACK_BASE;
    this.stack = this.alloc(STACK_SIZE, { kind: 'stack', name: 'stack' });
  }

  private tableAddr = 0;
  private tableCap = 0;

  /** keep the linear-memory copy of the region table in step: entry k inserted (+1) or removed (-1) */
  private syncTable(k: number, change: 1 | -1): void {
    const n = this.list.length;
    if (n > this.tableCap) {
      const cap = Math.max(64, this.tableCap * 2, n);
      // raw space from the bump allocator: never a region, so programs cannot touch it
      const addr = Math.ceil(this.brk / 16) * 16;
      const end = addr + cap * 16;
      this.ensure(end);
      this.brk = end;
      this.tableAddr = addr;
      this.tableCap = cap;
      this.writeEntries(0, n);
    } else {
      const u32 = new Uint32Array(this.wasm.buffer, this.tableAddr, this.tableCap * 4);
      if (change === 1) {
        u32.copyWithin((k + 1) * 4, k * 4, (n - 1) * 4);
        this.writeEntries(k, k + 1);
      } else u32.copyWithin(k * 4, (k + 1) * 4, (n + 1) * 4);
    }
    const dv = this.view();
    dv.setUint32(TABLE_INFO, n, true);
    dv.setUint32(TABLE_INFO + 4, this.tableAddr, true);
  }

  private writeEntries(from: number, to: number): void {
    const u32 = new Uint32Array(this.wasm.buffer, this.tableAddr, this.tableCap * 4);
    for (let k = from; k < to; k++) {
      const r = this.list[k]!;
      u32[k * 4] = r.addr;
      u32[k * 4 + 1] = r.addr + r.size;
      u32[k * 4 + 2] = (r.writable ? REGION_WRITABLE : 0) | (r.kind === 'stack' ? REGION_STACK : 0);
      u32[k * 4 + 3] = 0;
    }
  }

  private ensure(end: number): void {
    if (end > this.maxPages * PAGE) throw new RangeError('VM memory exhausted');
    const have = this.wasm.buffer.byteLength;
    if (end > have) {
      const need = Math.ceil((end - have) / PAGE);
      const cur = have / PAGE;
      this.wasm.grow(Math.min(this.maxPages - cur, Math.max(need, cur)));
    }
  }

  private refresh(): void {
    if (this.u8.buffer !== this.wasm.buffer) {
      this.u8 = new Uint8Array(this.wasm.buffer);
      this.dv = new DataView(this.wasm.buffer);
    }
  }

  bytes(): Uint8Array {
    this.refresh();
    return this.u8;
  }

  view(): DataView {
    this.refresh();
    return this.dv;
  }

  alloc(size: number, opts: AllocOptions): Region {
    if (!Number.isInteger(size) || size < 0) throw new RangeError(`bad region size ${size}`);
    const align = opts.align ?? 8;
    if (align <= 0 || (align & (align - 1)) !== 0) throw new RangeError(`bad alignment ${align}`);
    const span = Math.max(8, Math.ceil(size / 8) * 8) + GUARD;
    let addr: number | undefined;
    const bucket = this.free_.get(span);
    if (bucket !== undefined && align <= 8) {
      addr = bucket.pop();
      if (bucket.length === 0) this.free_.delete(span);
    }
    if (addr === undefined) {
      addr = Math.ceil(this.brk / align) * align;
      const end = addr + span;
      if (end > this.maxPages * PAGE) throw new RangeError(`VM memory exhausted (${size} bytes requested)`);
      this.ensure(end);
      this.brk = end;
    }
    const r = new RegionImpl(addr, size, opts.kind, opts.name ?? opts.kind, opts.writable ?? true, span);
    this.bytes().fill(0, addr + size, addr + span);
    if (opts.zero !== false) this.bytes().fill(0, addr, addr + size);
    // insert sorted
    let lo = 0;
    let hi = this.list.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (this.list[mid]!.addr < addr) lo = mid + 1;
      else hi = mid;
    }
    this.list.splice(lo, 0, r);
    this.syncTable(lo, 1);
    return r;
  }

  free(region: Region): void {
    if (!(region instanceof RegionImpl) || !region.live) return;
    if (region === this.stack) throw new Error('the stack region cannot be freed');
    const k = this.indexOf(region.addr);
    if (k >= 0 && this.list[k] === region) {
      this.list.splice(k, 1);
      this.syncTable(k, -1);
    }
    region.live = false;
    let b = this.free_.get(region.span);
    if (b === undefined) this.free_.set(region.span, (b = []));
    b.push(region.addr);
  }

  private indexOf(addr: number): number {
    // last region with region.addr <= addr
    let lo = 0;
    let hi = this.list.length - 1;
    let ans = -1;
    while (lo <= hi) {
      const mid = (lo + hi) >> 1;
      if (this.list[mid]!.addr <= addr) {
        ans = mid;
        lo = mid + 1;
      } else hi = mid - 1;
    }
    return ans;
  }

  /** region holding [addr, addr+len) (len >= 1), by number address */
  findNum(addr: number, len: number): Region | undefined {
    const k = this.indexOf(addr);
    if (k < 0) return undefined;
    const r = this.list[k]!;
    // a zero-size region holds nothing
    return addr + len <= r.addr + r.size ? r : undefined;
  }

  /** the region holding addr or ending less than GUARD bytes before it (for messages) */
  nearBelow(addr: number): Region | undefined {
    const k = this.indexOf(addr);
    if (k < 0) return undefined;
    const r = this.list[k]!;
    return addr < r.addr + r.size + GUARD ? r : undefined;
  }

  find(addr: number | bigint, len: number): Region | undefined {
    const a = typeof addr === 'bigint' ? (addr >= 0n && addr < 1n << 53n ? Number(addr) : -1) : addr;
    if (!(a >= 0) || !Number.isInteger(a)) return undefined;
    return this.findNum(a, Math.max(1, len));
  }

  check(addr: bigint | number, len: number, write: boolean): number {
    const a = typeof addr === 'bigint' ? (addr >= 0n && addr < 1n << 53n ? Number(addr) : -1) : addr;
    if (len === 0) return a >= 0 && a < 2 ** 32 ? a : 0;
    const r = a >= 0 && Number.isInteger(a) && Number.isInteger(len) && len > 0 ? this.findNum(a, len) : undefined;
    if (r === undefined || (write && !r.writable)) {
      const what = r === undefined ? 'out of bounds' : `into read-only ${r.kind} region '${r.name}'`;
      throw new VmError('memory', `helper ${write ? 'write' : 'read'} of ${len} bytes at 0x${BigInt.asUintN(64, BigInt(addr)).toString(16)} ${what}`);
    }
    return a;
  }

  read(addr: bigint | number, len: number): Uint8Array {
    const a = this.check(addr, len, false);
    return this.bytes().slice(a, a + len);
  }

  write(addr: bigint | number, data: Uint8Array): void {
    const a = this.check(addr, data.length, true);
    this.bytes().set(data, a);
  }

  regions(): readonly Region[] {
    return this.list.slice();
  }
}

/** message for a program access that failed */
export function accessFault(mem: Memory, addrLo: number, addrHi: number, width: number, write: boolean, stackLo: number): string {
  const a = (BigInt(addrHi >>> 0) << 32n) | BigInt(addrLo >>> 0);
  const r = addrHi === 0 ? mem.findNum(addrLo >>> 0, width) : undefined;
  const near = addrHi === 0 ? mem.nearBelow(addrLo >>> 0) : undefined;
  let what = 'out of bounds';
  if (near === mem.stack && addrLo >>> 0 < stackLo) {
    what = `below the current stack frame (frames in use: 0x${stackLo.toString(16)}..0x${STACK_TOP.toString(16)})`;
  } else if (r !== undefined && write && !r.writable) what = `into read-only ${r.kind} region '${r.name}'`;
  else if (near !== undefined) what = `past the end of ${near.kind} region '${near.name}' (0x${near.addr.toString(16)}, ${near.size} bytes)`;
  else if (a < BigInt(NULL_GUARD)) what = 'out of bounds (NULL page)';
  return `${write ? 'store' : 'load'} of ${width} bytes at 0x${a.toString(16)} ${what}`;
}
