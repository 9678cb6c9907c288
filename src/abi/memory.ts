// Guest memory access with bounds checks. The guest's memory may grow (its ArrayBuffer is then
// replaced), so views are re-derived whenever the buffer changed.

export class GuestMemory {
  private buf: ArrayBuffer;
  private u8view: Uint8Array;

  constructor(readonly memory: WebAssembly.Memory) {
    this.buf = memory.buffer;
    this.u8view = new Uint8Array(this.buf);
  }

  /** the current buffer (refreshed after memory.grow) */
  get buffer(): ArrayBuffer {
    const b = this.memory.buffer;
    if (b !== this.buf) {
      this.buf = b;
      this.u8view = new Uint8Array(b);
    }
    return b;
  }

  get u8(): Uint8Array {
    if (this.memory.buffer !== this.buf) void this.buffer;
    return this.u8view;
  }

  /** true when [ptr, ptr+len) lies inside guest memory (ptr, len already unsigned numbers) */
  inRange(ptr: number, len: number): boolean {
    return ptr >= 0 && len >= 0 && ptr + len <= this.buffer.byteLength;
  }

  /** a copy of guest bytes, or undefined when out of range */
  copyOut(ptr: number, len: number): Uint8Array | undefined {
    if (!this.inRange(ptr, len)) return undefined;
    return this.u8.slice(ptr, ptr + len);
  }

  /** a NUL-terminated string (at most `max` bytes), or undefined if out of range / unterminated */
  cstring(ptr: number, max = 4096): string | undefined {
    const u8 = this.u8;
    if (ptr <= 0 || ptr >= u8.length) return undefined;
    const end = Math.min(u8.length, ptr + max);
    for (let i = ptr; i < end; i++) {
      if (u8[i] === 0) return Buffer.from(u8.buffer, ptr, i - ptr).toString('utf8');
    }
    return undefined;
  }
}

/** i32 guest pointer (signed in JS) to an unsigned offset */
export function u32(v: number): number {
  return v >>> 0;
}

/** an i64 guest pointer as BigInt to an offset, or -1 when it cannot be a wasm32 address */
export function ptr64(v: bigint): number {
  return v >= 0n && v <= 0xffffffffn ? Number(v) : -1;
}
