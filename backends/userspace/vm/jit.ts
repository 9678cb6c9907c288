// The compiler: eBPF -> one WebAssembly module per program, run by V8.
//
// * Each eBPF function (the entry and every bpf-to-bpf call / code_addr target) becomes one Wasm
//   function (r1..r5, depth) -> r0 over the code reachable from its entry; r0..r10 are i64 locals, so
//   r6..r9 survive calls for free. Code reachable from two entries is compiled into both.
// * Control flow: basic blocks are the program's leaders (shared with the interpreter). Reducible
//   functions are laid out in a loop-contiguous reverse postorder: a Wasm `loop` per natural loop, a
//   Wasm `block` per forward branch target, branches straight to them; short side-effect-free blocks
//   skipped by a conditional jump (falling or jumping to the same join) become selects, data-independent
//   code whatever the branch would have done. Irreducible functions use a br_table dispatcher.
// * Memory: the VmMemory's WebAssembly.Memory is imported. Every access is checked: r10-relative
//   accesses inside the current frame need no check; others test a one-region cache in locals (one for
//   loads, one for stores) and on a miss binary-search the region table VmMemory mirrors into linear
//   memory, inline, faulting through an import that never returns. No returning call sits on the memory
//   path, so V8 keeps the registers in registers; branch hints mark the cold sides.
// * Budget: an i64 local charged at every block entry and checked at loop headers and exits (the same
//   points as the interpreter), synced with a global around calls. A block run under selects is charged
//   with the block before it and refunded in a second local when skipped, so that the budget's chain
//   through a loop does not wait on every condition (see Gen.refunds).
// * Loops whose accesses are affine in induction registers are versioned: a one-block counted loop
//   checks, once on entry, all its iterations' accesses against the region caches and the budget against
//   its trip count, then runs unchecked; a loop whose blocks form a chain (side exits allowed) runs
//   unchecked in chunks, each as long as the caches' windows and the budget allow, computed on entry to
//   the chunk (blocks under selects allowed). When the test fails the loop runs checked, as any other,
//   and tests again later (see loopPlan and chain).
// * Helpers, tail calls, callx of helper ids and legacy packet loads are imported JS functions.
// Modules are cached by program hash + resolved constants; instances per loaded program.

import v8 from 'node:v8';
import { MAX_CALL_DEPTH, STACK_FRAME_SIZE, VmError } from './api.js';
import { ALU_OP, CLS, JMP_OP, MODE, OP_LDDW } from './isa.js';
import { accessFault, REGION_STACK, REGION_WRITABLE, STACK_TOP, TABLE_INFO, type Memory } from './memory.js';
import { CODE_BASE, K, type LoadedProgram } from './program.js';
import { budgetError, callHelper, callxHelper, PacketExit, tailTarget, type RunState } from './state.js';
import { buildModule, Bytes, OP, T, type FuncType } from '../../../src/wasm/writer.js';
import { interpret } from './interp.js';

// locals
const P_DEPTH = 5;
const L_R0 = 6;
const L_R6 = 7; // r6..r9 = 7..10
const L_R10 = 11;
const L_T0 = 12;
const L_T1 = 13;
const L_B = 14;
const L_LABEL = 15;
const L_A = 16;
const L_FP = 17;
const L_RLO = 18;
const L_RLIM = 19;
const L_WLO = 20;
const L_WLIM = 21;
const L_SAVE = 22;
const L_C = 23;
const L_I0 = 24;
const L_I1 = 25;
const L_I2 = 26;
const L_N = 27;
const L_V = 28;
const L_CNT = 29;
const L_RF = 30;
const REG = [L_R0, 0, 1, 2, 3, 4, L_R6, L_R6 + 1, L_R6 + 2, L_R6 + 3, L_R10];

// globals
const G_BUDGET = 0;
const G_TC = 1;

// imported functions
const F_FAULT_BUDGET = 0;
const F_FAULT_STACK = 1;
const F_FAULT_MEM = 2;
const F_TAIL = 3;
const F_CALLX = 4;
const F_LDABS = 5;

interface JitExports {
  run: (r1: bigint, r2: bigint, r3: bigint, r4: bigint, r5: bigint, depth: number) => bigint;
  budget: WebAssembly.Global;
  tc: WebAssembly.Global;
}

interface Compiled {
  module: WebAssembly.Module;
  ms: number;
  bytes: number;
  /** functions compiled with the br_table dispatcher (irreducible control flow) */
  dispatched: number;
}

// Branch hints (which sides of the checks are cold) let V8 keep slow paths and their spills out of the
// hot code. Node 20's V8 reads them only behind this flag; it affects only modules that carry hints.
// Set WASM_BPF_VM_NO_BRANCH_HINTS=1 to leave V8's flags alone.
if (process.env.WASM_BPF_VM_NO_BRANCH_HINTS === undefined && /^1[0-2]\./.test(process.versions.v8)) {
  v8.setFlagsFromString('--experimental-wasm-branch-hinting');
}
const moduleCache = new Map<string, Compiled>();
const MODULE_CACHE_MAX = 256;

class JitInstance {
  st: RunState | undefined;
  readonly ex: JitExports;
  constructor(
    readonly p: LoadedProgram,
    module: WebAssembly.Module,
  ) {
    const mem = p.memory;
    const self = this;
    const state = (): RunState => self.st!;
    // a load or store no live region allows (the compiled code looked the table up itself): throw
    const faultMem = (addr: bigint, info: number, pc: number, depth: number): void => {
      const a = BigInt.asUintN(64, addr);
      const w = info & 0xf;
      const write = (info & 0x10) !== 0;
      const stackLo = STACK_TOP - (depth + 1) * STACK_FRAME_SIZE;
      throw new VmError('memory', accessFault(mem, Number(a & 0xffffffffn), Number(a >> 32n) | 0, w, write, stackLo), { pc, insn: p.text(pc), program: p.name });
    };
    const h: Record<string, WebAssembly.ImportValue> = {
      fault_budget: (pc: number): void => {
        throw budgetError(p, pc, state());
      },
      fault_stack: (pc: number): void => {
        throw new VmError('stack', `call depth exceeds ${MAX_CALL_DEPTH} frames`, { pc, insn: p.text(pc), program: p.name });
      },
      fault_mem: faultMem,
      tail: (r1: bigint, r2: bigint, r3: bigint, pc: number, depth: number): bigint => {
        const st = state();
        const t = tailTarget(p, pc, st, r2, r3);
        if (t === undefined) return -2n;
        st.budget = Number(self.ex.budget.value as bigint);
        const r0 = st.tail(t, r1, depth);
        self.st = st;
        self.ex.budget.value = BigInt(st.budget);
        self.ex.tc.value = 1;
        return r0;
      },
      callx: (v: bigint, r1: bigint, r2: bigint, r3: bigint, r4: bigint, r5: bigint, pc: number): bigint =>
        callxHelper(p, pc, v, state(), r1, r2, r3, r4, r5),
      ldabs: (off: number, w: number): bigint => {
        const st = state();
        const pk = st.packet;
        if (pk === undefined || off < 0 || off + w > pk.size) throw new PacketExit();
        const a = pk.addr + off;
        if (mem.findNum(a, w) === undefined) throw new PacketExit();
        const u8 = mem.bytes();
        if (w === 1) return BigInt(u8[a]!);
        if (w === 2) return BigInt((u8[a]! << 8) | u8[a + 1]!);
        return BigInt(((u8[a]! << 24) | (u8[a + 1]! << 16) | (u8[a + 2]! << 8) | u8[a + 3]!) >>> 0);
      },
    };
    for (const id of p.helperIds) {
      const fn = p.env.helper(id)!;
      h[`h${id}`] = (r1: bigint, r2: bigint, r3: bigint, r4: bigint, r5: bigint, pc: number): bigint => callHelper(p, pc, fn, id, state(), r1, r2, r3, r4, r5);
    }
    const inst = new WebAssembly.Instance(module, { h, m: { mem: mem.wasm } });
    this.ex = inst.exports as unknown as JitExports;
  }

  run(args: readonly bigint[], depth: number, st: RunState): bigint {
    const prev = this.st;
    this.st = st;
    const ex = this.ex;
    ex.budget.value = BigInt(st.budget);
    ex.tc.value = 0;
    try {
      const r0 = ex.run(args[0] ?? 0n, args[1] ?? 0n, args[2] ?? 0n, args[3] ?? 0n, args[4] ?? 0n, depth);
      return BigInt.asUintN(64, r0);
    } finally {
      st.budget = Number(ex.budget.value as bigint);
      this.st = prev ?? st;
    }
  }
}

const instances = new WeakMap<LoadedProgram, JitInstance>();
/** programs too large for one Wasm function (V8's limits): run by the interpreter, with the reason */
const tooLarge = new WeakMap<LoadedProgram, string>();

/** compile (cached) and return the milliseconds spent (0 when cached) */
export function compileProgram(p: LoadedProgram): number {
  if (instances.has(p) || tooLarge.has(p)) return 0;
  const t0 = performance.now();
  let c = moduleCache.get(p.jitKey);
  if (c === undefined) {
    stats.dispatched = 0;
    const bytes = generate(p);
    let module: WebAssembly.Module;
    try {
      module = new WebAssembly.Module(bytes);
    } catch (e) {
      const msg = e instanceof Error ? e.message : String(e);
      if (/maximum|too (large|many)|size/i.test(msg)) {
        // past V8's per-function limits (hundreds of thousands of instructions): same semantics, interpreted
        tooLarge.set(p, msg);
        return performance.now() - t0;
      }
      throw new VmError('unsupported', `the compiler produced a module V8 refused: ${msg}`, { program: p.name }, { cause: e });
    }
    c = { module, ms: performance.now() - t0, bytes: bytes.length, dispatched: stats.dispatched };
    if (moduleCache.size >= MODULE_CACHE_MAX) moduleCache.delete(moduleCache.keys().next().value!);
    moduleCache.set(p.jitKey, c);
  }
  instances.set(p, new JitInstance(p, c.module));
  return performance.now() - t0;
}

/** what the compiler made of a program: Wasm size, or why it is interpreted instead */
export function jitInfo(p: LoadedProgram): { wasmBytes: number; functions: number; dispatched: number } | { interpreted: string } | undefined {
  const why = tooLarge.get(p);
  if (why !== undefined) return { interpreted: why };
  const c = moduleCache.get(p.jitKey);
  return c === undefined ? undefined : { wasmBytes: c.bytes, functions: p.functions.length, dispatched: c.dispatched };
}

export function jitRun(p: LoadedProgram, args: readonly bigint[], depth: number, st: RunState): bigint {
  let inst = instances.get(p);
  if (inst === undefined) {
    compileProgram(p);
    inst = instances.get(p);
    if (inst === undefined) return interpret(p, args, depth, st);
  }
  return inst.run(args, depth, st);
}

// ---- code generation ----------------------------------------------------------------------------------

class Types {
  list: FuncType[] = [];
  private map = new Map<string, number>();
  get(params: number[], results: number[]): number {
    const k = `${params.join(',')}:${results.join(',')}`;
    let i = this.map.get(k);
    if (i === undefined) {
      i = this.list.length;
      this.list.push({ params, results });
      this.map.set(k, i);
    }
    return i;
  }
}

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

/** the Wasm module of a program (what compileProgram compiles; test/vm-jit-golden.test.ts pins it) */
export function generate(p: LoadedProgram): Uint8Array<ArrayBuffer> {
  const types = new Types();
  const tFault = types.get([T.i32], []);
  const tFaultMem = types.get([T.i64, T.i32, T.i32, T.i32], []);
  const tTail = types.get([T.i64, T.i64, T.i64, T.i32, T.i32], [T.i64]);
  const tCallx = types.get([T.i64, T.i64, T.i64, T.i64, T.i64, T.i64, T.i32], [T.i64]);
  const tLdabs = types.get([T.i32, T.i32, T.i32], [T.i64]);
  const tHelper = types.get([T.i64, T.i64, T.i64, T.i64, T.i64, T.i32], [T.i64]);
  const tFunc = types.get([T.i64, T.i64, T.i64, T.i64, T.i64, T.i32], [T.i64]);
  const funcImports = [
    { module: 'h', name: 'fault_budget', type: tFault },
    { module: 'h', name: 'fault_stack', type: tFault },
    { module: 'h', name: 'fault_mem', type: tFaultMem },
    { module: 'h', name: 'tail', type: tTail },
    { module: 'h', name: 'callx', type: tCallx },
    { module: 'h', name: 'ldabs', type: tLdabs },
  ];
  const helperIndex = new Map<number, number>();
  for (const id of p.helperIds) {
    helperIndex.set(id, funcImports.length);
    funcImports.push({ module: 'h', name: `h${id}`, type: tHelper });
  }
  const firstFunc = funcImports.length;
  const funcIndex = new Map<number, number>();
  p.functions.forEach((f, k) => funcIndex.set(f, firstFunc + k));

  const funcs = p.functions.map((entry) => ({
    type: tFunc,
    ...genFunction(p, entry, funcIndex, helperIndex),
    locals: [
      [9, T.i64],
      [3, T.i32],
      [5, T.i64],
      [4, T.i32],
      [2, T.i64],
      [2, T.i32],
    ] as [number, number][],
  }));
  return buildModule({
    types: types.list,
    funcImports,
    memoryImport: { module: 'm', name: 'mem' },
    globals: [
      { type: T.i64, init: 0n },
      { type: T.i32, init: 0 },
    ],
    funcs,
    exports: [
      { name: 'run', kind: 'func', index: firstFunc },
      { name: 'budget', kind: 'global', index: G_BUDGET },
      { name: 'tc', kind: 'global', index: G_TC },
    ],
  });
}

const CMP64: Record<number, number> = {
  [JMP_OP.JEQ]: OP.i64_eq, [JMP_OP.JNE]: OP.i64_ne, [JMP_OP.JGT]: OP.i64_gt_u, [JMP_OP.JGE]: OP.i64_ge_u,
  [JMP_OP.JLT]: OP.i64_lt_u, [JMP_OP.JLE]: OP.i64_le_u, [JMP_OP.JSGT]: OP.i64_gt_s, [JMP_OP.JSGE]: OP.i64_ge_s,
  [JMP_OP.JSLT]: OP.i64_lt_s, [JMP_OP.JSLE]: OP.i64_le_s,
};
const CMP32: Record<number, number> = {
  [JMP_OP.JEQ]: OP.i32_eq, [JMP_OP.JNE]: OP.i32_ne, [JMP_OP.JGT]: OP.i32_gt_u, [JMP_OP.JGE]: OP.i32_ge_u,
  [JMP_OP.JLT]: OP.i32_lt_u, [JMP_OP.JLE]: OP.i32_le_u, [JMP_OP.JSGT]: OP.i32_gt_s, [JMP_OP.JSGE]: OP.i32_ge_s,
  [JMP_OP.JSLT]: OP.i32_lt_s, [JMP_OP.JSLE]: OP.i32_le_s,
};
const ALU64: Record<number, number> = {
  [ALU_OP.ADD]: OP.i64_add, [ALU_OP.SUB]: OP.i64_sub, [ALU_OP.MUL]: OP.i64_mul, [ALU_OP.OR]: OP.i64_or,
  [ALU_OP.AND]: OP.i64_and, [ALU_OP.XOR]: OP.i64_xor, [ALU_OP.LSH]: OP.i64_shl, [ALU_OP.RSH]: OP.i64_shr_u,
  [ALU_OP.ARSH]: OP.i64_shr_s,
};
const ALU32: Record<number, number> = {
  [ALU_OP.ADD]: OP.i32_add, [ALU_OP.SUB]: OP.i32_sub, [ALU_OP.MUL]: OP.i32_mul, [ALU_OP.OR]: OP.i32_or,
  [ALU_OP.AND]: OP.i32_and, [ALU_OP.XOR]: OP.i32_xor, [ALU_OP.LSH]: OP.i32_shl, [ALU_OP.RSH]: OP.i32_shr_u,
  [ALU_OP.ARSH]: OP.i32_shr_s,
};

function genFunction(p: LoadedProgram, entry: number, funcIndex: Map<number, number>, helperIndex: Map<number, number>): { body: Uint8Array<ArrayBuffer>; hints: [number, number][] } {
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
  const lastPc = (k: number): number => {
    let pc = ends[k]! - 1;
    if (p.kind[pc] === K.LDDW2) pc--;
    return pc;
  };
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

  const g = new Gen(p, funcIndex, helperIndex);
  g.prologue();
  const entryBlock = blockOf.get(entry)!;
  if (!structured(p, g, nb, starts, ends, entryBlock, jumpTo, blockOf)) {
    g.b = new Bytes();
    g.refunds = false;
    g.hints = [];
    g.ctl = new Ctl();
    g.prologue();
    dispatch(p, g, nb, starts, ends, entryBlock, blockOf);
    stats.dispatched++;
  }
  return { body: g.b.out().slice(), hints: g.hints };
}

/** how the last generated module's functions were laid out */
const stats = { dispatched: 0 };

/** the instructions of block k (its budget charge first) */
function emitBlock(p: LoadedProgram, g: Gen, s: number, e: number): void {
  g.charge(s, p.cost[s]!);
  for (let pc = s; pc < e; pc++) {
    if (p.kind[pc] === K.LDDW2) continue;
    g.insn(pc);
  }
}

/** an instruction with no effect but on its destination register, that cannot fault */
function pure(p: LoadedProgram, pc: number): boolean {
  const c = p.op[pc]! & 7;
  return c === CLS.ALU || c === CLS.ALU64 || p.op[pc] === OP_LDDW;
}

/**
 * Structured control flow for reducible functions (what compilers emit). Blocks are laid out in a
 * loop-contiguous reverse postorder: every loop (natural loop of a back edge whose target dominates its
 * source) is one Wasm `loop` headed by its header; every block reached by a forward branch gets a Wasm
 * `block` that ends just before it, opened at the function start or inside the innermost loop holding
 * it. Branches go straight to those labels. A short side-effect-free block that a conditional jump skips
 * (a "triangle") is executed under a select instead of branched around. Returns false for irreducible
 * control flow (then the caller uses the dispatcher).
 */
function structured(p: LoadedProgram, g: Gen, nb: number, starts: number[], ends: number[], entryBlock: number, jumpTo: (k: number) => number, blockOf: Map<number, number>): boolean {
  // ---- CFG on blocks: taken (-1: none) and fallthrough (-1: none) successors
  const taken = new Int32Array(nb).fill(-1);
  const fall = new Int32Array(nb).fill(-1);
  const cond = new Uint8Array(nb);
  /** the last instruction of block k (the first half of a closing lddw) */
  const lastPc = (k: number): number => (p.kind[ends[k]! - 1] === K.LDDW2 ? ends[k]! - 2 : ends[k]! - 1);
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
  // ---- triangles: k --cond--> c, k --fall--> m, m pure and only reached from k, m --fall or goto--> c
  const preds = new Int32Array(nb);
  for (let k = 0; k < nb; k++) {
    if (taken[k] >= 0) preds[taken[k]!]++;
    if (fall[k] >= 0) preds[fall[k]!]++;
  }
  // the end of a predicated block's instructions: without its closing `goto c`, if any
  const predicatedEnd = (m: number): number => (taken[m]! >= 0 ? ends[m]! - 1 : ends[m]!);
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
  if (select.some((m) => m >= 0)) g.refunds = true;
  // clang splits `if (c) { a; b; }` into two triangles testing the same registers the same way: the
  // second reuses the first's C (same compare, operands not written by the first's predicated block,
  // nothing in between, not a loop header) and the first refunds both
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
  /** what a select block refunds when skipped: its predicated block, and those of the blocks reusing C */
  const refundOf = (k: number): number => {
    let n = Math.abs(p.cost[starts[select[k]!]!]!);
    if (reuse[taken[k]!]) n += refundOf(taken[k]!);
    return n;
  };
  /**
   * block k's predicated block, after k's body: C = the condition (or the one k reuses), its charge (at
   * once, or in the fast copy of a chained loop with the iteration: then only the refund), and its
   * instructions under selects
   */
  const emitSelect = (k: number, fast: boolean): void => {
    const m = select[k]!;
    if (!reuse[k]) {
      g.condition(lastPc(k));
      b.byte(OP.local_set).u32(L_C);
    }
    const cm = Math.abs(p.cost[starts[m]!]!);
    if (!fast) g.chargeAlways(cm);
    if (!reuse[k]) g.refund(refundOf(k));
    for (let pc = starts[m]!; pc < predicatedEnd(m); pc++) if (p.kind[pc] !== K.LDDW2) g.predicated(pc);
  };
  const succ = (k: number): number[] => {
    const out: number[] = [];
    if (select[k] >= 0) {
      out.push(taken[k]!);
      return out;
    }
    if (taken[k] >= 0) out.push(taken[k]!);
    if (fall[k] >= 0 && fall[k] !== taken[k]) out.push(fall[k]!);
    return out;
  };

  // ---- reverse postorder from the entry (iterative DFS)
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

  // ---- dominators (Cooper, Harvey, Kennedy), on RPO indices
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

  // ---- natural loops
  const loopOf = new Int32Array(nb).fill(-1); // innermost loop header containing the block (a header: itself)
  const headers: number[] = [];
  const backSrc = new Map<number, number[]>();
  for (const u of rpo) {
    for (const v of succ(u)) {
      if (rpoIndex[v]! <= rpoIndex[u]!) {
        if (!dominates(v, u)) return false; // irreducible
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

  // ---- loop-contiguous order
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
    if (lastPos.get(h)! - pos[h]! + 1 !== members.get(h)!.length) return false;
  }

  // ---- which forward targets need a Wasm block, and where it opens
  const needBlock = new Set<number>();
  for (let i = 0; i < order.length; i++) {
    const k = order[i]!;
    const edges: [number, boolean][] = []; // target, conditional
    if (select[k] >= 0) edges.push([taken[k]!, false]);
    else if (cond[k]) edges.push([taken[k]!, true], [fall[k]!, false]);
    else if (taken[k] >= 0) edges.push([taken[k]!, false]);
    else if (fall[k] >= 0) edges.push([fall[k]!, false]);
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

  // ---- emit
  const b = g.b;
  const ctl = g.ctl;
  const openBlocks = (at: number): void => {
    const xs = (openAt.get(at) ?? []).sort((a, c) => pos[c]! - pos[a]!);
    for (const x of xs) {
      b.byte(OP.block).byte(T.void);
      ctl.push(`b${x}`);
    }
  };
  g.blockOfPc = (pc: number) => blockOf.get(pc)!;
  g.jumpLabel = () => '';
  // close the loops that end at position i (innermost first)
  const closeLoops = (i: number): void => {
    for (;;) {
      const top = ctl.top();
      if (top === undefined || !top.startsWith('l') || lastPos.get(Number(top.slice(1))) !== i) break;
      b.byte(OP.end);
      ctl.pop();
    }
  };
  /** the body of block x before its jump (if it ends with one) */
  const bodyEndOf = (x: number): number => {
    const last = lastPc(x);
    const op = p.op[last]!;
    const c = op & 7;
    return (c === CLS.JMP || c === CLS.JMP32) && (op & 0xf0) !== JMP_OP.CALL && (op & 0xf0) !== JMP_OP.EXIT ? last : ends[x]!;
  };
  /**
   * A loop whose blocks (in layout order) form a chain: each goes on to the next or leaves the loop, the
   * last goes back to the header or leaves. One iteration is then one straight path; when its accesses
   * are affine in induction registers, the loop runs in chunks of CHUNK iterations, each chunk preceded by
   * one test that all its accesses lie in the caches' windows and that the budget covers it.
   */
  const chain = (k: number, i: number): { ms: number[]; it: Iteration; cost: number } | undefined => {
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
      ranges.push([starts[x]!, bodyEndOf(x), false]);
      const m = select[x]!;
      if (m >= 0) ranges.push([starts[m]!, predicatedEnd(m), true]);
    }
    const it = iteration(p, ranges);
    return it === undefined ? undefined : { ms, it, cost };
  };
  const CHUNK = 1 << 30;
  const SLOW_CHUNK = 8;
  const chunkedLoop = (k: number, i: number, plan: { ms: number[]; it: Iteration; cost: number }): void => {
    const last = lastPos.get(k)!;
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
        const be = bodyEndOf(x);
        for (let pc = s0; pc < be; pc++) if (p.kind[pc] !== K.LDDW2) g.insn(pc);
        g.unchecked = undefined;
        const m = select[x]!;
        if (m >= 0) {
          // predicated: charged with the iteration (fast) or here, refunded when skipped
          if (fast) acc += Math.abs(p.cost[starts[m]!]!);
          emitSelect(x, fast);
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
          g.condition(bodyEndOf(x));
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
    g.chunkTest(plan.it.accesses, plan.cost, Math.min(CHUNK, Math.floor(0x7fffffff / plan.cost)));
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
    void last;
  };
  openBlocks(-1);
  for (let i = 0; i < order.length; i++) {
    const k = order[i]!;
    while (ctl.top() === `b${k}`) {
      b.byte(OP.end);
      ctl.pop();
    }
    if (ctl.has(`b${k}`)) return false;
    // a loop of one block: versioned when its accesses can be checked once for all its iterations
    const plan = backSrc.has(k) && members.get(k)!.length === 1 && cond[k] && taken[k] === k && select[k] < 0 && !openAt.has(i) ? loopPlan(p, starts[k]!, ends[k]!) : undefined;
    if (plan !== undefined) {
      g.versionedLoop(plan, k);
      if (fall[k]! >= 0 && pos[fall[k]!] !== i + 1) b.byte(OP.br).u32(ctl.depth(pos[fall[k]!]! > i ? `b${fall[k]}` : `l${fall[k]}`));
      closeLoops(i);
      continue;
    }
    const chunk = backSrc.has(k) && !openAt.has(i) ? chain(k, i) : undefined;
    if (chunk !== undefined) {
      chunkedLoop(k, i, chunk);
      i = lastPos.get(k)!;
      closeLoops(i);
      continue;
    }
    if (backSrc.has(k)) {
      b.byte(OP.loop).byte(T.void);
      ctl.push(`l${k}`);
    }
    if (backSrc.has(k)) openBlocks(i);
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
    const bodyEnd = bodyEndOf(k);
    const jumpLast = bodyEnd !== e;
    for (let pc = s; pc < bodyEnd; pc++) if (p.kind[pc] !== K.LDDW2) g.insn(pc);
    if (select[k] >= 0) {
      emitSelect(k, false);
      goTo(taken[k]!, false);
    } else if (cond[k]) {
      g.condition(last);
      goTo(taken[k]!, true);
      if (fall[k]! >= 0) goTo(fall[k]!, false);
    } else if (jumpLast && taken[k] >= 0) {
      goTo(taken[k]!, false);
    } else if (jumpLast) {
      // a conditional jump with offset 0: both ways to the next instruction
      if (fall[k]! >= 0) goTo(fall[k]!, false);
    } else if (fall[k]! >= 0) {
      goTo(fall[k]!, false);
    }
    closeLoops(i);
  }
  if (ctl.length !== 0) return false;
  b.byte(OP.unreachable);
  return true;
}

// ---- one-block loops: checks hoisted out of the loop ------------------------------------------------
//
// A loop of one basic block (straight-line body, then a conditional jump back to its start) whose memory
// accesses are affine in its induction registers and whose trip count follows from an unsigned compare of
// an induction register against an invariant: on entry, one test computes the trip count n and checks
// that every access of every iteration lies in the window the region caches hold (the first and the last
// address of each access stream; the window is contiguous) and that the budget covers n iterations; then
// the loop runs with no per-access check and no per-iteration budget check (charged n times up front).
// Otherwise one checked iteration runs (it fills the caches), the test is repeated, and failing again the
// loop runs checked as before. Same effects, faults and counts as the checked loop, which it is whenever
// the test fails.

/** value = k + sum c[j] * (register j at the start of an iteration), mod 2^64 */
interface Form {
  k: bigint;
  c: number[];
}
interface LoopPlan {
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
interface Iteration {
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
function iteration(p: LoadedProgram, ranges: [number, number, boolean?][]): Iteration | undefined {
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

function loopPlan(p: LoadedProgram, s: number, e: number): LoopPlan | undefined {
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

/** fallback for irreducible flow: every block in one loop, dispatched by br_table on a label local */
function dispatch(p: LoadedProgram, g: Gen, nb: number, starts: number[], ends: number[], entryBlock: number, blockOf: Map<number, number>): void {
  const b = g.b;
  const ctl = g.ctl;
  b.byte(OP.i32_const).s32(entryBlock).byte(OP.local_set).u32(L_LABEL);
  b.byte(OP.loop).byte(T.void);
  ctl.push('dispatch');
  for (let k = nb - 1; k >= 0; k--) {
    b.byte(OP.block).byte(T.void);
    ctl.push(`b${k}`);
  }
  b.byte(OP.local_get).u32(L_LABEL).byte(OP.br_table).u32(nb);
  for (let k = 0; k < nb; k++) b.u32(k);
  b.u32(0);
  for (let k = 0; k < nb; k++) {
    b.byte(OP.end); // end of block k: its code follows
    ctl.pop();
    g.jumpLabel = (t: number, back: boolean) => (back ? 'dispatch' : `b${t}`);
    g.blockIndex = k;
    g.blockOfPc = (pc: number) => blockOf.get(pc)!;
    emitBlock(p, g, starts[k]!, ends[k]!);
  }
  b.byte(OP.end); // loop
  ctl.pop();
  b.byte(OP.unreachable);
}

/** the open Wasm control constructs, innermost last, with O(1) label depth */
class Ctl {
  private stack: string[] = [];
  private pos = new Map<string, number>();
  get length(): number {
    return this.stack.length;
  }
  top(): string | undefined {
    return this.stack[this.stack.length - 1];
  }
  push(label: string): void {
    this.pos.set(label, this.stack.length);
    this.stack.push(label);
  }
  pop(): void {
    const l = this.stack.pop();
    if (l !== undefined && this.pos.get(l) === this.stack.length) this.pos.delete(l);
  }
  has(label: string): boolean {
    return this.pos.has(label);
  }
  depth(label: string): number {
    const i = this.pos.get(label);
    if (i === undefined) throw new Error(`jit: no open label ${label}`);
    return this.stack.length - 1 - i;
  }
}

class Gen {
  b = new Bytes();
  /** branch hints: [offset of the if/br_if in the body, 1 likely taken / 0 unlikely] */
  hints: [number, number][] = [];
  hintIf(likely: boolean): void {
    this.hints.push([this.b.len, likely ? 1 : 0]);
  }
  /** open control constructs: b<k> blocks, l<k> loops, 'dispatch', 'if' */
  ctl = new Ctl();
  blockIndex = 0;
  jumpLabel: (t: number, back: boolean) => string = () => '';
  blockOfPc: (pc: number) => number = () => -1;
  constructor(
    readonly p: LoadedProgram,
    readonly funcIndex: Map<number, number>,
    readonly helperIndex: Map<number, number>,
  ) {}

  get(r: number): void {
    this.b.byte(OP.local_get).u32(REG[r]!);
  }
  set(r: number): void {
    this.b.byte(OP.local_set).u32(REG[r]!);
  }
  i64(v: bigint | number): void {
    this.b.byte(OP.i64_const).s64(BigInt(v));
  }
  i32(v: number): void {
    this.b.byte(OP.i32_const).s32(v);
  }

  /** r10 = STACK_TOP - depth * 512, the stack window, the budget and the region caches into locals */
  prologue(): void {
    const b = this.b;
    b.byte(OP.i64_const).s64(BigInt(STACK_TOP));
    b.byte(OP.local_get).u32(P_DEPTH).byte(OP.i64_extend_i32_u).byte(OP.i64_const).s64(BigInt(STACK_FRAME_SIZE)).byte(OP.i64_mul);
    b.byte(OP.i64_sub).byte(OP.local_tee).u32(L_R10).byte(OP.i32_wrap_i64).byte(OP.i32_const).s32(STACK_FRAME_SIZE).byte(OP.i32_sub).byte(OP.local_set).u32(L_FP);
    b.byte(OP.global_get).u32(G_BUDGET).byte(OP.local_set).u32(L_B);
    // the region caches (L_RLO/L_RLIM, L_WLO/L_WLIM) start empty: locals are zero
  }

  /**
   * The function has predicated blocks (selects). Their instructions are charged with the block that
   * skips them, and refunded in L_RF (i32) when skipped: B + L_RF is the budget. The refunds sum up apart
   * from B, so the budget's chain through the loop does not wait on every condition of the iteration.
   * settle() folds L_RF into B wherever B is compared or stored.
   */
  refunds = false;
  settle(): void {
    if (!this.refunds) return;
    const b = this.b;
    b.byte(OP.local_get).u32(L_B).byte(OP.local_get).u32(L_RF).byte(OP.i64_extend_i32_u).byte(OP.i64_add).byte(OP.local_set).u32(L_B);
    this.i32(0);
    b.byte(OP.local_set).u32(L_RF);
  }

  /** block entry: charge its instructions; at a loop header (cost < 0) also check the budget */
  charge(pc: number, cost: number): void {
    const b = this.b;
    b.byte(OP.local_get).u32(L_B);
    this.i64(Math.abs(cost));
    b.byte(OP.i64_sub).byte(OP.local_set).u32(L_B);
    if (cost < 0) this.checkBudget(pc);
  }

  /** charge a predicated block as if it ran (refund() takes it back when it did not); see refunds */
  chargeAlways(n: number): void {
    const b = this.b;
    b.byte(OP.local_get).u32(L_B);
    this.i64(n);
    b.byte(OP.i64_sub).byte(OP.local_set).u32(L_B);
  }
  /** L_RF += n when C (L_RF is settled at every loop header, and a chunk of a chained loop is short enough) */
  refund(n: number): void {
    const b = this.b;
    b.byte(OP.local_get).u32(L_RF).byte(OP.local_get).u32(L_C);
    if (n !== 1) {
      this.i32(n);
      b.byte(OP.i32_mul);
    }
    b.byte(OP.i32_add).byte(OP.local_set).u32(L_RF);
  }

  checkBudget(pc: number): void {
    const b = this.b;
    this.settle();
    b.byte(OP.local_get).u32(L_B);
    this.i64(0);
    b.byte(OP.i64_lt_s);
    this.hintIf(false);
    b.byte(OP.if).byte(T.void);
    b.byte(OP.local_get).u32(L_B).byte(OP.global_set).u32(G_BUDGET);
    this.i32(pc);
    b.byte(OP.call).u32(F_FAULT_BUDGET).byte(OP.unreachable);
    b.byte(OP.end);
  }

  /** an instruction executed only when C is 0: dst = C ? dst : op(...) */
  predicated(pc: number): void {
    const d = this.p.dst[pc]!;
    const b = this.b;
    this.get(d);
    b.byte(OP.local_set).u32(L_SAVE);
    this.insn(pc);
    b.byte(OP.local_get).u32(L_SAVE);
    this.get(d);
    b.byte(OP.local_get).u32(L_C).byte(OP.select);
    this.set(d);
  }

  flushBudget(): void {
    this.settle();
    this.b.byte(OP.local_get).u32(L_B).byte(OP.global_set).u32(G_BUDGET);
  }
  reloadBudget(): void {
    this.b.byte(OP.global_get).u32(G_BUDGET).byte(OP.local_set).u32(L_B);
  }
  /** after a call: a helper may have freed the cached regions */
  resetCaches(): void {
    const b = this.b;
    this.i64(0);
    b.byte(OP.local_set).u32(L_RLIM);
    this.i64(0);
    b.byte(OP.local_set).u32(L_WLIM);
  }

  depth(label: string): number {
    return this.ctl.depth(label);
  }

  /** branch to the block starting at pc t (conditionally: with the condition on the stack) */
  jump(t: number, cond: boolean): void {
    const b = this.b;
    const tb = this.blockOfPc(t);
    const k = this.blockIndex;
    if (!cond && tb === k + 1) return; // falls through
    const back = tb <= k;
    const label = this.jumpLabel(tb, back);
    if (label === 'dispatch') {
      if (cond) {
        b.byte(OP.if).byte(T.void);
        this.ctl.push('if');
      }
      this.i32(tb);
      b.byte(OP.local_set).u32(L_LABEL);
      b.byte(OP.br).u32(this.depth('dispatch'));
      if (cond) {
        b.byte(OP.end);
        this.ctl.pop();
      }
      return;
    }
    b.byte(cond ? OP.br_if : OP.br).u32(this.depth(label));
  }

  /** accesses emitted unchecked (inside a versioned loop's fast copy, after its entry test) */
  unchecked: Map<number, Form> | undefined = undefined;

  /** push value of a form (registers as they are now) */
  form(f: Form): void {
    const b = this.b;
    this.i64(BigInt.asIntN(64, f.k));
    for (let j = 0; j <= 10; j++) {
      const c = f.c[j]!;
      if (c === 0) continue;
      this.get(j);
      if (c !== 1) {
        this.i64(c);
        b.byte(OP.i64_mul);
      }
      b.byte(OP.i64_add);
    }
  }

  /** the versioned loop's entry test (i32, 1: run the fast copy); leaves the trip count in N */
  loopTest(plan: LoopPlan): void {
    const b = this.b;
    const p = this.p;
    const SMALL = 1n << 48n;
    // bound and first value of the induction side below 2^48: no wrap-around in what follows
    this.form(plan.bound);
    b.byte(OP.local_tee).u32(L_N);
    this.i64(SMALL);
    b.byte(OP.i64_lt_u);
    this.form(plan.v);
    b.byte(OP.local_tee).u32(L_V);
    this.i64(SMALL);
    b.byte(OP.i64_lt_u).byte(OP.i32_and);
    // n = 1 + ceil(max(0, bound (+1) - v) / step)
    b.byte(OP.local_get).u32(L_N);
    if (plan.le) {
      this.i64(1);
      b.byte(OP.i64_add);
    }
    b.byte(OP.local_get).u32(L_V).byte(OP.i64_sub).byte(OP.local_tee).u32(L_T1);
    this.i64(0);
    b.byte(OP.local_get).u32(L_T1);
    this.i64(0);
    b.byte(OP.i64_gt_s).byte(OP.select);
    this.i64((1 << plan.shift) - 1);
    b.byte(OP.i64_add);
    this.i64(plan.shift);
    b.byte(OP.i64_shr_u);
    this.i64(1);
    b.byte(OP.i64_add).byte(OP.local_tee).u32(L_N);
    this.i64(1n << 32n);
    b.byte(OP.i64_lt_u).byte(OP.i32_and);
    // the budget covers n iterations (a loop header checks it each iteration)
    const cost = p.cost[plan.s]!;
    if (cost < 0) {
      this.settle();
      b.byte(OP.local_get).u32(L_B).byte(OP.local_get).u32(L_N);
      this.i64(-cost);
      b.byte(OP.i64_mul).byte(OP.i64_sub);
      this.i64(0);
      b.byte(OP.i64_ge_s).byte(OP.i32_and);
    }
    this.windowTest(plan.accesses, undefined);
  }

  /**
   * i32 (1: go) for a chunk of a chained loop: N = the iterations to run unchecked, at most max, as many
   * as the budget covers (each iteration costs cost at most) and as keep every access in its cache's
   * window (from where it is now, moving by d per iteration); at least one
   */
  chunkTest(accesses: Iteration['accesses'], cost: number, max: number): void {
    const b = this.b;
    // N = B / cost < max ? B / cost : max; at least 1
    this.settle();
    b.byte(OP.local_get).u32(L_B);
    this.i64(cost);
    b.byte(OP.i64_div_s).byte(OP.local_tee).u32(L_N);
    this.i64(max);
    b.byte(OP.local_get).u32(L_N);
    this.i64(max);
    b.byte(OP.i64_lt_s).byte(OP.select).byte(OP.local_tee).u32(L_N);
    this.i64(1);
    b.byte(OP.i64_ge_s);
    for (const { a, d, w, write } of accesses) {
      const LO = write ? L_WLO : L_RLO;
      const LIM = write ? L_WLIM : L_RLIM;
      // now in the window (then LIM > 0: a cached region, its end is LO + LIM + 7)
      this.form(a);
      b.byte(OP.local_tee).u32(L_V).byte(OP.local_get).u32(LO).byte(OP.i64_sub).byte(OP.local_get).u32(LIM).byte(OP.i64_lt_u).byte(OP.i32_and);
      if (d === 0n) continue;
      // iterations left in the window: 1 + (end - w - a) / d, or 1 + (a - LO) / -d
      if (d > 0n) {
        b.byte(OP.local_get).u32(LO).byte(OP.local_get).u32(LIM).byte(OP.i64_add);
        this.i64(7 - w);
        b.byte(OP.i64_add).byte(OP.local_get).u32(L_V).byte(OP.i64_sub);
      } else {
        b.byte(OP.local_get).u32(L_V).byte(OP.local_get).u32(LO).byte(OP.i64_sub);
      }
      const m = d > 0n ? d : -d;
      if ((m & (m - 1n)) === 0n) {
        this.i64(m.toString(2).length - 1);
        b.byte(OP.i64_shr_u);
      } else {
        this.i64(m);
        b.byte(OP.i64_div_u);
      }
      this.i64(1);
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
  windowTest(accesses: Iteration['accesses'], t: bigint | undefined): void {
    const b = this.b;
    for (const { a, d, w, write } of accesses) {
      const LO = write ? L_WLO : L_RLO;
      const LIM = write ? L_WLIM : L_RLIM;
      this.form(a);
      b.byte(OP.local_tee).u32(L_V);
      if (t === undefined) {
        b.byte(OP.local_get).u32(L_N);
        this.i64(1);
        b.byte(OP.i64_sub);
        this.i64(d);
        b.byte(OP.i64_mul);
      } else this.i64(BigInt.asIntN(64, t * d));
      b.byte(OP.i64_add).byte(OP.local_set).u32(L_T1);
      const [lo, hi] = d >= 0n ? [L_V, L_T1] : [L_T1, L_V];
      // lo in the window (LIM > 0 then: a cached region, LIM = end - LO - 7); hi + w <= end
      b.byte(OP.local_get).u32(lo).byte(OP.local_get).u32(LO).byte(OP.i64_sub).byte(OP.local_get).u32(LIM).byte(OP.i64_lt_u).byte(OP.i32_and);
      b.byte(OP.local_get).u32(hi).byte(OP.local_get).u32(LO).byte(OP.i64_sub).byte(OP.local_get).u32(LIM);
      this.i64(8 - w);
      b.byte(OP.i64_add).byte(OP.i64_lt_u).byte(OP.i32_and);
      b.byte(OP.local_get).u32(lo).byte(OP.local_get).u32(hi).byte(OP.i64_le_u).byte(OP.i32_and);
    }
  }

  /** the body of a versioned loop (its instructions before the jump back) */
  loopBody(plan: LoopPlan): void {
    for (let pc = plan.s; pc < plan.last; pc++) if (this.p.kind[pc] !== K.LDDW2) this.insn(pc);
  }

  /** a one-block loop (block k), versioned: see loopPlan */
  versionedLoop(plan: LoopPlan, k: number): void {
    const b = this.b;
    const ctl = this.ctl;
    const p = this.p;
    const cost = p.cost[plan.s]!;
    b.byte(OP.block).byte(T.void);
    ctl.push(`vx${k}`);
    b.byte(OP.block).byte(T.void);
    ctl.push(`vc${k}`);
    b.byte(OP.block).byte(T.void);
    ctl.push(`vf${k}`);
    this.loopTest(plan);
    this.hintIf(true);
    b.byte(OP.br_if).u32(ctl.depth(`vf${k}`));
    // one checked iteration (fills the caches), then the test again
    this.charge(plan.s, cost);
    this.loopBody(plan);
    this.condition(plan.last);
    b.byte(OP.i32_eqz).byte(OP.br_if).u32(ctl.depth(`vx${k}`));
    this.loopTest(plan);
    b.byte(OP.i32_eqz).byte(OP.br_if).u32(ctl.depth(`vc${k}`));
    b.byte(OP.end);
    ctl.pop();
    // fast: n iterations charged at once, no checks
    b.byte(OP.local_get).u32(L_B).byte(OP.local_get).u32(L_N);
    this.i64(Math.abs(cost));
    b.byte(OP.i64_mul).byte(OP.i64_sub).byte(OP.local_set).u32(L_B);
    b.byte(OP.loop).byte(T.void);
    ctl.push(`vl${k}`);
    this.unchecked = plan.now;
    this.loopBody(plan);
    this.unchecked = undefined;
    this.condition(plan.last);
    b.byte(OP.br_if).u32(ctl.depth(`vl${k}`));
    b.byte(OP.end);
    ctl.pop();
    b.byte(OP.br).u32(ctl.depth(`vx${k}`));
    b.byte(OP.end);
    ctl.pop();
    // checked, as any loop
    b.byte(OP.loop).byte(T.void);
    ctl.push(`l${k}`);
    this.charge(plan.s, cost);
    this.loopBody(plan);
    this.condition(plan.last);
    b.byte(OP.br_if).u32(ctl.depth(`l${k}`));
    b.byte(OP.end);
    ctl.pop();
    b.byte(OP.end);
    ctl.pop();
  }

  /** leaves the checked i32 address of [reg + off, +w) on the stack; returns the memarg offset to use */
  addr(reg: number, off: number, w: number, write: boolean, pc: number): number {
    const b = this.b;
    if (reg === 10 && off >= -STACK_FRAME_SIZE && off <= -w) {
      // inside the current frame: no check
      b.byte(OP.local_get).u32(L_FP);
      return off + STACK_FRAME_SIZE;
    }
    if (this.unchecked !== undefined) {
      // checked for every iteration by the versioned loop's entry test; the address is below 2^32, so
      // its low half is enough (32-bit arithmetic from the registers it derives from, when known)
      const f = this.unchecked.get(pc);
      if (f !== undefined) {
        this.i32(Number(BigInt.asIntN(32, f.k)));
        for (let j = 0; j <= 10; j++) {
          const c = f.c[j]!;
          if (c === 0) continue;
          this.get(j);
          b.byte(OP.i32_wrap_i64);
          if (c !== 1) {
            this.i32(c);
            b.byte(OP.i32_mul);
          }
          b.byte(OP.i32_add);
        }
        return 0;
      }
      this.get(reg);
      if (off !== 0) {
        this.i64(off);
        b.byte(OP.i64_add);
      }
      b.byte(OP.i32_wrap_i64);
      return 0;
    }
    const LO = write ? L_WLO : L_RLO;
    const LIM = write ? L_WLIM : L_RLIM;
    this.get(reg);
    if (off !== 0) {
      this.i64(off);
      b.byte(OP.i64_add);
    }
    b.byte(OP.local_tee).u32(L_T0);
    // fast path: the region this kind of access hit last in this function
    b.byte(OP.local_get).u32(LO).byte(OP.i64_sub).byte(OP.local_get).u32(LIM).byte(OP.i64_lt_u);
    this.hintIf(true);
    b.byte(OP.if).byte(T.i32);
    b.byte(OP.local_get).u32(L_T0).byte(OP.i32_wrap_i64);
    b.byte(OP.else);
    this.lookup(w, write, pc, LO, LIM);
    b.byte(OP.local_get).u32(L_T0).byte(OP.i32_wrap_i64);
    b.byte(OP.end);
    return 0;
  }

  /** call the memory fault import for the address in T0 (never returns) */
  memFault(w: number, write: boolean, pc: number): void {
    const b = this.b;
    b.byte(OP.local_get).u32(L_T0);
    this.i32(w | (write ? 0x10 : 0));
    this.i32(pc);
    b.byte(OP.local_get).u32(P_DEPTH);
    b.byte(OP.call).u32(F_FAULT_MEM).byte(OP.unreachable);
  }

  /**
   * Slow path, inline (no returning call, so nothing needs spilling around it): binary search of the
   * region table in linear memory for the region holding [T0, T0 + w); fault unless found (and writable
   * for a store; for the stack, not below the current frame); else cache it in LO/LIM.
   */
  lookup(w: number, write: boolean, pc: number, LO: number, LIM: number): void {
    const b = this.b;
    const faultIf = (): void => {
      this.hintIf(false);
      b.byte(OP.if).byte(T.void);
      this.memFault(w, write, pc);
      b.byte(OP.end);
    };
    // above 4 GiB: nothing there
    b.byte(OP.local_get).u32(L_T0);
    this.i64(0xffffffff);
    b.byte(OP.i64_gt_u);
    faultIf();
    b.byte(OP.local_get).u32(L_T0).byte(OP.i32_wrap_i64).byte(OP.local_set).u32(L_A);
    // I0 = number of entries with start <= a (binary search), I1 = hi
    this.i32(0);
    b.byte(OP.local_set).u32(L_I0);
    this.i32(TABLE_INFO);
    b.byte(OP.i32_load).u32(2).u32(0).byte(OP.local_set).u32(L_I1);
    b.byte(OP.block).byte(T.void).byte(OP.loop).byte(T.void);
    b.byte(OP.local_get).u32(L_I0).byte(OP.local_get).u32(L_I1).byte(OP.i32_ge_u).byte(OP.br_if).u32(1);
    b.byte(OP.local_get).u32(L_I0).byte(OP.local_get).u32(L_I1).byte(OP.i32_add);
    this.i32(1);
    b.byte(OP.i32_shr_u).byte(OP.local_set).u32(L_I2);
    this.i32(TABLE_INFO);
    b.byte(OP.i32_load).u32(2).u32(4).byte(OP.local_get).u32(L_I2);
    this.i32(4);
    b.byte(OP.i32_shl).byte(OP.i32_add).byte(OP.i32_load).u32(2).u32(0);
    b.byte(OP.local_get).u32(L_A).byte(OP.i32_le_u);
    b.byte(OP.if).byte(T.void);
    b.byte(OP.local_get).u32(L_I2);
    this.i32(1);
    b.byte(OP.i32_add).byte(OP.local_set).u32(L_I0);
    b.byte(OP.else);
    b.byte(OP.local_get).u32(L_I2).byte(OP.local_set).u32(L_I1);
    b.byte(OP.end);
    b.byte(OP.br).u32(0);
    b.byte(OP.end).byte(OP.end);
    // no region starts at or below a
    b.byte(OP.local_get).u32(L_I0).byte(OP.i32_eqz);
    faultIf();
    // I2 = address of the entry
    this.i32(TABLE_INFO);
    b.byte(OP.i32_load).u32(2).u32(4).byte(OP.local_get).u32(L_I0);
    this.i32(1);
    b.byte(OP.i32_sub);
    this.i32(4);
    b.byte(OP.i32_shl).byte(OP.i32_add).byte(OP.local_set).u32(L_I2);
    // a + w > end: outside (or straddling the end)
    b.byte(OP.local_get).u32(L_T0);
    this.i64(w);
    b.byte(OP.i64_add).byte(OP.local_get).u32(L_I2).byte(OP.i32_load).u32(2).u32(4).byte(OP.i64_extend_i32_u).byte(OP.i64_gt_u);
    faultIf();
    if (write) {
      b.byte(OP.local_get).u32(L_I2).byte(OP.i32_load).u32(2).u32(8);
      this.i32(REGION_WRITABLE);
      b.byte(OP.i32_and).byte(OP.i32_eqz);
      faultIf();
    }
    // the stack: only this frame and its callers' ([r10 - 512, top)); cache that window
    b.byte(OP.local_get).u32(L_I2).byte(OP.i32_load).u32(2).u32(8);
    this.i32(REGION_STACK);
    b.byte(OP.i32_and).byte(OP.if).byte(T.void);
    b.byte(OP.local_get).u32(L_A).byte(OP.local_get).u32(L_FP).byte(OP.i32_lt_u);
    faultIf();
    b.byte(OP.local_get).u32(L_FP).byte(OP.i64_extend_i32_u).byte(OP.local_set).u32(LO);
    b.byte(OP.else);
    b.byte(OP.local_get).u32(L_I2).byte(OP.i32_load).u32(2).u32(0).byte(OP.i64_extend_i32_u).byte(OP.local_set).u32(LO);
    b.byte(OP.end);
    // LIM = size - 7 when the region holds 8 bytes or more, else 0 (then every access looks it up)
    b.byte(OP.local_get).u32(L_I2).byte(OP.i32_load).u32(2).u32(4).byte(OP.i64_extend_i32_u).byte(OP.local_get).u32(LO).byte(OP.i64_sub).byte(OP.local_tee).u32(L_T1);
    this.i64(8);
    b.byte(OP.i64_lt_u).byte(OP.if).byte(T.i64);
    this.i64(0);
    b.byte(OP.else).byte(OP.local_get).u32(L_T1);
    this.i64(7);
    b.byte(OP.i64_sub).byte(OP.end).byte(OP.local_set).u32(LIM);
  }

  memarg(align: number, offset: number): void {
    this.b.u32(align).u32(offset);
  }

  insn(pc: number): void {
    const p = this.p;
    const b = this.b;
    const op = p.op[pc]!;
    const d = p.dst[pc]!;
    const s = p.src[pc]!;
    const off = p.off[pc]!;
    const imm = p.imm[pc]!;
    const c = op & 7;
    const code = op & 0xf0;
    const x = (op & 0x08) !== 0;
    switch (c) {
      case CLS.ALU64:
        return this.alu64(d, s, off, imm, code, x);
      case CLS.ALU:
        return this.alu32(d, s, off, imm, code, x);
      case CLS.JMP:
      case CLS.JMP32:
        return this.jmp(pc, op, d, s, off, imm, c, code, x);
      case CLS.LD: {
        if (op === OP_LDDW) {
          const v = (BigInt(p.kHi[pc]!) << 32n) | BigInt(p.kLo[pc]! >>> 0);
          this.i64(v);
          this.set(d);
          return;
        }
        const w = op & 0x10 ? 1 : op & 0x08 ? 2 : 4;
        this.flushBudget(); // a packet exit ends the run here
        if ((op & 0xe0) === MODE.IND) {
          this.get(s);
          b.byte(OP.i32_wrap_i64);
          this.i32(imm);
          b.byte(OP.i32_add);
        } else this.i32(imm);
        this.i32(w);
        this.i32(pc);
        b.byte(OP.call).u32(F_LDABS);
        this.set(0);
        return;
      }
      case CLS.LDX: {
        const w = [4, 2, 1, 8][(op >> 3) & 3]!;
        const sx = (op & 0xe0) === MODE.MEMSX;
        const o = this.addr(s, off, w, false, pc);
        const ld = sx ? [OP.i64_load32_s, OP.i64_load16_s, OP.i64_load8_s][(op >> 3) & 3]! : [OP.i64_load32_u, OP.i64_load16_u, OP.i64_load8_u, OP.i64_load][(op >> 3) & 3]!;
        b.byte(ld);
        this.memarg(0, o);
        this.set(d);
        return;
      }
      case CLS.ST:
      case CLS.STX: {
        const szc = (op >> 3) & 3;
        const w = [4, 2, 1, 8][szc]!;
        const st = [OP.i64_store32, OP.i64_store16, OP.i64_store8, OP.i64_store][szc]!;
        if ((op & 0xe0) === MODE.ATOMIC) return this.atomic(pc, d, s, off, imm, w);
        const o = this.addr(d, off, w, true, pc);
        if (c === CLS.ST) this.i64(imm);
        else this.get(s);
        b.byte(st);
        this.memarg(0, o);
        return;
      }
    }
  }

  atomic(pc: number, d: number, s: number, off: number, imm: number, w: number): void {
    const b = this.b;
    const ld = w === 4 ? OP.i64_load32_u : OP.i64_load;
    const stOp = w === 4 ? OP.i64_store32 : OP.i64_store;
    const o = this.addr(d, off, w, true, pc);
    if (o !== 0) {
      this.i32(o);
      b.byte(OP.i32_add);
    }
    b.byte(OP.local_set).u32(L_A);
    // old value -> T1
    b.byte(OP.local_get).u32(L_A).byte(ld);
    this.memarg(0, 0);
    b.byte(OP.local_set).u32(L_T1);
    if (imm === 0xf1) {
      // cmpxchg: if old == r0 (32: low halves) store src; r0 = old
      b.byte(OP.local_get).u32(L_T1);
      if (w === 4) {
        // compare the low 32 bits
        b.byte(OP.i32_wrap_i64);
        this.get(0);
        b.byte(OP.i32_wrap_i64).byte(OP.i32_eq);
      } else {
        this.get(0);
        b.byte(OP.i64_eq);
      }
      b.byte(OP.if).byte(T.void);
      b.byte(OP.local_get).u32(L_A);
      this.get(s);
      b.byte(stOp);
      this.memarg(0, 0);
      b.byte(OP.end);
      b.byte(OP.local_get).u32(L_T1);
      this.set(0);
      return;
    }
    b.byte(OP.local_get).u32(L_A);
    if (imm === 0xe1) {
      this.get(s);
    } else {
      b.byte(OP.local_get).u32(L_T1);
      this.get(s);
      const base = imm & ~1;
      b.byte(base === 0x00 ? OP.i64_add : base === 0x40 ? OP.i64_or : base === 0x50 ? OP.i64_and : OP.i64_xor);
    }
    b.byte(stOp);
    this.memarg(0, 0);
    if (imm & 1) {
      b.byte(OP.local_get).u32(L_T1);
      this.set(s);
    }
  }

  alu64(d: number, s: number, off: number, imm: number, code: number, x: boolean): void {
    const b = this.b;
    const src = (): void => (x ? this.get(s) : this.i64(imm));
    const simple = ALU64[code];
    if (simple !== undefined) {
      this.get(d);
      if (code === ALU_OP.LSH || code === ALU_OP.RSH || code === ALU_OP.ARSH) {
        if (x) this.get(s);
        else this.i64(imm & 63);
      } else src();
      b.byte(simple);
      this.set(d);
      return;
    }
    switch (code) {
      case ALU_OP.MOV:
        if (!x) this.i64(imm);
        else {
          this.get(s);
          if (off === 8) b.byte(OP.i64_extend8_s);
          else if (off === 16) b.byte(OP.i64_extend16_s);
          else if (off === 32) b.byte(OP.i64_extend32_s);
        }
        this.set(d);
        return;
      case ALU_OP.NEG:
        this.i64(0);
        this.get(d);
        b.byte(OP.i64_sub);
        this.set(d);
        return;
      case ALU_OP.DIV:
      case ALU_OP.MOD: {
        const signed = off === 1;
        const div = code === ALU_OP.DIV;
        if (!x) {
          if (imm === 0) {
            if (div) {
              this.i64(0);
              this.set(d);
            }
            return;
          }
          if (signed && imm === -1) {
            if (div) {
              this.i64(0);
              this.get(d);
              b.byte(OP.i64_sub);
            } else this.i64(0);
            this.set(d);
            return;
          }
          this.get(d);
          this.i64(imm);
          b.byte(div ? (signed ? OP.i64_div_s : OP.i64_div_u) : signed ? OP.i64_rem_s : OP.i64_rem_u);
          this.set(d);
          return;
        }
        // register divisor: zero and (signed) -1 checks
        this.get(s);
        b.byte(OP.i64_eqz).byte(OP.if).byte(T.i64);
        if (div) this.i64(0);
        else this.get(d);
        b.byte(OP.else);
        if (signed) {
          this.get(s);
          this.i64(-1);
          b.byte(OP.i64_eq).byte(OP.if).byte(T.i64);
          if (div) {
            this.i64(0);
            this.get(d);
            b.byte(OP.i64_sub);
          } else this.i64(0);
          b.byte(OP.else);
        }
        this.get(d);
        this.get(s);
        b.byte(div ? (signed ? OP.i64_div_s : OP.i64_div_u) : signed ? OP.i64_rem_s : OP.i64_rem_u);
        if (signed) b.byte(OP.end);
        b.byte(OP.end);
        this.set(d);
        return;
      }
      case ALU_OP.END: {
        // bswap16/32/64
        this.bswap(d, imm);
        return;
      }
    }
  }

  bswap(d: number, width: number): void {
    const b = this.b;
    if (width === 16) {
      this.get(d);
      b.byte(OP.i32_wrap_i64).byte(OP.local_tee).u32(L_A);
      this.i32(0xff);
      b.byte(OP.i32_and);
      this.i32(8);
      b.byte(OP.i32_shl).byte(OP.local_get).u32(L_A);
      this.i32(8);
      b.byte(OP.i32_shr_u);
      this.i32(0xff);
      b.byte(OP.i32_and).byte(OP.i32_or).byte(OP.i64_extend_i32_u);
      this.set(d);
    } else if (width === 32) {
      this.get(d);
      b.byte(OP.i32_wrap_i64).byte(OP.local_tee).u32(L_A);
      this.i32(8);
      b.byte(OP.i32_rotl);
      this.i32(0x00ff00ff);
      b.byte(OP.i32_and).byte(OP.local_get).u32(L_A);
      this.i32(8);
      b.byte(OP.i32_rotr);
      this.i32(0xff00ff00 | 0);
      b.byte(OP.i32_and).byte(OP.i32_or).byte(OP.i64_extend_i32_u);
      this.set(d);
    } else {
      // x = ((x >> 8) & M8) | ((x & M8) << 8); x = ((x >> 16) & M16) | ((x & M16) << 16); x = rotl(x, 32)
      const M8 = 0x00ff00ff00ff00ffn;
      const M16 = 0x0000ffff0000ffffn;
      this.get(d);
      b.byte(OP.local_tee).u32(L_T1);
      this.i64(8);
      b.byte(OP.i64_shr_u);
      this.i64(M8);
      b.byte(OP.i64_and).byte(OP.local_get).u32(L_T1);
      this.i64(M8);
      b.byte(OP.i64_and);
      this.i64(8);
      b.byte(OP.i64_shl).byte(OP.i64_or).byte(OP.local_tee).u32(L_T1);
      this.i64(16);
      b.byte(OP.i64_shr_u);
      this.i64(M16);
      b.byte(OP.i64_and).byte(OP.local_get).u32(L_T1);
      this.i64(M16);
      b.byte(OP.i64_and);
      this.i64(16);
      b.byte(OP.i64_shl).byte(OP.i64_or);
      this.i64(32);
      b.byte(OP.i64_rotl);
      this.set(d);
    }
  }

  alu32(d: number, s: number, off: number, imm: number, code: number, x: boolean): void {
    const b = this.b;
    const dst32 = (): void => {
      this.get(d);
      b.byte(OP.i32_wrap_i64);
    };
    const src32 = (): void => {
      if (x) {
        this.get(s);
        b.byte(OP.i32_wrap_i64);
      } else this.i32(imm);
    };
    const done = (): void => {
      b.byte(OP.i64_extend_i32_u);
      this.set(d);
    };
    const simple = ALU32[code];
    if (simple !== undefined) {
      dst32();
      src32();
      b.byte(simple);
      done();
      return;
    }
    switch (code) {
      case ALU_OP.MOV:
        if (!x) {
          this.i64(imm >>> 0);
          this.set(d);
          return;
        }
        this.get(s);
        b.byte(OP.i32_wrap_i64);
        if (off === 8) b.byte(OP.i32_extend8_s);
        else if (off === 16) b.byte(OP.i32_extend16_s);
        done();
        return;
      case ALU_OP.NEG:
        this.i32(0);
        dst32();
        b.byte(OP.i32_sub);
        done();
        return;
      case ALU_OP.DIV:
      case ALU_OP.MOD: {
        const signed = off === 1;
        const div = code === ALU_OP.DIV;
        const opc = div ? (signed ? OP.i32_div_s : OP.i32_div_u) : signed ? OP.i32_rem_s : OP.i32_rem_u;
        if (!x) {
          if (imm === 0) {
            if (div) this.i32(0);
            else dst32();
            done();
            return;
          }
          if (signed && imm === -1) {
            if (div) {
              this.i32(0);
              dst32();
              b.byte(OP.i32_sub);
            } else this.i32(0);
            done();
            return;
          }
          dst32();
          this.i32(imm);
          b.byte(opc);
          done();
          return;
        }
        src32();
        b.byte(OP.local_tee).u32(L_A).byte(OP.i32_eqz).byte(OP.if).byte(T.i32);
        if (div) this.i32(0);
        else dst32();
        b.byte(OP.else);
        if (signed) {
          b.byte(OP.local_get).u32(L_A);
          this.i32(-1);
          b.byte(OP.i32_eq).byte(OP.if).byte(T.i32);
          if (div) {
            this.i32(0);
            dst32();
            b.byte(OP.i32_sub);
          } else this.i32(0);
          b.byte(OP.else);
        }
        dst32();
        b.byte(OP.local_get).u32(L_A).byte(opc);
        if (signed) b.byte(OP.end);
        b.byte(OP.end);
        done();
        return;
      }
      case ALU_OP.END: {
        if (!x) {
          // le: truncate
          if (imm === 64) return;
          this.get(d);
          this.i64(imm === 16 ? 0xffff : 0xffffffff);
          b.byte(OP.i64_and);
          this.set(d);
          return;
        }
        this.bswap(d, imm);
        return;
      }
    }
  }

  jmp(pc: number, op: number, d: number, s: number, off: number, imm: number, c: number, code: number, x: boolean): void {
    const b = this.b;
    void d;
    void s;
    void x;
    if (code === JMP_OP.JA) {
      this.jump(pc + 1 + (c === CLS.JMP ? off : imm), false);
      return;
    }
    if (code === JMP_OP.EXIT) {
      this.checkBudget(pc);
      this.flushBudget();
      this.get(0);
      b.byte(OP.return);
      return;
    }
    if (code === JMP_OP.CALL) return this.call(pc, op);
    if (off === 0) return; // both ways lead to the next instruction
    this.condition(pc);
    this.jump(pc + 1 + off, true);
  }

  /** the i32 condition of the conditional jump at pc (1: taken) */
  condition(pc: number): void {
    const p = this.p;
    const b = this.b;
    const op = p.op[pc]!;
    const d = p.dst[pc]!;
    const s = p.src[pc]!;
    const imm = p.imm[pc]!;
    const code = op & 0xf0;
    const x = (op & 0x08) !== 0;
    if ((op & 7) === CLS.JMP) {
      this.get(d);
      if (x) this.get(s);
      else this.i64(imm);
      if (code === JMP_OP.JSET) b.byte(OP.i64_and).byte(OP.i64_eqz).byte(OP.i32_eqz);
      else b.byte(CMP64[code]!);
    } else {
      this.get(d);
      b.byte(OP.i32_wrap_i64);
      if (x) {
        this.get(s);
        b.byte(OP.i32_wrap_i64);
      } else this.i32(imm);
      if (code === JMP_OP.JSET) b.byte(OP.i32_and).byte(OP.i32_eqz).byte(OP.i32_eqz);
      else b.byte(CMP32[code]!);
    }
  }

  localCall(pc: number, target: number): void {
    const b = this.b;
    b.byte(OP.local_get).u32(P_DEPTH);
    this.i32(MAX_CALL_DEPTH - 1);
    b.byte(OP.i32_ge_u).byte(OP.if).byte(T.void);
    this.i32(pc);
    b.byte(OP.call).u32(F_FAULT_STACK).byte(OP.unreachable);
    b.byte(OP.end);
    this.flushBudget();
    for (let r = 1; r <= 5; r++) this.get(r);
    b.byte(OP.local_get).u32(P_DEPTH);
    this.i32(1);
    b.byte(OP.i32_add);
    b.byte(OP.call).u32(this.funcIndex.get(target)!);
    this.set(0);
    this.reloadBudget();
    this.resetCaches(); // the callee may have called helpers
  }

  call(pc: number, op: number): void {
    const p = this.p;
    const b = this.b;
    const kind = p.kind[pc]!;
    void op;
    if (kind === K.LOCAL_CALL) {
      this.localCall(pc, pc + 1 + p.imm[pc]!);
      return;
    }
    if (kind === K.HELPER) {
      for (let r = 1; r <= 5; r++) this.get(r);
      this.i32(pc);
      b.byte(OP.call).u32(this.helperIndex.get(p.helperIdAt[pc]!)!);
      this.set(0);
      this.resetCaches();
      return;
    }
    if (kind === K.TAIL_CALL) {
      this.flushBudget();
      this.get(1);
      this.get(2);
      this.get(3);
      this.i32(pc);
      b.byte(OP.local_get).u32(P_DEPTH);
      b.byte(OP.call).u32(F_TAIL);
      this.set(0);
      b.byte(OP.global_get).u32(G_TC).byte(OP.if).byte(T.void);
      this.i32(0);
      b.byte(OP.global_set).u32(G_TC);
      this.get(0);
      b.byte(OP.return);
      b.byte(OP.end);
      this.reloadBudget();
      this.resetCaches();
      return;
    }
    // callx
    const r = p.callxRegs.get(pc)!;
    const targets = [...p.addressTaken].sort((a, c) => a - c);
    for (const t of targets) {
      this.get(r);
      this.i64(CODE_BASE + BigInt(t) * 8n);
      b.byte(OP.i64_eq).byte(OP.if).byte(T.void);
      this.localCall(pc, t);
      b.byte(OP.else);
    }
    this.get(r);
    for (let k = 1; k <= 5; k++) this.get(k);
    this.i32(pc);
    b.byte(OP.call).u32(F_CALLX);
    this.set(0);
    this.resetCaches();
    for (let k = 0; k < targets.length; k++) b.byte(OP.end);
  }
}

export type { Memory };
