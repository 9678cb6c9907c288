// What the selector reads of an object, once: its programs and maps (the plan's shape) and its pt_regs
// evidence (whether the pt_regs compat pass may change it). Made from the project's own parse
// (src/object), on the guest's thread or, for the objects a module embeds, on the main thread while the
// guest's thread starts (the facts are plain data: they cross threads).
import type { BpfObject } from '../object/loader.js';
import { findElfObjects, STT } from '../object/elf.js';
import { MAP_TYPE } from '../kernel/uapi.js';
import { validateObject } from '../object/validate.js';
import { ptRegsEvidence } from '../../compat/ptregs/index.js';
import type { ObjectShape } from './plan.js';

export interface ObjectFacts extends ObjectShape {
  programs: Array<{ name: string; section: string; type: number }>;
  maps: Array<{ name: string; type: number }>;
  ptRegs: { members: string[]; userPtRegs: boolean };
}

export function objectFacts(obj: BpfObject): ObjectFacts {
  return {
    programs: obj.programs.map((p) => ({ name: p.name, section: p.section, type: p.type })),
    maps: [...obj.maps.map((m) => ({ name: m.name, type: m.type })), ...structOpsMaps(obj)],
    ptRegs: ptRegsEvidence(obj.btf),
  };
}

/** libbpf makes a struct_ops map of every variable in a .struct_ops / .struct_ops.link section */
function structOpsMaps(obj: BpfObject): Array<{ name: string; type: number }> {
  const secs = new Set(obj.elf.sections.filter((s) => s.name === '.struct_ops' || s.name.startsWith('.struct_ops.')).map((s) => s.index));
  if (secs.size === 0) return [];
  return obj.elf.symbols
    .filter((sym) => secs.has(sym.shndx) && sym.type === STT.OBJECT && sym.name !== '')
    .map((sym) => ({ name: sym.name, type: MAP_TYPE.STRUCT_OPS }));
}

/** An embedded object that passed the validation, where it is in the module, and its facts. */
export interface ValidatedObject {
  offset: number;
  size: number;
  facts: ObjectFacts;
}

/**
 * The eBPF objects embedded in a module's bytes that pass the validation (src/object/validate.ts), with
 * their facts. The main thread runs this while the guest's thread starts, so that the guest's own load of
 * the same bytes is not parsed again (Selector.load compares the bytes it is given with these, whole).
 */
export function validatedObjects(module: Uint8Array): ValidatedObject[] {
  const out: ValidatedObject[] = [];
  for (const { offset, size } of findElfObjects(module)) {
    try {
      out.push({ offset, size, facts: objectFacts(validateObject(module.subarray(offset, offset + size))) });
    } catch {
      // the guest's load meets it again, and reports it
    }
  }
  return out;
}
