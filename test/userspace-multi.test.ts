// Several runs on one process (issue 16 point 7): two `wasm-bpf run --pid` of the matrix's uprobe app
// (unchanged) trace the same process, each with its own session in the agent (its own maps: its own ring
// buffer), and both get every event, counted exactly against the calls the target says it made; one run
// Ctrl-C'd or kill -9'd while the other continues (its counts stay exact; the entry stays patched while the
// other hooks it and gets its original bytes back when the last leaves); a command launched by one run and
// joined by another, and its fork children; fork children of a joined process unhooked as each run leaves;
// both runs as uid 65534; two different apps (the uprobe app's ring buffer, a counting variant's array:
// both map id 1 in their own run) each exact.
import t from 'tap';
import { execFileSync, spawn, spawnSync, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { BUILD, CLI, FIXTURES, GUEST_INCLUDE, ROOT, buildBpf, pollUntil as until, startCli, type Running, nobodyEnv } from './helpers.js';
import { entryBytes, fileBytes } from './uprobe-common.js';

const APP = path.join(ROOT, 'matrix', 'build', 'uprobe.wasm');
const OUT = path.join(BUILD, 'userspace-multi');
const SRC = path.join(FIXTURES, 'agent', 'uprobe-target.c');
const TARGET = path.join(OUT, 'target');
const COUNT_APP = path.join(OUT, 'uprobe-count.wasm');
const LONG = '120000'; // the target's delay and tail: ended by SIGUSR1 (see uprobe-target.c)

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

const NOBODY = ['env', '-u', 'NODE_OPTIONS', 'setpriv', '--reuid=65534', '--regid=65534', '--clear-groups'];

interface Target {
  child: ChildProcess;
  pid: number;
  out: () => string;
  exited: Promise<number | null>;
}

/** the target, waiting (LONG ms, or until a SIGUSR1) before its `count` calls of uprobe_target_add(a, b) */
function target(tt: Tap.Test, a: number, b: number, count: number, pauseUs: number, asNobody = false, threads = 1): Target {
  const args = [String(a), String(b), String(count), LONG, String(threads), String(pauseUs), LONG];
  const child = asNobody ? spawn(NOBODY[0]!, [...NOBODY.slice(1), TARGET, ...args], { stdio: ['ignore', 'pipe', 'inherit'] }) : spawn(TARGET, args, { stdio: ['ignore', 'pipe', 'inherit'] });
  tt.teardown(() => void child.kill('SIGKILL'));
  let out = '';
  child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  return { child, pid: child.pid!, out: () => out, exited };
}

/** `wasm-bpf run --pid PID APP TARGET` (the userspace backend: forced as root, chosen by the selector as nobody) */
function join(tt: Tap.Test, pid: number, asNobody = false, app = APP): Running {
  const run = asNobody
    ? startCli(['run', '--pid', String(pid), app, TARGET], { env: nobodyEnv(), wrap: NOBODY })
    : startCli(['run', '--backend', 'userspace', '--pid', String(pid), app, TARGET]);
  tt.teardown(() => void run.interrupt('SIGKILL'));
  return run;
}

/** pid: the events of that process; 0: of any */
const entries = (run: Running, pid: number, a: number, b: number): number => run.lines(new RegExp(`^UPROBE pid=${pid || '\\d+'} a=${a} b=${b}$`)).length;
const returns = (run: Running, pid: number, sum: number): number => run.lines(new RegExp(`^URETPROBE pid=${pid || '\\d+'} ret=${sum}$`)).length;
const pids = (run: Running): Set<string> => new Set(run.lines(/^U(RET)?PROBE /).map((l) => /pid=(\d+)/.exec(l)![1]!));
const events = (run: Running): number => run.lines(/^U(RET)?PROBE /).length;

/** every event of `count` calls reached `run`, and no more */
async function exact(tt: Tap.Test, run: Running, pid: number, a: number, b: number, count: number, who: string): Promise<void> {
  await until(() => events(run) >= 2 * count, 30_000);
  await sleep(300); // nothing more comes
  tt.equal(entries(run, pid, a, b), count, `${who}: ${count} entry events, with the arguments`);
  tt.equal(returns(run, pid, a + b), count, `${who}: ${count} return events, with the return value`);
  tt.equal(events(run), 2 * count, `${who}: no other event`);
}

/** runs A and B join pid, one after the other, each attached */
async function joinBoth(tt: Tap.Test, pid: number, asNobody = false): Promise<[Running, Running]> {
  const a = join(tt, pid, asNobody);
  await a.waitFor(/^# uprobe: attached/, 60_000);
  const b = join(tt, pid, asNobody);
  await b.waitFor(/^# uprobe: attached/, 60_000);
  return [a, b];
}

/** the pid of the command run A launched (the CLI's child running TARGET) */
async function launched(tt: Tap.Test, a: Running): Promise<number> {
  let pid = 0;
  tt.ok(await until(() => {
    const kids = fs.readFileSync(`/proc/${a.child.pid}/task/${a.child.pid}/children`, 'utf8').trim().split(/\s+/).filter(Boolean).map(Number);
    pid = kids.find((k) => { try { return fs.readlinkSync(`/proc/${k}/exe`) === TARGET; } catch { return false; } }) ?? 0;
    return pid > 0;
  }, 10_000), 'the launched command runs');
  tt.teardown(() => { try { process.kill(pid, 'SIGKILL'); } catch { /* gone */ } });
  return pid;
}

/** every run has left: pid's entry holds its original bytes again; released, the target runs to its end
 * (exit 0) with its `count` calls of uprobe_target_add(a, b) right */
async function restoredAndDone(tt: Tap.Test, tg: Target, a: number, b: number, count: number): Promise<void> {
  tt.equal(entryBytes(tg.pid, TARGET), fileBytes(TARGET), 'the entry holds its original bytes again');
  tg.child.kill('SIGUSR1');
  tt.equal(await tg.exited, 0, 'the target exits 0');
  tt.match(tg.out(), `uprobe_target_add(${a}, ${b}) = ${a + b}, ${count} calls`, 'every call right');
}

if (process.arch !== 'x64') {
  t.pass('the agent hooks x86-64 only for now');
} else {
  t.setTimeout(600_000);
  fs.mkdirSync(OUT, { recursive: true });
  const cc = spawnSync('gcc', ['-O2', '-fcf-protection=full', SRC, '-o', TARGET, '-lpthread'], { encoding: 'utf8' });
  if (cc.status !== 0) throw new Error(`building the target: ${cc.stderr}`);
  fs.chmodSync(OUT, 0o755);
  if (!fs.existsSync(APP)) throw new Error(`${APP} is not built: make -C matrix`);
  // the counting variant: its object, its skeleton (wasm-bpf gen skeleton), its guest
  const obj = buildBpf(path.join(FIXTURES, 'agent', 'uprobe-count.bpf.c'), path.join(OUT, 'uprobe-count.bpf.o'));
  fs.writeFileSync(path.join(OUT, 'uprobe-count.skel.h'), execFileSync(process.execPath, [CLI, 'gen', 'skeleton', obj], { encoding: 'utf8' }));
  execFileSync('clang-16', ['--target=wasm32-wasi', '--sysroot=/usr', '-O2', '-Wall', '-I', OUT, '-I', GUEST_INCLUDE, '-I', path.join(ROOT, 'matrix', 'apps', 'common'),
    path.join(FIXTURES, 'agent', 'uprobe-count.c'), '-o', COUNT_APP, '-Wl,--allow-undefined,--export-table', '-Wl,--strip-debug']);

  t.test('two runs join one process: both get every event; the entry is restored when the last leaves', async (tt) => {
    const tg = target(tt, 2, 3, 300, 1000);
    await sleep(200);
    const [a, b] = await joinBoth(tt, tg.pid);
    tg.child.kill('SIGUSR1'); // the calls start
    tt.ok(await until(() => tg.out().includes('calls done'), 60_000), 'the target made its calls');
    await exact(tt, a, tg.pid, 2, 3, 300, 'run A');
    await exact(tt, b, tg.pid, 2, 3, 300, 'run B');
    tt.not(entryBytes(tg.pid, TARGET), fileBytes(TARGET), 'the entry is patched while both hook it');
    tt.equal((await a.interrupt('SIGINT')).code, 130, 'run A: Ctrl-C, 130');
    tt.not(entryBytes(tg.pid, TARGET), fileBytes(TARGET), 'after A left, the entry stays patched: B hooks it');
    tt.equal((await b.interrupt('SIGINT')).code, 130, 'run B: Ctrl-C, 130');
    await restoredAndDone(tt, tg, 2, 3, 300);
  });

  t.test('run A Ctrl-C\'d during the calls: B\'s counts stay exact', async (tt) => {
    const tg = target(tt, 4, 1, 600, 5000);
    await sleep(200);
    const [a, b] = await joinBoth(tt, tg.pid);
    tg.child.kill('SIGUSR1');
    await a.waitFor(/^UPROBE /, 30_000);
    tt.equal((await a.interrupt('SIGINT')).code, 130, 'run A: Ctrl-C, 130');
    tt.ok(!tg.out().includes('calls done'), 'A left while the target was still calling');
    tt.ok(events(a) < 1200, `A saw part of the calls (${events(a)} events)`);
    tt.not(entryBytes(tg.pid, TARGET), fileBytes(TARGET), 'the entry stays patched: B hooks it');
    tt.ok(await until(() => tg.out().includes('calls done'), 60_000), 'the target made its calls');
    await exact(tt, b, tg.pid, 4, 1, 600, 'run B');
    tt.equal((await b.interrupt('SIGINT')).code, 130, 'run B: Ctrl-C, 130');
    await restoredAndDone(tt, tg, 4, 1, 600);
  });

  t.test('run A kill -9\'d during the calls: B\'s counts stay exact, A\'s session is gone', async (tt) => {
    const tg = target(tt, 5, 5, 600, 5000);
    await sleep(200);
    const [a, b] = await joinBoth(tt, tg.pid);
    const threads = fs.readdirSync(`/proc/${tg.pid}/task`).length;
    tt.equal(threads, 3, 'the target\'s thread and one agent thread per run');
    tg.child.kill('SIGUSR1');
    await a.waitFor(/^UPROBE /, 30_000);
    tt.equal((await a.interrupt('SIGKILL')).signal, 'SIGKILL', 'run A killed');
    tt.ok(await until(() => fs.readdirSync(`/proc/${tg.pid}/task`).length === 2, 5_000), 'the agent saw A\'s channel close and ended its session (its thread) within seconds');
    tt.ok(!tg.out().includes('calls done'), 'while the target was still calling');
    tt.not(entryBytes(tg.pid, TARGET), fileBytes(TARGET), 'the entry stays patched: B hooks it');
    tt.ok(await until(() => tg.out().includes('calls done'), 60_000), 'the target made its calls');
    await exact(tt, b, tg.pid, 5, 5, 600, 'run B');
    tt.equal((await b.interrupt('SIGINT')).code, 130, 'run B: Ctrl-C, 130');
    await restoredAndDone(tt, tg, 5, 5, 600);
  });

  t.test('a command launched by run A and joined by run B: both get every event, also of its fork children', async (tt) => {
    // 2 fork children make 150 calls each: they follow A's registry and B's channel
    const a = startCli(['run', '--backend', 'userspace', APP, TARGET, '--', TARGET, '7', '1', '150', LONG, '-2', '1000', LONG]);
    tt.teardown(() => void a.interrupt('SIGKILL'));
    await a.waitFor(/^# uprobe: attached/, 60_000);
    const pid = await launched(tt, a);
    const b = join(tt, pid);
    await b.waitFor(/^# uprobe: attached/, 60_000);
    process.kill(pid, 'SIGUSR1');
    await a.waitFor(/uprobe-target: calls done/, 60_000);
    await exact(tt, a, 0, 7, 1, 300, 'run A (launched it)');
    await exact(tt, b, 0, 7, 1, 300, 'run B (joined it)');
    tt.equal(pids(a).size, 2, 'A: the events of 2 processes (the fork children)');
    tt.same(pids(b), pids(a), 'B: of the same 2');
    tt.equal((await b.interrupt('SIGINT')).code, 130, 'run B: Ctrl-C, 130');
    tt.not(entryBytes(pid, TARGET), fileBytes(TARGET), 'the entry stays patched: A hooks it');
    process.kill(pid, 'SIGUSR1');
    const r = await a.exited;
    tt.equal(r.code, 0, 'run A ends with the command\'s status, 0');
    tt.match(a.stdout, /uprobe_target_add\(7, 1\) = 8, 300 calls/, 'every call right');
  });

  t.test('the launching run A Ctrl-C\'d during the calls: the command runs on and the joined run B\'s counts stay exact', async (tt) => {
    const a = startCli(['run', '--backend', 'userspace', APP, TARGET, '--', TARGET, '2', '9', '600', LONG, '1', '5000', LONG]);
    tt.teardown(() => void a.interrupt('SIGKILL'));
    await a.waitFor(/^# uprobe: attached/, 60_000);
    const pid = await launched(tt, a);
    const b = join(tt, pid);
    await b.waitFor(/^# uprobe: attached/, 60_000);
    process.kill(pid, 'SIGUSR1');
    await a.waitFor(/^UPROBE /, 30_000);
    const ra = new Promise<number | null>((resolve) => (a.done ? resolve(a.child.exitCode) : a.child.once('exit', (code) => resolve(code))));
    a.child.kill('SIGINT');
    tt.equal(await ra, 130, 'run A: Ctrl-C, 130 (its own exit; the command holds its stdout)');
    tt.ok(fs.existsSync(`/proc/${pid}`) && !a.stdout.includes('calls done'), 'the command runs on, still calling');
    tt.not(entryBytes(pid, TARGET), fileBytes(TARGET), 'the entry stays patched: B hooks it');
    tt.ok(await until(() => a.stdout.includes('calls done'), 60_000), 'the command made its calls');
    await exact(tt, b, pid, 2, 9, 600, 'run B (joined it)');
    tt.equal((await b.interrupt('SIGINT')).code, 130, 'run B: Ctrl-C, 130');
    tt.equal(entryBytes(pid, TARGET), fileBytes(TARGET), 'the entry holds its original bytes again');
    process.kill(pid, 'SIGUSR1');
    await a.exited;
    tt.match(a.stdout, /uprobe_target_add\(2, 9\) = 11, 600 calls/, 'the command ran to its end, every call right');
  });

  t.test('fork children of a process two runs joined: each run leaving unhooks them too', async (tt) => {
    const tg = target(tt, 6, 2, 1500, 2000, false, -2);
    await sleep(200);
    const [a, b] = await joinBoth(tt, tg.pid);
    tg.child.kill('SIGUSR1');
    tt.ok(await until(() => pids(a).size === 2 && pids(b).size === 2, 30_000), 'both runs get the events of both fork children');
    const kids = [...pids(a)].map(Number);
    tt.equal((await b.interrupt('SIGINT')).code, 130, 'run B: Ctrl-C, 130');
    const nb = events(b);
    tt.not(entryBytes(kids[0]!, TARGET), fileBytes(TARGET), 'a child\'s entry stays patched: A hooks it');
    const na = events(a);
    tt.ok(await until(() => events(a) > na + 20, 10_000), 'A still gets the children\'s events');
    tt.equal((await a.interrupt('SIGINT')).code, 130, 'run A: Ctrl-C, 130');
    const t0 = Date.now();
    tt.ok(await until(() => kids.every((k) => entryBytes(k, TARGET) === fileBytes(TARGET)), 2_000),
      `the children saw the hosts leave and restored their entries (${Date.now() - t0} ms)`);
    tt.ok(!tg.out().includes('calls done'), 'while they were still calling');
    tt.equal(events(b), nb, 'B got nothing after it left');
    tt.ok(await until(() => tg.out().includes('calls done'), 60_000), 'the children made their calls');
    tg.child.kill('SIGUSR1');
    tt.equal(await tg.exited, 0, 'the target exits 0 (its children exited 0: every call right)');
    tt.match(tg.out(), /uprobe_target_add\(6, 2\) = 8, 3000 calls/, 'every call right');
  });

  t.test('two runs as uid 65534 join its own process: both get every event', async (tt) => {
    const tg = target(tt, 1, 8, 200, 1000, true);
    await sleep(300);
    const pid = tg.pid; // setpriv execs the target
    tt.match(fs.readFileSync(`/proc/${pid}/status`, 'utf8'), /^Uid:\s+65534\s/m, 'its uid');
    const [a, b] = await joinBoth(tt, pid, true);
    process.kill(pid, 'SIGUSR1');
    tt.ok(await until(() => tg.out().includes('calls done'), 60_000), 'the target made its calls');
    await exact(tt, a, pid, 1, 8, 200, 'run A (uid 65534)');
    await exact(tt, b, pid, 1, 8, 200, 'run B (uid 65534)');
    tt.equal((await a.interrupt('SIGINT')).code, 130, 'run A: Ctrl-C, 130');
    tt.equal((await b.interrupt('SIGINT')).code, 130, 'run B: Ctrl-C, 130');
    await restoredAndDone(tt, tg, 1, 8, 200);
  });

  t.test('two different apps on one process: the uprobe app\'s ring buffer and the counting app\'s array, each exact', async (tt) => {
    const tg = target(tt, 3, 4, 400, 2000);
    await sleep(200);
    const a = join(tt, tg.pid);
    await a.waitFor(/^# uprobe: attached/, 60_000);
    const c = join(tt, tg.pid, false, COUNT_APP);
    await c.waitFor(/^# uprobe-count: attached/, 60_000);
    tg.child.kill('SIGUSR1');
    await c.waitFor(/^COUNT entries=\d+ returns=\d+$/, 30_000);
    tt.equal((await a.interrupt('SIGINT')).code, 130, 'the uprobe app: Ctrl-C during the calls, 130');
    tt.ok(!tg.out().includes('calls done'), 'while the target was still calling');
    tt.ok(await until(() => tg.out().includes('calls done'), 60_000), 'the target made its calls');
    tt.ok(await until(() => c.lines(/^COUNT /).at(-1) === 'COUNT entries=400 returns=400', 5_000), 'the counting app counted every entry and return in its own array');
    tt.ok(events(a) > 0 && events(a) < 800, `the uprobe app got its events in its own ring buffer until it left (${events(a)})`);
    tt.equal(entries(a, tg.pid, 3, 4), returns(a, tg.pid, 7) + (events(a) % 2), 'as entry and return pairs');
    tt.equal((await c.interrupt('SIGINT')).code, 130, 'the counting app: Ctrl-C, 130');
    await restoredAndDone(tt, tg, 3, 4, 400);
  });
}
