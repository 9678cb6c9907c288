// wasm_bpf_buffer_poll without JavaScript on its common path.
//
// The guest imports wasm_bpf_buffer_poll from a small "gate" module made before the guest is
// instantiated. Until the guest exists, the gate forwards every call to the host's JavaScript poll.
// Once the guest is bound (its memory and function table exist), a "poll" module is instantiated
// against them and the backend's C record source (DirectPoll: native/src/guestmaps.cc), and the gate
// calls it through its one-entry table instead:
//
//   guest -> gate.poll -> poll.poll -> C fill: waits on the ring (or perf) buffer, writes whole records
//                                      ([u32 size][u32 0][data, padded to 8]) into the staging area
//                                      of the guest's own buffer (from its first 8-byte aligned byte)
//                                   -> for each record: copy to data_ptr, call_indirect the guest's
//                                      callback (ctx, data_ptr, size), as the ABI says
//                                   -> C fill again without waiting while C says the staging area
//                                      filled up before the ring was empty
//
// Everything unusual goes to the JavaScript poll, which knows every rule: a callback index the host
// has not checked yet (the last OK_FNS checked ones are remembered), a buffer smaller than MIN_MAX
// bytes or one that wraps around the address space, an fd, handle or buffer outside guest memory the
// C side does not serve (POLL_SLOW), a record larger than the staging area (-ENOBUFS), a stop request
// (-EINTR: the JavaScript poll then ends the run), any other error. A callback that returns an error, or a
// guest that spoiled its own staged records, hands the undelivered records to the host (`keep`),
// which delivers them first on the next poll. A poll from inside a callback (of any buffer) gets
// -EBUSY: the global `active` is 1 while records are delivered, here or by the JavaScript poll (the
// host reads and sets the same global), and is 0 again before every return and every call of slow.
//
//   (func $poll (param $handle i64) (param $fd i32) (param $fn i32) (param $ctx i32) (param $data i32)
//               (param $max i32) (param $timeout i32) (result i32)
//     if active: return -EBUSY
//     if fn is none of the checked callbacks || max < MIN_MAX || data + max wraps: return slow(all)
//     active = 1
//     stage = (data + 7) & ~7; len = data + max - stage; end = stage + len
//     n = fill(handle, fd, stage, len, timeout, 0)
//     if n == 0 or n == -EBUSY: return n;  if n < 0: return slow(..., n == POLL_SLOW ? timeout : 0)
//     loop: more = n & MORE; n &= ~MORE
//           deliver the n records at stage (r < 0: done, keep the rest, return r)
//           total += n; if !more or total >= MAX_RECORDS: stop
//           n = fill(handle, fd, stage, len, 0, 1); while n > 0
//     done(fd); return total)
import { POLL_SLOW } from '../../backends/fastpath.js';
import { EBUSY } from './errno.js';
import { emitRecordCopy } from './dispatch.js';
import { Bytes, OP, T, buildModule } from '../wasm/writer.js';

/** a guest buffer smaller than this goes through the JavaScript poll (records may need truncation there) */
const MIN_MAX = 1024 + 8;
/** one poll delivers at most about this many records (then returns, like the host's path after its buffer) */
const MAX_RECORDS = 65536;
/** or'ed into fill's count (kMore in guestmaps.cc): the staging area filled up before the buffer was empty */
const MORE = 1 << 30;

const POLL = { params: [T.i64, T.i32, T.i32, T.i32, T.i32, T.i32, T.i32], results: [T.i32] };
const FILL = { params: [T.i64, T.i32, T.i32, T.i32, T.i32, T.i32], results: [T.i32] };
const DONE = { params: [T.i32], results: [T.i32] };
const KEEP = { params: [T.i32, T.i32, T.i32, T.i32], results: [T.i32] };
const CALLBACK = { params: [T.i32, T.i32, T.i32], results: [T.i32] };

type PollFn = (handle: bigint, fd: number, fn: number, ctx: number, data: number, max: number, timeout: number) => number;

// ---- the gate ---------------------------------------------------------------------------------------

function gateBody(): Uint8Array {
  const b = new Bytes();
  const args = (): void => {
    for (let i = 0; i < 7; i++) b.byte(OP.local_get).u32(i);
  };
  b.byte(OP.global_get).u32(0).byte(OP.if).byte(T.i32);
  args();
  b.byte(OP.i32_const).s32(0).byte(OP.call_indirect).u32(0).u32(0);
  b.byte(OP.else);
  args();
  b.byte(OP.call).u32(0);
  b.byte(OP.end);
  return b.out();
}

let gateModule: WebAssembly.Module | undefined;

export interface PollGate {
  /** the function the guest imports as wasm_bpf_buffer_poll */
  readonly poll: PollFn;
  /** from now on, calls go to `target` (an exported function of a poll module) */
  attach(target: PollFn): void;
}

/** a gate forwarding to `slow` (the JavaScript poll) until attach() */
export function createPollGate(slow: PollFn): PollGate {
  gateModule ??= new WebAssembly.Module(
    buildModule({
      types: [POLL],
      funcImports: [{ module: 'm', name: 'slow', type: 0 }],
      tables: [{ min: 1 }],
      globals: [{ type: T.i32, init: 0 }],
      funcs: [{ type: 0, locals: [], body: gateBody() }],
      exports: [
        { name: 'poll', kind: 'func', index: 1 },
        { name: 'table', kind: 'table', index: 0 },
        { name: 'ready', kind: 'global', index: 0 },
      ],
    }),
  );
  const inst = new WebAssembly.Instance(gateModule, { m: { slow } });
  const table = inst.exports['table'] as WebAssembly.Table;
  const ready = inst.exports['ready'] as WebAssembly.Global;
  return {
    poll: inst.exports['poll'] as PollFn,
    attach: (target) => {
      table.set(0, target);
      ready.value = 1;
    },
  };
}

// ---- the poll module --------------------------------------------------------------------------------

// imported functions, then $poll
const F_FILL = 0, F_DONE = 1, F_SLOW = 2, F_KEEP = 3;
// locals: the 7 parameters, then
const HANDLE = 0, FD = 1, FN = 2, CTX = 3, DATA = 4, MAX = 5, TIMEOUT = 6;
const STAGE = 7, LEN = 8, END = 9, N = 10, P = 11, I = 12, SIZE = 13, R = 14, Q = 15, TOTAL = 16, FULL = 17;
/** globals 0..OK_FNS-1: the callback indices the host checked last; then ACTIVE (see above) */
const OK_FNS = 4;
const ACTIVE = OK_FNS;

function pollBody(): Uint8Array {
  const b = new Bytes();
  const get = (l: number): Bytes => b.byte(OP.local_get).u32(l);
  const set = (l: number): Bytes => b.byte(OP.local_set).u32(l);
  const i32 = (v: number): Bytes => b.byte(OP.i32_const).s32(v);
  const slowCall = (timeout: () => void): void => {
    for (const l of [HANDLE, FD, FN, CTX, DATA, MAX]) get(l);
    timeout();
    b.byte(OP.call).u32(F_SLOW);
  };
  const release = (): void => {
    i32(0); b.byte(OP.global_set).u32(ACTIVE);
  };
  // done(fd); keep(fd, p, end, n - i)
  const handBack = (): void => {
    release();
    get(FD); b.byte(OP.call).u32(F_DONE).byte(OP.drop);
    get(FD); get(P); get(END); get(N); get(I); b.byte(OP.i32_sub).byte(OP.call).u32(F_KEEP).byte(OP.drop);
  };

  // a poll from inside a record callback
  b.byte(OP.global_get).u32(ACTIVE).byte(OP.if).byte(T.void);
  i32(-EBUSY); b.byte(OP.return).byte(OP.end);
  // a callback the host has not checked, a small buffer, or one that wraps around the 32-bit address
  // space (data + max < data): the JavaScript poll (which answers the latter -EFAULT)
  get(FN); b.byte(OP.global_get).u32(0).byte(OP.i32_ne);
  for (let k = 1; k < OK_FNS; k++) {
    get(FN); b.byte(OP.global_get).u32(k).byte(OP.i32_ne).byte(OP.i32_and);
  }
  get(MAX); i32(MIN_MAX); b.byte(OP.i32_lt_s).byte(OP.i32_or);
  get(DATA); get(MAX); b.byte(OP.i32_add); get(DATA); b.byte(OP.i32_lt_u).byte(OP.i32_or);
  b.byte(OP.if).byte(T.void);
  slowCall(() => get(TIMEOUT));
  b.byte(OP.return).byte(OP.end);
  i32(1); b.byte(OP.global_set).u32(ACTIVE);
  // stage = (data + 7) & ~7; len = data + max - stage; end = stage + len (C checks it against memory)
  get(DATA); i32(7); b.byte(OP.i32_add); i32(-8); b.byte(OP.i32_and); set(STAGE);
  get(DATA); get(MAX); b.byte(OP.i32_add); get(STAGE); b.byte(OP.i32_sub); set(LEN);
  get(STAGE); get(LEN); b.byte(OP.i32_add); set(END);
  // n = fill(handle, fd, stage, len, timeout, 0)
  get(HANDLE); get(FD); get(STAGE); get(LEN); get(TIMEOUT); i32(0); b.byte(OP.call).u32(F_FILL); set(N);
  get(N); i32(0); b.byte(OP.i32_le_s).byte(OP.if).byte(T.void);
  release();
  get(N); b.byte(OP.i32_eqz); get(N); i32(-EBUSY); b.byte(OP.i32_eq).byte(OP.i32_or);
  b.byte(OP.if).byte(T.void); get(N); b.byte(OP.return).byte(OP.end);
  slowCall(() => {
    get(N); i32(POLL_SLOW); b.byte(OP.i32_eq).byte(OP.if).byte(T.i32); get(TIMEOUT); b.byte(OP.else); i32(0); b.byte(OP.end);
  });
  b.byte(OP.return).byte(OP.end);

  b.byte(OP.block).byte(T.void).byte(OP.loop).byte(T.void); // $out, $batch
  get(N); i32(MORE); b.byte(OP.i32_and); set(FULL);
  get(N); i32(MORE - 1); b.byte(OP.i32_and); set(N);
  get(STAGE); set(P); i32(0); set(I);
  b.byte(OP.block).byte(T.void).byte(OP.loop).byte(T.void); // $recs, $rec
  get(I); get(N); b.byte(OP.i32_ge_u).byte(OP.br_if).u32(1);
  // a record that does not fit what C wrote: the guest overwrote its staged records
  get(END); get(P); b.byte(OP.i32_sub); i32(8); b.byte(OP.i32_lt_u);
  b.byte(OP.if).byte(T.void); handBack(); get(TOTAL); get(I); b.byte(OP.i32_add).byte(OP.return).byte(OP.end);
  get(P); b.byte(OP.i32_load).u32(2).u32(0).byte(OP.local_tee).u32(SIZE);
  get(END); get(P); b.byte(OP.i32_sub); i32(8); b.byte(OP.i32_sub).byte(OP.i32_gt_u);
  b.byte(OP.if).byte(T.void); handBack(); get(TOTAL); get(I); b.byte(OP.i32_add).byte(OP.return).byte(OP.end);
  emitRecordCopy(b, { data: DATA, p: P, size: SIZE, q: Q });
  // p += (size + 15) & ~7; i++
  get(P); get(SIZE); i32(15); b.byte(OP.i32_add); i32(-8); b.byte(OP.i32_and).byte(OP.i32_add); set(P);
  get(I); i32(1); b.byte(OP.i32_add); set(I);
  // r = table[fn](ctx, data, size); r < 0: hand the rest back and return r
  get(CTX); get(DATA); get(SIZE); get(FN); b.byte(OP.call_indirect).u32(1).u32(0).byte(OP.local_tee).u32(R);
  i32(0); b.byte(OP.i32_lt_s).byte(OP.if).byte(T.void); handBack(); get(R); b.byte(OP.return).byte(OP.end);
  b.byte(OP.br).u32(0);
  b.byte(OP.end).byte(OP.end); // $rec, $recs
  get(TOTAL); get(N); b.byte(OP.i32_add).byte(OP.local_tee).u32(TOTAL);
  i32(MAX_RECORDS); b.byte(OP.i32_ge_u); get(FULL); b.byte(OP.i32_eqz).byte(OP.i32_or).byte(OP.br_if).u32(1);
  // whatever else the ring holds, without waiting
  get(HANDLE); get(FD); get(STAGE); get(LEN); i32(0); i32(1); b.byte(OP.call).u32(F_FILL).byte(OP.local_tee).u32(N);
  i32(0); b.byte(OP.i32_gt_s).byte(OP.br_if).u32(0);
  b.byte(OP.end).byte(OP.end); // $batch, $out
  release();
  get(FD); b.byte(OP.call).u32(F_DONE).byte(OP.drop);
  get(TOTAL);
  return b.out();
}

let pollModule: WebAssembly.Module | undefined;

export interface PollImports {
  memory: WebAssembly.Memory;
  /** the guest's __indirect_function_table */
  table: WebAssembly.Table;
  fill: (...args: never[]) => number;
  done: (...args: never[]) => number;
  /** the JavaScript poll */
  slow: PollFn;
  /** keep(fd, from, end, count): the host takes `count` undelivered records staged at [from, end) */
  keep: (fd: number, from: number, end: number, count: number) => number;
}

export interface DirectPollFunction {
  readonly poll: PollFn;
  /** a callback index the host checked (a Wasm (i32, i32, i32) -> i32 function of the table); the
   * last OK_FNS are remembered */
  allow(index: number): void;
  /** 1 while a poll delivers records (this module's, or the host's, which sets it too) */
  readonly active: WebAssembly.Global;
}

/** the poll module for one guest, or undefined when it cannot be linked (e.g. a shared memory) */
export function createDirectPoll(imports: PollImports): DirectPollFunction | undefined {
  try {
    pollModule ??= new WebAssembly.Module(
      buildModule({
        types: [POLL, CALLBACK, FILL, DONE, KEEP],
        funcImports: [
          { module: 'm', name: 'fill', type: 2 },
          { module: 'm', name: 'done', type: 3 },
          { module: 'm', name: 'slow', type: 0 },
          { module: 'm', name: 'keep', type: 4 },
        ],
        memoryImport: { module: 'm', name: 'memory' },
        tableImport: { module: 'm', name: 'table' },
        globals: [...Array.from({ length: OK_FNS }, () => ({ type: T.i32, init: -1 })), { type: T.i32, init: 0 }],
        funcs: [{ type: 0, locals: [[11, T.i32]], body: pollBody() }],
        exports: [
          { name: 'poll', kind: 'func', index: 4 },
          ...Array.from({ length: OK_FNS }, (_, k) => ({ name: `ok${k}`, kind: 'global' as const, index: k })),
          { name: 'active', kind: 'global', index: ACTIVE },
        ],
      }),
    );
    const inst = new WebAssembly.Instance(pollModule, { m: { ...imports } });
    const ok = Array.from({ length: OK_FNS }, (_, k) => inst.exports[`ok${k}`] as WebAssembly.Global);
    let next = 0;
    return {
      poll: inst.exports['poll'] as PollFn,
      active: inst.exports['active'] as WebAssembly.Global,
      allow: (index) => {
        if (ok.some((g) => g.value === index)) return;
        ok[next]!.value = index;
        next = (next + 1) % OK_FNS;
      },
    };
  } catch {
    return undefined;
  }
}
