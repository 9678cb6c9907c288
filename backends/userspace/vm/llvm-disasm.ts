// The kernel/LLVM eBPF syntax printer (what llvm-objdump -d, bpftool and the verifier log print:
// `w0 = 0x1`, `if r1 == 0x0 goto +0x3`, `r0 = *(u64 *)(r1 + 0x8)`), one instruction at a time.
// Numbers are printed as llvm-objdump-16 prints them (signed hex); forms LLVM 16 has none for use the
// verifier's or LLVM 17+'s spelling (see README "Assembly syntax"). asm.ts reads all of it back.

import { ALU_OP, ATOMIC, CLS, JMP_OP, MODE, OP_LDDW, SRC_X, callxReg, decode, rawText } from './isa.js';

const cls = (op: number): number => op & 0x07;

/** signed hex as llvm-objdump prints immediates: 0x1f, -0x8 */
export const shex = (n: number | bigint): string => {
  const v = BigInt(n);
  return v < 0n ? `-0x${(-v).toString(16)}` : `0x${v.toString(16)}`;
};
const rel = (n: number): string => (n < 0 ? shex(n) : `+${shex(n)}`);
const memop = (r: number, off: number): string => `r${r} ${off < 0 ? '-' : '+'} ${shex(Math.abs(off))}`;

const ALU_SYM: Record<number, string> = {
  [ALU_OP.ADD]: '+=', [ALU_OP.SUB]: '-=', [ALU_OP.MUL]: '*=', [ALU_OP.DIV]: '/=', [ALU_OP.OR]: '|=', [ALU_OP.AND]: '&=',
  [ALU_OP.LSH]: '<<=', [ALU_OP.RSH]: '>>=', [ALU_OP.MOD]: '%=', [ALU_OP.XOR]: '^=', [ALU_OP.MOV]: '=', [ALU_OP.ARSH]: 's>>=',
};
const JMP_SYM: Record<number, string> = {
  [JMP_OP.JEQ]: '==', [JMP_OP.JGT]: '>', [JMP_OP.JGE]: '>=', [JMP_OP.JSET]: '&', [JMP_OP.JNE]: '!=', [JMP_OP.JSGT]: 's>',
  [JMP_OP.JSGE]: 's>=', [JMP_OP.JLT]: '<', [JMP_OP.JLE]: '<=', [JMP_OP.JSLT]: 's<', [JMP_OP.JSLE]: 's<=',
};
export const SIZE_TYPE = ['u32', 'u16', 'u8', 'u64'];
const ATOMIC_SYM: Record<number, string> = { [ATOMIC.ADD]: '+=', [ATOMIC.OR]: '|=', [ATOMIC.AND]: '&=', [ATOMIC.XOR]: '^=' };
const FETCH_NAME: Record<number, string> = {
  [ATOMIC.ADD | ATOMIC.FETCH]: 'add', [ATOMIC.OR | ATOMIC.FETCH]: 'or', [ATOMIC.AND | ATOMIC.FETCH]: 'and', [ATOMIC.XOR | ATOMIC.FETCH]: 'xor',
};

/** lddw pseudo sources in bpftool's spelling (src 3 and 4 have none there: ours) */
function pseudo(src: number, imm: number, next: number): string | undefined {
  const plus = next === 0 ? '' : next > 0 ? `+${shex(next)}` : shex(next);
  switch (src) {
    case 1: return `map[fd:${imm}]`;
    case 2: return `map[fd:${imm}][0]${plus === '' ? '+0x0' : plus}`;
    case 3: return `btf_var[${imm}]`;
    case 4: return `code[pc${rel(imm)}]`;
    case 5: return `map[idx:${imm}]`;
    case 6: return `map[idx:${imm}][0]${plus === '' ? '+0x0' : plus}`;
  }
  return undefined;
}

/** the text of the instruction at `pc` in LLVM syntax, or `.quad 0x...` for an invalid encoding */
export function disasmOneLlvm(bytes: Uint8Array, pc: number): string {
  const n = bytes.length >> 3;
  const i = decode(bytes, pc);
  const c = cls(i.op);
  const raw = (): string => rawText(bytes, pc);
  if (i.dst > 10 || i.src > 10) return raw();
  const x = (i.op & SRC_X) !== 0;
  switch (c) {
    case CLS.ALU:
    case CLS.ALU64: {
      const w = c === CLS.ALU ? 'w' : 'r';
      const d = `${w}${i.dst}`;
      const s = x ? `${w}${i.src}` : shex(i.imm);
      const code = i.op & 0xf0;
      if (code === ALU_OP.END) {
        if (c === CLS.ALU64 && x) return raw();
        if (i.imm !== 16 && i.imm !== 32 && i.imm !== 64) return raw();
        const name = c === CLS.ALU64 ? 'bswap' : x ? 'be' : 'le';
        return `r${i.dst} = ${name}${i.imm} r${i.dst}`;
      }
      if (code === ALU_OP.NEG) return x ? raw() : `${d} = -${d}`;
      const sym = ALU_SYM[code];
      if (sym === undefined) return raw();
      if (code === ALU_OP.DIV || code === ALU_OP.MOD) {
        if (i.off === 1) return `${d} s${sym} ${s}`;
        if (i.off !== 0) return raw();
      } else if (code === ALU_OP.MOV && i.off !== 0) {
        if (!x || !(i.off === 8 || i.off === 16 || (i.off === 32 && c === CLS.ALU64))) return raw();
        return `${d} = (s${i.off})${w}${i.src}`;
      } else if (i.off !== 0) return raw();
      return `${d} ${sym} ${s}`;
    }
    case CLS.JMP:
    case CLS.JMP32: {
      const code = i.op & 0xf0;
      if (code === JMP_OP.JA) {
        if (x) return raw();
        return c === CLS.JMP ? `goto ${rel(i.off)}` : `gotol ${rel(i.imm)}`;
      }
      if (code === JMP_OP.EXIT) return c === CLS.JMP && !x ? 'exit' : raw();
      if (code === JMP_OP.CALL) {
        if (c !== CLS.JMP) return raw();
        if (x) {
          const r = callxReg(i);
          return r < 0 ? raw() : `callx r${r}`;
        }
        if (i.src === 0) return `call ${shex(i.imm)}`;
        if (i.src === 1) return `call pc${rel(i.imm)}`;
        if (i.src === 2) return `call kfunc ${shex(i.imm)}`;
        return raw();
      }
      const sym = JMP_SYM[code];
      if (sym === undefined) return raw();
      const w = c === CLS.JMP32 ? 'w' : 'r';
      return `if ${w}${i.dst} ${sym} ${x ? `${w}${i.src}` : shex(i.imm)} goto ${rel(i.off)}`;
    }
    case CLS.LD: {
      if (i.op === OP_LDDW) {
        if (pc + 1 >= n) return raw();
        const next = decode(bytes, pc + 1);
        if (i.src === 0) {
          const v = (BigInt(next.imm >>> 0) << 32n) | BigInt(i.imm >>> 0);
          return `r${i.dst} = 0x${v.toString(16)} ll`;
        }
        const p = pseudo(i.src, i.imm, next.imm);
        return p === undefined ? raw() : `r${i.dst} = ${p} ll`;
      }
      const mode = i.op & 0xe0;
      const sz = (i.op >> 3) & 3;
      if (sz === 3) return raw();
      if (mode === MODE.ABS) return `r0 = *(${SIZE_TYPE[sz]} *)skb[${shex(i.imm)}]`;
      if (mode === MODE.IND) return `r0 = *(${SIZE_TYPE[sz]} *)skb[r${i.src}${i.imm === 0 ? '' : ` ${i.imm < 0 ? '-' : '+'} ${shex(Math.abs(i.imm))}`}]`;
      return raw();
    }
    case CLS.LDX: {
      const mode = i.op & 0xe0;
      const sz = (i.op >> 3) & 3;
      if (mode === MODE.MEM) return `r${i.dst} = *(${SIZE_TYPE[sz]} *)(${memop(i.src, i.off)})`;
      if (mode === MODE.MEMSX && sz !== 3) return `r${i.dst} = *(${SIZE_TYPE[sz]!.replace('u', 's')} *)(${memop(i.src, i.off)})`;
      return raw();
    }
    case CLS.ST: {
      if ((i.op & 0xe0) !== MODE.MEM) return raw();
      return `*(${SIZE_TYPE[(i.op >> 3) & 3]} *)(${memop(i.dst, i.off)}) = ${shex(i.imm)}`;
    }
    case CLS.STX: {
      const mode = i.op & 0xe0;
      const szc = (i.op >> 3) & 3;
      const m = `${memop(i.dst, i.off)}`;
      if (mode === MODE.MEM) return `*(${SIZE_TYPE[szc]} *)(${m}) = r${i.src}`;
      if (mode === MODE.ATOMIC && (szc === 0 || szc === 3)) {
        const t = SIZE_TYPE[szc]!;
        const w = szc === 0 ? 'w' : 'r';
        const sym = ATOMIC_SYM[i.imm];
        if (sym !== undefined) return `lock *(${t} *)(${m}) ${sym} ${szc === 0 && i.imm !== ATOMIC.ADD ? 'w' : 'r'}${i.src}`;
        const f = FETCH_NAME[i.imm];
        if (f !== undefined) return `${w}${i.src} = atomic_fetch_${f}((${t} *)(${m}), ${w}${i.src})`;
        if (i.imm === ATOMIC.XCHG) return szc === 3 ? `r${i.src} = xchg_64(${m}, r${i.src})` : `w${i.src} = xchg32_32(${m}, w${i.src})`;
        if (i.imm === ATOMIC.CMPXCHG) return szc === 3 ? `r0 = cmpxchg_64(${m}, r0, r${i.src})` : `w0 = cmpxchg32_32(${m}, w0, w${i.src})`;
        return raw();
      }
      return raw();
    }
  }
  return raw();
}
