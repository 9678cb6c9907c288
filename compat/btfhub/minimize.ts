// Minimized BTF for CO-RE (`wasm-bpf btf minimize`), after bpftool's `gen min_core_btf` (btfgen).
//
// For every CO-RE relocation of every object, the relocation is resolved against the source BTF
// (vmlinux) with src/object/core.ts; what the resolution looked at in the target is kept:
//
// - field relocations: the target root type, and along the target access path each struct/union with
//   only the accessed members (at their real offsets; the struct keeps its original size), plus each
//   member's type (typedefs, modifiers, arrays followed; pointers kept but not followed);
// - type relocations: the root type, pointers followed (a struct/union is kept without members: its name,
//   kind and size are what bpf_core_types_are_compat and TYPE_SIZE look at); for TYPE_MATCHES the
//   struct/union keeps every member, embedded ones whole too, those behind pointers without members;
// - enum value relocations: the whole enum.
//
// Types not kept that a kept type refers to become void (id 0), as in bpftool (a pointer member not
// followed is then `void *`). The result is a raw BTF blob (magic 0xeB9F, version 1) with renumbered
// ids and its own string section; it parses with src/object/btf.ts and libbpf takes it as
// btf_custom_path (or from a BTFHub archive tree).

import { type Btf, type BtfComposite, type BtfType, BTF_MAGIC, parseBtf } from '../../src/object/btf.js';
import { CORE_KIND, resolveCoreRelo } from '../../src/object/core.js';
import type { BpfObject } from '../../src/object/loader.js';
import { BTF_KIND } from '../../src/kernel/uapi.js';

export class MinimizeError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'MinimizeError';
  }
}

const KIND_NO: Record<string, number> = BTF_KIND;

const isComposite = (t: BtfType): t is BtfComposite => t.kind === 'STRUCT' || t.kind === 'UNION';

/** What to keep of the source BTF. */
class Marks {
  /** kept types; for structs/unions the set of kept member indexes ('all' for every member) */
  readonly kept = new Map<number, Set<number> | 'all' | true>();
  /** non-composite types already marked with pointers followed */
  private readonly followed = new Set<number>();

  constructor(readonly btf: Btf) {}

  /**
   * bpftool's btfgen_mark_type: the type and what it needs; pointers are followed only when asked, and
   * then a struct/union behind a pointer is kept without members (its name, kind and size).
   */
  type(id: number, followPointers: boolean, depth = 0): void {
    if (id === 0) return;
    if (depth > 64) throw new MinimizeError(`type [${id}]: nesting too deep`);
    const t = this.btf.type(id);
    if (isComposite(t)) {
      if (!this.kept.has(id)) this.kept.set(id, new Set());
      return;
    }
    if (followPointers ? this.followed.has(id) : this.kept.has(id)) return;
    this.kept.set(id, true);
    if (followPointers) this.followed.add(id);
    switch (t.kind) {
      case 'PTR':
        if (followPointers) this.type(t.type, true, depth + 1);
        break;
      case 'TYPEDEF': case 'CONST': case 'VOLATILE': case 'RESTRICT': case 'TYPE_TAG':
        this.type(t.type, followPointers, depth + 1);
        break;
      case 'ARRAY':
        this.type(t.type, followPointers, depth + 1);
        this.type(t.indexType, followPointers, depth + 1);
        break;
      case 'FUNC_PROTO':
        this.type(t.type, followPointers, depth + 1);
        for (const p of t.params) this.type(p.type, followPointers, depth + 1);
        break;
      case 'INT': case 'ENUM': case 'ENUM64': case 'FLOAT': case 'FWD':
        break;
      default:
        throw new MinimizeError(`type [${id}] of kind ${t.kind} cannot be part of a CO-RE relocation's target`);
    }
  }

  /**
   * For TYPE_MATCHES: a struct/union with every member, members' types marked with pointers followed,
   * embedded structs/unions (and arrays of them) whole too. bpf_core_type_matches compares every local
   * member, but behind a pointer only the name and kind.
   */
  whole(id: number, depth = 0): void {
    if (depth > 64) throw new MinimizeError(`type [${id}]: nesting too deep`);
    this.type(id, true, depth);
    let r = this.btf.resolve(id);
    for (let t = this.btf.type(r); t.kind === 'ARRAY' && depth < 64; t = this.btf.type(r)) r = this.btf.resolve(t.type);
    const t = this.btf.type(r);
    if (!isComposite(t) || this.kept.get(r) === 'all') return;
    this.kept.set(r, 'all');
    for (const m of t.members) this.whole(m.type, depth + 1);
  }

  member(id: number, idx: number): void {
    const cur = this.kept.get(id);
    if (cur === 'all') return;
    if (cur instanceof Set) cur.add(idx);
    else this.kept.set(id, new Set([idx]));
  }

  /** bpftool's btfgen_record_field_relo: root type, then the members on the target access path */
  fieldPath(rootId: number, raw: number[]): void {
    this.type(rootId, false);
    let id = rootId;
    for (const idx of raw.slice(1)) {
      id = this.btf.resolve(id);
      const t = this.btf.type(id);
      if (isComposite(t)) {
        const m = t.members[idx];
        if (!m) throw new MinimizeError(`access path ${raw.join(':')} of [${rootId}]: no member ${idx} in [${id}]`);
        this.member(id, idx);
        id = m.type;
        this.type(id, false);
      } else if (t.kind === 'ARRAY') {
        id = t.type;
      } else throw new MinimizeError(`access path ${raw.join(':')} of [${rootId}] reaches a ${t.kind}`);
    }
  }
}

/** Interned string section. */
class Strings {
  private readonly map = new Map<string, number>([['', 0]]);
  private readonly parts: Buffer[] = [Buffer.from([0])];
  private size = 1;
  off(s: string): number {
    let o = this.map.get(s);
    if (o === undefined) {
      o = this.size;
      const b = Buffer.from(`${s}\0`, 'utf8');
      this.parts.push(b);
      this.size += b.length;
      this.map.set(s, o);
    }
    return o;
  }
  bytes(): Buffer {
    return Buffer.concat(this.parts);
  }
}

/** Writes the kept types as raw BTF, ids renumbered in source order. */
function emit(marks: Marks): Uint8Array {
  const { btf } = marks;
  const ids = [...marks.kept.keys()].sort((a, b) => a - b);
  const newId = new Map<number, number>();
  ids.forEach((id, i) => newId.set(id, i + 1));
  const remap = (id: number): number => newId.get(id) ?? 0;
  const strs = new Strings();
  const words: number[] = [];
  const head = (name: string, kind: number, vlen: number, kflag: boolean, sizeOrType: number): void => {
    words.push(strs.off(name), ((kflag ? 1 : 0) << 31) | (kind << 24) | vlen, sizeOrType);
  };
  for (const id of ids) {
    const t = btf.type(id);
    const kept = marks.kept.get(id)!;
    switch (t.kind) {
      case 'INT': {
        head(t.name, 1, 0, false, t.size);
        const enc = (t.signed ? 1 : 0) | (t.char ? 2 : 0) | (t.bool ? 4 : 0);
        words.push(((enc << 24) | (t.bitOffset << 16) | t.bits) >>> 0);
        break;
      }
      case 'PTR': case 'TYPEDEF': case 'VOLATILE': case 'CONST': case 'RESTRICT': case 'TYPE_TAG':
        head(t.name, KIND_NO[t.kind]!, 0, false, remap(t.type));
        break;
      case 'ARRAY':
        head('', 3, 0, false, 0);
        words.push(remap(t.type), remap(t.indexType), t.nelems);
        break;
      case 'STRUCT': case 'UNION': {
        const members = kept === 'all' || kept === true ? t.members : t.members.filter((_, i) => (kept as Set<number>).has(i));
        const kflag = members.some((m) => m.bitfieldSize > 0);
        head(t.name, KIND_NO[t.kind]!, members.length, kflag, t.size);
        for (const m of members) {
          if (kflag && m.bitOffset > 0xffffff) throw new MinimizeError(`member ${m.name} of [${id}]: bit offset too large`);
          words.push(strs.off(m.name), remap(m.type), kflag ? ((m.bitfieldSize << 24) | m.bitOffset) >>> 0 : m.bitOffset);
        }
        break;
      }
      case 'ENUM':
        head(t.name, 6, t.values.length, t.signed, t.size);
        for (const v of t.values) words.push(strs.off(v.name), v.value >>> 0);
        break;
      case 'ENUM64':
        head(t.name, 19, t.values.length, t.signed, t.size);
        for (const v of t.values) {
          const u = BigInt.asUintN(64, v.value);
          words.push(strs.off(v.name), Number(u & 0xffffffffn), Number(u >> 32n));
        }
        break;
      case 'FWD':
        head(t.name, 7, 0, t.union, 0);
        break;
      case 'FUNC_PROTO':
        head('', 13, t.params.length, false, remap(t.type));
        for (const p of t.params) words.push(strs.off(p.name), remap(p.type));
        break;
      case 'FLOAT':
        head(t.name, 16, 0, false, t.size);
        break;
      default:
        throw new MinimizeError(`cannot write a ${t.kind} type ([${id}])`);
    }
  }
  const strBytes = strs.bytes();
  const typeLen = words.length * 4;
  const out = new Uint8Array(24 + typeLen + strBytes.length);
  const dv = new DataView(out.buffer);
  dv.setUint16(0, BTF_MAGIC, true);
  out[2] = 1; // version
  out[3] = 0; // flags
  dv.setUint32(4, 24, true); // hdr_len
  dv.setUint32(8, 0, true); // type_off
  dv.setUint32(12, typeLen, true);
  dv.setUint32(16, typeLen, true); // str_off
  dv.setUint32(20, strBytes.length, true);
  words.forEach((w, i) => dv.setUint32(24 + i * 4, w >>> 0, true));
  out.set(strBytes, 24 + typeLen);
  return out;
}

export interface MinimizeStats {
  relocations: number;
  /** relocations with no match in the source BTF (nothing kept for them) */
  unmatched: number;
  types: number;
  bytes: number;
}

export interface MinimizeResult {
  bytes: Uint8Array;
  stats: MinimizeStats;
}

/** Reduced BTF holding what the CO-RE relocations of `objects` resolve to in `source`. */
export function minimizeBtf(source: Btf, objects: BpfObject[]): MinimizeResult {
  const marks = new Marks(source);
  let relocations = 0;
  let unmatched = 0;
  for (const obj of objects) {
    if (obj.coreRelocs.length === 0) continue;
    const local = obj.btf;
    if (!local) throw new MinimizeError('an object has CO-RE relocations but no .BTF');
    const seen = new Set<unknown>();
    for (const pr of obj.coreRelocs) {
      if (seen.has(pr.relo)) continue;
      seen.add(pr.relo);
      relocations++;
      if (pr.relo.kind === CORE_KIND.TYPE_ID_LOCAL) continue;
      const res = resolveCoreRelo(local, pr.relo, source);
      if (res.candidates === 0 || res.targetTypeId === 0) {
        unmatched++;
        continue;
      }
      const k = pr.relo.kind;
      if (k <= CORE_KIND.FIELD_RSHIFT_U64) {
        marks.fieldPath(res.targetTypeId, res.targetAccess.split(':').map(Number));
      } else if (k === CORE_KIND.ENUMVAL_EXISTS || k === CORE_KIND.ENUMVAL_VALUE) {
        marks.type(res.targetTypeId, false);
      } else if (k === CORE_KIND.TYPE_MATCHES) {
        marks.whole(res.targetTypeId);
      } else {
        // TYPE_EXISTS / TYPE_SIZE / TYPE_ID_TARGET: kind, name and size are what is compared
        marks.type(res.targetTypeId, true);
      }
    }
  }
  const bytes = emit(marks);
  const parsed = parseBtf(bytes); // must round-trip
  return { bytes, stats: { relocations, unmatched, types: parsed.length - 1, bytes: bytes.length } };
}
