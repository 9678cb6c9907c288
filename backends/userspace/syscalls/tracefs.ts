// Reads this machine's tracefs event formats (/sys/kernel/tracing, or the old debugfs mount) when readable:
// the run-time source of context layouts; the built-in tables (tables/) stand in when it is not.
import fs from 'node:fs';
import path from 'node:path';
import { parseFormat, type EventFormat } from './format.js';

export const TRACEFS_ROOTS: readonly string[] = ['/sys/kernel/tracing', '/sys/kernel/debug/tracing'];

/** the first tracefs mount whose events/ this process can list, or undefined (not mounted, not permitted) */
export function tracefsRoot(roots: readonly string[] = TRACEFS_ROOTS): string | undefined {
  for (const r of roots) {
    try {
      fs.accessSync(path.join(r, 'events', 'syscalls'), fs.constants.R_OK | fs.constants.X_OK);
      return r;
    } catch {
      /* the next one */
    }
  }
  return undefined;
}

/** one event's format from tracefs ('syscalls', 'sys_enter_openat'), or undefined when it cannot be read */
export function readEventFormat(root: string, category: string, name: string): EventFormat | undefined {
  try {
    return parseFormat(fs.readFileSync(path.join(root, 'events', category, name, 'format'), 'utf8'));
  } catch {
    return undefined;
  }
}

/** the events the tables cover, as 'category/name': every syscalls/* and raw_syscalls/*, and sched_process_exec|exit|fork */
export function coveredEvents(root: string): string[] {
  const list = (cat: string): string[] => {
    try {
      return fs.readdirSync(path.join(root, 'events', cat), { withFileTypes: true }).filter((d) => d.isDirectory()).map((d) => `${cat}/${d.name}`);
    } catch {
      return [];
    }
  };
  return [...list('syscalls'), ...list('raw_syscalls'), ...SCHED_EVENTS.map((e) => `sched/${e}`)].sort();
}

export const SCHED_EVENTS: readonly string[] = ['sched_process_exec', 'sched_process_exit', 'sched_process_fork'];
