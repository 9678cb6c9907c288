// The poll record framing every record source writes and src/abi/records.ts reads: each record as
// [u32 size][u32 0][data, zero-padded to 8 bytes], back to back from offset 0 of the batch buffer (the
// addon's C fill, native/src/buffer.cc, writes the same). One writer for the JavaScript sources: the
// userspace backend's ring buffer and perf event array, and the FFI path's ring and perf buffer readers.

/** bytes before a record's data: its u32 size and a u32 0 */
export const RECORD_HEADER = 8;

/** bytes a record of `size` data bytes takes in a batch: the header and the data padded to 8 */
export function recordSpan(size: number): number {
  return RECORD_HEADER + ((size + 7) & ~7);
}

/**
 * Writes one record at `at` of `out` (`view` a DataView over exactly `out`): the header, `data`, and
 * zeros up to the next multiple of 8. Returns the offset after it, or -1 (nothing written) when it does
 * not fit in `out`.
 */
export function writeRecord(out: Uint8Array, view: DataView, at: number, data: Uint8Array): number {
  const end = at + recordSpan(data.length);
  if (end > out.byteLength) return -1;
  view.setUint32(at, data.length, true);
  view.setUint32(at + 4, 0, true);
  out.set(data, at + RECORD_HEADER);
  out.fill(0, at + RECORD_HEADER + data.length, end);
  return end;
}

/** a DataView over exactly the bytes of `out` (what writeRecord's `view` must be) */
export function recordView(out: Uint8Array): DataView {
  return new DataView(out.buffer, out.byteOffset, out.byteLength);
}
