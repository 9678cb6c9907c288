// Program extraction from an eBPF ELF object for `wasm-bpf vm run --elf` and the benchmarks: one program
// section linked with the .text subprograms it calls (libbpf's call relocation rules). Objects that
// reference maps or global data are refused here: those belong to the userspace backend's loader.

import { parseElf, SHF, SHT, STT, type ElfFile, type ElfRelocationSection } from '../../../src/object/elf.js';
import { VmError } from './api.js';

export interface ElfProgram {
  /** section name (or section/function for a .text function) */
  name: string;
  insns: Uint8Array;
}

const INSN = 8;

function isCall(b: Uint8Array, pc: number): boolean {
  return b[pc * INSN] === 0x85 && b[pc * INSN + 1]! >> 4 === 1;
}

function relsFor(elf: ElfFile, index: number): ElfRelocationSection | undefined {
  return elf.relocations.find((r) => r.target === index);
}

/** program sections: executable, non-empty; .text only when nothing else is there */
export function listElfPrograms(bytes: Uint8Array): string[] {
  const elf = parseElf(bytes);
  const exec = elf.sections.filter((s) => s.type === SHT.PROGBITS && (s.flags & SHF.EXECINSTR) !== 0 && s.size > 0);
  const named = exec.filter((s) => s.name !== '.text').map((s) => s.name);
  return named.length > 0 ? named : exec.map((s) => s.name);
}

export function programFromElf(bytes: Uint8Array, which?: string): ElfProgram {
  let elf: ElfFile;
  try {
    elf = parseElf(bytes);
  } catch (e) {
    throw new VmError('invalid', `not a usable ELF object: ${e instanceof Error ? e.message : String(e)}`, undefined, { cause: e });
  }
  if (elf.machine !== 247) throw new VmError('invalid', `ELF machine ${elf.machine} is not BPF (247)`);
  const text = elf.section('.text');
  const progs = listElfPrograms(bytes);
  let secName: string;
  let entryOff = 0;
  if (which === undefined) {
    const first = progs[0];
    if (first === undefined) throw new VmError('invalid', 'the ELF object has no program section');
    secName = first;
  } else if (elf.section(which) !== undefined) {
    secName = which;
  } else {
    const sym = elf.symbols.find((s) => s.type === STT.FUNC && s.name === which);
    if (sym === undefined) throw new VmError('invalid', `no section or function named '${which}' (programs: ${progs.join(', ') || 'none'})`);
    secName = elf.sections[sym.shndx]!.name;
    entryOff = sym.value;
  }
  const sec = elf.section(secName)!;
  if ((sec.flags & SHF.EXECINSTR) === 0) throw new VmError('invalid', `section '${secName}' holds no code`);
  const progInsns = sec.data().slice();
  const withText = text !== undefined && sec !== text;
  const textInsns = withText ? text.data().slice() : new Uint8Array(0);
  const base = progInsns.length / INSN;
  const all = new Uint8Array(progInsns.length + textInsns.length);
  all.set(progInsns, 0);
  all.set(textInsns, progInsns.length);
  const dv = new DataView(all.buffer);
  let usesText = false;

  const link = (secIndex: number, at: number): void => {
    const rels = relsFor(elf, secIndex);
    if (rels === undefined) return;
    for (const r of rels.entries) {
      const pc = r.offset / INSN;
      const sym = elf.symbols[r.sym];
      const symName = sym?.name || (sym !== undefined ? elf.sections[sym.shndx]?.name : '') || `#${r.sym}`;
      if (sym === undefined || !isCall(all, at + pc)) {
        throw new VmError('unsupported', `'${secName}' references '${symName}' (a map or global data): run it through the userspace backend, not 'vm run'`);
      }
      const tsec = elf.sections[sym.shndx];
      let abs: number;
      const imm = dv.getInt32((at + pc) * INSN + 4, true);
      const idx = sym.value / INSN + imm + 1;
      if (tsec === text && withText) {
        abs = base + idx;
        usesText = true;
      } else if (tsec?.index === secIndex) abs = at + idx;
      else if (tsec?.index === sec.index) abs = idx;
      else throw new VmError('unsupported', `call to '${symName}' in section '${tsec?.name ?? '?'}' cannot be linked`);
      dv.setInt32((at + pc) * INSN + 4, abs - (at + pc + 1), true);
    }
  };
  link(sec.index, 0);
  if (withText) link(text.index, base);
  // calls without relocations that leave the program section also need .text
  for (let pc = 0; pc < base; pc++) {
    if (isCall(all, pc) && pc + 1 + dv.getInt32(pc * INSN + 4, true) >= base) usesText = true;
  }
  let insns = usesText ? all : progInsns;
  let name = secName;
  if (entryOff !== 0) {
    // enter at a function inside the section: call it, then exit with its r0
    const stub = new Uint8Array(2 * INSN);
    const sdv = new DataView(stub.buffer);
    stub[0] = 0x85;
    stub[1] = 0x10;
    sdv.setInt32(4, entryOff / INSN + 1, true);
    stub[8] = 0x95;
    const out = new Uint8Array(stub.length + insns.length);
    out.set(stub);
    out.set(insns, stub.length);
    insns = out;
    name = `${secName}/${which}`;
  }
  return { name, insns };
}
