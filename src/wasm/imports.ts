// Reads a Wasm binary's type and import sections, so the host can check every import's signature
// before instantiation (Node 20 offers no type reflection) and adapt to the guest's pointer widths.
import { ModuleError } from '../errors.js';

export type ValType = 'i32' | 'i64' | 'f32' | 'f64' | 'v128' | 'funcref' | 'externref';

export interface FuncType {
  params: ValType[];
  results: ValType[];
}

export interface WasmImport {
  module: string;
  name: string;
  kind: 'func' | 'table' | 'memory' | 'global' | 'tag';
  /** for functions */
  type?: FuncType;
}

export interface WasmExport {
  name: string;
  kind: 'func' | 'table' | 'memory' | 'global' | 'tag';
}

export interface ModuleShape {
  imports: WasmImport[];
  exports: WasmExport[];
  /** the type of every function by its index (imported functions first, then the module's own), when
   * read from the module's bytes */
  functions?: FuncType[];
}

const VALTYPES: Record<number, ValType> = {
  0x7f: 'i32',
  0x7e: 'i64',
  0x7d: 'f32',
  0x7c: 'f64',
  0x7b: 'v128',
  0x70: 'funcref',
  0x6f: 'externref',
};
const KINDS = ['func', 'table', 'memory', 'global', 'tag'] as const;

export function formatFuncType(t: FuncType): string {
  const r = t.results.length === 0 ? '()' : t.results.length === 1 ? t.results[0] : `(${t.results.join(', ')})`;
  return `(${t.params.join(', ')}) -> ${r}`;
}

class Reader {
  pos = 0;
  constructor(readonly buf: Uint8Array, readonly end = buf.length) {}
  fail(what: string): never {
    throw new ModuleError('WASM_MALFORMED', `malformed Wasm module: ${what} at byte ${this.pos}`);
  }
  byte(): number {
    if (this.pos >= this.end) this.fail('unexpected end');
    return this.buf[this.pos++]!;
  }
  u32(): number {
    let result = 0;
    let shift = 0;
    for (let i = 0; i < 5; i++) {
      const b = this.byte();
      result |= (b & 0x7f) << shift;
      if ((b & 0x80) === 0) return result >>> 0;
      shift += 7;
    }
    this.fail('LEB128 too long');
  }
  bytes(n: number): Uint8Array {
    if (n > this.end - this.pos) this.fail('length past end');
    const out = this.buf.subarray(this.pos, this.pos + n);
    this.pos += n;
    return out;
  }
  name(): string {
    return new TextDecoder('utf-8', { fatal: false }).decode(this.bytes(this.u32()));
  }
  valtype(): ValType {
    const b = this.byte();
    const t = VALTYPES[b];
    if (!t) this.fail(`unknown value type 0x${b.toString(16)}`);
    return t;
  }
  limits(): void {
    const flags = this.byte();
    this.u32();
    if (flags & 1) this.u32();
  }
}

/** Parses the type, import, function and export sections. Throws ModuleError('WASM_MALFORMED') on bad input. */
export function readModuleShape(bytes: Uint8Array): ModuleShape {
  if (bytes.length < 8 || bytes[0] !== 0 || bytes[1] !== 0x61 || bytes[2] !== 0x73 || bytes[3] !== 0x6d) {
    if (bytes.length >= 4 && bytes[0] === 0x7f && bytes[1] === 0x45 && bytes[2] === 0x4c && bytes[3] === 0x46) {
      throw new ModuleError(
        'WASM_MALFORMED',
        'not a WebAssembly module but an ELF file (an eBPF object?): `run` takes the app (a .wasm that embeds its objects); ' +
          '`wasm-bpf check OBJ.bpf.o` says what an object needs here, `wasm-bpf gen skeleton OBJ.bpf.o` writes the header an app embeds it with',
      );
    }
    throw new ModuleError('WASM_MALFORMED', 'not a WebAssembly module (missing \\0asm magic)');
  }
  if (bytes[4] !== 1 || bytes[5] !== 0 || bytes[6] !== 0 || bytes[7] !== 0) {
    throw new ModuleError('WASM_MALFORMED', 'unsupported WebAssembly binary version (expected 1)');
  }
  const r = new Reader(bytes);
  r.pos = 8;
  const types: FuncType[] = [];
  const imports: WasmImport[] = [];
  const exports: WasmExport[] = [];
  const pendingTypeIdx: Array<[WasmImport, number]> = [];
  const ownTypeIdx: number[] = [];
  while (r.pos < r.end) {
    const id = r.byte();
    const size = r.u32();
    if (size > r.end - r.pos) r.fail(`section ${id} extends past end of file`);
    const sec: Reader = new Reader(bytes, r.pos + size);
    sec.pos = r.pos;
    r.pos += size;
    if (id === 1) {
      for (let n = sec.u32(), i = 0; i < n; i++) {
        const form = sec.byte();
        if (form !== 0x60) sec.fail(`unknown type form 0x${form.toString(16)}`);
        const params: ValType[] = [];
        for (let p = sec.u32(), j = 0; j < p; j++) params.push(sec.valtype());
        const results: ValType[] = [];
        for (let q = sec.u32(), j = 0; j < q; j++) results.push(sec.valtype());
        types.push({ params, results });
      }
    } else if (id === 2) {
      for (let n = sec.u32(), i = 0; i < n; i++) {
        const module = sec.name();
        const name = sec.name();
        const k = sec.byte();
        const kind = KINDS[k];
        if (!kind) sec.fail(`unknown import kind ${k}`);
        const imp: WasmImport = { module, name, kind };
        if (k === 0) pendingTypeIdx.push([imp, sec.u32()]);
        else if (k === 1) {
          sec.byte();
          sec.limits();
        } else if (k === 2) sec.limits();
        else if (k === 3) {
          sec.valtype();
          sec.byte();
        } else {
          sec.byte();
          sec.u32();
        }
        imports.push(imp);
      }
    } else if (id === 3) {
      for (let n = sec.u32(), i = 0; i < n; i++) ownTypeIdx.push(sec.u32());
    } else if (id === 7) {
      for (let n = sec.u32(), i = 0; i < n; i++) {
        const name = sec.name();
        const k = sec.byte();
        const kind = KINDS[k];
        if (!kind) sec.fail(`unknown export kind ${k}`);
        sec.u32();
        exports.push({ name, kind });
      }
    }
  }
  for (const [imp, idx] of pendingTypeIdx) {
    const t = types[idx];
    if (!t) throw new ModuleError('WASM_MALFORMED', `malformed Wasm module: import ${imp.module}.${imp.name} uses unknown type ${idx}`);
    imp.type = t;
  }
  const functions: FuncType[] = pendingTypeIdx.map(([imp]) => imp.type!);
  for (const idx of ownTypeIdx) {
    const t = types[idx];
    if (!t) throw new ModuleError('WASM_MALFORMED', `malformed Wasm module: function ${functions.length} uses unknown type ${idx}`);
    functions.push(t);
  }
  return { imports, exports, functions };
}
