// RFC 9669 encoding: opcode fields, instruction decoding and the one-instruction disassembler shared by
// error messages, `wasm-bpf vm disasm` and the assembler's round trip.

export const CLS = { LD: 0x00, LDX: 0x01, ST: 0x02, STX: 0x03, ALU: 0x04, JMP: 0x05, JMP32: 0x06, ALU64: 0x07 } as const;
export const SRC_X = 0x08;
export const ALU_OP = {
  ADD: 0x00, SUB: 0x10, MUL: 0x20, DIV: 0x30, OR: 0x40, AND: 0x50, LSH: 0x60, RSH: 0x70,
  NEG: 0x80, MOD: 0x90, XOR: 0xa0, MOV: 0xb0, ARSH: 0xc0, END: 0xd0,
} as const;
export const JMP_OP = {
  JA: 0x00, JEQ: 0x10, JGT: 0x20, JGE: 0x30, JSET: 0x40, JNE: 0x50, JSGT: 0x60, JSGE: 0x70,
  CALL: 0x80, EXIT: 0x90, JLT: 0xa0, JLE: 0xb0, JSLT: 0xc0, JSLE: 0xd0,
} as const;
export const SIZE = { W: 0x00, H: 0x08, B: 0x10, DW: 0x18 } as const;
export const MODE = { IMM: 0x00, ABS: 0x20, IND: 0x40, MEM: 0x60, MEMSX: 0x80, ATOMIC: 0xc0 } as const;
export const ATOMIC = { ADD: 0x00, OR: 0x40, AND: 0x50, XOR: 0xa0, FETCH: 0x01, XCHG: 0xe1, CMPXCHG: 0xf1 } as const;
export const OP_LDDW = 0x18;

const cls = (op: number): number => op & 0x07;

export interface Insn {
  op: number;
  dst: number;
  src: number;
  off: number;
  imm: number;
}

export function decode(bytes: Uint8Array, pc: number): Insn {
  const o = pc * 8;
  const dv = new DataView(bytes.buffer, bytes.byteOffset + o, 8);
  const regs = bytes[o + 1]!;
  return { op: bytes[o]!, dst: regs & 0x0f, src: regs >> 4, off: dv.getInt16(2, true), imm: dv.getInt32(4, true) };
}

export function encode(i: Insn): Uint8Array {
  const b = new Uint8Array(8);
  const dv = new DataView(b.buffer);
  b[0] = i.op;
  b[1] = (i.dst & 0x0f) | ((i.src & 0x0f) << 4);
  dv.setInt16(2, i.off, true);
  dv.setInt32(4, i.imm | 0, true);
  return b;
}

const ALU_NAMES: Record<number, string> = {
  0x00: 'add', 0x10: 'sub', 0x20: 'mul', 0x30: 'div', 0x40: 'or', 0x50: 'and', 0x60: 'lsh', 0x70: 'rsh',
  0x80: 'neg', 0x90: 'mod', 0xa0: 'xor', 0xb0: 'mov', 0xc0: 'arsh',
};
const JMP_NAMES: Record<number, string> = {
  0x10: 'jeq', 0x20: 'jgt', 0x30: 'jge', 0x40: 'jset', 0x50: 'jne', 0x60: 'jsgt', 0x70: 'jsge',
  0xa0: 'jlt', 0xb0: 'jle', 0xc0: 'jslt', 0xd0: 'jsle',
};
const SZ_NAMES = ['w', 'h', 'b', 'dw'];
const ATOMIC_NAMES: Record<number, string> = {
  0x00: 'add', 0x40: 'or', 0x50: 'and', 0xa0: 'xor', 0x01: 'fetch add', 0x41: 'fetch or', 0x51: 'fetch and',
  0xa1: 'fetch xor', 0xe1: 'xchg', 0xf1: 'cmpxchg',
};
const LDDW_PSEUDO_NAMES: Record<number, string> = {
  1: 'map_by_fd', 2: 'map_val', 3: 'var_addr', 4: 'code_addr', 5: 'map_by_idx', 6: 'map_val_idx',
};

const reg = (r: number): string => `%r${r}`;
const rel = (n: number): string => (n >= 0 ? `+${n}` : `${n}`);
const mem = (r: number, off: number): string => `[%r${r}${off >= 0 ? '+' : ''}${off}]`;
const hex64 = (lo: number, hi: number): string => {
  const v = (BigInt(hi >>> 0) << 32n) | BigInt(lo >>> 0);
  return `0x${v.toString(16)}`;
};

/**
 * The register a callx (0x8d) names: the kernel puts it in dst, LLVM/gas and ubpf in imm. Both are
 * accepted (asm() writes both); -1 when they disagree or the imm is not a register.
 */
export function callxReg(i: Insn): number {
  if (i.imm === 0) return i.dst;
  if (i.imm < 0 || i.imm > 10) return -1;
  if (i.dst !== 0 && i.dst !== i.imm) return -1;
  return i.imm;
}

/** raw form for slots that are not a valid instruction (asm() reads it back) */
export function rawText(bytes: Uint8Array, pc: number): string {
  let v = 0n;
  for (let k = 7; k >= 0; k--) v = (v << 8n) | BigInt(bytes[pc * 8 + k]!);
  return `.quad 0x${v.toString(16).padStart(16, '0')}`;
}

/**
 * The text of the instruction at `pc`. lddw reads the next slot too (when present). Invalid encodings
 * come out as `.quad 0x...` so that every byte string disassembles and reassembles exactly.
 */
export function disasmOne(bytes: Uint8Array, pc: number): string {
  const n = bytes.length >> 3;
  const i = decode(bytes, pc);
  const c = cls(i.op);
  const raw = (): string => rawText(bytes, pc);
  if (i.dst > 10 || i.src > 10) return raw();
  switch (c) {
    case CLS.ALU:
    case CLS.ALU64: {
      const s = c === CLS.ALU ? '32' : '';
      const code = i.op & 0xf0;
      const x = (i.op & SRC_X) !== 0;
      if (code === ALU_OP.END) {
        if (c === CLS.ALU64 && x) return raw();
        if (i.imm !== 16 && i.imm !== 32 && i.imm !== 64) return raw();
        const name = c === CLS.ALU64 ? 'bswap' : x ? 'be' : 'le';
        return `${name}${i.imm} ${reg(i.dst)}`;
      }
      const name = ALU_NAMES[code];
      if (name === undefined) return raw();
      if (code === ALU_OP.NEG) return x ? raw() : `neg${s} ${reg(i.dst)}`;
      let n = name;
      if (code === ALU_OP.DIV || code === ALU_OP.MOD) {
        if (i.off === 1) n = `s${name}`;
        else if (i.off !== 0) return raw();
      } else if (code === ALU_OP.MOV && i.off !== 0) {
        if (!x || !(i.off === 8 || i.off === 16 || (i.off === 32 && c === CLS.ALU64))) return raw();
        return `movsx${i.off}${c === CLS.ALU ? '32' : '64'} ${reg(i.dst)}, ${reg(i.src)}`;
      } else if (i.off !== 0) return raw();
      return `${n}${s} ${reg(i.dst)}, ${x ? reg(i.src) : String(i.imm)}`;
    }
    case CLS.JMP:
    case CLS.JMP32: {
      const s = c === CLS.JMP32 ? '32' : '';
      const code = i.op & 0xf0;
      const x = (i.op & SRC_X) !== 0;
      if (code === JMP_OP.JA) {
        if (x) return raw();
        return c === CLS.JMP ? `ja ${rel(i.off)}` : `ja32 ${rel(i.imm)}`;
      }
      if (code === JMP_OP.EXIT) return c === CLS.JMP && !x ? 'exit' : raw();
      if (code === JMP_OP.CALL) {
        if (c !== CLS.JMP) return raw();
        if (x) {
          const r = callxReg(i);
          return r < 0 ? raw() : `callx ${reg(r)}`;
        }
        if (i.src === 0) return `call ${i.imm}`;
        if (i.src === 1) return `call local ${rel(i.imm)}`;
        if (i.src === 2) return `call btf ${i.imm}`;
        return raw();
      }
      const name = JMP_NAMES[code];
      if (name === undefined) return raw();
      return `${name}${s} ${reg(i.dst)}, ${x ? reg(i.src) : String(i.imm)}, ${rel(i.off)}`;
    }
    case CLS.LD: {
      if (i.op === OP_LDDW) {
        if (pc + 1 >= n) return raw();
        const next = decode(bytes, pc + 1);
        if (i.src === 0) return `lddw ${reg(i.dst)}, ${hex64(i.imm, next.imm)}`;
        const p = LDDW_PSEUDO_NAMES[i.src];
        if (p === undefined) return raw();
        if (i.src === 2 || i.src === 6) return `lddw ${reg(i.dst)}, ${p}(${i.imm})${rel(next.imm)}`;
        if (i.src === 4) return `lddw ${reg(i.dst)}, ${p}(${rel(i.imm)})`;
        return `lddw ${reg(i.dst)}, ${p}(${i.imm})`;
      }
      const mode = i.op & 0xe0;
      const sz = (i.op >> 3) & 3;
      if (sz === 3) return raw();
      if (mode === MODE.ABS) return `ldabs${SZ_NAMES[sz]} ${i.imm}`;
      if (mode === MODE.IND) return `ldind${SZ_NAMES[sz]} ${reg(i.src)}, ${i.imm}`;
      return raw();
    }
    case CLS.LDX: {
      const mode = i.op & 0xe0;
      const sz = SZ_NAMES[(i.op >> 3) & 3]!;
      if (mode === MODE.MEM) return `ldx${sz} ${reg(i.dst)}, ${mem(i.src, i.off)}`;
      if (mode === MODE.MEMSX && sz !== 'dw') return `ldxs${sz} ${reg(i.dst)}, ${mem(i.src, i.off)}`;
      return raw();
    }
    case CLS.ST: {
      if ((i.op & 0xe0) !== MODE.MEM) return raw();
      return `st${SZ_NAMES[(i.op >> 3) & 3]} ${mem(i.dst, i.off)}, ${i.imm}`;
    }
    case CLS.STX: {
      const mode = i.op & 0xe0;
      const szc = (i.op >> 3) & 3;
      if (mode === MODE.MEM) return `stx${SZ_NAMES[szc]} ${mem(i.dst, i.off)}, ${reg(i.src)}`;
      if (mode === MODE.ATOMIC && (szc === 0 || szc === 3)) {
        const a = ATOMIC_NAMES[i.imm];
        if (a === undefined) return raw();
        return `lock ${a}${szc === 0 ? '32' : ''} ${mem(i.dst, i.off)}, ${reg(i.src)}`;
      }
      return raw();
    }
  }
  return raw();
}
