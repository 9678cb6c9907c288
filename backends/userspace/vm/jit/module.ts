// The module builder: one Wasm module per program (types, imports, one function per eBPF function,
// exports), each function's body laid out structured (structured.ts) or, for irreducible control flow,
// by the dispatcher (dispatch.ts).

import type { LoadedProgram } from '../program.js';
import { buildModule, Bytes, T, type FuncType } from '../../../../src/wasm/writer.js';
import { functionBlocks, structure } from './cfg.js';
import { dispatch } from './dispatch.js';
import { Ctl, Gen } from './emit.js';
import { G_BUDGET, G_TC } from './indices.js';
import { structured } from './structured.js';

class Types {
  list: FuncType[] = [];
  private map = new Map<string, number>();
  get(params: number[], results: number[]): number {
    const k = `${params.join(',')}:${results.join(',')}`;
    let i = this.map.get(k);
    if (i === undefined) {
      i = this.list.length;
      this.list.push({ params, results });
      this.map.set(k, i);
    }
    return i;
  }
}

/**
 * The Wasm module of a program (what compileProgram compiles; test/vm-jit-golden.test.ts pins its bytes)
 * and how many of its functions use the dispatcher
 */
export function generate(p: LoadedProgram): { bytes: Uint8Array<ArrayBuffer>; dispatched: number } {
  let dispatched = 0;
  const types = new Types();
  const tFault = types.get([T.i32], []);
  const tFaultMem = types.get([T.i64, T.i32, T.i32, T.i32], []);
  const tTail = types.get([T.i64, T.i64, T.i64, T.i32, T.i32], [T.i64]);
  const tCallx = types.get([T.i64, T.i64, T.i64, T.i64, T.i64, T.i64, T.i32], [T.i64]);
  const tLdabs = types.get([T.i32, T.i32, T.i32], [T.i64]);
  const tHelper = types.get([T.i64, T.i64, T.i64, T.i64, T.i64, T.i32], [T.i64]);
  const tFunc = types.get([T.i64, T.i64, T.i64, T.i64, T.i64, T.i32], [T.i64]);
  const funcImports = [
    { module: 'h', name: 'fault_budget', type: tFault },
    { module: 'h', name: 'fault_stack', type: tFault },
    { module: 'h', name: 'fault_mem', type: tFaultMem },
    { module: 'h', name: 'tail', type: tTail },
    { module: 'h', name: 'callx', type: tCallx },
    { module: 'h', name: 'ldabs', type: tLdabs },
  ];
  const helperIndex = new Map<number, number>();
  for (const id of p.helperIds) {
    helperIndex.set(id, funcImports.length);
    funcImports.push({ module: 'h', name: `h${id}`, type: tHelper });
  }
  const firstFunc = funcImports.length;
  const funcIndex = new Map<number, number>();
  p.functions.forEach((f, k) => funcIndex.set(f, firstFunc + k));

  const funcs = p.functions.map((entry) => {
    const f = genFunction(p, entry, funcIndex, helperIndex);
    if (f.dispatched) dispatched++;
    return {
      type: tFunc,
      body: f.body,
      hints: f.hints,
      locals: [
        [9, T.i64],
        [3, T.i32],
        [5, T.i64],
        [4, T.i32],
        [2, T.i64],
        [2, T.i32],
      ] as [number, number][],
    };
  });
  const bytes = buildModule({
    types: types.list,
    funcImports,
    memoryImport: { module: 'm', name: 'mem' },
    globals: [
      { type: T.i64, init: 0n },
      { type: T.i32, init: 0 },
    ],
    funcs,
    exports: [
      { name: 'run', kind: 'func', index: firstFunc },
      { name: 'budget', kind: 'global', index: G_BUDGET },
      { name: 'tc', kind: 'global', index: G_TC },
    ],
  });
  return { bytes, dispatched };
}

/** the body of the Wasm function for the eBPF function at entry, structured when it can be */
function genFunction(p: LoadedProgram, entry: number, funcIndex: Map<number, number>, helperIndex: Map<number, number>): { body: Uint8Array<ArrayBuffer>; hints: [number, number][]; dispatched: boolean } {
  const bl = functionBlocks(p, entry);
  const g = new Gen(p, funcIndex, helperIndex);
  g.prologue();
  const st = structure(p, bl);
  if (st !== undefined && structured(p, g, bl, st)) return { body: g.b.out().slice(), hints: g.hints, dispatched: false };
  g.b = new Bytes();
  g.refunds = false;
  g.hints = [];
  g.ctl = new Ctl();
  g.prologue();
  dispatch(p, g, bl);
  return { body: g.b.out().slice(), hints: g.hints, dispatched: true };
}
