// Which binary and function a userspace uprobe program names: its section (`uprobe//bin:func+0x4`, as
// libbpf reads it) or the guest's explicit attach target (`BINARY:FUNCTION[+OFFSET]`, or a raw file offset).
// Strings in, a UprobeTarget out; nothing on disk is looked at (libpath.ts and symbols.ts do that).
import { BackendError } from '../../../src/errors.js';
import { ERRNO } from '../../../src/kernel/uapi.js';
import { sectionDef } from '../../../src/object/sections.js';
import { parseUprobeSpec } from '../../../src/object/uprobe.js';

export interface UprobeTarget {
  /** the binary as written: an absolute path, or a name libpath.ts resolves (`libc.so.6`) */
  binary: string;
  /** the function's name without its version; undefined for a raw file offset */
  func?: string;
  /** `malloc@@GLIBC_2.2.5` / `malloc@GLIBC_2.2.5`: GLIBC_2.2.5 */
  version?: string;
  /** bytes past the function's entry (+OFFSET), or the raw file offset when `func` is undefined */
  offset: number;
  retprobe: boolean;
  sleepable: boolean;
}

/** the section heads the userspace backend attaches as uprobes (not the .multi and usdt forms) */
const HEADS = new Set(['uprobe', 'uprobe.s', 'uretprobe', 'uretprobe.s']);

function invalid(message: string): BackendError {
  return new BackendError(message, ERRNO.EINVAL);
}

/**
 * The target of a uprobe program. `explicit` (the guest's attach target) wins over the section's own.
 * FUNCTION is a symbol name (optionally versioned) or, starting with a digit, a file offset in BINARY
 * (as libbpf's bpf_program__attach_uprobe takes it without a func_name): `/bin/bash:0x4c5e0`.
 */
export function uprobeTarget(section: string, explicit?: string): UprobeTarget {
  const def = sectionDef(section);
  const head = section.split('/', 1)[0]!;
  if (def?.uprobe !== true || !HEADS.has(head)) {
    throw invalid(`section '${section}' is not a uprobe or uretprobe section (uprobe[.s]/BINARY:FUNCTION[+OFFSET])`);
  }
  const retprobe = head.startsWith('uretprobe');
  const fromSection = section.length > head.length ? section.slice(head.length + 1) : '';
  const spec = explicit ?? fromSection;
  if (spec === '') {
    throw invalid(`section '${section}' names no BINARY:FUNCTION and no attach target was given`);
  }
  const parsed = parseUprobeSpec(spec);
  if (!parsed) throw invalid(`uprobe target '${spec}' is not BINARY:FUNCTION[+OFFSET]`);
  // libbpf: "uretprobes do not support offset specification" (a return probe is at the entry)
  if (retprobe && parsed.offset !== 0) throw invalid(`uprobe target '${spec}': a uretprobe takes no +OFFSET`);
  const base = { binary: parsed.binary, retprobe, sleepable: def.sleepable === true };
  if (/^[0-9]/.test(parsed.func)) {
    if (parsed.offset !== 0 || !/^(0x[0-9a-fA-F]+|\d+)$/.test(parsed.func)) {
      throw invalid(`uprobe target '${spec}': '${parsed.func}' is neither a function name nor a file offset`);
    }
    return { ...base, offset: Number(parsed.func) };
  }
  // libbpf's elf_find_func_offset: `name@VER` and `name@@VER` both ask for version VER
  const at = parsed.func.indexOf('@');
  if (at < 0) return { ...base, func: parsed.func, offset: parsed.offset };
  const version = parsed.func.slice(parsed.func[at + 1] === '@' ? at + 2 : at + 1);
  if (at === 0 || version === '') throw invalid(`uprobe target '${spec}': '${parsed.func}' is not FUNCTION@VERSION`);
  return { ...base, func: parsed.func.slice(0, at), version, offset: parsed.offset };
}
