// Process events and the task_struct image in the userspace backend on a real arm64 kernel: matrix's bootstrap
// (tp/sched/sched_process_exec|exit, task->real_parent->tgid, task->exit_code) and execve (sys_enter/exit_execve,
// task->real_parent->tgid) unchanged over a launched `sh -c '...'` that forks, execs and exits with codes, in the
// matrix's arm64 6.1 qemu guest (matrix/guests/boot.sh). The agent emits no events on arm64, so the command goes to
// the ptrace tier (backends/userspace/attach/tier.ts), whose ptrace events run the programs (native/agent/ptrace/
// sched.c) with the guest kernel's layouts (6.1: no group_dead). Checked: as root (--backend userspace) and as
// uid 65534 (routed), the shell's children's events equal the kernel backend's field by field, each pid replaced
// by its rank (the shell prints its own pid first), durations aside; no tracer left. Needs qemu-system-aarch64 and
// the cross compiler (matrix/guests/setup-host.sh): without them this test fails, it does not skip. Run it with
// WASM_BPF_MATRIX_CACHE set to a cache of your own when another run uses the default one.
import t from 'tap';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { spawnSync } from 'node:child_process';
import { ROOT } from './helpers.js';

t.setTimeout(1_200_000);

const RUNS = ['kernel', 'root', 'nobody'] as const;
// a builtin-only busy loop first: execve's perf buffer opens after its programs attach
const SCRIPT = 'echo sh $$; i=0; while [ $i -lt 20000 ]; do i=$((i+1)); done; cat /etc/hostname >/dev/null; sh -c "exit 5"; /nonexistent-wasm-bpf-sched 2>/dev/null; /bin/true x; sh -c "exit 7"; exit 0';

type Ev = Record<string, unknown>;

t.test('bootstrap and execve on launched commands in the arm64 6.1 guest', async (tt) => {
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'wasm-bpf-arm64-sched-'));
  tt.teardown(() => fs.rmSync(tmp, { recursive: true, force: true }));
  const script = path.join(tmp, 'guest.sh');
  fs.writeFileSync(script, [
    'echo "arch $(uname -m) kernel $(uname -r)"',
    'M=$WASM_BPF_ROOT/matrix/build; W=/tmp/sc; mkdir -p $W/home; chmod 755 $W; chown 65534:65534 $W/home',
    `CMD='${SCRIPT}'`,
    'CLI="$WASM_BPF_ROOT/bin/wasm-bpf.js"',
    `AS='const [f,...a]=process.argv.slice(1);const c=require("node:child_process").spawn(f,a,{stdio:"inherit",uid:65534,gid:65534,cwd:"/tmp/sc/home",env:{...process.env,HOME:"/tmp/sc/home"}});c.on("exit",(code,sig)=>process.exit(sig?128:code));'`,
    'run() { name=$1; shift; "$@" > $W/$name.out 2> $W/$name.err; echo "status $name $?"; sed "s/^/$name out: /" $W/$name.out; grep -v "^wasm-bpf: \\(probe\\|select\\|btf\\)" $W/$name.err | head -40 | sed "s/^/$name err: /"; }',
    'for app in bootstrap execve; do X=; [ $app = execve ] && X=-x',
    '  run $app-kernel $WASM_BPF_NODE $CLI run --backend linux $M/$app.wasm -j $X -- /bin/sh -c "$CMD"',
    '  run $app-root $WASM_BPF_NODE $CLI run -v --backend userspace $M/$app.wasm -j $X -- /bin/sh -c "$CMD"',
    '  run $app-nobody $WASM_BPF_NODE -e "$AS" $WASM_BPF_NODE $CLI run -v $M/$app.wasm -j $X -- /bin/sh -c "$CMD"',
    'done',
    'sleep 1',
    'n=0; for p in /proc/[0-9]*; do grep -q wbpf-ptrace $p/cmdline 2>/dev/null && n=$((n+1)); done; echo "tracers left $n"',
    '',
  ].join('\n'));
  const r = spawnSync('bash', [path.join(ROOT, 'matrix', 'guests', 'boot.sh'), 'arm64-6.1', script], {
    encoding: 'utf8', timeout: 1_100_000, env: { ...process.env, TIMEOUT: '1000' },
  });
  const out = r.stdout ?? '';
  tt.equal(r.status, 0, 'the guest booted and ran the script', { stderr: (r.stderr ?? '').slice(-3000), stdout: out.slice(-3000) });
  tt.match(out, /^arch aarch64 kernel 6\.1\./m, 'an arm64 6.1 kernel');
  const lines = (run: string, kind: 'out' | 'err'): string[] => out.split('\n').filter((l) => l.startsWith(`${run} ${kind}: `)).map((l) => l.slice(run.length + kind.length + 3));
  /** the shell's children's events, pids ranked, the shell's pid as 'sh' */
  const shaped = (run: string): string[] => {
    const sh = Number(lines(run, 'out').find((l) => l.startsWith('sh '))?.slice(3) ?? 0);
    const rank = new Map<number, string>();
    const name = (p: unknown): string => {
      const n = Number(p);
      if (!rank.has(n)) rank.set(n, `child${rank.size + 1}`);
      return rank.get(n)!;
    };
    return lines(run, 'out').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l) as Ev)
      .filter((e) => e.event !== 'attached' && Number(e.pid) !== sh && Number(e.ppid) === sh)
      .map(({ duration_ns: _d, ...e }) => JSON.stringify({ ...e, pid: name(e.pid), ppid: 'sh' }));
  };
  for (const app of ['bootstrap', 'execve'] as const) {
    for (const run of RUNS) tt.match(out, new RegExp(`^status ${app}-${run} 0$`, 'm'), `${app} ${run}: the app and its command exit 0`, { stdout: out.slice(-4000) });
    const reference = shaped(`${app}-kernel`);
    tt.ok(reference.length >= (app === 'bootstrap' ? 7 : 4), `${app}: the kernel backend's reference: ${reference.length} events`, { reference });
    for (const run of ['root', 'nobody'] as const) {
      const got = shaped(`${app}-${run}`);
      tt.same(got, reference.map((l) => (run === 'nobody' ? l.replace(/"uid":0,/, '"uid":65534,') : l)), `${app} ${run}: the shell's children's events equal the kernel backend's, field by field`);
      const err = lines(`${app}-${run}`, 'err').join('\n');
      tt.match(err, /ptrace tier: .*no syscall sites on arm64/, `${app} ${run}: --verbose says the command went to the ptrace tier`);
      tt.notMatch(err, /disabled|not supported/, `${app} ${run}: no program disabled or refused`);
    }
  }
  tt.match(out, /^tracers left 0$/m, 'no wbpf-ptrace is left in the guest');
});
