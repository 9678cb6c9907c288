// A minimal WebAssembly binary writer: what the eBPF compiler (backends/userspace/vm/jit.ts) and the
// record dispatcher (src/abi/dispatch.ts) emit.

export const T = { i32: 0x7f, i64: 0x7e, void: 0x40 } as const;

export const OP = {
  unreachable: 0x00, block: 0x02, loop: 0x03, if: 0x04, else: 0x05, end: 0x0b, br: 0x0c, br_if: 0x0d,
  br_table: 0x0e, return: 0x0f, call: 0x10, call_indirect: 0x11, drop: 0x1a, select: 0x1b,
  local_get: 0x20, local_set: 0x21, local_tee: 0x22, global_get: 0x23, global_set: 0x24,
  i32_load: 0x28, i64_load: 0x29, i64_load8_s: 0x30, i64_load8_u: 0x31, i64_load16_s: 0x32, i64_load16_u: 0x33,
  i64_load32_s: 0x34, i64_load32_u: 0x35, i32_store: 0x36, i64_store: 0x37, i64_store8: 0x3c, i64_store16: 0x3d,
  i64_store32: 0x3e,
  i32_const: 0x41, i64_const: 0x42,
  i32_eqz: 0x45, i32_eq: 0x46, i32_ne: 0x47, i32_lt_s: 0x48, i32_lt_u: 0x49, i32_gt_s: 0x4a, i32_gt_u: 0x4b,
  i32_le_s: 0x4c, i32_le_u: 0x4d, i32_ge_s: 0x4e, i32_ge_u: 0x4f,
  i64_eqz: 0x50, i64_eq: 0x51, i64_ne: 0x52, i64_lt_s: 0x53, i64_lt_u: 0x54, i64_gt_s: 0x55, i64_gt_u: 0x56,
  i64_le_s: 0x57, i64_le_u: 0x58, i64_ge_s: 0x59, i64_ge_u: 0x5a,
  i32_add: 0x6a, i32_sub: 0x6b, i32_mul: 0x6c, i32_div_s: 0x6d, i32_div_u: 0x6e, i32_rem_s: 0x6f, i32_rem_u: 0x70,
  i32_and: 0x71, i32_or: 0x72, i32_xor: 0x73, i32_shl: 0x74, i32_shr_s: 0x75, i32_shr_u: 0x76, i32_rotl: 0x77,
  i32_rotr: 0x78,
  i64_add: 0x7c, i64_sub: 0x7d, i64_mul: 0x7e, i64_div_s: 0x7f, i64_div_u: 0x80, i64_rem_s: 0x81, i64_rem_u: 0x82,
  i64_and: 0x83, i64_or: 0x84, i64_xor: 0x85, i64_shl: 0x86, i64_shr_s: 0x87, i64_shr_u: 0x88, i64_rotl: 0x89,
  i64_rotr: 0x8a,
  i32_wrap_i64: 0xa7, i64_extend_i32_s: 0xac, i64_extend_i32_u: 0xad,
  i32_extend8_s: 0xc0, i32_extend16_s: 0xc1, i64_extend8_s: 0xc2, i64_extend16_s: 0xc3, i64_extend32_s: 0xc4,
} as const;

/** growable byte buffer with LEB128 helpers */
export class Bytes {
  buf: Uint8Array<ArrayBuffer> = new Uint8Array(1024);
  len = 0;
  private ensure(n: number): void {
    if (this.len + n <= this.buf.length) return;
    let cap = this.buf.length * 2;
    while (cap < this.len + n) cap *= 2;
    const b = new Uint8Array(cap);
    b.set(this.buf.subarray(0, this.len));
    this.buf = b;
  }
  byte(b: number): this {
    this.ensure(1);
    this.buf[this.len++] = b;
    return this;
  }
  bytes(b: Uint8Array): this {
    this.ensure(b.length);
    this.buf.set(b, this.len);
    this.len += b.length;
    return this;
  }
  u32(v: number): this {
    this.ensure(5);
    let x = v >>> 0;
    do {
      let b = x & 0x7f;
      x >>>= 7;
      if (x !== 0) b |= 0x80;
      this.buf[this.len++] = b;
    } while (x !== 0);
    return this;
  }
  s32(v: number): this {
    this.ensure(5);
    let x = v | 0;
    for (;;) {
      const b = x & 0x7f;
      x >>= 7;
      if ((x === 0 && (b & 0x40) === 0) || (x === -1 && (b & 0x40) !== 0)) {
        this.buf[this.len++] = b;
        return this;
      }
      this.buf[this.len++] = b | 0x80;
    }
  }
  s64(v: bigint): this {
    this.ensure(10);
    let x = BigInt.asIntN(64, v);
    if (x >= -(1n << 31n) && x < 1n << 31n) return this.s32(Number(x));
    for (;;) {
      const b = Number(x & 0x7fn);
      x >>= 7n;
      if ((x === 0n && (b & 0x40) === 0) || (x === -1n && (b & 0x40) !== 0)) {
        this.buf[this.len++] = b;
        return this;
      }
      this.buf[this.len++] = b | 0x80;
    }
  }
  str(s: string): this {
    const e = new TextEncoder().encode(s);
    this.u32(e.length);
    return this.bytes(e);
  }
  out(): Uint8Array<ArrayBuffer> {
    return this.buf.subarray(0, this.len);
  }
}

export interface FuncType {
  params: number[];
  results: number[];
}

export interface ModuleSpec {
  types: FuncType[];
  /** function imports: module, name, type index */
  funcImports: { module: string; name: string; type: number }[];
  memoryImport?: { module: string; name: string };
  /** an imported funcref table (table 0) */
  tableImport?: { module: string; name: string };
  /** defined funcref tables (after the imported one, if any) */
  tables?: { min: number }[];
  /** defined globals: type, mutable, initial (i64 as bigint, i32 as number) */
  globals: { type: number; init: bigint | number }[];
  /** defined functions: type index, locals (count, type) and body (without the final end) */
  funcs: { type: number; locals: [number, number][]; body: Uint8Array; hints?: [number, number][] }[];
  exports: { name: string; kind: 'func' | 'table' | 'global'; index: number }[];
}

const FUNCREF = 0x70;

function section(out: Bytes, id: number, content: Bytes): void {
  out.byte(id).u32(content.len).bytes(content.out());
}

export function buildModule(m: ModuleSpec): Uint8Array<ArrayBuffer> {
  const out = new Bytes();
  out.bytes(new Uint8Array([0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00]));
  const types = new Bytes().u32(m.types.length);
  for (const t of m.types) {
    types.byte(0x60).u32(t.params.length);
    for (const p of t.params) types.byte(p);
    types.u32(t.results.length);
    for (const r of t.results) types.byte(r);
  }
  section(out, 1, types);
  const imports = new Bytes().u32(m.funcImports.length + (m.memoryImport ? 1 : 0) + (m.tableImport ? 1 : 0));
  for (const i of m.funcImports) imports.str(i.module).str(i.name).byte(0).u32(i.type);
  if (m.memoryImport) imports.str(m.memoryImport.module).str(m.memoryImport.name).byte(2).byte(0).u32(0);
  if (m.tableImport) imports.str(m.tableImport.module).str(m.tableImport.name).byte(1).byte(FUNCREF).byte(0).u32(0);
  section(out, 2, imports);
  const funcs = new Bytes().u32(m.funcs.length);
  for (const f of m.funcs) funcs.u32(f.type);
  section(out, 3, funcs);
  if (m.tables?.length) {
    const tables = new Bytes().u32(m.tables.length);
    for (const t of m.tables) tables.byte(FUNCREF).byte(0).u32(t.min);
    section(out, 4, tables);
  }
  const globals = new Bytes().u32(m.globals.length);
  for (const g of m.globals) {
    globals.byte(g.type).byte(1);
    if (g.type === T.i64) globals.byte(OP.i64_const).s64(BigInt(g.init));
    else globals.byte(OP.i32_const).s32(Number(g.init));
    globals.byte(OP.end);
  }
  section(out, 6, globals);
  const exps = new Bytes().u32(m.exports.length);
  for (const e of m.exports) exps.str(e.name).byte(e.kind === 'func' ? 0 : e.kind === 'table' ? 1 : 3).u32(e.index);
  section(out, 7, exps);
  const bodies = m.funcs.map((f) => {
    const body = new Bytes().u32(f.locals.length);
    for (const [n, t] of f.locals) body.u32(n).byte(t);
    const localsLen = body.len;
    body.bytes(f.body).byte(OP.end);
    return { body, localsLen };
  });
  // branch hints (custom section "metadata.code.branch_hint", before the code section): offsets from
  // the start of the function body (its locals declarations included)
  const hinted = m.funcs.map((f, k) => ({ k, hints: f.hints ?? [] })).filter((x) => x.hints.length > 0);
  if (hinted.length > 0) {
    const hs = new Bytes().str('metadata.code.branch_hint').u32(hinted.length);
    const firstDefined = m.funcImports.length;
    for (const { k, hints } of hinted) {
      hs.u32(firstDefined + k).u32(hints.length);
      for (const [off, v] of hints) hs.u32(off + bodies[k]!.localsLen).u32(1).byte(v);
    }
    out.byte(0).u32(hs.len).bytes(hs.out());
  }
  const code = new Bytes().u32(m.funcs.length);
  for (const { body } of bodies) code.u32(body.len).bytes(body.out());
  section(out, 10, code);
  return out.out().slice();
}
