// Answers "what is the context layout of event X on arch A": the running kernel's tracefs when it is this
// host's arch and readable, else the built-in table (tables/<arch>.ts); and syscall names <-> numbers.
import { fixedSize, type TraceField } from './format.js';
import { hostArch } from './host.js';
import { tableEvents, type Arch, type SyscallTable } from './table.js';
import { TABLE as ARM64 } from './tables/arm64.js';
import { TABLE as X86_64 } from './tables/x86_64.js';
import { readEventFormat, tracefsRoot } from './tracefs.js';
import { ABI as ABI_ARM64 } from './abi/arm64.js';
import { ABI as ABI_X86_64 } from './abi/x86_64.js';
import type { SyscallAbi } from './abi/types.js';

export type { Arch } from './table.js';

export const TABLES: Readonly<Record<Arch, SyscallTable>> = { x86_64: X86_64, arm64: ARM64 };
export const ABIS: Readonly<Record<Arch, SyscallAbi>> = { x86_64: ABI_X86_64, arm64: ABI_ARM64 };

export interface EventLayout {
  /** 'syscalls', 'raw_syscalls', 'sched' */
  category: string;
  /** 'sys_enter_openat' */
  name: string;
  /** the running kernel's event id (common_type) when read from tracefs; 0 from the built-in table */
  id: number;
  fields: readonly TraceField[];
  /** bytes before any __data_loc payload */
  size: number;
  /** where the layout came from */
  source: 'tracefs' | 'table';
}

/**
 * 'syscalls/sys_enter_openat', 'sys_enter_openat', 'tp/syscalls/sys_enter_openat',
 * 'tracepoint/sched/sched_process_exec' -> ['syscalls', 'sys_enter_openat']
 */
export function eventKey(event: string): [string, string] | undefined {
  const parts = event.replace(/^(tp|tracepoint)\//, '').split('/');
  if (parts.length === 2 && parts[0] && parts[1]) return [parts[0], parts[1]];
  if (parts.length !== 1 || !parts[0]) return undefined;
  const name = parts[0];
  if (/^sys_(enter|exit)_./.test(name)) return ['syscalls', name];
  if (name === 'sys_enter' || name === 'sys_exit') return ['raw_syscalls', name];
  if (name.startsWith('sched_')) return ['sched', name];
  return undefined;
}

const builtin = new Map<Arch, Map<string, { fields: TraceField[] }>>();

function builtinEvents(arch: Arch): Map<string, { fields: TraceField[] }> {
  let m = builtin.get(arch);
  if (!m) builtin.set(arch, (m = tableEvents(TABLES[arch])));
  return m;
}

export interface LayoutOptions {
  /** the tracefs mount to read; false: the built-in table only. Default: the first readable mount */
  tracefs?: string | false;
}

/** the layout of an event on an arch (undefined: no such event there) */
export function eventLayout(event: string, arch: Arch = hostArch() ?? 'x86_64', opts: LayoutOptions = {}): EventLayout | undefined {
  const key = eventKey(event);
  if (!key) return undefined;
  const [category, name] = key;
  if (opts.tracefs !== false && arch === hostArch()) {
    const root = opts.tracefs ?? tracefsRoot();
    const ev = root ? readEventFormat(root, category, name) : undefined;
    if (ev) return { category, name, id: ev.id, fields: ev.fields, size: fixedSize(ev.fields), source: 'tracefs' };
  }
  const ev = builtinEvents(arch).get(`${category}/${name}`);
  if (!ev) return undefined;
  return { category, name, id: 0, fields: ev.fields, size: fixedSize(ev.fields), source: 'table' };
}

/** a syscall's number by its tracefs name ('openat', 'newfstatat'), or undefined */
export function syscallNumber(name: string, arch: Arch = hostArch() ?? 'x86_64'): number | undefined {
  return TABLES[arch].syscalls[name]?.[0];
}

const byNumber = new Map<Arch, Map<number, string>>();

/** a syscall's tracefs name by number, or undefined (a number without a tracepoint) */
export function syscallName(nr: number, arch: Arch = hostArch() ?? 'x86_64'): string | undefined {
  let m = byNumber.get(arch);
  if (!m) byNumber.set(arch, (m = new Map(Object.entries(TABLES[arch].syscalls).map(([n, [nr]]) => [nr, n]))));
  return m.get(nr);
}
