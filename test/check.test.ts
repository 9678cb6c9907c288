// The selector: `wasm-bpf check` on this host, and routing decisions against other systems' reports.
import t from 'tap';
import fs from 'node:fs';
import path from 'node:path';
import { spawnSync } from 'node:child_process';
import { BUILD, CLI, FIXTURES, ROOT, runCli } from './helpers.js';
import { probe } from '../src/probe/index.js';
import { loadObject } from '../src/object/loader.js';
import { planObject } from '../src/select/plan.js';

const M = path.join(ROOT, 'matrix', 'build');
const systems = path.join(FIXTURES, 'probe-systems');

t.test('check: an object this host runs, and one it cannot (kprobe)', async (t) => {
  const ok = runCli(['check', path.join(M, 'bootstrap.wasm')]);
  t.equal(ok.code, 0, ok.stderr);
  t.match(ok.stdout, /programs: handle_exec \(tp\/sched\/sched_process_exec\), handle_exit \(tp\/sched\/sched_process_exit\)/);
  t.match(ok.stdout, /plan: linux backend/);
  const no = runCli(['check', path.join(M, 'kprobe.wasm')]);
  t.equal(no.code, 1);
  t.match(no.stdout, /programs 'do_unlinkat' \(kprobe\/do_unlinkat\), 'do_unlinkat_exit' \(kretprobe\/do_unlinkat\) need attach mechanism kprobe .*CONFIG_KPROBES is not set/);
  t.equal(no.stdout.match(/CONFIG_KPROBES is not set/g)?.length, 1, 'one line for the missing capability, both programs named on it');
  const forced = runCli(['check', '--backend', 'linux', path.join(M, 'kprobe.bpf.o')]);
  t.equal(forced.code, 0, '--backend forces the choice');
  t.match(forced.stdout, /plan: linux backend \(--backend linux: chosen by the user\)/);
});

t.test('check --json', async (t) => {
  const r = runCli(['check', '--json', path.join(M, 'lsm.wasm')]);
  t.equal(r.code, 1);
  const j = JSON.parse(r.stdout) as { runnable: boolean; objects: Array<{ programs: Array<{ name: string }>; plan: { backend: string | null; blocking: unknown[] } }> };
  t.equal(j.runnable, false);
  t.equal(j.objects.length, 1);
  t.equal(j.objects[0]!.programs[0]!.name, 'lsm_bprm_check');
  t.equal(j.objects[0]!.plan.backend, null);
  t.ok(j.objects[0]!.plan.blocking.length >= 1);
});

t.test('check: bad input', async (t) => {
  const junk = path.join(BUILD, 'check-junk.bin');
  fs.writeFileSync(junk, 'no objects in here');
  const r = runCli(['check', junk]);
  t.equal(r.code, 2);
  t.match(r.stderr, /holds no eBPF ELF object/);
  t.equal(runCli(['check', '/nonexistent.wasm']).code, 2);
  t.equal(runCli(['check', '--frob']).code, 2);
});

t.test('routing on other systems: 5.4 arm64 without ringbuf, Debian 11, Windows', async (t) => {
  const bootstrap = loadObject(fs.readFileSync(path.join(M, 'bootstrap.bpf.o')));
  const ubuntu = planObject(probe({ root: path.join(systems, 'ubuntu-20.04-arm64') }), bootstrap);
  // no ring buffer before Linux 5.8: the selector plans the ringbuf -> perf buffer compat pass (compat/ringbuf)
  t.equal(ubuntu.backend, 'linux', 'bootstrap runs on 5.4 through the ringbuf -> perf compat pass');
  t.same(ubuntu.compat, ['ringbuf->perf']);
  t.match(ubuntu.reasons.join('\n'), /compat ringbuf->perf: map 'rb' \(ringbuf\): .*5\.8/);
  const execve = loadObject(fs.readFileSync(path.join(M, 'execve.bpf.o')));
  const onUbuntuPerf = planObject(probe({ root: path.join(systems, 'ubuntu-20.04-arm64') }), execve);
  t.not(onUbuntuPerf.blocking.some((b) => /perf_event_array/.test(b.subject)), true, 'a perf buffer is fine on 5.4');
  const debian = planObject(probe({ root: path.join(systems, 'debian-11-x86_64') }), bootstrap);
  t.equal(debian.blocking.length, 0, 'Debian 11 (5.10) has what bootstrap needs');
  const windows = planObject(probe({ root: path.join(systems, 'windows-11-x64') }), bootstrap);
  t.equal(windows.backend, null, 'no linux backend on Windows');
});

t.test('probe shows the compat steps a plan would apply, and why', async (t) => {
  const here = runCli(['probe', '--no-cache']);
  t.equal(here.code, 0, here.stderr);
  t.match(here.stdout, /ringbuf->perf +no +not needed: the kernel has BPF ring buffers/);
  t.match(here.stdout, /btfhub +no +not needed: vmlinux BTF from sysfs/);
  const assumed = runCli(['probe', '--assume-missing', 'ringbuf']);
  t.match(assumed.stdout, /ringbuf->perf +applies +ring buffers are missing \(assumed missing/);
  const old = runCli(['probe', '--json', '--root', path.join(systems, 'ubuntu-20.04-arm64')]);
  const j = JSON.parse(old.stdout) as { compat: Array<{ step: string; applies: boolean }> };
  t.same(j.compat.map((c) => [c.step, c.applies]), [['ringbuf->perf', true], ['btfhub', true], ['ptregs', true]], 'a 5.4 kernel without BTF: both fallbacks');
});

t.test('as uid 65534: run and check name the kernel backend\'s cause and fix (never an empty list), each cause said once', { skip: process.getuid?.() !== 0 && 'needs root to change users' }, async (t) => {
  const nobody = (args: string[]) =>
    spawnSync('env', ['-u', 'NODE_OPTIONS', 'setpriv', '--reuid=65534', '--regid=65534', '--clear-groups', process.execPath, CLI, ...args], {
      encoding: 'utf8',
      cwd: '/',
      // NODE_OPTIONS: '' (tap's process-info hook would write into .tap/ as uid 65534 at exit: EACCES)
      env: { ...process.env, HOME: '/nonexistent', XDG_CACHE_HOME: '', NO_COLOR: '1', NODE_OPTIONS: '' },
      timeout: 60_000,
    });
  const wasm = path.join(M, 'bootstrap.wasm');
  const run = nobody(['run', wasm, '-t', '1']);
  t.equal(run.status, 1, 'run exits 1');
  t.match(run.stderr, /no backend on this host can run the object:\n {2}- the linux backend: bpf\(\) not permitted for uid 65534 \(EPERM[^\n]*; fix: run as root, or grant CAP_BPF and CAP_PERFMON/, 'run: the kernel backend\'s cause and fix');
  t.match(run.stderr, /\n {2}- the userspace backend: it could run every program [^\n]*but this run traces no process[^\n]*; fix: name the command to trace after the app: wasm-bpf run APP\.wasm \[ARGS\] -- COMMAND/, 'run: and why not the userspace backend (bootstrap\'s sched events run there, in a launched command)');
  const check = nobody(['check', wasm]);
  t.equal(check.status, 1);
  t.match(check.stdout, /plan: refused: no backend on this host can run the object:\n {4}- the linux backend: bpf\(\) not permitted for uid 65534 [^\n]*; fix: run as root/, 'check: the same cause and fix');
  const cause = /bpf\(\) not permitted for uid 65534 \(EPERM[^)]*\)/g;
  t.equal(check.stdout.match(cause)?.length, 2, 'the cause once for the needs it leaves unknown, once in the refusal (not once per program and map)');
  t.match(check.stdout, /\? bpf\(\) not permitted for uid 65534 [^\n]*; so, unknown:\n {6}program type tracepoint for programs 'handle_exec' \(tp\/sched\/sched_process_exec\), 'handle_exit' \(tp\/sched\/sched_process_exit\)\n {6}attach mechanism tracepoint for programs /, 'the needs it leaves unknown listed under it');
  const j = JSON.parse(nobody(['check', '-j', wasm]).stdout) as { runnable: boolean; objects: Array<{ plan: { unavailable: Array<{ backend: string; reason: string; fix?: string }> } }> };
  t.equal(j.runnable, false);
  t.match(j.objects[0]!.plan.unavailable, [{ backend: 'linux', reason: /not permitted for uid 65534/, fix: /root/ }, { backend: 'userspace' }], '--json: each backend passed over, with its reason');
});
