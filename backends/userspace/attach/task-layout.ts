// The task_struct image the agent gives bpf_get_current_task(_btf) (native/agent/lib/helpers.c): where the
// fields it fills sit, by the BTF the object's programs are CO-RE relocated against, and which task_struct
// fields a program reads (its CO-RE relocations) that the image leaves zero.
import type { Btf, BtfComposite } from '../../../src/object/btf.js';
import type { BpfObject } from '../../../src/object/loader.js';

/** the fields the agent fills (pid, tgid: the thread's; real_parent/parent: a second image with the parent's pid and tgid) */
export const TASK_FILLED = ['pid', 'tgid', 'real_parent', 'parent', 'comm', 'exit_code', 'start_time', 'start_boottime'] as const;
const NONE = 0xffffffff;

export interface TaskLayout {
  size: number;
  /** byte offset of each filled field (absent: not in this BTF) */
  offsets: Partial<Record<(typeof TASK_FILLED)[number], number>>;
}

function taskStruct(btf: Btf): BtfComposite | undefined {
  for (const id of btf.findByName('task_struct', 'STRUCT')) {
    const t = btf.type(id);
    if (t.kind === 'STRUCT' && t.size > 0) return t;
  }
  return undefined;
}

/** the image's layout from `btf`'s struct task_struct (undefined: the BTF has none) */
export function taskLayout(btf: Btf): TaskLayout | undefined {
  const t = taskStruct(btf);
  if (!t) return undefined;
  const offsets: TaskLayout['offsets'] = {};
  for (const m of t.members) {
    if ((TASK_FILLED as readonly string[]).includes(m.name) && m.bitfieldSize === 0 && m.bitOffset % 8 === 0) {
      offsets[m.name as (typeof TASK_FILLED)[number]] = m.bitOffset / 8;
    }
  }
  return { size: t.size, offsets };
}

/** the TASK frame's payload (struct wbpf_agent_task, lib/proto.h): size, then the offsets in TASK_FILLED's order, then 0 */
export function encodeTaskLayout(l: TaskLayout): Uint8Array {
  const b = new Uint8Array(4 * (2 + TASK_FILLED.length));
  const dv = new DataView(b.buffer);
  dv.setUint32(0, l.size, true);
  TASK_FILLED.forEach((f, i) => dv.setUint32(4 + 4 * i, l.offsets[f] ?? NONE, true));
  return b;
}

/**
 * The task_struct fields each program reads through CO-RE (the object's relocations rooted at struct
 * task_struct, by their local access path's first member), by program name.
 */
export function taskFieldsRead(obj: BpfObject): Map<string, string[]> {
  const out = new Map<string, string[]>();
  const btf = obj.btf;
  if (!btf) return out;
  for (const p of obj.programs) {
    const names = new Set<string>();
    for (const pr of p.coreRelocs) {
      let t = btf.resolveType(pr.relo.typeId);
      if (t.kind !== 'STRUCT' || t.name !== 'task_struct') continue;
      const idx = pr.relo.access.split(':').slice(1).map(Number);
      // the first named member on the path (anonymous structs and unions are stepped through)
      for (const i of idx) {
        if (t.kind !== 'STRUCT' && t.kind !== 'UNION') break;
        const m = t.members[i];
        if (!m) break;
        if (m.name) {
          names.add(m.name);
          break;
        }
        t = btf.resolveType(m.type);
      }
    }
    if (names.size) out.set(p.name, [...names]);
  }
  return out;
}

/** of what a program reads, the fields the image leaves zero */
export function taskFieldsUnfilled(read: readonly string[]): string[] {
  return read.filter((f) => !(TASK_FILLED as readonly string[]).includes(f));
}

/** the program calls one of these helpers (`call imm`, src 0) */
export function callsHelper(insns: Uint8Array, ids: readonly number[]): boolean {
  const dv = new DataView(insns.buffer, insns.byteOffset, insns.byteLength);
  for (let off = 0; off + 8 <= insns.byteLength; off += 8) {
    const op = insns[off]!;
    if (op === 0x18) off += 8; // lddw: the second slot is data
    else if (op === 0x85 && (insns[off + 1]! >> 4) === 0 && ids.includes(dv.getInt32(off + 4, true))) return true;
  }
  return false;
}
