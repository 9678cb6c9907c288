// The eBPF ELF object loader: what libbpf's bpf_object__open does, in TypeScript, without a kernel.
//
// loadObject(bytes) reads programs (by section, typed by libbpf's section table), maps (BTF-defined
// ".maps", legacy "maps", and the .data/.rodata/.bss global-data maps with their initial bytes),
// .BTF and .BTF.ext, and relocates every program:
//   - lddw of a map          -> src_reg 5 (BPF_PSEUDO_MAP_IDX),       imm = map index
//   - lddw of global data    -> src_reg 6 (BPF_PSEUDO_MAP_IDX_VALUE), imm = map index, next imm = offset
//   - call of a subprogram   -> the subprogram is appended (as libbpf does, depth first, once per
//                               program) and the call's imm made pc-relative to the copy
//   - lddw of a function     -> src_reg 4 (BPF_PSEUDO_FUNC), imm pc-relative to the appended copy
// Every relocation is also kept in inspectable form (BpfProgram.mapRelocs/callRelocs/externRelocs),
// so a consumer that wants kernel fds (src_reg 1/2) rewrites them from mapRelocs, and the prober and
// compat passes can see what a program references. CO-RE relocations are listed per program with their
// final instruction index (BpfProgram.coreRelocs); src/object/core.ts resolves and patches them.
//
// Malformed input throws ObjectError (code 'OBJECT_MALFORMED', or 'OBJECT_UNSUPPORTED' for well-formed
// things this loader does not do), naming the section/relocation; ElfError and BtfError from the
// readers below are wrapped, never leaked as RangeError/TypeError.

import { type Btf, type BtfComposite, BtfError, parseBtf } from './btf.js';
import { checkLibbpfNeeds } from './libbpf-needs.js';
import { sectionDef } from './sections.js';
import { EM_BPF, ElfError, type ElfFile, type ElfSection, type ElfSymbol, parseElf, SHF, SHN, SHT, STB, STT } from './elf.js';

export type ObjectErrorCode = 'OBJECT_MALFORMED' | 'OBJECT_UNSUPPORTED';

export class ObjectError extends Error {
  readonly code: ObjectErrorCode;
  constructor(message: string, code: ObjectErrorCode = 'OBJECT_MALFORMED', options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'ObjectError';
    this.code = code;
  }
}

// ---- instruction encoding ----------------------------------------------------------------------------

const INSN_SIZE = 8;
/** BPF_LD | BPF_DW | BPF_IMM */
export const OP_LDDW = 0x18;
/** BPF_JMP | BPF_CALL */
export const OP_CALL = 0x85;

/** lddw / call src_reg values (linux/bpf.h BPF_PSEUDO_*) */
export const PSEUDO = {
  MAP_FD: 1,
  MAP_VALUE: 2,
  BTF_ID: 3,
  FUNC: 4,
  MAP_IDX: 5,
  MAP_IDX_VALUE: 6,
  CALL: 1,
  KFUNC_CALL: 2,
} as const;

/** The helper id libbpf writes into an instruction whose CO-RE relocation could not be resolved. */
export const CORE_POISON_HELPER = 0xbad2310;

/** ELF relocation types of EM_BPF. */
const R_BPF = { NONE: 0, R64_64: 1, ABS64: 2, ABS32: 3, NODYLD32: 4, R64_32: 10 } as const;

/** Little-endian instruction accessors over a byte array (8 bytes per slot). */
export const insn = {
  code: (b: Uint8Array, i: number): number => b[i * 8]!,
  dst: (b: Uint8Array, i: number): number => b[i * 8 + 1]! & 0xf,
  src: (b: Uint8Array, i: number): number => b[i * 8 + 1]! >> 4,
  off: (b: Uint8Array, i: number): number => ((b[i * 8 + 2]! | (b[i * 8 + 3]! << 8)) << 16) >> 16,
  imm: (b: Uint8Array, i: number): number => b[i * 8 + 4]! | (b[i * 8 + 5]! << 8) | (b[i * 8 + 6]! << 16) | (b[i * 8 + 7]! << 24),
  setCode(b: Uint8Array, i: number, v: number): void {
    b[i * 8] = v & 0xff;
  },
  setSrc(b: Uint8Array, i: number, v: number): void {
    b[i * 8 + 1] = (b[i * 8 + 1]! & 0x0f) | ((v & 0xf) << 4);
  },
  setDst(b: Uint8Array, i: number, v: number): void {
    b[i * 8 + 1] = (b[i * 8 + 1]! & 0xf0) | (v & 0xf);
  },
  setOff(b: Uint8Array, i: number, v: number): void {
    b[i * 8 + 2] = v & 0xff;
    b[i * 8 + 3] = (v >> 8) & 0xff;
  },
  setImm(b: Uint8Array, i: number, v: number): void {
    b[i * 8 + 4] = v & 0xff;
    b[i * 8 + 5] = (v >>> 8) & 0xff;
    b[i * 8 + 6] = (v >>> 16) & 0xff;
    b[i * 8 + 7] = (v >>> 24) & 0xff;
  },
};

// ---- the object model ----------------------------------------------------------------------------------

/** BPF_F_RDONLY_PROG: programs may not write the map (libbpf sets it on .rodata) */
const BPF_F_RDONLY_PROG = 0x80;

export type MapKind = 'btf' | 'legacy' | 'data';

export interface BpfMap {
  /** index in BpfObject.maps (what MAP_IDX lddw immediates refer to) */
  index: number;
  /** the variable's name (BTF and legacy maps) or the section's name (".rodata", ".data.custom", ...) */
  name: string;
  kind: MapKind;
  /** enum bpf_map_type */
  type: number;
  keySize: number;
  valueSize: number;
  maxEntries: number;
  flags: number;
  numaNode: number;
  pinning: number;
  mapExtra: bigint;
  /** BTF type ids of key and value (0: unknown) */
  keyTypeId: number;
  valueTypeId: number;
  /** the ELF section defining the map and the definition's offset in it */
  section: string;
  sectionIndex: number;
  sectionOffset: number;
  /** data maps: the section's bytes (.bss: zeros); value of element 0 */
  initial?: Uint8Array;
  /** data maps: .rodata* (BPF_F_RDONLY_PROG; libbpf freezes it after load) */
  readonly: boolean;
  /** BTF maps with a `values` initializer (prog_array, map-in-map): slot -> program or map name */
  initSlots: { slot: number; target: string; kind: 'program' | 'map' }[];
}

export type MapRelocKind = 'fd' | 'value';

export interface MapReloc {
  /** instruction index (slot) in BpfProgram.insns */
  insn: number;
  map: number;
  /** 'fd': lddw of the map itself; 'value': lddw of an address inside element 0 (global data) */
  kind: MapRelocKind;
  /** 'value': byte offset inside the value */
  offset: number;
  /** the ELF symbol the relocation named */
  symbol: string;
}

export interface CallReloc {
  insn: number;
  /** 'call': bpf-to-bpf call; 'func-addr': lddw of a function's address (callbacks) */
  kind: 'call' | 'func-addr';
  /** the called function's name */
  callee: string;
  /** slot of the callee's first instruction in BpfProgram.insns */
  target: number;
}

export interface ExternReloc {
  insn: number;
  name: string;
  /** 'kconfig': extern variable from .kconfig; 'ksym': kernel symbol (variable or kfunc call) */
  kind: 'kconfig' | 'ksym';
  /** 'call' for kfunc calls, 'lddw' for variables */
  via: 'call' | 'lddw';
}

/** One .BTF.ext CO-RE relocation record. */
export interface CoreRelo {
  /** byte offset of the instruction in its ELF section */
  insnOff: number;
  /** local (object) BTF type id of the root type */
  typeId: number;
  /** e.g. "0:1:2" */
  access: string;
  /** enum bpf_core_relo_kind */
  kind: number;
}

export interface ProgramCoreReloc {
  /** instruction index in BpfProgram.insns */
  insn: number;
  /** the section the record belongs to (e.g. ".text" for a subprogram) */
  section: string;
  relo: CoreRelo;
}

export interface FuncInfo {
  insn: number;
  typeId: number;
}

export interface LineInfo {
  insn: number;
  fileName: string;
  line: string;
  lineNum: number;
  column: number;
}

/** Where one function's instructions landed in a linked program. */
export interface ProgramPiece {
  name: string;
  section: string;
  /** first slot of the function in its section */
  sectionInsn: number;
  /** slots */
  length: number;
  /** first slot in BpfProgram.insns */
  at: number;
}

export interface BpfProgram {
  name: string;
  section: string;
  /** enum bpf_prog_type from the section name (libbpf's table); 0 when the section is not known */
  type: number;
  /** enum bpf_attach_type the section implies (0 when none) */
  expectedAttachType: number;
  /** sleepable sections (".s" variants, "syscall") */
  sleepable: boolean;
  /** the linked instructions: the program, then every subprogram it reaches (little-endian) */
  insns: Uint8Array;
  /** the program first, then each appended subprogram */
  pieces: ProgramPiece[];
  mapRelocs: MapReloc[];
  callRelocs: CallReloc[];
  externRelocs: ExternReloc[];
  /** CO-RE relocations of every piece, at their final instruction index (unresolved until core.ts) */
  coreRelocs: ProgramCoreReloc[];
  /** .BTF.ext func_info / line_info of every piece, at final instruction indexes */
  funcInfo: FuncInfo[];
  lineInfo: LineInfo[];
}

export interface BtfExtSectionInfo<T> {
  section: string;
  records: T[];
}

export interface BtfExt {
  funcInfo: BtfExtSectionInfo<{ insnOff: number; typeId: number }>[];
  lineInfo: BtfExtSectionInfo<{ insnOff: number; fileNameOff: number; lineOff: number; lineCol: number }>[];
  coreRelo: BtfExtSectionInfo<CoreRelo>[];
}

export interface BpfExtern {
  name: string;
  kind: 'kconfig' | 'ksym';
  /** BTF type id of the VAR/FUNC (0: no BTF) */
  typeId: number;
}

export interface BpfObject {
  elf: ElfFile;
  programs: BpfProgram[];
  /** every function of every executable section (programs and subprograms) */
  functions: { name: string; section: string; sectionInsn: number; length: number; isProgram: boolean }[];
  maps: BpfMap[];
  btf: Btf | undefined;
  btfExt: BtfExt | undefined;
  license: string;
  kernVersion: number;
  externs: BpfExtern[];
  /** every program's CO-RE relocations (the same objects as in each BpfProgram.coreRelocs) */
  coreRelocs: ProgramCoreReloc[];
  program(name: string): BpfProgram | undefined;
  map(name: string): BpfMap | undefined;
}

// ---- .BTF.ext ----------------------------------------------------------------------------------------

function parseBtfExt(bytes: Uint8Array, btf: Btf): BtfExt {
  const fail = (what: string): never => {
    throw new ObjectError(`.BTF.ext: ${what}`);
  };
  if (bytes.length < 24) fail(`too short for a header (${bytes.length} bytes)`);
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const le = dv.getUint16(0, true) === 0xeb9f;
  if (!le && dv.getUint16(0, false) !== 0xeb9f) fail(`bad magic 0x${dv.getUint16(0, true).toString(16)}`);
  if (bytes[2] !== 1) fail(`unsupported version ${bytes[2]}`);
  const hdrLen = dv.getUint32(4, le);
  if (hdrLen < 24 || hdrLen > bytes.length) fail(`bad header length ${hdrLen}`);
  const u32 = (off: number): number => dv.getUint32(off, le);
  const sub = (offField: number): [number, number] => {
    if (offField + 8 > hdrLen) return [0, 0];
    const off = u32(offField);
    const len = u32(offField + 4);
    if (hdrLen + off + len > bytes.length) fail(`subsection at ${off} (+${len}) extends past the end (${bytes.length - hdrLen} bytes)`);
    return [hdrLen + off, len];
  };
  const str = (off: number, what: string): string => {
    try {
      return btf.str(off);
    } catch {
      return fail(`${what}: string offset ${off} is outside the .BTF string section`);
    }
  };
  function readInfo<T>(offField: number, what: string, minRec: number, rec: (p: number) => T): BtfExtSectionInfo<T>[] {
    const [start, len] = sub(offField);
    const out: BtfExtSectionInfo<T>[] = [];
    if (len === 0) return out;
    if (len < 4) fail(`${what}: too short`);
    const recSize = u32(start);
    if (recSize < minRec || recSize % 4 !== 0) fail(`${what}: bad record size ${recSize}`);
    const end = start + len;
    let p = start + 4;
    while (p < end) {
      if (p + 8 > end) fail(`${what}: truncated section header at ${p - hdrLen}`);
      const section = str(u32(p), what);
      const n = u32(p + 4);
      p += 8;
      if (n === 0) fail(`${what}: section '${section}' has no records`);
      if (p + n * recSize > end) fail(`${what}: ${n} records of section '${section}' extend past the subsection`);
      const records: T[] = [];
      for (let i = 0; i < n; i++, p += recSize) records.push(rec(p));
      out.push({ section, records });
    }
    return out;
  }
  return {
    funcInfo: readInfo(8, 'func_info', 8, (p) => ({ insnOff: u32(p), typeId: u32(p + 4) })),
    lineInfo: readInfo(16, 'line_info', 16, (p) => ({ insnOff: u32(p), fileNameOff: u32(p + 4), lineOff: u32(p + 8), lineCol: u32(p + 12) })),
    coreRelo: readInfo(24, 'core_relo', 16, (p) => ({ insnOff: u32(p), typeId: u32(p + 4), access: str(u32(p + 8), 'core_relo'), kind: u32(p + 12) })),
  };
}

// ---- maps --------------------------------------------------------------------------------------------

const BTF_MAP_FIELDS = new Set(['type', 'max_entries', 'map_flags', 'numa_node', 'key_size', 'value_size', 'map_extra', 'pinning', 'key', 'value', 'values']);

function btfMaps(elf: ElfFile, btf: Btf | undefined, sec: ElfSection, first: number): BpfMap[] {
  if (!btf) throw new ObjectError(`section .maps (BTF-defined maps) needs .BTF, which the object lacks`);
  const ds = btf.find('.maps', 'DATASEC');
  if (!ds || ds.kind !== 'DATASEC') throw new ObjectError(`section .maps has no DATASEC '.maps' in .BTF`);
  const out: BpfMap[] = [];
  for (const v of ds.vars) {
    const vt = btf.type(v.type);
    if (vt.kind !== 'VAR') throw new ObjectError(`.maps: DATASEC entry ${v.type} is a ${vt.kind}, expected VAR`);
    const name = vt.name;
    const where = `map '${name}'`;
    // clang leaves DATASEC offsets at 0 in objects; libbpf takes them from the symbol table (btf_fixup_datasec)
    const sym = elf.symbols.find((s) => s.shndx === sec.index && s.name === name && s.type !== STT.SECTION);
    if (!sym) throw new ObjectError(`${where}: no symbol for it in section .maps`);
    const size = btf.sizeof(vt.type);
    if (sym.value + size > sec.size) throw new ObjectError(`${where}: definition at ${sym.value} (+${size}) is outside section .maps (${sec.size} bytes)`);
    const offset = sym.value;
    const def = btf.resolveType(vt.type);
    if (def.kind !== 'STRUCT') throw new ObjectError(`${where}: definition is a ${def.kind}, expected a struct`);
    const m = parseBtfMapDef(btf, def, where);
    out.push({
      index: first + out.length,
      name,
      kind: 'btf',
      ...m,
      section: sec.name,
      sectionIndex: sec.index,
      sectionOffset: offset,
      readonly: false,
      initSlots: [],
    });
    // remember where `values` lives for .rel.maps
    valuesOffsets.set(out[out.length - 1]!, m.valuesOffset === undefined ? undefined : offset + m.valuesOffset);
  }
  return out;
}

const valuesOffsets = new WeakMap<BpfMap, number | undefined>();

interface MapDefFields {
  type: number;
  keySize: number;
  valueSize: number;
  maxEntries: number;
  flags: number;
  numaNode: number;
  pinning: number;
  mapExtra: bigint;
  keyTypeId: number;
  valueTypeId: number;
  valuesOffset?: number;
}

/** libbpf's parse_btf_map_def */
function parseBtfMapDef(btf: Btf, def: BtfComposite, where: string): MapDefFields {
  const out: MapDefFields = { type: 0, keySize: 0, valueSize: 0, maxEntries: 0, flags: 0, numaNode: 0, pinning: 0, mapExtra: 0n, keyTypeId: 0, valueTypeId: 0 };
  const intField = (mname: string, type: number): number => {
    const p = btf.resolveType(type);
    if (p.kind !== 'PTR') throw new ObjectError(`${where}: attribute '${mname}' is a ${p.kind}, expected a pointer to an array (__uint)`);
    const a = btf.type(p.type);
    if (a.kind !== 'ARRAY') throw new ObjectError(`${where}: attribute '${mname}' points to a ${a.kind}, expected an array (__uint)`);
    return a.nelems;
  };
  const sizeOf = (id: number, what: string): number => {
    try {
      return btf.sizeof(id);
    } catch (e) {
      throw new ObjectError(`${where}: cannot size the ${what} type: ${(e as Error).message}`);
    }
  };
  let keySizeSet = false;
  let valueSizeSet = false;
  for (const mem of def.members) {
    if (!BTF_MAP_FIELDS.has(mem.name)) throw new ObjectError(`${where}: unknown field '${mem.name}' in the map definition`, 'OBJECT_UNSUPPORTED');
    switch (mem.name) {
      case 'type': out.type = intField(mem.name, mem.type); break;
      case 'max_entries': out.maxEntries = intField(mem.name, mem.type); break;
      case 'map_flags': out.flags = intField(mem.name, mem.type); break;
      case 'numa_node': out.numaNode = intField(mem.name, mem.type); break;
      case 'pinning': out.pinning = intField(mem.name, mem.type); break;
      case 'map_extra': out.mapExtra = BigInt(intField(mem.name, mem.type)); break;
      case 'key_size': {
        const sz = intField(mem.name, mem.type);
        if (keySizeSet && sz !== out.keySize) throw new ObjectError(`${where}: conflicting key size ${out.keySize} != ${sz}`);
        out.keySize = sz;
        keySizeSet = true;
        break;
      }
      case 'value_size': {
        const sz = intField(mem.name, mem.type);
        if (valueSizeSet && sz !== out.valueSize) throw new ObjectError(`${where}: conflicting value size ${out.valueSize} != ${sz}`);
        out.valueSize = sz;
        valueSizeSet = true;
        break;
      }
      case 'key':
      case 'value': {
        const p = btf.resolveType(mem.type);
        if (p.kind !== 'PTR') throw new ObjectError(`${where}: '${mem.name}' is a ${p.kind}, expected a pointer (__type)`);
        const sz = sizeOf(p.type, mem.name);
        if (mem.name === 'key') {
          if (keySizeSet && sz !== out.keySize) throw new ObjectError(`${where}: conflicting key size ${out.keySize} != ${sz}`);
          out.keySize = sz;
          out.keyTypeId = p.type;
          keySizeSet = true;
        } else {
          if (valueSizeSet && sz !== out.valueSize) throw new ObjectError(`${where}: conflicting value size ${out.valueSize} != ${sz}`);
          out.valueSize = sz;
          out.valueTypeId = p.type;
          valueSizeSet = true;
        }
        break;
      }
      case 'values': {
        const a = btf.resolveType(mem.type);
        if (a.kind !== 'ARRAY' || a.nelems !== 0) throw new ObjectError(`${where}: 'values' must be a flexible array (__array)`);
        if (mem.bitOffset % 8 !== 0) throw new ObjectError(`${where}: 'values' is not byte aligned`);
        out.valuesOffset = mem.bitOffset / 8;
        // prog_array / map-in-map: 4-byte values (fds)
        if (!valueSizeSet) {
          out.valueSize = 4;
          valueSizeSet = true;
        }
        break;
      }
    }
  }
  if (out.type === 0) throw new ObjectError(`${where}: the definition has no map type`);
  return out;
}

/** struct bpf_map_def in SEC("maps"): type, key_size, value_size, max_entries, map_flags (u32 each) */
function legacyMaps(elf: ElfFile, sec: ElfSection, first: number): BpfMap[] {
  const syms = elf.symbols.filter((s) => s.shndx === sec.index && s.type !== STT.SECTION && s.type !== STT.FILE && s.name !== '');
  if (syms.length === 0) return [];
  const data = sec.data();
  const dv = new DataView(data.buffer, data.byteOffset, data.byteLength);
  const le = elf.littleEndian;
  const defSize = Math.floor(sec.size / syms.length);
  if (defSize < 20 || sec.size % syms.length !== 0) {
    throw new ObjectError(`section maps: ${sec.size} bytes for ${syms.length} map definitions (need 20+ bytes each, evenly)`);
  }
  return syms
    .sort((a, b) => a.value - b.value)
    .map((s, i): BpfMap => {
      if (s.value % defSize !== 0 || s.value + defSize > sec.size) {
        throw new ObjectError(`legacy map '${s.name}': definition at ${s.value} is not inside section maps (${sec.size} bytes, ${defSize} per map)`);
      }
      const o = s.value;
      return {
        index: first + i,
        name: s.name,
        kind: 'legacy',
        type: dv.getUint32(o, le),
        keySize: dv.getUint32(o + 4, le),
        valueSize: dv.getUint32(o + 8, le),
        maxEntries: dv.getUint32(o + 12, le),
        flags: dv.getUint32(o + 16, le),
        numaNode: 0,
        pinning: 0,
        mapExtra: 0n,
        keyTypeId: 0,
        valueTypeId: 0,
        section: sec.name,
        sectionIndex: sec.index,
        sectionOffset: o,
        readonly: false,
        initSlots: [],
      };
    });
}

/** Sections libbpf turns into internal array maps (.data*, .rodata*, .bss*). */
function isDataSection(sec: ElfSection): boolean {
  const n = sec.name;
  const is = (p: string): boolean => n === p || n.startsWith(`${p}.`);
  if (sec.size === 0) return false;
  if (sec.type === SHT.PROGBITS && (sec.flags & SHF.EXECINSTR) === 0) return is('.data') || is('.rodata');
  return sec.type === SHT.NOBITS && is('.bss');
}

/** the largest .data/.rodata/.bss section loaded as a map (the kernel caps array values far lower) */
const MAX_DATA_SECTION = 256 << 20;

function dataMaps(elf: ElfFile, btf: Btf | undefined, first: number): BpfMap[] {
  const out: BpfMap[] = [];
  for (const sec of elf.sections) {
    if (!isDataSection(sec)) continue;
    const ro = sec.name === '.rodata' || sec.name.startsWith('.rodata.');
    // a .bss has no file bytes, so nothing else bounds its size: refuse what no kernel would map
    if (sec.size > MAX_DATA_SECTION) {
      throw new ObjectError(`section ${sec.name} is ${sec.size} bytes, more than the ${MAX_DATA_SECTION} a global-data map may hold`);
    }
    const initial = new Uint8Array(sec.size);
    if (sec.type !== SHT.NOBITS) initial.set(sec.data());
    const ds = btf?.find(sec.name, 'DATASEC');
    out.push({
      index: first + out.length,
      name: sec.name,
      kind: 'data',
      type: 2, // BPF_MAP_TYPE_ARRAY
      keySize: 4,
      valueSize: sec.size,
      maxEntries: 1,
      flags: ro ? BPF_F_RDONLY_PROG : 0,
      numaNode: 0,
      pinning: 0,
      mapExtra: 0n,
      keyTypeId: 0,
      valueTypeId: ds?.id ?? 0,
      section: sec.name,
      sectionIndex: sec.index,
      sectionOffset: 0,
      initial,
      readonly: ro,
      initSlots: [],
    });
  }
  return out;
}

// ---- programs ----------------------------------------------------------------------------------------

interface Func {
  name: string;
  sec: ElfSection;
  /** first slot in the section, and slots */
  start: number;
  length: number;
  isProgram: boolean;
}

/** A relocation of one executable section, classified. */
type SecReloc =
  | { kind: 'map'; insn: number; map: number; symbol: string }
  | { kind: 'data'; insn: number; map: number; offset: number; symbol: string }
  | { kind: 'call'; insn: number; targetSec: number; targetInsn: number; symbol: string }
  | { kind: 'func-addr'; insn: number; targetSec: number; targetInsn: number; symbol: string }
  | { kind: 'extern'; insn: number; name: string; ext: 'kconfig' | 'ksym'; via: 'call' | 'lddw' };

function isExec(sec: ElfSection | undefined): boolean {
  return sec !== undefined && sec.type === SHT.PROGBITS && (sec.flags & SHF.EXECINSTR) !== 0;
}

export interface LoadObjectOptions {
  /** programs whose section libbpf does not know: keep them with type 0 (default) or refuse */
  strictSections?: boolean;
}

/** Reads and relocates an eBPF ELF object (see the file comment). Throws ObjectError. */
export function loadObject(bytes: Uint8Array, opts: LoadObjectOptions = {}): BpfObject {
  let elf: ElfFile;
  try {
    elf = parseElf(bytes);
  } catch (e) {
    if (e instanceof ElfError) throw new ObjectError(`not a valid ELF object: ${e.message}`, 'OBJECT_MALFORMED', { cause: e });
    throw e;
  }
  try {
    const obj = buildObject(elf, opts);
    // what libbpf trusts beyond what this loader needs: the same rules for every backend and for `check`
    checkLibbpfNeeds(obj);
    return obj;
  } catch (e) {
    if (e instanceof BtfError) throw new ObjectError(`bad BTF: ${e.message}`, 'OBJECT_MALFORMED', { cause: e });
    if (e instanceof ElfError) throw new ObjectError(e.message, 'OBJECT_MALFORMED', { cause: e });
    throw e;
  }
}

function buildObject(elf: ElfFile, opts: LoadObjectOptions): BpfObject {
  if (elf.machine !== EM_BPF) throw new ObjectError(`not an eBPF object: e_machine is ${elf.machine}, expected ${EM_BPF} (EM_BPF)`);
  if (elf.type !== 1) throw new ObjectError(`not a relocatable object: e_type is ${elf.type}, expected 1 (ET_REL)`);
  if (!elf.littleEndian) {
    throw new ObjectError('big-endian eBPF object (clang -target bpfeb): only little-endian objects (-target bpf on x86/arm64) are supported', 'OBJECT_UNSUPPORTED');
  }
  if (elf.sections.length > 0 && elf.symbols.length === 0) throw new ObjectError('the object has no symbol table (.symtab)');

  // BTF and BTF.ext
  const btfSec = elf.section('.BTF');
  const btf = btfSec && btfSec.type !== SHT.NOBITS && btfSec.size > 0 ? parseBtf(btfSec.data()) : undefined;
  const extSec = elf.section('.BTF.ext');
  const btfExt = btf && extSec && extSec.type !== SHT.NOBITS && extSec.size > 0 ? parseBtfExt(extSec.data(), btf) : undefined;

  // license, version
  const licSec = elf.section('license');
  let license = '';
  if (licSec) {
    const d = licSec.data();
    const nul = d.indexOf(0);
    license = new TextDecoder().decode(nul < 0 ? d : d.subarray(0, nul));
  }
  const verSec = elf.section('version');
  let kernVersion = 0;
  if (verSec) {
    if (verSec.size !== 4) throw new ObjectError(`section version has ${verSec.size} bytes, expected 4`);
    const d = verSec.data();
    kernVersion = new DataView(d.buffer, d.byteOffset, 4).getUint32(0, true);
  }

  // maps, in libbpf's order: legacy, BTF, data
  const maps: BpfMap[] = [];
  const legacySec = elf.section('maps');
  if (legacySec && legacySec.type !== SHT.NOBITS) maps.push(...legacyMaps(elf, legacySec, maps.length));
  const btfMapsSec = elf.section('.maps');
  if (btfMapsSec && btfMapsSec.size > 0) maps.push(...btfMaps(elf, btf, btfMapsSec, maps.length));
  maps.push(...dataMaps(elf, btf, maps.length));

  // externs
  const externs: BpfExtern[] = [];
  const externKind = (s: ElfSymbol): 'kconfig' | 'ksym' => {
    if (btf) {
      for (const secName of ['.kconfig', '.ksyms']) {
        const ds = btf.find(secName, 'DATASEC');
        if (ds?.kind === 'DATASEC' && ds.vars.some((v) => btf.nameOf(v.type) === s.name)) return secName === '.kconfig' ? 'kconfig' : 'ksym';
      }
    }
    return s.name.startsWith('CONFIG_') || s.name === 'LINUX_KERNEL_VERSION' || s.name === 'LINUX_HAS_BPF_COOKIE' ? 'kconfig' : 'ksym';
  };
  for (const s of elf.symbols) {
    if (s.index === 0 || s.shndx !== SHN.UNDEF || s.bind === STB.LOCAL || s.name === '') continue;
    externs.push({ name: s.name, kind: externKind(s), typeId: btf ? (btf.findByName(s.name).find((id) => ['VAR', 'FUNC'].includes(btf.kindOf(id))) ?? 0) : 0 });
  }

  // functions of executable sections
  const funcs: Func[] = [];
  const funcsBySec = new Map<number, Func[]>();
  for (const s of elf.symbols) {
    if (s.type !== STT.FUNC || s.shndx === SHN.UNDEF || s.shndx >= SHN.LORESERVE) continue;
    const sec = elf.sections[s.shndx];
    if (!sec || !isExec(sec)) continue;
    const where = `function '${s.name}' in section ${sec.name}`;
    if (s.value % INSN_SIZE !== 0 || s.size % INSN_SIZE !== 0) throw new ObjectError(`${where}: offset ${s.value} or size ${s.size} is not a multiple of 8`);
    if (s.size === 0) throw new ObjectError(`${where} is empty`);
    if (s.value + s.size > sec.size) throw new ObjectError(`${where}: [${s.value}, +${s.size}) is outside the section (${sec.size} bytes)`);
    const isProgram = sec.name !== '.text';
    if (isProgram && s.bind === STB.LOCAL) {
      throw new ObjectError(`${where}: static programs are not supported (libbpf refuses them too)`, 'OBJECT_UNSUPPORTED');
    }
    const f: Func = { name: s.name, sec, start: s.value / INSN_SIZE, length: s.size / INSN_SIZE, isProgram };
    funcs.push(f);
    let list = funcsBySec.get(sec.index);
    if (!list) funcsBySec.set(sec.index, (list = []));
    list.push(f);
  }
  for (const list of funcsBySec.values()) {
    list.sort((a, b) => a.start - b.start);
    let prev: Func | undefined;
    for (const f of list) {
      if (prev && f.start < prev.start + prev.length) {
        throw new ObjectError(`functions '${prev.name}' and '${f.name}' overlap in section ${f.sec.name}`);
      }
      prev = f;
    }
  }

  // relocations of executable sections, classified
  const relocsBySec = new Map<number, Map<number, SecReloc>>();
  for (const rs of elf.relocations) {
    const target = elf.sections[rs.target];
    if (!target) continue;
    if (isExec(target)) {
      relocsBySec.set(target.index, classifyRelocs(elf, target, rs.entries, rs.section.name, maps, btf));
    } else if (target === btfMapsSec) {
      mapInitRelocs(elf, rs.entries, maps, funcs);
    }
    // .rel.BTF, .rel.BTF.ext, .rel.debug_*: DWARF/BTF bookkeeping, nothing to do (libbpf ignores them too)
  }

  // per-section copies of instructions
  const secInsns = new Map<number, Uint8Array>();
  const insnsOf = (sec: ElfSection): Uint8Array => {
    let b = secInsns.get(sec.index);
    if (!b) {
      if (sec.size % INSN_SIZE !== 0) throw new ObjectError(`section ${sec.name}: size ${sec.size} is not a multiple of 8`);
      b = sec.data().slice();
      secInsns.set(sec.index, b);
    }
    return b;
  };

  const coreBySec = new Map<string, CoreRelo[]>();
  for (const s of btfExt?.coreRelo ?? []) coreBySec.set(s.section, s.records);
  const funcInfoBySec = new Map<string, { insnOff: number; typeId: number }[]>();
  for (const s of btfExt?.funcInfo ?? []) funcInfoBySec.set(s.section, s.records);
  const lineInfoBySec = new Map<string, BtfExt['lineInfo'][number]['records']>();
  for (const s of btfExt?.lineInfo ?? []) lineInfoBySec.set(s.section, s.records);

  const funcAt = (secIndex: number, slot: number): Func | undefined => funcsBySec.get(secIndex)?.find((f) => slot >= f.start && slot < f.start + f.length);

  // link every program
  const programs: BpfProgram[] = [];
  const allCore: ProgramCoreReloc[] = [];
  // programs in libbpf's order: by section, then symbol table order within a section
  const mains = funcs.filter((f) => f.isProgram).sort((a, b) => a.sec.index - b.sec.index);
  for (const main of mains) {
    const def = sectionDef(main.sec.name);
    if (!def && opts.strictSections) throw new ObjectError(`program '${main.name}': unknown section '${main.sec.name}' (libbpf cannot infer its program type)`, 'OBJECT_UNSUPPORTED');
    const pieces: ProgramPiece[] = [];
    const placed = new Map<Func, number>();
    const chunks: Uint8Array[] = [];
    let total = 0;
    const place = (f: Func): number => {
      const at = total;
      placed.set(f, at);
      pieces.push({ name: f.name, section: f.sec.name, sectionInsn: f.start, length: f.length, at });
      chunks.push(insnsOf(f.sec).subarray(f.start * INSN_SIZE, (f.start + f.length) * INSN_SIZE));
      total += f.length;
      return at;
    };
    const prog: BpfProgram = {
      name: main.name,
      section: main.sec.name,
      type: def?.type ?? 0,
      expectedAttachType: def?.attach ?? 0,
      sleepable: def?.sleepable ?? false,
      insns: new Uint8Array(0),
      pieces,
      mapRelocs: [],
      callRelocs: [],
      externRelocs: [],
      coreRelocs: [],
      funcInfo: [],
      lineInfo: [],
    };
    // Collect all pieces first (depth first, as libbpf's bpf_object__reloc_code appends them), then patch.
    const visit = (f: Func): void => {
      const relocs = relocsBySec.get(f.sec.index);
      const code = insnsOf(f.sec);
      for (let i = f.start; i < f.start + f.length; i++) {
        const op = insn.code(code, i);
        const r = relocs?.get(i);
        let targetSec: number;
        let targetInsn: number;
        if (r && (r.kind === 'call' || r.kind === 'func-addr')) {
          targetSec = r.targetSec;
          targetInsn = r.targetInsn;
        } else if (op === OP_CALL && insn.src(code, i) === PSEUDO.CALL && !r) {
          targetSec = f.sec.index;
          targetInsn = i + insn.imm(code, i) + 1;
        } else if (op === OP_LDDW && insn.src(code, i) === PSEUDO.FUNC && !r) {
          throw new ObjectError(`program '${main.name}': ${f.name} insn ${i - f.start}: function address load without a relocation`);
        } else {
          if (op === OP_LDDW) i++;
          continue;
        }
        const callee = funcAt(targetSec, targetInsn);
        const where = `program '${main.name}': ${f.name} (section ${f.sec.name}) insn ${i - f.start}`;
        if (!callee) throw new ObjectError(`${where}: call target ${targetInsn} in section ${elf.sections[targetSec]?.name ?? targetSec} is not inside any function`);
        if (callee.start !== targetInsn) throw new ObjectError(`${where}: call into the middle of function '${callee.name}' (+${targetInsn - callee.start})`);
        if (!placed.has(callee)) {
          place(callee);
          visit(callee);
        }
        if (op === OP_LDDW) i++;
      }
    };
    place(main);
    visit(main);
    const linked = new Uint8Array(total * INSN_SIZE);
    for (let k = 0; k < pieces.length; k++) linked.set(chunks[k]!, pieces[k]!.at * INSN_SIZE);
    prog.insns = linked;

    // patch each piece
    for (const [f, at] of placed) {
      const relocs = relocsBySec.get(f.sec.index);
      const code = linked;
      for (let i = f.start; i < f.start + f.length; i++) {
        const j = at + (i - f.start);
        const op = insn.code(code, j);
        const r = relocs?.get(i);
        if (!r) {
          if (op === OP_CALL && insn.src(code, j) === PSEUDO.CALL) {
            const callee = funcAt(f.sec.index, i + insn.imm(code, j) + 1)!;
            const target = placed.get(callee)!;
            insn.setImm(code, j, target - j - 1);
            prog.callRelocs.push({ insn: j, kind: 'call', callee: callee.name, target });
          }
          if (op === OP_LDDW) i++;
          continue;
        }
        switch (r.kind) {
          case 'call':
          case 'func-addr': {
            const callee = funcAt(r.targetSec, r.targetInsn)!;
            const target = placed.get(callee)!;
            insn.setImm(code, j, target - j - 1);
            if (r.kind === 'func-addr') insn.setSrc(code, j, PSEUDO.FUNC);
            prog.callRelocs.push({ insn: j, kind: r.kind, callee: callee.name, target });
            break;
          }
          case 'map':
            insn.setSrc(code, j, PSEUDO.MAP_IDX);
            insn.setImm(code, j, r.map);
            insn.setImm(code, j + 1, 0);
            prog.mapRelocs.push({ insn: j, map: r.map, kind: 'fd', offset: 0, symbol: r.symbol });
            break;
          case 'data':
            insn.setSrc(code, j, PSEUDO.MAP_IDX_VALUE);
            insn.setImm(code, j, r.map);
            insn.setImm(code, j + 1, r.offset);
            prog.mapRelocs.push({ insn: j, map: r.map, kind: 'value', offset: r.offset, symbol: r.symbol });
            break;
          case 'extern':
            prog.externRelocs.push({ insn: j, name: r.name, kind: r.ext, via: r.via });
            break;
        }
        if (op === OP_LDDW) i++;
      }
      // CO-RE, func_info, line_info of this piece
      for (const relo of coreBySec.get(f.sec.name) ?? []) {
        const slot = relo.insnOff / INSN_SIZE;
        if (slot >= f.start && slot < f.start + f.length) {
          const pr: ProgramCoreReloc = { insn: at + slot - f.start, section: f.sec.name, relo };
          prog.coreRelocs.push(pr);
          allCore.push(pr);
        }
      }
      for (const fi of funcInfoBySec.get(f.sec.name) ?? []) {
        const slot = fi.insnOff / INSN_SIZE;
        if (slot >= f.start && slot < f.start + f.length) prog.funcInfo.push({ insn: at + slot - f.start, typeId: fi.typeId });
      }
      for (const li of lineInfoBySec.get(f.sec.name) ?? []) {
        const slot = li.insnOff / INSN_SIZE;
        if (slot >= f.start && slot < f.start + f.length && btf) {
          let fileName = '';
          let line = '';
          try {
            fileName = btf.str(li.fileNameOff);
            line = btf.str(li.lineOff);
          } catch {
            throw new ObjectError(`.BTF.ext line_info of section ${f.sec.name}: string offset outside the .BTF string section`);
          }
          prog.lineInfo.push({ insn: at + slot - f.start, fileName, line, lineNum: li.lineCol >>> 10, column: li.lineCol & 0x3ff });
        }
      }
    }
    prog.coreRelocs.sort((a, b) => a.insn - b.insn);
    prog.funcInfo.sort((a, b) => a.insn - b.insn);
    prog.lineInfo.sort((a, b) => a.insn - b.insn);
    programs.push(prog);
  }

  // CO-RE records must point at instructions of some function
  for (const [secName, relos] of coreBySec) {
    const sec = elf.section(secName);
    if (!sec || !isExec(sec)) throw new ObjectError(`.BTF.ext core_relo: section '${secName}' is not an executable section of the object`);
    for (const r of relos) {
      if (r.insnOff % INSN_SIZE !== 0 || r.insnOff >= sec.size) {
        throw new ObjectError(`.BTF.ext core_relo: instruction offset ${r.insnOff} is outside section ${secName} (${sec.size} bytes) or unaligned`);
      }
      if (btf && r.typeId >= btf.length) throw new ObjectError(`.BTF.ext core_relo at ${secName}+${r.insnOff}: type id ${r.typeId} is not in .BTF (${btf.length} types)`);
    }
  }

  const byProg = new Map(programs.map((p) => [p.name, p]));
  const byMap = new Map(maps.map((m) => [m.name, m]));
  return {
    elf,
    programs,
    functions: funcs.map((f) => ({ name: f.name, section: f.sec.name, sectionInsn: f.start, length: f.length, isProgram: f.isProgram })),
    maps,
    btf,
    btfExt,
    license,
    kernVersion,
    externs,
    coreRelocs: allCore,
    program: (name) => byProg.get(name),
    map: (name) => byMap.get(name),
  };
}

function classifyRelocs(
  elf: ElfFile,
  sec: ElfSection,
  entries: readonly { offset: number; sym: number; type: number; addend: bigint }[],
  relSecName: string,
  maps: readonly BpfMap[],
  btf: Btf | undefined,
): Map<number, SecReloc> {
  const out = new Map<number, SecReloc>();
  const code = sec.data();
  const nInsns = Math.floor(sec.size / INSN_SIZE);
  entries.forEach((e, k) => {
    const where = `relocation ${k} of ${relSecName}`;
    if (e.type === R_BPF.NONE) return;
    if (e.offset % INSN_SIZE !== 0 || e.offset / INSN_SIZE >= nInsns) {
      throw new ObjectError(`${where}: offset ${e.offset} is outside section ${sec.name} (${sec.size} bytes) or not on an instruction`);
    }
    const i = e.offset / INSN_SIZE;
    const sym = elf.symbols[e.sym];
    if (!sym || e.sym === 0) throw new ObjectError(`${where}: refers to symbol ${e.sym}, which does not exist`);
    const op = insn.code(code, i);
    const symName = sym.name || (sym.type === STT.SECTION ? (elf.sections[sym.shndx]?.name ?? '') : '');
    const at = `${where} (insn ${i} of ${sec.name}, symbol '${symName}')`;
    if (out.has(i)) throw new ObjectError(`${at}: a second relocation for the same instruction`);

    // externs: kconfig/ksym variables and kfuncs
    if (sym.shndx === SHN.UNDEF) {
      if (op !== OP_CALL && op !== OP_LDDW) throw new ObjectError(`${at}: extern relocation on an instruction that is neither lddw nor call (opcode 0x${op.toString(16)})`);
      if (op === OP_LDDW && i + 1 >= nInsns) throw new ObjectError(`${at}: lddw is truncated`);
      const isKconfig = (() => {
        if (btf) {
          const ds = btf.find('.kconfig', 'DATASEC');
          if (ds?.kind === 'DATASEC' && ds.vars.some((v) => btf.nameOf(v.type) === sym.name)) return true;
        }
        return sym.name.startsWith('CONFIG_') || sym.name === 'LINUX_KERNEL_VERSION';
      })();
      out.set(i, { kind: 'extern', insn: i, name: sym.name, ext: isKconfig && op === OP_LDDW ? 'kconfig' : 'ksym', via: op === OP_CALL ? 'call' : 'lddw' });
      return;
    }

    const symSec = elf.sections[sym.shndx];
    if (sym.shndx >= SHN.LORESERVE || !symSec) throw new ObjectError(`${at}: symbol is in special section 0x${sym.shndx.toString(16)}`);

    if (op === OP_CALL) {
      if (insn.src(code, i) !== PSEUDO.CALL) throw new ObjectError(`${at}: relocation on a helper call (src_reg ${insn.src(code, i)})`);
      if (!isExec(symSec)) throw new ObjectError(`${at}: call relocation against non-executable section ${symSec.name}`);
      if (sym.value % INSN_SIZE !== 0) throw new ObjectError(`${at}: call target offset ${sym.value} is not a multiple of 8`);
      const targetInsn = sym.value / INSN_SIZE + insn.imm(code, i) + 1;
      if (targetInsn < 0 || targetInsn * INSN_SIZE >= symSec.size) throw new ObjectError(`${at}: call target ${targetInsn} is outside section ${symSec.name}`);
      out.set(i, { kind: 'call', insn: i, targetSec: symSec.index, targetInsn, symbol: symName });
      return;
    }
    if (op !== OP_LDDW) throw new ObjectError(`${at}: relocation on an instruction that is neither lddw nor call (opcode 0x${op.toString(16)})`);
    if (i + 1 >= nInsns) throw new ObjectError(`${at}: lddw is truncated (last instruction of the section)`);

    if (isExec(symSec)) {
      // address of a function (callbacks: bpf_loop, bpf_for_each_map_elem, timers)
      const imm = insn.imm(code, i);
      if (sym.value % INSN_SIZE !== 0 || imm % INSN_SIZE !== 0) throw new ObjectError(`${at}: function address ${sym.value}+${imm} is not a multiple of 8`);
      const targetInsn = (sym.value + imm) / INSN_SIZE;
      if (targetInsn < 0 || targetInsn * INSN_SIZE >= symSec.size) throw new ObjectError(`${at}: function address ${targetInsn} is outside section ${symSec.name}`);
      out.set(i, { kind: 'func-addr', insn: i, targetSec: symSec.index, targetInsn, symbol: symName });
      return;
    }
    if (symSec.name === '.maps' || symSec.name === 'maps') {
      const map = maps.find((m) => m.sectionIndex === symSec.index && m.sectionOffset === sym.value);
      if (!map) throw new ObjectError(`${at}: no map is defined at offset ${sym.value} of section ${symSec.name}`);
      out.set(i, { kind: 'map', insn: i, map: map.index, symbol: symName });
      return;
    }
    const data = maps.find((m) => m.kind === 'data' && m.sectionIndex === symSec.index);
    if (data) {
      const offset = insn.imm(code, i) + sym.value;
      if (offset < 0 || offset > data.valueSize) {
        throw new ObjectError(`${at}: offset ${offset} is outside ${data.name} (${data.valueSize} bytes)`);
      }
      out.set(i, { kind: 'data', insn: i, map: data.index, offset, symbol: symName });
      return;
    }
    throw new ObjectError(`${at}: lddw relocation against section ${symSec.name}, which is neither a map section nor global data`);
  });
  return out;
}

/** .rel.maps: `values = { [i] = &prog_or_map }` initializers of BTF maps (prog_array, map-in-map). */
function mapInitRelocs(elf: ElfFile, entries: readonly { offset: number; sym: number; type: number }[], maps: BpfMap[], funcs: readonly Func[]): void {
  for (const [k, e] of entries.entries()) {
    const where = `relocation ${k} of .rel.maps`;
    const owner = maps
      .filter((m) => m.kind === 'btf' && m.sectionOffset <= e.offset)
      .sort((a, b) => b.sectionOffset - a.sectionOffset)[0];
    const vo = owner ? valuesOffsets.get(owner) : undefined;
    if (!owner || vo === undefined || e.offset < vo) throw new ObjectError(`${where}: offset ${e.offset} of .maps is not inside any map's 'values' initializer`);
    if ((e.offset - vo) % 8 !== 0) throw new ObjectError(`${where}: offset ${e.offset} is not on an 8-byte slot of map '${owner.name}'`);
    const slot = (e.offset - vo) / 8;
    const sym = elf.symbols[e.sym];
    if (!sym || e.sym === 0) throw new ObjectError(`${where}: refers to symbol ${e.sym}, which does not exist`);
    const isProg = funcs.some((f) => f.isProgram && f.name === sym.name);
    const isMap = maps.some((m) => m.kind === 'btf' && m.name === sym.name);
    if (!isProg && !isMap) throw new ObjectError(`${where}: map '${owner.name}' slot ${slot} refers to '${sym.name}', which is neither a program nor a map`);
    if (owner.maxEntries && slot >= owner.maxEntries) throw new ObjectError(`${where}: map '${owner.name}' slot ${slot} is past max_entries ${owner.maxEntries}`);
    owner.initSlots.push({ slot, target: sym.name, kind: isProg ? 'program' : 'map' });
  }
}
