// The fallback for irreducible control flow: every block of the function in one Wasm loop, the next
// block chosen by a br_table on a label local (jumps set the label and branch back to the loop).

import { K, type LoadedProgram } from '../program.js';
import { OP, T } from '../../../../src/wasm/writer.js';
import type { Blocks } from './cfg.js';
import type { Gen } from './emit.js';
import { L_LABEL } from './indices.js';

/** the instructions of block k (its budget charge first) */
function emitBlock(p: LoadedProgram, g: Gen, s: number, e: number): void {
  g.charge(s, p.cost[s]!);
  for (let pc = s; pc < e; pc++) {
    if (p.kind[pc] === K.LDDW2) continue;
    g.insn(pc);
  }
}

/** every block in one loop, dispatched by br_table on a label local */
export function dispatch(p: LoadedProgram, g: Gen, blocks: Blocks): void {
  const { nb, starts, ends, entry: entryBlock, blockOf } = blocks;
  const b = g.b;
  const ctl = g.ctl;
  b.byte(OP.i32_const).s32(entryBlock).byte(OP.local_set).u32(L_LABEL);
  b.byte(OP.loop).byte(T.void);
  ctl.push('dispatch');
  for (let k = nb - 1; k >= 0; k--) {
    b.byte(OP.block).byte(T.void);
    ctl.push(`b${k}`);
  }
  b.byte(OP.local_get).u32(L_LABEL).byte(OP.br_table).u32(nb);
  for (let k = 0; k < nb; k++) b.u32(k);
  b.u32(0);
  for (let k = 0; k < nb; k++) {
    b.byte(OP.end); // end of block k: its code follows
    ctl.pop();
    g.jumpLabel = (t: number, back: boolean) => (back ? 'dispatch' : `b${t}`);
    g.blockIndex = k;
    g.blockOfPc = (pc: number) => blockOf.get(pc)!;
    emitBlock(p, g, starts[k]!, ends[k]!);
  }
  b.byte(OP.end); // loop
  ctl.pop();
  b.byte(OP.unreachable);
}

