// Record delivery without a JS -> Wasm call per record. The host copies a chunk of its staged records
// (as every RecordSource writes them: [u32 size][u32 0][size bytes, padded to 8]) into the tail of the
// guest's own poll buffer (the ABI hands the host [data_ptr, data_ptr + max_size) during the poll);
// this small Wasm module, instantiated against the guest's memory and its callback, then copies each
// record in turn to data_ptr and calls the callback as sample_func(ctx, data_ptr, size), exactly as
// the ABI says: one host -> Wasm call per chunk instead of one per record.
//
// Copying record k to data_ptr never overwrites record k+1 or later: record k+1 starts at least
// 8 + size_k bytes after data_ptr. Every access is a Wasm memory access and every size is checked
// against the chunk's end: a guest that scribbles over its staged records can only spoil its own
// deliveries, never touch the host.
//
//   (func $run (param $ctx i32) (param $data i32) (param $stage i32) (param $end i32) (param $max i32)
//              (result i32)
//     p = stage; i = 0
//     while i < max && p + 8 <= end && size(p) <= end - p - 8:
//       copy size bytes from p + 8 to data; p += (size + 15) & ~7; i++; done = i; used = p - stage
//       r = cb(ctx, data, size); if r < 0: return r
//     return i)
// `done` and `used` (exported globals) tell the host how many records, and bytes, were consumed,
// also when a callback returned an error (the record that failed counts as consumed).

/** unsigned LEB128 */
function leb(n: number): number[] {
  const out: number[] = [];
  do {
    const b = n & 0x7f;
    n >>>= 7;
    out.push(n ? b | 0x80 : b);
  } while (n);
  return out;
}

/** a section: id, size, contents */
function section(id: number, ...contents: number[]): number[] {
  return [id, ...leb(contents.length), ...contents];
}

const I32 = 0x7f;
const name = (s: string): number[] => [s.length, ...Buffer.from(s, 'latin1')];

const BODY = [
  0x01, 0x05, I32, // locals 5..9: i, p, size, r, q
  0x20, 0x02, 0x21, 0x06, // p = stage
  0x41, 0x00, 0x24, 0x00, // done = 0
  0x41, 0x00, 0x24, 0x01, // used = 0
  0x02, 0x40, // block
  0x03, 0x40, // loop
  0x20, 0x05, 0x20, 0x04, 0x4f, 0x0d, 0x01, // if i >= max (unsigned): break
  0x20, 0x03, 0x20, 0x06, 0x6b, 0x41, 0x08, 0x49, 0x0d, 0x01, // if end - p < 8 (unsigned): break
  0x20, 0x06, 0x28, 0x02, 0x00, 0x22, 0x07, // size = i32.load(p)
  0x20, 0x03, 0x20, 0x06, 0x6b, 0x41, 0x08, 0x6b, 0x4b, 0x0d, 0x01, // if size > end - p - 8 (unsigned): break
  // copy the record to data: small ones by 8-byte words, padding included (it lies inside the chunk
  // and, at data, below the start of the next record), large ones with memory.copy
  0x20, 0x07, 0x41, 0x80, 0x02, 0x4b, // size > 256 ?
  0x04, 0x40, // if
  0x20, 0x01, 0x20, 0x06, 0x41, 0x08, 0x6a, 0x20, 0x07, 0xfc, 0x0a, 0x00, 0x00, // memory.copy(data, p + 8, size)
  0x05, // else
  0x41, 0x00, 0x21, 0x09, // q = 0
  0x02, 0x40, 0x03, 0x40, // block loop
  0x20, 0x09, 0x20, 0x07, 0x4f, 0x0d, 0x01, // if q >= size: break
  0x20, 0x01, 0x20, 0x09, 0x6a, // data + q
  0x20, 0x06, 0x20, 0x09, 0x6a, 0x29, 0x03, 0x08, // i64.load offset=8 (p + q)
  0x37, 0x03, 0x00, // i64.store
  0x20, 0x09, 0x41, 0x08, 0x6a, 0x21, 0x09, // q += 8
  0x0c, 0x00, 0x0b, 0x0b, // br loop; end loop; end block
  0x0b, // end if
  0x20, 0x06, 0x20, 0x07, 0x41, 0x0f, 0x6a, 0x41, 0x78, 0x71, 0x6a, 0x21, 0x06, // p += (size + 15) & ~7
  0x20, 0x05, 0x41, 0x01, 0x6a, 0x22, 0x05, 0x24, 0x00, // done = ++i
  0x20, 0x06, 0x20, 0x02, 0x6b, 0x24, 0x01, // used = p - stage
  0x20, 0x00, 0x20, 0x01, 0x20, 0x07, 0x10, 0x00, 0x22, 0x08, // r = cb(ctx, data, size)
  0x41, 0x00, 0x48, 0x04, 0x40, 0x20, 0x08, 0x0f, 0x0b, // if r < 0: return r
  0x0c, 0x00, // next record
  0x0b, // end loop
  0x0b, // end block
  0x20, 0x05, // return i
  0x0b,
];

const BYTES = new Uint8Array([
  0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00,
  // types: 0 = (i32 i32 i32) -> i32 (the callback), 1 = (i32 i32 i32 i32 i32) -> i32 (run)
  ...section(1, 2, 0x60, 3, I32, I32, I32, 1, I32, 0x60, 5, I32, I32, I32, I32, I32, 1, I32),
  // imports: m.memory (memory, min 0, no max), m.cb (func of type 0)
  ...section(2, 2, ...name('m'), ...name('memory'), 0x02, 0x00, 0x00, ...name('m'), ...name('cb'), 0x00, 0x00),
  // one function, of type 1
  ...section(3, 1, 1),
  // two globals: done, used: (mut i32) = 0
  ...section(6, 2, I32, 0x01, 0x41, 0x00, 0x0b, I32, 0x01, 0x41, 0x00, 0x0b),
  // exports: "run" = func 1 (func 0 is the import), "done" = global 0, "used" = global 1
  ...section(7, 3, ...name('run'), 0x00, 0x01, ...name('done'), 0x03, 0x00, ...name('used'), 0x03, 0x01),
  // code
  ...section(10, 1, ...leb(BODY.length), ...BODY),
]);

let compiled: WebAssembly.Module | undefined;

/** the dispatcher module's bytes (for tests) */
export const DISPATCHER_WASM: Uint8Array = BYTES;

export interface RecordDispatcher {
  /**
   * delivers at most `max` whole records staged in [stage, end) to the callback, each copied to `data`;
   * the count, or the first negative callback result
   */
  run(ctx: number, data: number, stage: number, end: number, max: number): number;
  /** records consumed by the last run (including one whose callback returned an error) */
  done(): number;
  /** bytes of the chunk those records took */
  used(): number;
}

/**
 * A dispatcher for one guest callback, or undefined when it cannot be linked: the callback is not
 * a Wasm function of type (i32, i32, i32) -> i32, or the memory is shared. The caller then delivers
 * records from JS, one call each.
 */
export function createDispatcher(memory: WebAssembly.Memory, callback: unknown): RecordDispatcher | undefined {
  if (typeof callback !== 'function' || callback.length !== 3) return undefined;
  if (typeof SharedArrayBuffer !== 'undefined' && memory.buffer instanceof SharedArrayBuffer) return undefined;
  try {
    compiled ??= new WebAssembly.Module(BYTES);
    // linking checks the callback's exact type: a JS function or another signature throws LinkError
    const inst = new WebAssembly.Instance(compiled, { m: { memory, cb: callback as (...a: number[]) => number } });
    const run = inst.exports['run'] as RecordDispatcher['run'];
    const done = inst.exports['done'] as WebAssembly.Global;
    const used = inst.exports['used'] as WebAssembly.Global;
    return { run, done: () => done.value as number, used: () => used.value as number };
  } catch {
    return undefined;
  }
}
