// What the userspace uprobe tests share: the matrix uprobe app's events parsed from its output, and the
// first bytes of uprobe_target_add as the binary has them and as a running process has them (a hook
// patches them; the end of a run must give them back).
import fs from 'node:fs';
import { resolveUprobe } from '../backends/userspace/attach/symbols.js';
import { processSites } from '../backends/userspace/attach/procmaps.js';

export interface Events {
  /** 'a=.. b=..' of each UPROBE line, in order */
  entries: string[];
  /** 'ret=..' of each URETPROBE line, in order */
  returns: string[];
  pids: Set<string>;
}

/** the UPROBE / URETPROBE lines of the uprobe app (matrix/apps/uprobe) */
export function events(stdout: string): Events {
  const lines = stdout.split('\n');
  const entries = lines.filter((l) => l.startsWith('UPROBE '));
  const returns = lines.filter((l) => l.startsWith('URETPROBE '));
  const pids = new Set([...entries, ...returns].map((l) => /pid=(\d+)/.exec(l)?.[1] ?? '?'));
  return { entries: entries.map((l) => l.replace(/^UPROBE pid=\d+ /, '')), returns: returns.map((l) => l.replace(/^URETPROBE pid=\d+ /, '')), pids };
}

function readAt(file: string, offset: number, n: number): string {
  const fd = fs.openSync(file, 'r');
  try {
    const b = Buffer.alloc(n);
    fs.readSync(fd, b, 0, n, offset);
    return b.toString('hex');
  } finally {
    fs.closeSync(fd);
  }
}

function target(binary: string): ReturnType<typeof resolveUprobe> {
  return resolveUprobe({ binary, func: 'uprobe_target_add', offset: 0, retprobe: false, sleepable: false });
}

/** the first 16 bytes of uprobe_target_add in the binary */
export function fileBytes(binary: string): string {
  return readAt(binary, target(binary).fileOffset, 16);
}

/** the first 16 bytes of uprobe_target_add as process pid has them (read from /proc/PID/mem) */
export function entryBytes(pid: number, binary: string): string {
  const r = target(binary);
  const site = processSites(pid, r).sites[0];
  if (!site) throw new Error(`uprobe_target_add (${binary} ${r.dev}:${r.ino}) is not mapped in ${pid}: ${fs.readFileSync(`/proc/${pid}/maps`, 'utf8')}`);
  return readAt(`/proc/${pid}/mem`, site.address, 16);
}
