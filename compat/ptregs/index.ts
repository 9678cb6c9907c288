// Arch-aware pt_regs relocation (issue #5 point 2): see README.md in this folder.
//
// relocatePtRegs(bytes) rewrites an eBPF object built for another __TARGET_ARCH (x86 or arm64) so its
// kprobe/uprobe programs read the host arch's registers from struct pt_regs:
//   - CO-RE field relocations whose root type is pt_regs / user_pt_regs (or a pt_regs___flavour) and
//     whose member belongs to the foreign arch: the instruction is patched with the host offset (or
//     size/existence value) and the record is removed from .BTF.ext (libbpf would otherwise look for
//     the foreign type in the kernel BTF and poison the instruction);
//   - programs without CO-RE records (offsets baked into ctx loads): r1 (ctx) is tracked through
//     register copies and constant adds; every load from ctx+K is mapped from the source layout to
//     the host layout. A ctx pointer that escapes (spilled, handed to a subprogram or a read helper)
//     makes the program refused, never silently misread.
// The output has the same size as the input (in-place patches; .BTF.ext's core_relo subsection is
// compacted and its length shrunk).
import fs from 'node:fs';
import { BackendError } from '../../src/errors.js';
import { type Btf, parseBtf } from '../../src/object/btf.js';
import { type BpfObject, CORE_POISON_HELPER, loadObject, type ProgramCoreReloc } from '../../src/object/loader.js';
import { ERRNO, HELPER, PROG_TYPE } from '../../src/kernel/uapi.js';

export type PtRegsArch = 'x86' | 'arm64';

export class PtRegsError extends Error {
  readonly code = 'PTREGS_UNSUPPORTED';
  constructor(
    message: string,
    readonly program: string,
    readonly insn: number,
    readonly member: string,
  ) {
    super(message);
    this.name = 'PtRegsError';
  }
}

/** Byte offsets of the host's struct pt_regs members (x86: 'di', ...; arm64: 'regs', 'sp', 'pc', 'orig_x0'). */
export type PtRegsLayout = Readonly<Record<string, number>>;

export interface PtRegsOptions {
  /** default: process.arch (x64 -> x86, arm64 -> arm64; anything else: the pass does nothing) */
  hostArch?: PtRegsArch;
  /** the arch the object was built for; default: inferred (CO-RE records, then the object's BTF) */
  sourceArch?: PtRegsArch;
  /** host pt_regs layout; default: from hostBtf, else /sys/kernel/btf/vmlinux, else the built-in one */
  hostLayout?: PtRegsLayout;
  hostBtf?: Btf;
}

export interface PtRegsPatch {
  program: string;
  section: string;
  /** instruction index in the program (as the verifier and `bpftool prog dump` count) */
  insn: number;
  via: 'core' | 'ctx';
  from: string;
  to: string;
  oldValue: number;
  newValue: number;
}

export interface PtRegsResult {
  bytes: Uint8Array;
  sourceArch: PtRegsArch | undefined;
  hostArch: PtRegsArch | undefined;
  patches: PtRegsPatch[];
  /** CO-RE records removed from .BTF.ext */
  removedCoreRecords: number;
  /** why nothing was done, when nothing was */
  skipped?: string;
}

// ---- layouts ------------------------------------------------------------------------------------------

const X86_REGS = ['r15', 'r14', 'r13', 'r12', 'bp', 'bx', 'r11', 'r10', 'r9', 'r8', 'ax', 'cx', 'dx', 'si', 'di', 'orig_ax', 'ip', 'cs', 'flags', 'sp', 'ss'];
/** x86_64 struct pt_regs (arch/x86/include/asm/ptrace.h) */
export const X86_LAYOUT: PtRegsLayout = Object.fromEntries(X86_REGS.map((r, i) => [r, i * 8]));
/** arm64 struct pt_regs (its head is struct user_pt_regs: regs[31], sp, pc, pstate; then orig_x0) */
export const ARM64_LAYOUT: PtRegsLayout = { regs: 0, sp: 248, pc: 256, pstate: 264, orig_x0: 272 };

/** A register as the source object names it: 'di', 'regs[3]', 'sp', 'orig_x0', ... */
type Reg = string;

/** The member a host-layout offset designates, or undefined. */
function regAt(arch: PtRegsArch, off: number): Reg | undefined {
  if (off % 8 !== 0 || off < 0) return undefined;
  if (arch === 'x86') return X86_REGS[off / 8];
  if (off < 248) return `regs[${off / 8}]`;
  return (['sp', 'pc', 'pstate', 'orig_x0'] as const)[(off - 248) / 8];
}

type ProgKind = 'entry' | 'return' | 'unknown';

function progKind(section: string): ProgKind {
  const s = section.split('/')[0]!;
  if (/^(kretprobe|uretprobe|kretsyscall)(\.s|\.multi|\.multi\.s)?$/.test(s)) return 'return';
  if (/^(kprobe|uprobe|ksyscall)(\.s|\.multi|\.multi\.s)?$/.test(s)) return 'entry';
  return 'unknown';
}

const X86_TO_ARM64: Readonly<Record<string, Reg>> = {
  di: 'regs[0]', si: 'regs[1]', dx: 'regs[2]', cx: 'regs[3]', r8: 'regs[4]', r9: 'regs[5]',
  ax: 'regs[0]', sp: 'sp', ip: 'pc', bp: 'regs[29]',
  r10: 'regs[3]', // only bpf_tracing.h's PT_REGS_PARM4_SYSCALL reads r10: the 4th syscall argument
};
const ARM64_ARGS = ['di', 'si', 'dx', 'cx', 'r8', 'r9'];

/** Maps a source register to the host's; a string starting with '!' is the refusal reason. */
export function mapRegister(from: PtRegsArch, to: PtRegsArch, reg: Reg, kind: ProgKind): Reg {
  if (from === to) return reg;
  if (from === 'x86') return X86_TO_ARM64[reg] ?? `!x86 register '${reg}' has no arm64 counterpart bpf_tracing.h could mean`;
  const m = /^regs\[(\d+)\]$/.exec(reg);
  if (m) {
    const i = Number(m[1]);
    if (i === 0) {
      if (kind === 'return') return 'ax';
      if (kind === 'entry') return 'di';
      return `!arm64 regs[0] is both the first argument and the return value; the program's section does not say which`;
    }
    if (i < 6) return ARM64_ARGS[i]!;
    if (i < 8) return `!arm64 argument register regs[${i}]: x86_64 passes the 7th and 8th arguments on the stack`;
    if (i === 29) return 'bp';
    if (i === 30) return `!arm64 link register regs[30]: x86_64 keeps the return address on the stack, not in a register`;
    return `!arm64 register regs[${i}] is not an argument, return, frame, stack or instruction register`;
  }
  if (reg === 'sp') return 'sp';
  if (reg === 'pc') return 'ip';
  if (reg === 'orig_x0') return 'di'; // the first syscall argument (PT_REGS_PARM1_SYSCALL)
  return `!arm64 member '${reg}' has no x86_64 counterpart`;
}

function hostOffset(layout: PtRegsLayout, reg: Reg): number | undefined {
  const m = /^regs\[(\d+)\]$/.exec(reg);
  if (m) return layout.regs === undefined ? undefined : layout.regs + 8 * Number(m[1]);
  return layout[reg];
}

/** Offsets of the host pt_regs members from a kernel BTF (members of anonymous unions/structs included). */
export function layoutFromBtf(btf: Btf, arch: PtRegsArch): PtRegsLayout | undefined {
  const id = btf.findByName('pt_regs', 'STRUCT')[0];
  if (id === undefined) return undefined;
  const out: Record<string, number> = {};
  const walk = (tid: number, base: number, depth: number): void => {
    const t = btf.resolveType(tid);
    if ((t.kind !== 'STRUCT' && t.kind !== 'UNION') || depth > 4) return;
    for (const m of t.members) {
      const off = base + m.bitOffset / 8;
      if (m.name === '') walk(m.type, off, depth + 1);
      else if (!(m.name in out)) out[m.name] = off;
    }
  };
  walk(id, 0, 0);
  const need = arch === 'x86' ? ['di', 'si', 'dx', 'cx', 'r8', 'r9', 'ax', 'sp', 'ip', 'bp'] : ['regs', 'sp', 'pc'];
  return need.every((n) => n in out) ? out : undefined;
}

function hostArchOf(): PtRegsArch | undefined {
  return process.arch === 'x64' ? 'x86' : process.arch === 'arm64' ? 'arm64' : undefined;
}

function defaultHostLayout(arch: PtRegsArch, opts: PtRegsOptions): PtRegsLayout {
  if (opts.hostLayout) return opts.hostLayout;
  let btf = opts.hostBtf;
  if (!btf) {
    try {
      btf = parseBtf(new Uint8Array(fs.readFileSync('/sys/kernel/btf/vmlinux')));
    } catch {
      btf = undefined;
    }
  }
  return (btf && layoutFromBtf(btf, arch)) ?? (arch === 'x86' ? X86_LAYOUT : ARM64_LAYOUT);
}

// ---- CO-RE records ------------------------------------------------------------------------------------

const X86_MEMBERS = new Set(X86_REGS);
const ARM64_ONLY = new Set(['regs', 'pc', 'pstate', 'orig_x0', 'user_regs', 'syscallno']);

interface CoreAccess {
  root: string;
  /** 'di', 'regs[2]', 'sp', ... */
  reg: Reg;
  /** the arch the member names belong to; undefined for 'sp' (both) */
  arch: PtRegsArch | undefined;
}

/** Decodes a CO-RE record on a pt_regs flavour; undefined when the root is not pt_regs-like. */
function decodeCore(btf: Btf, c: ProgramCoreReloc): CoreAccess | string | undefined {
  const rootT = btf.resolveType(c.relo.typeId);
  const root = rootT.name.replace(/___.*$/, '');
  if (root !== 'pt_regs' && root !== 'user_pt_regs') return undefined;
  if (c.relo.kind > 5) return `type-based CO-RE relocation (kind ${c.relo.kind}) on '${rootT.name}'`;
  const idx = c.relo.access.split(':').map(Number);
  if (idx[0] !== 0) return `access '${c.relo.access}' indexes an array of '${rootT.name}'`;
  let t = rootT;
  const names: string[] = [];
  let arrayIndex: number | undefined;
  for (let k = 1; k < idx.length; k++) {
    const i = idx[k]!;
    if (t.kind === 'STRUCT' || t.kind === 'UNION') {
      const m = t.members[i];
      if (!m) return `access '${c.relo.access}' is outside '${rootT.name}'`;
      if (m.name !== '') names.push(m.name);
      t = btf.resolveType(m.type);
    } else if (t.kind === 'ARRAY') {
      if (arrayIndex !== undefined) return `nested array access '${c.relo.access}'`;
      arrayIndex = i;
      t = btf.resolveType(t.type);
    } else return `access '${c.relo.access}' goes below a scalar`;
  }
  const last = names[names.length - 1];
  if (last === undefined) return `access '${c.relo.access}' names no member of '${rootT.name}'`;
  if (last === 'regs' && arrayIndex !== undefined) return { root: rootT.name, reg: `regs[${arrayIndex}]`, arch: 'arm64' };
  if (arrayIndex !== undefined) return `array access to '${last}[${arrayIndex}]'`;
  if (root === 'user_pt_regs' || ARM64_ONLY.has(last)) return { root: rootT.name, reg: last, arch: 'arm64' };
  if (last === 'sp') return { root: rootT.name, reg: 'sp', arch: undefined };
  if (X86_MEMBERS.has(last)) return { root: rootT.name, reg: last, arch: 'x86' };
  return `member '${last}' of '${rootT.name}' is neither an x86_64 nor an arm64 register`;
}

// ---- ctx dataflow -------------------------------------------------------------------------------------

/**
 * ctx + k; 'core': ctx + a CO-RE-relocated offset (handled by the CO-RE records); 'coreoff': a scalar a
 * CO-RE record sets (an offset into pt_regs); 'mixed': ctx on some paths only, or ctx combined with
 * something else; undefined: not ctx.
 */
type Val = number | 'core' | 'coreoff' | 'mixed' | undefined;

const join = (a: Val, b: Val): Val => (a === b ? a : 'mixed');

interface CtxLoad {
  insn: number; // index within the section
  off: number; // ctx offset read
  size: number;
}

const READ_HELPERS = new Set<number>([HELPER.probe_read, HELPER.probe_read_str, HELPER.probe_read_user, HELPER.probe_read_kernel, HELPER.probe_read_user_str, HELPER.probe_read_kernel_str]);
const SIZES = [4, 2, 1, 8];

/** Loads from ctx in one function [start, start+len) of a section. Throws PtRegsError on an escape. */
function ctxLoads(code: Uint8Array, start: number, len: number, prog: string, skip: Set<number>): CtxLoad[] {
  const dv = new DataView(code.buffer, code.byteOffset, code.byteLength);
  const states: (Val[] | undefined)[] = new Array(len);
  const init: Val[] = new Array(11).fill(undefined);
  init[1] = 0;
  states[0] = init;
  const work = [0];
  const loads = new Map<number, CtxLoad>();
  const refuse = (i: number, what: string): never => {
    throw new PtRegsError(
      `program '${prog}' instruction ${i}: ${what}; the pt_regs accesses cannot be followed, refusing to load an object built for another arch`,
      prog, i, 'ctx');
  };
  const flow = (to: number, st: Val[]): void => {
    if (to < 0 || to >= len) return;
    const cur = states[to];
    if (!cur) {
      states[to] = st.slice();
      work.push(to);
      return;
    }
    let changed = false;
    for (let r = 0; r < 11; r++) {
      const j = join(cur[r], st[r]);
      if (j !== cur[r]) {
        cur[r] = j;
        changed = true;
      }
    }
    if (changed) work.push(to);
  };
  let steps = 0;
  while (work.length > 0) {
    if (++steps > 200000) refuse(0, 'the control flow is too large to analyse');
    const pc = work.pop()!;
    const st = states[pc]!.slice();
    const at = (start + pc) * 8;
    const op = code[at]!;
    const dst = code[at + 1]! & 0xf;
    const src = code[at + 1]! >> 4;
    const off = dv.getInt16(at + 2, true);
    const imm = dv.getInt32(at + 4, true);
    const cls = op & 7;
    const isCtx = (r: number): boolean => st[r] !== undefined && st[r] !== 'coreoff';
    const cored = skip.has(start + pc);
    switch (cls) {
      case 0: // LD (lddw and legacy packet loads)
        st[dst] = undefined;
        flow(pc + (op === 0x18 ? 2 : 1), st);
        break;
      case 1: { // LDX
        const v = st[src];
        if (v === 'mixed') refuse(pc, `load through a register that may or may not hold the ctx pointer`);
        if (typeof v === 'number' && !cored) {
          loads.set(pc, { insn: start + pc, off: v + off, size: SIZES[(op >> 3) & 3]! });
        }
        st[dst] = undefined;
        flow(pc + 1, st);
        break;
      }
      case 2: // ST imm
        if (isCtx(dst)) refuse(pc, 'store into pt_regs');
        flow(pc + 1, st);
        break;
      case 3: // STX
        if (isCtx(src) && st[src] !== 'core') refuse(pc, 'the ctx pointer is spilled to memory');
        if (isCtx(dst)) refuse(pc, 'store into pt_regs');
        flow(pc + 1, st);
        break;
      case 4: // ALU32
        if (op === 0xb4 && cored) st[dst] = 'coreoff';
        else st[dst] = isCtx(dst) || ((op & 8) !== 0 && isCtx(src)) ? 'mixed' : undefined;
        flow(pc + 1, st);
        break;
      case 7: { // ALU64
        const aop = op & 0xf0;
        const x = (op & 8) !== 0;
        const d = st[dst];
        if (aop === 0xb0) st[dst] = x ? st[src] : cored ? 'coreoff' : undefined; // mov
        else if (aop === 0x00 && typeof d === 'number' && (cored || (x && st[src] === 'coreoff'))) st[dst] = 'core';
        else if (aop === 0x00 && x && d === 'coreoff' && typeof st[src] === 'number') st[dst] = 'core';
        else if (!x && (aop === 0x00 || aop === 0x10) && typeof st[dst] === 'number') {
          st[dst] = (st[dst] as number) + (aop === 0 ? imm : -imm);
        } else st[dst] = isCtx(dst) || (x && isCtx(src)) ? 'mixed' : undefined;
        flow(pc + 1, st);
        break;
      }
      case 5:
      case 6: { // JMP, JMP32
        const jop = op & 0xf0;
        if (jop === 0x90) break; // exit
        if (jop === 0x80) { // call
          if (src === 1) {
            for (let r = 1; r <= 5; r++) if (isCtx(r)) refuse(pc, `the ctx pointer is passed to a subprogram (r${r})`);
          } else if (src === 0 && READ_HELPERS.has(imm) && isCtx(3) && st[3] !== 'core') {
            refuse(pc, `pt_regs is read through helper ${imm} (bpf_probe_read*)`);
          } else if (src === 0 && imm === CORE_POISON_HELPER) {
            break;
          }
          for (let r = 0; r <= 5; r++) st[r] = undefined;
          flow(pc + 1, st);
          break;
        }
        if (jop === 0x00) { // ja
          flow(pc + 1 + (cls === 6 ? imm : off), st);
          break;
        }
        flow(pc + 1, st);
        flow(pc + 1 + off, st);
        break;
      }
    }
  }
  return [...loads.values()];
}

// ---- source arch inference ----------------------------------------------------------------------------

function inferFromBtf(btf: Btf | undefined): PtRegsArch | undefined {
  if (!btf) return undefined;
  if (btf.findByName('user_pt_regs', 'STRUCT').length > 0) return 'arm64';
  for (const id of btf.findByName('pt_regs', 'STRUCT')) {
    const t = btf.type(id);
    if (t.kind !== 'STRUCT') continue;
    const names = new Set(t.members.map((m) => m.name));
    if (names.has('di')) return 'x86';
    if (names.has('orig_x0') || names.has('user_regs')) return 'arm64';
  }
  return undefined;
}

const envArch = (v: string | undefined): PtRegsArch | undefined =>
  v === 'x86' || v === 'x86_64' || v === 'x64' ? 'x86' : v === 'arm64' || v === 'aarch64' ? 'arm64' : undefined;

/** The user's settings for the pass: off, or the arch objects were built for (when they do not say). */
export interface PtRegsSettings {
  off?: boolean;
  sourceArch?: PtRegsArch;
}

/** WASM_BPF_NO_PTREGS=1 and WASM_BPF_PTREGS_SOURCE_ARCH=x86|arm64, read once by the run (src/runtime/worker.ts) and `check`. */
export function ptregsSettingsFromEnv(env: NodeJS.ProcessEnv): PtRegsSettings {
  const sourceArch = envArch(env['WASM_BPF_PTREGS_SOURCE_ARCH']);
  return { ...(env['WASM_BPF_NO_PTREGS'] === '1' ? { off: true } : {}), ...(sourceArch ? { sourceArch } : {}) };
}

// ---- the pass -----------------------------------------------------------------------------------------

export function relocatePtRegs(input: Uint8Array, opts: PtRegsOptions & { parsed?: BpfObject } = {}): PtRegsResult {
  const hostArch = opts.hostArch ?? hostArchOf();
  const none = (skipped: string, sourceArch?: PtRegsArch): PtRegsResult => ({
    bytes: input, sourceArch, hostArch, patches: [], removedCoreRecords: 0, skipped,
  });
  if (!hostArch) return none(`host arch ${process.arch} is not x86_64 or arm64`);
  let obj: BpfObject;
  try {
    obj = opts.parsed ?? loadObject(input);
  } catch (e) {
    // libbpf gets the object unchanged and reports its own parse errors
    return none(`the object could not be parsed: ${(e as Error).message}`);
  }
  const btf = obj.btf;
  const progKinds = new Map(obj.programs.map((p) => [p.name, progKind(p.section)]));

  // CO-RE records on pt_regs flavours, keyed by section + insnOff (a .text record appears per caller)
  interface CoreSite { c: ProgramCoreReloc; acc: CoreAccess; programs: string[]; insns: number[] }
  const sites = new Map<string, CoreSite>();
  const coreArchs = new Set<PtRegsArch>();
  if (btf) {
    for (const p of obj.programs) {
      for (const c of p.coreRelocs) {
        let acc: CoreAccess | string | undefined;
        try {
          acc = decodeCore(btf, c);
        } catch (e) {
          acc = `unreadable CO-RE record (${(e as Error).message})`; // only matters for a foreign-arch object
        }
        if (acc === undefined) continue;
        const key = `${c.section}@${c.relo.insnOff}`;
        if (typeof acc === 'string') {
          sites.set(key, { c, acc: { root: '?', reg: `!${acc}`, arch: undefined }, programs: [p.name], insns: [c.insn] });
          continue;
        }
        if (acc.arch) coreArchs.add(acc.arch);
        const s = sites.get(key);
        if (s) {
          s.programs.push(p.name);
          s.insns.push(c.insn);
        } else sites.set(key, { c, acc, programs: [p.name], insns: [c.insn] });
      }
    }
  }
  const forced = opts.sourceArch;
  if (coreArchs.size > 1 && !forced) {
    const first = [...sites.values()][0]!;
    throw new PtRegsError(
      `the object reads both x86_64 and arm64 pt_regs members: its target arch is ambiguous (program '${first.programs[0]}')`,
      first.programs[0]!, first.c.insn, first.acc.reg);
  }
  const sourceArch = forced ?? [...coreArchs][0] ?? inferFromBtf(btf);
  if (!sourceArch) return none('the object does not say which arch it was built for');
  if (sourceArch === hostArch) return none(`built for the host arch (${hostArch})`, sourceArch);

  const layout = defaultHostLayout(hostArch, opts);
  const out = new Uint8Array(input);
  const dv = new DataView(out.buffer, out.byteOffset, out.byteLength);
  const patches: PtRegsPatch[] = [];
  const secOff = (name: string): number => {
    const s = obj.elf.section(name);
    if (!s) throw new Error(`section '${name}' vanished`);
    return s.offset;
  };
  const target = (prog: string, insn: number, reg: Reg, kind: ProgKind): [Reg, number] => {
    const to = reg.startsWith('!') ? reg : mapRegister(sourceArch, hostArch, reg, kind);
    const fail = (why: string): never => {
      throw new PtRegsError(`program '${prog}' instruction ${insn}: pt_regs member '${reg.replace(/^!/, '')}' of a ${sourceArch} object: ${why}`, prog, insn, reg);
    };
    if (to.startsWith('!')) fail(to.slice(1));
    const off = hostOffset(layout, to);
    if (off === undefined) fail(`the host's struct pt_regs has no '${to}'`);
    return [to, off!];
  };

  // 1. CO-RE records
  const removed = new Set<string>();
  for (const [key, s] of sites) {
    const { c, acc } = s;
    if (!acc.reg.startsWith('!') && acc.arch === hostArch) continue; // already the host's member
    const kinds = new Set(s.programs.map((n) => progKinds.get(n) ?? 'unknown'));
    const kind: ProgKind = kinds.size === 1 ? [...kinds][0]! : 'unknown';
    const prog = s.programs[0]!;
    const pi = s.insns[0]!;
    const [to, newOff] = target(prog, pi, acc.reg, kind);
    const at = secOff(c.section) + c.relo.insnOff;
    const cls = out[at]! & 7;
    let value: number;
    switch (c.relo.kind) {
      case 0: value = newOff; break; // FIELD_BYTE_OFFSET
      case 1: value = 8; break; // FIELD_BYTE_SIZE
      case 2: value = 1; break; // FIELD_EXISTS
      case 3: value = 0; break; // FIELD_SIGNED
      default:
        throw new PtRegsError(`program '${prog}' instruction ${pi}: bitfield CO-RE relocation (kind ${c.relo.kind}) on pt_regs member '${acc.reg}'`, prog, pi, acc.reg);
    }
    let old: number;
    if (cls === 1 || cls === 2 || cls === 3) {
      old = dv.getInt16(at + 2, true);
      if (c.relo.kind !== 0) throw new PtRegsError(`program '${prog}' instruction ${pi}: CO-RE kind ${c.relo.kind} on a memory access`, prog, pi, acc.reg);
      dv.setInt16(at + 2, value, true);
    } else if (cls === 4 || cls === 7 || out[at] === 0x18) {
      old = dv.getInt32(at + 4, true);
      dv.setInt32(at + 4, value, true);
      if (out[at] === 0x18) dv.setInt32(at + 12, 0, true);
    } else {
      throw new PtRegsError(`program '${prog}' instruction ${pi}: CO-RE relocation on an instruction of class ${cls}`, prog, pi, acc.reg);
    }
    removed.add(key);
    s.programs.forEach((p, k) => patches.push({ program: p, section: c.section, insn: s.insns[k]!, via: 'core', from: acc.reg, to, oldValue: old, newValue: value }));
  }

  // 2. ctx loads without CO-RE records, in the kprobe-type programs (usdt: offsets come from libbpf at attach)
  const coreInsns = new Map<string, Set<number>>();
  for (const c of obj.coreRelocs) {
    const set = coreInsns.get(c.section) ?? new Set<number>();
    set.add(c.relo.insnOff / 8);
    coreInsns.set(c.section, set);
  }
  for (const f of obj.functions) {
    if (!f.isProgram) continue;
    const p = obj.program(f.name);
    if (!p || p.type !== PROG_TYPE.KPROBE || /^usdt/.test(p.section)) continue;
    const sec = obj.elf.section(f.section)!;
    const code = sec.data();
    const loads = ctxLoads(code, f.sectionInsn, f.length, f.name, coreInsns.get(f.section) ?? new Set());
    for (const l of loads) {
      // both arches' registers are 8 bytes: a narrower load at byte D of one reads byte D of the other
      const delta = ((l.off % 8) + 8) % 8;
      const srcLayoutReg = regAt(sourceArch, l.off - delta);
      if (!srcLayoutReg || delta + l.size > 8) {
        throw new PtRegsError(
          `program '${f.name}' instruction ${l.insn - f.sectionInsn}: ${l.size}-byte ctx load at offset ${l.off} is not within one ${sourceArch} pt_regs register`,
          f.name, l.insn - f.sectionInsn, `+${l.off}`);
      }
      const [to, hostOff] = target(f.name, l.insn - f.sectionInsn, srcLayoutReg, progKind(p.section));
      const newOff = hostOff + delta;
      const at = sec.offset + l.insn * 8;
      const old = dv.getInt16(at + 2, true);
      const base = l.off - old; // the constant added to ctx before the load
      const nv = newOff - base;
      if (nv < -32768 || nv > 32767) throw new PtRegsError(`program '${f.name}' instruction ${l.insn - f.sectionInsn}: offset out of range`, f.name, l.insn - f.sectionInsn, srcLayoutReg);
      dv.setInt16(at + 2, nv, true);
      patches.push({ program: f.name, section: f.section, insn: l.insn - f.sectionInsn, via: 'ctx', from: srcLayoutReg, to, oldValue: old, newValue: nv });
    }
  }

  const removedCoreRecords = removed.size > 0 ? dropCoreRecords(obj, out, removed) : 0;
  return { bytes: out, sourceArch, hostArch, patches, removedCoreRecords };
}

/** Removes CO-RE records (keys 'section@insnOff') from .BTF.ext in place: compacts and shrinks core_relo_len. */
function dropCoreRecords(obj: BpfObject, out: Uint8Array, keys: Set<string>): number {
  const sec = obj.elf.section('.BTF.ext')!;
  const btf = obj.btf!;
  const base = sec.offset;
  const dv = new DataView(out.buffer, out.byteOffset, out.byteLength);
  const hdrLen = dv.getUint32(base + 4, true);
  const start = base + hdrLen + dv.getUint32(base + 24, true);
  const len = dv.getUint32(base + 28, true);
  const recSize = dv.getUint32(start, true);
  const src = out.slice(start, start + len);
  const sdv = new DataView(src.buffer);
  let w = start + 4;
  let p = 4;
  let dropped = 0;
  while (p < len) {
    const nameOff = sdv.getUint32(p, true);
    const n = sdv.getUint32(p + 4, true);
    const name = btf.str(nameOff);
    p += 8;
    const keep: Uint8Array[] = [];
    for (let i = 0; i < n; i++, p += recSize) {
      const insnOff = sdv.getUint32(p, true);
      if (keys.has(`${name}@${insnOff}`)) dropped++;
      else keep.push(src.subarray(p, p + recSize));
    }
    if (keep.length === 0) continue;
    dv.setUint32(w, nameOff, true);
    dv.setUint32(w + 4, keep.length, true);
    w += 8;
    for (const r of keep) {
      out.set(r, w);
      w += recSize;
    }
  }
  out.fill(0, w, start + len);
  const newLen = w - start;
  // an empty subsection (just rec_size) is what libbpf accepts as "no records": use length 0
  dv.setUint32(base + 28, newLen === 4 ? 0 : newLen, true);
  return dropped;
}

// ---- the selector's entry points ----------------------------------------------------------------------

/**
 * What mayNeedPtRegs reads: the member names (nested ones included) of the object's pt_regs-like BTF
 * structs (pt_regs, user_pt_regs and their ___flavours), and whether a user_pt_regs is among them.
 * Read from the object's own BTF (src/object), which the selector has parsed already.
 */
export function ptRegsEvidence(btf: Btf | undefined): { members: string[]; userPtRegs: boolean } {
  const names = new Set<string>();
  let userPtRegs = false;
  if (!btf) return { members: [], userPtRegs };
  const todo: number[] = [];
  for (let id = btf.startId; id < btf.length; id++) {
    const kind = btf.kindOf(id);
    if (kind !== 'STRUCT' && kind !== 'UNION') continue;
    const name = btf.nameOf(id);
    const root = name.includes('___') ? name.slice(0, name.indexOf('___')) : name;
    if (root === 'user_pt_regs') userPtRegs = true;
    if (root === 'pt_regs' || root === 'user_pt_regs') todo.push(id);
  }
  const seen = new Set<number>();
  while (todo.length > 0) {
    const id = todo.pop() as number;
    if (seen.has(id) || seen.size > 10000 || id <= 0 || id >= btf.length) continue;
    seen.add(id);
    const t = btf.type(id);
    if (t.kind === 'STRUCT' || t.kind === 'UNION') {
      for (const m of t.members) {
        if (m.name) names.add(m.name);
        todo.push(m.type);
      }
    } else if (t.kind === 'ARRAY') todo.push(t.type);
    else if (t.kind === 'TYPEDEF' || t.kind === 'VOLATILE' || t.kind === 'CONST' || t.kind === 'RESTRICT' || t.kind === 'TYPE_TAG') todo.push(t.type);
  }
  return { members: [...names].sort(), userPtRegs };
}

/**
 * Whether relocatePtRegs could change an object with this evidence (ptRegsEvidence): only when its
 * pt_regs structs name a member of another arch's layout than the host's (or
 * settings.sourceArch (WASM_BPF_PTREGS_SOURCE_ARCH) forces one). When not, the pass would find the object built for the
 * host (or for no arch) and change nothing, and the plan leaves it out.
 */
export function mayNeedPtRegs(facts: { members: readonly string[]; userPtRegs: boolean }, host = hostArchOf(), settings: PtRegsSettings = {}): boolean {
  if (!host || settings.off) return false;
  if (settings.sourceArch) return true;
  // the arm64 evidence decodeCore and inferFromBtf look for, or the x86 one
  if (host === 'x86') return facts.userPtRegs || facts.members.some((m) => m === 'regs' || ARM64_ONLY.has(m));
  return facts.members.some((m) => m !== 'sp' && X86_MEMBERS.has(m));
}

/**
 * The pass as the selector applies it when the plan has it (mayNeedPtRegs): the object's bytes for this
 * host (the same array when nothing changes). `parsed` is the selector's parse of the same bytes. settings.off
 * (WASM_BPF_NO_PTREGS=1) turns the pass off; settings.sourceArch (WASM_BPF_PTREGS_SOURCE_ARCH=x86|arm64) names the arch an object without CO-RE pt_regs
 * records was built for. A refusal becomes a BackendError (EOPNOTSUPP) whose cause is the PtRegsError.
 */
export function ptregsForHost(bytes: Uint8Array, log?: (line: string) => void, parsed?: BpfObject, settings: PtRegsSettings = {}): Uint8Array {
  if (settings.off) return bytes;
  let res: PtRegsResult;
  try {
    res = relocatePtRegs(bytes, { ...(parsed ? { parsed } : {}), ...(settings.sourceArch ? { sourceArch: settings.sourceArch } : {}) });
  } catch (e) {
    if (!(e instanceof PtRegsError)) {
      throw new BackendError(`pt_regs compat pass failed: ${(e as Error).message}`, ERRNO.EINVAL, '', 'set WASM_BPF_NO_PTREGS=1 to load the object unchanged', { cause: e });
    }
    throw new BackendError(
      `pt_regs compat: ${e.message}`,
      ERRNO.EOPNOTSUPP,
      '',
      `rebuild the object for this host (-D__TARGET_ARCH_${res_arch()}), or set WASM_BPF_NO_PTREGS=1 to load it unchanged`,
      { cause: e },
    );
  }
  if (log && res.patches.length > 0) {
    log(`pt_regs compat: ${res.sourceArch} object on a ${res.hostArch} host: ${res.patches.length} access(es) remapped, ` +
      `${res.removedCoreRecords} CO-RE record(s) resolved`);
    for (const p of res.patches) log(`  ${p.program} #${p.insn} (${p.via}): ${p.from} -> ${p.to} (${p.oldValue} -> ${p.newValue})`);
  }
  return res.bytes;
}

const res_arch = (): string => (hostArchOf() === 'arm64' ? 'arm64' : 'x86');
