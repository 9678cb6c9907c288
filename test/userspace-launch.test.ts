// `wasm-bpf run APP.wasm ARGS -- COMMAND`: the matrix's uprobe app (unchanged) traces a launched target
// on the userspace backend (the agent inside the target) and on the kernel, with the same events; as an
// ordinary user (uid 65534) the selector routes it to the userspace backend on its own. Targets with an
// endbr64, a push %rbp and a plain (rip-relative mov) entry; and entries the inline hook refuses (an unknown
// instruction at +2, a 4-byte function), which the agent hooks with its trap tier (an int3), launched and joined (--pid).
import t from 'tap';
import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { BUILD, CLI, FIXTURES, ROOT, runCli, startCli, nobodyEnv } from './helpers.js';
import { entryBytes, events, fileBytes } from './uprobe-common.js';

const APP = path.join(ROOT, 'matrix', 'build', 'uprobe.wasm');
const KPROBE_APP = path.join(ROOT, 'matrix', 'build', 'kprobe.wasm');
const OUT = path.join(BUILD, 'userspace-launch');
const SRC = path.join(FIXTURES, 'agent', 'uprobe-target.c');

/** entry kind -> compiler and flags */
const TARGETS: Record<string, string[]> = {
  endbr64: ['gcc', '-O2', '-fcf-protection=full'],
  push: ['clang-16', '-O2', '-fno-omit-frame-pointer', '-fcf-protection=none'],
  plain: ['gcc', '-O2', '-fcf-protection=none'],
  'refused (lfence at +2)': ['gcc', '-O2', '-fcf-protection=none', '-DREFUSED_ENTRY=1'],
  'refused (4 bytes long)': ['gcc', '-O2', '-fcf-protection=none', '-DREFUSED_ENTRY=2'],
};
/** the entries the inline hook refuses: the trap tier takes them */
const TRAP_KINDS = ['refused (lfence at +2)', 'refused (4 bytes long)'];

/** sends the app a signal and waits for its own exit (not for its stdout, which the launched command shares) */
async function signalled(run: ReturnType<typeof startCli>, sig: NodeJS.Signals): Promise<{ code: number | null; signal: NodeJS.Signals | null }> {
  const exit = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => {
    if (run.child.exitCode !== null || run.child.signalCode !== null) resolve({ code: run.child.exitCode, signal: run.child.signalCode });
    else run.child.once('exit', (code, signal) => resolve({ code, signal }));
  });
  run.child.kill(sig);
  return exit;
}

async function waitGone(pid: number, ms: number): Promise<void> {
  const end = Date.now() + ms;
  while (fs.existsSync(`/proc/${pid}`) && Date.now() < end) await new Promise((r) => setTimeout(r, 50));
  if (fs.existsSync(`/proc/${pid}`)) throw new Error(`pid ${pid} still runs after ${ms} ms`);
}

function asNobody(args: string[], timeout = 90_000): ReturnType<typeof spawnSync> {
  return spawnSync('env', ['-u', 'NODE_OPTIONS', 'setpriv', '--reuid=65534', '--regid=65534', '--clear-groups', process.execPath, CLI, ...args], {
    encoding: 'utf8',
    timeout,
    env: nobodyEnv(),
  });
}

if (process.arch !== 'x64') {
  t.pass('the agent hooks x86-64 only for now');
} else {
  t.setTimeout(600_000);
  fs.mkdirSync(OUT, { recursive: true });
  const built: Record<string, string> = {};
  for (const [kind, [cc, ...flags]] of Object.entries(TARGETS)) {
    const out = path.join(OUT, `target-${kind.replace(/\W+/g, '-').replace(/-$/, '')}`);
    const r = spawnSync(cc!, [...flags, SRC, '-o', out, '-lpthread'], { encoding: 'utf8' });
    if (r.status !== 0) throw new Error(`building the ${kind} target: ${r.stderr}`);
    built[kind] = out;
  }
  if (!fs.existsSync(APP)) throw new Error(`${APP} is not built: make -C matrix`);

  for (const [kind, target] of Object.entries(built)) {
    t.test(`userspace backend, ${kind} entry: every call's entry and return`, async (tt) => {
      const r = runCli(['run', '--backend', 'userspace', APP, target, '--', target, '2', '3', '5'], { timeout: 90_000 });
      tt.equal(r.code, 0, 'exit status 0 (the command\'s)', { stderr: r.stderr });
      tt.match(r.stdout, /uprobe-target: uprobe_target_add\(2, 3\) = 5, 5 calls/, 'the target ran to its end');
      const ev = events(r.stdout);
      tt.same(ev.entries, Array(5).fill('a=2 b=3'), '5 entry events, with the arguments');
      tt.same(ev.returns, Array(5).fill('ret=5'), '5 return events, with the return value');
      tt.equal(ev.pids.size, 1, 'one pid: the launched target\'s');
    });
  }

  t.test('the kernel gives the same events for a launched command (root)', async (tt) => {
    const target = built['endbr64']!;
    const kernel = runCli(['run', '--backend', 'linux', APP, target, '--', target, '2', '3', '5'], { timeout: 90_000 });
    tt.equal(kernel.code, 0, 'exit 0', { stderr: kernel.stderr });
    const user = runCli(['run', '--backend', 'userspace', APP, target, '--', target, '2', '3', '5'], { timeout: 90_000 });
    tt.same(events(user.stdout).entries, events(kernel.stdout).entries, 'same entry events');
    tt.same(events(user.stdout).returns, events(kernel.stdout).returns, 'same return events');
    tt.equal(events(kernel.stdout).entries.length, 5, 'the kernel saw every call (the command waited for the attach)');
  });

  for (const kind of TRAP_KINDS) {
    t.test(`trap tier, ${kind}: the same events as the kernel's uprobe, and --verbose names the tier`, async (tt) => {
      const target = built[kind]!;
      const kernel = runCli(['run', '--backend', 'linux', APP, target, '--', target, '4', '9', '7'], { timeout: 90_000 });
      tt.equal(kernel.code, 0, 'kernel: exit 0', { stderr: kernel.stderr });
      const user = runCli(['run', '--verbose', '--backend', 'userspace', APP, target, '--', target, '4', '9', '7'], { timeout: 90_000 });
      tt.equal(user.code, 0, 'userspace: exit 0 (the command\'s)', { stderr: user.stderr });
      tt.match(user.stdout, /uprobe-target: uprobe_target_add\(4, 9\) = 13, 7 calls/, 'the target ran to its end');
      tt.same(events(user.stdout).entries, Array(7).fill('a=4 b=9'), '7 entry events, with the arguments');
      tt.same(events(user.stdout).returns, Array(7).fill('ret=13'), '7 return events, with the return value');
      tt.same(events(user.stdout).entries, events(kernel.stdout).entries, 'same entry events as the kernel');
      tt.same(events(user.stdout).returns, events(kernel.stdout).returns, 'same return events as the kernel');
      tt.match(user.stderr, /hooked \S+:uprobe_target_add in pid \d+: trap hook \(an int3 per hit, ~2-3 us: the inline hook refused this entry\) \(hook \d+ at 0x[0-9a-f]+ \(trap hook: ~2-3 us per hit; the inline hook was refused: WBPF_HOOK_E(DECODE|SHORT): /,
        '--verbose names the trap tier and why', { stderr: user.stderr });
    });
  }

  t.test('trap tier: a command that sets its own SIGTRAP handler after the hook and blocks every signal', async (tt) => {
    const target = path.join(OUT, 'trap-late');
    const cc = spawnSync('gcc', ['-O2', path.join(FIXTURES, 'agent', 'trap-late.c'), '-o', target], { encoding: 'utf8' });
    tt.equal(cc.status, 0, 'built', { stderr: cc.stderr });
    const r = runCli(['run', '--backend', 'userspace', APP, target, '--', target], { timeout: 90_000 });
    tt.equal(r.code, 0, 'exit 0: both calls right, its handler got its own int3 only', { stdout: r.stdout, stderr: r.stderr });
    tt.match(r.stdout, /^trap-late: own int3s 1$/m, 'its own int3 reached its handler');
    tt.same(events(r.stdout).entries, ['a=1 b=2', 'a=3 b=4'], 'both calls traced, before and after it took SIGTRAP');
    tt.same(events(r.stdout).returns, ['ret=3', 'ret=7'], 'and their returns');
  });

  t.test('trap tier, 8 threads: every call counted', async (tt) => {
    const target = built['refused (lfence at +2)']!;
    const r = runCli(['run', '--backend', 'userspace', APP, target, '--', target, '1', '1', '500', '0', '8'], { timeout: 120_000 });
    tt.equal(r.code, 0, 'exit 0', { stderr: r.stderr });
    const ev = events(r.stdout);
    tt.equal(ev.entries.length, 4000, '4000 entries');
    tt.equal(ev.returns.length, 4000, '4000 returns');
  });

  t.test('8 threads: every call counted', async (tt) => {
    const target = built['endbr64']!;
    const r = runCli(['run', '--backend', 'userspace', APP, target, '--', target, '1', '1', '500', '0', '8'], { timeout: 120_000 });
    tt.equal(r.code, 0, 'exit 0', { stderr: r.stderr });
    const ev = events(r.stdout);
    tt.equal(ev.entries.length, 4000, '4000 entries');
    tt.equal(ev.returns.length, 4000, '4000 returns');
  });

  t.test('an ordinary user (uid 65534): routed to the userspace backend', async (tt) => {
    const target = built['push']!;
    const r = asNobody(['run', '-v', APP, target, '--', target, '4', '5', '3']);
    tt.equal(r.status, 0, 'exit 0', { stderr: r.stderr });
    tt.match(String(r.stderr), /selector: userspace: the kernel cannot run the object/, 'the selector says why');
    const ev = events(String(r.stdout));
    tt.same(ev.entries, Array(3).fill('a=4 b=5'), 'entries');
    tt.same(ev.returns, Array(3).fill('ret=9'), 'returns');
  });

  t.test('an ordinary user without a command: the refusal names the fix', async (tt) => {
    const r = asNobody(['run', APP, built['plain']!], 60_000);
    tt.not(r.status, 0, 'fails');
    tt.match(String(r.stderr), /the userspace backend: .*traces no process.*fix: .*-- COMMAND/s, 'says to launch the command');
    tt.match(String(r.stderr), /the linux backend: .*fix: /s, 'and why the kernel cannot');
  });

  t.test('check --launch shows the plan an ordinary user gets', async (tt) => {
    const r = asNobody(['check', '--launch', APP], 60_000);
    tt.equal(r.status, 0, 'can run', { stderr: r.stderr });
    tt.match(String(r.stdout), /plan: userspace backend \(.*inside the launched command\)/, 'the userspace backend, inside the launched command');
    const without = asNobody(['check', APP], 60_000);
    tt.equal(without.status, 1, 'without --launch: cannot run');
    tt.match(String(without.stdout), /the userspace backend: .*traces no process/, 'and says why');
  });

  t.test('an ordinary user with a kprobe app: one sentence per backend, with the fix', async (tt) => {
    if (!fs.existsSync(KPROBE_APP)) throw new Error(`${KPROBE_APP} is not built`);
    const r = asNobody(['run', KPROBE_APP, '--', '/bin/true'], 60_000);
    tt.not(r.status, 0, 'fails');
    tt.match(String(r.stderr), /the linux backend: .*(CAP_BPF|root)/s, 'the kernel needs privileges: says which');
    tt.match(String(r.stderr), /the userspace backend: it cannot run kprobe, kretprobe programs/, 'the userspace backend cannot run kprobes');
  });

  t.test('Ctrl-C of the app: hooks removed, the command runs on to its end', async (tt) => {
    const target = built['endbr64']!;
    const run = startCli(['run', '--backend', 'userspace', APP, target, '--', target, '1', '2', '2000', '0', '1', '5000']);
    tt.teardown(() => void run.interrupt('SIGKILL'));
    const first = await run.waitFor(/^UPROBE pid=\d+ a=1 b=2$/, 60_000);
    const pid = Number(/pid=(\d+)/.exec(first)![1]);
    tt.not(entryBytes(pid, target), fileBytes(target), 'while attached, the entry is patched');
    // the app's own exit (its stdout stays open: the command holds it until its end)
    const r = await signalled(run, 'SIGINT');
    tt.equal(r.code, 130, 'the app exits 130');
    tt.ok(fs.existsSync(`/proc/${pid}`), 'the command is still running');
    tt.equal(entryBytes(pid, target), fileBytes(target), 'the entry holds its original bytes again');
    const hits = run.lines(/^UPROBE /).length;
    tt.ok(hits < 2000, `the app saw ${hits} of 2000 calls before it stopped`);
    await waitGone(pid, 30_000);
    tt.match(run.stdout, /uprobe-target: uprobe_target_add\(1, 2\) = 3, 2000 calls/, 'the command ran on, every call right, to its end');
  });

  t.test('kill -9 of the host during hits: the command keeps running and its function works', async (tt) => {
    const target = built['push']!;
    const run = startCli(['run', '--backend', 'userspace', APP, target, '--', target, '3', '4', '300', '0', '2', '5000']);
    tt.teardown(() => void run.interrupt('SIGKILL'));
    const first = await run.waitFor(/^URETPROBE pid=\d+ ret=7$/, 60_000);
    const pid = Number(/pid=(\d+)/.exec(first)![1]);
    const r = await signalled(run, 'SIGKILL');
    tt.equal(r.signal, 'SIGKILL', 'the host was killed');
    tt.ok(fs.existsSync(`/proc/${pid}`), 'the command is still running');
    const t0 = Date.now();
    while (entryBytes(pid, target) !== fileBytes(target) && Date.now() - t0 < 1000) await new Promise((res) => setTimeout(res, 20));
    tt.equal(entryBytes(pid, target), fileBytes(target), `the agent noticed and restored the entry within a second (${Date.now() - t0} ms)`);
    await waitGone(pid, 15_000);
    tt.match(run.stdout, /uprobe-target: uprobe_target_add\(3, 4\) = 7, 600 calls/, 'the command ran to its end, every call right');
  });

  t.test('a full ring buffer: every event is delivered or counted as a drop, and the drops are reported', async (tt) => {
    const target = built['endbr64']!;
    const r = runCli(['run', '--backend', 'userspace', APP, target, '--', target, '1', '1', '100000'], { timeout: 120_000 });
    tt.equal(r.code, 0, 'exit 0', { stderr: r.stderr });
    const ev = events(r.stdout);
    const drops = Number(/map 'rb': (\d+) records refused because it was full/.exec(r.stderr)?.[1] ?? 0);
    tt.equal(ev.entries.length + ev.returns.length + drops, 200_000, `${ev.entries.length} + ${ev.returns.length} delivered + ${drops} dropped = 200000 events`);
  });

  t.test('the policy\'s uprobe binaries hold for the userspace backend', async (tt) => {
    const target = built['plain']!;
    const r = runCli(['run', '--backend', 'userspace', '--allow-uprobe', '/usr/bin', APP, target, '--', target, '1', '2', '3'], { timeout: 60_000 });
    tt.match(r.stderr, /uprobe binary .*target-plain is outside the allowed uprobe binaries \(\/usr\/bin\)/, 'the attach is refused, naming the binary and the allow-list');
    tt.equal(events(r.stdout).entries.length, 0, 'no event');
    const ok = runCli(['run', '--backend', 'userspace', '--allow-uprobe', target, APP, target, '--', target, '1', '2', '3'], { timeout: 60_000 });
    tt.equal(events(ok.stdout).entries.length, 3, 'allowed: the events');
  });

  t.test('--pid: an ordinary user joins its own running process; Ctrl-C leaves it running as before', async (tt) => {
    const target = built['endbr64']!;
    const child = spawn('setpriv', ['--reuid=65534', '--regid=65534', '--clear-groups', target, '6', '7', '400', '300', '1', '10000'], { stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
    tt.teardown(() => void child.kill('SIGKILL'));
    const pid = child.pid!;
    await new Promise((r) => setTimeout(r, 200));
    const run = startCli(['run', '-v', '--pid', String(pid), APP, target], { env: nobodyEnv(), wrap: ['env', '-u', 'NODE_OPTIONS', 'setpriv', '--reuid=65534', '--regid=65534', '--clear-groups'] });
    tt.teardown(() => void run.interrupt('SIGKILL'));
    await run.waitFor(new RegExp(`^URETPROBE pid=${pid} ret=13$`), 60_000);
    tt.match(run.stderr, /selector: userspace: the kernel cannot run the object/, 'routed to the userspace backend');
    tt.not(entryBytes(pid, target), fileBytes(target), 'the running process is hooked');
    const r = await signalled(run, 'SIGINT');
    tt.equal(r.code, 130, 'Ctrl-C: 130');
    tt.equal(entryBytes(pid, target), fileBytes(target), 'its entry holds the original bytes again');
    const entries = run.lines(new RegExp(`^UPROBE pid=${pid} a=6 b=7$`)).length;
    tt.ok(entries > 0 && entries < 400, `events while joined (${entries})`);
    tt.equal(await exited, 0, 'the process runs on to its end, exit 0');
    tt.match(out, /uprobe_target_add\(6, 7\) = 13, 400 calls/, 'every call right');
  });

  t.test('--pid on an entry the inline hook refuses: the trap tier in a joined process; Ctrl-C restores its byte', async (tt) => {
    const target = built['refused (lfence at +2)']!;
    const child = spawn(target, ['6', '7', '400', '300', '1', '10000'], { stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
    tt.teardown(() => void child.kill('SIGKILL'));
    const pid = child.pid!;
    await new Promise((r) => setTimeout(r, 200));
    const run = startCli(['run', '-v', '--backend', 'userspace', '--pid', String(pid), APP, target]);
    tt.teardown(() => void run.interrupt('SIGKILL'));
    await run.waitFor(new RegExp(`^URETPROBE pid=${pid} ret=13$`), 60_000);
    tt.match(run.stderr, new RegExp(`hooked \\S+:uprobe_target_add in pid ${pid}: trap hook `), '--verbose names the trap tier');
    tt.equal(entryBytes(pid, target).slice(0, 2), 'cc', 'the running process has an int3 on the entry\'s first byte');
    tt.equal(entryBytes(pid, target).slice(2), fileBytes(target).slice(2), 'and only there');
    const r = await signalled(run, 'SIGINT');
    tt.equal(r.code, 130, 'Ctrl-C: 130');
    tt.equal(entryBytes(pid, target), fileBytes(target), 'its entry holds the original bytes again');
    const entries = run.lines(new RegExp(`^UPROBE pid=${pid} a=6 b=7$`)).length;
    tt.ok(entries > 0 && entries < 400, `events while joined (${entries})`);
    tt.equal(await exited, 0, 'the process runs on to its end, exit 0');
    tt.match(out, /uprobe_target_add\(6, 7\) = 13, 400 calls/, 'every call right');
  });

  t.test('--pid refusals name the pid and the reason', async (tt) => {
    const r = runCli(['run', '--backend', 'userspace', '--pid', '999999999', APP, '/bin/true'], { timeout: 60_000 });
    tt.not(r.code, 0, 'fails');
    tt.match(r.stderr, /cannot join process 999999999: /, 'names the pid');
    const nobody = asNobody(['run', '--pid', '1', APP, '/bin/true'], 60_000);
    tt.match(String(nobody.stderr), /cannot join process 1: .*only a process of the same user may be joined/, 'another user\'s process: says why');
  });

  t.test('a command that does not exist', async (tt) => {
    const r = runCli(['run', '--backend', 'userspace', APP, '/nonexistent', '--', '/nonexistent/cmd'], { timeout: 60_000 });
    tt.not(r.code, 0, 'fails');
    tt.match(r.stderr, /cannot run \/nonexistent\/cmd: no such file/, 'names the command');
  });
}
