// A loaded program's instructions as the agent's engine takes them (native/agent/lib/proto.h): map
// references (src/object/loader.ts's lddw src 5 = map index, src 6 = the map's value + offset) become
// lddw src 1 / src 2 with imm = the shared map's id. Pure: bytes in, bytes out.
import { BackendError } from '../../../src/errors.js';
import { ERRNO } from '../../../src/kernel/uapi.js';
import { insn as I, OP_LDDW, PSEUDO } from '../../../src/object/loader.js';

/** what a map index of the object is to the agent: its shared id, or why no agent can use it */
export type MapForAgent = { id: number } | { refused: string };

/**
 * The program's instructions with every map reference resolved for the agent. Throws BackendError
 * (EOPNOTSUPP) naming the map when a reference is to a map no agent can share.
 */
export function agentInsns(program: string, insns: Uint8Array, mapAt: (index: number) => MapForAgent): Uint8Array {
  const out = insns.slice();
  const dv = new DataView(out.buffer, out.byteOffset, out.byteLength);
  for (let i = 0; i < out.byteLength / 8; i++) {
    if (I.code(out, i) !== OP_LDDW) continue;
    const src = I.src(out, i);
    if (src === PSEUDO.MAP_IDX || src === PSEUDO.MAP_IDX_VALUE) {
      const m = mapAt(I.imm(out, i));
      if ('refused' in m) throw new BackendError(`program '${program}' cannot run in a traced process: ${m.refused}`, ERRNO.EOPNOTSUPP);
      I.setSrc(out, i, src === PSEUDO.MAP_IDX ? 1 : 2);
      dv.setInt32(i * 8 + 4, m.id, true);
    }
    i++; // the pair's second slot
  }
  return out;
}
