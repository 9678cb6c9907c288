// sched_process_fork through the CLI on a dynamically linked command (x86-64): an app with a fork program
// (test/fixtures/userspace/forksnoop: the record's parent_pid and child_pid, and the current task's ids and comm)
// launches its command under the ptrace tier, the agent emitting no fork events (backends/userspace/attach/tier.ts),
// as root (--backend userspace) and as uid 65534 (routed). The shell's forks equal the kernel backend's field by
// field, each pid replaced by its rank (the shell prints its own pid first). The kernel run's command is under the
// preloaded agent, whose own threads' forks are left out by comparing the shell's forks only.
import t from 'tap';
import fs from 'node:fs';
import path from 'node:path';
import { execFileSync, spawnSync } from 'node:child_process';
import { BUILD, CLI, FIXTURES, ROOT, buildBpf, buildGuest } from './helpers.js';

const OUT = path.join(BUILD, 'userspace-fork-cli');
const SRC = path.join(FIXTURES, 'userspace', 'forksnoop');
const SCRIPT = 'echo sh $$; i=0; while [ $i -lt 40000 ]; do i=$((i+1)); done; /bin/true; sh -c "exit 3"; cat /etc/hostname >/dev/null; exit 0';
const NOBODY = ['env', '-u', 'NODE_OPTIONS', 'setpriv', '--reuid=65534', '--regid=65534', '--clear-groups'];

type Ev = Record<string, unknown>;

if (process.arch !== 'x64') {
  t.pass('x86_64 only (arm64: test/userspace-sched-arm64.test.ts)');
} else {
  t.setTimeout(240_000);
  fs.mkdirSync(OUT, { recursive: true });
  fs.chmodSync(OUT, 0o755);
  const obj = buildBpf(path.join(SRC, 'forksnoop.bpf.c'), path.join(OUT, 'forksnoop.bpf.o'), ['-D__TARGET_ARCH_x86', '-I', SRC]);
  fs.writeFileSync(path.join(OUT, 'forksnoop.skel.h'), execFileSync(process.execPath, [CLI, 'gen', 'skeleton', obj]));
  const app = buildGuest(path.join(SRC, 'forksnoop.c'), path.join(OUT, 'forksnoop.wasm'), ['-I', OUT, '-I', SRC, '-I', path.join(ROOT, 'matrix', 'apps', 'common')], [path.join(OUT, 'forksnoop.skel.h')]);
  fs.chmodSync(app, 0o644);

  function run(backend: readonly string[], prefix: readonly string[] = []): { forks: string[]; stderr: string } {
    const args = [...prefix, process.execPath, CLI, 'run', '--verbose', ...backend, app, '--', '/bin/sh', '-c', SCRIPT];
    const env: NodeJS.ProcessEnv = { ...process.env };
    if (prefix.length) {
      env['HOME'] = '/tmp';
      delete env['NODE_OPTIONS'];
    }
    const r = spawnSync(args[0]!, args.slice(1), { encoding: 'utf8', timeout: 90_000, env });
    const out = String(r.stdout);
    const sh = Number(/^sh (\d+)$/m.exec(out)?.[1] ?? 0);
    const rank = new Map<number, string>([[sh, 'sh']]);
    const name = (p: unknown): string => {
      const n = Number(p);
      if (!rank.has(n)) rank.set(n, `child${rank.size}`);
      return rank.get(n)!;
    };
    const forks = out.split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l) as Ev).filter((e) => e.event === 'fork' && Number(e.parent_pid) === sh)
      .map((e) => JSON.stringify({ ...e, parent_pid: name(e.parent_pid), child_pid: name(e.child_pid), pid: name(e.pid), tid: name(e.tid) }));
    return { forks, stderr: String(r.stderr) };
  }

  t.test('forksnoop: userspace (root, uid 65534) gives the kernel\'s fork events', async (tt) => {
    const k = run(['--backend', 'linux']);
    tt.equal(k.forks.length, 3, 'the kernel\'s reference: the shell forks 3 children', { stderr: k.stderr });
    tt.ok(k.forks.every((f) => f.includes('"parent_pid":"sh"') && f.includes('"pid":"sh","tid":"sh","comm":"sh"')), 'in the parent\'s context');
    for (const [how, backend, prefix] of [['root, --backend userspace', ['--backend', 'userspace'], []], ['uid 65534, routed', [], NOBODY]] as const) {
      const u = run([...backend], [...prefix]);
      tt.same(u.forks, k.forks, `${how}: the kernel's events, field by field`, { stderr: u.stderr });
      tt.match(u.stderr, /ptrace tier: .*sched_process_fork program: the agent emits no fork events, the ptrace tier does/, `${how}: --verbose says the command went to the ptrace tier, and why`);
      tt.notMatch(u.stderr, /sched hook \d+ \(sched_process_fork\) disabled/, `${how}: no program disabled`);
      if (prefix.length) tt.match(u.stderr, /the userspace backend runs every program of it/, `${how}: routed to the userspace backend`);
    }
  });

  t.test('--userspace-tier agent: the agent\'s refusal, said so', async (tt) => {
    const r = spawnSync(process.execPath, [CLI, 'run', '--backend', 'userspace', '--userspace-tier', 'agent', app, '--', '/bin/true'], { encoding: 'utf8', timeout: 60_000 });
    tt.not(r.status, 0, 'the run fails');
    tt.match(String(r.stderr), /the agent emits no sched_process_fork.*the ptrace tier does/, 'the agent says why and what does');
  });
}
