// Which syscall event a userspace tp/syscalls program names (`tracepoint/syscalls/sys_enter_openat`,
// `tp/syscalls/sys_exit_openat`): its number on this arch, enter or exit, and the field table the agent
// builds the event's record from (the running kernel's tracefs layout, else the built-in table).
import { BackendError } from '../../../src/errors.js';
import { ERRNO } from '../../../src/kernel/uapi.js';
import { encodeFieldTable, sysFieldTable } from '../syscalls/fieldtable.js';
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
}

/** a `tp/syscalls/*` or `tracepoint/syscalls/*` section: the event's [category, name]; else undefined */
export function syscallEvent(section: string): [string, string] | undefined {
  if (!/^(tp|tracepoint)\/syscalls\//.test(section)) return undefined;
  return eventKey(section);
}

/** the target of a syscall tracepoint program; a refusal names why and what runs it instead */
export function syscallTarget(section: string): SyscallTarget {
  const key = syscallEvent(section);
  const m = key ? /^sys_(enter|exit)_(.+)$/.exec(key[1]) : null;
  if (!key || !m) throw new BackendError(`'${section}' is not a syscall tracepoint (tracepoint/syscalls/sys_enter_NAME or sys_exit_NAME)`, ERRNO.EINVAL);
  const arch = hostArch();
  if (arch === undefined) {
    throw new BackendError(
      `attaching '${section}' is not supported by the userspace backend: it traces syscalls on x86_64 and arm64 only`,
      ERRNO.EOPNOTSUPP, '', 'use --backend linux (root, or CAP_BPF and CAP_PERFMON) to run it in the kernel');
  }
  const event = `${key[0]}/${key[1]}`;
  const nr = syscallNumber(m[2]!, arch);
  const layout = eventLayout(event, arch);
  if (nr === undefined || !layout) throw new BackendError(`'${section}': ${arch} has no syscall '${m[2]}' with a tracepoint`, ERRNO.ENOENT);
  return { event, nr, exit: m[1] === 'exit', layout, table: encodeFieldTable(sysFieldTable(layout)) };
}
