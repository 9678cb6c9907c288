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
// a builtin-only busy loop first (no exec, ~0.1 s): execve's perf buffer opens after its programs attach, and a
// record sent before that is dropped by either backend (the kernel's too)
const SCRIPT = 'i=0; while [ $i -lt 40000 ]; do i=$((i+1)); done; cat /etc/hostname >/dev/null; sh -c "exit 5"; /nonexistent-wasm-bpf-sched 2>/dev/null; /bin/true x; sh -c "exit 7"';
const NOBODY = ['setpriv', '--reuid=65534', '--regid=65534', '--clear-groups'];

type Ev = Record<string, unknown>;

function events(stdout: string): Ev[] {
  return stdout.split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l) as Ev);
}

/** the command's children's events (ppid: the launched command), durations dropped */
function children(evs: Ev[], root: number): Ev[] {
  return evs.filter((e) => e.event !== 'attached' && Number(e.pid) !== root && Number(e.ppid) === root);
}

/** events as strings, each pid replaced by its rank in this list, the launched command's by 'root' */
function ranked(evs: Ev[]): string[] {
  const rank = new Map<number, string>();
  const name = (p: unknown): string => {
    const n = Number(p);
    if (!rank.has(n)) rank.set(n, `child${rank.size + 1}`);
    return rank.get(n)!;
  };
  return evs.map((e) => {
    const { duration_ns: _d, ...rest } = e;
    return JSON.stringify({ ...rest, pid: name(e.pid), ppid: 'root' });
  });
}

/** the kernel's reference ran as root: as uid 65534, the uid field is 65534 */
function uidAs(uid: number): (line: string) => string {
  return (line) => line.replace(/"uid":0,/, `"uid":${uid},`);
}

/** the launched command's pid (--verbose: "launched pid N"): the kernel backend traces every process */
function rootOf(stderr: string): number {
  return Number(/launched pid (\d+)/.exec(stderr)?.[1] ?? 0);
}

/** uid 65534's runs: a HOME it may write, and not tap's NODE_OPTIONS (whose hooks write where it may not) */
function nobodyEnv(): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env, HOME: '/tmp' };
  delete env['NODE_OPTIONS'];
  return env;
}

function run(app: string, backend: readonly string[], prefix: readonly string[] = []): { stdout: string; stderr: string } {
  const args = [...prefix, process.execPath, CLI, 'run', '--verbose', ...backend, app, '-j', '--', '/bin/sh', '-c', SCRIPT];
  const r = spawnSync(args[0]!, args.slice(1), { encoding: 'utf8', timeout: 90_000, env: prefix.length ? nobodyEnv() : process.env });
  return { stdout: String(r.stdout), stderr: String(r.stderr) };
}

if (process.arch !== 'x64' || process.getuid?.() !== 0 || !fs.existsSync(BOOTSTRAP)) {
  t.pass('x86-64, root and matrix/build (make -C matrix) needed: the kernel backend is the reference');
} else {
  for (const [label, app] of [['bootstrap', BOOTSTRAP], ['execve', EXECVE]] as const) {
    t.test(`${label}: userspace (root, uid 65534) gives the kernel's events`, async (tt) => {
      const k = run(app, ['--backend', 'linux']);
      const kev = events(k.stdout);
      const kroot = rootOf(k.stderr);
      const want = children(kev, kroot);
      tt.ok(want.length >= 5, `the kernel's reference: ${want.length} events`, { stderr: k.stderr });
      for (const [how, backend, prefix] of [
        ['root, --backend userspace', ['--backend', 'userspace'], []],
        ['uid 65534, routed', [], NOBODY],
      ] as const) {
        const u = run(app, [...backend], [...prefix]);
        if (!backend.length) tt.match(u.stderr, /userspace: the kernel cannot run the object; the userspace backend runs every program of it, inside the launched command/, `${how}: routed to the userspace backend`);
        const uev = events(u.stdout);
        const got = children(uev, rootOf(u.stderr));
        // should the perf buffer still open after the first exec (see SCRIPT), the shorter list must be the end of the longer
        const n = Math.min(got.length, want.length);
        tt.ok(n >= (label === 'bootstrap' ? 9 : 5), `${how}: ${got.length} events (kernel: ${want.length})`, { stderr: u.stderr, stdout: u.stdout });
        tt.same(ranked(got.slice(got.length - n)), ranked(want.slice(want.length - n)).map(uidAs(prefix.length ? 65534 : 0)), `${how}: the kernel's events, field by field`);
      }
    });
  }
}
