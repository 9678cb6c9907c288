// The embedder's own host functions (library API `imports`), guest side: each import the guest makes of
// an embedder's module becomes a function that asks the main thread to call the JavaScript function and
// waits (Atomics) for its result; a stop request cancels the wait and unwinds the guest.
import { Interrupted, ModuleError } from '../errors.js';
import type { StopSignal } from './stop.js';
import type { ModuleShape, ValType } from '../wasm/imports.js';

/** Int32 slots of the call channel (a SharedArrayBuffer of CALL_BYTES) */
export const CALL_STATE = 0;
const CALL_MSG_LEN = 1;
export const CALL_SEQ = 2;
/** byte offsets: an i64 result, a number result, the message of a function that threw */
const I64_AT = 8;
const NUM_AT = 16;
const MSG_AT = 32;
const MSG_MAX = 1024;
export const CALL_BYTES = MSG_AT + MSG_MAX;

const CallState = { Idle: 0, Pending: 1, Returned: 2, Threw: 3, Cancelled: 4 } as const;

/**
 * The embedder's host functions: module name -> function name -> a JavaScript function. It is called
 * on the main thread with the guest's arguments (i32, f32, f64 as numbers, i64 as bigints) and may
 * return a promise; the guest waits for its result (a number or bigint, converted to the import's type).
 */
export type HostFunction = (...args: Array<number | bigint>) => number | bigint | boolean | void | Promise<number | bigint | boolean | void>;
export type HostImports = Readonly<Record<string, Readonly<Record<string, HostFunction>>>>;

/** the names the guest's thread needs (functions do not cross threads) */
export function importNames(imports: HostImports): Record<string, string[]> {
  return Object.fromEntries(Object.entries(imports).map(([m, fns]) => [m, Object.keys(fns)]));
}

/** main thread: runs one call of the guest and answers it (a throw or a result of the wrong kind traps the guest) */
export async function serveCall(shared: SharedArrayBuffer, req: HostCallRequest, imports: HostImports): Promise<void> {
  const where = `${req.module}.${req.name}`;
  try {
    const fn = imports[req.module]?.[req.name];
    if (!fn) throw new Error(`no such function`);
    const r = await fn(...req.args);
    answerCall(shared, req.seq, { value: toWasm(r, req.result, where) });
  } catch (err) {
    answerCall(shared, req.seq, { error: err instanceof Error ? err.message : String(err) });
  }
}

function toWasm(r: unknown, type: HostCallRequest['result'], where: string): number | bigint | undefined {
  if (type === 'void') return undefined;
  const v = typeof r === 'boolean' ? Number(r) : r;
  if (type === 'i64') {
    if (typeof v === 'bigint') return BigInt.asIntN(64, v);
    if (typeof v === 'number' && Number.isInteger(v)) return BigInt(v);
  } else if (typeof v === 'number') return v;
  else if (typeof v === 'bigint' && type === 'i32') return Number(BigInt.asIntN(32, v));
  throw new Error(`returned ${typeof r === 'object' ? String(r) : typeof r}, the guest's import ${where} expects ${type}`);
}

/** what crosses to the main thread for one call */
export interface HostCallRequest {
  type: 'hostcall';
  seq: number;
  module: string;
  name: string;
  args: Array<number | bigint>;
  result: 'i32' | 'i64' | 'f32' | 'f64' | 'void';
}

const SCALARS: ReadonlySet<ValType> = new Set(['i32', 'i64', 'f32', 'f64']);

/** main thread: writes a call's outcome, unless it was cancelled or superseded; wakes the guest */
export function answerCall(shared: SharedArrayBuffer, seq: number, outcome: { value: number | bigint | undefined } | { error: string }): void {
  const st = new Int32Array(shared, 0, 8);
  if (Atomics.load(st, CALL_SEQ) !== seq || Atomics.load(st, CALL_STATE) !== CallState.Pending) return;
  if ('error' in outcome) {
    const bytes = Buffer.from(outcome.error).subarray(0, MSG_MAX);
    new Uint8Array(shared, MSG_AT, MSG_MAX).set(bytes);
    Atomics.store(st, CALL_MSG_LEN, bytes.length);
    Atomics.compareExchange(st, CALL_STATE, CallState.Pending, CallState.Threw);
  } else {
    if (typeof outcome.value === 'bigint') new BigInt64Array(shared, I64_AT, 1)[0] = outcome.value;
    else if (outcome.value !== undefined) new Float64Array(shared, NUM_AT, 1)[0] = outcome.value;
    Atomics.compareExchange(st, CALL_STATE, CallState.Pending, CallState.Returned);
  }
  Atomics.notify(st, CALL_STATE);
}

/** main thread, on a stop request: a guest waiting for an embedder's function stops waiting */
export function cancelCall(shared: SharedArrayBuffer): void {
  const st = new Int32Array(shared, 0, 8);
  if (Atomics.compareExchange(st, CALL_STATE, CallState.Pending, CallState.Cancelled) === CallState.Pending) Atomics.notify(st, CALL_STATE);
}

/**
 * Guest side: the import functions for the embedder's modules the guest imports. Only functions of
 * i32/i64/f32/f64 parameters and at most one such result can be served (values, not pointers: the
 * embedder's function runs on the main thread and does not see the guest's memory).
 */
export function embedderImports(
  shape: ModuleShape,
  provided: Readonly<Record<string, readonly string[]>>,
  shared: SharedArrayBuffer,
  stop: StopSignal,
  post: (m: HostCallRequest) => void,
): Record<string, Record<string, (...args: Array<number | bigint>) => number | bigint | undefined>> {
  const st = new Int32Array(shared, 0, 8);
  const out: Record<string, Record<string, (...args: Array<number | bigint>) => number | bigint | undefined>> = {};
  for (const imp of shape.imports) {
    const names = provided[imp.module];
    if (!names) continue;
    const where = `${imp.module}.${imp.name}`;
    if (!names.includes(imp.name)) {
      throw new ModuleError('WASM_IMPORT', `the module imports ${where}; the embedder's module ${imp.module} provides: ${names.join(', ') || 'nothing'}`);
    }
    const type = imp.type;
    if (imp.kind !== 'func' || !type || !type.params.every((p) => SCALARS.has(p)) || type.results.length > 1 || !type.results.every((r) => SCALARS.has(r))) {
      throw new ModuleError('WASM_IMPORT', `the module imports ${where} as a ${imp.kind} with types the embedder's functions cannot take: only functions of i32, i64, f32 and f64 values with at most one result are served`);
    }
    const result = (type.results[0] ?? 'void') as HostCallRequest['result'];
    let seq = 0;
    (out[imp.module] ??= {})[imp.name] = (...args) => {
      if (stop.stopped) throw new Interrupted();
      seq = (Atomics.load(st, CALL_SEQ) + 1) | 0;
      Atomics.store(st, CALL_SEQ, seq);
      Atomics.store(st, CALL_STATE, CallState.Pending);
      // a stop requested after the check above either sees Pending (and cancels) or is seen here
      if (stop.stopped) {
        Atomics.store(st, CALL_STATE, CallState.Idle);
        throw new Interrupted();
      }
      post({ type: 'hostcall', seq, module: imp.module, name: imp.name, args, result });
      let state: number;
      while ((state = Atomics.load(st, CALL_STATE)) === CallState.Pending) Atomics.wait(st, CALL_STATE, CallState.Pending);
      Atomics.store(st, CALL_STATE, CallState.Idle);
      if (state === CallState.Cancelled) throw new Interrupted();
      if (state === CallState.Threw) {
        const msg = Buffer.from(new Uint8Array(shared, MSG_AT, Atomics.load(st, CALL_MSG_LEN))).toString();
        throw new WebAssembly.RuntimeError(`the embedder's host function ${where} threw: ${msg}`);
      }
      if (result === 'void') return undefined;
      if (result === 'i64') return new BigInt64Array(shared, I64_AT, 1)[0]!;
      const v = new Float64Array(shared, NUM_AT, 1)[0]!;
      return result === 'i32' ? v | 0 : v;
    };
  }
  return out;
}
