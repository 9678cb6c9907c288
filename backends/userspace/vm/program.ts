// vm.load(): validation, decoding into flat typed arrays, resolution of lddw pseudo loads and calls
// through the VmEnvironment, and the control-flow facts both engines share (basic-block leaders and
// their instruction counts for the budget, functions and their reachable code for the JIT).

import { createHash } from 'node:crypto';
import {
  CALL_SRC,
  HELPER_TAIL_CALL,
  LDDW_SRC,
  VmError,
  type Helper,
  type LoadOptions,
  type VmEnvironment,
  type VmProgram,
} from './api.js';
import { ALU_OP, ATOMIC, CLS, JMP_OP, MODE, OP_LDDW, SRC_X, callxReg, disasmOne } from './isa.js';
import { Memory } from './memory.js';

/** address value of a function for callx: CODE_BASE + 8 * its first slot (lddw src 4 yields this) */
export const CODE_BASE = 0xc0de_0000_0000_0000n;
const MAX_INSNS = 1_000_000;
/** bit of LoadedProgram.word set at basic-block leaders (cost[pc] != 0) */
const LEADER = 0x10000;

/** decoded op kinds of the flat representation (what the engines switch on) */
export const K = {
  /** plain instruction: engines switch on op */
  PLAIN: 0,
  /** lddw (any src): value in kLo/kHi */
  LDDW: 1,
  /** second slot of lddw (never executed) */
  LDDW2: 2,
  HELPER: 3,
  LOCAL_CALL: 4,
  TAIL_CALL: 5,
  CALLX: 6,
} as const;

export class LoadedProgram implements VmProgram {
  readonly name: string;
  readonly insns: Uint8Array;
  readonly length: number;
  readonly env: VmEnvironment;
  readonly hash: string;
  readonly memory: Memory;

  // flat decoded form
  readonly op: Uint8Array;
  readonly dst: Uint8Array;
  readonly src: Uint8Array;
  /** op | dst << 8 | src << 12 | LEADER at leaders: what the interpreter fetches */
  readonly word: Int32Array;
  readonly off: Int16Array;
  readonly imm: Int32Array;
  /** K.* per slot */
  readonly kind: Uint8Array;
  /** lddw values */
  readonly kLo: Int32Array;
  readonly kHi: Int32Array;
  /**
   * Instructions charged on arrival at a leader (0: not a leader). Negative at loop headers (targets of
   * backward jumps): charge -cost, then check the budget. The budget is also checked at every exit.
   */
  readonly cost: Int32Array;
  /** 1 where some jump (not call) lands */
  readonly jumpTarget: Uint8Array;
  /** resolved helpers by call slot */
  readonly helpers: (Helper | undefined)[];
  /** function entry slots: 0 first, then call targets and code_addr targets, ascending */
  readonly functions: number[];
  /** functions whose address is taken (lddw src 4): the only valid local callx targets */
  readonly addressTaken: Set<number>;
  /** every callx slot's register */
  readonly callxRegs: Map<number, number>;
  /** helper ids used by call instructions */
  readonly helperIds: number[];
  /** ids of resolved helpers, by slot (for the JIT's imports) */
  readonly helperIdAt: Int32Array;
  /** JIT cache key: program hash + resolved constants */
  readonly jitKey: string;
  readonly usesLdAbs: boolean;

  constructor(insns: Uint8Array, env: VmEnvironment, name: string) {
    this.name = name;
    this.env = env;
    if (!(env.memory instanceof Memory)) throw new VmError('unsupported', 'the environment\'s memory must come from vm.createMemory()', { program: name });
    this.memory = env.memory;
    if (insns.length === 0) throw new VmError('invalid', 'empty program', { program: name });
    if (insns.length % 8 !== 0) throw new VmError('invalid', `program length ${insns.length} is not a multiple of 8 (truncated instruction)`, { program: name });
    const n = insns.length / 8;
    if (n > MAX_INSNS) throw new VmError('invalid', `program has ${n} instructions (limit ${MAX_INSNS})`, { program: name });
    this.insns = insns.slice();
    this.length = n;
    this.hash = createHash('sha256').update(this.insns).digest('hex');
    this.op = new Uint8Array(n);
    this.dst = new Uint8Array(n);
    this.src = new Uint8Array(n);
    this.off = new Int16Array(n);
    this.imm = new Int32Array(n);
    this.kind = new Uint8Array(n);
    this.kLo = new Int32Array(n);
    this.kHi = new Int32Array(n);
    this.cost = new Int32Array(n);
    this.helpers = new Array<Helper | undefined>(n);
    this.helperIdAt = new Int32Array(n).fill(-1);
    this.addressTaken = new Set();
    this.callxRegs = new Map();
    const dv = new DataView(this.insns.buffer, this.insns.byteOffset, this.insns.byteLength);
    for (let pc = 0; pc < n; pc++) {
      this.op[pc] = this.insns[pc * 8]!;
      const regs = this.insns[pc * 8 + 1]!;
      this.dst[pc] = regs & 0xf;
      this.src[pc] = regs >> 4;
      this.off[pc] = dv.getInt16(pc * 8 + 2, true);
      this.imm[pc] = dv.getInt32(pc * 8 + 4, true);
    }
    const fail = (kind: 'invalid' | 'unsupported', pc: number, msg: string): never => {
      throw new VmError(kind, msg, { pc, insn: disasmOne(this.insns, pc), program: name });
    };

    // pass 1: per-instruction validation, lddw pairs, jump and call targets
    const jumpTargets: number[] = [];
    const funcSet = new Set<number>([0]);
    const helperIds = new Set<number>();
    let usesLdAbs = false;
    const constants: string[] = [];
    const checkTarget = (pc: number, t: number, what: string): void => {
      if (t < 0 || t >= n) fail('invalid', pc, `${what} target ${t} out of range (program has ${n} slots)`);
      if (this.kind[t] === K.LDDW2 || (t > 0 && this.op[t - 1] === OP_LDDW && this.kind[t - 1] === K.LDDW)) {
        fail('invalid', pc, `${what} target ${t} is the middle of an lddw`);
      }
    };
    // lddw second slots first (so jump checks can see them regardless of order)
    for (let pc = 0; pc < n; pc++) {
      if (this.kind[pc] === K.LDDW2) continue;
      if (this.op[pc] === OP_LDDW) {
        if (pc + 1 >= n) fail('invalid', pc, 'lddw is truncated (no second slot)');
        if (this.op[pc + 1] !== 0 || this.dst[pc + 1] !== 0 || this.src[pc + 1] !== 0 || this.off[pc + 1] !== 0) {
          fail('invalid', pc, 'lddw second slot must have opcode, registers and offset zero');
        }
        this.kind[pc] = K.LDDW;
        this.kind[pc + 1] = K.LDDW2;
        pc++;
      }
    }
    for (let pc = 0; pc < n; pc++) {
      const op = this.op[pc]!;
      const d = this.dst[pc]!;
      const s = this.src[pc]!;
      const off = this.off[pc]!;
      const imm = this.imm[pc]!;
      if (this.kind[pc] === K.LDDW2) continue;
      if (d > 10) fail('invalid', pc, `bad destination register r${d}`);
      if (s > 10) fail('invalid', pc, `bad source register r${s}`);
      const c = op & 7;
      const writesDst = (): void => {
        if (d === 10) fail('invalid', pc, 'r10 (the frame pointer) is read-only');
      };
      switch (c) {
        case CLS.ALU:
        case CLS.ALU64: {
          const code = op & 0xf0;
          const x = (op & SRC_X) !== 0;
          writesDst();
          if (code === ALU_OP.END) {
            if (c === CLS.ALU64 && x) fail('invalid', pc, 'bswap with the source bit set');
            if (imm !== 16 && imm !== 32 && imm !== 64) fail('invalid', pc, `byte swap width ${imm} (16, 32 or 64)`);
            break;
          }
          if (code > ALU_OP.END) fail('invalid', pc, `unknown ALU opcode 0x${op.toString(16)}`);
          if (code === ALU_OP.NEG && x) fail('invalid', pc, 'neg with the source bit set');
          if (code === ALU_OP.DIV || code === ALU_OP.MOD) {
            if (off !== 0 && off !== 1) fail('invalid', pc, `div/mod offset ${off} (0 unsigned, 1 signed)`);
          } else if (code === ALU_OP.MOV) {
            if (off !== 0) {
              if (!x) fail('invalid', pc, 'movsx needs a register source');
              if (!(off === 8 || off === 16 || (off === 32 && c === CLS.ALU64))) fail('invalid', pc, `movsx width ${off}`);
            }
          } else if (off !== 0) fail('invalid', pc, `ALU offset ${off} must be 0`);
          break;
        }
        case CLS.JMP:
        case CLS.JMP32: {
          const code = op & 0xf0;
          const x = (op & SRC_X) !== 0;
          if (code === JMP_OP.JA) {
            if (x) fail('invalid', pc, 'ja with the source bit set');
            const t = pc + 1 + (c === CLS.JMP ? off : imm);
            checkTarget(pc, t, 'jump');
            jumpTargets.push(t);
          } else if (code === JMP_OP.EXIT) {
            if (c !== CLS.JMP || x) fail('invalid', pc, 'bad exit encoding');
          } else if (code === JMP_OP.CALL) {
            if (c !== CLS.JMP) fail('invalid', pc, 'call in the JMP32 class');
            if (x) {
              const r = callxReg({ op, dst: d, src: s, off, imm });
              if (r < 0) fail('invalid', pc, 'callx register is not valid');
              this.kind[pc] = K.CALLX;
              this.callxRegs.set(pc, r);
            } else if (s === CALL_SRC.LOCAL) {
              const t = pc + 1 + imm;
              checkTarget(pc, t, 'call');
              funcSet.add(t);
              this.kind[pc] = K.LOCAL_CALL;
            } else if (s === CALL_SRC.KFUNC) {
              fail('unsupported', pc, `calls of kernel functions by BTF id (kfunc ${imm}) are not supported by the userspace VM`);
            } else if (s !== CALL_SRC.HELPER) {
              fail('invalid', pc, `call with src_reg ${s}`);
            } else {
              const h = env.helper(imm);
              if (h !== undefined) {
                this.helpers[pc] = h;
                this.kind[pc] = K.HELPER;
                this.helperIdAt[pc] = imm;
                helperIds.add(imm);
              } else if (imm === HELPER_TAIL_CALL && env.tailCall !== undefined) {
                this.kind[pc] = K.TAIL_CALL;
              } else fail('unsupported', pc, `unknown helper ${imm}`);
            }
          } else if (code > JMP_OP.JSLE) {
            fail('invalid', pc, `unknown jump opcode 0x${op.toString(16)}`);
          } else {
            const t = pc + 1 + off;
            checkTarget(pc, t, 'jump');
            jumpTargets.push(t);
          }
          break;
        }
        case CLS.LD: {
          if (op === OP_LDDW) {
            writesDst();
            const next = this.imm[pc + 1]!;
            let v: bigint;
            switch (s) {
              case LDDW_SRC.IMM64:
                v = (BigInt(next >>> 0) << 32n) | BigInt(imm >>> 0);
                break;
              case LDDW_SRC.MAP_FD:
              case LDDW_SRC.MAP_IDX: {
                const f = s === LDDW_SRC.MAP_FD ? env.mapByFd : env.mapByIndex;
                const r = f?.call(env, imm);
                if (r === undefined) fail('unsupported', pc, `unknown map ${s === LDDW_SRC.MAP_FD ? 'fd' : 'index'} ${imm}`);
                if (next !== 0) fail('invalid', pc, 'lddw map reference with a nonzero second imm');
                v = r!;
                break;
              }
              case LDDW_SRC.MAP_VALUE:
              case LDDW_SRC.MAP_IDX_VALUE: {
                const f = s === LDDW_SRC.MAP_VALUE ? env.mapValue : env.mapValueByIndex;
                const r = f?.call(env, imm);
                if (r === undefined) fail('unsupported', pc, `no direct value for map ${s === LDDW_SRC.MAP_VALUE ? 'fd' : 'index'} ${imm}`);
                v = r! + BigInt(next);
                break;
              }
              case LDDW_SRC.CODE_ADDR: {
                const t = pc + 1 + imm;
                checkTarget(pc, t, 'code_addr');
                if (next !== 0) fail('invalid', pc, 'lddw code_addr with a nonzero second imm');
                funcSet.add(t);
                this.addressTaken.add(t);
                v = CODE_BASE + BigInt(t) * 8n;
                break;
              }
              case LDDW_SRC.VAR_ADDR:
                fail('unsupported', pc, 'lddw of a kernel variable by BTF id (src 3) is not supported by the userspace VM');
                v = 0n;
                break;
              default:
                fail('invalid', pc, `lddw with src_reg ${s}`);
                v = 0n;
            }
            v = BigInt.asUintN(64, v);
            this.kLo[pc] = Number(BigInt.asIntN(32, v));
            this.kHi[pc] = Number(BigInt.asIntN(32, v >> 32n));
            if (s !== 0) constants.push(`${pc}:${v.toString(16)}`);
            break;
          }
          const mode = op & 0xe0;
          if ((mode !== MODE.ABS && mode !== MODE.IND) || (op & 0x18) === 0x18) fail('invalid', pc, `unknown load opcode 0x${op.toString(16)}`);
          usesLdAbs = true;
          break;
        }
        case CLS.LDX: {
          writesDst();
          const mode = op & 0xe0;
          if (mode !== MODE.MEM && !(mode === MODE.MEMSX && (op & 0x18) !== 0x18)) fail('invalid', pc, `unknown load opcode 0x${op.toString(16)}`);
          break;
        }
        case CLS.ST:
          if ((op & 0xe0) !== MODE.MEM) fail('invalid', pc, `unknown store opcode 0x${op.toString(16)}`);
          break;
        case CLS.STX: {
          const mode = op & 0xe0;
          if (mode === MODE.MEM) break;
          if (mode !== MODE.ATOMIC || ((op & 0x18) !== 0x00 && (op & 0x18) !== 0x18)) fail('invalid', pc, `unknown store opcode 0x${op.toString(16)}`);
          const base = imm & ~ATOMIC.FETCH;
          if (!(imm === ATOMIC.XCHG || imm === ATOMIC.CMPXCHG || ((base === ATOMIC.ADD || base === ATOMIC.OR || base === ATOMIC.AND || base === ATOMIC.XOR) && (imm & ~0xf1) === 0))) {
            fail('invalid', pc, `unknown atomic operation 0x${imm.toString(16)}`);
          }
          if ((imm & ATOMIC.FETCH) !== 0 && s === 10) fail('invalid', pc, 'atomic fetch into r10');
          if (imm === ATOMIC.CMPXCHG) break;
          break;
        }
      }
      // falling off the end
      if (pc === n - 1 || (this.kind[pc] === K.LDDW && pc + 1 === n - 1)) {
        const isExit = op === (CLS.JMP | JMP_OP.EXIT);
        const isJa = (c === CLS.JMP || c === CLS.JMP32) && (op & 0xf0) === JMP_OP.JA;
        if (!isExit && !isJa) fail('invalid', pc, 'the last instruction can fall through past the end of the program');
      }
      if (this.kind[pc] === K.LDDW) pc++;
    }
    this.usesLdAbs = usesLdAbs;
    this.helperIds = [...helperIds].sort((a, b) => a - b);
    this.functions = [...funcSet].sort((a, b) => a - b);

    // leaders: entry, function entries, jump targets, and every slot after a jump/exit/branch
    const leader = new Uint8Array(n);
    leader[0] = 1;
    for (const f of this.functions) leader[f] = 1;
    for (const t of jumpTargets) leader[t] = 1;
    for (let pc = 0; pc < n; pc++) {
      const op = this.op[pc]!;
      const c = op & 7;
      if (this.kind[pc] === K.LDDW2) continue;
      if ((c === CLS.JMP || c === CLS.JMP32) && (op & 0xf0) !== JMP_OP.CALL) {
        const next = pc + 1;
        if (next < n) leader[next] = 1;
      }
    }
    // costs: instructions (slots, lddw counts once) from each leader to the next leader
    let start = -1;
    let count = 0;
    for (let pc = 0; pc < n; pc++) {
      if (leader[pc]) {
        if (start >= 0) this.cost[start] = count;
        start = pc;
        count = 0;
      }
      if (this.kind[pc] !== K.LDDW2) count++;
    }
    if (start >= 0) this.cost[start] = count;
    this.word = new Int32Array(n);
    for (let pc = 0; pc < n; pc++) this.word[pc] = this.op[pc]! | (this.dst[pc]! << 8) | (this.src[pc]! << 12) | (this.cost[pc] !== 0 ? LEADER : 0);
    this.jumpTarget = new Uint8Array(n);
    for (const t of jumpTargets) this.jumpTarget[t] = 1;
    // loop headers: targets of backward jumps
    for (let pc = 0; pc < n; pc++) {
      if (this.kind[pc] === K.LDDW2) continue;
      const op = this.op[pc]!;
      const c = op & 7;
      if ((c !== CLS.JMP && c !== CLS.JMP32) || (op & 0xf0) === JMP_OP.CALL || (op & 0xf0) === JMP_OP.EXIT) continue;
      const t = pc + 1 + (c === CLS.JMP32 && (op & 0xf0) === JMP_OP.JA ? this.imm[pc]! : this.off[pc]!);
      if (t <= pc && this.cost[t]! > 0) this.cost[t] = -this.cost[t]!;
    }
    this.jitKey = `${this.hash}|${constants.join(',')}|${this.helperIds.join(',')}|${env.tailCall !== undefined ? 't' : ''}`;
  }

  /** instruction text for messages */
  text(pc: number): string {
    return disasmOne(this.insns, pc);
  }
}

export function loadProgram(insns: Uint8Array, opts: LoadOptions | undefined, defaultEnv: () => VmEnvironment): LoadedProgram {
  if (!(insns instanceof Uint8Array)) throw new TypeError('vm.load: instructions must be a Uint8Array');
  return new LoadedProgram(insns, opts?.env ?? defaultEnv(), opts?.name ?? 'prog');
}
