// CO-RE (Compile Once - Run Everywhere) relocation resolution, after libbpf's relo_core.c.
//
// A CO-RE relocation names a local (object BTF) root type, an access string ("0:1:2": array index into
// the root pointer, then member / element indexes) and a kind. Resolution finds target types with the
// same kind and "essential name" (the name without a ___flavor suffix), matches the access path in
// each (members by name, descending into anonymous members), computes the value for the local and the
// target spec, and patches the instruction: ALU imm, LDX/ST/STX offset (and memory size when the field
// changed size), or the lddw imm64. No candidate: *_EXISTS / TYPE_* relocations become 0, others
// "poison" the instruction (a call of helper 0xbad2310) that fails only if reached.
//
// applyCoreRelocations(obj, target) patches every program of a BpfObject from src/object/loader.ts.

import { type Btf, type BtfComposite, type BtfType, BtfError } from './btf.js';
import { CORE_POISON_HELPER, insn, OP_CALL, OP_LDDW, type BpfObject, type CoreRelo } from './loader.js';

export const CORE_KIND = {
  FIELD_BYTE_OFFSET: 0,
  FIELD_BYTE_SIZE: 1,
  FIELD_EXISTS: 2,
  FIELD_SIGNED: 3,
  FIELD_LSHIFT_U64: 4,
  FIELD_RSHIFT_U64: 5,
  TYPE_ID_LOCAL: 6,
  TYPE_ID_TARGET: 7,
  TYPE_EXISTS: 8,
  TYPE_SIZE: 9,
  ENUMVAL_EXISTS: 10,
  ENUMVAL_VALUE: 11,
  TYPE_MATCHES: 12,
} as const;

const CORE_KIND_NAMES = [
  'byte_off', 'byte_sz', 'field_exists', 'signed', 'lshift_u64', 'rshift_u64', 'local_type_id', 'target_type_id',
  'type_exists', 'type_size', 'enumval_exists', 'enumval_value', 'type_matches',
] as const;

/** A CO-RE relocation that cannot be applied (malformed record, ambiguity, unexpected instruction). */
export class CoreError extends Error {
  readonly code = 'CORE_RELOCATION' as const;
  constructor(message: string) {
    super(message);
    this.name = 'CoreError';
  }
}

const SPEC_MAX_LEN = 64;

const isFieldBased = (k: number): boolean => k <= CORE_KIND.FIELD_RSHIFT_U64;
const isTypeBased = (k: number): boolean =>
  k === CORE_KIND.TYPE_ID_LOCAL || k === CORE_KIND.TYPE_ID_TARGET || k === CORE_KIND.TYPE_EXISTS || k === CORE_KIND.TYPE_SIZE || k === CORE_KIND.TYPE_MATCHES;
const isEnumvalBased = (k: number): boolean => k === CORE_KIND.ENUMVAL_EXISTS || k === CORE_KIND.ENUMVAL_VALUE;

/** libbpf's bpf_core_essential_name_len: "task_struct___v2" -> "task_struct" */
export function essentialName(name: string): string {
  for (let i = name.length - 5; i >= 0; i--) {
    if (name[i] !== '_' && name[i + 1] === '_' && name[i + 2] === '_' && name[i + 3] === '_' && name[i + 4] !== '_') return name.slice(0, i + 1);
  }
  return name;
}

interface Accessor {
  typeId: number;
  idx: number;
  /** member or enumerator name; undefined for array accesses */
  name: string | undefined;
}

interface Spec {
  btf: Btf;
  rootTypeId: number;
  kind: number;
  raw: number[];
  acc: Accessor[];
  bitOffset: number;
}

/** skip typedefs and modifiers; returns [id, type] */
function skip(btf: Btf, id: number): [number, BtfType] {
  const r = btf.resolve(id);
  return [r, btf.type(r)];
}

const isComposite = (t: BtfType): t is BtfComposite => t.kind === 'STRUCT' || t.kind === 'UNION';
const isAnyEnum = (t: BtfType): boolean => t.kind === 'ENUM' || t.kind === 'ENUM64';
/** libbpf's btf_kind_core_compat: same kind, or enum vs enum64 */
const kindCompat = (a: BtfType, b: BtfType): boolean => a.kind === b.kind || (isAnyEnum(a) && isAnyEnum(b));

function resolveSize(btf: Btf, id: number): number {
  try {
    return btf.sizeof(id);
  } catch (e) {
    if (e instanceof BtfError) return -1;
    throw e;
  }
}

/** is this the last member of its struct, declared as an array of 0 elements (flexible array)? */
function isFlexArr(btf: Btf, prev: Accessor | undefined, nelems: number): boolean {
  if (!prev || prev.name === undefined || nelems > 0) return false;
  const t = btf.type(prev.typeId);
  return isComposite(t) && prev.idx === t.members.length - 1;
}

/** libbpf's bpf_core_parse_spec */
function parseSpec(btf: Btf, relo: CoreRelo): Spec {
  const bad = (why: string): never => {
    throw new CoreError(`bad CO-RE access string '${relo.access}' for type [${relo.typeId}] ${safeName(btf, relo.typeId)}: ${why}`);
  };
  const spec: Spec = { btf, rootTypeId: relo.typeId, kind: relo.kind, raw: [], acc: [], bitOffset: 0 };
  if (relo.access === '' || relo.access[0] === ':') bad('empty');
  if (isTypeBased(relo.kind)) {
    if (relo.access !== '0') bad('type-based relocations use "0"');
    return spec;
  }
  for (const part of relo.access.split(':')) {
    if (!/^\d+$/.test(part)) bad(`'${part}' is not an index`);
    if (spec.raw.length === SPEC_MAX_LEN) bad('too long');
    spec.raw.push(Number(part));
  }
  let [id, t] = skip(btf, relo.typeId);
  let idx = spec.raw[0]!;
  spec.acc.push({ typeId: id, idx, name: undefined });
  if (isEnumvalBased(relo.kind)) {
    if ((t.kind !== 'ENUM' && t.kind !== 'ENUM64') || spec.raw.length > 1 || idx >= t.values.length) bad('not an enumerator of an enum');
    spec.acc[0]!.name = (t as Extract<BtfType, { kind: 'ENUM' | 'ENUM64' }>).values[idx]!.name;
    return spec;
  }
  if (!isFieldBased(relo.kind)) throw new CoreError(`unknown CO-RE relocation kind ${relo.kind}`);
  const sz = resolveSize(btf, id);
  if (sz < 0) bad(`root type [${id}] has no size`);
  spec.bitOffset = idx * sz * 8;
  for (let i = 1; i < spec.raw.length; i++) {
    [id, t] = skip(btf, id);
    idx = spec.raw[i]!;
    if (isComposite(t)) {
      if (idx >= t.members.length) bad(`member ${idx} of a ${t.members.length}-member ${t.kind.toLowerCase()}`);
      const m = t.members[idx]!;
      spec.bitOffset += m.bitOffset;
      if (m.name !== '') spec.acc.push({ typeId: id, idx, name: m.name });
      id = m.type;
    } else if (t.kind === 'ARRAY') {
      const flex = isFlexArr(btf, spec.acc[spec.acc.length - 1], t.nelems);
      [id] = skip(btf, t.type);
      if (!flex && idx >= t.nelems) bad(`index ${idx} of a ${t.nelems}-element array`);
      spec.acc.push({ typeId: id, idx, name: undefined });
      const esz = resolveSize(btf, id);
      if (esz < 0) bad(`array element [${id}] has no size`);
      spec.bitOffset += idx * esz * 8;
    } else {
      bad(`step ${i} reaches a ${t.kind}`);
    }
  }
  return spec;
}

function safeName(btf: Btf, id: number): string {
  try {
    return btf.typeString(id);
  } catch {
    return '?';
  }
}

/** libbpf's bpf_core_fields_are_compat */
function fieldsCompat(lb: Btf, lid: number, tb: Btf, tid: number): boolean {
  for (let depth = 0; depth < 32; depth++) {
    const [, lt] = skip(lb, lid);
    const [, tt] = skip(tb, tid);
    if (isComposite(lt) && isComposite(tt)) return true;
    if (!kindCompat(lt, tt)) return false;
    switch (lt.kind) {
      case 'PTR':
      case 'FLOAT':
        return true;
      case 'FWD':
      case 'ENUM':
      case 'ENUM64': {
        const ln = essentialName(lt.name);
        const tn = essentialName(tt.name);
        return ln === '' || tn === '' || ln === tn;
      }
      case 'INT':
        return lt.bitOffset === 0 && (tt as typeof lt).bitOffset === 0;
      case 'ARRAY':
        lid = lt.type;
        tid = (tt as typeof lt).type;
        continue;
      default:
        return false;
    }
  }
  throw new CoreError('type nesting too deep comparing fields');
}

/** libbpf's __bpf_core_types_are_compat */
function typesAreCompat(lb: Btf, lid: number, tb: Btf, tid: number, level = 32): boolean {
  if (!kindCompat(lb.type(lid), tb.type(tid))) return false;
  for (let depth = 32; depth > 0; depth--) {
    const [, lt] = skip(lb, lid);
    const [, tt] = skip(tb, tid);
    if (!kindCompat(lt, tt)) return false;
    switch (lt.kind) {
      case 'VOID':
      case 'STRUCT':
      case 'UNION':
      case 'ENUM':
      case 'ENUM64':
      case 'FWD':
        return true;
      case 'INT':
        return lt.bitOffset === 0 && (tt as typeof lt).bitOffset === 0;
      case 'PTR':
        lid = lt.type;
        tid = (tt as typeof lt).type;
        continue;
      case 'ARRAY':
        lid = lt.type;
        tid = (tt as typeof lt).type;
        continue;
      case 'FUNC_PROTO': {
        const tp = tt as typeof lt;
        if (lt.params.length !== tp.params.length) return false;
        for (let i = 0; i < lt.params.length; i++) {
          if (level <= 0) throw new CoreError('type nesting too deep');
          const [a] = skip(lb, lt.params[i]!.type);
          const [b] = skip(tb, tp.params[i]!.type);
          if (!typesAreCompat(lb, a, tb, b, level - 1)) return false;
        }
        lid = skip(lb, lt.type)[0];
        tid = skip(tb, tp.type)[0];
        continue;
      }
      default:
        return false;
    }
  }
  throw new CoreError('type nesting too deep');
}

function namesMatch(a: string, b: string): boolean {
  if (a === '' || b === '') return true;
  return essentialName(a) === essentialName(b);
}

/** libbpf's __bpf_core_types_match (bpf_core_type_matches) */
function typesMatch(lb: Btf, lid: number, tb: Btf, tid: number, behindPtr = false, level = 32): boolean {
  if (level <= 0) throw new CoreError('type nesting too deep');
  for (let depth = 32; depth > 0; depth--) {
    const [, lt] = skip(lb, lid);
    const [, tt] = skip(tb, tid);
    if (!namesMatch(lt.name, tt.name)) return false;
    switch (lt.kind) {
      case 'VOID':
        return tt.kind === 'VOID';
      case 'FWD':
        if (behindPtr) {
          if (tt.kind === 'FWD') return lt.union === tt.union;
          return (tt.kind === 'STRUCT' && !lt.union) || (tt.kind === 'UNION' && lt.union);
        }
        return tt.kind === 'FWD' && lt.union === tt.union;
      case 'ENUM':
      case 'ENUM64': {
        if (tt.kind !== 'ENUM' && tt.kind !== 'ENUM64') return false;
        if (lt.size !== tt.size || lt.values.length > tt.values.length) return false;
        return lt.values.every((lv) => tt.values.some((tv) => tv.name !== '' && tv.name === lv.name));
      }
      case 'STRUCT':
      case 'UNION':
        if (behindPtr) {
          if (lt.kind === tt.kind) return true;
          if (tt.kind !== 'FWD') return false;
          return (lt.kind === 'UNION') === tt.union;
        }
        if (lt.kind !== tt.kind) return false;
        {
          const tc = tt as BtfComposite;
          if (lt.members.length > tc.members.length) return false;
          for (const lm of lt.members) {
            let matched = false;
            for (const tm of tc.members) {
              if (!namesMatch(lm.name, tm.name)) continue;
              if (typesMatch(lb, lm.type, tb, tm.type, behindPtr, level - 1)) {
                matched = true;
                break;
              }
            }
            if (!matched) return false;
          }
          return true;
        }
      case 'INT':
        return tt.kind === 'INT' && lt.size === tt.size && lt.signed === tt.signed;
      case 'PTR':
        if (tt.kind !== 'PTR') return false;
        behindPtr = true;
        lid = lt.type;
        tid = tt.type;
        continue;
      case 'ARRAY':
        if (tt.kind !== 'ARRAY' || lt.nelems !== tt.nelems) return false;
        lid = lt.type;
        tid = tt.type;
        continue;
      case 'FUNC_PROTO': {
        if (tt.kind !== 'FUNC_PROTO' || lt.params.length !== tt.params.length) return false;
        for (let i = 0; i < lt.params.length; i++) {
          if (!typesMatch(lb, lt.params[i]!.type, tb, tt.params[i]!.type, behindPtr, level - 1)) return false;
        }
        lid = lt.type;
        tid = tt.type;
        continue;
      }
      default:
        return false;
    }
  }
  throw new CoreError('type nesting too deep');
}

/** libbpf's bpf_core_match_member; mutates `spec` (raw, acc, bitOffset); returns the member type id */
function matchMember(lb: Btf, lacc: Accessor, tb: Btf, tid: number, spec: Spec): number | undefined {
  const [id, tt] = skip(tb, tid);
  if (!isComposite(tt)) return undefined;
  const lt = lb.type(lacc.typeId) as BtfComposite;
  const lm = lt.members[lacc.idx]!;
  for (const [i, m] of tt.members.entries()) {
    if (spec.raw.length === SPEC_MAX_LEN) throw new CoreError('access path too deep');
    spec.bitOffset += m.bitOffset;
    spec.raw.push(i);
    if (m.name === '') {
      const found = matchMember(lb, lacc, tb, m.type, spec);
      if (found !== undefined) return found;
    } else if (m.name === lm.name) {
      if (!fieldsCompat(lb, lm.type, tb, m.type)) {
        spec.bitOffset -= m.bitOffset;
        spec.raw.pop();
        return undefined;
      }
      spec.acc.push({ typeId: id, idx: i, name: m.name });
      return m.type;
    }
    spec.bitOffset -= m.bitOffset;
    spec.raw.pop();
  }
  return undefined;
}

/** libbpf's bpf_core_spec_match: the target spec for candidate `tid`, or undefined when it does not match */
function specMatch(local: Spec, tb: Btf, tid: number): Spec | undefined {
  const ts: Spec = { btf: tb, rootTypeId: tid, kind: local.kind, raw: [], acc: [], bitOffset: 0 };
  if (isTypeBased(local.kind)) {
    const ok =
      local.kind === CORE_KIND.TYPE_MATCHES
        ? typesMatch(local.btf, local.rootTypeId, tb, tid)
        : typesAreCompat(local.btf, local.rootTypeId, tb, tid);
    return ok ? ts : undefined;
  }
  if (isEnumvalBased(local.kind)) {
    const [id, tt] = skip(tb, tid);
    if (tt.kind !== 'ENUM' && tt.kind !== 'ENUM64') return undefined;
    const want = essentialName(local.acc[0]!.name!);
    const i = tt.values.findIndex((v) => essentialName(v.name) === want);
    if (i < 0) return undefined;
    ts.acc.push({ typeId: id, idx: i, name: tt.values[i]!.name });
    ts.raw.push(i);
    return ts;
  }
  let targId = tid;
  for (const [i, la] of local.acc.entries()) {
    const [id, tt] = skip(tb, targId);
    targId = id;
    if (la.name !== undefined) {
      const next = matchMember(local.btf, la, tb, targId, ts);
      if (next === undefined) return undefined;
      targId = next;
    } else {
      if (i > 0) {
        if (tt.kind !== 'ARRAY') return undefined;
        const flex = isFlexArr(tb, ts.acc[ts.acc.length - 1], tt.nelems);
        if (!flex && la.idx >= tt.nelems) return undefined;
        targId = skip(tb, tt.type)[0];
      }
      if (ts.raw.length === SPEC_MAX_LEN) throw new CoreError('access path too deep');
      ts.acc.push({ typeId: targId, idx: la.idx, name: undefined });
      ts.raw.push(la.idx);
      const sz = resolveSize(tb, targId);
      if (sz < 0) return undefined;
      ts.bitOffset += la.idx * sz * 8;
    }
  }
  return ts;
}

interface FieldValue {
  val: bigint;
  /** byte size of the field for load/store size adjustment (0: not applicable) */
  size: number;
  typeId: number;
  validate: boolean;
}

const POISON = Symbol('poison');

/** libbpf's bpf_core_calc_field_relo */
function calcField(relo: CoreRelo, spec: Spec | undefined): FieldValue | typeof POISON {
  if (relo.kind === CORE_KIND.FIELD_EXISTS) return { val: spec ? 1n : 0n, size: 0, typeId: 0, validate: true };
  if (!spec) return POISON;
  const where = `CO-RE ${CORE_KIND_NAMES[relo.kind]} at insn offset ${relo.insnOff}`;
  const acc = spec.acc[spec.acc.length - 1]!;
  if (acc.name === undefined) {
    const sz = resolveSize(spec.btf, acc.typeId);
    if (sz < 0) throw new CoreError(`${where}: element type [${acc.typeId}] has no size`);
    if (relo.kind === CORE_KIND.FIELD_BYTE_OFFSET) return { val: BigInt(spec.bitOffset / 8), size: sz, typeId: acc.typeId, validate: true };
    if (relo.kind === CORE_KIND.FIELD_BYTE_SIZE) return { val: BigInt(sz), size: 0, typeId: 0, validate: true };
    throw new CoreError(`${where}: cannot be applied to an array access`);
  }
  const t = spec.btf.type(acc.typeId) as BtfComposite;
  const m = t.members[acc.idx]!;
  const [fieldTypeId, mt] = skip(spec.btf, m.type);
  const bitOff = spec.bitOffset;
  let bitSz = m.bitfieldSize;
  const bitfield = bitSz > 0;
  let byteSz: number;
  let byteOff: number;
  if (bitfield) {
    if (!('size' in mt) || typeof mt.size !== 'number') throw new CoreError(`${where}: bitfield of a ${mt.kind}`);
    byteSz = mt.size;
    byteOff = Math.floor(bitOff / 8 / byteSz) * byteSz;
    while (bitOff + bitSz - byteOff * 8 > byteSz * 8) {
      if (byteSz >= 8) throw new CoreError(`${where}: the bitfield cannot be read with a 64-bit load`);
      byteSz *= 2;
      byteOff = Math.floor(bitOff / 8 / byteSz) * byteSz;
    }
  } else {
    byteSz = resolveSize(spec.btf, fieldTypeId);
    if (byteSz < 0) throw new CoreError(`${where}: field type [${fieldTypeId}] has no size`);
    byteOff = Math.floor(spec.bitOffset / 8);
    bitSz = byteSz * 8;
  }
  const validate = !bitfield;
  switch (relo.kind) {
    case CORE_KIND.FIELD_BYTE_OFFSET:
      return { val: BigInt(byteOff), size: bitfield ? 0 : byteSz, typeId: bitfield ? 0 : fieldTypeId, validate };
    case CORE_KIND.FIELD_BYTE_SIZE:
      return { val: BigInt(byteSz), size: 0, typeId: 0, validate };
    case CORE_KIND.FIELD_SIGNED: {
      const signed = ((mt.kind === 'ENUM' || mt.kind === 'ENUM64') && mt.signed) || (mt.kind === 'INT' && mt.signed);
      return { val: signed ? 1n : 0n, size: 0, typeId: 0, validate: true };
    }
    case CORE_KIND.FIELD_LSHIFT_U64:
      return { val: BigInt(64 - (bitOff + bitSz - byteOff * 8)), size: 0, typeId: 0, validate };
    case CORE_KIND.FIELD_RSHIFT_U64:
      return { val: BigInt(64 - bitSz), size: 0, typeId: 0, validate: true };
    default:
      throw new CoreError(`${where}: unknown field relocation`);
  }
}

/** The outcome of resolving one relocation (libbpf's bpf_core_relo_res). */
export interface CoreResult {
  poison: boolean;
  origVal: bigint;
  newVal: bigint;
  /** check that the instruction holds origVal before patching */
  validate: boolean;
  origSize: number;
  newSize: number;
  /** the field changed size in a way a load/store cannot follow (signed ints, structs): poison LDX/ST/STX */
  failMemszAdjust: boolean;
  /** target type id of the matched root type (0: none) */
  targetTypeId: number;
  /** target access path, e.g. "0:65:2" (empty when nothing matched) */
  targetAccess: string;
  /** number of target candidates that matched */
  candidates: number;
}

function calcRelo(relo: CoreRelo, local: Spec, targ: Spec | undefined): CoreResult {
  const res: CoreResult = {
    poison: false, origVal: 0n, newVal: 0n, validate: true, origSize: 0, newSize: 0, failMemszAdjust: false,
    targetTypeId: targ?.rootTypeId ?? 0, targetAccess: targ ? targ.raw.join(':') : '', candidates: 0,
  };
  if (isFieldBased(relo.kind)) {
    const o = calcField(relo, local);
    const n = calcField(relo, targ);
    if (o === POISON) throw new CoreError('local spec unexpectedly missing');
    if (n === POISON) {
      res.poison = true;
      return res;
    }
    res.origVal = o.val;
    res.newVal = n.val;
    res.validate = o.validate;
    res.origSize = o.size;
    res.newSize = n.size;
    if (o.size !== n.size && targ) {
      const ot = local.btf.type(o.typeId);
      const nt = targ.btf.type(n.typeId);
      const ok = (ot.kind === 'PTR' && nt.kind === 'PTR') || (ot.kind === 'INT' && nt.kind === 'INT' && !ot.signed && !nt.signed);
      if (!ok) res.failMemszAdjust = true;
    }
    return res;
  }
  if (isTypeBased(relo.kind)) {
    const typeVal = (s: Spec | undefined): bigint => {
      if (!s) return 0n;
      switch (relo.kind) {
        case CORE_KIND.TYPE_ID_TARGET:
          return BigInt(s.rootTypeId);
        case CORE_KIND.TYPE_EXISTS:
        case CORE_KIND.TYPE_MATCHES:
          return 1n;
        case CORE_KIND.TYPE_SIZE: {
          const sz = resolveSize(s.btf, s.rootTypeId);
          if (sz < 0) throw new CoreError(`type [${s.rootTypeId}] has no size`);
          return BigInt(sz);
        }
        default:
          throw new CoreError(`unknown type relocation kind ${relo.kind}`);
      }
    };
    res.origVal = typeVal(local);
    res.newVal = typeVal(targ);
    res.validate = relo.kind !== CORE_KIND.TYPE_ID_TARGET;
    return res;
  }
  // enumval
  const enumVal = (s: Spec | undefined): bigint | typeof POISON => {
    if (relo.kind === CORE_KIND.ENUMVAL_EXISTS) return s ? 1n : 0n;
    if (!s) return POISON;
    const t = s.btf.type(s.acc[0]!.typeId);
    if (t.kind === 'ENUM') return BigInt.asUintN(64, BigInt(t.values[s.acc[0]!.idx]!.value | 0)); // libbpf: (u64)(s32)val
    if (t.kind === 'ENUM64') return BigInt.asUintN(64, t.values[s.acc[0]!.idx]!.value);
    throw new CoreError('enumerator of a non-enum');
  };
  const o = enumVal(local);
  const n = enumVal(targ);
  if (o === POISON) throw new CoreError('local spec unexpectedly missing');
  if (n === POISON) res.poison = true;
  else {
    res.origVal = o;
    res.newVal = n;
  }
  return res;
}

/** Target candidates by essential name, per target BTF (built once: one pass over every type name). */
const candIndex = new WeakMap<Btf, Map<string, number[]>>();
function candidatesByName(tb: Btf, name: string): number[] {
  let ix = candIndex.get(tb);
  if (!ix) {
    ix = new Map();
    for (let id = 1; id < tb.length; id++) {
      const n = tb.nameOf(id);
      if (n === '') continue;
      const e = n.includes('___') ? essentialName(n) : n;
      const list = ix.get(e);
      if (list) list.push(id);
      else ix.set(e, [id]);
    }
    candIndex.set(tb, ix);
  }
  return ix.get(name) ?? [];
}

/**
 * Resolves one relocation of `local` BTF against `target` BTF (libbpf's bpf_core_calc_relo_insn).
 * Throws CoreError for malformed records and ambiguous matches.
 */
export function resolveCoreRelo(local: Btf, relo: CoreRelo, target: Btf): CoreResult {
  if (relo.typeId <= 0 || relo.typeId >= local.length) throw new CoreError(`CO-RE relocation names type [${relo.typeId}], which is not in the object's BTF`);
  if (relo.kind > CORE_KIND.TYPE_MATCHES) throw new CoreError(`unknown CO-RE relocation kind ${relo.kind}`);
  const localType = local.type(relo.typeId);
  const lspec = parseSpec(local, relo);
  if (relo.kind === CORE_KIND.TYPE_ID_LOCAL) {
    return {
      poison: false, origVal: BigInt(relo.typeId), newVal: BigInt(relo.typeId), validate: false, origSize: 0, newSize: 0,
      failMemszAdjust: false, targetTypeId: 0, targetAccess: '', candidates: 0,
    };
  }
  if (localType.name === '') throw new CoreError(`CO-RE ${CORE_KIND_NAMES[relo.kind]} relocation of an anonymous type [${relo.typeId}] is not supported`);
  const ess = essentialName(localType.name);
  let chosen: CoreResult | undefined;
  let chosenSpec: Spec | undefined;
  let n = 0;
  // Against the object's own BTF the root type is its own (only) candidate: flavors of one type
  // (task_struct and task_struct___old) would otherwise be ambiguous there.
  const cands = target === local ? [relo.typeId] : candidatesByName(target, ess);
  for (const cid of cands) {
    if (!kindCompat(target.type(cid), localType)) continue;
    const cspec = specMatch(lspec, target, cid);
    if (!cspec) continue;
    const r = calcRelo(relo, lspec, cspec);
    if (!chosen) {
      chosen = r;
      chosenSpec = cspec;
    } else if (cspec.bitOffset !== chosenSpec!.bitOffset) {
      throw new CoreError(`CO-RE relocation of ${local.typeString(relo.typeId)} (${relo.access}): field offset ambiguity between candidates [${chosenSpec!.rootTypeId}] and [${cid}]`);
    } else if (r.poison !== chosen.poison || r.newVal !== chosen.newVal) {
      throw new CoreError(`CO-RE relocation of ${local.typeString(relo.typeId)} (${relo.access}): decision ambiguity between candidates [${chosenSpec!.rootTypeId}] (${chosen.newVal}) and [${cid}] (${r.newVal})`);
    }
    n++;
  }
  const res = chosen ?? calcRelo(relo, lspec, undefined);
  res.candidates = n;
  return res;
}

const BPF_CLASS = (op: number): number => op & 7;
const CLS = { LD: 0, LDX: 1, ST: 2, STX: 3, ALU: 4, JMP: 5, JMP32: 6, ALU64: 7 } as const;
const SIZE_BYTES: Record<number, number> = { 0x00: 4, 0x08: 2, 0x10: 1, 0x18: 8 };
const BYTES_SIZE: Record<number, number> = { 4: 0x00, 2: 0x08, 1: 0x10, 8: 0x18 };

function poisonInsn(code: Uint8Array, i: number): void {
  insn.setCode(code, i, OP_CALL);
  insn.setDst(code, i, 0);
  insn.setSrc(code, i, 0);
  insn.setOff(code, i, 0);
  insn.setImm(code, i, CORE_POISON_HELPER);
}

/**
 * Patches instruction `i` of `code` with a resolved relocation (libbpf's bpf_core_patch_insn).
 * Returns 'poisoned' when the instruction was replaced by a poison call.
 */
function patchCoreInsn(code: Uint8Array, i: number, relo: CoreRelo, res: CoreResult): 'patched' | 'poisoned' {
  return patchInsnImpl(code, i, relo, res);
}

/** the value the instruction holds where a relocation patches it (imm, off or imm64) */
function relocatedValue(code: Uint8Array, i: number): bigint {
  const op = insn.code(code, i);
  const cls = BPF_CLASS(op);
  if (cls === CLS.LDX || cls === CLS.ST || cls === CLS.STX) return BigInt(insn.off(code, i));
  if (op === OP_LDDW && (i + 1) * 8 < code.length) return (BigInt(insn.imm(code, i + 1) >>> 0) << 32n) | BigInt(insn.imm(code, i) >>> 0);
  return BigInt.asUintN(64, BigInt(insn.imm(code, i)));
}

function patchInsnImpl(code: Uint8Array, i: number, relo: CoreRelo, res: CoreResult): 'patched' | 'poisoned' {
  const op = insn.code(code, i);
  const cls = BPF_CLASS(op);
  const where = `CO-RE ${CORE_KIND_NAMES[relo.kind]} relocation at insn ${i}`;
  const poison = (): 'poisoned' => {
    if (op === OP_LDDW && (i + 1) * 8 < code.length) poisonInsn(code, i + 1);
    poisonInsn(code, i);
    return 'poisoned';
  };
  if (res.poison) return poison();
  const newVal = res.newVal;
  switch (cls) {
    case CLS.ALU:
    case CLS.ALU64: {
      if ((op & 0x08) !== 0) throw new CoreError(`${where}: ALU instruction with a register source`);
      const imm = insn.imm(code, i);
      if (res.validate && BigInt.asUintN(64, BigInt(imm)) !== res.origVal) {
        throw new CoreError(`${where}: instruction holds ${imm}, expected ${res.origVal}`);
      }
      insn.setImm(code, i, Number(BigInt.asIntN(32, newVal)));
      return 'patched';
    }
    case CLS.LDX:
    case CLS.ST:
    case CLS.STX: {
      const off = insn.off(code, i);
      if (res.validate && BigInt(off) !== res.origVal) throw new CoreError(`${where}: instruction offset is ${off}, expected ${res.origVal}`);
      if (newVal > 32767n) throw new CoreError(`${where}: offset ${newVal} is too large for an instruction`);
      if (res.failMemszAdjust) return poison();
      insn.setOff(code, i, Number(newVal));
      if (res.newSize !== res.origSize) {
        const cur = SIZE_BYTES[op & 0x18]!;
        if (cur !== res.origSize) throw new CoreError(`${where}: memory size ${cur}, expected ${res.origSize}`);
        const sz = BYTES_SIZE[res.newSize];
        if (sz === undefined) throw new CoreError(`${where}: new memory size ${res.newSize} is not 1, 2, 4 or 8`);
        insn.setCode(code, i, (op & ~0x18) | sz);
      }
      return 'patched';
    }
    case CLS.LD: {
      if (op !== OP_LDDW || (i + 1) * 8 >= code.length || insn.src(code, i) !== 0 || insn.off(code, i) !== 0 || insn.code(code, i + 1) !== 0 || code[(i + 1) * 8 + 1] !== 0 || insn.off(code, i + 1) !== 0) {
        throw new CoreError(`${where}: lddw of unexpected form`);
      }
      const imm = (BigInt(insn.imm(code, i + 1) >>> 0) << 32n) | BigInt(insn.imm(code, i) >>> 0);
      if (res.validate && imm !== res.origVal) throw new CoreError(`${where}: lddw holds ${imm}, expected ${res.origVal}`);
      insn.setImm(code, i, Number(BigInt.asIntN(32, newVal)));
      insn.setImm(code, i + 1, Number(BigInt.asIntN(32, newVal >> 32n)));
      return 'patched';
    }
    default:
      throw new CoreError(`${where}: cannot relocate opcode 0x${op.toString(16)}`);
  }
}

export interface CoreApplied {
  program: string;
  insn: number;
  relo: CoreRelo;
  result: CoreResult;
  outcome: 'patched' | 'poisoned';
  /** what the instruction held before (imm, off or imm64; for messages and comparisons with libbpf) */
  before: bigint;
}

/**
 * Resolves and patches every CO-RE relocation of every program of `obj` against `target` (the host's
 * vmlinux BTF, or any BTF; pass obj.btf to keep the object's own layout: each relocation then
 * resolves to its own local type, so nothing moves and nothing is poisoned). Patches BpfProgram.insns in
 * place; returns what was done. Throws CoreError naming the program and relocation.
 */
export function applyCoreRelocations(obj: BpfObject, target: Btf): CoreApplied[] {
  const out: CoreApplied[] = [];
  if (obj.coreRelocs.length === 0) return out;
  const local = obj.btf;
  if (!local) throw new CoreError('the object has CO-RE relocations but no .BTF');
  const cache = new Map<CoreRelo, CoreResult>();
  for (const p of obj.programs) {
    for (const pr of p.coreRelocs) {
      let res = cache.get(pr.relo);
      try {
        if (!res) {
          res = resolveCoreRelo(local, pr.relo, target);
          cache.set(pr.relo, res);
        }
        const before = relocatedValue(p.insns, pr.insn);
        const outcome = patchCoreInsn(p.insns, pr.insn, pr.relo, res);
        out.push({ program: p.name, insn: pr.insn, relo: pr.relo, result: res, outcome, before });
      } catch (e) {
        if (e instanceof CoreError || e instanceof BtfError) {
          throw new CoreError(`program '${p.name}': CO-RE relocation at insn ${pr.insn} (${pr.section}+${pr.relo.insnOff}, ${CORE_KIND_NAMES[pr.relo.kind] ?? pr.relo.kind} of ${safeName(local, pr.relo.typeId)} "${pr.relo.access}"): ${e.message}`);
        }
        throw e;
      }
    }
  }
  return out;
}
