// What one run carries across engines, frames and tail calls.

import { MAX_TAIL_CALLS, VmError, type Engine, type Helper, type HelperCall, type VmMemory, type VmProgram } from './api.js';
import { LoadedProgram } from './program.js';

export class HelperCallImpl implements HelperCall {
  program: VmProgram;
  pc = 0;
  constructor(
    readonly memory: VmMemory,
    program: VmProgram,
    readonly data: unknown,
  ) {
    this.program = program;
  }
}

/** thrown by LD_ABS/LD_IND outside the packet: the run ends with r0 = 0 (kernel semantics) */
export class PacketExit extends Error {
  constructor() {
    super('packet load out of bounds');
  }
}

export interface RunState {
  engine: Engine;
  /** instructions left */
  budget: number;
  tailCalls: number;
  call: HelperCallImpl;
  packet: { addr: number; size: number } | undefined;
  /** run `target` as a tail call at call depth `depth` with r1 = ctx; returns its r0 (u64) */
  tail(target: LoadedProgram, ctx: bigint, depth: number): bigint;
}

export function budgetError(p: LoadedProgram, pc: number, st: RunState): VmError {
  void st;
  return new VmError('budget', 'instruction budget exhausted', { pc, insn: p.text(pc), program: p.name });
}

/** call a helper; wraps what it throws; returns r0 as u64 */
export function callHelper(p: LoadedProgram, pc: number, h: Helper, id: number, st: RunState, r1: bigint, r2: bigint, r3: bigint, r4: bigint, r5: bigint): bigint {
  const call = st.call;
  call.program = p;
  call.pc = pc;
  let r: unknown;
  try {
    r = h(BigInt.asUintN(64, r1), BigInt.asUintN(64, r2), BigInt.asUintN(64, r3), BigInt.asUintN(64, r4), BigInt.asUintN(64, r5), call);
  } catch (e) {
    if (e instanceof VmError || e instanceof PacketExit) throw e;
    throw new VmError('helper', `helper ${id} failed: ${e instanceof Error ? e.message : String(e)}`, { pc, insn: p.text(pc), program: p.name }, { cause: e });
  }
  if (typeof r !== 'bigint') {
    throw new VmError('helper', `helper ${id} returned ${typeof r}, not a bigint`, { pc, insn: p.text(pc), program: p.name });
  }
  return BigInt.asUintN(64, r);
}

/** bpf_tail_call: the target program, or undefined when the call falls through */
export function tailTarget(p: LoadedProgram, pc: number, st: RunState, map: bigint, index: bigint): LoadedProgram | undefined {
  if (st.tailCalls >= MAX_TAIL_CALLS) return undefined;
  const t = p.env.tailCall?.(map, Number(BigInt.asUintN(32, index)));
  if (t === undefined) return undefined;
  const lp = t;
  if (!(lp instanceof LoadedProgram) || lp.memory !== p.memory) {
    throw new VmError('call', 'tail call target lives in a different VmMemory', { pc, insn: p.text(pc), program: p.name });
  }
  st.tailCalls++;
  return lp;
}

/** callx of something that is not an address-taken function: a helper id, or a 'call' fault */
export function callxHelper(p: LoadedProgram, pc: number, v: bigint, st: RunState, r1: bigint, r2: bigint, r3: bigint, r4: bigint, r5: bigint): bigint {
  const u = BigInt.asUintN(64, v);
  const h = u <= 0x7fffffffn ? p.env.helper(Number(u)) : undefined;
  if (h === undefined) {
    throw new VmError('call', `callx to 0x${u.toString(16)}: neither a function nor a known helper`, { pc, insn: p.text(pc), program: p.name });
  }
  return callHelper(p, pc, h, Number(u), st, r1, r2, r3, r4, r5);
}
