// The emitter: Gen writes one Wasm function body, instruction by instruction (ALU, memory accesses with
// their checks, calls, the budget and its refunds); Ctl tracks the open Wasm blocks and loops by label.
// Control flow between blocks is structured.ts's or dispatch.ts's, versioned loops versioned.ts's.

import { MAX_CALL_DEPTH, STACK_FRAME_SIZE } from '../api.js';
import { ALU_OP, CLS, JMP_OP, MODE, OP_LDDW } from '../isa.js';
import { REGION_STACK, REGION_WRITABLE, STACK_TOP, TABLE_INFO } from '../memory.js';
import { CODE_BASE, K, type LoadedProgram } from '../program.js';
import { Bytes, OP, T } from '../../../../src/wasm/writer.js';
import type { Form } from './induction.js';
import {
  F_CALLX, F_FAULT_BUDGET, F_FAULT_MEM, F_FAULT_STACK, F_LDABS, F_TAIL, G_BUDGET, G_TC, L_A, L_B, L_C, L_FP, L_I0, L_I1, L_I2,
  L_LABEL, L_R10, L_RF, L_RLIM, L_RLO, L_SAVE, L_T0, L_T1, L_WLIM, L_WLO, P_DEPTH, REG,
} from './indices.js';

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

/** the open Wasm control constructs, innermost last, with O(1) label depth */
export class Ctl {
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

export class Gen {
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
        return this.jmp(pc, off, imm, c, code);
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

  jmp(pc: number, off: number, imm: number, c: number, code: number): void {
    const b = this.b;
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
    if (code === JMP_OP.CALL) return this.call(pc);
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

  call(pc: number): void {
    const p = this.p;
    const b = this.b;
    const kind = p.kind[pc]!;
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

