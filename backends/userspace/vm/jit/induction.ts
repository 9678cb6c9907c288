// Induction analysis for loop versioning: one iteration of a loop run symbolically (iteration(): affine
// addresses and register steps), and the plan for a counted one-block loop (loopPlan()).
//
// A loop of one basic block (straight-line body, then a conditional jump back to its start) whose memory
// accesses are affine in its induction registers and whose trip count follows from an unsigned compare of
// an induction register against an invariant: on entry, one test computes the trip count n and checks
// that every access of every iteration lies in the window the region caches hold (the first and the last
// address of each access stream; the window is contiguous) and that the budget covers n iterations; then
// the loop runs with no per-access check and no per-iteration budget check (charged n times up front).
// Otherwise one checked iteration runs (it fills the caches), the test is repeated, and failing again the
// loop runs checked as before. Same effects, faults and counts as the checked loop, which it is whenever
// the test fails. Loops whose blocks form a chain use iteration() too (structured.ts: chain).

import { STACK_FRAME_SIZE } from '../api.js';
import { ALU_OP, CLS, JMP_OP, MODE, OP_LDDW } from '../isa.js';
import { K, type LoadedProgram } from '../program.js';

/** value = k + sum c[j] * (register j at the start of an iteration), mod 2^64 */
export interface Form {
  k: bigint;
  c: number[];
}
export interface LoopPlan {
  s: number;
  last: number;
  /** the induction side of the loop condition and the invariant bound; continue while v < bound (v <= bound when le) */
  v: Form;
  bound: Form;
  le: boolean;
  shift: number;
  accesses: { a: Form; d: bigint; w: number; write: boolean }[];
  now: Map<number, Form>;
}

const unit = (r: number): Form => {
  const c = new Array<number>(11).fill(0);
  c[r] = 1;
  return { k: 0n, c };
};
const konst = (k: bigint): Form => ({ k: BigInt.asUintN(64, k), c: new Array<number>(11).fill(0) });
const combine = (x: Form | undefined, y: Form | undefined, sign: 1 | -1): Form | undefined => {
  if (x === undefined || y === undefined) return undefined;
  const c = x.c.map((v, j) => v + sign * y.c[j]!);
  if (c.some((v) => Math.abs(v) > 1024)) return undefined;
  return { k: BigInt.asUintN(64, x.k + BigInt(sign) * y.k), c };
};

/** what one iteration does, symbolically: accesses (affine, with their change per iteration) and steps */
export interface Iteration {
  F: (Form | undefined)[];
  step: (bigint | undefined)[];
  delta: (f: Form) => bigint | undefined;
  accesses: { a: Form; d: bigint; w: number; write: boolean }[];
  /** per access pc: its address as k + sum c * (register now), when the registers it uses only moved by constants */
  now: Map<number, Form>;
}

/**
 * symbolic run of straight-line code [s, e) for each range in turn (one iteration of a loop); a range
 * marked predicated runs under selects: its destinations become unknown
 */
export function iteration(p: LoadedProgram, ranges: [number, number, boolean?][]): Iteration | undefined {
  const F: (Form | undefined)[] = [];
  for (let r = 0; r <= 10; r++) F.push(unit(r));
  const raw: { a: Form; w: number; write: boolean }[] = [];
  const now = new Map<number, Form>();
  const access = (pc: number, reg: number, off: number, w: number, write: boolean): boolean => {
    if (reg === 10 && off >= -STACK_FRAME_SIZE && off <= -w) return true; // the frame: never checked
    const a = combine(F[reg], konst(BigInt(off)), 1);
    if (a === undefined) return false;
    raw.push({ a, w, write });
    // the same address from the registers as they are here: each register j it uses is R_j + e_j now
    let k = a.k;
    let ok = true;
    for (let j = 0; j <= 10 && ok; j++) {
      if (a.c[j] === 0) continue;
      const f = F[j];
      if (f === undefined || !f.c.every((v, i) => v === (i === j ? 1 : 0))) ok = false;
      else k -= BigInt(a.c[j]!) * f.k;
    }
    if (ok) now.set(pc, { k: BigInt.asUintN(64, k), c: a.c });
    return true;
  };
  for (const [s, e, predicated] of ranges) {
    for (let pc = s; pc < e; pc++) {
      if (p.kind[pc] === K.LDDW2) continue;
      if (predicated) {
        F[p.dst[pc]!] = undefined; // pure: it may or may not have written its destination
        continue;
      }
      const op = p.op[pc]!;
      const c = op & 7;
      const d = p.dst[pc]!;
      const sr = p.src[pc]!;
      const imm = p.imm[pc]!;
      const code = op & 0xf0;
      const x = (op & 0x08) !== 0;
      if (op === OP_LDDW) {
        F[d] = konst((BigInt(p.kHi[pc]!) << 32n) | BigInt(p.kLo[pc]! >>> 0));
      } else if (c === CLS.ALU64) {
        const src = x ? F[sr] : konst(BigInt(imm));
        if (code === ALU_OP.MOV && p.off[pc] === 0) F[d] = src;
        else if (code === ALU_OP.ADD) F[d] = combine(F[d], src, 1);
        else if (code === ALU_OP.SUB) F[d] = combine(F[d], src, -1);
        else F[d] = undefined;
      } else if (c === CLS.ALU) {
        F[d] = undefined;
      } else if (c === CLS.LDX) {
        if (!access(pc, sr, p.off[pc]!, [4, 2, 1, 8][(op >> 3) & 3]!, false)) return undefined;
        F[d] = undefined;
      } else if ((c === CLS.ST || c === CLS.STX) && (op & 0xe0) === MODE.MEM) {
        if (!access(pc, d, p.off[pc]!, [4, 2, 1, 8][(op >> 3) & 3]!, true)) return undefined;
      } else return undefined; // atomics, calls, legacy packet loads, jumps
    }
  }
  if (raw.length === 0) return undefined;
  // registers: invariant (step 0), induction (a constant step per iteration) or neither (undefined)
  const step: (bigint | undefined)[] = F.map((f, r) => (f !== undefined && f.c.every((v, j) => v === (j === r ? 1 : 0)) ? BigInt.asIntN(64, f.k) : undefined));
  if (step.some((v) => v !== undefined && (v >= 1n << 16n || v <= -(1n << 16n)))) return undefined;
  const delta = (f: Form): bigint | undefined => {
    let d = 0n;
    for (let j = 0; j <= 10; j++) {
      if (f.c[j] === 0) continue;
      if (step[j] === undefined) return undefined;
      d += BigInt(f.c[j]!) * step[j]!;
    }
    return d;
  };
  const accesses: Iteration['accesses'] = [];
  for (const { a, w, write } of raw) {
    const d = delta(a);
    if (d === undefined || d >= 1n << 16n || d <= -(1n << 16n)) return undefined;
    accesses.push({ a, d, w, write });
  }
  return { F, step, delta, accesses, now };
}

export function loopPlan(p: LoadedProgram, s: number, e: number): LoopPlan | undefined {
  let last = e - 1;
  if (p.kind[last] === K.LDDW2) last--;
  const it = iteration(p, [[s, last]]);
  if (it === undefined) return undefined;
  const { F, step, delta, accesses } = it;
  // the loop condition: an unsigned compare, taken back to the start
  const op = p.op[last]!;
  if ((op & 7) !== CLS.JMP) return undefined;
  const code = op & 0xf0;
  const lhs = F[p.dst[last]!];
  const rhs = (op & 0x08) !== 0 ? F[p.src[last]!] : konst(BigInt(p.imm[last]!));
  let v: Form | undefined;
  let bound: Form | undefined;
  if (code === JMP_OP.JLT || code === JMP_OP.JLE) [v, bound] = [lhs, rhs];
  else if (code === JMP_OP.JGT || code === JMP_OP.JGE) [v, bound] = [rhs, lhs];
  else return undefined;
  if (v === undefined || bound === undefined) return undefined;
  if (delta(bound) !== 0n) return undefined;
  const iv = v.c.findIndex((x) => x !== 0);
  if (iv < 0 || v.c[iv] !== 1 || v.c.some((x, j) => j !== iv && x !== 0)) return undefined;
  const st = step[iv];
  if (st === undefined || st <= 0n || (st & (st - 1n)) !== 0n) return undefined;
  return { s, last, v, bound, le: code === JMP_OP.JLE || code === JMP_OP.JGE, shift: st.toString(2).length - 1, accesses, now: it.now };
}

