// Where each .maps BTF map definition keeps its type number: `__uint(type, N)` is a member `type` of
// type `int (*)[N]`, so N is the nelems word of an ARRAY in .BTF. This finds that word's file offset
// for each map, and refuses when the same ARRAY also encodes something else (a max_entries of N).
import type { BpfObject } from '../../../src/object/loader.js';
import type { BtfType } from '../../../src/object/btf.js';

export type TypeSlot = { fileOff: number } | { shared: string };

/** type id -> how many references each type receives from the others */
function referenceCounts(types: readonly BtfType[]): Map<number, number> {
  const refs = new Map<number, number>();
  const add = (id: number): void => {
    if (id > 0) refs.set(id, (refs.get(id) ?? 0) + 1);
  };
  for (const t of types) {
    switch (t.kind) {
      case 'PTR': case 'TYPEDEF': case 'VOLATILE': case 'CONST': case 'RESTRICT': case 'TYPE_TAG':
      case 'VAR': case 'FUNC': case 'DECL_TAG':
        add(t.type);
        break;
      case 'ARRAY':
        add(t.type);
        add(t.indexType);
        break;
      case 'STRUCT': case 'UNION':
        for (const m of t.members) add(m.type);
        break;
      case 'FUNC_PROTO':
        add(t.type);
        for (const p of t.params) add(p.type);
        break;
      case 'DATASEC':
        for (const v of t.vars) add(v.type);
        break;
      default:
        break;
    }
  }
  return refs;
}

/** map name -> the file offset of its type number in .BTF (or why it cannot be rewritten alone) */
export function btfTypeSlots(obj: BpfObject): Map<string, TypeSlot> {
  const out = new Map<string, TypeSlot>();
  const btf = obj.btf;
  const sec = obj.elf.section('.BTF');
  const ds = btf?.find('.maps', 'DATASEC');
  if (!btf || !sec || !ds || ds.kind !== 'DATASEC') return out;
  const refs = referenceCounts(btf.types);
  // the `type` members of every map definition, by the PTR they name
  const typeMembers = new Map<number, { maps: string[]; linuxTypes: Set<number> }>();
  const defs: Array<{ name: string; ptr: number }> = [];
  for (const v of ds.vars) {
    const vt = btf.type(v.type);
    if (vt.kind !== 'VAR') continue;
    const def = btf.resolveType(vt.type);
    if (def.kind !== 'STRUCT') continue;
    const mem = def.members.find((m) => m.name === 'type');
    if (!mem) continue;
    const m = obj.map(vt.name);
    defs.push({ name: vt.name, ptr: mem.type });
    const e = typeMembers.get(mem.type) ?? { maps: [], linuxTypes: new Set<number>() };
    e.maps.push(vt.name);
    if (m) e.linuxTypes.add(m.type);
    typeMembers.set(mem.type, e);
  }
  for (const { name, ptr } of defs) {
    const p = btf.type(ptr);
    const users = typeMembers.get(ptr)!;
    if (p.kind !== 'PTR') {
      out.set(name, { shared: `its \`type\` field is a ${p.kind}, not a pointer to an array` });
      continue;
    }
    const a = btf.type(p.type);
    if (a.kind !== 'ARRAY') {
      out.set(name, { shared: `its \`type\` field points to a ${a.kind}, not an array` });
      continue;
    }
    if ((refs.get(ptr) ?? 0) !== users.maps.length || users.linuxTypes.size !== 1 || (refs.get(a.id) ?? 0) !== 1) {
      out.set(name, { shared: `the BTF type 'int (*)[${a.nelems}]' it uses also encodes another field (a max_entries, key or value size of ${a.nelems}, or another map type)` });
      continue;
    }
    out.set(name, { fileOff: sec.offset + btf.dataOffset(a.id) + 8 });
  }
  return out;
}
