// The compiler: eBPF -> one WebAssembly module per program, run by V8.
//
// * Each eBPF function (the entry and every bpf-to-bpf call / code_addr target) becomes one Wasm
//   function (r1..r5, depth) -> r0 over the code reachable from its entry; r0..r10 are i64 locals, so
//   r6..r9 survive calls for free. Code reachable from two entries is compiled into both.
// * Control flow: the function's basic blocks (the program's leaders, shared with the interpreter) in
//   address order inside nested Wasm blocks; a forward jump is a direct `br` out to the target's block,
//   a backward jump sets a label local and branches to a loop whose head dispatches with br_table.
// * Memory: the VmMemory's WebAssembly.Memory is imported. Every access is checked: r10-relative
//   accesses inside the current frame need no check, others test a one-region cache (separate for loads
//   and stores, two globals each) and the stack range inline, then call a slow path that looks the
//   region up (and refills the cache) or throws the fault naming the instruction.
// * Budget: an i64 local charged at every block entry (the same leaders the interpreter charges at),
//   synced with a global around calls.
// * Helpers, tail calls, callx of helper ids and legacy packet loads are imported JS functions.
// Modules are cached by program hash + resolved constants; instances per loaded program.

import { MAX_CALL_DEPTH, STACK_FRAME_SIZE, VmError } from './api.js';
import { ALU_OP, CLS, JMP_OP, MODE, OP_LDDW } from './isa.js';
import { accessFault, STACK_TOP, type Memory } from './memory.js';
import { CODE_BASE, K, type LoadedProgram } from './program.js';
import { budgetError, callHelper, callxHelper, PacketExit, tailTarget, type RunState } from './state.js';
import { buildModule, Bytes, OP, T, type FuncType } from './wasm.js';
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
const L_SLO = 18;
const L_SLEN = 19;
const L_RLO = 20;
const L_RLIM = 21;
const L_WLO = 22;
const L_WLIM = 23;
const L_SAVE = 24;
const L_C = 25;
const REG = [L_R0, 0, 1, 2, 3, 4, L_R6, L_R6 + 1, L_R6 + 2, L_R6 + 3, L_R10];

// globals
const G_BUDGET = 0;
const G_RLO = 1;
const G_RLIM = 2;
const G_WLO = 3;
const G_WLIM = 4;
const G_TC = 5;

// imported functions
const F_FAULT_BUDGET = 0;
const F_FAULT_STACK = 1;
const F_SLOW_R = 2;
const F_SLOW_W = 3;
const F_TAIL = 4;
const F_CALLX = 5;
const F_LDABS = 6;
const F_HELPERS = 7;

interface JitExports {
  run: (r1: bigint, r2: bigint, r3: bigint, r4: bigint, r5: bigint, depth: number) => bigint;
  budget: WebAssembly.Global;
  rlim: WebAssembly.Global;
  wlim: WebAssembly.Global;
  tc: WebAssembly.Global;
  rlo: WebAssembly.Global;
  wlo: WebAssembly.Global;
}

interface Compiled {
  module: WebAssembly.Module;
  ms: number;
  bytes: number;
  /** functions compiled with the br_table dispatcher (irreducible control flow) */
  dispatched: number;
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
    const slow = (write: boolean) => (addr: bigint, w: number, pc: number, depth: number): number => {
      const a = BigInt.asUintN(64, addr);
      const r = a < 1n << 32n ? mem.findNum(Number(a), w) : undefined;
      const stackLo = STACK_TOP - (depth + 1) * STACK_FRAME_SIZE;
      if (r === undefined || (write && !r.writable) || (r === mem.stack && Number(a) < stackLo)) {
        throw new VmError('memory', accessFault(mem, Number(a & 0xffffffffn), Number(a >> 32n) | 0, w, write, stackLo), { pc, insn: p.text(pc), program: p.name });
      }
      if (r === mem.stack) return Number(a);
      const ex = self.ex;
      if (write) {
        ex.wlo.value = BigInt(r.addr);
        ex.wlim.value = BigInt(r.size >= 8 ? r.size - 7 : 0);
      } else {
        ex.rlo.value = BigInt(r.addr);
        ex.rlim.value = BigInt(r.size >= 8 ? r.size - 7 : 0);
      }
      return Number(a);
    };
    const h: Record<string, WebAssembly.ImportValue> = {
      fault_budget: (pc: number): void => {
        throw budgetError(p, pc, state());
      },
      fault_stack: (pc: number): void => {
        throw new VmError('stack', `call depth exceeds ${MAX_CALL_DEPTH} frames`, { pc, insn: p.text(pc), program: p.name });
      },
      slow_r: slow(false),
      slow_w: slow(true),
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
    ex.rlim.value = 0n;
    ex.wlim.value = 0n;
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

function generate(p: LoadedProgram): Uint8Array<ArrayBuffer> {
  const types = new Types();
  const tFault = types.get([T.i32], []);
  const tSlow = types.get([T.i64, T.i32, T.i32, T.i32], [T.i32]);
  const tTail = types.get([T.i64, T.i64, T.i64, T.i32, T.i32], [T.i64]);
  const tCallx = types.get([T.i64, T.i64, T.i64, T.i64, T.i64, T.i64, T.i32], [T.i64]);
  const tLdabs = types.get([T.i32, T.i32, T.i32], [T.i64]);
  const tHelper = types.get([T.i64, T.i64, T.i64, T.i64, T.i64, T.i32], [T.i64]);
  const tFunc = types.get([T.i64, T.i64, T.i64, T.i64, T.i64, T.i32], [T.i64]);
  const funcImports = [
    { module: 'h', name: 'fault_budget', type: tFault },
    { module: 'h', name: 'fault_stack', type: tFault },
    { module: 'h', name: 'slow_r', type: tSlow },
    { module: 'h', name: 'slow_w', type: tSlow },
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
  void F_HELPERS;

  const funcs = p.functions.map((entry) => ({
    type: tFunc,
    locals: [
      [9, T.i64],
      [3, T.i32],
      [7, T.i64],
      [1, T.i32],
    ] as [number, number][],
    body: genFunction(p, entry, funcIndex, helperIndex),
  }));
  return buildModule({
    types: types.list,
    funcImports,
    memoryImport: { module: 'm', name: 'mem' },
    globals: [
      { type: T.i64, init: 0n },
      { type: T.i64, init: 0n },
      { type: T.i64, init: 0n },
      { type: T.i64, init: 0n },
      { type: T.i64, init: 0n },
      { type: T.i32, init: 0 },
    ],
    funcs,
    exports: [
      { name: 'run', kind: 'func', index: firstFunc },
      { name: 'budget', kind: 'global', index: G_BUDGET },
      { name: 'rlo', kind: 'global', index: G_RLO },
      { name: 'rlim', kind: 'global', index: G_RLIM },
      { name: 'wlo', kind: 'global', index: G_WLO },
      { name: 'wlim', kind: 'global', index: G_WLIM },
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

function genFunction(p: LoadedProgram, entry: number, funcIndex: Map<number, number>, helperIndex: Map<number, number>): Uint8Array<ArrayBuffer> {
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
    g.ctl = [];
    g.prologue();
    dispatch(p, g, nb, starts, ends, entryBlock, blockOf);
    stats.dispatched++;
  }
  return g.b.out().slice();
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
 * Structured control flow (reducible functions): a Wasm loop per loop header (spanning to its last back
 * edge), a Wasm block per forward target (opened at the function start or at the header of the innermost
 * loop holding the target), branches straight to them. Short side-effect-free blocks skipped by a
 * conditional jump become selects. Returns false when the function does not fit (irreducible flow).
 */
function structured(p: LoadedProgram, g: Gen, nb: number, starts: number[], ends: number[], entryBlock: number, jumpTo: (k: number) => number, blockOf: Map<number, number>): boolean {
  if (entryBlock !== 0) return false;
  const loops = new Map<number, number>(); // header -> last block
  const fwd = new Map<number, number[]>(); // target -> sources
  for (let k = 0; k < nb; k++) {
    const t = jumpTo(k);
    if (t < 0) continue;
    if (t <= k) loops.set(t, Math.max(loops.get(t) ?? t, k));
    else if (t !== k + 1) {
      let l = fwd.get(t);
      if (l === undefined) fwd.set(t, (l = []));
      l.push(k);
    }
  }
  // nest the loops properly: a loop that starts inside another must end inside it too, so the outer
  // one is stretched (headers from last to first: the inner ends are final when an outer one is done)
  const hs = [...loops.keys()].sort((a, b) => a - b);
  for (let i = hs.length - 1; i >= 0; i--) {
    let end = loops.get(hs[i]!)!;
    for (let j = i + 1; j < hs.length && hs[j]! <= end; j++) end = Math.max(end, loops.get(hs[j]!)!);
    loops.set(hs[i]!, end);
  }
  const innermost = (t: number): number => {
    let best = -1;
    for (const h of hs) if (h < t && t <= loops.get(h)! && h > best) best = h;
    return best;
  };
  const openAt = new Map<number, number[]>(); // position (-1: function start) -> targets to open there
  for (const [t, srcs] of fwd) {
    const at = innermost(t);
    if (srcs.some((s) => s < at)) return false; // a jump into the middle of a loop
    let l = openAt.get(at);
    if (l === undefined) openAt.set(at, (l = []));
    l.push(t);
  }
  // triangles: block k ends with a conditional jump to k + 2 over a short pure block k + 1
  const absorbed = new Uint8Array(nb);
  const select = new Uint8Array(nb);
  for (let k = 0; k + 2 < nb; k++) {
    if (absorbed[k] || jumpTo(k) !== k + 2) continue;
    const lp = ends[k]! - 1;
    const op = p.op[lp]!;
    if ((op & 0xf0) === JMP_OP.JA) continue;
    const s = starts[k + 1]!;
    const e = ends[k + 1]!;
    if (e !== starts[k + 2] || p.jumpTarget[s] || p.cost[s]! < 0 || p.functions.includes(s) || Math.abs(p.cost[s]!) > 6) continue;
    let ok = true;
    for (let pc = s; pc < e && ok; pc++) if (p.kind[pc] !== K.LDDW2 && !pure(p, pc)) ok = false;
    if (!ok) continue;
    select[k] = 1;
    absorbed[k + 1] = 1;
  }

  const b = g.b;
  const ctl = g.ctl;
  const openBlocks = (at: number): void => {
    const ts = (openAt.get(at) ?? []).sort((a, c) => c - a);
    for (const t of ts) {
      b.byte(OP.block).byte(T.void);
      ctl.push(`b${t}`);
    }
  };
  openBlocks(-1);
  for (let k = 0; k < nb; k++) {
    while (ctl.length > 0 && ctl[ctl.length - 1] === `b${k}`) {
      b.byte(OP.end);
      ctl.pop();
    }
    if (ctl.includes(`b${k}`)) return false; // improperly nested (should not happen)
    if (loops.has(k)) {
      b.byte(OP.loop).byte(T.void);
      ctl.push(`l${k}`);
    }
    openBlocks(k);
    if (absorbed[k]) continue;
    const s = starts[k]!;
    const e = ends[k]!;
    if (select[k]) {
      // block k up to its jump, the jump's condition into C, then block k+1 predicated on !C
      g.charge(s, p.cost[s]!);
      const jpc = ends[k]! - 1;
      for (let pc = s; pc < jpc; pc++) if (p.kind[pc] !== K.LDDW2) g.insn(pc);
      g.condition(jpc);
      b.byte(OP.local_set).u32(L_C);
      const s1 = starts[k + 1]!;
      g.chargeUnless(p.cost[s1]!);
      for (let pc = s1; pc < ends[k + 1]!; pc++) if (p.kind[pc] !== K.LDDW2) g.predicated(pc);
    } else {
      g.jumpLabel = (t: number, back: boolean) => (back ? `l${t}` : `b${t}`);
      g.blockIndex = k;
      g.blockOfPc = (pc: number) => blockOf.get(pc)!;
      emitBlock(p, g, s, e);
    }
    for (;;) {
      const top = ctl[ctl.length - 1];
      if (top === undefined || !top.startsWith('l') || loops.get(Number(top.slice(1))) !== k) break;
      b.byte(OP.end);
      ctl.pop();
    }
  }
  if (ctl.length !== 0) return false;
  b.byte(OP.unreachable);
  return true;
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

class Gen {
  b = new Bytes();
  /** open control constructs, innermost last: b<k> blocks, l<k> loops, 'dispatch', 'if' */
  ctl: string[] = [];
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
    b.byte(OP.local_get).u32(L_R10).byte(OP.i64_const).s64(BigInt(STACK_FRAME_SIZE)).byte(OP.i64_sub).byte(OP.local_tee).u32(L_SLO);
    b.byte(OP.i64_const).s64(BigInt(STACK_TOP)).byte(OP.local_get).u32(L_SLO).byte(OP.i64_sub).byte(OP.local_set).u32(L_SLEN);
    b.byte(OP.global_get).u32(G_BUDGET).byte(OP.local_set).u32(L_B);
    this.loadCaches();
  }

  loadCaches(): void {
    const b = this.b;
    b.byte(OP.global_get).u32(G_RLO).byte(OP.local_set).u32(L_RLO);
    b.byte(OP.global_get).u32(G_RLIM).byte(OP.local_set).u32(L_RLIM);
    b.byte(OP.global_get).u32(G_WLO).byte(OP.local_set).u32(L_WLO);
    b.byte(OP.global_get).u32(G_WLIM).byte(OP.local_set).u32(L_WLIM);
  }

  /** block entry: charge its instructions; at a loop header (cost < 0) also check the budget */
  charge(pc: number, cost: number): void {
    const b = this.b;
    b.byte(OP.local_get).u32(L_B);
    this.i64(Math.abs(cost));
    b.byte(OP.i64_sub).byte(OP.local_set).u32(L_B);
    if (cost < 0) this.checkBudget(pc);
  }

  /** charge a predicated block: nothing when C (the skipping jump was taken) */
  chargeUnless(cost: number): void {
    const b = this.b;
    b.byte(OP.local_get).u32(L_B);
    this.i64(0);
    this.i64(Math.abs(cost));
    b.byte(OP.local_get).u32(L_C).byte(OP.select).byte(OP.i64_sub).byte(OP.local_set).u32(L_B);
  }

  checkBudget(pc: number): void {
    const b = this.b;
    b.byte(OP.local_get).u32(L_B);
    this.i64(0);
    b.byte(OP.i64_lt_s).byte(OP.if).byte(T.void);
    b.byte(OP.local_get).u32(L_B).byte(OP.global_set).u32(G_BUDGET);
    this.i32(pc);
    b.byte(OP.call).u32(F_FAULT_BUDGET);
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
    this.b.byte(OP.local_get).u32(L_B).byte(OP.global_set).u32(G_BUDGET);
  }
  reloadBudget(): void {
    this.b.byte(OP.global_get).u32(G_BUDGET).byte(OP.local_set).u32(L_B);
  }
  /** after a helper: it may have freed regions */
  resetCaches(): void {
    const b = this.b;
    this.i64(0);
    b.byte(OP.local_tee).u32(L_RLIM).byte(OP.global_set).u32(G_RLIM);
    this.i64(0);
    b.byte(OP.local_tee).u32(L_WLIM).byte(OP.global_set).u32(G_WLIM);
  }

  depth(label: string): number {
    const i = this.ctl.lastIndexOf(label);
    if (i < 0) throw new Error(`jit: no open label ${label}`);
    return this.ctl.length - 1 - i;
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

  /** leaves the checked i32 address of [reg + off, +w) on the stack; returns the memarg offset to use */
  addr(reg: number, off: number, w: number, write: boolean, pc: number): number {
    const b = this.b;
    if (reg === 10 && off >= -STACK_FRAME_SIZE && off <= -w) {
      b.byte(OP.local_get).u32(L_FP);
      return off + STACK_FRAME_SIZE;
    }
    this.get(reg);
    if (off !== 0) {
      this.i64(off);
      b.byte(OP.i64_add);
    }
    b.byte(OP.local_tee).u32(L_T0);
    // the region this kind of access hit last (locals; refreshed by the slow path)
    b.byte(OP.local_get).u32(write ? L_WLO : L_RLO).byte(OP.i64_sub).byte(OP.local_get).u32(write ? L_WLIM : L_RLIM).byte(OP.i64_lt_u);
    b.byte(OP.if).byte(T.i32);
    b.byte(OP.local_get).u32(L_T0).byte(OP.i32_wrap_i64);
    b.byte(OP.else);
    // the stack: this frame and its callers' ([r10 - 512, STACK_TOP))
    b.byte(OP.local_get).u32(L_T0).byte(OP.local_get).u32(L_SLO).byte(OP.i64_sub);
    b.byte(OP.local_get).u32(L_SLEN);
    this.i64(w - 1);
    b.byte(OP.i64_sub).byte(OP.i64_lt_u).byte(OP.if).byte(T.i32);
    b.byte(OP.local_get).u32(L_T0).byte(OP.i32_wrap_i64);
    b.byte(OP.else);
    b.byte(OP.local_get).u32(L_T0);
    this.i32(w);
    this.i32(pc);
    b.byte(OP.local_get).u32(P_DEPTH);
    b.byte(OP.call).u32(write ? F_SLOW_W : F_SLOW_R);
    this.loadCaches();
    b.byte(OP.end).byte(OP.end);
    return 0;
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
    b.byte(OP.call).u32(F_FAULT_STACK);
    b.byte(OP.end);
    this.flushBudget();
    for (let r = 1; r <= 5; r++) this.get(r);
    b.byte(OP.local_get).u32(P_DEPTH);
    this.i32(1);
    b.byte(OP.i32_add);
    b.byte(OP.call).u32(this.funcIndex.get(target)!);
    this.set(0);
    this.reloadBudget();
    this.loadCaches(); // the callee's slow paths and helpers moved them
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
