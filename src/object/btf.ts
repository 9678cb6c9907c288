// BTF (BPF Type Format) reader: parses a .BTF section (or /sys/kernel/btf/vmlinux) into an array
// of types indexed by type id, with names resolved, plus the lookups CO-RE work needs: resolve()
// through typedefs/modifiers, sizeof(), and a lazily built name -> ids index.
//
// Malformed input throws BtfError (code 'BTF_MALFORMED'), never a RangeError or TypeError.

export type BtfErrorCode = 'BTF_MALFORMED' | 'BTF_NO_SIZE' | 'BTF_NOT_FOUND';

export class BtfError extends Error {
  constructor(
    message: string,
    readonly code: BtfErrorCode = 'BTF_MALFORMED',
  ) {
    super(message);
    this.name = 'BtfError';
  }
}

export const BTF_MAGIC = 0xeb9f;

/** Kind names, indexed by the kind number of the BTF encoding (0 is the void type). */
const BTF_KINDS = [
  'VOID', 'INT', 'PTR', 'ARRAY', 'STRUCT', 'UNION', 'ENUM', 'FWD', 'TYPEDEF', 'VOLATILE', 'CONST',
  'RESTRICT', 'FUNC', 'FUNC_PROTO', 'VAR', 'DATASEC', 'FLOAT', 'DECL_TAG', 'TYPE_TAG', 'ENUM64',
] as const;
export type BtfKind = (typeof BTF_KINDS)[number];

/** Linkage of VAR (and of FUNC, where 0/1/2 mean static/global/extern too). */
export const BTF_LINKAGE = { STATIC: 0, GLOBAL: 1, EXTERN: 2 } as const;

interface BtfTypeBase {
  id: number;
  /** '' for anonymous types. */
  name: string;
}
export interface BtfVoid extends BtfTypeBase {
  kind: 'VOID';
}
export interface BtfInt extends BtfTypeBase {
  kind: 'INT';
  size: number;
  signed: boolean;
  char: boolean;
  bool: boolean;
  /** Bit offset and width inside the storage (bitfield ints; normally 0 and size * 8). */
  bitOffset: number;
  bits: number;
}
/** Kinds that only refer to another type. */
export interface BtfRef extends BtfTypeBase {
  kind: 'PTR' | 'TYPEDEF' | 'VOLATILE' | 'CONST' | 'RESTRICT' | 'TYPE_TAG';
  type: number;
}
export interface BtfArray extends BtfTypeBase {
  kind: 'ARRAY';
  type: number;
  indexType: number;
  nelems: number;
}
export interface BtfMember {
  name: string;
  type: number;
  /** Offset from the start of the struct in bits. */
  bitOffset: number;
  /** Bitfield width, 0 for regular members. */
  bitfieldSize: number;
}
export interface BtfComposite extends BtfTypeBase {
  kind: 'STRUCT' | 'UNION';
  size: number;
  members: BtfMember[];
}
export interface BtfEnum extends BtfTypeBase {
  kind: 'ENUM';
  size: number;
  signed: boolean;
  values: { name: string; value: number }[];
}
export interface BtfEnum64 extends BtfTypeBase {
  kind: 'ENUM64';
  size: number;
  signed: boolean;
  values: { name: string; value: bigint }[];
}
export interface BtfFwd extends BtfTypeBase {
  kind: 'FWD';
  union: boolean;
}
export interface BtfFunc extends BtfTypeBase {
  kind: 'FUNC';
  /** The FUNC_PROTO. */
  type: number;
  linkage: number;
}
export interface BtfFuncProto extends BtfTypeBase {
  kind: 'FUNC_PROTO';
  /** Return type (0 = void). */
  type: number;
  /** A last parameter with name '' and type 0 means varargs. */
  params: { name: string; type: number }[];
}
export interface BtfVar extends BtfTypeBase {
  kind: 'VAR';
  type: number;
  linkage: number;
}
export interface BtfVarSecinfo {
  /** The VAR (or FUNC for .ksyms). */
  type: number;
  offset: number;
  size: number;
}
export interface BtfDatasec extends BtfTypeBase {
  kind: 'DATASEC';
  size: number;
  vars: BtfVarSecinfo[];
}
export interface BtfFloat extends BtfTypeBase {
  kind: 'FLOAT';
  size: number;
}
export interface BtfDeclTag extends BtfTypeBase {
  kind: 'DECL_TAG';
  type: number;
  /** -1: tags the type itself; otherwise member / parameter index. */
  componentIdx: number;
}

export type BtfType =
  | BtfVoid
  | BtfInt
  | BtfRef
  | BtfArray
  | BtfComposite
  | BtfEnum
  | BtfEnum64
  | BtfFwd
  | BtfFunc
  | BtfFuncProto
  | BtfVar
  | BtfDatasec
  | BtfFloat
  | BtfDeclTag;

const HDR_MIN = 24;
const MAX_RESOLVE_DEPTH = 32;
const VOID: BtfVoid = Object.freeze({ id: 0, name: '', kind: 'VOID' as const });

export interface BtfOptions {
  /** Base BTF for split BTF (kernel module BTF on top of vmlinux). */
  base?: Btf;
  /** Pointer size for sizeof() (8 for BPF). */
  pointerSize?: number;
}

/** Parses BTF bytes (a .BTF section or /sys/kernel/btf/*). */
export function parseBtf(bytes: Uint8Array, opts: BtfOptions = {}): Btf {
  return new Btf(bytes, opts);
}

interface NameIndex {
  mask: number;
  off: Uint32Array;
  head: Int32Array;
  next: Int32Array;
}

/** FNV-1a over bytes[pos .. pos+len) or, with len -1, up to the next NUL. */
function fnv1a(bytes: Uint8Array, pos: number, len: number): number {
  let h = 0x811c9dc5;
  const end = len < 0 ? bytes.indexOf(0, pos) : pos + len;
  for (let q = pos; q < end; q++) h = Math.imul(h ^ bytes[q]!, 0x01000193);
  return h >>> 0;
}

/** Whether the NUL-terminated string at bytes[pos] equals q. */
function bytesEqualZ(bytes: Uint8Array, pos: number, q: Uint8Array): boolean {
  if (pos + q.length >= bytes.length || bytes[pos + q.length] !== 0) return false;
  for (let k = 0; k < q.length; k++) if (bytes[pos + k] !== q[k]) return false;
  return true;
}

function checkedSize(size: number, id: number): number {
  if (!Number.isSafeInteger(size)) throw new BtfError(`size of type ${id} overflows`);
  return size;
}

/** Kinds whose btf_type.size_or_type field is a type id. */
const REF_KINDS = new Set([2, 8, 9, 10, 11, 12, 13, 14, 17, 18]);

/**
 * Parsed BTF. Construction makes one pass over the type section into flat typed arrays and
 * validates every bound and type reference; type objects are materialized on first access by
 * id and cached, so opening vmlinux BTF is fast and lookups by id are O(1).
 */
export class Btf {
  readonly littleEndian: boolean;
  readonly base: Btf | undefined;
  /** First type id defined by this BTF (1, or base.length for split BTF). */
  readonly startId: number;
  /** Number of type ids (including void and any base types): ids are 0 .. length - 1. */
  readonly length: number;
  readonly pointerSize: number;
  /** Size of this BTF's own string section (split BTF string offsets continue after the base's). */
  readonly stringsSize: number;
  private readonly dv: DataView;
  private readonly strBytes: Uint8Array;
  private readonly strText: string;
  private readonly strAscii: boolean;
  // Per own type (index id - startId): raw info word, name offset, size_or_type, data offset.
  private readonly infos: Uint32Array;
  private readonly nameOffs: Uint32Array;
  private readonly sizeOrTypes: Uint32Array;
  private readonly dataOffs: Uint32Array;
  private readonly cache: (BtfType | undefined)[];
  private all: BtfType[] | undefined;
  private nameIndex: NameIndex | undefined;

  constructor(bytes: Uint8Array, opts: BtfOptions = {}) {
    this.base = opts.base;
    this.pointerSize = opts.pointerSize ?? 8;
    if (bytes.length < HDR_MIN) throw new BtfError(`BTF too short for a header (${bytes.length} bytes)`);
    const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    this.dv = dv;
    const magicLe = dv.getUint16(0, true);
    let le: boolean;
    if (magicLe === BTF_MAGIC) le = true;
    else if (dv.getUint16(0, false) === BTF_MAGIC) le = false;
    else throw new BtfError(`bad BTF magic 0x${magicLe.toString(16)}`);
    this.littleEndian = le;
    if (bytes[2] !== 1) throw new BtfError(`unsupported BTF version ${bytes[2]}`);
    const hdrLen = dv.getUint32(4, le);
    const typeOff = dv.getUint32(8, le);
    const typeLen = dv.getUint32(12, le);
    const strOff = dv.getUint32(16, le);
    const strLen = dv.getUint32(20, le);
    if (hdrLen < HDR_MIN || hdrLen > bytes.length) throw new BtfError(`bad BTF header length ${hdrLen}`);
    const dataLen = bytes.length - hdrLen;
    if (typeOff % 4 !== 0) throw new BtfError(`type section offset ${typeOff} is not 4-byte aligned`);
    if (typeOff + typeLen > dataLen) {
      throw new BtfError(`type section (offset ${typeOff}, size ${typeLen}) extends past end of data (${dataLen} bytes)`);
    }
    if (strOff + strLen > dataLen) {
      throw new BtfError(`string section (offset ${strOff}, size ${strLen}) extends past end of data (${dataLen} bytes)`);
    }
    if (typeLen % 4 !== 0) throw new BtfError(`type section size ${typeLen} is not a multiple of 4`);
    const strStart = hdrLen + strOff;
    this.strBytes = bytes.subarray(strStart, strStart + strLen);
    if (!this.base && (strLen === 0 || this.strBytes[0] !== 0)) throw new BtfError('string section does not start with an empty string');
    if (strLen > 0 && this.strBytes[strLen - 1] !== 0) throw new BtfError('string section is not NUL-terminated');
    this.stringsSize = strLen;
    // One latin1 decode of the whole string section; names are then cheap slices of it.
    this.strText = Buffer.from(this.strBytes.buffer, this.strBytes.byteOffset, strLen).toString('latin1');
    this.strAscii = !/[^\x00-\x7f]/.test(this.strText);
    this.startId = this.base ? this.base.length : 1;

    // Pass 1: walk the type section, record where each type is and check it fits.
    const start = hdrLen + typeOff;
    const end = start + typeLen;
    const maxTypes = Math.floor(typeLen / 12);
    let infos = new Uint32Array(maxTypes);
    let nameOffs = new Uint32Array(maxTypes);
    let sizeOrTypes = new Uint32Array(maxTypes);
    let dataOffs = new Uint32Array(maxTypes);
    let n = 0;
    let p = start;
    while (p < end) {
      const id = this.startId + n;
      if (p + 12 > end) throw new BtfError(`type ${id} (header) extends past end of type section`);
      const info = dv.getUint32(p + 4, le);
      const kind = (info >>> 24) & 0x1f;
      const vlen = info & 0xffff;
      nameOffs[n] = dv.getUint32(p, le);
      infos[n] = info;
      sizeOrTypes[n] = dv.getUint32(p + 8, le);
      p += 12;
      dataOffs[n] = p;
      let extra: number;
      switch (kind) {
        case 1: case 14: case 17: extra = 4; break; // INT, VAR, DECL_TAG
        case 2: case 7: case 8: case 9: case 10: case 11: case 12: case 16: case 18: extra = 0; break;
        case 3: extra = 12; break; // ARRAY
        case 4: case 5: case 15: case 19: extra = 12 * vlen; break; // STRUCT, UNION, DATASEC, ENUM64
        case 6: case 13: extra = 8 * vlen; break; // ENUM, FUNC_PROTO
        default: throw new BtfError(`type ${id}: unknown BTF kind ${kind}`);
      }
      if (p + extra > end) throw new BtfError(`type ${id} (${BTF_KINDS[kind]}) extends past end of type section`);
      p += extra;
      n++;
    }
    if (n < maxTypes) {
      infos = infos.slice(0, n);
      nameOffs = nameOffs.slice(0, n);
      sizeOrTypes = sizeOrTypes.slice(0, n);
      dataOffs = dataOffs.slice(0, n);
    }
    this.infos = infos;
    this.nameOffs = nameOffs;
    this.sizeOrTypes = sizeOrTypes;
    this.dataOffs = dataOffs;
    this.length = this.startId + n;
    this.cache = new Array<BtfType | undefined>(n);
    this.validate();
  }

  /** Pass 2: every name offset and every type id referenced must exist; INT sizes are sane. */
  private validate(): void {
    const { dv, littleEndian: le, length } = this;
    const strEnd = (this.base ? this.base.stringsSize : 0) + this.stringsSize;
    const fail = (i: number, what: string): never => {
      const id = this.startId + i;
      throw new BtfError(`type ${id} (${BTF_KINDS[(this.infos[i]! >>> 24) & 0x1f]}): ${what}`);
    };
    const checkName = (i: number, off: number): void => {
      if (off >= strEnd) fail(i, `name offset ${off} is outside the string section (${strEnd} bytes)`);
    };
    const checkType = (i: number, ref: number, what: string): void => {
      if (ref >= length) fail(i, `${what} refers to missing type ${ref} (${length} types)`);
    };
    for (let i = 0; i < this.infos.length; i++) {
      const info = this.infos[i]!;
      const kind = (info >>> 24) & 0x1f;
      const vlen = info & 0xffff;
      const sot = this.sizeOrTypes[i]!;
      let d = this.dataOffs[i]!;
      checkName(i, this.nameOffs[i]!);
      if (REF_KINDS.has(kind)) checkType(i, sot, 'type');
      switch (kind) {
        case 1:
          if (sot !== 1 && sot !== 2 && sot !== 4 && sot !== 8 && sot !== 16) fail(i, `bad INT size ${sot}`);
          break;
        case 3:
          checkType(i, dv.getUint32(d, le), 'element type');
          checkType(i, dv.getUint32(d + 4, le), 'index type');
          break;
        case 4: case 5:
          for (let k = 0; k < vlen; k++, d += 12) {
            checkName(i, dv.getUint32(d, le));
            checkType(i, dv.getUint32(d + 4, le), `member ${k}`);
          }
          break;
        case 6: case 19: {
          const step = kind === 6 ? 8 : 12;
          for (let k = 0; k < vlen; k++, d += step) checkName(i, dv.getUint32(d, le));
          break;
        }
        case 13:
          for (let k = 0; k < vlen; k++, d += 8) {
            checkName(i, dv.getUint32(d, le));
            checkType(i, dv.getUint32(d + 4, le), `parameter ${k}`);
          }
          break;
        case 15:
          for (let k = 0; k < vlen; k++, d += 12) checkType(i, dv.getUint32(d, le), `variable ${k}`);
          break;
        default:
          break;
      }
    }
  }

  /** The string at `off` of the string section (base strings first for split BTF). */
  str(off: number): string {
    if (this.base) {
      if (off < this.base.stringsSize) return this.base.str(off);
      off -= this.base.stringsSize;
    }
    if (off >= this.stringsSize) throw new BtfError(`string offset ${off} is outside the string section (${this.stringsSize} bytes)`);
    const end = this.strText.indexOf('\0', off);
    if (this.strAscii) return this.strText.slice(off, end);
    return new TextDecoder().decode(this.strBytes.subarray(off, end));
  }

  /** The kind of a type without materializing it. */
  kindOf(id: number): BtfKind {
    if (id === 0) return 'VOID';
    if (id < this.startId && this.base) return this.base.kindOf(id);
    const info = this.infos[id - this.startId];
    if (info === undefined) throw new BtfError(`no BTF type with id ${id}`, 'BTF_NOT_FOUND');
    return BTF_KINDS[(info >>> 24) & 0x1f]!;
  }

  /** The name of a type without materializing it ('' if anonymous). */
  nameOf(id: number): string {
    if (id === 0) return '';
    if (id < this.startId && this.base) return this.base.nameOf(id);
    const off = this.nameOffs[id - this.startId];
    if (off === undefined) throw new BtfError(`no BTF type with id ${id}`, 'BTF_NOT_FOUND');
    return this.str(off);
  }

  /** Where the data after this own type's 12-byte header starts, as a byte offset in the bytes parsed
   *  (an ARRAY's element type, index type and nelems words): for passes that patch BTF in place. */
  dataOffset(id: number): number {
    const off = this.dataOffs[id - this.startId];
    if (id < this.startId || off === undefined) throw new BtfError(`no own BTF type with id ${id}`, 'BTF_NOT_FOUND');
    return off;
  }

  /** The type with this id (0 is void). O(1); objects are built on first access and cached. */
  type(id: number): BtfType {
    if (id === 0) return VOID;
    if (id < this.startId && this.base) return this.base.type(id);
    const i = id - this.startId;
    if (!(i >= 0 && i < this.infos.length)) throw new BtfError(`no BTF type with id ${id}`, 'BTF_NOT_FOUND');
    return this.cache[i] ?? (this.cache[i] = this.materialize(id, i));
  }

  /** All types indexed by id (types[0] is void); materializes every type on first use. */
  get types(): readonly BtfType[] {
    if (!this.all) {
      const all: BtfType[] = this.base ? this.base.types.slice() : [VOID];
      for (let id = this.startId; id < this.length; id++) all.push(this.type(id));
      this.all = all;
    }
    return this.all;
  }

  private materialize(id: number, i: number): BtfType {
    const { dv, littleEndian: le } = this;
    const info = this.infos[i]!;
    const kindNo = (info >>> 24) & 0x1f;
    const vlen = info & 0xffff;
    const kflag = info >>> 31 === 1;
    const sot = this.sizeOrTypes[i]!;
    const name = this.str(this.nameOffs[i]!);
    let p = this.dataOffs[i]!;
    switch (kindNo) {
      case 1: {
        const enc = dv.getUint32(p, le);
        const e = enc >>> 24;
        return { id, name, kind: 'INT', size: sot, signed: (e & 1) !== 0, char: (e & 2) !== 0, bool: (e & 4) !== 0, bitOffset: (enc >>> 16) & 0xff, bits: enc & 0xff };
      }
      case 2: case 8: case 9: case 10: case 11: case 18:
        return { id, name, kind: BTF_KINDS[kindNo] as BtfRef['kind'], type: sot };
      case 3:
        return { id, name, kind: 'ARRAY', type: dv.getUint32(p, le), indexType: dv.getUint32(p + 4, le), nelems: dv.getUint32(p + 8, le) };
      case 4: case 5: {
        const members: BtfMember[] = new Array(vlen);
        for (let k = 0; k < vlen; k++, p += 12) {
          const off = dv.getUint32(p + 8, le);
          members[k] = {
            name: this.str(dv.getUint32(p, le)),
            type: dv.getUint32(p + 4, le),
            bitOffset: kflag ? off & 0xffffff : off,
            bitfieldSize: kflag ? off >>> 24 : 0,
          };
        }
        return { id, name, kind: kindNo === 4 ? 'STRUCT' : 'UNION', size: sot, members };
      }
      case 6: {
        const values: { name: string; value: number }[] = new Array(vlen);
        for (let k = 0; k < vlen; k++, p += 8) {
          values[k] = { name: this.str(dv.getUint32(p, le)), value: kflag ? dv.getInt32(p + 4, le) : dv.getUint32(p + 4, le) };
        }
        // Old encoders leave kflag 0 for signed enums: negative values then read as >= 2^31.
        return { id, name, kind: 'ENUM', size: sot, signed: kflag, values };
      }
      case 19: {
        const values: { name: string; value: bigint }[] = new Array(vlen);
        for (let k = 0; k < vlen; k++, p += 12) {
          const u = (BigInt(dv.getUint32(p + 8, le)) << 32n) | BigInt(dv.getUint32(p + 4, le));
          values[k] = { name: this.str(dv.getUint32(p, le)), value: kflag ? BigInt.asIntN(64, u) : u };
        }
        return { id, name, kind: 'ENUM64', size: sot, signed: kflag, values };
      }
      case 7:
        return { id, name, kind: 'FWD', union: kflag };
      case 12:
        return { id, name, kind: 'FUNC', type: sot, linkage: vlen };
      case 13: {
        const params: { name: string; type: number }[] = new Array(vlen);
        for (let k = 0; k < vlen; k++, p += 8) params[k] = { name: this.str(dv.getUint32(p, le)), type: dv.getUint32(p + 4, le) };
        return { id, name, kind: 'FUNC_PROTO', type: sot, params };
      }
      case 14:
        return { id, name, kind: 'VAR', type: sot, linkage: dv.getUint32(p, le) };
      case 15: {
        const vars: BtfVarSecinfo[] = new Array(vlen);
        for (let k = 0; k < vlen; k++, p += 12) vars[k] = { type: dv.getUint32(p, le), offset: dv.getUint32(p + 4, le), size: dv.getUint32(p + 8, le) };
        return { id, name, kind: 'DATASEC', size: sot, vars };
      }
      case 16:
        return { id, name, kind: 'FLOAT', size: sot };
      case 17:
        return { id, name, kind: 'DECL_TAG', type: sot, componentIdx: dv.getInt32(p, le) };
      default:
        // Unreachable: the constructor rejects unknown kinds.
        throw new BtfError(`type ${id}: unknown BTF kind ${kindNo}`);
    }
  }

  /** Skips TYPEDEF, CONST, VOLATILE, RESTRICT and TYPE_TAG; returns the id of the type below. */
  resolve(id: number): number {
    const from = id;
    for (let depth = 0; depth <= MAX_RESOLVE_DEPTH; depth++) {
      const t = this.type(id);
      switch (t.kind) {
        case 'TYPEDEF': case 'CONST': case 'VOLATILE': case 'RESTRICT': case 'TYPE_TAG':
          id = t.type;
          break;
        default:
          return id;
      }
    }
    throw new BtfError(`type chain from ${from} is too deep (a loop?)`);
  }

  /** resolve() returning the type itself. */
  resolveType(id: number): BtfType {
    return this.type(this.resolve(id));
  }

  /** Size in bytes of a type (pointers: pointerSize). Throws BtfError 'BTF_NO_SIZE' for void, FWD, FUNC... */
  sizeof(id: number): number {
    const from = id;
    let mult = 1;
    for (let depth = 0; depth <= MAX_RESOLVE_DEPTH; depth++) {
      const t = this.type(this.resolve(id));
      switch (t.kind) {
        case 'INT': case 'STRUCT': case 'UNION': case 'ENUM': case 'ENUM64': case 'FLOAT': case 'DATASEC':
          return checkedSize(mult * t.size, from);
        case 'PTR':
          return checkedSize(mult * this.pointerSize, from);
        case 'ARRAY':
          mult *= t.nelems;
          id = t.type;
          break;
        case 'VAR':
          id = t.type;
          break;
        default:
          throw new BtfError(`type ${t.id} (${t.kind}) has no size`, 'BTF_NO_SIZE');
      }
    }
    throw new BtfError(`type chain from ${from} is too deep (a loop?)`);
  }

  /** Ids of the types with this name (optionally of one kind), in id order. Index built on first call. */
  findByName(name: string, kind?: BtfKind): number[] {
    const ids = this.base ? this.base.findByName(name) : [];
    if (name !== '') {
      const ix = (this.nameIndex ??= this.buildNameIndex());
      const q = new TextEncoder().encode(name);
      const found: number[] = [];
      for (let s = fnv1a(q, 0, q.length) & ix.mask; ix.head[s] !== -1; s = (s + 1) & ix.mask) {
        const [bytes, pos] = this.strLoc(ix.off[s]!);
        if (!bytesEqualZ(bytes, pos, q)) continue;
        for (let i = ix.head[s]!; i !== -1; i = ix.next[i]!) found.push(this.startId + i);
      }
      // Several slots only match if the string section holds duplicate strings.
      if (found.length > 0) ids.push(...found.sort((a, b) => a - b));
    }
    return kind === undefined ? ids : ids.filter((i) => this.kindOf(i) === kind);
  }

  /** Bytes and position of the NUL-terminated string at `off` (base strings first). */
  private strLoc(off: number): [Uint8Array, number] {
    if (this.base) {
      if (off < this.base.stringsSize) return this.base.strLoc(off);
      off -= this.base.stringsSize;
    }
    return [this.strBytes, off];
  }

  /**
   * Open-addressing hash table over this BTF's own named types, keyed by name offset (hash of the
   * name bytes): slot -> name offset + head of a list of type indices in id order.
   */
  private buildNameIndex(): NameIndex {
    const n = this.nameOffs.length;
    let size = 16;
    while (size < n * 2) size *= 2;
    const mask = size - 1;
    const off = new Uint32Array(size);
    const head = new Int32Array(size).fill(-1);
    const next = new Int32Array(n).fill(-1);
    // Walk backwards and prepend so that every list ends up in ascending id order.
    for (let i = n - 1; i >= 0; i--) {
      const o = this.nameOffs[i]!;
      if (o === 0) continue;
      const [bytes, pos] = this.strLoc(o);
      if (bytes[pos] === 0) continue; // empty name (offset of another NUL)
      let s = fnv1a(bytes, pos, -1) & mask;
      for (;;) {
        if (head[s] === -1) {
          off[s] = o;
          head[s] = i;
          break;
        }
        if (off[s] === o) {
          next[i] = head[s]!;
          head[s] = i;
          break;
        }
        s = (s + 1) & mask;
      }
    }
    return { mask, off, head, next };
  }

  /** The first type with this name (and kind), if any. */
  find(name: string, kind?: BtfKind): BtfType | undefined {
    const [id] = this.findByName(name, kind);
    return id === undefined ? undefined : this.type(id);
  }

  /** A C-like spelling of a type for messages and comments, e.g. "const struct task_struct *". */
  typeString(id: number, depth = 0): string {
    const t = this.type(id);
    if (depth > MAX_RESOLVE_DEPTH) return '...';
    switch (t.kind) {
      case 'VOID': return 'void';
      case 'STRUCT': case 'UNION': return `${t.kind.toLowerCase()} ${t.name || '(anon)'}`;
      case 'ENUM': case 'ENUM64': return `enum ${t.name || '(anon)'}`;
      case 'FWD': return `${t.union ? 'union' : 'struct'} ${t.name}`;
      case 'PTR': return `${this.typeString(t.type, depth + 1)} *`;
      case 'CONST': case 'VOLATILE': case 'RESTRICT': return `${t.kind.toLowerCase()} ${this.typeString(t.type, depth + 1)}`;
      case 'TYPE_TAG': return this.typeString(t.type, depth + 1);
      case 'ARRAY': {
        // int a[2][3] is ARRAY(2) of ARRAY(3) of int: dimensions outermost first.
        let dims = `[${t.nelems}]`;
        let el = this.type(t.type);
        for (let d = depth; el.kind === 'ARRAY' && d <= MAX_RESOLVE_DEPTH; d++) {
          dims += `[${el.nelems}]`;
          el = this.type(el.type);
        }
        return `${this.typeString(el.id, depth + 1)}${dims}`;
      }
      case 'FUNC_PROTO': return `${this.typeString(t.type, depth + 1)} (*)(...)`;
      case 'DATASEC': return `SEC("${t.name}")`;
      default: return t.name || t.kind.toLowerCase();
    }
  }
}
