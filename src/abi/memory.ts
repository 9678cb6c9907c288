// Guest memory access with bounds checks. The guest's memory may grow (its ArrayBuffer is then
// replaced), so views are re-derived whenever the buffer changed.

export class GuestMemory {
  private buf: ArrayBuffer;
  private u8view: Uint8Array;
  private u32view: Uint32Array;

  constructor(readonly memory: WebAssembly.Memory) {
    this.buf = memory.buffer;
    this.u8view = new Uint8Array(this.buf);
    this.u32view = new Uint32Array(this.buf);
  }

  /** the current buffer. memory.grow detaches the old one (byteLength 0): only then re-read it, as
   * reading `memory.buffer` costs more than the rest of a map operation's glue */
  get buffer(): ArrayBuffer {
    if (this.buf.byteLength === 0) this.refresh();
    return this.buf;
  }

  get u8(): Uint8Array {
    if (this.buf.byteLength === 0) this.refresh();
    return this.u8view;
  }

  /** 32-bit view (index = byte offset / 4) */
  get u32(): Uint32Array {
    if (this.buf.byteLength === 0) this.refresh();
    return this.u32view;
  }

  private refresh(): void {
    this.buf = this.memory.buffer;
    this.u8view = new Uint8Array(this.buf);
    this.u32view = new Uint32Array(this.buf);
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

/** an i64 guest pointer as BigInt to an offset, or -1 when it cannot be a wasm32 address */
export function ptr64(v: bigint): number {
  return v >= 0n && v <= 0xffffffffn ? Number(v) : -1;
}
