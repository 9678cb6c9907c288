// Reads one line of the kernel/LLVM eBPF syntax (llvm-objdump, bpftool, the verifier log, LLVM 17+
// for the v4 forms) into instructions; asm.ts calls it for every line in that syntax.
//   w0 = 1   r0 += r1   w0 s/= w1   r1 = -r1   r0 = (s8)r1   r1 = be16 r1   r1 = 0x1122334455667788 ll
//   r0 = *(u64 *)(r1 + 8)   r0 = *(s16 *)(r1 + 2)   *(u32 *)(r10 - 4) = w1   *(u8 *)(r1 + 0) = 7
//   if r1 == 0x0 goto +3   goto -2   gotol +70000   call 1   call bpf_map_lookup_elem   call pc+2   callx r1
//   lock *(u64 *)(r1 + 0) += r2   r0 = atomic_fetch_add((u64 *)(r1 + 0), r0)   r0 = xchg_64(r1 + 0, r0)
//   r1 = map[fd:5] ll   r1 = map[idx:0][0]+8 ll   r0 = *(u8 *)skb[12]   exit

import { AsmError, parseImm32, parseInt64, parseOff16 } from './asm-common.js';
import { ALU_OP, ATOMIC, CLS, JMP_OP, MODE, OP_LDDW, SIZE, SRC_X, type Insn } from './isa.js';
import { HELPER } from '../../../src/kernel/uapi.js';

/** how the caller resolves a jump or call target (a number, or a label fixed up later) */
export type TargetFn = (text: string, field: 'off' | 'imm') => number;

const NUM = '[+-]?\\s*(?:0x[0-9a-f]+|\\d+)';
const REG = '([rw])(\\d+)';
const MEM = `\\(\\s*r(\\d+)\\s*(?:([+-])\\s*(0x[0-9a-f]+|\\d+))?\\s*\\)`;
const TYPE: Record<string, number> = { u8: SIZE.B, u16: SIZE.H, u32: SIZE.W, u64: SIZE.DW, s8: SIZE.B, s16: SIZE.H, s32: SIZE.W };
const ALU: Record<string, [op: number, off: number]> = {
  '+=': [ALU_OP.ADD, 0], '-=': [ALU_OP.SUB, 0], '*=': [ALU_OP.MUL, 0], '/=': [ALU_OP.DIV, 0], 's/=': [ALU_OP.DIV, 1],
  '|=': [ALU_OP.OR, 0], '&=': [ALU_OP.AND, 0], '<<=': [ALU_OP.LSH, 0], '>>=': [ALU_OP.RSH, 0], '%=': [ALU_OP.MOD, 0],
  's%=': [ALU_OP.MOD, 1], '^=': [ALU_OP.XOR, 0], '=': [ALU_OP.MOV, 0], 's>>=': [ALU_OP.ARSH, 0],
};
const JMP: Record<string, number> = {
  '==': JMP_OP.JEQ, '>': JMP_OP.JGT, '>=': JMP_OP.JGE, '&': JMP_OP.JSET, '!=': JMP_OP.JNE, 's>': JMP_OP.JSGT,
  's>=': JMP_OP.JSGE, '<': JMP_OP.JLT, '<=': JMP_OP.JLE, 's<': JMP_OP.JSLT, 's<=': JMP_OP.JSLE,
};
const ATOM: Record<string, number> = { '+=': ATOMIC.ADD, '|=': ATOMIC.OR, '&=': ATOMIC.AND, '^=': ATOMIC.XOR };
const FETCH: Record<string, number> = { add: ATOMIC.ADD, or: ATOMIC.OR, and: ATOMIC.AND, xor: ATOMIC.XOR };

/** true when a line is in this syntax rather than the ubpf one (`mov32 %r0, 1`) */
export function looksLlvm(src: string): boolean {
  return /=/.test(src) || /^(if|goto|gotol)\b/i.test(src) || /^call\s+(pc\b|kfunc\b|[a-z_]\w*(#\d+)?$)/i.test(src) && !/^call\s+(local|btf)\b/i.test(src);
}

function reg(n: string, line: number): number {
  const r = Number(n);
  if (r > 10) throw new AsmError(line, `bad register 'r${n}'`);
  return r;
}

function memOff(sign: string | undefined, num: string | undefined, line: number): number {
  return num === undefined ? 0 : parseOff16(`${sign}${num}`, line);
}

/** `0x3`, `+3`, `-0x2`, `pc+3` (the verifier), a label; a trailing `<LBB0_2>` (llvm-objdump) is ignored */
function targetText(t: string): string {
  return t.replace(/\s*<[^>]*>\s*$/, '').replace(/^pc\s*(?=[+-])/i, '').replace(/\s+/g, '').trim();
}

const helperId = (name: string): number | undefined => {
  const n = name.replace(/^bpf_/, '');
  return Object.prototype.hasOwnProperty.call(HELPER, n) ? (HELPER as Record<string, number>)[n] : undefined;
};

/** the instructions of one line (two slots for lddw); undefined when the line is not this syntax */
export function parseLlvmLine(src: string, line: number, target: TargetFn): Insn[] | undefined {
  const s = src.replace(/\s+/g, ' ').trim();
  const I = (op: number, dst: number, srcReg: number, off: number, imm: number): Insn => ({ op, dst, src: srcReg, off, imm });
  let m: RegExpExecArray | null;
  if (/^exit$/i.test(s)) return [I(CLS.JMP | JMP_OP.EXIT, 0, 0, 0, 0)];
  if ((m = /^(goto|gotol) (.+)$/i.exec(s))) {
    const t = targetText(m[2]!);
    if (m[1]!.toLowerCase() === 'goto') return [I(CLS.JMP | JMP_OP.JA, 0, 0, target(t, 'off'), 0)];
    return [I(CLS.JMP32 | JMP_OP.JA, 0, 0, 0, target(t, 'imm'))];
  }
  if ((m = new RegExp(`^if ${REG} (==|!=|s?>=?|s?<=?|&) (?:${REG}|(${NUM})) goto (.+)$`, 'i').exec(s))) {
    const w = m[1]!.toLowerCase();
    if (m[4] !== undefined && m[4].toLowerCase() !== w) throw new AsmError(line, `compares ${w}${m[2]} with ${m[4]}${m[5]}: both sides must be r or both w`);
    const c = w === 'w' ? CLS.JMP32 : CLS.JMP;
    const x = m[4] !== undefined;
    const op = JMP[m[3]!]!;
    return [I(c | op | (x ? SRC_X : 0), reg(m[2]!, line), x ? reg(m[5]!, line) : 0, target(targetText(m[7]!), 'off'), x ? 0 : parseImm32(m[6]!.replace(/\s/g, ''), line))];
  }
  if ((m = /^callx r(\d+)$/i.exec(s))) {
    const r = reg(m[1]!, line);
    return [I(CLS.JMP | JMP_OP.CALL | SRC_X, r, 0, 0, r)];
  }
  if ((m = /^call (.+)$/i.exec(s))) {
    const a = m[1]!.trim();
    if ((m = /^kfunc (\S+)$/i.exec(a))) return [I(CLS.JMP | JMP_OP.CALL, 0, 2, 0, parseImm32(m[1]!, line))];
    if (/^pc\s*[+-]/i.test(a)) return [I(CLS.JMP | JMP_OP.CALL, 0, 1, 0, target(targetText(a), 'imm'))];
    if ((m = /^([a-z_]\w*)#(\d+)$/i.exec(a))) return [I(CLS.JMP | JMP_OP.CALL, 0, 0, 0, parseImm32(m[2]!, line))];
    if (new RegExp(`^${NUM}$`, 'i').test(a)) return [I(CLS.JMP | JMP_OP.CALL, 0, 0, 0, parseImm32(a.replace(/\s/g, ''), line))];
    if (/^[a-z_.][\w.]*$/i.test(a)) {
      const h = helperId(a);
      if (h !== undefined) return [I(CLS.JMP | JMP_OP.CALL, 0, 0, 0, h)];
      return [I(CLS.JMP | JMP_OP.CALL, 0, 1, 0, target(a, 'imm'))];
    }
    throw new AsmError(line, `bad call '${a}'`);
  }
  if ((m = new RegExp(`^lock \\*\\((u32|u64) \\*\\)${MEM} (\\+=|\\|=|&=|\\^=) ([rw])(\\d+)$`, 'i').exec(s))) {
    const sz = m[1] === 'u32' ? SIZE.W : SIZE.DW;
    return [I(CLS.STX | MODE.ATOMIC | sz, reg(m[2]!, line), reg(m[7]!, line), memOff(m[3], m[4], line), ATOM[m[5]!]!)];
  }
  if ((m = new RegExp(`^([rw])(\\d+) = atomic_fetch_(add|or|and|xor)\\(\\((u32|u64) \\*\\)${MEM}, ([rw])(\\d+)\\)$`, 'i').exec(s))) {
    if (m[2] !== m[9]) throw new AsmError(line, `atomic_fetch_${m[3]} returns into its source register: write ${m[1]}${m[9]} = ...`);
    const sz = m[4] === 'u32' ? SIZE.W : SIZE.DW;
    return [I(CLS.STX | MODE.ATOMIC | sz, reg(m[5]!, line), reg(m[9]!, line), memOff(m[6], m[7], line), FETCH[m[3]!]! | ATOMIC.FETCH)];
  }
  if ((m = new RegExp(`^([rw])(\\d+) = (xchg_64|xchg32_32)\\(r(\\d+) ?(?:([+-]) ?(0x[0-9a-f]+|\\d+))?, ([rw])(\\d+)\\)$`, 'i').exec(s))) {
    if (m[2] !== m[8]) throw new AsmError(line, `${m[3]} returns into its source register: write ${m[1]}${m[8]} = ...`);
    const sz = m[3] === 'xchg_64' ? SIZE.DW : SIZE.W;
    return [I(CLS.STX | MODE.ATOMIC | sz, reg(m[4]!, line), reg(m[8]!, line), memOff(m[5], m[6], line), ATOMIC.XCHG)];
  }
  if ((m = new RegExp(`^([rw])0 = (cmpxchg_64|cmpxchg32_32)\\(r(\\d+) ?(?:([+-]) ?(0x[0-9a-f]+|\\d+))?, [rw]0, ([rw])(\\d+)\\)$`, 'i').exec(s))) {
    const sz = m[2] === 'cmpxchg_64' ? SIZE.DW : SIZE.W;
    return [I(CLS.STX | MODE.ATOMIC | sz, reg(m[3]!, line), reg(m[7]!, line), memOff(m[4], m[5], line), ATOMIC.CMPXCHG)];
  }
  // loads: r0 = *(u64 *)(r1 + 8), r0 = *(s16 *)(r1 + 2), r0 = *(u8 *)skb[12] / skb[r1 + 4]
  if ((m = new RegExp(`^${REG} = \\*\\(([us](?:8|16|32|64)) \\*\\) ?${MEM}$`, 'i').exec(s))) {
    const t = m[3]!.toLowerCase();
    if (TYPE[t] === undefined) throw new AsmError(line, `no load of type ${t}`);
    const sx = t.startsWith('s');
    return [I(CLS.LDX | (sx ? MODE.MEMSX : MODE.MEM) | TYPE[t]!, reg(m[2]!, line), reg(m[4]!, line), memOff(m[5], m[6], line), 0)];
  }
  if ((m = new RegExp(`^[rw]0 = \\*\\((u8|u16|u32) \\*\\) ?skb\\[ ?(?:r(\\d+) ?(?:([+-]) ?(0x[0-9a-f]+|\\d+))?|(${NUM})) ?\\]$`, 'i').exec(s))) {
    const sz = TYPE[m[1]!.toLowerCase()]!;
    if (m[2] !== undefined) return [I(CLS.LD | MODE.IND | sz, 0, reg(m[2], line), 0, m[4] === undefined ? 0 : parseImm32(`${m[3]}${m[4]}`, line))];
    return [I(CLS.LD | MODE.ABS | sz, 0, 0, 0, parseImm32(m[5]!.replace(/\s/g, ''), line))];
  }
  // stores: *(u32 *)(r10 - 4) = w1, *(u8 *)(r1 + 0) = 7
  if ((m = new RegExp(`^\\*\\((u8|u16|u32|u64) \\*\\) ?${MEM} = (?:${REG}|(${NUM}))$`, 'i').exec(s))) {
    const sz = TYPE[m[1]!.toLowerCase()]!;
    const off = memOff(m[3], m[4], line);
    if (m[6] !== undefined) return [I(CLS.STX | MODE.MEM | sz, reg(m[2]!, line), reg(m[6], line), off, 0)];
    return [I(CLS.ST | MODE.MEM | sz, reg(m[2]!, line), 0, off, parseImm32(m[7]!.replace(/\s/g, ''), line))];
  }
  // lddw: r1 = 0x1122334455667788 ll, r1 = map[fd:5] ll, map[id:5], map_fd(5), map[idx:0][0]+8, code[pc+2], btf_var[3]
  if ((m = /^r(\d+) = (.+?)( ll)?$/i.exec(s)) && (m[3] !== undefined || /^(map|map_fd|map_value|code|btf_var)\b/i.test(m[2]!))) {
    const dst = reg(m[1]!, line);
    const v = m[2]!.replace(/\s+/g, '');
    const two = (src: number, imm: number, next: number): Insn[] => [I(OP_LDDW, dst, src, 0, imm), I(0, 0, 0, 0, next)];
    let p: RegExpExecArray | null;
    if ((p = /^(?:map\[(fd|id|idx):(\d+)\]|map_fd\((\d+)\))$/i.exec(v))) return two(p[1]?.toLowerCase() === 'idx' ? 5 : 1, parseImm32(p[2] ?? p[3]!, line), 0);
    if ((p = /^(?:map\[(fd|id|idx):(\d+)\]\[0\]|map_value\((\d+)\))([+-](?:0x[0-9a-f]+|\d+))?$/i.exec(v))) {
      return two(p[1]?.toLowerCase() === 'idx' ? 6 : 2, parseImm32(p[2] ?? p[3]!, line), p[4] === undefined ? 0 : parseImm32(p[4], line));
    }
    if ((p = /^btf_var\[(\d+)\]$/i.exec(v))) return two(3, parseImm32(p[1]!, line), 0);
    if ((p = /^code\[(.+)\]$/i.exec(v))) return two(4, target(targetText(p[1]!), 'imm'), 0);
    if (m[3] === undefined) throw new AsmError(line, `bad 64-bit load '${m[2]}'`);
    const x = BigInt.asUintN(64, parseInt64(v, line));
    return two(0, Number(BigInt.asIntN(32, x)), Number(BigInt.asIntN(32, x >> 32n)));
  }
  // byte swaps: r1 = be16 r1, r1 = le32 r1, r1 = bswap64 r1
  if ((m = /^r(\d+) = (le|be|bswap)(16|32|64) r(\d+)$/i.exec(s))) {
    if (m[1] !== m[4]) throw new AsmError(line, `a byte swap works in place: r${m[1]} = ${m[2]}${m[3]} r${m[1]}`);
    const k = m[2]!.toLowerCase();
    const op = k === 'bswap' ? CLS.ALU64 | ALU_OP.END : CLS.ALU | ALU_OP.END | (k === 'be' ? SRC_X : 0);
    return [I(op, reg(m[1]!, line), 0, 0, Number(m[3]))];
  }
  // sign-extending moves: r0 = (s8)r1, w0 = (s16)w1
  if ((m = new RegExp(`^${REG} = \\((s8|s16|s32)\\) ?${REG}$`, 'i').exec(s))) {
    const w = m[1]!.toLowerCase();
    if (m[4]!.toLowerCase() !== w) throw new AsmError(line, 'both registers of a sign-extending move must be r or both w');
    if (w === 'w' && m[3] === 's32') throw new AsmError(line, 'w = (s32)w does not exist');
    return [I((w === 'w' ? CLS.ALU : CLS.ALU64) | ALU_OP.MOV | SRC_X, reg(m[2]!, line), reg(m[5]!, line), Number(m[3]!.slice(1)), 0)];
  }
  // negation: r1 = -r1
  if ((m = new RegExp(`^${REG} = -${REG}$`, 'i').exec(s))) {
    if (m[1]!.toLowerCase() !== m[3]!.toLowerCase() || m[2] !== m[4]) throw new AsmError(line, `negation works in place: ${m[1]}${m[2]} = -${m[1]}${m[2]}`);
    return [I((m[1]!.toLowerCase() === 'w' ? CLS.ALU : CLS.ALU64) | ALU_OP.NEG, reg(m[2]!, line), 0, 0, 0)];
  }
  // ALU: r0 += r1, w0 s/= w1, r0 s%= 3, r1 = 5
  if ((m = new RegExp(`^${REG} (s/=|s%=|s>>=|<<=|>>=|[-+*/|&%^]?=) (?:${REG}|(${NUM}))$`, 'i').exec(s))) {
    const w = m[1]!.toLowerCase();
    if (m[4] !== undefined && m[4].toLowerCase() !== w) throw new AsmError(line, `${w}${m[2]} ${m[3]} ${m[4]}${m[5]}: both registers must be r or both w`);
    const [op, off] = ALU[m[3]!]!;
    const x = m[4] !== undefined;
    return [I((w === 'w' ? CLS.ALU : CLS.ALU64) | op | (x ? SRC_X : 0), reg(m[2]!, line), x ? reg(m[5]!, line) : 0, off, x ? 0 : parseImm32(m[6]!.replace(/\s/g, ''), line))];
  }
  return undefined;
}
