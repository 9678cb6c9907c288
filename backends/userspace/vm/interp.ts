// The reference interpreter. Registers are kept as 32-bit halves (lo, hi) in Int32Arrays so that the
// common operations are plain int32 arithmetic; 64-bit division of wide values falls back to BigInt.
// The budget is charged on arrival at a basic-block leader (the same points the JIT charges at), so
// both engines agree on every result, every fault and every step count.

import { MAX_CALL_DEPTH, STACK_FRAME_SIZE, VmError } from './api.js';
import { accessFault, STACK_TOP, type Memory } from './memory.js';
import { CODE_BASE, K, type LoadedProgram } from './program.js';
import { budgetError, callHelper, callxHelper, PacketExit, tailTarget, type RunState } from './state.js';

const RES = new Int32Array(2);

/** 64-bit address value (hi:lo) + off as a memory offset, or -1 when outside [0, 2^32) */
function ea(lo: number, hi: number, off: number): number {
  const a = (lo >>> 0) + off;
  if (hi === 0) return a >= 0 && a < 4294967296 ? a : -1;
  if (hi === -1) return a >= 4294967296 ? a - 4294967296 : -1;
  if (hi === 1) return a < 0 ? a + 4294967296 : -1;
  return -1;
}

function mul64(al: number, ah: number, bl: number, bh: number): void {
  const a0 = al & 0xffff;
  const a1 = al >>> 16;
  const b0 = bl & 0xffff;
  const b1 = bl >>> 16;
  const p00 = a0 * b0;
  const p01 = a0 * b1;
  const p10 = a1 * b0;
  const mid = (p00 >>> 16) + (p01 & 0xffff) + (p10 & 0xffff);
  RES[0] = ((mid & 0xffff) << 16) | (p00 & 0xffff);
  RES[1] = (a1 * b1 + (p01 >>> 16) + (p10 >>> 16) + (mid >>> 16) + Math.imul(al, bh) + Math.imul(ah, bl)) | 0;
}

const big = (lo: number, hi: number): bigint => (BigInt(hi) << 32n) | BigInt(lo >>> 0);
function setBig(v: bigint): void {
  RES[0] = Number(BigInt.asIntN(32, v));
  RES[1] = Number(BigInt.asIntN(32, v >> 32n));
}

/** dst = (src != 0) ? dst / src : 0 (signed: INT64_MIN / -1 = INT64_MIN) */
function div64(al: number, ah: number, bl: number, bh: number, signed: boolean): void {
  if (bl === 0 && bh === 0) {
    RES[0] = 0;
    RES[1] = 0;
    return;
  }
  if (!signed) {
    if (ah === 0 && bh === 0) {
      RES[0] = ((al >>> 0) / (bl >>> 0)) >>> 0;
      RES[1] = 0;
      return;
    }
    setBig(BigInt.asUintN(64, big(al, ah)) / BigInt.asUintN(64, big(bl, bh)));
    return;
  }
  if (ah === al >> 31 && bh === bl >> 31) {
    const q = bl === -1 ? -(al | 0) : Math.trunc((al | 0) / (bl | 0));
    RES[0] = q | 0;
    RES[1] = q < 0 ? -1 : 0;
    return;
  }
  const a = big(al, ah);
  const b = big(bl, bh);
  setBig(b === -1n ? -a : a / b);
}

/** dst = (src != 0) ? dst % src : dst (signed: truncated, INT64_MIN % -1 = 0) */
function mod64(al: number, ah: number, bl: number, bh: number, signed: boolean): void {
  if (bl === 0 && bh === 0) {
    RES[0] = al;
    RES[1] = ah;
    return;
  }
  if (!signed) {
    if (ah === 0 && bh === 0) {
      RES[0] = (al >>> 0) % (bl >>> 0) | 0;
      RES[1] = 0;
      return;
    }
    setBig(BigInt.asUintN(64, big(al, ah)) % BigInt.asUintN(64, big(bl, bh)));
    return;
  }
  if (ah === al >> 31 && bh === bl >> 31) {
    const r = bl === -1 ? 0 : (al | 0) % (bl | 0);
    RES[0] = r | 0;
    RES[1] = r < 0 ? -1 : 0;
    return;
  }
  const a = big(al, ah);
  const b = big(bl, bh);
  setBig(b === -1n ? 0n : a % b);
}

function div32(a: number, b: number, signed: boolean): number {
  if (b === 0) return 0;
  if (!signed) return ((a >>> 0) / (b >>> 0)) | 0;
  if (b === -1) return -a | 0;
  return (a / b) | 0;
}

function mod32(a: number, b: number, signed: boolean): number {
  if (b === 0) return a;
  if (!signed) return (a >>> 0) % (b >>> 0) | 0;
  if (b === -1) return 0;
  return a % b | 0;
}

const bswap16 = (x: number): number => ((x & 0xff) << 8) | ((x >>> 8) & 0xff);
const bswap32 = (x: number): number => ((x & 0xff) << 24) | ((x & 0xff00) << 8) | ((x >>> 8) & 0xff00) | (x >>> 24);

/** unsigned (hi:lo) comparisons */
const ugt = (ah: number, al: number, bh: number, bl: number): boolean => (ah === bh ? al >>> 0 > bl >>> 0 : ah >>> 0 > bh >>> 0);
const uge = (ah: number, al: number, bh: number, bl: number): boolean => (ah === bh ? al >>> 0 >= bl >>> 0 : ah >>> 0 > bh >>> 0);
const sgt = (ah: number, al: number, bh: number, bl: number): boolean => (ah === bh ? al >>> 0 > bl >>> 0 : ah > bh);
const sge = (ah: number, al: number, bh: number, bl: number): boolean => (ah === bh ? al >>> 0 >= bl >>> 0 : ah > bh);

/** region cache: [read lo, read limit, write lo, write limit]; an access at a is cached-valid when 0 <= a - lo < limit (limit = size - 7) */
type Cache = Float64Array;

function slow(mem: Memory, C: Cache, p: LoadedProgram, pc: number, lo: number, hi: number, off: number, a: number, w: number, write: boolean, stackLo: number): void {
  const r = a >= 0 ? mem.findNum(a, w) : undefined;
  if (r === undefined || (write && !r.writable) || (r === mem.stack && a < stackLo)) {
    const full = BigInt.asUintN(64, big(lo, hi) + BigInt(off));
    throw new VmError('memory', accessFault(mem, Number(full & 0xffffffffn), Number(full >> 32n) | 0, w, write, stackLo), { pc, insn: p.text(pc), program: p.name });
  }
  if (r === mem.stack) return;
  const k = write ? 2 : 0;
  C[k] = r.addr;
  C[k + 1] = r.size >= 8 ? r.size - 7 : 0;
}

/** LD_ABS / LD_IND: network-order load from the packet, or PacketExit */
function packetLoad(mem: Memory, st: RunState, off: number, w: number): number {
  const pk = st.packet;
  if (pk === undefined || off < 0 || off + w > pk.size) throw new PacketExit();
  const a = pk.addr + off;
  if (mem.findNum(a, w) === undefined) throw new PacketExit();
  const u8 = mem.bytes();
  if (w === 1) return u8[a]!;
  if (w === 2) return (u8[a]! << 8) | u8[a + 1]!;
  return (u8[a]! << 24) | (u8[a + 1]! << 16) | (u8[a + 2]! << 8) | u8[a + 3]!;
}

/** checked effective address of a load */
function rd(L: Int32Array, H: Int32Array, s: number, off: number, w: number, C: Cache, mem: Memory, p: LoadedProgram, pc: number, stackLo: number): number {
  const a = ea(L[s]!, H[s]!, off);
  const d = a - C[0]!;
  if (d >= 0 && d < C[1]!) return a;
  const st = a - stackLo;
  if (st >= 0 && st <= C[4]! - stackLo - w) return a;
  slow(mem, C, p, pc, L[s]!, H[s]!, off, a, w, false, stackLo);
  return a;
}

/** checked effective address of a store */
function wr(L: Int32Array, H: Int32Array, s: number, off: number, w: number, C: Cache, mem: Memory, p: LoadedProgram, pc: number, stackLo: number): number {
  const a = ea(L[s]!, H[s]!, off);
  const d = a - C[2]!;
  if (d >= 0 && d < C[3]!) return a;
  const st = a - stackLo;
  if (st >= 0 && st <= C[4]! - stackLo - w) return a;
  slow(mem, C, p, pc, L[s]!, H[s]!, off, a, w, true, stackLo);
  return a;
}

/**
 * Run `p` from its entry with r1..r5 = args at call depth `depth0` (its r10 = the top of that frame).
 * Returns r0 as u64. st.budget is updated.
 */
export function interpret(p: LoadedProgram, args: readonly bigint[], depth0: number, st: RunState): bigint {
  const L = new Int32Array(11);
  const H = new Int32Array(11);
  for (let k = 0; k < 5; k++) {
    const v = BigInt.asUintN(64, args[k] ?? 0n);
    L[k + 1] = Number(BigInt.asIntN(32, v));
    H[k + 1] = Number(BigInt.asIntN(32, v >> 32n));
  }
  let depth = depth0;
  L[10] = STACK_TOP - depth * STACK_FRAME_SIZE;
  /** lowest stack address this frame may touch: its own frame and its callers' */
  let stackLo = L[10]! - STACK_FRAME_SIZE;
  const W = p.word;
  const OFF = p.off;
  const IMM = p.imm;
  const KIND = p.kind;
  const COST = p.cost;
  const mem = p.memory;
  let dv = mem.view();
  // region cache: read lo, read limit, write lo, write limit; [4] = the stack top
  const C: Cache = new Float64Array(5);
  C[4] = STACK_TOP;
  // saved caller state per frame: r1..r9 lo/hi, return pc
  const frames = new Int32Array(MAX_CALL_DEPTH * 19);
  let sp = 0;
  let budget = st.budget;
  let pc = 0;

  for (;;) {
    const word = W[pc]!;
    if (word & 0x10000) {
      const cost = COST[pc]!;
      if (cost > 0) budget -= cost;
      else {
        // a loop header: the budget is checked here (and at exits)
        budget += cost;
        if (budget < 0) {
          st.budget = budget;
          throw budgetError(p, pc, st);
        }
      }
    }
    const o = word & 0xff;
    const d = (word >> 8) & 0xf;
    const s = (word >> 12) & 0xf;
    switch (o) {
      // ---- ALU64, K ----
      case 0x07: {
        const i = IMM[pc]!;
        const sum = (L[d]! >>> 0) + (i >>> 0);
        L[d] = sum | 0;
        H[d] = (H[d]! + (i >> 31) + (sum >= 4294967296 ? 1 : 0)) | 0;
        break;
      }
      case 0x17: {
        const i = IMM[pc]!;
        const a = L[d]! >>> 0;
        const b = i >>> 0;
        L[d] = (a - b) | 0;
        H[d] = (H[d]! - (i >> 31) - (a < b ? 1 : 0)) | 0;
        break;
      }
      case 0x27: {
        const i = IMM[pc]!;
        mul64(L[d]!, H[d]!, i, i >> 31);
        L[d] = RES[0]!;
        H[d] = RES[1]!;
        break;
      }
      case 0x37: {
        const i = IMM[pc]!;
        div64(L[d]!, H[d]!, i, i >> 31, OFF[pc] === 1);
        L[d] = RES[0]!;
        H[d] = RES[1]!;
        break;
      }
      case 0x47: {
        const i = IMM[pc]!;
        L[d] = L[d]! | i;
        H[d] = H[d]! | (i >> 31);
        break;
      }
      case 0x57: {
        const i = IMM[pc]!;
        L[d] = L[d]! & i;
        H[d] = H[d]! & (i >> 31);
        break;
      }
      case 0x67:
        shl64(L, H, d, IMM[pc]! & 63);
        break;
      case 0x77:
        shr64(L, H, d, IMM[pc]! & 63);
        break;
      case 0x87: {
        // neg
        const a = L[d]! >>> 0;
        L[d] = -a | 0;
        H[d] = (~H[d]! + (a === 0 ? 1 : 0)) | 0;
        break;
      }
      case 0x97: {
        const i = IMM[pc]!;
        mod64(L[d]!, H[d]!, i, i >> 31, OFF[pc] === 1);
        L[d] = RES[0]!;
        H[d] = RES[1]!;
        break;
      }
      case 0xa7: {
        const i = IMM[pc]!;
        L[d] = L[d]! ^ i;
        H[d] = H[d]! ^ (i >> 31);
        break;
      }
      case 0xb7: {
        const i = IMM[pc]!;
        L[d] = i;
        H[d] = i >> 31;
        break;
      }
      case 0xc7:
        sar64(L, H, d, IMM[pc]! & 63);
        break;
      case 0xd7: {
        // bswap16/32/64
        const i = IMM[pc]!;
        if (i === 16) {
          L[d] = bswap16(L[d]!);
          H[d] = 0;
        } else if (i === 32) {
          L[d] = bswap32(L[d]!);
          H[d] = 0;
        } else {
          const lo = L[d]!;
          L[d] = bswap32(H[d]!);
          H[d] = bswap32(lo);
        }
        break;
      }
      // ---- ALU64, X ----
      case 0x0f: {
        const sum = (L[d]! >>> 0) + (L[s]! >>> 0);
        L[d] = sum | 0;
        H[d] = (H[d]! + H[s]! + (sum >= 4294967296 ? 1 : 0)) | 0;
        break;
      }
      case 0x1f: {
        const a = L[d]! >>> 0;
        const b = L[s]! >>> 0;
        L[d] = (a - b) | 0;
        H[d] = (H[d]! - H[s]! - (a < b ? 1 : 0)) | 0;
        break;
      }
      case 0x2f: {
        mul64(L[d]!, H[d]!, L[s]!, H[s]!);
        L[d] = RES[0]!;
        H[d] = RES[1]!;
        break;
      }
      case 0x3f: {
        div64(L[d]!, H[d]!, L[s]!, H[s]!, OFF[pc] === 1);
        L[d] = RES[0]!;
        H[d] = RES[1]!;
        break;
      }
      case 0x4f: {
        L[d] = L[d]! | L[s]!;
        H[d] = H[d]! | H[s]!;
        break;
      }
      case 0x5f: {
        L[d] = L[d]! & L[s]!;
        H[d] = H[d]! & H[s]!;
        break;
      }
      case 0x6f:
        shl64(L, H, d, L[s]! & 63);
        break;
      case 0x7f:
        shr64(L, H, d, L[s]! & 63);
        break;
      case 0x9f: {
        mod64(L[d]!, H[d]!, L[s]!, H[s]!, OFF[pc] === 1);
        L[d] = RES[0]!;
        H[d] = RES[1]!;
        break;
      }
      case 0xaf: {
        L[d] = L[d]! ^ L[s]!;
        H[d] = H[d]! ^ H[s]!;
        break;
      }
      case 0xbf: {
        const off = OFF[pc]!;
        if (off === 0) {
          L[d] = L[s]!;
          H[d] = H[s]!;
        } else if (off === 8) {
          const v = (L[s]! << 24) >> 24;
          L[d] = v;
          H[d] = v >> 31;
        } else if (off === 16) {
          const v = (L[s]! << 16) >> 16;
          L[d] = v;
          H[d] = v >> 31;
        } else {
          const v = L[s]!;
          L[d] = v;
          H[d] = v >> 31;
        }
        break;
      }
      case 0xcf:
        sar64(L, H, d, L[s]! & 63);
        break;

      // ---- ALU32, K ----
      case 0x04:
        L[d] = (L[d]! + IMM[pc]!) | 0;
        H[d] = 0;
        break;
      case 0x14:
        L[d] = (L[d]! - IMM[pc]!) | 0;
        H[d] = 0;
        break;
      case 0x24:
        L[d] = Math.imul(L[d]!, IMM[pc]!);
        H[d] = 0;
        break;
      case 0x34:
        L[d] = div32(L[d]!, IMM[pc]!, OFF[pc] === 1);
        H[d] = 0;
        break;
      case 0x44:
        L[d] = L[d]! | IMM[pc]!;
        H[d] = 0;
        break;
      case 0x54:
        L[d] = L[d]! & IMM[pc]!;
        H[d] = 0;
        break;
      case 0x64:
        L[d] = L[d]! << IMM[pc]!;
        H[d] = 0;
        break;
      case 0x74:
        L[d] = L[d]! >>> IMM[pc]!;
        H[d] = 0;
        break;
      case 0x84:
        L[d] = -L[d]! | 0;
        H[d] = 0;
        break;
      case 0x94:
        L[d] = mod32(L[d]!, IMM[pc]!, OFF[pc] === 1);
        H[d] = 0;
        break;
      case 0xa4:
        L[d] = L[d]! ^ IMM[pc]!;
        H[d] = 0;
        break;
      case 0xb4:
        L[d] = IMM[pc]!;
        H[d] = 0;
        break;
      case 0xc4:
        L[d] = L[d]! >> IMM[pc]!;
        H[d] = 0;
        break;
      case 0xd4: {
        // le16/32/64: on a little-endian VM only truncation
        const i = IMM[pc]!;
        if (i === 16) {
          L[d] = L[d]! & 0xffff;
          H[d] = 0;
        } else if (i === 32) H[d] = 0;
        break;
      }
      // ---- ALU32, X ----
      case 0x0c:
        L[d] = (L[d]! + L[s]!) | 0;
        H[d] = 0;
        break;
      case 0x1c:
        L[d] = (L[d]! - L[s]!) | 0;
        H[d] = 0;
        break;
      case 0x2c:
        L[d] = Math.imul(L[d]!, L[s]!);
        H[d] = 0;
        break;
      case 0x3c:
        L[d] = div32(L[d]!, L[s]!, OFF[pc] === 1);
        H[d] = 0;
        break;
      case 0x4c:
        L[d] = L[d]! | L[s]!;
        H[d] = 0;
        break;
      case 0x5c:
        L[d] = L[d]! & L[s]!;
        H[d] = 0;
        break;
      case 0x6c:
        L[d] = L[d]! << L[s]!;
        H[d] = 0;
        break;
      case 0x7c:
        L[d] = L[d]! >>> L[s]!;
        H[d] = 0;
        break;
      case 0x9c:
        L[d] = mod32(L[d]!, L[s]!, OFF[pc] === 1);
        H[d] = 0;
        break;
      case 0xac:
        L[d] = L[d]! ^ L[s]!;
        H[d] = 0;
        break;
      case 0xbc: {
        const off = OFF[pc]!;
        const v = L[s]!;
        L[d] = off === 8 ? (v << 24) >> 24 : off === 16 ? (v << 16) >> 16 : v;
        H[d] = 0;
        break;
      }
      case 0xcc:
        L[d] = L[d]! >> L[s]!;
        H[d] = 0;
        break;
      case 0xdc: {
        // be16/32/64
        const i = IMM[pc]!;
        if (i === 16) {
          L[d] = bswap16(L[d]!);
          H[d] = 0;
        } else if (i === 32) {
          L[d] = bswap32(L[d]!);
          H[d] = 0;
        } else {
          const lo = L[d]!;
          L[d] = bswap32(H[d]!);
          H[d] = bswap32(lo);
        }
        break;
      }

      // ---- JMP ----
      case 0x05:
        pc += OFF[pc]!;
        break;
      case 0x06:
        pc += IMM[pc]!;
        break;
      case 0x15: {
        const i = IMM[pc]!;
        if (L[d] === i && H[d] === i >> 31) pc += OFF[pc]!;
        break;
      }
      case 0x1d: {
        if (L[d] === L[s] && H[d] === H[s]) pc += OFF[pc]!;
        break;
      }
      case 0x55: {
        const i = IMM[pc]!;
        if (L[d] !== i || H[d] !== i >> 31) pc += OFF[pc]!;
        break;
      }
      case 0x5d: {
        if (L[d] !== L[s] || H[d] !== H[s]) pc += OFF[pc]!;
        break;
      }
      case 0x45: {
        const i = IMM[pc]!;
        if ((L[d]! & i) !== 0 || (H[d]! & (i >> 31)) !== 0) pc += OFF[pc]!;
        break;
      }
      case 0x4d: {
        if ((L[d]! & L[s]!) !== 0 || (H[d]! & H[s]!) !== 0) pc += OFF[pc]!;
        break;
      }
      case 0x25: {
        const i = IMM[pc]!;
        if (ugt(H[d]!, L[d]!, i >> 31, i)) pc += OFF[pc]!;
        break;
      }
      case 0x2d: {
        if (ugt(H[d]!, L[d]!, H[s]!, L[s]!)) pc += OFF[pc]!;
        break;
      }
      case 0x35: {
        const i = IMM[pc]!;
        if (uge(H[d]!, L[d]!, i >> 31, i)) pc += OFF[pc]!;
        break;
      }
      case 0x3d: {
        if (uge(H[d]!, L[d]!, H[s]!, L[s]!)) pc += OFF[pc]!;
        break;
      }
      case 0xa5: {
        const i = IMM[pc]!;
        if (ugt(i >> 31, i, H[d]!, L[d]!)) pc += OFF[pc]!;
        break;
      }
      case 0xad: {
        if (ugt(H[s]!, L[s]!, H[d]!, L[d]!)) pc += OFF[pc]!;
        break;
      }
      case 0xb5: {
        const i = IMM[pc]!;
        if (uge(i >> 31, i, H[d]!, L[d]!)) pc += OFF[pc]!;
        break;
      }
      case 0xbd: {
        if (uge(H[s]!, L[s]!, H[d]!, L[d]!)) pc += OFF[pc]!;
        break;
      }
      case 0x65: {
        const i = IMM[pc]!;
        if (sgt(H[d]!, L[d]!, i >> 31, i)) pc += OFF[pc]!;
        break;
      }
      case 0x6d: {
        if (sgt(H[d]!, L[d]!, H[s]!, L[s]!)) pc += OFF[pc]!;
        break;
      }
      case 0x75: {
        const i = IMM[pc]!;
        if (sge(H[d]!, L[d]!, i >> 31, i)) pc += OFF[pc]!;
        break;
      }
      case 0x7d: {
        if (sge(H[d]!, L[d]!, H[s]!, L[s]!)) pc += OFF[pc]!;
        break;
      }
      case 0xc5: {
        const i = IMM[pc]!;
        if (sgt(i >> 31, i, H[d]!, L[d]!)) pc += OFF[pc]!;
        break;
      }
      case 0xcd: {
        if (sgt(H[s]!, L[s]!, H[d]!, L[d]!)) pc += OFF[pc]!;
        break;
      }
      case 0xd5: {
        const i = IMM[pc]!;
        if (sge(i >> 31, i, H[d]!, L[d]!)) pc += OFF[pc]!;
        break;
      }
      case 0xdd: {
        if (sge(H[s]!, L[s]!, H[d]!, L[d]!)) pc += OFF[pc]!;
        break;
      }
      // ---- JMP32 ----
      case 0x16:
        if (L[d] === IMM[pc]) pc += OFF[pc]!;
        break;
      case 0x1e:
        if (L[d] === L[s]) pc += OFF[pc]!;
        break;
      case 0x56:
        if (L[d] !== IMM[pc]) pc += OFF[pc]!;
        break;
      case 0x5e:
        if (L[d] !== L[s]) pc += OFF[pc]!;
        break;
      case 0x46:
        if ((L[d]! & IMM[pc]!) !== 0) pc += OFF[pc]!;
        break;
      case 0x4e:
        if ((L[d]! & L[s]!) !== 0) pc += OFF[pc]!;
        break;
      case 0x26:
        if (L[d]! >>> 0 > IMM[pc]! >>> 0) pc += OFF[pc]!;
        break;
      case 0x2e:
        if (L[d]! >>> 0 > L[s]! >>> 0) pc += OFF[pc]!;
        break;
      case 0x36:
        if (L[d]! >>> 0 >= IMM[pc]! >>> 0) pc += OFF[pc]!;
        break;
      case 0x3e:
        if (L[d]! >>> 0 >= L[s]! >>> 0) pc += OFF[pc]!;
        break;
      case 0xa6:
        if (L[d]! >>> 0 < IMM[pc]! >>> 0) pc += OFF[pc]!;
        break;
      case 0xae:
        if (L[d]! >>> 0 < L[s]! >>> 0) pc += OFF[pc]!;
        break;
      case 0xb6:
        if (L[d]! >>> 0 <= IMM[pc]! >>> 0) pc += OFF[pc]!;
        break;
      case 0xbe:
        if (L[d]! >>> 0 <= L[s]! >>> 0) pc += OFF[pc]!;
        break;
      case 0x66:
        if (L[d]! > IMM[pc]!) pc += OFF[pc]!;
        break;
      case 0x6e:
        if (L[d]! > L[s]!) pc += OFF[pc]!;
        break;
      case 0x76:
        if (L[d]! >= IMM[pc]!) pc += OFF[pc]!;
        break;
      case 0x7e:
        if (L[d]! >= L[s]!) pc += OFF[pc]!;
        break;
      case 0xc6:
        if (L[d]! < IMM[pc]!) pc += OFF[pc]!;
        break;
      case 0xce:
        if (L[d]! < L[s]!) pc += OFF[pc]!;
        break;
      case 0xd6:
        if (L[d]! <= IMM[pc]!) pc += OFF[pc]!;
        break;
      case 0xde:
        if (L[d]! <= L[s]!) pc += OFF[pc]!;
        break;

      // ---- calls and exit ----
      case 0x85:
      case 0x8d: {
        let k = KIND[pc]!;
        let target = 0;
        let helperId = IMM[pc]!;
        if (k === K.CALLX) {
          const r = p.callxRegs.get(pc)!;
          const lo = L[r]!;
          const hi = H[r]!;
          const v = big(lo, hi);
          const rel = BigInt.asUintN(64, v - CODE_BASE);
          if (rel % 8n === 0n && rel / 8n < BigInt(p.length) && p.addressTaken.has(Number(rel / 8n))) {
            k = K.LOCAL_CALL;
            target = Number(rel / 8n);
          } else {
            st.budget = budget;
            const r0 = callxHelper(p, pc, v, st, big(L[1]!, H[1]!), big(L[2]!, H[2]!), big(L[3]!, H[3]!), big(L[4]!, H[4]!), big(L[5]!, H[5]!));
            L[0] = Number(BigInt.asIntN(32, r0));
            H[0] = Number(BigInt.asIntN(32, r0 >> 32n));
            C[1] = 0;
            C[3] = 0;
            dv = mem.view();
            break;
          }
        } else if (k === K.LOCAL_CALL) target = pc + 1 + IMM[pc]!;
        if (k === K.HELPER) {
          st.budget = budget;
          const r0 = callHelper(p, pc, p.helpers[pc]!, helperId, st, big(L[1]!, H[1]!), big(L[2]!, H[2]!), big(L[3]!, H[3]!), big(L[4]!, H[4]!), big(L[5]!, H[5]!));
          L[0] = Number(BigInt.asIntN(32, r0));
          H[0] = Number(BigInt.asIntN(32, r0 >> 32n));
          C[1] = 0;
            C[3] = 0;
            dv = mem.view();
          break;
        }
        if (k === K.LOCAL_CALL) {
          if (depth + 1 >= MAX_CALL_DEPTH) {
            throw new VmError('stack', `call depth exceeds ${MAX_CALL_DEPTH} frames`, { pc, insn: p.text(pc), program: p.name });
          }
          const b = sp * 19;
          for (let r = 1; r <= 9; r++) {
            frames[b + r * 2 - 2] = L[r]!;
            frames[b + r * 2 - 1] = H[r]!;
          }
          frames[b + 18] = pc + 1;
          sp++;
          depth++;
          L[0] = 0;
          H[0] = 0;
          for (let r = 6; r <= 9; r++) {
            L[r] = 0;
            H[r] = 0;
          }
          L[10] = STACK_TOP - depth * STACK_FRAME_SIZE;
          stackLo = L[10]! - STACK_FRAME_SIZE;
          pc = target;
          continue;
        }
        // tail call
        const t = tailTarget(p, pc, st, big(L[2]!, H[2]!), big(L[3]!, H[3]!));
        if (t === undefined) {
          L[0] = -2;
          H[0] = -1;
          break;
        }
        st.budget = budget;
        const r0 = st.tail(t, big(L[1]!, H[1]!), depth);
        budget = st.budget;
        C[1] = 0;
            C[3] = 0;
            dv = mem.view();
        L[0] = Number(BigInt.asIntN(32, r0));
        H[0] = Number(BigInt.asIntN(32, r0 >> 32n));
        // the current frame ends here with the target's r0
        if (sp === 0) {
          st.budget = budget;
          return BigInt.asUintN(64, big(L[0]!, H[0]!));
        }
        sp--;
        {
          const b = sp * 19;
          for (let r = 1; r <= 9; r++) {
            L[r] = frames[b + r * 2 - 2]!;
            H[r] = frames[b + r * 2 - 1]!;
          }
          pc = frames[b + 18]!;
          depth--;
          L[10] = STACK_TOP - depth * STACK_FRAME_SIZE;
          stackLo = L[10]! - STACK_FRAME_SIZE;
        }
        continue;
      }
      case 0x95: {
        if (budget < 0) {
          st.budget = budget;
          throw budgetError(p, pc, st);
        }
        if (sp === 0) {
          st.budget = budget;
          return BigInt.asUintN(64, big(L[0]!, H[0]!));
        }
        sp--;
        const b = sp * 19;
        for (let r = 1; r <= 9; r++) {
          L[r] = frames[b + r * 2 - 2]!;
          H[r] = frames[b + r * 2 - 1]!;
        }
        pc = frames[b + 18]!;
        depth--;
        L[10] = STACK_TOP - depth * STACK_FRAME_SIZE;
        stackLo = L[10]! - STACK_FRAME_SIZE;
        continue;
      }

      // ---- lddw ----
      case 0x18:
        L[d] = p.kLo[pc]!;
        H[d] = p.kHi[pc]!;
        pc++;
        break;

      // ---- legacy packet loads ----
      case 0x20:
      case 0x28:
      case 0x30:
      case 0x40:
      case 0x48:
      case 0x50: {
        st.budget = budget; // a packet exit ends the run here
        const w = o & 0x10 ? 1 : o & 0x08 ? 2 : 4;
        const off = (o & 0x40 ? (L[s]! + IMM[pc]!) | 0 : IMM[pc]!);
        L[0] = packetLoad(mem, st, off, w);
        H[0] = 0;
        break;
      }

      // ---- LDX ----
      case 0x61: {
        const a = rd(L, H, s, OFF[pc]!, 4, C, mem, p, pc, stackLo);
        L[d] = dv.getInt32(a, true);
        H[d] = 0;
        break;
      }
      case 0x69: {
        const a = rd(L, H, s, OFF[pc]!, 2, C, mem, p, pc, stackLo);
        L[d] = dv.getUint16(a, true);
        H[d] = 0;
        break;
      }
      case 0x71: {
        const a = rd(L, H, s, OFF[pc]!, 1, C, mem, p, pc, stackLo);
        L[d] = dv.getUint8(a);
        H[d] = 0;
        break;
      }
      case 0x79: {
        const a = rd(L, H, s, OFF[pc]!, 8, C, mem, p, pc, stackLo);
        L[d] = dv.getInt32(a, true);
        H[d] = dv.getInt32(a + 4, true);
        break;
      }
      case 0x81: {
        const a = rd(L, H, s, OFF[pc]!, 4, C, mem, p, pc, stackLo);
        const v = dv.getInt32(a, true);
        L[d] = v;
        H[d] = v >> 31;
        break;
      }
      case 0x89: {
        const a = rd(L, H, s, OFF[pc]!, 2, C, mem, p, pc, stackLo);
        const v = dv.getInt16(a, true);
        L[d] = v;
        H[d] = v >> 31;
        break;
      }
      case 0x91: {
        const a = rd(L, H, s, OFF[pc]!, 1, C, mem, p, pc, stackLo);
        const v = dv.getInt8(a);
        L[d] = v;
        H[d] = v >> 31;
        break;
      }
      // ---- ST ----
      case 0x62:
        dv.setInt32(wr(L, H, d, OFF[pc]!, 4, C, mem, p, pc, stackLo), IMM[pc]!, true);
        break;
      case 0x6a:
        dv.setInt16(wr(L, H, d, OFF[pc]!, 2, C, mem, p, pc, stackLo), IMM[pc]!, true);
        break;
      case 0x72:
        dv.setInt8(wr(L, H, d, OFF[pc]!, 1, C, mem, p, pc, stackLo), IMM[pc]!);
        break;
      case 0x7a: {
        const a = wr(L, H, d, OFF[pc]!, 8, C, mem, p, pc, stackLo);
        const i = IMM[pc]!;
        dv.setInt32(a, i, true);
        dv.setInt32(a + 4, i >> 31, true);
        break;
      }
      // ---- STX ----
      case 0x63:
        dv.setInt32(wr(L, H, d, OFF[pc]!, 4, C, mem, p, pc, stackLo), L[s]!, true);
        break;
      case 0x6b:
        dv.setInt16(wr(L, H, d, OFF[pc]!, 2, C, mem, p, pc, stackLo), L[s]!, true);
        break;
      case 0x73:
        dv.setInt8(wr(L, H, d, OFF[pc]!, 1, C, mem, p, pc, stackLo), L[s]!);
        break;
      case 0x7b: {
        const a = wr(L, H, d, OFF[pc]!, 8, C, mem, p, pc, stackLo);
        dv.setInt32(a, L[s]!, true);
        dv.setInt32(a + 4, H[s]!, true);
        break;
      }
      // ---- atomics ----
      case 0xc3: {
        const a = wr(L, H, d, OFF[pc]!, 4, C, mem, p, pc, stackLo);
        const op = IMM[pc]!;
        const old = dv.getInt32(a, true);
        const v = L[s]!;
        if (op === 0xf1) {
          if (old === L[0]) dv.setInt32(a, v, true);
          L[0] = old;
          H[0] = 0;
          break;
        }
        let nv: number;
        switch (op & ~1) {
          case 0x00:
            nv = (old + v) | 0;
            break;
          case 0x40:
            nv = old | v;
            break;
          case 0x50:
            nv = old & v;
            break;
          case 0xa0:
            nv = old ^ v;
            break;
          default:
            nv = v; // xchg (0xe0)
        }
        dv.setInt32(a, nv, true);
        if (op & 1) {
          L[s] = old;
          H[s] = 0;
        }
        break;
      }
      case 0xdb: {
        const a = wr(L, H, d, OFF[pc]!, 8, C, mem, p, pc, stackLo);
        const op = IMM[pc]!;
        const ol = dv.getInt32(a, true);
        const oh = dv.getInt32(a + 4, true);
        const vl = L[s]!;
        const vh = H[s]!;
        if (op === 0xf1) {
          if (ol === L[0] && oh === H[0]) {
            dv.setInt32(a, vl, true);
            dv.setInt32(a + 4, vh, true);
          }
          L[0] = ol;
          H[0] = oh;
          break;
        }
        let nl: number;
        let nh: number;
        switch (op & ~1) {
          case 0x00: {
            const sum = (ol >>> 0) + (vl >>> 0);
            nl = sum | 0;
            nh = (oh + vh + (sum >= 4294967296 ? 1 : 0)) | 0;
            break;
          }
          case 0x40:
            nl = ol | vl;
            nh = oh | vh;
            break;
          case 0x50:
            nl = ol & vl;
            nh = oh & vh;
            break;
          case 0xa0:
            nl = ol ^ vl;
            nh = oh ^ vh;
            break;
          default:
            nl = vl;
            nh = vh;
        }
        dv.setInt32(a, nl, true);
        dv.setInt32(a + 4, nh, true);
        if (op & 1) {
          L[s] = ol;
          H[s] = oh;
        }
        break;
      }
      default:
        // load() admits nothing else
        throw new VmError('invalid', `opcode 0x${o.toString(16)} reached the interpreter`, { pc, insn: p.text(pc), program: p.name });
    }
    pc++;
  }
}

function shl64(L: Int32Array, H: Int32Array, d: number, n: number): void {
  if (n === 0) return;
  if (n < 32) {
    H[d] = (H[d]! << n) | (L[d]! >>> (32 - n));
    L[d] = L[d]! << n;
  } else {
    H[d] = L[d]! << (n - 32);
    L[d] = 0;
  }
}

function shr64(L: Int32Array, H: Int32Array, d: number, n: number): void {
  if (n === 0) return;
  if (n < 32) {
    L[d] = (L[d]! >>> n) | (H[d]! << (32 - n));
    H[d] = H[d]! >>> n;
  } else {
    L[d] = H[d]! >>> (n - 32);
    H[d] = 0;
  }
}

function sar64(L: Int32Array, H: Int32Array, d: number, n: number): void {
  if (n === 0) return;
  if (n < 32) {
    L[d] = (L[d]! >>> n) | (H[d]! << (32 - n));
    H[d] = H[d]! >> n;
  } else {
    L[d] = H[d]! >> (n - 32);
    H[d] = H[d]! >> 31;
  }
}
