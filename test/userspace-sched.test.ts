// Process events and bpf_get_current_task in the userspace backend (backends/userspace/SYSCALLS.md, "Process
// events"): matrix's bootstrap (tp/sched/sched_process_exec|exit, task->real_parent->tgid, task->exit_code) and
// execve (sys_enter/exit_execve, real_parent) unchanged, over a launched command that forks, execs (dash runs
// commands by vfork + execve) and exits with codes, field by field against the kernel backend's events for the
// same command, as root and as uid 65534 (routed). Pids differ between runs: each event's pid is replaced by its
// rank among the command's processes, and the launched command's own exec and exit are left out (the kernel
// backend spawns it before it attaches).
import t from 'tap';
import fs from 'node:fs';
import path from 'node:path';
import { spawnSync } from 'node:child_process';
import { CLI, ROOT } from './helpers.js';

const BOOTSTRAP = path.join(ROOT, 'matrix', 'build', 'bootstrap.wasm');
const EXECVE = path.join(ROOT, 'matrix', 'build', 'execve.wasm');
const SCRIPT = 'cat /etc/hostname >/dev/null; sh -c "exit 5"; /nonexistent-wasm-bpf-sched 2>/dev/null; /bin/true x; sh -c "exit 7"';
const NOBODY = ['setpriv', '--reuid=65534', '--regid=65534', '--clear-groups'];

type Ev = Record<string, unknown>;

function events(stdout: string): Ev[] {
  return stdout.split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l) as Ev);
}

/** the command's children's events, pids as ranks (the root: 'root'), durations dropped */
function comparable(evs: Ev[], root: number): string[] {
  const rank = new Map<number, string>([[root, 'root']]);
  const name = (p: unknown): string => {
    const n = Number(p);
    if (!rank.has(n)) rank.set(n, `child${rank.size}`);
    return rank.get(n)!;
  };
  return evs
    .filter((e) => Number(e.pid) !== root)
    .map((e) => {
      const { duration_ns: _d, ...rest } = e;
      return JSON.stringify({ ...rest, pid: name(e.pid), ppid: name(e.ppid) });
    });
}

/** the launched command's pid: the ppid of its children's events */
function rootOf(evs: Ev[]): number {
  const counts = new Map<number, number>();
  for (const e of evs) counts.set(Number(e.ppid), (counts.get(Number(e.ppid)) ?? 0) + 1);
  return [...counts].sort((a, b) => b[1] - a[1])[0]?.[0] ?? 0;
}

function run(app: string, backend: readonly string[], prefix: readonly string[] = []): { stdout: string; stderr: string } {
  const args = [...prefix, process.execPath, CLI, 'run', ...backend, app, '-j', '--', '/bin/sh', '-c', SCRIPT];
  const r = spawnSync(args[0]!, args.slice(1), { encoding: 'utf8', timeout: 90_000 });
  return { stdout: String(r.stdout), stderr: String(r.stderr) };
}

if (process.arch !== 'x64' || process.getuid?.() !== 0 || !fs.existsSync(BOOTSTRAP)) {
  t.pass('x86-64, root and matrix/build (make -C matrix) needed: the kernel backend is the reference');
} else {
  for (const [label, app] of [['bootstrap', BOOTSTRAP], ['execve', EXECVE]] as const) {
    t.test(`${label}: userspace (root, uid 65534) gives the kernel's events`, async (tt) => {
      const k = run(app, ['--backend', 'linux']);
      const kev = events(k.stdout);
      const kroot = rootOf(kev);
      const want = comparable(kev, kroot);
      tt.ok(want.length >= 4, `the kernel's reference: ${want.length} events`, { stderr: k.stderr });
      for (const [how, backend, prefix] of [
        ['root, --backend userspace', ['--backend', 'userspace'], []],
        ['uid 65534, routed', [], NOBODY],
      ] as const) {
        const u = run(app, [...backend], [...prefix]);
        const uev = events(u.stdout);
        const got = comparable(uev, rootOf(uev));
        tt.same(got, want, `${how}: the same events, field by field`, { stderr: u.stderr });
      }
    });
  }
}
