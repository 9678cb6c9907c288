// Mutators that know the formats: eBPF ELF objects (ELF header, section headers, symbols, relocations,
// .BTF types and ids, .BTF.ext records, instructions) and Wasm modules (section ids and sizes, LEB128s,
// import kinds and types, the function types, the eBPF object embedded in a data segment), plus blind
// byte flips, inserts, deletions and truncation. Every mutator is a pure function of (input, rng).
import { findElfObjects } from '../../src/object/elf.js';
import { layout, type Layout } from './layout.js';
import type { Rng } from './rng.js';

export interface Mutant {
  bytes: Uint8Array;
  /** what was changed, e.g. 'btf type 15 +8 u32=0x1ae' */
  ops: string[];
}

const hex = (n: number | bigint): string => `0x${n.toString(16)}`;

function dv(b: Uint8Array): DataView {
  return new DataView(b.buffer, b.byteOffset, b.byteLength);
}

/** values that break bounds checks: around 0, around a limit, around powers of two, all ones */
function interesting(r: Rng, limit: number): number {
  const pick = r.int(10);
  switch (pick) {
    case 0: return 0;
    case 1: return r.int(8);
    case 2: return Math.max(0, limit - 1 + r.int(3));
    case 3: return 0xffffffff - r.int(4);
    case 4: return 0x7fffffff + r.int(3);
    case 5: return 1 << r.int(32);
    case 6: return r.u32();
    case 7: return limit * (2 + r.int(8));
    case 8: return r.int(Math.max(1, limit));
    default: return 0x10000 - r.int(3);
  }
}

function setField(b: Uint8Array, at: number, width: 1 | 2 | 4 | 8, v: number | bigint): void {
  const d = dv(b);
  if (at < 0 || at + width > b.length) return;
  if (width === 1) d.setUint8(at, Number(v) & 0xff);
  else if (width === 2) d.setUint16(at, Number(v) & 0xffff, true);
  else if (width === 4) d.setUint32(at, Number(BigInt.asUintN(32, BigInt(v))), true);
  else d.setBigUint64(at, BigInt.asUintN(64, BigInt(v)), true);
}

// ---- blind ----------------------------------------------------------------------------------------

export function blind(input: Uint8Array, r: Rng, ops: string[]): Uint8Array {
  let b = input;
  switch (r.int(6)) {
    case 0: {
      const n = 1 + r.int(4);
      b = b.slice();
      for (let k = 0; k < n; k++) {
        const at = r.int(b.length);
        const bit = r.int(8);
        b[at]! ^= 1 << bit;
        ops.push(`flip ${hex(at)}.${bit}`);
      }
      return b;
    }
    case 1: {
      b = b.slice();
      const at = r.int(b.length);
      b[at] = r.pick([0, 0xff, 0x7f, 0x80, r.int(256)]);
      ops.push(`byte ${hex(at)}=${hex(b[at]!)}`);
      return b;
    }
    case 2: {
      const at = r.int(b.length + 1);
      const n = 1 + r.int(16);
      const ins = new Uint8Array(n).map(() => r.int(256));
      ops.push(`insert ${n} at ${hex(at)}`);
      return concat(b.subarray(0, at), ins, b.subarray(at));
    }
    case 3: {
      const at = r.int(b.length);
      const n = 1 + r.int(Math.min(64, b.length - at));
      ops.push(`delete ${n} at ${hex(at)}`);
      return concat(b.subarray(0, at), b.subarray(at + n));
    }
    case 4: {
      const at = r.int(b.length);
      ops.push(`truncate at ${hex(at)}`);
      return b.slice(0, at);
    }
    default: {
      const from = r.int(b.length);
      const n = 1 + r.int(Math.min(32, b.length - from));
      const to = r.int(Math.max(1, b.length - n));
      b = b.slice();
      b.copyWithin(to, from, from + n);
      ops.push(`copy ${n} ${hex(from)}->${hex(to)}`);
      return b;
    }
  }
}

function concat(...parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
}

// ---- eBPF objects ---------------------------------------------------------------------------------

const SHDR_FIELDS: { name: string; off: number; width: 4 | 8 }[] = [
  { name: 'sh_name', off: 0, width: 4 },
  { name: 'sh_type', off: 4, width: 4 },
  { name: 'sh_flags', off: 8, width: 8 },
  { name: 'sh_offset', off: 24, width: 8 },
  { name: 'sh_size', off: 32, width: 8 },
  { name: 'sh_link', off: 40, width: 4 },
  { name: 'sh_info', off: 44, width: 4 },
  { name: 'sh_addralign', off: 48, width: 8 },
  { name: 'sh_entsize', off: 56, width: 8 },
];

const EHDR_FIELDS: { name: string; off: number; width: 1 | 2 | 4 | 8 }[] = [
  { name: 'e_ident[class]', off: 4, width: 1 },
  { name: 'e_ident[data]', off: 5, width: 1 },
  { name: 'e_type', off: 16, width: 2 },
  { name: 'e_machine', off: 18, width: 2 },
  { name: 'e_shoff', off: 40, width: 8 },
  { name: 'e_shentsize', off: 58, width: 2 },
  { name: 'e_shnum', off: 60, width: 2 },
  { name: 'e_shstrndx', off: 62, width: 2 },
];

/** one format-aware change to an object, in place; false if the object has no such part */
function objectField(b: Uint8Array, L: Layout, r: Rng, ops: string[]): boolean {
  const nsec = L.sections.length;
  const ntypes = L.btfTypes.length + 1;
  switch (r.int(9)) {
    case 0: {
      const f = r.pick(EHDR_FIELDS);
      const v = f.name === 'e_shnum' || f.name === 'e_shstrndx' ? interesting(r, nsec) : interesting(r, b.length);
      setField(b, f.off, f.width, v);
      ops.push(`ehdr ${f.name}=${hex(v)}`);
      return true;
    }
    case 1:
    case 2: {
      const s = L.sections[1 + r.int(nsec - 1)];
      if (!s) return false;
      const f = r.pick(SHDR_FIELDS);
      const limit = f.name === 'sh_link' || f.name === 'sh_info' ? nsec : f.name === 'sh_entsize' ? 24 : f.name === 'sh_type' ? 19 : b.length;
      const v = interesting(r, limit);
      setField(b, s.hdr + f.off, f.width, v);
      ops.push(`section ${s.index} (${s.name}) ${f.name}=${hex(v)}`);
      return true;
    }
    case 3: {
      // a BTF type's header word or one of its member/param/var entries
      const t = L.btfTypes.length ? r.pick(L.btfTypes) : undefined;
      if (!t) return false;
      const words = 3 + (t.kind === 4 || t.kind === 5 || t.kind === 15 || t.kind === 19 ? 3 * t.vlen : t.kind === 6 || t.kind === 13 ? 2 * t.vlen : t.kind === 3 ? 3 : t.kind === 1 || t.kind === 14 || t.kind === 17 ? 1 : 0);
      const w = r.int(words);
      let v: number;
      if (w === 1 && r.chance(0.7)) {
        // info: kind, vlen or kflag
        const info = getU32(b, t.at + 4);
        const which = r.int(3);
        v = which === 0 ? (info & ~(0x1f << 24)) | (r.int(21) << 24) : which === 1 ? (info & ~0xffff) | interesting(r, t.vlen + 1) : info ^ 0x80000000;
      } else {
        v = interesting(r, w === 0 ? 64 : ntypes);
      }
      setField(b, t.at + 4 * w, 4, v);
      ops.push(`btf type ${t.id} word ${w}=${hex(v >>> 0)}`);
      return true;
    }
    case 4: {
      if (L.btf < 0) return false;
      const w = 1 + r.int(5);
      const v = interesting(r, getU32(b, L.btf + 4 * w));
      setField(b, L.btf + 4 * w, 4, v);
      ops.push(`btf header word ${w}=${hex(v)}`);
      return true;
    }
    case 5: {
      if (L.btfExt < 0) return false;
      const hdrLen = getU32(b, L.btfExt + 4);
      const ext = L.sections.find((s) => s.name === '.BTF.ext')!;
      // a header word, or any word of the records (record sizes, counts, insn offsets, type ids)
      const at = r.chance(0.3) ? L.btfExt + 4 * (1 + r.int(7)) : L.btfExt + hdrLen + 4 * r.int(Math.max(1, (ext.size - hdrLen) >> 2));
      const v = interesting(r, r.chance(0.5) ? ntypes : 64);
      setField(b, at, 4, v);
      ops.push(`btf.ext +${hex(at - L.btfExt)}=${hex(v)}`);
      return true;
    }
    case 6: {
      const rel = L.relocs.length ? r.pick(L.relocs) : undefined;
      if (!rel) return false;
      const which = r.int(3);
      const nsyms = (L.sections.find((s) => s.type === 2)?.size ?? 0) / 24;
      if (which === 0) setField(b, rel.at, 8, interesting(r, 4096));
      else if (which === 1) setField(b, rel.at + 12, 4, interesting(r, nsyms));
      else setField(b, rel.at + 8, 4, interesting(r, 11));
      ops.push(`reloc ${hex(rel.at)} ${['r_offset', 'sym', 'type'][which]}`);
      return true;
    }
    case 7: {
      const symtab = L.sections.find((s) => s.type === 2);
      if (!symtab || symtab.size < 48) return false;
      const i = 1 + r.int(symtab.size / 24 - 1);
      const at = symtab.offset + i * 24;
      const f = r.pick([
        { n: 'st_name', o: 0, w: 4 as const, lim: 256 },
        { n: 'st_info', o: 4, w: 1 as const, lim: 256 },
        { n: 'st_shndx', o: 6, w: 2 as const, lim: nsec },
        { n: 'st_value', o: 8, w: 8 as const, lim: 4096 },
        { n: 'st_size', o: 16, w: 8 as const, lim: 4096 },
      ]);
      const v = interesting(r, f.lim);
      setField(b, at + f.o, f.w, v);
      ops.push(`symbol ${i} ${f.n}=${hex(v)}`);
      return true;
    }
    default: {
      // an instruction of a code section: opcode, registers, offset or immediate
      const code = L.sections.filter((s) => s.type === 1 && s.size >= 8 && s.name !== '.BTF' && s.name !== '.BTF.ext' && (getU32(b, s.hdr + 8) & 4) !== 0);
      if (!code.length) return false;
      const s = r.pick(code);
      const at = s.offset + 8 * r.int(s.size / 8);
      const which = r.int(4);
      if (which === 0) b[at] = r.int(256);
      else if (which === 1) b[at + 1] = r.int(256);
      else if (which === 2) setField(b, at + 2, 2, interesting(r, 64));
      else setField(b, at + 4, 4, interesting(r, 64));
      ops.push(`insn ${s.name}+${hex(at - s.offset)} ${['code', 'regs', 'off', 'imm'][which]}`);
      return true;
    }
  }
}

function getU32(b: Uint8Array, at: number): number {
  return at >= 0 && at + 4 <= b.length ? dv(b).getUint32(at, true) : 0;
}

/** 1-3 changes to a well-formed eBPF object: mostly format-aware, sometimes blind */
export function mutateObject(input: Uint8Array, r: Rng): Mutant {
  const ops: string[] = [];
  let b = input.slice();
  const L = layout(input);
  const n = 1 + r.int(3);
  for (let k = 0; k < n; k++) {
    if (r.chance(0.8)) {
      for (let tries = 0; tries < 4 && !objectField(b, L, r, ops); tries++);
    } else {
      b = blind(b, r, ops) as Uint8Array<ArrayBuffer>;
    }
  }
  return { bytes: b, ops };
}

/** size-preserving changes only (for an object embedded in a module's data segment) */
export function mutateObjectInPlace(input: Uint8Array, r: Rng, ops: string[]): Uint8Array {
  const b = input.slice();
  const L = layout(input);
  const n = 1 + r.int(2);
  for (let k = 0; k < n; k++) for (let tries = 0; tries < 4 && !objectField(b, L, r, ops); tries++);
  return b;
}

// ---- Wasm modules ---------------------------------------------------------------------------------

interface WasmSection {
  id: number;
  /** offset of the id byte */
  at: number;
  /** offset and length of the size LEB */
  sizeAt: number;
  sizeLen: number;
  start: number;
  end: number;
}

function readLeb(b: Uint8Array, at: number): [number, number] {
  let v = 0;
  let shift = 0;
  let p = at;
  for (;;) {
    if (p >= b.length || shift > 35) return [v >>> 0, p - at];
    const x = b[p++]!;
    v += (x & 0x7f) * 2 ** shift;
    shift += 7;
    if ((x & 0x80) === 0) return [v, p - at];
  }
}

function wasmSections(b: Uint8Array): WasmSection[] {
  const out: WasmSection[] = [];
  let p = 8;
  while (p < b.length) {
    const id = b[p]!;
    const [size, len] = readLeb(b, p + 1);
    const start = p + 1 + len;
    if (start + size > b.length) break;
    out.push({ id, at: p, sizeAt: p + 1, sizeLen: len, start, end: start + size });
    p = start + size;
  }
  return out;
}

/** a padded LEB128 of `len` bytes holding v (the writer's fixed-width form keeps the layout) */
function writeLebFixed(b: Uint8Array, at: number, len: number, v: number): void {
  for (let k = 0; k < len; k++) {
    const last = k === len - 1;
    b[at + k] = (Math.floor(v / 2 ** (7 * k)) & 0x7f) | (last ? 0 : 0x80);
  }
}

const VALTYPES = [0x7f, 0x7e, 0x7d, 0x7c, 0x7b, 0x70, 0x6f, 0x40, 0x60];

/** one format-aware change to a module; returns the new bytes or undefined if it did not apply */
function moduleField(input: Uint8Array, r: Rng, ops: string[]): Uint8Array | undefined {
  const secs = wasmSections(input);
  if (!secs.length) return undefined;
  const b = input.slice();
  switch (r.int(8)) {
    case 0: {
      // a section's size LEB: bigger, smaller, or overlong
      const s = r.pick(secs);
      const [size] = readLeb(b, s.sizeAt);
      const v = r.pick([0, size - 1, size + 1, size + r.int(64), Math.floor(size / 2), 0x7fffffff]);
      if (v < 0 || v >= 2 ** (7 * s.sizeLen)) return undefined;
      writeLebFixed(b, s.sizeAt, s.sizeLen, v);
      ops.push(`section ${s.id} size ${size}->${v}`);
      return b;
    }
    case 1: {
      const s = r.pick(secs);
      b[s.at] = r.pick([0, 1, 2, 3, 5, 6, 7, 10, 11, 12, 13, r.int(256)]);
      ops.push(`section at ${hex(s.at)} id ${s.id}->${b[s.at]}`);
      return b;
    }
    case 2: {
      // drop or duplicate a whole section
      const s = r.pick(secs);
      if (r.chance(0.5)) {
        ops.push(`drop section ${s.id}`);
        return concat(input.subarray(0, s.at), input.subarray(s.end));
      }
      ops.push(`duplicate section ${s.id}`);
      return concat(input.subarray(0, s.end), input.subarray(s.at, s.end), input.subarray(s.end));
    }
    case 3: {
      // a value type byte in the type, import, global or code sections (i32 <-> i64 <-> f32 ...)
      const s = secs.find((x) => x.id === r.pick([1, 1, 2, 6, 10]));
      if (!s) return undefined;
      const cands: number[] = [];
      for (let p = s.start; p < s.end; p++) if (VALTYPES.includes(b[p]!)) cands.push(p);
      if (!cands.length) return undefined;
      const at = r.pick(cands);
      const was = b[at]!;
      b[at] = r.pick(VALTYPES);
      ops.push(`valtype ${hex(at)} ${hex(was)}->${hex(b[at]!)}`);
      return b;
    }
    case 4: {
      // an import: its kind byte or its type index (imports of the wrong kind or signature)
      const s = secs.find((x) => x.id === 2);
      if (!s) return undefined;
      const imports = importEntries(b, s);
      if (!imports.length) return undefined;
      const im = r.pick(imports);
      if (r.chance(0.5)) {
        b[im.kindAt] = r.int(5);
        ops.push(`import ${im.name} kind->${b[im.kindAt]}`);
      } else {
        const [, len] = readLeb(b, im.kindAt + 1);
        writeLebFixed(b, im.kindAt + 1, len, r.int(Math.min(2 ** (7 * len), 40)));
        ops.push(`import ${im.name} type index`);
      }
      return b;
    }
    case 5: {
      // any LEB128 inside the code or data sections: a local count, an index, a memory offset
      const s = secs.find((x) => x.id === r.pick([10, 10, 11, 5, 6]));
      if (!s || s.end - s.start < 2) return undefined;
      const at = s.start + r.int(s.end - s.start);
      const [v, len] = readLeb(b, at);
      const nv = r.pick([0, v + 1, Math.max(0, v - 1), v * 2, 2 ** (7 * len) - 1, r.int(2 ** Math.min(31, 7 * len))]);
      if (nv >= 2 ** (7 * len)) return undefined;
      writeLebFixed(b, at, len, nv);
      ops.push(`leb ${hex(at)} ${v}->${nv}`);
      return b;
    }
    case 6: {
      // the memory limits (initial/maximum pages)
      const s = secs.find((x) => x.id === 5);
      if (!s) return undefined;
      const at = s.start + 2;
      const [v, len] = readLeb(b, at);
      const nv = r.pick([0, 1, v * 4, 65536, 2 ** (7 * len) - 1]);
      if (nv >= 2 ** (7 * len)) return undefined;
      writeLebFixed(b, at, len, nv);
      ops.push(`memory min ${v}->${nv}`);
      return b;
    }
    default: {
      // the eBPF object embedded in a data segment, mutated in place (the guest loads it through the ABI)
      const s = secs.find((x) => x.id === 11);
      if (!s) return undefined;
      const objs = findElfObjects(b.subarray(s.start, s.end));
      if (!objs.length) return undefined;
      const o = r.pick(objs);
      const at = s.start + o.offset;
      try {
        b.set(mutateObjectInPlace(b.subarray(at, at + o.size), r, ops), at);
      } catch {
        return undefined;
      }
      ops.push(`(embedded object at ${hex(at)})`);
      return b;
    }
  }
}

function importEntries(b: Uint8Array, s: WasmSection): { name: string; kindAt: number }[] {
  const out: { name: string; kindAt: number }[] = [];
  let [n, len] = readLeb(b, s.start);
  let p = s.start + len;
  const name = (): string => {
    const [l, ll] = readLeb(b, p);
    const t = Buffer.from(b.subarray(p + ll, p + ll + l)).toString('latin1');
    p += ll + l;
    return t;
  };
  for (; n > 0 && p < s.end; n--) {
    const full = `${name()}.${name()}`;
    const kindAt = p;
    const kind = b[p++];
    out.push({ name: full, kindAt });
    if (kind === 0) p += readLeb(b, p)[1];
    else if (kind === 1) {
      p++;
      const flags = b[p++]!;
      p += readLeb(b, p)[1];
      if (flags & 1) p += readLeb(b, p)[1];
    } else if (kind === 2) {
      const flags = b[p++]!;
      p += readLeb(b, p)[1];
      if (flags & 1) p += readLeb(b, p)[1];
    } else if (kind === 3) p += 2;
    else break;
  }
  return out;
}

/** 1-2 changes to a well-formed module: mostly format-aware, sometimes blind */
export function mutateModule(input: Uint8Array, r: Rng): Mutant {
  const ops: string[] = [];
  let b = input;
  const n = 1 + r.int(2);
  for (let k = 0; k < n; k++) {
    let next: Uint8Array | undefined;
    if (r.chance(0.85)) for (let tries = 0; tries < 6 && !next; tries++) next = moduleField(b, r, ops);
    b = next ?? blind(b, r, ops);
  }
  return { bytes: b, ops };
}
