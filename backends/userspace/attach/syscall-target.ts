// Which syscall event a userspace tp/syscalls or tp/raw_syscalls program names (`tracepoint/syscalls/sys_enter_openat`,
// `tp/syscalls/sys_exit_openat`, `tp/raw_syscalls/sys_enter`): its number on this arch (raw: every number),
// enter or exit, and the field table the agent builds the event's record from (the running kernel's tracefs
// layout, else the built-in table).
import { BackendError } from '../../../src/errors.js';
import { ERRNO } from '../../../src/kernel/uapi.js';
import { encodeFieldTable, encodeSchedTable, SCHED_KIND, sysFieldTable } from '../syscalls/fieldtable.js';
import { hostArch } from '../syscalls/host.js';
import { eventKey, eventLayout, syscallNumber, type EventLayout } from '../syscalls/layout.js';

export interface SyscallTarget {
  /** 'syscalls/sys_enter_openat', 'raw_syscalls/sys_exit' */
  event: string;
  /** the syscall number; -1 for raw_syscalls (every number) */
  nr: number;
  raw: boolean;
  exit: boolean;
  layout: EventLayout;
  /** the 64-byte field table (../syscalls/fieldtable.ts) */
  table: Uint8Array;
  /** a sched/sched_process_* event: nr is its SCHED_KIND, table a sched table */
  sched?: boolean;
}

/** a `tp/syscalls/*`, `tp/raw_syscalls/*` or `tp/sched/sched_process_*` (or `tracepoint/...`) section: the
 *  event's [category, name]; else undefined */
export function syscallEvent(section: string): [string, string] | undefined {
  if (!/^(tp|tracepoint)\/((raw_)?syscalls\/|sched\/sched_process_)/.test(section)) return undefined;
  return eventKey(section);
}

/** a section as an error shows it (a hostile one may be thousands of characters) */
function shownSection(section: string): string {
  return section.length > 80 ? `${section.slice(0, 80)}... (${section.length} characters)` : section;
}

/** the target of a sched_process_exec|exit|fork program: the agent emits exec and exit (at an exec'd program's
 * start, at exit_group; x86_64), the ptrace tier all three from its ptrace events (static commands, arm64, a
 * forced tier); the agent refuses fork (native/agent/lib/syscalls.c) */
function schedTarget(section: string, name: string): SyscallTarget {
  const shown = shownSection(section);
  const arch = hostArch();
  if (arch === undefined) {
    throw new BackendError(`attaching '${shown}' is not supported by the userspace backend: it emits process events on x86_64 and arm64 only`,
      ERRNO.EOPNOTSUPP, '', 'use --backend linux (root, or CAP_BPF and CAP_PERFMON) to run it in the kernel');
  }
  const kinds: Record<string, number> = { sched_process_exec: SCHED_KIND.exec, sched_process_exit: SCHED_KIND.exit, sched_process_fork: SCHED_KIND.fork };
  const nr = kinds[name];
  if (nr === undefined) {
    throw new BackendError(`attaching '${shown}' is not supported by the userspace backend: it emits sched_process_exec, sched_process_exit and sched_process_fork only`,
      ERRNO.EOPNOTSUPP, '', 'use --backend linux (root, or CAP_BPF and CAP_PERFMON) to run it in the kernel');
  }
  const event = `sched/${name}`;
  const layout = eventLayout(event, arch);
  if (!layout) throw new BackendError(`'${shown}': no layout of ${event} on ${arch}`, ERRNO.ENOENT);
  return { event, nr, raw: false, exit: false, layout, table: encodeSchedTable(layout), sched: true };
}

/** the target of a syscall tracepoint program; a refusal names why and what runs it instead */
export function syscallTarget(section: string): SyscallTarget {
  const key = syscallEvent(section);
  if (key?.[0] === 'sched') return schedTarget(section, key[1]);
  const raw = key?.[0] === 'raw_syscalls';
  const m = key ? (raw ? /^sys_(enter|exit)$/ : /^sys_(enter|exit)_(.+)$/).exec(key[1]) : null;
  const shown = shownSection(section);
  if (!key || !m) throw new BackendError(`'${shown}' is not a syscall tracepoint (tracepoint/syscalls/sys_enter_NAME or sys_exit_NAME, tracepoint/raw_syscalls/sys_enter or sys_exit)`, ERRNO.EINVAL);
  const arch = hostArch();
  if (arch === undefined) {
    throw new BackendError(
      `attaching '${section}' is not supported by the userspace backend: it traces syscalls on x86_64 and arm64 only`,
      ERRNO.EOPNOTSUPP, '', 'use --backend linux (root, or CAP_BPF and CAP_PERFMON) to run it in the kernel');
  }
  const event = `${key[0]}/${key[1]}`;
  const nr = raw ? -1 : syscallNumber(m[2]!, arch);
  const layout = eventLayout(event, arch);
  if (nr === undefined || !layout) throw new BackendError(`'${shown}': ${arch} has no syscall '${m[2]!.slice(0, 64)}' with a tracepoint`, ERRNO.ENOENT);
  return { event, nr, raw, exit: m[1] === 'exit', layout, table: encodeFieldTable(sysFieldTable(layout)) };
}
