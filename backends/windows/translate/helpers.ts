// Linux helper ids -> eBPF for Windows' (ebpf_helper_id_t in include/ebpf_structs.h, prototypes in
// include/bpf_helper_defs.h, microsoft/ebpf-for-windows @ 64be483d, see ./source.ts): the `call imm` of a
// program's helper calls. Only the first three ids agree; the rest are renumbered or absent.
import { HELPER } from '../../../src/kernel/uapi.js';
import { WIN_HELPER } from '../../../src/kernel/ebpf-windows.js';
export { WIN_HELPER };


/** Linux helper id -> Windows helper id, where both mean the same call with the same arguments */
export const HELPER_TO_WINDOWS: ReadonlyMap<number, number> = new Map([
  [HELPER.map_lookup_elem, WIN_HELPER.map_lookup_elem],
  [HELPER.map_update_elem, WIN_HELPER.map_update_elem],
  [HELPER.map_delete_elem, WIN_HELPER.map_delete_elem],
  [HELPER.ktime_get_ns, WIN_HELPER.ktime_get_ns],
  [HELPER.get_prandom_u32, WIN_HELPER.get_prandom_u32],
  [HELPER.get_smp_processor_id, WIN_HELPER.get_smp_processor_id],
  [HELPER.tail_call, WIN_HELPER.tail_call],
  // Windows: (process id << 32) | thread id, Linux's (tgid << 32) | pid
  [HELPER.get_current_pid_tgid, WIN_HELPER.get_current_pid_tgid],
  [HELPER.perf_event_output, WIN_HELPER.perf_event_output],
  [HELPER.csum_diff, WIN_HELPER.csum_diff],
  [HELPER.get_socket_cookie, WIN_HELPER.get_socket_cookie],
  [HELPER.map_push_elem, WIN_HELPER.map_push_elem],
  [HELPER.map_pop_elem, WIN_HELPER.map_pop_elem],
  [HELPER.map_peek_elem, WIN_HELPER.map_peek_elem],
  [HELPER.ktime_get_boot_ns, WIN_HELPER.ktime_get_boot_ns],
  [HELPER.ringbuf_output, WIN_HELPER.ringbuf_output],
]);

/** bpf_trace_printk(fmt, size, ...): Windows has one helper per argument count (2 to 5 arguments) */
export function windowsTracePrintk(args: number): number {
  return WIN_HELPER.trace_printk2 + Math.min(Math.max(args, 2), 5) - 2;
}

/** Linux helpers Windows lacks but the translation can still serve: rewritten by another step of the pass */
export const REWRITTEN_HELPERS: ReadonlyMap<number, string> = new Map([
  [HELPER.trace_printk, 'bpf_trace_printk -> bpf_trace_printk2..5, by the arguments the call sets'],
  [HELPER.ringbuf_reserve, 'bpf_ringbuf_reserve/submit/discard (Windows has bpf_ringbuf_output only) -> a per-CPU scratch value and bpf_perf_event_output, as the ringbuf->perf compat pass does'],
  [HELPER.ringbuf_submit, 'see bpf_ringbuf_reserve'],
  [HELPER.ringbuf_discard, 'see bpf_ringbuf_reserve'],
]);

/** what Windows offers instead of a Linux helper it lacks, where something comes close */
const INSTEAD: ReadonlyMap<number, string> = new Map([
  [HELPER.probe_read, 'Windows programs cannot read arbitrary kernel memory'],
  [HELPER.probe_read_kernel, 'Windows programs cannot read arbitrary kernel memory'],
  [HELPER.probe_read_user, 'Windows programs cannot read user memory'],
  [HELPER.probe_read_str, 'Windows programs cannot read arbitrary memory'],
  [HELPER.probe_read_kernel_str, 'Windows programs cannot read arbitrary kernel memory'],
  [HELPER.probe_read_user_str, 'Windows programs cannot read user memory'],
  [HELPER.get_current_comm, 'Windows has no task names; the process program type (ntosebpfext) carries the image name'],
  [HELPER.get_current_uid_gid, 'Windows has bpf_get_current_logon_id and bpf_is_current_admin instead'],
  [HELPER.get_current_task, 'Windows has no task_struct'],
  [HELPER.get_current_task_btf, 'Windows has no task_struct'],
  [HELPER.get_stackid, 'Windows has no stack traces'],
  [HELPER.get_stack, 'Windows has no stack traces'],
  [HELPER.ktime_get_coarse_ns, 'bpf_ktime_get_ms (Windows) is the coarse clock there'],
  [HELPER.redirect, 'Windows XDP has no redirect (XDP_TX bounces a packet back out)'],
  [HELPER.redirect_map, 'Windows XDP has no redirect maps'],
  [HELPER.xdp_adjust_head, 'Windows has bpf_xdp_adjust_head as an XDP extension helper (not a general one); not mapped yet'],
]);

export type HelperVerdict = { windows: number } | { rewritten: string } | { refused: string };

/** The Windows id of a Linux helper call, or the step that rewrites it, or why Windows cannot serve it. */
export function windowsHelper(linuxId: number, linuxName: string): HelperVerdict {
  const w = HELPER_TO_WINDOWS.get(linuxId);
  if (w !== undefined) return { windows: w };
  const r = REWRITTEN_HELPERS.get(linuxId);
  if (r) return { rewritten: r };
  const closer = INSTEAD.get(linuxId);
  const names = Object.keys(WIN_HELPER).map((n) => `bpf_${n}`);
  return { refused: closer ? `eBPF for Windows has no ${linuxName} (${closer})` : `eBPF for Windows has no ${linuxName}; its general helpers: ${names.join(', ')}` };
}
