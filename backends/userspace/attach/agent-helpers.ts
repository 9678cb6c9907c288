// The helpers the uprobe agent implements: the cases of helper_of in native/agent/lib/helpers.c, by id
// (test/agent-helpers.test.ts holds this list and that switch equal). A program for the agent that calls any
// other helper is refused before it reaches a process, naming the helper.
import { BackendError } from '../../../src/errors.js';
import { ERRNO, HELPER } from '../../../src/kernel/uapi.js';
import { helperName } from '../helpers.js';

/** helper ids the agent runs (get_current_task(_btf): the task_struct image of attach/task-layout.ts) */
export const AGENT_HELPERS: ReadonlySet<number> = new Set([
  HELPER.map_lookup_elem,
  HELPER.map_update_elem,
  HELPER.map_delete_elem,
  HELPER.probe_read,
  HELPER.ktime_get_ns,
  HELPER.trace_printk,
  HELPER.get_prandom_u32,
  HELPER.get_smp_processor_id,
  HELPER.get_current_pid_tgid,
  HELPER.get_current_uid_gid,
  HELPER.get_current_comm,
  HELPER.perf_event_output,
  HELPER.get_current_task,
  HELPER.probe_read_str,
  HELPER.probe_read_user,
  HELPER.probe_read_kernel,
  HELPER.probe_read_user_str,
  HELPER.probe_read_kernel_str,
  HELPER.ktime_get_boot_ns,
  HELPER.ringbuf_output,
  HELPER.ringbuf_reserve,
  HELPER.ringbuf_submit,
  HELPER.ringbuf_discard,
  HELPER.ringbuf_query,
  HELPER.get_current_task_btf,
  HELPER.ktime_get_coarse_ns,
]);

/** the first helper call (`call imm`, src 0) the agent lacks: the helper's id and the instruction, or undefined */
export function agentMissingHelper(insns: Uint8Array): { id: number; insn: number } | undefined {
  const dv = new DataView(insns.buffer, insns.byteOffset, insns.byteLength);
  for (let off = 0; off + 8 <= insns.byteLength; off += 8) {
    const op = insns[off]!;
    if (op === 0x18) off += 8; // lddw: the second slot is data
    else if (op === 0x85 && (insns[off + 1]! >> 4) === 0) {
      const id = dv.getInt32(off + 4, true) >>> 0;
      if (!AGENT_HELPERS.has(id)) return { id, insn: off / 8 };
    }
  }
  return undefined;
}

/**
 * Refuses (BackendError, EOPNOTSUPP) a program the agent could not run, naming the helper, e.g.
 * "program 'p' (uprobe) calls bpf_get_current_task (35) at insn 3, which the uprobe agent does not implement".
 */
export function checkAgentHelpers(where: string, insns: Uint8Array): void {
  const m = agentMissingHelper(insns);
  if (m === undefined) return;
  throw new BackendError(`${where} calls ${helperName(m.id)} at insn ${m.insn}, which the uprobe agent does not implement`, ERRNO.EOPNOTSUPP);
}
