// The userspace backend's ptrace tier (native/agent/ptrace/, wbpf-ptrace): the matrix's uprobe app (unchanged)
// on statically linked targets, launched and joined, and on a dynamic one with the tier forced, gives the
// kernel's and the agent's events; 8 threads exact; Ctrl-C and kill -9 of the host leave the target running
// with its bytes restored; group-stops and signals reach the target as without us; as uid 65534 too.
import t from 'tap';
import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { BUILD, CLI, FIXTURES, ROOT, runCli, startCli, nobodyEnv } from './helpers.js';
import { entryBytes, events, fileBytes } from './uprobe-common.js';
import { isStaticElf } from '../backends/userspace/attach/tier.js';

const APP = path.join(ROOT, 'matrix', 'build', 'uprobe.wasm');
const OUT = path.join(BUILD, 'userspace-ptrace');
const SRC = path.join(FIXTURES, 'agent', 'uprobe-target.c');

/** entry kind -> compiler and flags (static: the ptrace tier's own case; 'dynamic': the tier forced) */
const TARGETS: Record<string, string[]> = {
  endbr64: ['gcc', '-O2', '-fcf-protection=full', '-static'],
  push: ['clang-16', '-O2', '-fno-omit-frame-pointer', '-fcf-protection=none', '-static'],
  plain: ['gcc', '-O2', '-fcf-protection=none', '-static'],
  dynamic: ['gcc', '-O2', '-fcf-protection=full'],
};

function status(pid: number, name: string): string {
  return new RegExp(`^${name}:\\s*(.*)$`, 'm').exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1] ?? '';
}

async function signalled(run: ReturnType<typeof startCli>, sig: NodeJS.Signals): Promise<{ code: number | null; signal: NodeJS.Signals | null }> {
  const exit = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => {
    if (run.child.exitCode !== null || run.child.signalCode !== null) resolve({ code: run.child.exitCode, signal: run.child.signalCode });
    else run.child.once('exit', (code, signal) => resolve({ code, signal }));
  });
  run.child.kill(sig);
  return exit;
}

async function until(what: () => boolean, ms: number): Promise<boolean> {
  const end = Date.now() + ms;
  while (!what() && Date.now() < end) await new Promise((r) => setTimeout(r, 20));
  return what();
}

// `env -u`: tap's process-info hook puts its NODE_OPTIONS back into spawned children's environment
const NOBODY = ['env', '-u', 'NODE_OPTIONS', 'setpriv', '--reuid=65534', '--regid=65534', '--clear-groups'];

/** a target started on its own (to be joined), its stdout collected */
function startTarget(args: string[], wrap: string[] = []): { pid: number; out: () => string; exited: Promise<number | null>; kill: () => void } {
  const argv = [...wrap, ...args];
  const child = spawn(argv[0]!, argv.slice(1), { stdio: ['ignore', 'pipe', 'inherit'] });
  let out = '';
  child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  return { pid: child.pid!, out: () => out, exited, kill: () => void child.kill('SIGKILL') };
}

if (process.arch !== 'x64') {
  t.pass('the ptrace tier is x86-64 only for now');
} else {
  t.setTimeout(600_000);
  fs.mkdirSync(OUT, { recursive: true });
  const built: Record<string, string> = {};
  for (const [kind, [cc, ...flags]] of Object.entries(TARGETS)) {
    const out = path.join(OUT, `target-${kind}`);
    const r = spawnSync(cc!, [...flags, SRC, '-o', out, '-lpthread'], { encoding: 'utf8' });
    if (r.status !== 0) throw new Error(`building the ${kind} target: ${r.stderr}`);
    fs.chmodSync(out, 0o755);
    built[kind] = out;
  }
  if (!fs.existsSync(APP)) throw new Error(`${APP} is not built: make -C matrix`);

  t.test('static targets are static, the dynamic one is not', async (tt) => {
    for (const k of ['endbr64', 'push', 'plain']) tt.ok(isStaticElf(built[k]!), `${k}: no PT_INTERP`);
    tt.notOk(isStaticElf(built['dynamic']!), 'dynamic: PT_INTERP');
    tt.notOk(isStaticElf('/nonexistent'), 'a missing file: not static');
  });

  for (const kind of ['endbr64', 'push', 'plain']) {
    t.test(`a launched static command, ${kind} entry: every call's entry and return, through the ptrace tier`, async (tt) => {
      const target = built[kind]!;
      const r = runCli(['run', '-v', '--backend', 'userspace', APP, target, '--', target, '2', '3', '5'], { timeout: 90_000 });
      tt.equal(r.code, 0, 'exit status 0 (the command\'s)', { stderr: r.stderr });
      tt.match(r.stderr, /launched pid \d+ \(wbpf-ptrace, the command.s tracer and parent\): ptrace tier: slow \(~\d+ us per hit\): .* is statically linked/, '--verbose says the ptrace tier, slow, and why');
      tt.match(r.stdout, /uprobe-target: uprobe_target_add\(2, 3\) = 5, 5 calls/, 'the target ran to its end');
      const ev = events(r.stdout);
      tt.same(ev.entries, Array(5).fill('a=2 b=3'), '5 entry events, with the arguments');
      tt.same(ev.returns, Array(5).fill('ret=5'), '5 return events, with the return value');
      tt.equal(ev.pids.size, 1, 'one pid: the command\'s');
    });
  }

  t.test('the kernel and the agent give the same events as the ptrace tier', async (tt) => {
    const target = built['endbr64']!;
    const ptrace = runCli(['run', '--backend', 'userspace', APP, target, '--', target, '4', '5', '3'], { timeout: 90_000 });
    const kernel = runCli(['run', '--backend', 'linux', APP, target, '--', target, '4', '5', '3'], { timeout: 90_000 });
    tt.equal(kernel.code, 0, 'the kernel: exit 0', { stderr: kernel.stderr });
    tt.same(events(ptrace.stdout).entries, events(kernel.stdout).entries, 'same entry events as the kernel');
    tt.same(events(ptrace.stdout).returns, events(kernel.stdout).returns, 'same return events as the kernel');
    const dyn = built['dynamic']!;
    const agent = runCli(['run', '--backend', 'userspace', APP, dyn, '--', dyn, '4', '5', '3'], { timeout: 90_000 });
    const forced = runCli(['run', '-v', '--backend', 'userspace', '--userspace-tier', 'ptrace', APP, dyn, '--', dyn, '4', '5', '3'], { timeout: 90_000 });
    tt.equal(forced.code, 0, 'forced on a dynamic binary: exit 0', { stderr: forced.stderr });
    tt.match(forced.stderr, /ptrace tier: slow .*forced/, '--userspace-tier ptrace: said so');
    tt.same(events(forced.stdout).entries, events(agent.stdout).entries, 'same entries as the agent');
    tt.same(events(forced.stdout).returns, events(agent.stdout).returns, 'same returns as the agent');
    tt.equal(events(forced.stdout).entries.length, 3, 'every call');
    const env = runCli(['run', '-v', '--backend', 'userspace', APP, dyn, '--', dyn, '4', '5', '2'], { timeout: 90_000, env: { ...process.env, WBPF_USERSPACE_TIER: 'ptrace' } });
    tt.match(env.stderr, /ptrace tier: slow .*WBPF_USERSPACE_TIER=ptrace/, 'WBPF_USERSPACE_TIER=ptrace forces it too');
    tt.equal(events(env.stdout).returns.length, 2, 'and it traces');
    const bad = runCli(['run', '--userspace-tier', 'fast', APP, dyn, '--', dyn, '1', '1', '1'], { timeout: 60_000 });
    tt.equal(bad.code, 2, 'an unknown tier is a usage error');
    tt.match(bad.stderr, /--userspace-tier must be one of auto, agent, ptrace/, 'naming the choices');
  });

  t.test('descendants: a shell (forced tier) that forks, execs static programs and execs one itself: each traced', async (tt) => {
    const target = built['endbr64']!;
    const sh = `${target} 1 2 2; ${target} 3 4 2 & wait; exec ${target} 5 6 1`;
    const r = runCli(['run', '--backend', 'userspace', '--userspace-tier', 'ptrace', APP, target, '--', 'sh', '-c', sh], { timeout: 90_000 });
    tt.equal(r.code, 0, 'exit 0', { stderr: r.stderr });
    const ev = events(r.stdout);
    tt.same([...ev.entries].sort(), ['a=1 b=2', 'a=1 b=2', 'a=3 b=4', 'a=3 b=4', 'a=5 b=6'], 'every entry: a forked child, a background child, the shell\'s own exec');
    tt.same([...ev.returns].sort(), ['ret=11', 'ret=3', 'ret=3', 'ret=7', 'ret=7'], 'every return');
    tt.equal(ev.pids.size, 3, 'three processes');
  });

  t.test('a main thread that ends before its threads (a zombie leader): the stepped entry still works, every call counted', async (tt) => {
    const lead = path.join(OUT, 'target-leader-exit');
    const b = spawnSync('gcc', ['-O2', '-fcf-protection=none', '-static', path.join(FIXTURES, 'agent', 'uprobe-leader-exit.c'), '-o', lead, '-lpthread'], { encoding: 'utf8' });
    tt.equal(b.status, 0, 'built', { stderr: b.stderr });
    const r = runCli(['run', '--backend', 'userspace', APP, lead, '--', lead], { timeout: 90_000 });
    tt.equal(r.code, 0, 'exit 0 (no deadlock)', { stderr: r.stderr });
    const ev = events(r.stdout);
    tt.equal(ev.entries.length, 900, '900 entries');
    tt.equal(ev.returns.length, 900, '900 returns');
  });

  t.test('a recursive function: every return matched to its call (the kernel\'s events exactly)', async (tt) => {
    // -O0: gcc -O2 turns this recursion into a loop
    const rec = path.join(OUT, 'target-recursive');
    const b = spawnSync('gcc', ['-O0', '-fcf-protection=none', '-static', path.join(FIXTURES, 'agent', 'uprobe-recursive.c'), '-o', rec], { encoding: 'utf8' });
    tt.equal(b.status, 0, 'built', { stderr: b.stderr });
    const ptrace = runCli(['run', '--backend', 'userspace', APP, rec, '--', rec, '2', '3', '2'], { timeout: 90_000 });
    tt.equal(ptrace.code, 0, 'exit 0', { stderr: ptrace.stderr });
    const lines = (out: string): string[] => out.split('\n').filter((l) => /^U(RET)?PROBE /.test(l)).map((l) => l.replace(/pid=\d+ /, ''));
    const nested = ['UPROBE a=2 b=3', 'UPROBE a=2 b=2', 'UPROBE a=2 b=1', 'UPROBE a=2 b=0', 'URETPROBE ret=2', 'URETPROBE ret=3', 'URETPROBE ret=4', 'URETPROBE ret=5'];
    tt.same(lines(ptrace.stdout), [...nested, ...nested], 'entries outermost first, returns innermost first, each with its own value');
    const kernel = runCli(['run', '--backend', 'linux', APP, rec, '--', rec, '2', '3', '2'], { timeout: 90_000 });
    tt.same(lines(ptrace.stdout), lines(kernel.stdout), 'the kernel\'s events');
  });

  for (const kind of ['endbr64', 'plain']) {
    t.test(`8 threads, ${kind} entry: every call counted`, async (tt) => {
      const target = built[kind]!;
      const r = runCli(['run', '--backend', 'userspace', APP, target, '--', target, '1', '1', '300', '0', '8'], { timeout: 180_000 });
      tt.equal(r.code, 0, 'exit 0', { stderr: r.stderr });
      tt.match(r.stdout, /= 2, 2400 calls/, 'every call right');
      const ev = events(r.stdout);
      tt.equal(ev.entries.length, 2400, '2400 entries');
      tt.equal(ev.returns.length, 2400, '2400 returns');
    });
  }

  t.test('--pid of a running static process: traced, then Ctrl-C restores it and it runs on as before', async (tt) => {
    const target = built['plain']!;
    const p = startTarget([target, '6', '7', '1000', '200', '1', '10000']);
    tt.teardown(p.kill);
    await new Promise((r) => setTimeout(r, 100));
    // the tracer's log of notable events (a failed write among them), shown if an assertion below fails
    const log = path.join(OUT, `join-${p.pid}.log`);
    fs.rmSync(log, { force: true });
    const run = startCli(['run', '-v', '--backend', 'userspace', '--pid', String(p.pid), APP, target], { env: { ...process.env, WBPF_PTRACE_DEBUG: log } });
    tt.teardown(() => void run.interrupt('SIGKILL'));
    await run.waitFor(new RegExp(`^URETPROBE pid=${p.pid} ret=13$`), 60_000);
    tt.match(run.stderr, new RegExp(`joined pid ${p.pid}: ptrace tier: slow .*maps no libc.so`), '--verbose: the ptrace tier, and why');
    // A plain entry is single-stepped with its byte put back for the step (the process stopped meanwhile): a
    // read meets that window now and then, more often on a loaded machine, where the tracer waits for a CPU
    // inside it. So: reads until three show the int3, for up to 5 s, and the hits must go on meanwhile (a
    // breakpoint lost for good would stop them).
    const file = fileBytes(target);
    const reads = { int3: 0, original: 0 };
    const hitsBefore = run.lines(new RegExp(`^UPROBE pid=${p.pid} `)).length;
    const end = Date.now() + 5000;
    while (reads.int3 < 3 && Date.now() < end) {
      if (entryBytes(p.pid, target) === file) reads.original++;
      else reads.int3++;
      await new Promise((r) => setTimeout(r, 7));
    }
    const tracerLog = (): string => (fs.existsSync(log) ? fs.readFileSync(log, 'utf8').slice(-4000) : '(no log)');
    tt.ok(reads.int3 > 0, 'the entry holds our int3', { reads, tracerLog: tracerLog() });
    tt.ok(await until(() => run.lines(new RegExp(`^UPROBE pid=${p.pid} `)).length > hitsBefore + 2, 5000), 'hits go on while joined', { reads, hitsBefore, tracerLog: tracerLog() });
    tt.not(status(p.pid, 'TracerPid'), '0', 'traced');
    const r = await signalled(run, 'SIGINT');
    tt.equal(r.code, 130, 'Ctrl-C: 130');
    tt.ok(await until(() => status(p.pid, 'TracerPid') === '0', 2000), 'detached');
    tt.equal(entryBytes(p.pid, target), fileBytes(target), 'its entry holds the original bytes again');
    const entries = run.lines(new RegExp(`^UPROBE pid=${p.pid} a=6 b=7$`)).length;
    tt.ok(entries > 0 && entries < 1000, `events while joined (${entries})`);
    tt.equal(await p.exited, 0, 'the process runs on to its end, exit 0');
    tt.match(p.out(), /uprobe_target_add\(6, 7\) = 13, 1000 calls/, 'every call right');
  });

  t.test('kill -9 of the host: a launched static command keeps running, its entry restored', async (tt) => {
    const target = built['push']!;
    const run = startCli(['run', '--backend', 'userspace', APP, target, '--', target, '3', '4', '300', '0', '2', '5000']);
    tt.teardown(() => void run.interrupt('SIGKILL'));
    const first = await run.waitFor(/^URETPROBE pid=\d+ ret=7$/, 60_000);
    const pid = Number(/pid=(\d+)/.exec(first)![1]);
    const r = await signalled(run, 'SIGKILL');
    tt.equal(r.signal, 'SIGKILL', 'the host was killed');
    tt.ok(fs.existsSync(`/proc/${pid}`), 'the command is still running');
    const t0 = Date.now();
    tt.ok(await until(() => entryBytes(pid, target) === fileBytes(target) && status(pid, 'TracerPid') === '0', 1000), `the tracer noticed, restored the entry and detached (${Date.now() - t0} ms)`);
    tt.ok(await until(() => /uprobe-target: uprobe_target_add\(3, 4\) = 7, 600 calls/.test(run.stdout), 30_000), 'the command ran to its end, every call right');
  });

  t.test('kill -9 of the host: a joined static process keeps running, its entry restored', async (tt) => {
    const target = built['endbr64']!;
    const p = startTarget([target, '1', '1', '2000', '0', '2', '4000']);
    tt.teardown(p.kill);
    await new Promise((r) => setTimeout(r, 100));
    const run = startCli(['run', '--backend', 'userspace', '--pid', String(p.pid), APP, target]);
    tt.teardown(() => void run.interrupt('SIGKILL'));
    await run.waitFor(/^URETPROBE pid=\d+ ret=2$/, 60_000);
    await signalled(run, 'SIGKILL');
    tt.ok(await until(() => entryBytes(p.pid, target) === fileBytes(target) && status(p.pid, 'TracerPid') === '0', 1000), 'restored and detached within a second');
    tt.equal(await p.exited, 0, 'the process ran to its end, exit 0');
    tt.match(p.out(), /= 2, 4000 calls/, 'every call right');
  });

  t.test('signals reach the traced command as without us: a group-stop stops it, SIGCONT resumes, SIGTERM ends it', async (tt) => {
    const target = built['endbr64']!;
    const run = startCli(['run', '--backend', 'userspace', APP, target, '--', target, '5', '5', '100000', '0', '1', '2000']);
    tt.teardown(() => void run.interrupt('SIGKILL'));
    const first = await run.waitFor(/^UPROBE pid=\d+ a=5 b=5$/, 60_000);
    const pid = Number(/pid=(\d+)/.exec(first)![1]);
    process.kill(pid, 'SIGSTOP');
    tt.ok(await until(() => /^t|^T/.test(status(pid, 'State')), 2000), `SIGSTOP: stopped (${status(pid, 'State')})`);
    await new Promise((r) => setTimeout(r, 300)); // the records of calls made before the stop arrive
    const n = run.lines(/^UPROBE /).length;
    await new Promise((r) => setTimeout(r, 400));
    tt.equal(run.lines(/^UPROBE /).length, n, 'no calls while stopped');
    process.kill(pid, 'SIGCONT');
    tt.ok(await until(() => run.lines(/^UPROBE /).length > n + 2, 5000), 'SIGCONT: it runs again');
    const ended = new Promise<number | null>((resolve) => run.child.once('exit', (code) => resolve(code)));
    process.kill(pid, 'SIGTERM');
    tt.equal(await ended, 143, 'SIGTERM: the command died of it, and the run\'s status is the command\'s (128 + 15)');
  });

  t.test('an ordinary user (uid 65534): a launched static command, and its own static process joined', async (tt) => {
    const target = built['endbr64']!;
    const r = spawnSync(NOBODY[0]!, [...NOBODY.slice(1), process.execPath, CLI, 'run', '-v', APP, target, '--', target, '4', '5', '3'], { encoding: 'utf8', timeout: 90_000, env: nobodyEnv() });
    tt.equal(r.status, 0, 'exit 0', { stderr: r.stderr });
    tt.match(r.stderr, /ptrace tier: slow/, 'the ptrace tier');
    tt.same(events(r.stdout).entries, Array(3).fill('a=4 b=5'), 'entries');
    tt.same(events(r.stdout).returns, Array(3).fill('ret=9'), 'returns');

    const p = startTarget([target, '6', '7', '1000', '200', '1', '10000'], NOBODY);
    tt.teardown(p.kill);
    await new Promise((res) => setTimeout(res, 100));
    const run = startCli(['run', '-v', '--pid', String(p.pid), APP, target], { env: nobodyEnv(), wrap: NOBODY });
    tt.teardown(() => void run.interrupt('SIGKILL'));
    await run.waitFor(new RegExp(`^URETPROBE pid=${p.pid} ret=13$`), 60_000);
    tt.match(run.stderr, /joined pid \d+: ptrace tier/, 'joined through the ptrace tier');
    await signalled(run, 'SIGINT');
    tt.ok(await until(() => status(p.pid, 'TracerPid') === '0', 2000), 'detached');
    tt.equal(entryBytes(p.pid, target), fileBytes(target), 'restored');
    tt.equal(await p.exited, 0, 'it runs on to its end');
  });

  // issue 16 point 1: a library loaded later (dlopen) is followed by the ptrace tier too, through a breakpoint
  // on the dynamic loader's debugger hook (native/agent/ptrace/loader.c); dlclose and a second dlopen too
  const DL_SRC = path.join(FIXTURES, 'agent', 'uprobe-dlopen.c');
  const DL_PROG = path.join(OUT, 'uprobe-dlopen');
  const DL_LIB = path.join(OUT, 'libuprobe-dlopen.so');
  const buildDlopen = (tt: Tap.Test): void => {
    for (const args of [['-O2', '-fcf-protection=full', '-shared', '-fPIC', '-DLIB', DL_SRC, '-o', DL_LIB], ['-O2', DL_SRC, '-o', DL_PROG, '-ldl']]) {
      const b = spawnSync('gcc', args, { encoding: 'utf8' });
      tt.equal(b.status, 0, `built ${path.basename(args[args.indexOf('-o') + 1]!)}`, { stderr: b.stderr });
    }
  };

  t.test('a launched dynamic command (--userspace-tier ptrace) that dlopens the probed library, dlcloses it and loads it again: exact events', async (tt) => {
    buildDlopen(tt);
    const r = runCli(['run', '-v', '--backend', 'userspace', '--userspace-tier', 'ptrace', APP, DL_LIB, '--', DL_PROG, DL_LIB, '2', '3', '5', '0', '2'],
      { timeout: 90_000, env: { ...process.env, WBPF_PTRACE_STATS: '1' } });
    tt.equal(r.code, 0, 'exit 0', { stderr: r.stderr });
    tt.match(r.stderr, /ptrace tier: slow .*forced/, 'the ptrace tier');
    tt.match(r.stderr, /is not mapped in pid \d+ \(yet\); the hook waits for it/, 'the hook waited for the library');
    tt.match(r.stdout, /uprobe-dlopen: uprobe_target_add\(2, 3\) = 5, 10 calls/, 'the command made its calls, each right');
    const ev = events(r.stdout);
    tt.same(ev.entries, Array(10).fill('a=2 b=3'), '10 entry events (5 in each load of the library), with the arguments');
    tt.same(ev.returns, Array(10).fill('ret=5'), '10 return events, with the return value');
    // 20 of the probes; the loader's: the program's entry once, then 2 per dlopen and 2 per dlclose
    tt.match(r.stderr, /wbpf-ptrace: 29 hits/, 'the loader\'s hook stopped the command only at its entry and at each dlopen and dlclose');
  });

  t.test('a launched dynamic command (--userspace-tier ptrace) linked with the probed library (mapped by its loader before main): exact events', async (tt) => {
    buildDlopen(tt);
    const prog = path.join(OUT, 'uprobe-needed');
    const b = spawnSync('gcc', ['-O2', '-DNEEDED', DL_SRC, '-o', prog, `-L${OUT}`, '-luprobe-dlopen', `-Wl,-rpath,${OUT}`], { encoding: 'utf8' });
    tt.equal(b.status, 0, 'built uprobe-needed', { stderr: b.stderr });
    const r = runCli(['run', '--backend', 'userspace', '--userspace-tier', 'ptrace', APP, DL_LIB, '--', prog, DL_LIB, '6', '1', '7'], { timeout: 90_000 });
    tt.equal(r.code, 0, 'exit 0', { stderr: r.stderr });
    tt.match(r.stdout, /uprobe-dlopen: uprobe_target_add\(6, 1\) = 7, 7 calls/, 'the command made its calls, each right');
    const ev = events(r.stdout);
    tt.same(ev.entries, Array(7).fill('a=6 b=1'), '7 entry events, with the arguments');
    tt.same(ev.returns, Array(7).fill('ret=7'), '7 return events, with the return value');
  });

  t.test('a joined dynamic process (--userspace-tier ptrace) that dlopens the probed library after the join: exact events, then detached', async (tt) => {
    buildDlopen(tt);
    const p = startTarget([DL_PROG, DL_LIB, '4', '5', '50', '120000', '2']);
    tt.teardown(p.kill);
    await new Promise((res) => setTimeout(res, 100));
    const run = startCli(['run', '--backend', 'userspace', '--userspace-tier', 'ptrace', '--pid', String(p.pid), APP, DL_LIB]);
    tt.teardown(() => void run.interrupt('SIGKILL'));
    await run.waitFor(/^# uprobe: attached/, 60_000);
    tt.notOk(fs.readFileSync(`/proc/${p.pid}/maps`, 'utf8').includes(DL_LIB), 'the library is not loaded yet');
    process.kill(p.pid, 'SIGUSR1'); // the program loads it and calls
    tt.equal(await p.exited, 0, 'the process ran to its end, exit 0');
    tt.match(p.out(), /uprobe_target_add\(4, 5\) = 9, 100 calls/, 'every call right');
    tt.ok(await until(() => run.lines(/^URETPROBE /).length >= 100, 30_000), 'the events came');
    await new Promise((res) => setTimeout(res, 300)); // nothing more comes
    tt.equal(run.lines(new RegExp(`^UPROBE pid=${p.pid} a=4 b=5$`)).length, 100, '100 entry events, with the arguments');
    tt.equal(run.lines(new RegExp(`^URETPROBE pid=${p.pid} ret=9$`)).length, 100, '100 return events, with the return value');
    tt.equal(run.lines(/^U(RET)?PROBE /).length, 200, 'no other event');
    await signalled(run, 'SIGINT');
  });

  t.test('refusals name the cause and the fix: another user\'s process, one already traced', async (tt) => {
    const target = built['endbr64']!;
    const r = spawnSync(NOBODY[0]!, [...NOBODY.slice(1), process.execPath, CLI, 'run', '--userspace-tier', 'ptrace', '--pid', '1', APP, target], { encoding: 'utf8', timeout: 60_000, env: nobodyEnv() });
    tt.not(r.status, 0, 'fails');
    tt.match(r.stderr, /cannot join process 1: ptrace tier: .*only a process of the same user may be joined.*CAP_SYS_PTRACE/s, 'another user\'s: the cause and the fix');
    const p = startTarget([target, '1', '1', '2000', '0', '1', '5000']);
    tt.teardown(p.kill);
    await new Promise((res) => setTimeout(res, 100));
    const first = startCli(['run', '--backend', 'userspace', '--pid', String(p.pid), APP, target]);
    tt.teardown(() => void first.interrupt('SIGKILL'));
    await first.waitFor(/^UPROBE /, 60_000);
    const second = runCli(['run', '--backend', 'userspace', '--pid', String(p.pid), APP, target], { timeout: 60_000 });
    tt.not(second.code, 0, 'a second run fails');
    tt.match(second.stderr, /already traced by process \d+.*detach that tracer first/s, 'already traced: says by whom and the fix');
    await signalled(first, 'SIGINT');
    tt.equal(await p.exited, 0, 'the target ran to its end');
  });
}
