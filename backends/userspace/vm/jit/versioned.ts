// Versioned loops, emitted: the entry tests that prove a loop's next iterations in bounds and in budget
// (loopTest for a counted one-block loop, chunkTest for a chunk of a chained loop, windowTest for the
// accesses), and the one-block loop's fast and checked copies (versionedLoop). See induction.ts.

import { K } from '../program.js';
import { OP, T } from '../../../../src/wasm/writer.js';
import type { Gen } from './emit.js';
import type { Form, Iteration, LoopPlan } from './induction.js';
import { L_B, L_N, L_RLIM, L_RLO, L_T1, L_V, L_WLIM, L_WLO } from './indices.js';

/** push value of a form (registers as they are now) */
function form(g: Gen, f: Form): void {
  const b = g.b;
  g.i64(BigInt.asIntN(64, f.k));
  for (let j = 0; j <= 10; j++) {
    const c = f.c[j]!;
    if (c === 0) continue;
    g.get(j);
    if (c !== 1) {
      g.i64(c);
      b.byte(OP.i64_mul);
    }
    b.byte(OP.i64_add);
  }
}

/** the versioned loop's entry test (i32, 1: run the fast copy); leaves the trip count in N */
function loopTest(g: Gen, plan: LoopPlan): void {
  const b = g.b;
  const p = g.p;
  const SMALL = 1n << 48n;
  // bound and first value of the induction side below 2^48: no wrap-around in what follows
  form(g, plan.bound);
  b.byte(OP.local_tee).u32(L_N);
  g.i64(SMALL);
  b.byte(OP.i64_lt_u);
  form(g, plan.v);
  b.byte(OP.local_tee).u32(L_V);
  g.i64(SMALL);
  b.byte(OP.i64_lt_u).byte(OP.i32_and);
  // n = 1 + ceil(max(0, bound (+1) - v) / step)
  b.byte(OP.local_get).u32(L_N);
  if (plan.le) {
    g.i64(1);
    b.byte(OP.i64_add);
  }
  b.byte(OP.local_get).u32(L_V).byte(OP.i64_sub).byte(OP.local_tee).u32(L_T1);
  g.i64(0);
  b.byte(OP.local_get).u32(L_T1);
  g.i64(0);
  b.byte(OP.i64_gt_s).byte(OP.select);
  g.i64((1 << plan.shift) - 1);
  b.byte(OP.i64_add);
  g.i64(plan.shift);
  b.byte(OP.i64_shr_u);
  g.i64(1);
  b.byte(OP.i64_add).byte(OP.local_tee).u32(L_N);
  g.i64(1n << 32n);
  b.byte(OP.i64_lt_u).byte(OP.i32_and);
  // the budget covers n iterations (a loop header checks it each iteration)
  const cost = p.cost[plan.s]!;
  if (cost < 0) {
    g.settle();
    b.byte(OP.local_get).u32(L_B).byte(OP.local_get).u32(L_N);
    g.i64(-cost);
    b.byte(OP.i64_mul).byte(OP.i64_sub);
    g.i64(0);
    b.byte(OP.i64_ge_s).byte(OP.i32_and);
  }
  windowTest(g, plan.accesses, undefined);
}

/**
 * i32 (1: go) for a chunk of a chained loop: N = the iterations to run unchecked, at most max, as many
 * as the budget covers (each iteration costs cost at most) and as keep every access in its cache's
 * window (from where it is now, moving by d per iteration); at least one
 */
export function chunkTest(g: Gen, accesses: Iteration['accesses'], cost: number, max: number): void {
  const b = g.b;
  // N = B / cost < max ? B / cost : max; at least 1
  g.settle();
  b.byte(OP.local_get).u32(L_B);
  g.i64(cost);
  b.byte(OP.i64_div_s).byte(OP.local_tee).u32(L_N);
  g.i64(max);
  b.byte(OP.local_get).u32(L_N);
  g.i64(max);
  b.byte(OP.i64_lt_s).byte(OP.select).byte(OP.local_tee).u32(L_N);
  g.i64(1);
  b.byte(OP.i64_ge_s);
  for (const { a, d, w, write } of accesses) {
    const LO = write ? L_WLO : L_RLO;
    const LIM = write ? L_WLIM : L_RLIM;
    // now in the window (then LIM > 0: a cached region, its end is LO + LIM + 7)
    form(g, a);
    b.byte(OP.local_tee).u32(L_V).byte(OP.local_get).u32(LO).byte(OP.i64_sub).byte(OP.local_get).u32(LIM).byte(OP.i64_lt_u).byte(OP.i32_and);
    if (d === 0n) continue;
    // iterations left in the window: 1 + (end - w - a) / d, or 1 + (a - LO) / -d
    if (d > 0n) {
      b.byte(OP.local_get).u32(LO).byte(OP.local_get).u32(LIM).byte(OP.i64_add);
      g.i64(7 - w);
      b.byte(OP.i64_add).byte(OP.local_get).u32(L_V).byte(OP.i64_sub);
    } else {
      b.byte(OP.local_get).u32(L_V).byte(OP.local_get).u32(LO).byte(OP.i64_sub);
    }
    const m = d > 0n ? d : -d;
    if ((m & (m - 1n)) === 0n) {
      g.i64(m.toString(2).length - 1);
      b.byte(OP.i64_shr_u);
    } else {
      g.i64(m);
      b.byte(OP.i64_div_u);
    }
    g.i64(1);
    b.byte(OP.i64_add).byte(OP.local_tee).u32(L_T1);
    // N = that < N ? that : N (garbage when not in the window: then the test fails anyway)
    b.byte(OP.local_get).u32(L_N);
    b.byte(OP.local_get).u32(L_T1).byte(OP.local_get).u32(L_N).byte(OP.i64_lt_u);
    b.byte(OP.select).byte(OP.local_set).u32(L_N);
  }
}

/**
 * and (i32 on the stack) that every access lies in its cache's window in iterations 0 .. t (t: a
 * constant, or N - 1): its first and its last address do (the window is contiguous, the addresses
 * move by d per iteration)
 */
function windowTest(g: Gen, accesses: Iteration['accesses'], t: bigint | undefined): void {
  const b = g.b;
  for (const { a, d, w, write } of accesses) {
    const LO = write ? L_WLO : L_RLO;
    const LIM = write ? L_WLIM : L_RLIM;
    form(g, a);
    b.byte(OP.local_tee).u32(L_V);
    if (t === undefined) {
      b.byte(OP.local_get).u32(L_N);
      g.i64(1);
      b.byte(OP.i64_sub);
      g.i64(d);
      b.byte(OP.i64_mul);
    } else g.i64(BigInt.asIntN(64, t * d));
    b.byte(OP.i64_add).byte(OP.local_set).u32(L_T1);
    const [lo, hi] = d >= 0n ? [L_V, L_T1] : [L_T1, L_V];
    // lo in the window (LIM > 0 then: a cached region, LIM = end - LO - 7); hi + w <= end
    b.byte(OP.local_get).u32(lo).byte(OP.local_get).u32(LO).byte(OP.i64_sub).byte(OP.local_get).u32(LIM).byte(OP.i64_lt_u).byte(OP.i32_and);
    b.byte(OP.local_get).u32(hi).byte(OP.local_get).u32(LO).byte(OP.i64_sub).byte(OP.local_get).u32(LIM);
    g.i64(8 - w);
    b.byte(OP.i64_add).byte(OP.i64_lt_u).byte(OP.i32_and);
    b.byte(OP.local_get).u32(lo).byte(OP.local_get).u32(hi).byte(OP.i64_le_u).byte(OP.i32_and);
  }
}

/** the body of a versioned loop (its instructions before the jump back) */
function loopBody(g: Gen, plan: LoopPlan): void {
  for (let pc = plan.s; pc < plan.last; pc++) if (g.p.kind[pc] !== K.LDDW2) g.insn(pc);
}

/** a one-block loop (block k), versioned: see loopPlan */
export function versionedLoop(g: Gen, plan: LoopPlan, k: number): void {
  const b = g.b;
  const ctl = g.ctl;
  const p = g.p;
  const cost = p.cost[plan.s]!;
  b.byte(OP.block).byte(T.void);
  ctl.push(`vx${k}`);
  b.byte(OP.block).byte(T.void);
  ctl.push(`vc${k}`);
  b.byte(OP.block).byte(T.void);
  ctl.push(`vf${k}`);
  loopTest(g, plan);
  g.hintIf(true);
  b.byte(OP.br_if).u32(ctl.depth(`vf${k}`));
  // one checked iteration (fills the caches), then the test again
  g.charge(plan.s, cost);
  loopBody(g, plan);
  g.condition(plan.last);
  b.byte(OP.i32_eqz).byte(OP.br_if).u32(ctl.depth(`vx${k}`));
  loopTest(g, plan);
  b.byte(OP.i32_eqz).byte(OP.br_if).u32(ctl.depth(`vc${k}`));
  b.byte(OP.end);
  ctl.pop();
  // fast: n iterations charged at once, no checks
  b.byte(OP.local_get).u32(L_B).byte(OP.local_get).u32(L_N);
  g.i64(Math.abs(cost));
  b.byte(OP.i64_mul).byte(OP.i64_sub).byte(OP.local_set).u32(L_B);
  b.byte(OP.loop).byte(T.void);
  ctl.push(`vl${k}`);
  g.unchecked = plan.now;
  loopBody(g, plan);
  g.unchecked = undefined;
  g.condition(plan.last);
  b.byte(OP.br_if).u32(ctl.depth(`vl${k}`));
  b.byte(OP.end);
  ctl.pop();
  b.byte(OP.br).u32(ctl.depth(`vx${k}`));
  b.byte(OP.end);
  ctl.pop();
  // checked, as any loop
  b.byte(OP.loop).byte(T.void);
  ctl.push(`l${k}`);
  g.charge(plan.s, cost);
  loopBody(g, plan);
  g.condition(plan.last);
  b.byte(OP.br_if).u32(ctl.depth(`l${k}`));
  b.byte(OP.end);
  ctl.pop();
  b.byte(OP.end);
  ctl.pop();
}
