// A small, defensive ELF64 reader for eBPF objects (little- and big-endian).
//
// It reads the file header, the section header table, section names, the symbol tables (.symtab, and
// .dynsym with its GNU symbol versions) and relocation sections. Every offset and size read from the file is checked against the buffer:
// malformed input throws ElfError (code 'ELF_MALFORMED'), never a RangeError or TypeError.

/** Thrown for anything that is not a well-formed ELF64 object. */
export class ElfError extends Error {
  readonly code = 'ELF_MALFORMED' as const;
  constructor(message: string) {
    super(message);
    this.name = 'ElfError';
  }
}

export const EM_BPF = 247;

/** Section types used by eBPF objects (others are reported as their number). */
export const SHT = {
  NULL: 0,
  PROGBITS: 1,
  SYMTAB: 2,
  STRTAB: 3,
  RELA: 4,
  HASH: 5,
  DYNAMIC: 6,
  NOTE: 7,
  NOBITS: 8,
  REL: 9,
  DYNSYM: 11,
  SYMTAB_SHNDX: 18,
  GNU_VERDEF: 0x6ffffffd,
  GNU_VERSYM: 0x6fffffff,
} as const;

/** Section flags. */
export const SHF = {
  WRITE: 0x1,
  ALLOC: 0x2,
  EXECINSTR: 0x4,
} as const;

/** Symbol types (st_info & 0xf). */
export const STT = { NOTYPE: 0, OBJECT: 1, FUNC: 2, SECTION: 3, FILE: 4, GNU_IFUNC: 10 } as const;
/** Symbol bindings (st_info >> 4). */
export const STB = { LOCAL: 0, GLOBAL: 1, WEAK: 2 } as const;
/** Symbol visibilities (st_other & 3). */
export const STV = { DEFAULT: 0, INTERNAL: 1, HIDDEN: 2, PROTECTED: 3 } as const;
/** Special section indices. */
export const SHN = { UNDEF: 0, LORESERVE: 0xff00, ABS: 0xfff1, COMMON: 0xfff2, XINDEX: 0xffff } as const;

export interface ElfSection {
  index: number;
  name: string;
  type: number;
  /** sh_flags; fits in a number for every flag defined by the ABI (bits 0..31). */
  flags: number;
  addr: number;
  offset: number;
  size: number;
  link: number;
  info: number;
  addralign: number;
  entsize: number;
  /** The section's bytes (a view into the input, not a copy). Empty for SHT_NOBITS. */
  data(): Uint8Array;
}

export interface ElfSymbol {
  index: number;
  name: string;
  value: number;
  size: number;
  /** STT_* (st_info & 0xf). */
  type: number;
  /** STB_* (st_info >> 4). */
  bind: number;
  /** STV_* (st_other & 3). */
  visibility: number;
  /** Section index, with SHN_XINDEX already resolved through SHT_SYMTAB_SHNDX. */
  shndx: number;
  /** .dynsym only: the GNU version this object defines the symbol with (`GLIBC_2.2.5`), from .gnu.version_d */
  version?: string;
  /** .dynsym only: the version is hidden (`name@VER`, not the default `name@@VER`) */
  versionHidden?: boolean;
}

export interface ElfRelocation {
  offset: number;
  /** Symbol index into the linked symbol table. */
  sym: number;
  /** Relocation type (R_BPF_* for eBPF objects). */
  type: number;
  /** Explicit addend (SHT_RELA only; 0n for SHT_REL). */
  addend: bigint;
}

export interface ElfRelocationSection {
  /** The SHT_REL / SHT_RELA section itself. */
  section: ElfSection;
  /** Index of the section the relocations apply to (sh_info). */
  target: number;
  entries: ElfRelocation[];
}

export interface ElfFile {
  littleEndian: boolean;
  /** e_type: 1 = ET_REL, 2 = ET_EXEC, 3 = ET_DYN. */
  type: number;
  machine: number;
  flags: number;
  sections: ElfSection[];
  /** The .symtab symbols (index 0, the null symbol, included); [] if there is no symtab. */
  symbols: ElfSymbol[];
  /** The .dynsym symbols (shared objects, dynamic executables), with their versions; [] if there is none.
   *  Read on first call (eBPF objects have none), then kept; throws ElfError when they are malformed. */
  dynamicSymbols(): ElfSymbol[];
  relocations: ElfRelocationSection[];
  /** The first section with this name. */
  section(name: string): ElfSection | undefined;
  /** Size in bytes the object occupies: max(end of headers, end of last section data). */
  extent: number;
}

const EHDR_SIZE = 64;
const SHDR_SIZE = 64;
const SYM_SIZE = 24;
const REL_SIZE = 16;
const RELA_SIZE = 24;

const hex = (n: number): string => `0x${n.toString(16)}`;

/** Bounds-checked little/big-endian reader over a byte range. */
class Reader {
  private readonly view: DataView;
  constructor(
    readonly bytes: Uint8Array,
    readonly le: boolean,
  ) {
    this.view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  }
  private check(off: number, n: number, what: string): void {
    if (!(off >= 0 && off + n <= this.bytes.length)) {
      throw new ElfError(`${what} at ${hex(off)} is past end of file (size ${this.bytes.length})`);
    }
  }
  u8(off: number, what: string): number {
    this.check(off, 1, what);
    return this.view.getUint8(off);
  }
  u16(off: number, what: string): number {
    this.check(off, 2, what);
    return this.view.getUint16(off, this.le);
  }
  u32(off: number, what: string): number {
    this.check(off, 4, what);
    return this.view.getUint32(off, this.le);
  }
  /** A u64 that must fit in a JS safe integer (offsets, sizes, values). */
  u64(off: number, what: string): number {
    this.check(off, 8, what);
    const lo = this.view.getUint32(off + (this.le ? 0 : 4), this.le);
    const hi = this.view.getUint32(off + (this.le ? 4 : 0), this.le);
    if (hi > 0x1fffff) throw new ElfError(`${what} at ${hex(off)} is too large (${hex(hi)}${lo.toString(16).padStart(8, '0')})`);
    return hi * 0x100000000 + lo;
  }
  /** A u64 converted to the nearest number (addresses and symbol values, which may be huge). */
  u64Lossy(off: number, what: string): number {
    this.check(off, 8, what);
    return Number(this.view.getBigUint64(off, this.le));
  }
  i64(off: number, what: string): bigint {
    this.check(off, 8, what);
    return this.view.getBigInt64(off, this.le);
  }
}

const utf8 = new TextDecoder('utf-8');

/** A NUL-terminated string at `off` inside string table `tab`. */
function strAt(tab: Uint8Array, off: number, what: string): string {
  if (off === 0 && tab.length === 0) return '';
  if (off >= tab.length) throw new ElfError(`${what}: name offset ${hex(off)} is outside the string table (size ${tab.length})`);
  const end = tab.indexOf(0, off);
  if (end < 0) throw new ElfError(`${what}: name at ${hex(off)} is not NUL-terminated`);
  return utf8.decode(tab.subarray(off, end));
}

/** Checks the ELF identification bytes; returns the endianness. */
function readIdent(bytes: Uint8Array): boolean {
  if (bytes.length < 16) throw new ElfError(`file too short for an ELF header (${bytes.length} bytes)`);
  if (bytes[0] !== 0x7f || bytes[1] !== 0x45 || bytes[2] !== 0x4c || bytes[3] !== 0x46) {
    throw new ElfError('not an ELF file (bad magic)');
  }
  if (bytes[4] !== 2) throw new ElfError(`unsupported ELF class ${bytes[4]} (only ELF64 is supported)`);
  if (bytes[5] !== 1 && bytes[5] !== 2) throw new ElfError(`bad ELF data encoding ${bytes[5]}`);
  if (bytes[6] !== 1) throw new ElfError(`unsupported ELF version ${bytes[6]}`);
  if (bytes.length < EHDR_SIZE) throw new ElfError(`file too short for an ELF64 header (${bytes.length} bytes)`);
  return bytes[5] === 1;
}

/** Parses an ELF64 object. The returned sections' data() are views into `bytes`. */
export function parseElf(bytes: Uint8Array): ElfFile {
  const le = readIdent(bytes);
  const r = new Reader(bytes, le);
  const type = r.u16(16, 'e_type');
  const machine = r.u16(18, 'e_machine');
  const phoff = r.u64(32, 'e_phoff');
  const shoff = r.u64(40, 'e_shoff');
  const flags = r.u32(48, 'e_flags');
  const phentsize = r.u16(54, 'e_phentsize');
  let phnum = r.u16(56, 'e_phnum');
  const shentsize = r.u16(58, 'e_shentsize');
  let shnum = r.u16(60, 'e_shnum');
  let shstrndx = r.u16(62, 'e_shstrndx');

  let extent = EHDR_SIZE;
  const sections: ElfSection[] = [];
  if (shoff !== 0) {
    if (shentsize < SHDR_SIZE) throw new ElfError(`bad e_shentsize ${shentsize} (expected >= ${SHDR_SIZE})`);
    if (shoff + SHDR_SIZE > bytes.length) {
      throw new ElfError(`section header table at ${hex(shoff)} is past end of file (size ${bytes.length})`);
    }
    // Extended numbering: the real counts live in section header 0.
    if (shnum === 0) shnum = r.u64(shoff + 32, 'section 0 sh_size');
    if (shstrndx === SHN.XINDEX) shstrndx = r.u32(shoff + 40, 'section 0 sh_link');
    if (phnum === 0xffff) phnum = r.u32(shoff + 44, 'section 0 sh_info');
    const tableEnd = shoff + shnum * shentsize;
    if (tableEnd > bytes.length) {
      throw new ElfError(
        `section header table extends past end of file (offset ${hex(shoff)}, ${shnum} entries of ${shentsize} bytes, file size ${bytes.length})`,
      );
    }
    extent = Math.max(extent, tableEnd);
  } else if (shnum !== 0) {
    throw new ElfError(`e_shnum is ${shnum} but e_shoff is 0`);
  }
  if (phoff !== 0 && phnum !== 0) {
    const phEnd = phoff + phnum * phentsize;
    if (phEnd > bytes.length) throw new ElfError(`program header table extends past end of file (offset ${hex(phoff)})`);
    extent = Math.max(extent, phEnd);
  }

  // Raw section headers first; names need the section-name string table.
  const nameOffs: number[] = [];
  for (let i = 0; i < shnum; i++) {
    const o = shoff + i * shentsize;
    const what = `section ${i}`;
    const shType = r.u32(o + 4, `${what} sh_type`);
    const offset = r.u64(o + 24, `${what} sh_offset`);
    const size = r.u64(o + 32, `${what} sh_size`);
    const hasBytes = shType !== SHT.NOBITS && shType !== SHT.NULL;
    const sh: ElfSection = {
      index: i,
      name: '',
      type: shType,
      // Only the low 32 bits hold flags defined by the ABI (the rest are OS/processor specific).
      flags: r.u32(o + (le ? 8 : 12), `${what} sh_flags`),
      addr: r.u64Lossy(o + 16, `${what} sh_addr`),
      offset,
      size,
      link: r.u32(o + 40, `${what} sh_link`),
      info: r.u32(o + 44, `${what} sh_info`),
      addralign: r.u64Lossy(o + 48, `${what} sh_addralign`),
      entsize: r.u64(o + 56, `${what} sh_entsize`),
      data: () => (hasBytes ? bytes.subarray(offset, offset + size) : new Uint8Array(0)),
    };
    nameOffs.push(r.u32(o, `${what} sh_name`));
    if (i > 0 && hasBytes) {
      if (sh.offset + sh.size > bytes.length) {
        throw new ElfError(
          `section ${i} extends past end of file (offset ${hex(sh.offset)}, size ${sh.size}, file size ${bytes.length})`,
        );
      }
      extent = Math.max(extent, sh.offset + sh.size);
    }
    sections.push(sh);
  }

  if (shnum > 0 && shstrndx !== SHN.UNDEF) {
    if (shstrndx >= shnum) throw new ElfError(`e_shstrndx ${shstrndx} is out of range (${shnum} sections)`);
    const strtab = sections[shstrndx]!;
    if (strtab.type !== SHT.STRTAB) throw new ElfError(`section name table (section ${shstrndx}) is not SHT_STRTAB`);
    const tab = strtab.data();
    for (let i = 0; i < shnum; i++) sections[i]!.name = strAt(tab, nameOffs[i]!, `section ${i}`);
  }

  const symbols = readSymbols(r, sections);
  let dynsyms: ElfSymbol[] | undefined;
  const dynamicSymbols = (): ElfSymbol[] => {
    if (!dynsyms) {
      const syms = readSymbols(r, sections, SHT.DYNSYM);
      if (syms.length) readVersions(r, sections, syms);
      dynsyms = syms;
    }
    return dynsyms;
  };
  const relocations = readRelocations(r, sections, symbols.length);
  const byName = new Map<string, ElfSection>();
  for (const s of sections) if (!byName.has(s.name)) byName.set(s.name, s);

  return {
    littleEndian: le,
    type,
    machine,
    flags,
    sections,
    symbols,
    dynamicSymbols,
    relocations,
    extent,
    section: (name: string) => byName.get(name),
  };
}

/** Checks that section `owner.link` exists and has the wanted type. */
function linked(sections: ElfSection[], owner: ElfSection, type: number, what: string): ElfSection {
  const s = sections[owner.link];
  if (owner.link === 0 || !s) throw new ElfError(`section ${owner.index} (${owner.name}): bad ${what} link ${owner.link}`);
  if (s.type !== type) throw new ElfError(`section ${owner.index} (${owner.name}): linked ${what} section ${s.index} has type ${s.type}`);
  return s;
}

function readSymbols(r: Reader, sections: ElfSection[], type: number = SHT.SYMTAB): ElfSymbol[] {
  const symtab = sections.find((s) => s.type === type);
  if (!symtab) return [];
  if (symtab.entsize !== SYM_SIZE) throw new ElfError(`symbol table entry size ${symtab.entsize} (expected ${SYM_SIZE})`);
  if (symtab.size % SYM_SIZE !== 0) throw new ElfError(`symbol table size ${symtab.size} is not a multiple of ${SYM_SIZE}`);
  const strs = linked(sections, symtab, SHT.STRTAB, 'string table').data();
  const shndxSec = sections.find((s) => s.type === SHT.SYMTAB_SHNDX && s.link === symtab.index);
  const count = symtab.size / SYM_SIZE;
  if (shndxSec && shndxSec.size < count * 4) throw new ElfError('SHT_SYMTAB_SHNDX section is too small');
  const out: ElfSymbol[] = new Array(count);
  for (let i = 0; i < count; i++) {
    const o = symtab.offset + i * SYM_SIZE;
    const what = `symbol ${i}`;
    const info = r.u8(o + 4, what);
    let shndx = r.u16(o + 6, what);
    if (shndx === SHN.XINDEX && shndxSec) shndx = r.u32(shndxSec.offset + i * 4, `${what} extended index`);
    if (shndx !== SHN.UNDEF && shndx < SHN.LORESERVE && shndx >= sections.length) {
      throw new ElfError(`${what}: section index ${shndx} is out of range (${sections.length} sections)`);
    }
    out[i] = {
      index: i,
      name: strAt(strs, r.u32(o, what), what),
      value: r.u64Lossy(o + 8, `${what} st_value`),
      size: r.u64(o + 16, `${what} st_size`),
      type: info & 0xf,
      bind: info >> 4,
      visibility: r.u8(o + 5, what) & 3,
      shndx,
    };
  }
  return out;
}

/** GNU symbol versions of defined dynamic symbols: .gnu.version (one u16 per symbol) into .gnu.version_d. */
function readVersions(r: Reader, sections: ElfSection[], syms: ElfSymbol[]): void {
  const versym = sections.find((s) => s.type === SHT.GNU_VERSYM);
  const verdef = sections.find((s) => s.type === SHT.GNU_VERDEF);
  if (!versym || !verdef) return;
  const strs = linked(sections, verdef, SHT.STRTAB, 'string table').data();
  // Elf64_Verdef: vd_version u16, vd_flags u16, vd_ndx u16, vd_cnt u16, vd_hash u32, vd_aux u32, vd_next u32;
  // Elf64_Verdaux: vda_name u32, vda_next u32. sh_info = the number of definitions.
  const names = new Map<number, string>();
  let o = verdef.offset;
  for (let i = 0; i < verdef.info; i++) {
    const what = `version definition ${i}`;
    if (o + 20 > verdef.offset + verdef.size) throw new ElfError(`${what} is past the end of .gnu.version_d`);
    const ndx = r.u16(o + 4, what);
    const cnt = r.u16(o + 6, what);
    const aux = r.u32(o + 12, what);
    const next = r.u32(o + 16, what);
    if (cnt > 0) {
      if (o + aux + 8 > verdef.offset + verdef.size) throw new ElfError(`${what}: its name is past the end of .gnu.version_d`);
      names.set(ndx, strAt(strs, r.u32(o + aux, what), what));
    }
    if (next === 0) break;
    o += next;
  }
  if (versym.size < syms.length * 2) throw new ElfError(`.gnu.version has ${versym.size / 2} entries for ${syms.length} dynamic symbols`);
  for (const sym of syms) {
    if (sym.shndx === SHN.UNDEF) continue;
    const v = r.u16(versym.offset + sym.index * 2, `.gnu.version entry ${sym.index}`);
    const name = names.get(v & 0x7fff);
    // index 1 is the object's own base version (its soname), not a symbol version
    if (name !== undefined && (v & 0x7fff) > 1) {
      sym.version = name;
      sym.versionHidden = (v & 0x8000) !== 0;
    }
  }
}

function readRelocations(r: Reader, sections: ElfSection[], nsyms: number): ElfRelocationSection[] {
  const out: ElfRelocationSection[] = [];
  for (const sec of sections) {
    if (sec.type !== SHT.REL && sec.type !== SHT.RELA) continue;
    const rela = sec.type === SHT.RELA;
    const esz = rela ? RELA_SIZE : REL_SIZE;
    const what = `relocation section ${sec.index} (${sec.name})`;
    if (sec.entsize !== 0 && sec.entsize !== esz) throw new ElfError(`${what}: entry size ${sec.entsize} (expected ${esz})`);
    if (sec.size % esz !== 0) throw new ElfError(`${what}: size ${sec.size} is not a multiple of ${esz}`);
    if (sec.info >= sections.length) throw new ElfError(`${what}: target section ${sec.info} is out of range`);
    // Relocations refer to .symtab (objects) or .dynsym (shared objects, link may then be 0).
    let nsymsHere = 0;
    if (sec.link !== 0) {
      const symtab = sections[sec.link];
      if (!symtab || (symtab.type !== SHT.SYMTAB && symtab.type !== SHT.DYNSYM)) {
        throw new ElfError(`${what}: linked section ${sec.link} is not a symbol table`);
      }
      nsymsHere = symtab.type === SHT.SYMTAB ? nsyms : Math.floor(symtab.size / SYM_SIZE);
    }
    const n = sec.size / esz;
    const entries: ElfRelocation[] = new Array(n);
    for (let i = 0; i < n; i++) {
      const o = sec.offset + i * esz;
      // r_info = sym << 32 | type, read as two u32 halves in file byte order.
      const hi = r.u32(o + (r.le ? 12 : 8), what);
      const lo = r.u32(o + (r.le ? 8 : 12), what);
      if (sec.link !== 0 && hi >= nsymsHere) throw new ElfError(`${what}: entry ${i} refers to symbol ${hi} (${nsymsHere} symbols)`);
      entries[i] = {
        offset: r.u64(o, `${what} entry ${i} r_offset`),
        sym: hi,
        type: lo,
        addend: rela ? r.i64(o + 16, what) : 0n,
      };
    }
    out.push({ section: sec, target: sec.info, entries });
  }
  return out;
}

/**
 * Finds eBPF ELF objects (ELF64, e_machine EM_BPF) embedded in arbitrary bytes, e.g. the data
 * section of a .wasm module. Each hit's size is max(end of section header table, end of the last
 * section's data); candidates that do not parse as a whole are skipped.
 */
export function findElfObjects(bytes: Uint8Array): { offset: number; size: number }[] {
  const found: { offset: number; size: number }[] = [];
  let pos = 0;
  while (pos + EHDR_SIZE <= bytes.length) {
    const at = bytes.indexOf(0x7f, pos);
    if (at < 0 || at + EHDR_SIZE > bytes.length) break;
    const size = probeBpfElf(bytes, at);
    if (size > 0) {
      found.push({ offset: at, size });
      pos = at + size;
    } else {
      pos = at + 1;
    }
  }
  return found;
}

/** Size of a well-formed EM_BPF ELF64 object starting at `at`, or 0. */
function probeBpfElf(bytes: Uint8Array, at: number): number {
  if (bytes[at + 1] !== 0x45 || bytes[at + 2] !== 0x4c || bytes[at + 3] !== 0x46) return 0;
  if (bytes[at + 4] !== 2 || bytes[at + 6] !== 1) return 0;
  const le = bytes[at + 5] === 1;
  if (!le && bytes[at + 5] !== 2) return 0;
  const machine = le ? bytes[at + 18]! | (bytes[at + 19]! << 8) : (bytes[at + 18]! << 8) | bytes[at + 19]!;
  if (machine !== EM_BPF) return 0;
  try {
    // Parse against everything that follows, then confirm the object is self-contained.
    const elf = parseElf(bytes.subarray(at));
    if (elf.sections.length === 0) return 0;
    parseElf(bytes.subarray(at, at + elf.extent));
    return elf.extent;
  } catch (e) {
    if (e instanceof ElfError) return 0;
    throw e;
  }
}
