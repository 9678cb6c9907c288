// Where the fields of an eBPF ELF object live, for mutators and crafted test objects: the section
// headers (file offset of each), the .BTF types (file offset, kind, vlen) and the relocation entries.
// Read with the project's own parsers (src/object/), so it needs a well-formed object to start from.
import { parseElf, SHT } from '../../src/object/elf.js';

export interface SectionHeader {
  index: number;
  name: string;
  type: number;
  /** file offset of this section's header */
  hdr: number;
  offset: number;
  size: number;
  link: number;
  info: number;
  entsize: number;
}

export interface BtfTypeAt {
  id: number;
  /** file offset of the btf_type header (name_off, info, size_or_type) */
  at: number;
  kind: number;
  vlen: number;
}

export interface Layout {
  shoff: number;
  shentsize: number;
  sections: SectionHeader[];
  /** file offset of the .BTF header; -1 without .BTF */
  btf: number;
  btfTypes: BtfTypeAt[];
  /** file offset of the .BTF.ext header; -1 without */
  btfExt: number;
  /** every relocation entry: file offset of the entry, its section */
  relocs: { at: number; section: number; size: number }[];
}

/** bytes per kind-specific data after the 12-byte btf_type (same table as src/object/btf.ts) */
export function btfExtra(kind: number, vlen: number): number {
  switch (kind) {
    case 1: case 14: case 17: return 4;
    case 3: return 12;
    case 4: case 5: case 15: case 19: return 12 * vlen;
    case 6: case 13: return 8 * vlen;
    default: return 0;
  }
}

export function layout(bytes: Uint8Array): Layout {
  const elf = parseElf(bytes);
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const shoff = Number(dv.getBigUint64(40, true));
  const shentsize = dv.getUint16(58, true);
  const sections: SectionHeader[] = elf.sections.map((s) => ({
    index: s.index, name: s.name, type: s.type, hdr: shoff + s.index * shentsize,
    offset: s.offset, size: s.size, link: s.link, info: s.info, entsize: s.entsize,
  }));
  const out: Layout = { shoff, shentsize, sections, btf: -1, btfTypes: [], btfExt: -1, relocs: [] };
  const btf = sections.find((s) => s.name === '.BTF');
  if (btf && btf.size >= 24) {
    const b = btf.offset;
    out.btf = b;
    const hdrLen = dv.getUint32(b + 4, true);
    const start = b + hdrLen + dv.getUint32(b + 8, true);
    const end = start + dv.getUint32(b + 12, true);
    let p = start;
    for (let id = 1; p + 12 <= end; id++) {
      const info = dv.getUint32(p + 4, true);
      const kind = (info >>> 24) & 0x1f;
      const vlen = info & 0xffff;
      out.btfTypes.push({ id, at: p, kind, vlen });
      p += 12 + btfExtra(kind, vlen);
    }
  }
  const ext = sections.find((s) => s.name === '.BTF.ext');
  if (ext && ext.size >= 24) out.btfExt = ext.offset;
  for (const s of sections) {
    if (s.type !== SHT.REL && s.type !== SHT.RELA) continue;
    const size = s.type === SHT.REL ? 16 : 24;
    for (let at = s.offset; at + size <= s.offset + s.size; at += size) out.relocs.push({ at, section: s.index, size });
  }
  return out;
}

export const KIND = { INT: 1, PTR: 2, ARRAY: 3, STRUCT: 4, UNION: 5, ENUM: 6, FWD: 7, TYPEDEF: 8, FUNC: 12, FUNC_PROTO: 13, VAR: 14, DATASEC: 15 } as const;

export function setU32(b: Uint8Array, at: number, v: number): void {
  new DataView(b.buffer, b.byteOffset, b.byteLength).setUint32(at, v >>> 0, true);
}
export function setU64(b: Uint8Array, at: number, v: bigint): void {
  new DataView(b.buffer, b.byteOffset, b.byteLength).setBigUint64(at, BigInt.asUintN(64, v), true);
}
export function getU32(b: Uint8Array, at: number): number {
  return new DataView(b.buffer, b.byteOffset, b.byteLength).getUint32(at, true);
}
