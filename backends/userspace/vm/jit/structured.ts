// Structured control flow for reducible functions (the layout is cfg.ts's structure()): blocks in
// order, Wasm blocks and loops around them, branches to their labels, short blocks under selects, and the
// versioned loops: one-block counted loops (versioned.ts) and chained loops run in chunks.

import { K, type LoadedProgram } from '../program.js';
import { OP, T, type Bytes } from '../../../../src/wasm/writer.js';
import type { Blocks, Structure } from './cfg.js';
import type { Ctl, Gen } from './emit.js';
import { iteration, loopPlan, type Iteration } from './induction.js';
import { L_B, L_C, L_CNT, L_N } from './indices.js';
import { chunkTest, versionedLoop } from './versioned.js';

/** what the steps of the emission share */
interface Emit {
  p: LoadedProgram;
  g: Gen;
  b: Bytes;
  ctl: Ctl;
  bl: Blocks;
  st: Structure;
}

/** a loop whose blocks form a chain, with what one iteration does and costs (see chain) */
interface Chain {
  ms: number[];
  it: Iteration;
  cost: number;
}

/**
 * Emits the function's blocks in the structure's order (after the prologue). Returns false when the
 * layout cannot be expressed (then the caller uses the dispatcher).
 */
export function structured(p: LoadedProgram, g: Gen, bl: Blocks, st: Structure): boolean {
  const cx: Emit = { p, g, b: g.b, ctl: g.ctl, bl, st };
  const { b, ctl } = cx;
  const { starts, ends } = bl;
  const { taken, fall, cond, select, order, pos, lastPos, backSrc, members, openAt } = st;
  if (select.some((m) => m >= 0)) g.refunds = true;
  openBlocks(cx, -1);
  for (let i = 0; i < order.length; i++) {
    const k = order[i]!;
    while (ctl.top() === `b${k}`) {
      b.byte(OP.end);
      ctl.pop();
    }
    if (ctl.has(`b${k}`)) return false;
    // a loop of one block: versioned when its accesses can be checked once for all its iterations
    const plan = backSrc.has(k) && members.get(k)!.length === 1 && cond[k] && taken[k] === k && (select[k] ?? -1) < 0 && !openAt.has(i) ? loopPlan(p, starts[k]!, ends[k]!) : undefined;
    if (plan !== undefined) {
      versionedLoop(g, plan, k);
      if (fall[k]! >= 0 && pos[fall[k]!] !== i + 1) b.byte(OP.br).u32(ctl.depth(pos[fall[k]!]! > i ? `b${fall[k]}` : `l${fall[k]}`));
      closeLoops(cx, i);
      continue;
    }
    const chunk = backSrc.has(k) && !openAt.has(i) ? chain(cx, k, i) : undefined;
    if (chunk !== undefined) {
      chunkedLoop(cx, k, i, chunk);
      i = lastPos.get(k)!;
      closeLoops(cx, i);
      continue;
    }
    plainBlock(cx, k, i);
    closeLoops(cx, i);
  }
  if (ctl.length !== 0) return false;
  b.byte(OP.unreachable);
  return true;
}

/** block k at position i, as it is: a Wasm loop around it when it heads one, its body, its branches */
function plainBlock(cx: Emit, k: number, i: number): void {
  const { p, g, b, ctl } = cx;
  const { starts, ends, lastPc } = cx.bl;
  const { taken, fall, cond, select, pos, backSrc } = cx.st;
  if (backSrc.has(k)) {
    b.byte(OP.loop).byte(T.void);
    ctl.push(`l${k}`);
  }
  if (backSrc.has(k)) openBlocks(cx, i);
  // branch to block x from position i
  const goTo = (x: number, conditional: boolean): void => {
    if (!conditional && pos[x] === i + 1) return;
    const label = pos[x]! > i ? `b${x}` : `l${x}`;
    b.byte(conditional ? OP.br_if : OP.br).u32(ctl.depth(label));
  };
  const s = starts[k]!;
  const e = ends[k]!;
  g.charge(s, p.cost[s]!);
  const last = lastPc(k);
  const bodyEnd = cx.st.bodyEnd(k);
  const jumpLast = bodyEnd !== e;
  for (let pc = s; pc < bodyEnd; pc++) if (p.kind[pc] !== K.LDDW2) g.insn(pc);
  const t = taken[k] ?? -1;
  const f = fall[k] ?? -1;
  if ((select[k] ?? -1) >= 0) {
    emitSelect(cx, k, false);
    goTo(t, false);
  } else if (cond[k]) {
    g.condition(last);
    goTo(t, true);
    if (f >= 0) goTo(f, false);
  } else if (jumpLast && t >= 0) {
    goTo(t, false);
  } else if (jumpLast) {
    // a conditional jump with offset 0: both ways to the next instruction
    if (f >= 0) goTo(f, false);
  } else if (f >= 0) {
    goTo(f, false);
  }
}

/** what a select block refunds when skipped: its predicated block, and those of the blocks reusing C */
function refundOf(cx: Emit, k: number): number {
  const { p } = cx;
  const { starts } = cx.bl;
  const { select, reuse, taken } = cx.st;
  let n = Math.abs(p.cost[starts[select[k]!]!]!);
  if (reuse[taken[k]!]) n += refundOf(cx, taken[k]!);
  return n;
}

/**
 * block k's predicated block, after k's body: C = the condition (or the one k reuses), its charge (at
 * once, or in the fast copy of a chained loop with the iteration: then only the refund), and its
 * instructions under selects
 */
function emitSelect(cx: Emit, k: number, fast: boolean): void {
  const { p, g, b } = cx;
  const { starts, lastPc } = cx.bl;
  const { select, reuse, predicatedEnd } = cx.st;
  const m = select[k]!;
  if (!reuse[k]) {
    g.condition(lastPc(k));
    b.byte(OP.local_set).u32(L_C);
  }
  const cm = Math.abs(p.cost[starts[m]!]!);
  if (!fast) g.chargeAlways(cm);
  if (!reuse[k]) g.refund(refundOf(cx, k));
  for (let pc = starts[m]!; pc < predicatedEnd(m); pc++) if (p.kind[pc] !== K.LDDW2) g.predicated(pc);
}

/** open the Wasm blocks of the forward targets placed at position `at` (-1: the function start), outermost first */
function openBlocks(cx: Emit, at: number): void {
  const { b, ctl } = cx;
  const { openAt, pos } = cx.st;
  const xs = (openAt.get(at) ?? []).sort((a, c) => pos[c]! - pos[a]!);
  for (const x of xs) {
    b.byte(OP.block).byte(T.void);
    ctl.push(`b${x}`);
  }
}

/** close the loops that end at position i (innermost first) */
function closeLoops(cx: Emit, i: number): void {
  const { b, ctl } = cx;
  const { lastPos } = cx.st;
  for (;;) {
    const top = ctl.top();
    if (top === undefined || !top.startsWith('l') || lastPos.get(Number(top.slice(1))) !== i) break;
    b.byte(OP.end);
    ctl.pop();
  }
}

/**
 * A loop whose blocks (in layout order) form a chain: each goes on to the next or leaves the loop, the
 * last goes back to the header or leaves. One iteration is then one straight path; when its accesses
 * are affine in induction registers, the loop runs in chunks of CHUNK iterations, each chunk preceded by
 * one test that all its accesses lie in the caches' windows and that the budget covers it.
 */
function chain(cx: Emit, k: number, i: number): Chain | undefined {
  const { p, ctl } = cx;
  const { starts } = cx.bl;
  const { taken, fall, select, order, pos, lastPos, predicatedEnd, bodyEnd } = cx.st;
  const last = lastPos.get(k)!;
  const ms = order.slice(i, last + 1);
  const inLoop = new Set(ms);
  let cost = 0;
  for (let j = 0; j < ms.length; j++) {
    const x = ms[j]!;
    const next = j + 1 < ms.length ? ms[j + 1]! : k;
    // a block with a predicated one goes on to the join (taken) only
    const out = select[x]! >= 0 ? [taken[x]!] : [taken[x]!, fall[x]!].filter((y) => y >= 0);
    if (!out.includes(next)) return undefined;
    for (const y of out) {
      if (y === next) continue;
      if (inLoop.has(y)) return undefined;
      // out: to an open block, to an enclosing loop's header, or to the block laid out next
      if (!ctl.has(`b${y}`) && !(pos[y]! < i && ctl.has(`l${y}`)) && pos[y] !== last + 1) return undefined;
    }
    cost += Math.abs(p.cost[starts[x]!]!);
    if (select[x]! >= 0) cost += Math.abs(p.cost[starts[select[x]!]!]!);
  }
  const ranges: [number, number, boolean][] = [];
  for (const x of ms) {
    ranges.push([starts[x]!, bodyEnd(x), false]);
    const m = select[x]!;
    if (m >= 0) ranges.push([starts[m]!, predicatedEnd(m), true]);
  }
  const it = iteration(p, ranges);
  return it === undefined ? undefined : { ms, it, cost };
}

const CHUNK = 1 << 30;
const SLOW_CHUNK = 8;

/** a chained loop (headed by block k at position i) run in unchecked chunks as long as the windows and the budget allow */
function chunkedLoop(cx: Emit, k: number, i: number, plan: Chain): void {
  const { p, g, b, ctl } = cx;
  const { starts } = cx.bl;
  const { taken, fall, cond, select, pos, bodyEnd } = cx.st;
  const out = (y: number): void => {
    // leave the loop for block y
    if (ctl.has(`b${y}`)) b.byte(OP.br).u32(ctl.depth(`b${y}`));
    else if (pos[y]! < i) b.byte(OP.br).u32(ctl.depth(`l${y}`));
    else b.byte(OP.br).u32(ctl.depth(`co${k}`)); // the block laid out right after the loop
  };
  const copy = (fast: boolean, again: string): void => {
    const ms = plan.ms;
    // the fast copy charges where it leaves: for the N - CNT iterations done and the blocks run so far
    // in this one (no check can fire in it: the test saw the budget cover N iterations)
    let acc = 0;
    const pay = (all: boolean): void => {
      if (!fast) return;
      b.byte(OP.local_get).u32(L_B).byte(OP.local_get).u32(L_N);
      if (!all) b.byte(OP.local_get).u32(L_CNT).byte(OP.i64_extend_i32_u).byte(OP.i64_sub);
      g.i64(plan.cost);
      b.byte(OP.i64_mul);
      if (!all && acc !== 0) {
        g.i64(acc);
        b.byte(OP.i64_add);
      }
      b.byte(OP.i64_sub).byte(OP.local_set).u32(L_B);
    };
    for (let j = 0; j < ms.length; j++) {
      const x = ms[j]!;
      const next = j + 1 < ms.length ? ms[j + 1]! : -1;
      const s0 = starts[x]!;
      const cost = p.cost[s0]!;
      if (fast) acc += Math.abs(cost);
      else g.charge(s0, cost);
      g.unchecked = fast ? plan.it.now : undefined;
      const be = bodyEnd(x);
      for (let pc = s0; pc < be; pc++) if (p.kind[pc] !== K.LDDW2) g.insn(pc);
      g.unchecked = undefined;
      const m = select[x]!;
      if (m >= 0) {
        // predicated: charged with the iteration (fast) or here, refunded when skipped
        if (fast) acc += Math.abs(p.cost[starts[m]!]!);
        emitSelect(cx, x, fast);
      }
      // to y: the next block of the chain (falls through), the header (next chunk iteration), or out
      const go = (y: number): void => {
        if (y === next) return;
        if (y === k) {
          b.byte(OP.local_get).u32(L_CNT);
          g.i32(1);
          b.byte(OP.i32_sub).byte(OP.local_tee).u32(L_CNT);
          b.byte(OP.br_if).u32(ctl.depth(again));
          pay(true);
          b.byte(OP.br).u32(ctl.depth(`cr${k}`));
          return;
        }
        pay(false);
        out(y);
      };
      if (m >= 0) go(taken[x]!);
      else if (cond[x]) {
        g.condition(bodyEnd(x));
        b.byte(OP.if).byte(T.void);
        ctl.push('if');
        go(taken[x]!);
        b.byte(OP.else);
        go(fall[x]!);
        b.byte(OP.end);
        ctl.pop();
      } else go(taken[x]! >= 0 ? taken[x]! : fall[x]!);
    }
    b.byte(OP.unreachable);
  };
  b.byte(OP.block).byte(T.void);
  ctl.push(`co${k}`);
  b.byte(OP.loop).byte(T.void);
  ctl.push(`cr${k}`);
  b.byte(OP.block).byte(T.void);
  ctl.push(`cs${k}`);
  // the test: how many iterations (at least one) the budget and the caches' windows allow
  // (a chunk's refunds, at most its cost per iteration, must fit L_RF's 31 bits)
  chunkTest(g, plan.it.accesses, plan.cost, Math.min(CHUNK, Math.floor(0x7fffffff / plan.cost)));
  b.byte(OP.i32_eqz).byte(OP.br_if).u32(ctl.depth(`cs${k}`));
  b.byte(OP.local_get).u32(L_N).byte(OP.i32_wrap_i64).byte(OP.local_set).u32(L_CNT);
  b.byte(OP.loop).byte(T.void);
  ctl.push(`cf${k}`);
  copy(true, `cf${k}`);
  b.byte(OP.end);
  ctl.pop();
  b.byte(OP.end);
  ctl.pop();
  // checked, a few iterations (the first fills the caches) before testing again
  g.i32(SLOW_CHUNK);
  b.byte(OP.local_set).u32(L_CNT);
  b.byte(OP.loop).byte(T.void);
  ctl.push(`cc${k}`);
  copy(false, `cc${k}`);
  b.byte(OP.end);
  ctl.pop();
  b.byte(OP.end);
  ctl.pop();
  b.byte(OP.end);
  ctl.pop();
}
