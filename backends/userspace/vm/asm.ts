// Assembler for both textual eBPF syntaxes and the disassembler that checks its own round trip. The
// kernel/LLVM syntax (`w0 = 1`, see llvm-asm.ts) is decided per line; the ubpf / bpf_conformance
// syntax, the inverse of isa.disasmOne, is read here:
//   mov32 %r0, 1          add %r1, %r2          neg %r3        sdiv %r0, -3      movsx864 %r0, %r1
//   le16 %r0   be32 %r0   bswap64 %r0
//   lddw %r0, 0x1122334455667788      lddw %r1, map_by_fd(3)     lddw %r1, map_val(3)+8
//   lddw %r1, code_addr(+4)           lddw %r1, map_by_idx(0)    lddw %r1, map_val_idx(0)+8
//   ldxdw %r0, [%r1+8]    ldxsh %r0, [%r10-2]   stw [%r1+4], 7     stxb [%r10-1], %r2
//   lock add [%r1+0], %r2     lock fetch xor32 [%r1+0], %r2    lock xchg ...    lock cmpxchg32 ...
//   ldabsw 12   ldindh %r1, 4
//   ja +3   ja32 -100   jeq %r1, 0, +3   jsgt32 %r1, %r2, label   call 1   call local +4 (or a label)
//   call btf 7   callx %r2 (also "call %r2")   exit
// Registers may be written r0 or %r0. Comments start with #, // or ;. "label:" defines a label; a jump
// to the undefined label "exit" goes to the last exit instruction (a bpf_conformance convention).
// `.quad 0x<16 hex>` emits one raw slot (little-endian value), `.bytes 0x.. 0x..` raw trailing bytes.
// Listings of llvm-objdump -d(r) and the verifier log are read too (see dump-lines.ts).

import { AsmError, parseImm32, parseInt64, parseOff16, parseReg } from './asm-common.js';
import { ALU_OP, ATOMIC, CLS, JMP_OP, MODE, OP_LDDW, SIZE, SRC_X, disasmOne, encode, rawText, type Insn } from './isa.js';
import { disasmOneLlvm } from './llvm-disasm.js';
import { looksLlvm, parseLlvmLine } from './llvm-asm.js';
import { dumpLine } from './dump-lines.js';

/** `llvm`: the kernel/LLVM syntax (`w0 = 1`); `ubpf`: `mov32 %r0, 1`; `auto` (asm only): decided per line */
export type Syntax = 'llvm' | 'ubpf';
export interface AsmOptions {
  syntax?: Syntax | 'auto';
}
export interface DisasmOptions {
  /** default 'ubpf' for the library (stable), the CLI defaults to 'llvm' */
  syntax?: Syntax;
}
export { AsmError };

const ALU: Record<string, number> = {
  add: ALU_OP.ADD, sub: ALU_OP.SUB, mul: ALU_OP.MUL, div: ALU_OP.DIV, or: ALU_OP.OR, and: ALU_OP.AND,
  lsh: ALU_OP.LSH, rsh: ALU_OP.RSH, mod: ALU_OP.MOD, xor: ALU_OP.XOR, mov: ALU_OP.MOV, arsh: ALU_OP.ARSH,
};
const JMP: Record<string, number> = {
  jeq: JMP_OP.JEQ, jgt: JMP_OP.JGT, jge: JMP_OP.JGE, jset: JMP_OP.JSET, jne: JMP_OP.JNE, jsgt: JMP_OP.JSGT,
  jsge: JMP_OP.JSGE, jlt: JMP_OP.JLT, jle: JMP_OP.JLE, jslt: JMP_OP.JSLT, jsle: JMP_OP.JSLE,
};
const SZ: Record<string, number> = { w: SIZE.W, h: SIZE.H, b: SIZE.B, dw: SIZE.DW };
const ATOM: Record<string, number> = { add: ATOMIC.ADD, or: ATOMIC.OR, and: ATOMIC.AND, xor: ATOMIC.XOR };
const PSEUDO: Record<string, number> = { map_by_fd: 1, map_val: 2, var_addr: 3, code_addr: 4, map_by_idx: 5, map_val_idx: 6 };

interface Pending {
  slot: number;
  line: number;
  /** which field takes the relative target */
  field: 'off' | 'imm';
  label: string;
}

const isReg = (t: string): boolean => /^%?r\d+$/i.test(t.trim());

function parseMem(text: string, line: number): { reg: number; off: number } {
  const m = /^\[\s*(%?r\d+)\s*(?:([+-])\s*(0x[0-9a-f]+|\d+))?\s*\]$/i.exec(text.trim());
  if (m === null) throw new AsmError(line, `bad memory operand '${text}'`);
  const off = m[3] === undefined ? 0 : parseOff16(`${m[2]}${m[3]}`, line);
  return { reg: parseReg(m[1]!, line), off };
}

function splitOperands(rest: string): string[] {
  if (rest.trim() === '') return [];
  return rest.split(',').map((s) => s.trim());
}

/** assemble text into instruction bytes; throws AsmError naming the line */
export function assemble(text: string, opts: AsmOptions = {}): Uint8Array {
  const syntax = opts.syntax ?? 'auto';
  const slots: Uint8Array[] = [];
  const labels = new Map<string, number>();
  const pending: Pending[] = [];
  let exitSlots: number[] = [];
  let trailing: number[] = [];
  const emit = (i: Insn): number => {
    slots.push(encode(i));
    return slots.length - 1;
  };
  const target = (t: string, slot: number, line: number, field: 'off' | 'imm'): number => {
    const s = t.trim();
    if (/^[+-]?(0x[0-9a-f]+|\d+)$/i.test(s)) return field === 'off' ? parseOff16(s, line) : parseImm32(s, line);
    if (!/^[A-Za-z_.][\w.]*$/.test(s)) throw new AsmError(line, `bad jump target '${t}'`);
    pending.push({ slot, line, field, label: s });
    return 0;
  };

  const lines = text.split('\n');
  for (const [ln, lineText] of lines.entries()) {
    const line = ln + 1;
    let src = lineText.replace(/(#|\/\/|;).*$/, '').trim();
    // an llvm-objdump or verifier-log line: its index, raw bytes and opcode taken off
    const dump = dumpLine(src);
    let raw: Uint8Array | undefined;
    if (dump?.kind === 'skip') continue;
    if (dump?.kind === 'label') src = `${dump.name}:`;
    else if (dump?.kind === 'insn') {
      src = dump.text;
      raw = dump.raw;
    }
    for (;;) {
      const lm = /^([A-Za-z_.][\w.]*)\s*:\s*/.exec(src);
      if (lm === null) break;
      if (labels.has(lm[1]!)) throw new AsmError(line, `label '${lm[1]}' defined twice`);
      labels.set(lm[1]!, slots.length);
      src = src.slice(lm[0].length);
    }
    if (src === '') continue;
    if (trailing.length > 0) throw new AsmError(line, '.bytes must come last');
    const sp = src.search(/\s/);
    let mn = (sp < 0 ? src : src.slice(0, sp)).toLowerCase();
    let rest = sp < 0 ? '' : src.slice(sp + 1).trim();
    const ops = (): string[] => splitOperands(rest);
    const want = (n: number): string[] => {
      const o = ops();
      if (o.length !== n) throw new AsmError(line, `${mn} takes ${n} operand${n === 1 ? '' : 's'}`);
      return o;
    };

    if (mn === '.quad') {
      const v = BigInt.asUintN(64, parseInt64(want(1)[0]!, line));
      const b = new Uint8Array(8);
      new DataView(b.buffer).setBigUint64(0, v, true);
      slots.push(b);
      continue;
    }
    if (mn === '.bytes') {
      trailing = rest.split(/\s+/).filter((x) => x !== '').map((x) => Number(parseInt64(x, line)) & 0xff);
      continue;
    }
    if (syntax === 'llvm' || (syntax === 'auto' && (raw !== undefined || looksLlvm(src)))) {
      const slot = slots.length;
      const insns = parseLlvmLine(src, line, (t, field) => target(t, slot, line, field));
      if (insns === undefined) throw new AsmError(line, `not an instruction of the LLVM syntax: '${src}'`);
      for (const i of insns) emit(i);
      // llvm-objdump's text is ambiguous in places (a bpf-to-bpf call prints as `call -0x1`, like a
      // helper call): its raw bytes, when the listing has them, are the instruction
      if (raw !== undefined && raw.length === insns.length * 8 && pending.every((p) => p.slot < slot)) {
        for (let k = 0; k < insns.length; k++) slots[slot + k] = raw.slice(k * 8, k * 8 + 8);
      }
      if (insns.length === 1 && insns[0]!.op === (CLS.JMP | JMP_OP.EXIT)) exitSlots.push(slot);
      continue;
    }
    if (mn === 'exit') {
      want(0);
      exitSlots.push(emit({ op: CLS.JMP | JMP_OP.EXIT, dst: 0, src: 0, off: 0, imm: 0 }));
      continue;
    }
    if (mn === 'lock') {
      const sp2 = rest.search(/\s/);
      if (sp2 < 0) throw new AsmError(line, 'lock needs an operation');
      let sub = rest.slice(0, sp2).toLowerCase();
      rest = rest.slice(sp2 + 1).trim();
      let fetch = 0;
      if (sub === 'fetch') {
        const sp3 = rest.search(/\s/);
        if (sp3 < 0) throw new AsmError(line, 'lock fetch needs an operation');
        sub = rest.slice(0, sp3).toLowerCase();
        rest = rest.slice(sp3 + 1).trim();
        fetch = ATOMIC.FETCH;
      }
      const w32 = sub.endsWith('32');
      const base = w32 ? sub.slice(0, -2) : sub;
      let imm: number;
      if (base === 'xchg' && fetch === 0) imm = ATOMIC.XCHG;
      else if (base === 'cmpxchg' && fetch === 0) imm = ATOMIC.CMPXCHG;
      else if (ATOM[base] !== undefined) imm = ATOM[base]! | fetch;
      else throw new AsmError(line, `unknown atomic operation '${sub}'`);
      const [m, r] = want(2);
      const mo = parseMem(m!, line);
      emit({ op: CLS.STX | MODE.ATOMIC | (w32 ? SIZE.W : SIZE.DW), dst: mo.reg, src: parseReg(r!, line), off: mo.off, imm });
      continue;
    }
    if (mn === 'lddw') {
      const [d, v] = want(2);
      const dst = parseReg(d!, line);
      const pm = /^([a-z_]+)\(\s*([^)]*)\)\s*(?:([+-])\s*(0x[0-9a-f]+|\d+))?$/i.exec(v!);
      if (pm !== null) {
        const src = PSEUDO[pm[1]!.toLowerCase()];
        if (src === undefined) throw new AsmError(line, `unknown lddw pseudo '${pm[1]}'`);
        const slot = slots.length;
        const imm = src === 4 ? target(pm[2]!, slot, line, 'imm') : parseImm32(pm[2]!, line);
        const next = pm[4] === undefined ? 0 : parseImm32(`${pm[3]}${pm[4]}`, line);
        if (pm[4] !== undefined && src !== 2 && src !== 6) throw new AsmError(line, `${pm[1]} takes no offset`);
        emit({ op: OP_LDDW, dst, src, off: 0, imm });
        emit({ op: 0, dst: 0, src: 0, off: 0, imm: next });
        continue;
      }
      const x = BigInt.asUintN(64, parseInt64(v!, line));
      emit({ op: OP_LDDW, dst, src: 0, off: 0, imm: Number(BigInt.asIntN(32, x)) });
      emit({ op: 0, dst: 0, src: 0, off: 0, imm: Number(BigInt.asIntN(32, x >> 32n)) });
      continue;
    }
    if (mn === 'call' || mn === 'callx') {
      const o = ops();
      if (mn === 'callx' || (o.length === 1 && isReg(o[0]!))) {
        if (o.length !== 1) throw new AsmError(line, 'callx takes 1 operand');
        const r = parseReg(o[0]!, line);
        emit({ op: CLS.JMP | JMP_OP.CALL | SRC_X, dst: r, src: 0, off: 0, imm: r });
        continue;
      }
      const words = rest.split(/\s+/).filter((w) => w !== '');
      if (words[0] === 'local' && words.length === 2) {
        const slot = slots.length;
        emit({ op: CLS.JMP | JMP_OP.CALL, dst: 0, src: 1, off: 0, imm: target(words[1]!, slot, line, 'imm') });
        continue;
      }
      if ((words[0] === 'btf' || words[0] === 'kfunc') && words.length === 2) {
        emit({ op: CLS.JMP | JMP_OP.CALL, dst: 0, src: 2, off: 0, imm: parseImm32(words[1]!, line) });
        continue;
      }
      if (words.length === 1) {
        emit({ op: CLS.JMP | JMP_OP.CALL, dst: 0, src: 0, off: 0, imm: parseImm32(words[0]!, line) });
        continue;
      }
      throw new AsmError(line, `bad call '${rest}'`);
    }
    if (mn === 'ja' || mn === 'ja32' || mn === 'gotol') {
      const [t] = want(1);
      const slot = slots.length;
      if (mn === 'ja') emit({ op: CLS.JMP | JMP_OP.JA, dst: 0, src: 0, off: target(t!, slot, line, 'off'), imm: 0 });
      else emit({ op: CLS.JMP32 | JMP_OP.JA, dst: 0, src: 0, off: 0, imm: target(t!, slot, line, 'imm') });
      continue;
    }
    // conditional jumps
    {
      const w32 = mn.endsWith('32');
      const base = w32 ? mn.slice(0, -2) : mn;
      if (JMP[base] !== undefined) {
        const [d, s, t] = want(3);
        const slot = slots.length;
        const x = isReg(s!);
        emit({
          op: (w32 ? CLS.JMP32 : CLS.JMP) | JMP[base]! | (x ? SRC_X : 0),
          dst: parseReg(d!, line),
          src: x ? parseReg(s!, line) : 0,
          off: target(t!, slot, line, 'off'),
          imm: x ? 0 : parseImm32(s!, line),
        });
        continue;
      }
    }
    // byte swaps
    {
      const m = /^(le|be|bswap)(16|32|64)$/.exec(mn);
      if (m !== null) {
        const [d] = want(1);
        const op = m[1] === 'bswap' ? CLS.ALU64 | ALU_OP.END : CLS.ALU | ALU_OP.END | (m[1] === 'be' ? SRC_X : 0);
        emit({ op, dst: parseReg(d!, line), src: 0, off: 0, imm: Number(m[2]) });
        continue;
      }
    }
    // sign-extending moves: movsx864 movsx1664 movsx3264 movsx832 movsx1632 (also movsx8/16/32 = 64-bit)
    {
      const m = /^movsx(8|16|32)(32|64)?$/.exec(mn);
      if (m !== null) {
        const [d, s] = want(2);
        const c = m[2] === '32' ? CLS.ALU : CLS.ALU64;
        if (c === CLS.ALU && m[1] === '32') throw new AsmError(line, 'movsx3232 does not exist');
        emit({ op: c | ALU_OP.MOV | SRC_X, dst: parseReg(d!, line), src: parseReg(s!, line), off: Number(m[1]), imm: 0 });
        continue;
      }
    }
    // neg
    if (mn === 'neg' || mn === 'neg32' || mn === 'neg64') {
      const [d] = want(1);
      emit({ op: (mn === 'neg32' ? CLS.ALU : CLS.ALU64) | ALU_OP.NEG, dst: parseReg(d!, line), src: 0, off: 0, imm: 0 });
      continue;
    }
    // ALU (optionally s-prefixed div/mod, 32 or 64 suffix)
    {
      let w32 = false;
      if (mn.endsWith('32')) {
        w32 = true;
        mn = mn.slice(0, -2);
      } else if (mn.endsWith('64')) mn = mn.slice(0, -2);
      let signed = 0;
      if (mn === 'sdiv' || mn === 'smod') {
        signed = 1;
        mn = mn.slice(1);
      }
      if (ALU[mn] !== undefined) {
        const [d, s] = want(2);
        const x = isReg(s!);
        emit({
          op: (w32 ? CLS.ALU : CLS.ALU64) | ALU[mn]! | (x ? SRC_X : 0),
          dst: parseReg(d!, line),
          src: x ? parseReg(s!, line) : 0,
          off: signed,
          imm: x ? 0 : parseImm32(s!, line),
        });
        continue;
      }
      if (w32) mn += '32';
    }
    // loads and stores
    {
      let m = /^ldx(s?)(b|h|w|dw)$/.exec(mn);
      if (m !== null) {
        if (m[1] === 's' && m[2] === 'dw') throw new AsmError(line, 'ldxsdw does not exist');
        const [d, a] = want(2);
        const mo = parseMem(a!, line);
        emit({ op: CLS.LDX | (m[1] === 's' ? MODE.MEMSX : MODE.MEM) | SZ[m[2]!]!, dst: parseReg(d!, line), src: mo.reg, off: mo.off, imm: 0 });
        continue;
      }
      m = /^stx(b|h|w|dw)$/.exec(mn);
      if (m !== null) {
        const [a, s] = want(2);
        const mo = parseMem(a!, line);
        emit({ op: CLS.STX | MODE.MEM | SZ[m[1]!]!, dst: mo.reg, src: parseReg(s!, line), off: mo.off, imm: 0 });
        continue;
      }
      m = /^st(b|h|w|dw)$/.exec(mn);
      if (m !== null) {
        const [a, v] = want(2);
        const mo = parseMem(a!, line);
        emit({ op: CLS.ST | MODE.MEM | SZ[m[1]!]!, dst: mo.reg, src: 0, off: mo.off, imm: parseImm32(v!, line) });
        continue;
      }
      m = /^ldabs(b|h|w|dw)$/.exec(mn);
      if (m !== null) {
        const [v] = want(1);
        emit({ op: CLS.LD | MODE.ABS | SZ[m[1]!]!, dst: 0, src: 0, off: 0, imm: parseImm32(v!, line) });
        continue;
      }
      m = /^ldind(b|h|w|dw)$/.exec(mn);
      if (m !== null) {
        const [s, v] = want(2);
        emit({ op: CLS.LD | MODE.IND | SZ[m[1]!]!, dst: 0, src: parseReg(s!, line), off: 0, imm: parseImm32(v!, line) });
        continue;
      }
    }
    throw new AsmError(line, `unknown instruction '${mn}'`);
  }

  const lastExit = exitSlots.length > 0 ? exitSlots[exitSlots.length - 1]! : undefined;
  exitSlots = [];
  for (const p of pending) {
    let t = labels.get(p.label);
    if (t === undefined && p.label === 'exit') t = lastExit;
    if (t === undefined) throw new AsmError(p.line, `undefined label '${p.label}'`);
    const relv = t - (p.slot + 1);
    const b = slots[p.slot]!;
    const dv = new DataView(b.buffer);
    if (p.field === 'off') {
      if (relv < -32768 || relv > 32767) throw new AsmError(p.line, `jump to '${p.label}' out of 16-bit range`);
      dv.setInt16(2, relv, true);
    } else dv.setInt32(4, relv, true);
  }
  const out = new Uint8Array(slots.length * 8 + trailing.length);
  slots.forEach((s, k) => out.set(s, k * 8));
  out.set(trailing, slots.length * 8);
  return out;
}

/** one disassembled line: the slot it starts at and its text (lddw spans two slots) */
export interface DisasmLine {
  pc: number;
  slots: number;
  text: string;
}

/**
 * The instructions of `bytes`, one per line. A slot whose text would not assemble back to the very same
 * bytes (unused fields set, bad encodings) is shown as `.quad 0x...`, so that asm(disasm(b)) == b for
 * any b. A truncated tail (not a multiple of 8 bytes) is not included.
 */
export function disassembleLines(bytes: Uint8Array, opts: DisasmOptions = {}): DisasmLine[] {
  const syntax = opts.syntax ?? 'ubpf';
  const one = syntax === 'llvm' ? disasmOneLlvm : disasmOne;
  const n = bytes.length >> 3;
  const out: DisasmLine[] = [];
  for (let pc = 0; pc < n; pc++) {
    let t = one(bytes, pc);
    let slots = (syntax === 'llvm' ? t.endsWith(' ll') : t.startsWith('lddw')) ? 2 : 1;
    if (!t.startsWith('.quad')) {
      let same = false;
      try {
        const b = assemble(t, { syntax });
        same = b.length === slots * 8 && b.every((x, k) => x === bytes[pc * 8 + k]);
      } catch {
        same = false;
      }
      if (!same) {
        t = rawText(bytes, pc);
        slots = 1;
      }
    } else slots = 1;
    out.push({ pc, slots, text: t });
    pc += slots - 1;
  }
  return out;
}

/** One instruction per line (see disassembleLines), then `.bytes` for a truncated tail. */
export function disassemble(bytes: Uint8Array, opts: DisasmOptions = {}): string {
  const n = bytes.length >> 3;
  const out = disassembleLines(bytes, opts).map((l) => l.text);
  if (bytes.length % 8 !== 0) {
    out.push(`.bytes ${Array.from(bytes.subarray(n * 8), (b) => `0x${b.toString(16).padStart(2, '0')}`).join(' ')}`);
  }
  return out.join('\n') + (out.length > 0 ? '\n' : '');
}
