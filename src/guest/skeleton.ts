// `wasm-bpf gen skeleton`: turns an eBPF object (.bpf.o) into a C header for Wasm guests built on
// libbpf-wasm.h. The API mirrors bpftool's skeletons (NAME__open/load/attach/destroy, skel->maps.X,
// skel->progs.X, skel->links.X, skel->rodata->X...) so libbpf-bootstrap style apps compile
// unchanged. The object is embedded in the header; skel->rodata / skel->data point INTO the
// embedded bytes at the sections' file offsets, so writes made before load reach the kernel.

import { BTF_LINKAGE, type Btf, type BtfDatasec, parseBtf } from '../object/btf.js';
import { EM_BPF, type ElfFile, type ElfSection, parseElf, SHF, SHT, STB, STT, STV } from '../object/elf.js';
import { cIdent, commentText, IdentScope, isReserved } from './cnames.js';

/** Thrown when the input is a valid ELF but cannot be turned into a skeleton. */
export class SkeletonError extends Error {
  readonly code = 'SKELETON_INVALID' as const;
  constructor(message: string) {
    super(message);
    this.name = 'SkeletonError';
  }
}

const IDENT = /^[A-Za-z_][A-Za-z0-9_]*$/;
const MAX_OBJ_NAME_LEN = 64;
/** Names that would collide with the libbpf-wasm.h types. */
const RESERVED = new Set(['bpf_object', 'bpf_map', 'bpf_program', 'bpf_link', 'bpf_buffer', 'bpf_object_skeleton', 'bpf_map_skeleton', 'bpf_prog_skeleton', 'bpf_object_open_opts']);

/** Replaces every character that cannot appear in a C identifier by '_' (bpftool's rule); see cIdent. */
function sanitizeIdent(s: string): string {
  return cIdent(s);
}

/** The skeleton name bpftool derives from an object path: "dir/bootstrap.bpf.o" -> "bootstrap_bpf". */
export function skeletonName(file: string): string {
  let base = file.replace(/\/+$/, '');
  base = base.slice(base.lastIndexOf('/') + 1).slice(0, MAX_OBJ_NAME_LEN - 1);
  if (base.endsWith('.o')) base = base.slice(0, -2);
  return base === '' ? 'skel' : sanitizeIdent(base);
}

/** Checks a skeleton name given by the user (-n NAME); returns a message or undefined. */
export function checkSkeletonName(name: string): string | undefined {
  if (!IDENT.test(name)) return `invalid skeleton name '${name}' (must be a C identifier)`;
  if (RESERVED.has(name)) return `skeleton name '${name}' collides with a libbpf-wasm.h type`;
  if (isReserved(name)) return `skeleton name '${name}' is a C keyword or a macro of the headers the skeleton includes`;
  return undefined;
}

interface MapEntry {
  /** Field name in skel->maps (and for data sections, of the view in skel): unique, see collectMaps. */
  ident: string;
  /** Name libbpf-wasm.h passes to the host (section name for internal maps). */
  name: string;
  /** For internal maps of sections: the section. */
  section?: ElfSection;
}

interface ProgEntry {
  ident: string;
  name: string;
}

/** One member of a datasec struct. */
interface Field {
  name: string;
  offset: number;
  size: number;
  /** Declaration with the variable name in it, e.g. "__u32 pids[4]". */
  decl: string;
  align: number;
  comment?: string;
}

/** A datasec view: struct definition (if any) and how the pointer is set at open. */
interface SectionView {
  ident: string;
  section: ElfSection;
  /** The struct tag, or undefined for a void * view. */
  struct?: string;
  fields: Field[];
  /** the struct's member names (fields, then padding) */
  scope: IdentScope;
  packed: boolean;
  /** Why there is no struct (comment). */
  note?: string;
}

/** Generates the skeleton header for an eBPF object. */
export function generateSkeleton(obj: Uint8Array, name = 'skel'): string {
  const problem = checkSkeletonName(name);
  if (problem) throw new SkeletonError(problem);
  const elf = parseElf(obj);
  if (elf.machine !== EM_BPF) {
    throw new SkeletonError(`not an eBPF object: e_machine is ${elf.machine}, expected ${EM_BPF} (EM_BPF)`);
  }
  if (elf.type !== 1) throw new SkeletonError(`not a relocatable object: e_type is ${elf.type}, expected 1 (ET_REL)`);
  const btfSec = elf.section('.BTF');
  const btf = btfSec && btfSec.type !== SHT.NOBITS ? parseBtf(btfSec.data()) : undefined;

  const maps = collectMaps(elf, btf);
  const progs = collectProgs(elf);
  const views = maps
    .filter((m): m is MapEntry & { section: ElfSection } => m.section !== undefined)
    .map((m) => sectionView(elf, btf, name, m.ident, m.section));
  return emit(name, obj, maps, progs, views);
}

// ---- maps and programs ------------------------------------------------------------------------

function datasec(btf: Btf | undefined, secName: string): BtfDatasec | undefined {
  const t = btf?.find(secName, 'DATASEC');
  return t?.kind === 'DATASEC' ? t : undefined;
}

/** Symbols defined in a section, sorted by value. */
function sectionObjects(elf: ElfFile, sec: ElfSection): string[] {
  return elf.symbols
    .filter((s) => s.shndx === sec.index && s.type !== STT.SECTION && s.type !== STT.FILE && s.name !== '' && s.bind !== STB.LOCAL)
    .sort((a, b) => a.value - b.value)
    .map((s) => s.name);
}

/** Maps in libbpf's order: legacy "maps", BTF ".maps", data sections, .kconfig, struct_ops. */
function collectMaps(elf: ElfFile, btf: Btf | undefined): MapEntry[] {
  const out: MapEntry[] = [];
  const legacy = elf.section('maps');
  if (legacy) for (const n of sectionObjects(elf, legacy)) out.push({ ident: '', name: n });

  const mapsSec = elf.section('.maps');
  const mapsDs = datasec(btf, '.maps');
  if (mapsSec) {
    const names = mapsDs && btf ? varsByOffset(elf, btf, mapsDs, mapsSec).map((v) => v.name) : sectionObjects(elf, mapsSec);
    for (const n of names) out.push({ ident: '', name: n });
  }

  for (const sec of elf.sections) {
    if (!isDataSection(sec)) continue;
    out.push({ ident: '', name: sec.name, section: sec });
  }

  const kconfig = datasec(btf, '.kconfig');
  if (kconfig && kconfig.vars.length > 0) out.push({ ident: '', name: '.kconfig' });

  for (const secName of ['.struct_ops', '.struct_ops.link']) {
    const ds = datasec(btf, secName);
    const sec = elf.section(secName);
    if (ds && btf && sec) for (const v of varsByOffset(elf, btf, ds, sec)) out.push({ ident: '', name: v.name });
  }
  // unique member names of skel->maps; data sections first, as their names are also those of the views
  // in skel (skel->rodata, skel->bss: they keep them when a map of the object has the same name)
  const scope = new IdentScope();
  for (const m of out) if (m.section) m.ident = scope.take(m.name.slice(1));
  for (const m of out) if (!m.section) m.ident = scope.take(m.name === '.kconfig' ? 'kconfig' : m.name);
  return out;
}

/** Sections libbpf turns into internal array maps (.data*, .rodata*, .bss*). */
function isDataSection(sec: ElfSection): boolean {
  const n = sec.name;
  const is = (p: string): boolean => n === p || n.startsWith(`${p}.`);
  if (sec.type === SHT.PROGBITS && sec.size > 0 && (sec.flags & SHF.EXECINSTR) === 0) return is('.data') || is('.rodata');
  return sec.type === SHT.NOBITS && is('.bss');
}

/** Programs: global/weak STT_FUNC symbols in executable sections other than .text, in libbpf order. */
function collectProgs(elf: ElfFile): ProgEntry[] {
  const scope = new IdentScope();
  return elf.symbols
    .filter((s) => {
      const sec = elf.sections[s.shndx];
      return (
        s.type === STT.FUNC &&
        s.bind !== STB.LOCAL &&
        s.shndx > 0 &&
        sec !== undefined &&
        sec.type === SHT.PROGBITS &&
        (sec.flags & SHF.EXECINSTR) !== 0 &&
        sec.name !== '.text'
      );
    })
    .sort((a, b) => a.shndx - b.shndx || a.value - b.value)
    .map((s) => ({ ident: scope.take(s.name), name: s.name }));
}

interface PlacedVar {
  name: string;
  type: number;
  offset: number;
  size: number;
  /** Static (or hidden) variables are not exposed, as in bpftool. */
  exposed: boolean;
}

/**
 * The variables of a DATASEC with their real offsets. Clang leaves DATASEC sizes and global VAR
 * offsets 0 in .bpf.o files (libbpf fixes them at load from .symtab): like libbpf, take the offset
 * from the ELF symbol of the same name in that section when there is one.
 */
function varsByOffset(elf: ElfFile, btf: Btf, ds: BtfDatasec, sec: ElfSection): PlacedVar[] {
  const syms = new Map<string, { value: number; hidden: boolean }>();
  for (const s of elf.symbols) {
    if (s.shndx !== sec.index || s.type === STT.SECTION || s.name === '') continue;
    const hidden = s.visibility === STV.HIDDEN || s.visibility === STV.INTERNAL;
    // Prefer global definitions over a local with the same name.
    if (!syms.has(s.name) || s.bind !== STB.LOCAL) syms.set(s.name, { value: s.value, hidden });
  }
  const unfixed = ds.size === 0;
  const out: PlacedVar[] = [];
  for (const v of ds.vars) {
    const t = btf.type(v.type);
    if (t.kind !== 'VAR') continue;
    const sym = syms.get(t.name);
    if (!sym && unfixed && t.linkage !== BTF_LINKAGE.STATIC) continue; // offset unknown
    const size = v.size || safeSizeof(btf, t.type);
    out.push({
      name: t.name,
      type: t.type,
      offset: sym ? sym.value : v.offset,
      size,
      exposed: t.linkage !== BTF_LINKAGE.STATIC && !(sym?.hidden ?? false),
    });
  }
  return out.sort((a, b) => a.offset - b.offset);
}

function safeSizeof(btf: Btf, id: number): number {
  try {
    return btf.sizeof(id);
  } catch {
    return 0;
  }
}

// ---- C spelling of BTF types for a wasm32 guest -----------------------------------------------

/** C spellings of integer types with their wasm32 size: emitted as-is when it equals the BTF size. */
const C_INT_SIZES = new Map<string, number>([
  ['char', 1], ['signed char', 1], ['unsigned char', 1],
  ['short', 2], ['short int', 2], ['signed short', 2], ['unsigned short', 2], ['short unsigned int', 2], ['unsigned short int', 2],
  ['int', 4], ['signed int', 4], ['unsigned', 4], ['unsigned int', 4],
  // "long" is 8 bytes in BPF but 4 in wasm32: those become __s64/__u64 by the size check.
  ['long', 4], ['long int', 4], ['unsigned long', 4], ['long unsigned int', 4], ['unsigned long int', 4],
  ['long long', 8], ['long long int', 8], ['unsigned long long', 8], ['long long unsigned int', 8], ['unsigned long long int', 8],
  ['__int128', 16], ['unsigned __int128', 16], ['__int128 unsigned', 16],
]);

/** Fixed-width typedef names kept by name (u8..s64 spelled __u8..__s64, which libbpf-wasm.h defines). */
const FIXED_TYPEDEFS = new Map<string, { spell: string; size: number }>([
  ['bool', { spell: 'bool', size: 1 }],
  ['_Bool', { spell: 'bool', size: 1 }],
]);
for (const [bits, size] of [[8, 1], [16, 2], [32, 4], [64, 8]] as const) {
  for (const sign of ['u', 's'] as const) {
    FIXED_TYPEDEFS.set(`__${sign}${bits}`, { spell: `__${sign}${bits}`, size });
    FIXED_TYPEDEFS.set(`${sign}${bits}`, { spell: `__${sign}${bits}`, size });
  }
  FIXED_TYPEDEFS.set(`uint${bits}_t`, { spell: `uint${bits}_t`, size });
  FIXED_TYPEDEFS.set(`int${bits}_t`, { spell: `int${bits}_t`, size });
}

/** A C type as base spelling + array dimensions, with its wasm32 size and alignment. */
interface CType {
  base: string;
  dims: number[];
  size: number;
  align: number;
  /** A plain integer (INT, bool or enum), not an array or pointer. */
  int: boolean;
  comment?: string;
}

function scalar(base: string, size: number, int: boolean, comment?: string): CType {
  return { base, dims: [], size, align: size, int, comment };
}

function intSpelling(size: number, signed: boolean): CType | undefined {
  if (size === 16) return scalar(signed ? '__int128' : 'unsigned __int128', 16, true);
  if (size !== 1 && size !== 2 && size !== 4 && size !== 8) return undefined;
  return scalar(`__${signed ? 's' : 'u'}${size * 8}`, size, true);
}

/** The C type for a BTF type, or undefined when it must be emitted as raw bytes. */
function cType(btf: Btf, id: number, depth = 0): CType | undefined {
  if (depth > 32) return undefined;
  const t = btf.type(id);
  switch (t.kind) {
    case 'CONST': case 'VOLATILE': case 'RESTRICT': case 'TYPE_TAG':
      return cType(btf, t.type, depth + 1); // modifiers are dropped, as bpftool does
    case 'TYPEDEF': {
      const below = cType(btf, t.type, depth + 1);
      const fixed = FIXED_TYPEDEFS.get(t.name);
      if (fixed && below?.int && below.size === fixed.size) return scalar(fixed.spell, fixed.size, true);
      return below; // e.g. pid_t -> int, size_t -> __u64 (8 bytes in BPF)
    }
    case 'INT': {
      if (t.bool && t.size === 1) return scalar('bool', 1, true);
      if (C_INT_SIZES.get(t.name) === t.size) return scalar(t.name, t.size, true);
      return intSpelling(t.size, t.signed);
    }
    case 'ENUM': case 'ENUM64': {
      const negative = t.kind === 'ENUM' ? t.values.some((v) => v.value < 0) : t.values.some((v) => v.value < 0n);
      const c = intSpelling(t.size, t.signed || negative);
      return c && { ...c, comment: `enum ${t.name || '(anon)'}` };
    }
    case 'PTR':
      // BPF pointers are 64-bit; the wasm32 guest's are 32-bit.
      return scalar('__u64', 8, false, `${btf.typeString(id)} (64-bit BPF pointer)`);
    case 'FLOAT':
      if (t.size === 4) return scalar('float', 4, false);
      if (t.size === 8) return scalar('double', 8, false);
      return undefined;
    case 'ARRAY': {
      const el = cType(btf, t.type, depth + 1);
      if (!el || t.nelems === 0) return undefined;
      return { ...el, int: false, dims: [t.nelems, ...el.dims], size: el.size * t.nelems };
    }
    default:
      return undefined; // struct, union, ...: raw bytes
  }
}

/** the field of variable `v`, as member `name` (v.name made a unique identifier) */
function fieldFor(btf: Btf, v: PlacedVar, name: string): Field {
  const c = cType(btf, v.type);
  if (c && c.size === v.size && v.offset % c.align === 0) {
    return { name, offset: v.offset, size: v.size, align: c.align, decl: `${c.base} ${name}${c.dims.map((d) => `[${d}]`).join('')}`, comment: c.comment };
  }
  const why = c ? (c.size !== v.size ? ', size mismatch' : ', misaligned') : '';
  const shown = btf.typeString(stripMods(btf, v.type));
  return { name, offset: v.offset, size: v.size, align: 1, decl: `unsigned char ${name}[${v.size}]`, comment: `${shown}${why}` };
}

/** Skips CONST/VOLATILE/RESTRICT/TYPE_TAG (keeps typedef names for comments). */
function stripMods(btf: Btf, id: number): number {
  for (let depth = 0; depth < 32; depth++) {
    const t = btf.type(id);
    if (t.kind !== 'CONST' && t.kind !== 'VOLATILE' && t.kind !== 'RESTRICT' && t.kind !== 'TYPE_TAG') return id;
    id = t.type;
  }
  return id;
}

/** The typed view of one data section (struct members from its BTF DATASEC). */
function sectionView(elf: ElfFile, btf: Btf | undefined, skel: string, ident: string, sec: ElfSection): SectionView {
  const view: SectionView = { ident, section: sec, fields: [], scope: new IdentScope(), packed: false };
  if (!elf.littleEndian) {
    view.note = 'big-endian object: no typed view (the wasm32 guest is little-endian)';
    return view;
  }
  const ds = datasec(btf, sec.name);
  if (!btf || !ds) {
    view.note = `no BTF for ${sec.name}`;
    return view;
  }
  let end = 0;
  for (const v of varsByOffset(elf, btf, ds, sec)) {
    if (!v.exposed || !IDENT.test(v.name) || v.size === 0) continue;
    if (v.offset < end || v.offset + v.size > sec.size) continue; // overlapping or outside the section
    view.fields.push(fieldFor(btf, v, view.scope.take(v.name)));
    end = v.offset + v.size;
  }
  if (view.fields.length === 0) {
    view.note = `no global variables in ${sec.name}`;
    return view;
  }
  view.struct = `${skel}__${ident}`;
  const align = view.fields.reduce((a, f) => Math.max(a, f.align), 1);
  // .bss is calloc'd (aligned); .rodata/.data point into the 8-aligned ELF bytes at the section offset.
  view.packed = sec.type !== SHT.NOBITS && (sec.offset % align !== 0 || align > 8);
  return view;
}

// ---- output -------------------------------------------------------------------------------------

const HEX = Array.from({ length: 256 }, (_, i) => `0x${i.toString(16).padStart(2, '0')}`);

function bytesInitializer(bytes: Uint8Array): string {
  const lines: string[] = [];
  for (let i = 0; i < bytes.length; i += 16) {
    const row: string[] = [];
    for (const b of bytes.subarray(i, i + 16)) row.push(HEX[b]!);
    lines.push(`\t${row.join(', ')},`);
  }
  return lines.join('\n');
}

const hex = (n: number): string => `0x${n.toString(16)}`;
/** A C string literal (non-printable and non-ASCII bytes as octal escapes). */
function cstr(s: string): string {
  let out = '"';
  for (const b of new TextEncoder().encode(s)) {
    if (b === 0x22 || b === 0x5c) out += `\\${String.fromCharCode(b)}`;
    else if (b >= 0x20 && b < 0x7f && b !== 0x3f) out += String.fromCharCode(b); // no '?': trigraphs
    else out += `\\${b.toString(8).padStart(3, '0')}`;
  }
  return `${out}"`;
}

function emitStruct(v: SectionView): string[] {
  const out: string[] = [];
  if (!v.struct) return out;
  const src = v.section.type === SHT.NOBITS ? 'a zeroed buffer' : `the embedded ELF bytes at offset ${hex(v.section.offset)}`;
  out.push(`/* ${commentText(v.section.name)} (${v.section.size} bytes): ${src} */`);
  out.push(`struct ${v.packed ? '__attribute__((packed)) ' : ''}${v.struct} {`);
  let cur = 0;
  let pad = 0;
  for (const f of v.fields) {
    if (f.offset > cur) out.push(`\tchar ${v.scope.take(`__pad_${pad++}`)}[${f.offset - cur}];`);
    out.push(`\t${f.decl};${f.comment ? ` /* ${commentText(f.comment)} */` : ''}`);
    cur = f.offset + f.size;
  }
  out.push('};', '');
  return out;
}

function emitAsserts(views: SectionView[]): string[] {
  const out: string[] = [];
  for (const v of views) {
    if (!v.struct) continue;
    for (const f of v.fields) {
      out.push(`_Static_assert(offsetof(struct ${v.struct}, ${f.name}) == ${f.offset}, "${v.struct}: wrong offset of '${f.name}'");`);
      out.push(`_Static_assert(sizeof(((struct ${v.struct} *)0)->${f.name}) == ${f.size}, "${v.struct}: wrong size of '${f.name}'");`);
    }
  }
  return out;
}

function emit(name: string, obj: Uint8Array, maps: MapEntry[], progs: ProgEntry[], views: SectionView[]): string {
  const guard = `__${name.toUpperCase()}_SKEL_H__`;
  const N = name;
  const L: string[] = [];
  const push = (...s: string[]): void => {
    L.push(...s);
  };
  push(
    `/* ${N} skeleton: generated by \`wasm-bpf gen skeleton\` for Wasm guests. DO NOT EDIT.`,
    ' *',
    ` * skel->rodata, skel->data (and other .rodata.* / .data.* views) point into ${N}__elf_bytes:`,
    ` * values written after ${N}__open() and before ${N}__load() are loaded with the object, which`,
    ' * is how const volatile configuration reaches the BPF programs. Writes after load do not reach',
    ' * the kernel (use map operations). .bss views are zeroed buffers that are never sent to the host.',
    ' * BPF pointers are 64-bit, so pointer variables appear as __u64 in the views.',
    ' */',
    `#ifndef ${guard}`,
    `#define ${guard}`,
    '',
    '#include <errno.h>',
    '#include <stddef.h>',
    '#include <stdlib.h>',
    '#include "libbpf-wasm.h"',
    '',
    `/* The eBPF object (${obj.length} bytes). Not const: skel->rodata / skel->data point into it, so`,
    ' * values written there after open and before load are part of the object that gets loaded. */',
    `static unsigned char ${N}__elf_bytes[${obj.length}] __attribute__((aligned(8))) = {`,
    bytesInitializer(obj),
    '};',
    '',
  );
  for (const v of views) push(...emitStruct(v));
  const asserts = emitAsserts(views);
  if (asserts.length) {
    push(
      '/* The views must match the BPF side byte for byte: a mismatch fails to compile. */',
      '#ifdef __cplusplus',
      '#define _Static_assert static_assert',
      '#endif',
      ...asserts,
      '#ifdef __cplusplus',
      '#undef _Static_assert',
      '#endif',
      '',
    );
  }

  push(`struct ${N} {`, '\tstruct bpf_object_skeleton *skeleton;', '\tstruct bpf_object *obj;');
  if (maps.length) push('\tstruct {', ...maps.map((m) => `\t\tstruct bpf_map *${m.ident};`), '\t} maps;');
  if (progs.length) {
    push('\tstruct {', ...progs.map((p) => `\t\tstruct bpf_program *${p.ident};`), '\t} progs;');
    push('\tstruct {', ...progs.map((p) => `\t\tstruct bpf_link *${p.ident};`), '\t} links;');
  }
  for (const v of views) {
    const note = v.note ? ` /* ${commentText(v.note)} */` : '';
    push(v.struct ? `\tstruct ${v.struct} *${v.ident};` : `\tvoid *${v.ident};${note}`);
  }
  push(
    '',
    '#ifdef __cplusplus',
    `\tstatic inline struct ${N} *open(const struct bpf_object_open_opts *opts = nullptr);`,
    `\tstatic inline struct ${N} *open_and_load();`,
    `\tstatic inline int load(struct ${N} *skel);`,
    `\tstatic inline int attach(struct ${N} *skel);`,
    `\tstatic inline void detach(struct ${N} *skel);`,
    `\tstatic inline void destroy(struct ${N} *skel);`,
    '\tstatic inline const void *elf_bytes(size_t *sz);',
    '#endif /* __cplusplus */',
    '};',
    '',
  );

  // Zeroed buffers for NOBITS sections, freed by destroy.
  const bssViews = views.filter((v) => v.section.type === SHT.NOBITS);
  push(
    `static inline void ${N}__destroy(struct ${N} *obj)`,
    '{',
    '\tif (!obj)',
    '\t\treturn;',
    ...bssViews.map((v) => `\tfree(obj->${v.ident});`),
    '\tif (obj->skeleton)',
    '\t\tbpf_object__destroy_skeleton(obj->skeleton);',
    '\tfree(obj);',
    '}',
    '',
    `static inline int ${N}__create_skeleton(struct ${N} *obj);`,
    '',
    `static inline struct ${N} *${N}__open_opts(const struct bpf_object_open_opts *opts)`,
    '{',
    `\tstruct ${N} *obj;`,
    '\tint err;',
    '',
    `\tobj = (struct ${N} *)calloc(1, sizeof(*obj));`,
    '\tif (!obj) {',
    '\t\terrno = ENOMEM;',
    '\t\treturn NULL;',
    '\t}',
    `\terr = ${N}__create_skeleton(obj);`,
    '\tif (err)',
    '\t\tgoto err_out;',
    '\terr = bpf_object__open_skeleton(obj->skeleton, opts);',
    '\tif (err)',
    '\t\tgoto err_out;',
  );
  for (const v of views) {
    const ty = v.struct ? `struct ${v.struct} *` : 'void *';
    if (v.section.type === SHT.NOBITS) {
      const size = v.struct ? `sizeof(struct ${v.struct}) > ${v.section.size} ? sizeof(struct ${v.struct}) : ${v.section.size}` : `${v.section.size}`;
      push(
        `\t/* ${commentText(v.section.name)} has no bytes in the object: values written to skel->${v.ident} are NOT`,
        '\t * sent to the kernel (the map starts zeroed); read/write it with map operations. */',
        `\tobj->${v.ident} = (${ty})calloc(1, ${size});`,
        `\tif (!obj->${v.ident}) {`,
        '\t\terr = -ENOMEM;',
        '\t\tgoto err_out;',
        '\t}',
      );
    } else {
      push(
        `\t/* ${commentText(v.section.name)}: writes before ${N}__load() are loaded with the object. */`,
        `\tobj->${v.ident} = (${ty})(void *)(${N}__elf_bytes + ${hex(v.section.offset)});`,
      );
    }
  }
  push(
    '\treturn obj;',
    'err_out:',
    `\t${N}__destroy(obj);`,
    '\terrno = -err;',
    '\treturn NULL;',
    '}',
    '',
    `static inline struct ${N} *${N}__open(void)`,
    '{',
    `\treturn ${N}__open_opts(NULL);`,
    '}',
    '',
    `static inline int ${N}__load(struct ${N} *obj)`,
    '{',
    '\treturn bpf_object__load_skeleton(obj->skeleton);',
    '}',
    '',
    `static inline struct ${N} *${N}__open_and_load(void)`,
    '{',
    `\tstruct ${N} *obj;`,
    '\tint err;',
    '',
    `\tobj = ${N}__open();`,
    '\tif (!obj)',
    '\t\treturn NULL;',
    `\terr = ${N}__load(obj);`,
    '\tif (err) {',
    `\t\t${N}__destroy(obj);`,
    '\t\terrno = -err;',
    '\t\treturn NULL;',
    '\t}',
    '\treturn obj;',
    '}',
    '',
    `static inline int ${N}__attach(struct ${N} *obj)`,
    '{',
    '\treturn bpf_object__attach_skeleton(obj->skeleton);',
    '}',
    '',
    `static inline void ${N}__detach(struct ${N} *obj)`,
    '{',
    '\tbpf_object__detach_skeleton(obj->skeleton);',
    '}',
    '',
    `static inline int ${N}__create_skeleton(struct ${N} *obj)`,
    '{',
    '\tstruct bpf_object_skeleton *s;',
    '\tint err;',
    '',
    '\ts = (struct bpf_object_skeleton *)calloc(1, sizeof(*s));',
    '\tif (!s) {',
    '\t\terr = -ENOMEM;',
    '\t\tgoto err;',
    '\t}',
    '\ts->sz = sizeof(*s);',
    `\ts->name = ${cstr(N)};`,
    '\ts->obj = &obj->obj;',
  );
  // Counts are set only once the arrays exist: bpf_object__destroy_skeleton walks them.
  if (maps.length) {
    push(
      '',
      '\t/* maps */',
      `\ts->maps = (struct bpf_map_skeleton *)calloc(${maps.length}, sizeof(*s->maps));`,
      '\tif (!s->maps) {',
      '\t\terr = -ENOMEM;',
      '\t\tgoto err;',
      '\t}',
      `\ts->map_cnt = ${maps.length};`,
      '\ts->map_skel_sz = sizeof(*s->maps);',
    );
    maps.forEach((m, i) => {
      push(`\ts->maps[${i}].name = ${cstr(m.name)};`, `\ts->maps[${i}].map = &obj->maps.${m.ident};`);
      if (m.section) push(`\ts->maps[${i}].mmaped = (void **)&obj->${m.ident};`);
    });
  }
  if (progs.length) {
    push(
      '',
      '\t/* programs */',
      `\ts->progs = (struct bpf_prog_skeleton *)calloc(${progs.length}, sizeof(*s->progs));`,
      '\tif (!s->progs) {',
      '\t\terr = -ENOMEM;',
      '\t\tgoto err;',
      '\t}',
      `\ts->prog_cnt = ${progs.length};`,
      '\ts->prog_skel_sz = sizeof(*s->progs);',
    );
    progs.forEach((p, i) => {
      push(
        `\ts->progs[${i}].name = ${cstr(p.name)};`,
        `\ts->progs[${i}].prog = &obj->progs.${p.ident};`,
        `\ts->progs[${i}].link = &obj->links.${p.ident};`,
      );
    });
  }
  push(
    '',
    `\ts->data = ${N}__elf_bytes;`,
    `\ts->data_sz = sizeof(${N}__elf_bytes);`,
    '\tobj->skeleton = s;',
    '\treturn 0;',
    'err:',
    '\tbpf_object__destroy_skeleton(s);',
    '\treturn err;',
    '}',
    '',
    '#ifdef __cplusplus',
    `struct ${N} *${N}::open(const struct bpf_object_open_opts *opts) { return ${N}__open_opts(opts); }`,
    `struct ${N} *${N}::open_and_load() { return ${N}__open_and_load(); }`,
    `int ${N}::load(struct ${N} *skel) { return ${N}__load(skel); }`,
    `int ${N}::attach(struct ${N} *skel) { return ${N}__attach(skel); }`,
    `void ${N}::detach(struct ${N} *skel) { ${N}__detach(skel); }`,
    `void ${N}::destroy(struct ${N} *skel) { ${N}__destroy(skel); }`,
    `const void *${N}::elf_bytes(size_t *sz) { *sz = sizeof(${N}__elf_bytes); return ${N}__elf_bytes; }`,
    '#endif /* __cplusplus */',
    '',
  );
  push(`#endif /* ${guard} */`, '');
  return L.join('\n');
}
