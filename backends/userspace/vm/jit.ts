// The compiler: eBPF -> one WebAssembly module per program, run by V8. This file is its entry and
// runtime side: compileProgram / jitRun / jitInfo, the module cache, the instances and their imports.
// The code generation is in jit/ (module.ts builds the module; see backends/userspace/vm/README.md).
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
//   through a loop does not wait on every condition (see Gen.refunds in jit/emit.ts).
// * Loops whose accesses are affine in induction registers are versioned: a one-block counted loop
//   checks, once on entry, all its iterations' accesses against the region caches and the budget against
//   its trip count, then runs unchecked; a loop whose blocks form a chain (side exits allowed) runs
//   unchecked in chunks, each as long as the caches' windows and the budget allow, computed on entry to
//   the chunk (blocks under selects allowed). When the test fails the loop runs checked, as any other,
//   and tests again later (see loopPlan in jit/induction.ts and chain in jit/structured.ts).
// * Helpers, tail calls, callx of helper ids and legacy packet loads are imported JS functions.
// Modules are cached by program hash + resolved constants; instances per loaded program.

import v8 from 'node:v8';
import { MAX_CALL_DEPTH, STACK_FRAME_SIZE, VmError } from './api.js';
import { accessFault, STACK_TOP } from './memory.js';
import type { LoadedProgram } from './program.js';
import { budgetError, callHelper, callxHelper, PacketExit, tailTarget, type RunState } from './state.js';
import { interpret } from './interp.js';
import { generate } from './jit/module.js';

interface JitExports {
  run: (r1: bigint, r2: bigint, r3: bigint, r4: bigint, r5: bigint, depth: number) => bigint;
  budget: WebAssembly.Global;
  tc: WebAssembly.Global;
}

interface Compiled {
  module: WebAssembly.Module;
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
    const { bytes, dispatched } = generate(p);
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
    c = { module, bytes: bytes.length, dispatched };
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

