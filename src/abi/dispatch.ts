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
import { Bytes, OP, T, buildModule } from '../wasm/writer.js';

// locals of $run: its parameters, then i, p, size, r, q
const CTX = 0, DATA = 1, STAGE = 2, END = 3, MAX = 4, I = 5, P = 6, SIZE = 7, R = 8, Q = 9;
const DONE = 0, USED = 1; // globals

/**
 * Emits the copy of the staged record at `p` ([u32 size][u32 0][data]) to `data`: small ones by 8-byte
 * words, padding included (it lies inside the staged chunk and, at data, below the start of the next
 * record), large ones with memory.copy (a C call in V8). `q` is a scratch local. Also used by pollgate.ts.
 */
export function emitRecordCopy(b: Bytes, l: { data: number; p: number; size: number; q: number }): void {
  const get = (x: number): Bytes => b.byte(OP.local_get).u32(x);
  const i32 = (v: number): Bytes => b.byte(OP.i32_const).s32(v);
  get(l.size); i32(256); b.byte(OP.i32_gt_u).byte(OP.if).byte(T.void);
  get(l.data); get(l.p); i32(8); b.byte(OP.i32_add); get(l.size); b.byte(0xfc).u32(10).byte(0).byte(0); // memory.copy
  b.byte(OP.else);
  i32(0); b.byte(OP.local_set).u32(l.q);
  b.byte(OP.block).byte(T.void).byte(OP.loop).byte(T.void);
  get(l.q); get(l.size); b.byte(OP.i32_ge_u).byte(OP.br_if).u32(1);
  get(l.data); get(l.q); b.byte(OP.i32_add);
  get(l.p); get(l.q); b.byte(OP.i32_add).byte(OP.i64_load).u32(3).u32(8); // from p + 8 + q
  b.byte(OP.i64_store).u32(3).u32(0);
  get(l.q); i32(8); b.byte(OP.i32_add); b.byte(OP.local_set).u32(l.q);
  b.byte(OP.br).u32(0).byte(OP.end).byte(OP.end);
  b.byte(OP.end);
}

function body(): Uint8Array {
  const b = new Bytes();
  const get = (l: number): Bytes => b.byte(OP.local_get).u32(l);
  const set = (l: number): Bytes => b.byte(OP.local_set).u32(l);
  const i32 = (v: number): Bytes => b.byte(OP.i32_const).s32(v);
  get(STAGE); set(P);
  i32(0); b.byte(OP.global_set).u32(DONE);
  i32(0); b.byte(OP.global_set).u32(USED);
  b.byte(OP.block).byte(T.void).byte(OP.loop).byte(T.void);
  // if i >= max, or fewer than 8 bytes left, or the record does not fit the chunk (all unsigned): stop
  get(I); get(MAX); b.byte(OP.i32_ge_u).byte(OP.br_if).u32(1);
  get(END); get(P); b.byte(OP.i32_sub); i32(8); b.byte(OP.i32_lt_u).byte(OP.br_if).u32(1);
  get(P); b.byte(OP.i32_load).u32(2).u32(0).byte(OP.local_tee).u32(SIZE);
  get(END); get(P); b.byte(OP.i32_sub); i32(8); b.byte(OP.i32_sub).byte(OP.i32_gt_u).byte(OP.br_if).u32(1);
  emitRecordCopy(b, { data: DATA, p: P, size: SIZE, q: Q });
  // p += (size + 15) & ~7; done = ++i; used = p - stage
  get(P); get(SIZE); i32(15); b.byte(OP.i32_add); i32(-8); b.byte(OP.i32_and).byte(OP.i32_add); set(P);
  get(I); i32(1); b.byte(OP.i32_add).byte(OP.local_tee).u32(I).byte(OP.global_set).u32(DONE);
  get(P); get(STAGE); b.byte(OP.i32_sub).byte(OP.global_set).u32(USED);
  // r = cb(ctx, data, size); if r < 0: return r
  get(CTX); get(DATA); get(SIZE); b.byte(OP.call).u32(0).byte(OP.local_tee).u32(R);
  i32(0); b.byte(OP.i32_lt_s).byte(OP.if).byte(T.void); get(R); b.byte(OP.return).byte(OP.end);
  b.byte(OP.br).u32(0);
  b.byte(OP.end).byte(OP.end);
  get(I);
  return b.out();
}

const CALLBACK = { params: [T.i32, T.i32, T.i32], results: [T.i32] };
const RUN = { params: [T.i32, T.i32, T.i32, T.i32, T.i32], results: [T.i32] };

const BYTES = buildModule({
  types: [CALLBACK, RUN],
  funcImports: [{ module: 'm', name: 'cb', type: 0 }],
  memoryImport: { module: 'm', name: 'memory' },
  globals: [
    { type: T.i32, init: 0 },
    { type: T.i32, init: 0 },
  ],
  funcs: [{ type: 1, locals: [[5, T.i32]], body: body() }],
  exports: [
    { name: 'run', kind: 'func', index: 1 },
    { name: 'done', kind: 'global', index: DONE },
    { name: 'used', kind: 'global', index: USED },
  ],
});

let compiled: WebAssembly.Module | undefined;

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
