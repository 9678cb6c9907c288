// `wasm-bpf vm disasm --elf`: every code section of an eBPF object as llvm-objdump -dr shows it (its
// function symbols as labels, each relocation as a comment naming its type, symbol and what it is: a
// map, data or a function), map-referencing objects included. The text reassembles to the section bytes.

import { parseElf, SHF, SHT, STT, type ElfFile } from '../../../src/object/elf.js';
import { VmError } from './api.js';
import { disassembleLines, type Syntax } from './asm.js';

const R_BPF: Record<number, string> = { 0: 'R_BPF_NONE', 1: 'R_BPF_64_64', 2: 'R_BPF_64_ABS64', 3: 'R_BPF_64_ABS32', 4: 'R_BPF_64_NODYLD32', 10: 'R_BPF_64_32' };

export interface ElfDisasmLine {
  pc: number;
  text: string;
  /** `R_BPF_64_64 rb (map)` when a relocation applies to this instruction */
  reloc?: string;
}

export interface ElfDisasmSection {
  name: string;
  /** function symbols by instruction index */
  labels: Map<number, string[]>;
  lines: ElfDisasmLine[];
}

function openElf(bytes: Uint8Array): ElfFile {
  let elf: ElfFile;
  try {
    elf = parseElf(bytes);
  } catch (e) {
    throw new VmError('invalid', `not a usable ELF object: ${e instanceof Error ? e.message : String(e)}`, undefined, { cause: e });
  }
  if (elf.machine !== 247) throw new VmError('invalid', `ELF machine ${elf.machine} is not BPF (247)`);
  return elf;
}

/** the code sections (all of them, or the one named) disassembled, with labels and relocations */
export function disasmElfSections(bytes: Uint8Array, opts: { section?: string; syntax?: Syntax } = {}): ElfDisasmSection[] {
  const elf = openElf(bytes);
  const code = elf.sections.filter((s) => s.type === SHT.PROGBITS && (s.flags & SHF.EXECINSTR) !== 0 && s.size > 0);
  const chosen = opts.section === undefined ? code : code.filter((s) => s.name === opts.section);
  if (chosen.length === 0) {
    const what = opts.section === undefined ? 'the ELF object has no code section' : `no code section named '${opts.section}'`;
    throw new VmError('invalid', `${what} (code sections: ${code.map((s) => s.name).join(', ') || 'none'})`);
  }
  return chosen.map((sec) => {
    const labels = new Map<number, string[]>();
    for (const sym of elf.symbols) {
      if (sym.shndx !== sec.index || sym.type !== STT.FUNC || sym.name === '') continue;
      const at = sym.value / 8;
      labels.set(at, [...(labels.get(at) ?? []), sym.name]);
    }
    const relocs = new Map<number, string>();
    for (const rs of elf.relocations.filter((r) => r.target === sec.index)) {
      for (const r of rs.entries) {
        const sym = elf.symbols[r.sym];
        const target = sym === undefined ? undefined : elf.sections[sym.shndx];
        const name = sym === undefined ? `#${r.sym}` : sym.type === STT.SECTION ? (target?.name ?? '?') : sym.name;
        let kind = 'extern';
        if (target !== undefined && sym !== undefined && sym.shndx !== 0) {
          if (target.name === '.maps' || target.name === 'maps') kind = 'map';
          else if ((target.flags & SHF.EXECINSTR) !== 0) kind = 'function';
          else kind = 'data';
        }
        relocs.set(r.offset / 8, `${R_BPF[r.type] ?? `R_BPF_${r.type}`} ${name} (${kind})`);
      }
    }
    const lines: ElfDisasmLine[] = disassembleLines(sec.data(), { syntax: opts.syntax ?? 'llvm' }).map((l) => {
      const reloc = relocs.get(l.pc);
      return reloc === undefined ? { pc: l.pc, text: l.text } : { pc: l.pc, text: l.text, reloc };
    });
    return { name: sec.name, labels, lines };
  });
}

/** the text `vm disasm --elf` prints: `# section NAME` comments, `label:` lines, relocation comments */
export function disasmElf(bytes: Uint8Array, opts: { section?: string; syntax?: Syntax } = {}): string {
  const out: string[] = [];
  for (const s of disasmElfSections(bytes, opts)) {
    out.push(`# section ${s.name}`);
    for (const l of s.lines) {
      for (const name of s.labels.get(l.pc) ?? []) out.push(`${name}:`);
      out.push(`\t${l.text}${l.reloc === undefined ? '' : `\t# ${l.reloc}`}`);
    }
  }
  return out.join('\n') + '\n';
}
