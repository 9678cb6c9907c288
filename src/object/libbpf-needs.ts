// What libbpf 1.1 relies on in an object beyond what loadObject() needs for itself: checks on an
// already parsed object (every offset and id loadObject() read is in range by then). Each check names a
// read libbpf makes without bounds: failing one means libbpf would read outside the object's buffers.
import type { Btf } from './btf.js';
import { ObjectError, type BpfObject } from './loader.js';
import { SHF, SHT, type ElfSection } from './elf.js';

const INSN = 8;

function isExec(sec: ElfSection | undefined): boolean {
  return sec !== undefined && sec.type === SHT.PROGBITS && (sec.flags & SHF.EXECINSTR) !== 0;
}

/** Throws ObjectError when libbpf would trust something out of range in `obj`. */
export function checkLibbpfNeeds(obj: BpfObject): void {
  checkSectionLinks(obj);
  if (obj.btf) {
    checkBtfChains(obj.btf);
    checkBtfKinds(obj.btf);
  }
  if (obj.btf && obj.btfExt) checkBtfExt(obj);
  checkRelocationTargets(obj);
}

/** sh_link and sh_info of symbol and relocation tables name existing sections (libbpf indexes with them). */
function checkSectionLinks(obj: BpfObject): void {
  const { sections } = obj.elf;
  for (const s of sections) {
    if (s.type === SHT.SYMTAB || s.type === SHT.REL || s.type === SHT.RELA) {
      if (s.link >= sections.length) throw new ObjectError(`section ${s.index} (${s.name}): sh_link ${s.link} is out of range (${sections.length} sections)`);
    }
    if ((s.type === SHT.REL || s.type === SHT.RELA) && s.info >= sections.length) {
      throw new ObjectError(`section ${s.index} (${s.name}): sh_info ${s.info} is out of range (${sections.length} sections)`);
    }
  }
}

/**
 * Chains of references that do not pass through a struct or union (PTR, TYPEDEF, the modifiers, VAR,
 * FUNC, DECL_TAG, an ARRAY's element type) must end: a loop among them describes no C type, and libbpf's
 * walks over them (size, resolve) have no limit: the host hangs (found by the fuzzer: two typedefs
 * naming each other). The BTF reader itself accepts loops and its own walks stop at a depth limit.
 */
function checkBtfChains(btf: Btf): void {
  const first = btf.startId;
  const n = btf.length - first;
  const nextOf = (id: number): number => {
    const t = btf.type(id);
    switch (t.kind) {
      case 'PTR': case 'TYPEDEF': case 'VOLATILE': case 'CONST': case 'RESTRICT': case 'TYPE_TAG':
      case 'VAR': case 'FUNC': case 'DECL_TAG': case 'ARRAY':
        return t.type;
      default:
        return 0;
    }
  };
  // 0: not seen, 1: on the chain being walked, 2: known to end
  const state = new Uint8Array(n);
  const inside = (id: number): boolean => id >= first && id < btf.length;
  for (let s = first; s < btf.length; s++) {
    if (state[s - first] !== 0) continue;
    let id = s;
    while (inside(id) && state[id - first] === 0) {
      state[id - first] = 1;
      id = nextOf(id);
    }
    if (inside(id) && state[id - first] === 1) {
      throw new ObjectError(`bad BTF: type ${id} (${btf.kindOf(id)}): its chain of references loops back to itself`);
    }
    for (let j = s; inside(j) && state[j - first] === 1; j = nextOf(j)) state[j - first] = 2;
  }
}

/**
 * The kinds libbpf assumes behind a reference: a FUNC's type is a FUNC_PROTO, a DATASEC lists VARs (or
 * FUNCs, for .ksyms), a DECL_TAG's component index is inside its target, a DATASEC entry lies inside it.
 */
function checkBtfKinds(btf: Btf): void {
  for (let id = btf.startId; id < btf.length; id++) {
    const t = btf.type(id);
    const fail = (what: string): never => {
      throw new ObjectError(`bad BTF: type ${id} (${t.kind}${t.name ? ` '${t.name}'` : ''}): ${what}`);
    };
    switch (t.kind) {
      case 'FUNC':
        if (btf.kindOf(t.type) !== 'FUNC_PROTO') fail(`type ${t.type} is a ${btf.kindOf(t.type)}, expected FUNC_PROTO`);
        break;
      case 'VAR':
        if (t.type === 0) fail('a variable of type void');
        break;
      case 'DATASEC':
        t.vars.forEach((v, k) => {
          const kind = btf.kindOf(v.type);
          if (kind !== 'VAR' && kind !== 'FUNC') fail(`entry ${k} is type ${v.type}, a ${kind}, expected VAR or FUNC`);
          if (t.size !== 0 && v.offset + v.size > t.size) fail(`entry ${k} at ${v.offset} (+${v.size}) is outside the section (${t.size} bytes)`);
        });
        break;
      case 'DECL_TAG': {
        if (t.componentIdx < -1) fail(`component index ${t.componentIdx}`);
        if (t.componentIdx >= 0) {
          const target = btf.type(t.type);
          const n =
            target.kind === 'STRUCT' || target.kind === 'UNION'
              ? target.members.length
              : target.kind === 'FUNC'
                ? (() => {
                    const p = btf.type(target.type);
                    return p.kind === 'FUNC_PROTO' ? p.params.length : 0;
                  })()
                : 0;
          if (t.componentIdx >= n) fail(`component index ${t.componentIdx} is outside type ${t.type} (${n} components)`);
        }
        break;
      }
      default:
        break;
    }
  }
}

/** func_info and line_info records: sections that exist and hold code, offsets on instructions inside them, FUNC type ids. */
function checkBtfExt(obj: BpfObject): void {
  const btf = obj.btf!;
  const ext = obj.btfExt!;
  const section = (name: string, what: string): ElfSection => {
    const sec = obj.elf.section(name);
    if (!isExec(sec)) throw new ObjectError(`.BTF.ext ${what}: section '${name}' is not an executable section of the object`);
    return sec!;
  };
  const onInsn = (sec: ElfSection, off: number, what: string): void => {
    if (off % INSN !== 0 || off >= sec.size) throw new ObjectError(`.BTF.ext ${what}: instruction offset ${off} is outside section ${sec.name} (${sec.size} bytes) or unaligned`);
  };
  for (const s of ext.funcInfo) {
    const sec = section(s.section, 'func_info');
    for (const r of s.records) {
      onInsn(sec, r.insnOff, 'func_info');
      if (r.typeId >= btf.length || btf.kindOf(r.typeId) !== 'FUNC') {
        throw new ObjectError(`.BTF.ext func_info at ${s.section}+${r.insnOff}: type ${r.typeId} is not a FUNC of .BTF (${btf.length} types)`);
      }
    }
  }
  for (const s of ext.lineInfo) {
    const sec = section(s.section, 'line_info');
    for (const r of s.records) onInsn(sec, r.insnOff, 'line_info');
  }
}

/**
 * Relocation sections libbpf reads besides those of code (.rel.maps, .rel.struct_ops): entries inside
 * the target section, on 8-byte slots, naming a symbol.
 */
function checkRelocationTargets(obj: BpfObject): void {
  const { sections, symbols } = obj.elf;
  for (const rs of obj.elf.relocations) {
    const target = sections[rs.target];
    if (!target || target.type === SHT.NULL) continue;
    const name = target.name;
    if (!isExec(target) && name !== '.maps' && !name.startsWith('.struct_ops')) continue;
    rs.entries.forEach((e, k) => {
      const where = `relocation ${k} of ${rs.section.name}`;
      if (e.offset + INSN > target.size) throw new ObjectError(`${where}: offset ${e.offset} is outside section ${name} (${target.size} bytes)`);
      if (e.offset % INSN !== 0) throw new ObjectError(`${where}: offset ${e.offset} is not 8-byte aligned`);
      if (e.sym === 0 || e.sym >= symbols.length) throw new ObjectError(`${where}: refers to symbol ${e.sym}, which does not exist (${symbols.length} symbols)`);
    });
  }
}
