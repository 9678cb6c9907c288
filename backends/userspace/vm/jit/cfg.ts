// Control-flow analysis for one eBPF function: its basic blocks (functionBlocks), and for structured
// code generation the block graph, the blocks run under selects, natural loops and the loop-contiguous
// layout with the Wasm blocks forward branches need (structure(); undefined: irreducible).

import { CLS, JMP_OP, OP_LDDW } from '../isa.js';
import { K, type LoadedProgram } from '../program.js';


function successors(p: LoadedProgram, pc: number): number[] {
  const op = p.op[pc]!;
  const c = op & 7;
  if (op === OP_LDDW) return [pc + 2];
  if (c === CLS.JMP || c === CLS.JMP32) {
    const code = op & 0xf0;
    if (code === JMP_OP.EXIT) return [];
    if (code === JMP_OP.CALL) return [pc + 1];
    if (code === JMP_OP.JA) return [pc + 1 + (c === CLS.JMP ? p.off[pc]! : p.imm[pc]!)];
    return [pc + 1, pc + 1 + p.off[pc]!];
  }
  return [pc + 1];
}

/** the basic blocks of one function: the leaders reachable from its entry, in address order */
export interface Blocks {
  /** how many */
  nb: number;
  /** block k runs over [starts[k], ends[k]) */
  starts: number[];
  ends: number[];
  /** block index by start pc */
  blockOf: Map<number, number>;
  /** the entry's block */
  entry: number;
  /** the last instruction of block k (the first half of a closing lddw) */
  lastPc(k: number): number;
  /** the block k's last instruction jumps to (not calls), or -1 */
  jumpTo(k: number): number;
}

export function functionBlocks(p: LoadedProgram, entry: number): Blocks {
  const n = p.length;
  // reachable code
  const seen = new Uint8Array(n);
  const work = [entry];
  seen[entry] = 1;
  while (work.length > 0) {
    const pc = work.pop()!;
    for (const s of successors(p, pc)) {
      if (s < n && !seen[s]) {
        seen[s] = 1;
        work.push(s);
      }
    }
  }
  // blocks: leaders in reach, in address order; each runs to the next leader
  const starts: number[] = [];
  for (let pc = 0; pc < n; pc++) if (seen[pc] && p.cost[pc] !== 0) starts.push(pc);
  const blockOf = new Map<number, number>();
  starts.forEach((s, k) => blockOf.set(s, k));
  const nb = starts.length;
  const ends = starts.map((s) => {
    let e = s + 1;
    while (e < n && p.cost[e] === 0) e++;
    return e;
  });
  /** the last instruction of block k (the first half of a closing lddw) */
  const lastPc = (k: number): number => (p.kind[ends[k]! - 1] === K.LDDW2 ? ends[k]! - 2 : ends[k]! - 1);
  /** the block a block's last instruction jumps to (not calls), or -1 */
  const jumpTo = (k: number): number => {
    const pc = lastPc(k);
    const op = p.op[pc]!;
    const c = op & 7;
    if ((c !== CLS.JMP && c !== CLS.JMP32) || (op & 0xf0) === JMP_OP.CALL || (op & 0xf0) === JMP_OP.EXIT) return -1;
    if ((op & 0xf0) !== JMP_OP.JA && p.off[pc] === 0) return -1; // both ways to the next instruction
    const t = pc + 1 + (c === CLS.JMP32 && (op & 0xf0) === JMP_OP.JA ? p.imm[pc]! : p.off[pc]!);
    return blockOf.get(t)!;
  };
  return { nb, starts, ends, blockOf, entry: blockOf.get(entry)!, lastPc, jumpTo };
}

/** an instruction with no effect but on its destination register, that cannot fault */
function pure(p: LoadedProgram, pc: number): boolean {
  const c = p.op[pc]! & 7;
  return c === CLS.ALU || c === CLS.ALU64 || p.op[pc] === OP_LDDW;
}

/** the block graph and the structured layout of a reducible function; see structure() */
export interface Structure {
  /**
   * the block a block jumps to (-1: none), the one it falls through to (-1: none), and whether it ends
   * with a conditional jump
   */
  taken: Int32Array;
  fall: Int32Array;
  cond: Uint8Array;
  /** block -> the short pure block it skips or runs, run under selects (-1: none) */
  select: Int32Array;
  /** blocks under selects whose condition is their predecessor's (not computed again) */
  reuse: Uint8Array;
  /** the end of a predicated block's instructions: without its closing `goto c`, if any */
  predicatedEnd(m: number): number;
  /** the body of block x before its jump (if it ends with one) */
  bodyEnd(x: number): number;
  /** loop header -> the sources of its back edges */
  backSrc: Map<number, number[]>;
  /** loop header -> its blocks (RPO) */
  members: Map<number, number[]>;
  /** the layout: blocks in order, each block's position, each loop's last position */
  order: number[];
  pos: Int32Array;
  lastPos: Map<number, number>;
  /** position of a loop header (-1: the function start) -> the blocks whose Wasm `block` opens there */
  openAt: Map<number, number[]>;
}

/**
 * The layout for structured control flow (reducible functions, what compilers emit): blocks in a
 * loop-contiguous reverse postorder, every loop (natural loop of a back edge whose target dominates its
 * source) one Wasm `loop` headed by its header, every block reached by a forward branch a Wasm `block`
 * that ends just before it, opened at the function start or inside the innermost loop holding it; short
 * side-effect-free blocks a conditional jump skips ("triangles") run under selects. Undefined for
 * irreducible control flow.
 */
export function structure(p: LoadedProgram, bl: Blocks): Structure | undefined {
  const gr = blockGraph(p, bl);
  const { taken, fall, cond } = gr;
  const { ends, lastPc } = bl;
  // the end of a predicated block's instructions: without its closing `goto c`, if any
  const predicatedEnd = (m: number): number => (taken[m]! >= 0 ? ends[m]! - 1 : ends[m]!);
  const { select, preds } = selectBlocks(p, bl, gr, predicatedEnd);
  const reuse = reusedConditions(p, bl, gr, select, preds, predicatedEnd);
  /** successors in the layout: a block with a predicated one goes on to the join only */
  const succ = (k: number): number[] => {
    const out: number[] = [];
    const t = taken[k] ?? -1;
    const f = fall[k] ?? -1;
    if ((select[k] ?? -1) >= 0) {
      out.push(t);
      return out;
    }
    if (t >= 0) out.push(t);
    if (f >= 0 && f !== t) out.push(f);
    return out;
  };
  const { rpo, rpoIndex, predList } = reversePostorder(bl, succ);
  const dominates = dominators(bl.entry, rpo, rpoIndex, predList);
  const loops = naturalLoops(bl.nb, rpo, rpoIndex, predList, succ, dominates);
  if (loops === undefined) return undefined;
  const layout = loopContiguousOrder(bl.nb, rpo, loops);
  if (layout === undefined) return undefined;
  const { order, pos } = layout;
  const openAt = forwardBlocks(order, pos, gr, select, loops);
  /** the body of block x before its jump (if it ends with one) */
  const bodyEnd = (x: number): number => {
    const last = lastPc(x);
    const op = p.op[last]!;
    const c = op & 7;
    return (c === CLS.JMP || c === CLS.JMP32) && (op & 0xf0) !== JMP_OP.CALL && (op & 0xf0) !== JMP_OP.EXIT ? last : ends[x]!;
  };
  return { taken, fall, cond, select, reuse, predicatedEnd, bodyEnd, backSrc: loops.backSrc, members: loops.members, order, pos, lastPos: layout.lastPos, openAt };
}

/** the block graph (see Structure) */
interface Graph {
  taken: Int32Array;
  fall: Int32Array;
  cond: Uint8Array;
}

/** the CFG on blocks: taken (-1: none) and fallthrough (-1: none) successors */
function blockGraph(p: LoadedProgram, bl: Blocks): Graph {
  const { nb, ends, blockOf, lastPc, jumpTo } = bl;
  const taken = new Int32Array(nb).fill(-1);
  const fall = new Int32Array(nb).fill(-1);
  const cond = new Uint8Array(nb);
  for (let k = 0; k < nb; k++) {
    const pc = lastPc(k);
    const op = p.op[pc]!;
    const c = op & 7;
    const isJmp = c === CLS.JMP || c === CLS.JMP32;
    const code = op & 0xf0;
    if (isJmp && code === JMP_OP.EXIT) continue;
    if (isJmp && code === JMP_OP.JA) {
      taken[k] = jumpTo(k);
      continue;
    }
    const t = jumpTo(k);
    if (t >= 0) {
      taken[k] = t;
      cond[k] = 1;
    }
    const next = blockOf.get(ends[k]!);
    if (next !== undefined) fall[k] = next;
  }
  return { taken, fall, cond };
}

/** triangles: k --cond--> c, k --fall--> m, m pure and only reached from k, m --fall or goto--> c; m runs under selects */
function selectBlocks(p: LoadedProgram, bl: Blocks, gr: Graph, predicatedEnd: (m: number) => number): { select: Int32Array; preds: Int32Array } {
  const { nb, starts, entry: entryBlock } = bl;
  const { taken, fall, cond } = gr;
  const preds = new Int32Array(nb);
  for (let k = 0; k < nb; k++) {
    const t = taken[k] ?? -1;
    const f = fall[k] ?? -1;
    if (t >= 0) preds[t] = (preds[t] ?? 0) + 1;
    if (f >= 0) preds[f] = (preds[f] ?? 0) + 1;
  }
  const absorbed = new Uint8Array(nb);
  const select = new Int32Array(nb).fill(-1); // k -> the absorbed block
  for (let k = 0; k < nb; k++) {
    if (!cond[k] || absorbed[k]) continue;
    const m = fall[k]!;
    const c = taken[k]!;
    if (m < 0 || m === c || absorbed[m] || m === entryBlock || preds[m] !== 1 || cond[m]) continue;
    if (!(taken[m] === -1 && fall[m] === c) && !(taken[m] === c && fall[m] === -1)) continue;
    const s = starts[m]!;
    if (p.cost[s]! < 0 || Math.abs(p.cost[s]!) > 6 || p.functions.includes(s)) continue;
    let ok = true;
    for (let pc = s; pc < predicatedEnd(m) && ok; pc++) if (p.kind[pc] !== K.LDDW2 && !pure(p, pc)) ok = false;
    if (!ok) continue;
    absorbed[m] = 1;
    select[k] = m;
  }
  return { select, preds };
}

/**
 * clang splits `if (c) { a; b; }` into two triangles testing the same registers the same way: the
 * second reuses the first's C (same compare, operands not written by the first's predicated block,
 * nothing in between, not a loop header) and the first refunds both
 */
function reusedConditions(p: LoadedProgram, bl: Blocks, gr: Graph, select: Int32Array, preds: Int32Array, predicatedEnd: (m: number) => number): Uint8Array {
  const { nb, starts, lastPc } = bl;
  const { taken } = gr;
  const reuse = new Uint8Array(nb);
  for (let k = 0; k < nb; k++) {
    const m = select[k]!;
    const x = taken[k]!;
    if (m < 0 || select[x]! < 0 || lastPc(x) !== starts[x] || p.cost[starts[x]!]! < 0 || preds[x] !== 2) continue;
    const a = lastPc(k);
    const c = lastPc(x);
    const regSrc = (p.op[a]! & 0x08) !== 0;
    if (p.op[a] !== p.op[c] || p.dst[a] !== p.dst[c] || (regSrc ? p.src[a] !== p.src[c] : p.imm[a] !== p.imm[c])) continue;
    let clobbered = false;
    for (let pc = starts[m]!; pc < predicatedEnd(m); pc++) {
      if (p.kind[pc] === K.LDDW2) continue;
      if (p.dst[pc] === p.dst[a] || (regSrc && p.dst[pc] === p.src[a])) clobbered = true;
    }
    if (!clobbered) reuse[x] = 1;
  }
  return reuse;
}

/** reverse postorder from the entry (iterative DFS), and each block's predecessors */
function reversePostorder(bl: Blocks, succ: (k: number) => number[]): { rpo: number[]; rpoIndex: Int32Array; predList: number[][] } {
  const { nb, entry: entryBlock } = bl;
  const rpoIndex = new Int32Array(nb).fill(-1);
  const post: number[] = [];
  {
    const visited = new Uint8Array(nb);
    const stack: [number, number][] = [[entryBlock, 0]];
    visited[entryBlock] = 1;
    while (stack.length > 0) {
      const top = stack[stack.length - 1]!;
      const ss = succ(top[0]);
      if (top[1] < ss.length) {
        const nx = ss[top[1]++]!;
        if (!visited[nx]) {
          visited[nx] = 1;
          stack.push([nx, 0]);
        }
      } else {
        post.push(top[0]);
        stack.pop();
      }
    }
  }
  const rpo = post.reverse();
  rpo.forEach((k, i) => (rpoIndex[k] = i));
  const predList: number[][] = Array.from({ length: nb }, () => []);
  for (const k of rpo) for (const x of succ(k)) predList[x]!.push(k);
  return { rpo, rpoIndex, predList };
}

/** dominators (Cooper, Harvey, Kennedy), on RPO indices: whether a dominates b */
function dominators(entryBlock: number, rpo: number[], rpoIndex: Int32Array, predList: number[][]): (a: number, b: number) => boolean {
  const nb = rpoIndex.length;
  const idom = new Int32Array(nb).fill(-1);
  idom[entryBlock] = entryBlock;
  const intersect = (a: number, b: number): number => {
    while (a !== b) {
      while (rpoIndex[a]! > rpoIndex[b]!) a = idom[a]!;
      while (rpoIndex[b]! > rpoIndex[a]!) b = idom[b]!;
    }
    return a;
  };
  for (let changed = true; changed; ) {
    changed = false;
    for (const k of rpo) {
      if (k === entryBlock) continue;
      let d = -1;
      for (const q of predList[k]!) if (idom[q] !== -1) d = d === -1 ? q : intersect(q, d);
      if (d !== idom[k]) {
        idom[k] = d;
        changed = true;
      }
    }
  }
  const dominates = (a: number, b: number): boolean => {
    for (let x = b; ; x = idom[x]!) {
      if (x === a) return true;
      if (x === entryBlock) return false;
    }
  };
  return dominates;
}

interface Loops {
  /** innermost loop header containing the block (a header: itself) */
  loopOf: Int32Array;
  headers: number[];
  backSrc: Map<number, number[]>;
  parentLoop: Map<number, number>;
  members: Map<number, number[]>;
}

/** natural loops (undefined: a retreating edge whose target does not dominate its source, irreducible) */
function naturalLoops(nb: number, rpo: number[], rpoIndex: Int32Array, predList: number[][], succ: (k: number) => number[], dominates: (a: number, b: number) => boolean): Loops | undefined {
  const loopOf = new Int32Array(nb).fill(-1); // innermost loop header containing the block (a header: itself)
  const headers: number[] = [];
  const backSrc = new Map<number, number[]>();
  for (const u of rpo) {
    for (const v of succ(u)) {
      if (rpoIndex[v]! <= rpoIndex[u]!) {
        if (!dominates(v, u)) return undefined; // irreducible
        let l = backSrc.get(v);
        if (l === undefined) {
          backSrc.set(v, (l = []));
          headers.push(v);
        }
        l.push(u);
      }
    }
  }
  // bodies, outer loops first (lower RPO index of header = outer or earlier), inner ones overwrite
  headers.sort((a, b) => rpoIndex[a]! - rpoIndex[b]!);
  const parentLoop = new Map<number, number>();
  const members = new Map<number, number[]>();
  for (const h of headers) {
    const body = new Set<number>([h]);
    const work = [...backSrc.get(h)!];
    while (work.length > 0) {
      const x = work.pop()!;
      if (body.has(x)) continue;
      body.add(x);
      for (const q of predList[x]!) if (!body.has(q)) work.push(q);
    }
    parentLoop.set(h, loopOf[h]!);
    for (const x of body) loopOf[x] = h;
    members.set(h, [...body].sort((a, b) => rpoIndex[a]! - rpoIndex[b]!));
  }
  return { loopOf, headers, backSrc, parentLoop, members };
}

/** loop-contiguous order: each loop's blocks in one run, headed by its header (undefined: not contiguous) */
function loopContiguousOrder(nb: number, rpo: number[], loops: Loops): { order: number[]; pos: Int32Array; lastPos: Map<number, number> } | undefined {
  const { loopOf, headers, parentLoop, members } = loops;
  const order: number[] = [];
  const placed = new Uint8Array(nb);
  const childOf = (region: number, x: number): number => {
    // the loop directly inside `region` that holds x (-1: x belongs to region itself)
    let l = loopOf[x]!;
    if (l === region) return -1;
    for (;;) {
      const par = parentLoop.get(l)!;
      if (par === region) return l;
      if (par === -1) return l;
      l = par;
    }
  };
  const place = (region: number): void => {
    const list = region === -1 ? rpo : members.get(region)!;
    for (const x of list) {
      if (placed[x]) continue;
      if (region !== -1 && x === region) {
        placed[x] = 1;
        order.push(x);
        continue;
      }
      const c = childOf(region, x);
      if (c === -1) {
        placed[x] = 1;
        order.push(x);
      } else place(c);
    }
  };
  place(-1);
  const pos = new Int32Array(nb).fill(-1);
  order.forEach((k, i) => (pos[k] = i));
  const lastPos = new Map<number, number>();
  for (const h of headers) lastPos.set(h, Math.max(...members.get(h)!.map((x) => pos[x]!)));
  for (const h of headers) {
    // contiguity check (guaranteed by construction; be safe)
    if (lastPos.get(h)! - pos[h]! + 1 !== members.get(h)!.length) return undefined;
  }
  return { order, pos, lastPos };
}

/** which forward targets need a Wasm block, and where it opens */
function forwardBlocks(order: number[], pos: Int32Array, gr: Graph, select: Int32Array, loops: Loops): Map<number, number[]> {
  const { taken, fall, cond } = gr;
  const { loopOf, parentLoop } = loops;
  const needBlock = new Set<number>();
  for (let i = 0; i < order.length; i++) {
    const k = order[i]!;
    const t = taken[k] ?? -1;
    const f = fall[k] ?? -1;
    const edges: [number, boolean][] = []; // target, conditional
    if ((select[k] ?? -1) >= 0) edges.push([t, false]);
    else if (cond[k]) edges.push([t, true], [f, false]);
    else if (t >= 0) edges.push([t, false]);
    else if (f >= 0) edges.push([f, false]);
    for (const [x, conditional] of edges) {
      if (x >= 0 && pos[x]! > i && (conditional || pos[x] !== i + 1)) needBlock.add(x);
    }
  }
  const enclosing = (x: number): number => {
    // innermost loop strictly containing x (for a header: its parent loop)
    const l = loopOf[x]!;
    if (l === -1) return -1;
    if (l === x) return parentLoop.get(x)!;
    return l;
  };
  const openAt = new Map<number, number[]>(); // position of a loop header (-1: function start) -> targets
  for (const x of needBlock) {
    const l = enclosing(x);
    const at = l === -1 ? -1 : pos[l]!;
    let list = openAt.get(at);
    if (list === undefined) openAt.set(at, (list = []));
    list.push(x);
  }
  return openAt;
}

