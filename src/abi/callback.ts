// Which guest functions the host may call as a record callback: only the guest's own Wasm functions
// of type (i32, i32, i32) -> i32 (`sample_func(ctx, data, size)` of the ABI, or TinyGo's
// `go-callback`). Anything else is refused before any call, with the reason: an empty table slot, an
// imported function (a WASI or wasm_bpf import placed in the table or re-exported), a function of
// another type (i64 parameters or result, another arity), or not a function at all.
//
// Node 20 has no Wasm type reflection. Two facts of the JS API are used instead: the function object
// of a module's function has its index in the module's function space as `name` (an import, re-exported
// or taken from the table, is wrapped with the import's index), and linking a Wasm function as an
// import of a given type succeeds only when its type is exactly that one. The index gives the module's
// own answer (from its bytes: imports first, then its own functions, see wasm/imports.ts); the link
// is the engine's, which also covers a function of another module under a misleading index. An import
// that is itself a Wasm function of another module (the host's poll gate, pollgate.ts) keeps its own
// object and index: the host names those (`known`).
import type { FuncType, ModuleShape } from '../wasm/imports.js';
import { formatFuncType } from '../wasm/imports.js';
import { T, buildModule } from '../wasm/writer.js';

export type GuestCallback = (ctx: number, data: number, size: number) => number;

const CALLBACK_TYPE: FuncType = { params: ['i32', 'i32', 'i32'], results: ['i32'] };

/** (module (import "m" "f" (func (param i32 i32 i32) (result i32)))): instantiating it checks the type */
let probe: WebAssembly.Module | undefined;

function linksAsCallback(fn: unknown): boolean {
  probe ??= new WebAssembly.Module(
    buildModule({
      types: [{ params: [T.i32, T.i32, T.i32], results: [T.i32] }],
      funcImports: [{ module: 'm', name: 'f', type: 0 }],
      globals: [],
      funcs: [],
      exports: [],
    }),
  );
  try {
    new WebAssembly.Instance(probe, { m: { f: fn as GuestCallback } });
    return true;
  } catch {
    return false;
  }
}

function sameType(a: FuncType, b: FuncType): boolean {
  return a.params.length === b.params.length && a.results.length === b.results.length && a.params.every((p, i) => p === b.params[i]) && a.results.every((r, i) => r === b.results[i]);
}

/**
 * `fn` as a callback the host may call, or why not (a sentence fragment: "<what> is ...").
 * `shape` is the guest module's (its imports, and the type of every function when read from its bytes);
 * `known`: Wasm functions the guest imports from the host, by what they are ("wasm_bpf.NAME").
 */
export function checkCallback(fn: unknown, shape: ModuleShape | undefined, known?: ReadonlyMap<unknown, string>): GuestCallback | string {
  if (fn === null || fn === undefined) return 'is empty (no function)';
  if (typeof fn !== 'function') return 'is not a function';
  const imported = known?.get(fn);
  if (imported) return `is the module's import ${imported}, not one of its own functions`;
  const index = /^(0|[1-9]\d{0,9})$/.test(fn.name) ? Number(fn.name) : -1;
  if (index < 0) return 'is not a function of the module';
  if (shape) {
    const imported = shape.imports.filter((i) => i.kind === 'func');
    const imp = imported[index];
    if (imp) return `is the module's import ${imp.module}.${imp.name}, not one of its own functions`;
    const type = shape.functions?.[index];
    if (shape.functions && !type) return `is not a function of the module (index ${index})`;
    if (type && !sameType(type, CALLBACK_TYPE)) return `has type ${formatFuncType(type)}, expected ${formatFuncType(CALLBACK_TYPE)}`;
  }
  if (!linksAsCallback(fn)) return `is not a Wasm function of type ${formatFuncType(CALLBACK_TYPE)}`;
  return fn as GuestCallback;
}
