// The helpers `wasm-bpf vm run` offers: those of the userspace backend (backends/userspace/helpers.ts)
// that need no map, served for this process (pid, uid, comm), trace_printk written to stderr.
import process from 'node:process';
import type { Helper } from '../../backends/userspace/vm/api.js';
import { buildHelpers, helperName } from '../../backends/userspace/helpers.js';

export { helperName };
import { HELPER } from '../kernel/uapi.js';

/** what a `vm run` program may call */
export const VM_RUN_HELPERS: readonly number[] = [
  HELPER.ktime_get_ns, HELPER.ktime_get_boot_ns, HELPER.ktime_get_coarse_ns, HELPER.get_prandom_u32,
  HELPER.get_smp_processor_id, HELPER.get_numa_node_id, HELPER.get_current_pid_tgid, HELPER.get_current_uid_gid,
  HELPER.get_current_comm, HELPER.trace_printk,
];

export function vmRunHelperNames(): string {
  return VM_RUN_HELPERS.map((id) => helperName(id).replace(/^bpf_/, '').replace(/ \(\d+\)$/, '')).join(', ');
}

/** the helper table of one `vm run`; `trace` receives each trace_printk line */
export function vmRunHelpers(trace: (text: string) => void): Map<number, Helper> {
  const all = buildHelpers({
    mapByHandle: () => undefined,
    ringbufs: () => [],
    run: () => ({
      task: {
        pid: process.pid,
        tgid: process.pid,
        uid: process.getuid?.() ?? 0,
        gid: process.getgid?.() ?? 0,
        comm: (process.title || 'node').slice(0, 15),
      },
      cpu: 0,
      taskAddr: 0,
    }),
    trace: (text) => trace(text.endsWith('\n') ? text : `${text}\n`),
    now: () => process.hrtime.bigint(),
  });
  return new Map(VM_RUN_HELPERS.map((id) => [id, all.get(id)!]));
}
