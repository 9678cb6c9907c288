// Crafted hostile objects, each made from a real object by a few bytes' change: the shapes that made
// libbpf (bpf_object__open_mem) read outside its buffers or loop forever before the project's own
// validation ran first (issue 14, point 1).
import { KIND, getU32, layout, setU32, setU64 } from './layout.js';

export type Shape = 'var-type' | 'member-types' | 'entsize' | 'offset' | 'reloc-symbol' | 'type-loop';

export const SHAPES: readonly Shape[] = ['var-type', 'member-types', 'entsize', 'offset', 'reloc-symbol', 'type-loop'];

/** `obj` with one hostile change of this shape */
export function craft(obj: Uint8Array, shape: Shape): Uint8Array {
  const b = new Uint8Array(obj); // a copy (a Buffer's slice() would be a view of obj)
  const L = layout(obj);
  const ntypes = L.btfTypes.length + 1;
  const need = <T>(x: T | undefined, what: string): T => {
    if (x === undefined) throw new Error(`craft ${shape}: the object has no ${what}`);
    return x;
  };
  switch (shape) {
    case 'var-type': {
      // a BTF VAR whose type id is out of range: one 4-byte change
      const v = need(L.btfTypes.find((t) => t.kind === KIND.VAR), 'BTF VAR');
      setU32(b, v.at + 8, ntypes + 3);
      break;
    }
    case 'member-types': {
      // every member of a struct refers to a type that does not exist
      const s = need(L.btfTypes.find((t) => t.kind === KIND.STRUCT && t.vlen > 1), 'BTF struct');
      for (let k = 0; k < s.vlen; k++) setU32(b, s.at + 12 + 12 * k + 4, 0x10000 + k);
      break;
    }
    case 'entsize': {
      // the symbol table's sh_entsize far larger than an Elf64_Sym
      const sym = need(L.sections.find((s) => s.type === 2), 'symbol table');
      setU64(b, sym.hdr + 56, 0x100000000n);
      break;
    }
    case 'offset': {
      // .BTF's sh_offset past the end of the file
      const btf = need(L.sections.find((s) => s.name === '.BTF'), '.BTF');
      setU64(b, btf.hdr + 24, 0x7fffffff0n);
      break;
    }
    case 'reloc-symbol': {
      // a relocation of a code section naming a symbol past the end of the symbol table
      const code = new Set(L.sections.filter((s) => s.type === 1 && (getU32(b, s.hdr + 8) & 4) !== 0).map((s) => s.index));
      const rel = need(L.relocs.find((r) => code.has(L.sections[r.section]!.info)), 'relocation of code');
      const nsyms = need(L.sections.find((s) => s.type === 2), 'symbol table').size / 24;
      setU32(b, rel.at + 12, nsyms + 1000);
      break;
    }
    case 'type-loop': {
      // two typedefs that name each other (found by the fuzzer in xdp.bpf.o, `__sum16` -> `__u16` ->
      // `__sum16`: libbpf's walk over the chain never ends); a typedef of a typedef, the inner one turned back
      const isTypedef = (id: number): boolean => L.btfTypes[id - 1]?.kind === KIND.TYPEDEF;
      const outer = need(L.btfTypes.find((t) => t.kind === KIND.TYPEDEF && isTypedef(getU32(b, t.at + 8))), 'typedef of a typedef');
      setU32(b, L.btfTypes[getU32(b, outer.at + 8) - 1]!.at + 8, outer.id);
      break;
    }
  }
  return b;
}
