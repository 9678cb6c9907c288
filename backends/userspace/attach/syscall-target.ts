// Which syscall event a userspace tp/syscalls program names (`tracepoint/syscalls/sys_enter_openat`,
// `tp/syscalls/sys_exit_openat`): its number on this arch, enter or exit, and the field table the agent
// builds the event's record from (the running kernel's tracefs layout, else the built-in table).
import { BackendError } from '../../../src/errors.js';
import { ERRNO } from '../../../src/kernel/uapi.js';
import { encodeFieldTable, encodeSchedTable, SCHED_KIND, sysFieldTable } from '../syscalls/fieldtable.js';
import { hostArch } from '../syscalls/host.js';
import { eventKey, eventLayout, syscallNumber, type EventLayout } from '../syscalls/layout.js';

export interface SyscallTarget {
  /** 'syscalls/sys_enter_openat' */
  event: string;
  nr: number;
  exit: boolean;
  layout: EventLayout;
  /** the 64-byte field table (../syscalls/fieldtable.ts) */
  table: Uint8Array;
  /** a sched/sched_process_* event: nr is its SCHED_KIND, table a sched table */
  sched?: boolean;
}

/** a `tp/syscalls/*`, `tracepoint/syscalls/*` or `tp/sched/sched_process_*` section: the event's [category, name]; else undefined */
export function syscallEvent(section: string): [string, string] | undefined {
  if (!/^(tp|tracepoint)\/(syscalls\/|sched\/sched_process_)/.test(section)) return undefined;
  return eventKey(section);
}

/** the target of a sched_process_exec|exit program (the agent emits them: at an exec'd program's start, at exit_group) */
function schedTarget(section: string, name: string): SyscallTarget {
  const arch = hostArch();
  if (arch !== 'x86_64') {
    throw new BackendError(`attaching '${section}' is not supported by the userspace backend yet: it emits process events on x86_64 only so far (this is ${arch ?? 'another arch'})`,
      ERRNO.EOPNOTSUPP, '', 'use --backend linux (root, or CAP_BPF and CAP_PERFMON) to run it in the kernel');
  }
  if (name !== 'sched_process_exec' && name !== 'sched_process_exit') {
    throw new BackendError(`attaching '${section}' is not supported by the userspace backend yet: it emits sched_process_exec and sched_process_exit only (fork is not yet)`,
      ERRNO.EOPNOTSUPP, '', 'use --backend linux (root, or CAP_BPF and CAP_PERFMON) to run it in the kernel');
  }
  const event = `sched/${name}`;
  const layout = eventLayout(event, arch);
  if (!layout) throw new BackendError(`'${section}': no layout of ${event} on ${arch}`, ERRNO.ENOENT);
  const nr = name === 'sched_process_exec' ? SCHED_KIND.exec : SCHED_KIND.exit;
  return { event, nr, exit: false, layout, table: encodeSchedTable(layout), sched: true };
}

/** the target of a syscall tracepoint program; a refusal names why and what runs it instead */
export function syscallTarget(section: string): SyscallTarget {
  const key = syscallEvent(section);
  if (key?.[0] === 'sched') return schedTarget(section, key[1]);
  const m = key ? /^sys_(enter|exit)_(.+)$/.exec(key[1]) : null;
  if (!key || !m) throw new BackendError(`'${section}' is not a syscall tracepoint (tracepoint/syscalls/sys_enter_NAME or sys_exit_NAME)`, ERRNO.EINVAL);
  const arch = hostArch();
  if (arch !== 'x86_64') {
    throw new BackendError(
      `attaching '${section}' is not supported by the userspace backend yet: it traces syscalls on x86_64 only so far (this is ${arch ?? 'another arch'})`,
      ERRNO.EOPNOTSUPP, '', 'use --backend linux (root, or CAP_BPF and CAP_PERFMON) to run it in the kernel');
  }
  const event = `${key[0]}/${key[1]}`;
  const nr = syscallNumber(m[2]!, arch);
  const layout = eventLayout(event, arch);
  if (nr === undefined || !layout) throw new BackendError(`'${section}': ${arch} has no syscall '${m[2]}' with a tracepoint`, ERRNO.ENOENT);
  return { event, nr, exit: m[1] === 'exit', layout, table: encodeFieldTable(sysFieldTable(layout)) };
}
