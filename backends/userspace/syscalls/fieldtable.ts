// The field table the host sends the agent for one syscall event (its C twin of syscallRecord,
// native/agent/sys/record.c, fills a record from it): where the header, the number, the arguments and the
// result sit in the event's layout (layout.ts), as 64 little-endian bytes.
import { WasmBpfError } from '../../../src/errors.js';
import type { TraceField } from './format.js';
import type { EventLayout } from './layout.js';

/** bytes of an encoded table; the version the C side checks */
export const FIELD_TABLE_SIZE = 64;
export const FIELD_TABLE_VERSION = 1;

export interface FieldSlot { offset: number; size: number }

export interface SysFieldTable {
  exit: boolean;
  /** the record's fixed size; the event id written as common_type */
  size: number;
  id: number;
  type: FieldSlot; flags: FieldSlot; preempt: FieldSlot; pid: FieldSlot;
  nr: FieldSlot; ret: FieldSlot;
  /** one slot per argument register the event stores, in order (6 for raw_syscalls/sys_enter) */
  args: FieldSlot[];
}

const NONE: FieldSlot = { offset: 0, size: 0 };

function slot(layout: EventLayout, name: string, required: boolean): FieldSlot {
  const f = layout.fields.find((x) => x.name === name);
  if (!f) {
    if (required) throw new WasmBpfError('USAGE', `${layout.category}/${layout.name} has no field '${name}': not a syscall event layout`);
    return NONE;
  }
  return { offset: f.offset, size: f.size };
}

function scalarArgs(fields: readonly TraceField[]): FieldSlot[] {
  return fields.filter((f) => f.offset >= 16).map((f) => ({ offset: f.offset, size: f.size }));
}

/** the table of a syscalls/sys_enter_*|sys_exit_* or raw_syscalls/sys_enter|sys_exit layout */
export function sysFieldTable(layout: EventLayout): SysFieldTable {
  const exit = /^sys_exit/.test(layout.name);
  const head = {
    exit, size: layout.size, id: layout.id,
    type: slot(layout, 'common_type', true), flags: slot(layout, 'common_flags', true),
    preempt: slot(layout, 'common_preempt_count', true), pid: slot(layout, 'common_pid', true),
  };
  if (layout.category === 'raw_syscalls') {
    const nr = slot(layout, 'id', true);
    if (exit) return { ...head, nr, ret: slot(layout, 'ret', true), args: [] };
    const a = slot(layout, 'args', true);
    const each = a.size / 6;
    return { ...head, nr, ret: NONE, args: [0, 1, 2, 3, 4, 5].map((i) => ({ offset: a.offset + i * each, size: each })) };
  }
  if (layout.category === 'syscalls') {
    const nr = slot(layout, '__syscall_nr', true);
    if (exit) return { ...head, nr, ret: slot(layout, 'ret', true), args: [] };
    const args = scalarArgs(layout.fields);
    if (args.length > 6) throw new WasmBpfError('USAGE', `${layout.category}/${layout.name} has ${args.length} arguments: a syscall has at most 6`);
    return { ...head, nr, ret: NONE, args };
  }
  throw new WasmBpfError('USAGE', `${layout.category}/${layout.name} is not a syscall event: only syscalls/* and raw_syscalls/* have a field table`);
}

/** u16 version, u16 flags (1: exit), u32 size, u16 id, u16 nargs, then (u16 offset, u16 size) for type, flags,
 * preempt, pid, nr, ret, args[0..5]; zero padding to 64 bytes */
export function encodeFieldTable(t: SysFieldTable): Uint8Array {
  const out = new Uint8Array(FIELD_TABLE_SIZE);
  const dv = new DataView(out.buffer);
  dv.setUint16(0, FIELD_TABLE_VERSION, true);
  dv.setUint16(2, t.exit ? 1 : 0, true);
  dv.setUint32(4, t.size, true);
  dv.setUint16(8, t.id, true);
  dv.setUint16(10, t.args.length, true);
  const slots = [t.type, t.flags, t.preempt, t.pid, t.nr, t.ret, ...t.args];
  slots.forEach((s, i) => {
    dv.setUint16(12 + i * 4, s.offset, true);
    dv.setUint16(14 + i * 4, s.size, true);
  });
  return out;
}

/** the sched table's version (lib/syscalls.c's SCHED_TABLE_VERSION), and the events the agent emits */
export const SCHED_TABLE_VERSION = 0x5301;
export const SCHED_KIND = { exec: 0, exit: 1, fork: 2 } as const;

/**
 * The 64-byte table of a sched/sched_process_exec|exit|fork layout for the agent (native/agent/lib/syscalls.c)
 * and the ptrace tier (native/agent/ptrace/sched.c): u16 version, u16 kind, u32 size, u16 id, u16 0, then
 * (u16 offset, u16 size) for common_type, common_flags, common_preempt_count, common_pid, then exec: filename,
 * pid, old_pid; exit: comm, pid, prio, group_dead (size 0: not in this layout, as group_dead before 6.x); fork:
 * parent_comm, parent_pid, child_comm, child_pid. A string field of 4 bytes is a __data_loc (6.18's fork
 * comms), else an inline char array (6.1's).
 */
export function encodeSchedTable(layout: EventLayout): Uint8Array {
  const kind = layout.name === 'sched_process_exec' ? SCHED_KIND.exec : layout.name === 'sched_process_exit' ? SCHED_KIND.exit : layout.name === 'sched_process_fork' ? SCHED_KIND.fork : undefined;
  if (layout.category !== 'sched' || kind === undefined) {
    throw new WasmBpfError('USAGE', `${layout.category}/${layout.name}: the userspace backend emits sched/sched_process_exec, sched_process_exit and sched_process_fork only`);
  }
  const fields = kind === SCHED_KIND.exec ? ['filename', 'pid', 'old_pid'] : kind === SCHED_KIND.exit ? ['comm', 'pid', 'prio', 'group_dead'] : ['parent_comm', 'parent_pid', 'child_comm', 'child_pid'];
  const slots = [
    slot(layout, 'common_type', true), slot(layout, 'common_flags', true), slot(layout, 'common_preempt_count', true), slot(layout, 'common_pid', true),
    ...fields.map((f) => slot(layout, f, f !== 'group_dead')),
  ];
  const out = new Uint8Array(FIELD_TABLE_SIZE);
  const dv = new DataView(out.buffer);
  dv.setUint16(0, SCHED_TABLE_VERSION, true);
  dv.setUint16(2, kind, true);
  dv.setUint32(4, layout.size, true);
  dv.setUint16(8, layout.id, true);
  slots.forEach((s, i) => {
    dv.setUint16(12 + i * 4, s.offset, true);
    dv.setUint16(14 + i * 4, s.size, true);
  });
  return out;
}
