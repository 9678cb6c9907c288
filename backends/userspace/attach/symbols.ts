// FUNCTION in BINARY -> where the probe goes: the file offset (what /proc/PID/maps and the kernel's uprobes
// count in), the symbol's virtual address and its size (the inline hook needs st_size), read with the
// project's ELF reader as libbpf's elf_find_func_offset does.
import fs from 'node:fs';
import { BackendError } from '../../../src/errors.js';
import { ERRNO } from '../../../src/kernel/uapi.js';
import { ElfError, parseElf, SHF, SHN, SHT, STB, STT, type ElfFile, type ElfSymbol } from '../../../src/object/elf.js';
import { resolveBinary, type SearchEnv } from './libpath.js';
import type { UprobeTarget } from './target.js';

/** ELF e_type of a position-independent executable or a shared library */
const ET_DYN = 3;

export interface FunctionSymbol {
  /** the name in its table (without the version) */
  name: string;
  /** the GNU version it is defined with (.dynsym only) */
  version?: string;
  table: '.symtab' | '.dynsym';
  /** st_value: the link-time address (the run-time address too in a non-PIE executable) */
  vaddr: number;
  /** where its first byte is in the file: st_value - sh_addr + sh_offset of its section */
  fileOffset: number;
  /** st_size */
  size: number;
  /** STT_GNU_IFUNC: the symbol is the resolver that picks an implementation at load time, not the implementation */
  ifunc: boolean;
  bind: number;
}

export interface ResolvedUprobe {
  /** the file probed (a bare library or program name resolved as libbpf does) */
  path: string;
  /** identity of the file probed: mappings of other files by this path (replaced, deleted) are not it */
  dev: bigint;
  ino: bigint;
  /** e_type ET_DYN (PIE or shared library): loaded at a base chosen at run time */
  pie: boolean;
  machine: number;
  /** the function, when the target named one or a raw offset falls inside one */
  func?: FunctionSymbol;
  /** where the probe goes in the file (function's file offset + OFFSET, or the raw offset) */
  fileOffset: number;
  /** the same point as a link-time virtual address */
  vaddr: number;
  retprobe: boolean;
}

function notFound(message: string, hint?: string): BackendError {
  return new BackendError(message, ERRNO.ENOENT, '', hint, { code: 'NOT_FOUND' });
}
function invalid(message: string): BackendError {
  return new BackendError(message, ERRNO.EINVAL);
}

function toFunction(elf: ElfFile, s: ElfSymbol, table: FunctionSymbol['table']): FunctionSymbol | undefined {
  if (s.shndx === SHN.UNDEF || s.shndx >= SHN.LORESERVE) return undefined;
  const sec = elf.sections[s.shndx];
  if (!sec || s.value < sec.addr || s.value > sec.addr + sec.size) return undefined;
  return {
    name: s.name,
    ...(s.version !== undefined ? { version: s.version } : {}),
    table,
    vaddr: s.value,
    fileOffset: s.value - sec.addr + sec.offset,
    size: s.size,
    ifunc: s.type === STT.GNU_IFUNC,
    bind: s.bind,
  };
}

function functions(elf: ElfFile, table: FunctionSymbol['table']): FunctionSymbol[] {
  const syms = table === '.symtab' ? elf.symbols : elf.dynamicSymbols();
  const out: FunctionSymbol[] = [];
  for (const s of syms) {
    if (s.type !== STT.FUNC && s.type !== STT.GNU_IFUNC) continue;
    const f = toFunction(elf, s, table);
    if (f) out.push(f);
  }
  return out;
}

/** the .symtab name of a versioned symbol is `name@VER` or `name@@VER` (static links, symver aliases) */
function symtabMatches(f: FunctionSymbol, name: string, version: string | undefined): boolean {
  const at = f.name.indexOf('@');
  const base = at < 0 ? f.name : f.name.slice(0, at);
  if (base !== name) return false;
  if (version === undefined) return true;
  return at >= 0 && f.name.slice(f.name[at + 1] === '@' ? at + 2 : at + 1) === version;
}

/**
 * FUNCTION (optionally with its version) in an ELF file: .symtab first (it also has static functions),
 * then .dynsym (stripped binaries, libraries). Several matches at one address are one function; at
 * different addresses a global wins over weak ones; two globals are ambiguous (libbpf's rules).
 */
export function findFunction(elf: ElfFile, name: string, version: string | undefined, where: string): FunctionSymbol {
  const label = `${name}${version !== undefined ? `@${version}` : ''}`;
  for (const table of ['.symtab', '.dynsym'] as const) {
    const hits = functions(elf, table).filter((f) =>
      table === '.symtab' ? symtabMatches(f, name, version) : f.name === name && (version === undefined || f.version === version),
    );
    let best: FunctionSymbol | undefined;
    for (const h of hits) {
      if (!best || h.fileOffset === best.fileOffset) {
        best ??= h;
        continue;
      }
      if (best.bind !== STB.WEAK && h.bind !== STB.WEAK) {
        throw invalid(`function '${label}' is ambiguous in ${where}: ${table} has it at 0x${best.vaddr.toString(16)} and 0x${h.vaddr.toString(16)}`);
      }
      if (best.bind === STB.WEAK && h.bind !== STB.WEAK) best = h;
    }
    if (best) return best;
  }
  const versions = functions(elf, '.dynsym').filter((f) => f.name === name && f.version !== undefined).map((f) => f.version!);
  throw notFound(
    `no function '${label}' in ${where}`,
    versions.length && version !== undefined ? `it has ${name}@${[...new Set(versions)].join(`, ${name}@`)}` : undefined,
  );
}

/** the function whose bytes hold `fileOffset`, if any (for raw offsets) */
function functionAt(elf: ElfFile, fileOffset: number): FunctionSymbol | undefined {
  for (const table of ['.symtab', '.dynsym'] as const) {
    const f = functions(elf, table).find((g) => g.size > 0 && fileOffset >= g.fileOffset && fileOffset < g.fileOffset + g.size);
    if (f) return f;
  }
  return undefined;
}

/**
 * Where a uprobe target lands in its file. Errors (BackendError): no such binary (ENOENT), not an ELF
 * file (ENOEXEC), no such function (ENOENT), a function of size 0 or an offset past its end (EINVAL).
 */
export function resolveUprobe(t: UprobeTarget, search: SearchEnv = {}): ResolvedUprobe {
  const path = resolveBinary(t.binary, search);
  let bytes: Buffer;
  let st: fs.BigIntStats;
  try {
    // a regular file only: a device (/dev/zero) or a FIFO named by a guest would never end the read
    st = fs.statSync(path, { bigint: true });
    if (!st.isFile()) throw invalid(`uprobe target binary ${path} is not a regular file`);
    bytes = fs.readFileSync(path);
  } catch (err) {
    if (err instanceof BackendError) throw err;
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ENOTDIR') throw notFound(`uprobe target binary ${path} does not exist`);
    throw new BackendError(`uprobe target binary ${path}: ${(err as Error).message}`, code === 'EACCES' ? ERRNO.EACCES : ERRNO.EIO, '', undefined, { cause: err });
  }
  let elf: ElfFile;
  try {
    elf = parseElf(new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength));
  } catch (err) {
    if (err instanceof ElfError) throw new BackendError(`uprobe target binary ${path} is not an ELF64 file: ${err.message}`, ERRNO.ENOEXEC, '', undefined, { cause: err });
    throw err;
  }
  const base = { path, dev: st.dev, ino: st.ino, pie: elf.type === ET_DYN, machine: elf.machine, retprobe: t.retprobe };
  if (t.func === undefined) {
    const sec = elf.sections.find((s) => s.type !== SHT.NOBITS && (s.flags & SHF.ALLOC) !== 0 && t.offset >= s.offset && t.offset < s.offset + s.size);
    if (!sec) throw invalid(`file offset 0x${t.offset.toString(16)} is in no loaded section of ${path}`);
    const func = functionAt(elf, t.offset);
    return { ...base, ...(func ? { func } : {}), fileOffset: t.offset, vaddr: t.offset - sec.offset + sec.addr };
  }
  const func = findFunction(elf, t.func, t.version, path);
  const label = `${t.func}${t.version !== undefined ? `@${t.version}` : ''}`;
  if (func.size === 0) throw invalid(`function '${label}' in ${path} has size 0 (st_size): the hook cannot tell where it ends`);
  if (t.offset >= func.size) {
    throw invalid(`offset +0x${t.offset.toString(16)} is past the end of '${label}' in ${path} (${func.size} bytes)`);
  }
  return { ...base, func, fileOffset: func.fileOffset + t.offset, vaddr: func.vaddr + t.offset };
}
