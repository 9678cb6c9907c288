// The agent follows a launched command's descendants (native/agent/lib/follow.c, registry.c, dlopen.c): a fork
// child, an exec'd copy of the target and an exec'd other binary mapping the probed library all count hits,
// from their main on; a thread created after attach too; a hook on a library loaded later by dlopen is
// pending, then set in every process that loads it; closing the channel unhooks every descendant (they keep
// calling, counts stop), also when the root exited first; kill -9 of the process holding the channel: every
// agent unhooks within a second; a descendant overwriting the registry breaks no agent; forks while hooks
// come and go neither hang nor hurt the children.
import t from 'tap';
import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { loadNative, type NativeAddon, type NativeShmMap } from '../backends/linux/native.js';
import type { ChannelHook } from '../backends/userspace/attach/channel.js';
import { buildAgent, counterMap, counting, hookRequest, launchUnderAgent, peekCounter, sleep } from './agent-common.js';
import { BUILD, FIXTURES, ROOT, runCli, pollUntil as until } from './helpers.js';

const OUT = path.join(BUILD, 'agent-follow');
const AGENT = path.join(OUT, 'libwbpf_agent.so');
const SRC = path.join(FIXTURES, 'agent');
const LIB = path.join(OUT, 'libfollow.so');
const DL_LIB = path.join(OUT, 'libfollow-dl.so');
const TARGET = path.join(OUT, 'follow-target');
const OTHER = path.join(OUT, 'follow-other');
const UPROBE_TARGET = path.join(OUT, 'uprobe-target');
const APP = path.join(ROOT, 'matrix', 'build', 'uprobe.wasm');
const KEYS = 16;

// counter[PARM1] += 1 (array map 1; a key out of range counts nothing)
const COUNT_BY_ARG = counting('PARM1');

function build(): void {
  fs.mkdirSync(OUT, { recursive: true });
  buildAgent(OUT);
  const steps: string[][] = [
    ['gcc', '-O2', '-shared', '-fPIC', path.join(SRC, 'follow-lib.c'), '-o', LIB],
    ['gcc', '-O2', '-shared', '-fPIC', '-DDL', path.join(SRC, 'follow-lib.c'), '-o', DL_LIB],
    ['gcc', '-O2', path.join(SRC, 'follow-target.c'), '-o', TARGET, `-L${OUT}`, '-lfollow', '-Wl,-rpath,$ORIGIN', '-lpthread', '-ldl'],
    ['gcc', '-O2', path.join(SRC, 'follow-other.c'), '-o', OTHER, `-L${OUT}`, '-lfollow', '-Wl,-rpath,$ORIGIN'],
    ['gcc', '-O2', '-fcf-protection=full', path.join(SRC, 'uprobe-target.c'), '-o', UPROBE_TARGET, '-lpthread'],
  ];
  for (const [cmd, ...args] of steps) {
    const r = spawnSync(cmd!, args, { encoding: 'utf8' });
    if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')}: ${r.stderr}`);
  }
}

const hookOn = (binary: string, func: string, id: number, progId: number): ChannelHook => hookRequest(binary, func, id, progId);

function counts(native: NativeAddon, counter: NativeShmMap): bigint[] {
  return Array.from({ length: KEYS }, (_, key) => peekCounter(native, counter, key));
}

/** a fresh directory for the processes' stop/go files and log */
function workdir(tt: Tap.Test): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'wbpf-follow-'));
  tt.teardown(() => {
    fs.writeFileSync(path.join(dir, 'stop'), '');
    setTimeout(() => fs.rmSync(dir, { recursive: true, force: true }), 2000).unref();
  });
  return dir;
}

/** the processes still running the target or the other binary, by the directory they were given */
function runningIn(dir: string): number[] {
  const out: number[] = [];
  for (const p of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(p)) continue;
    try {
      if (fs.readFileSync(`/proc/${p}/cmdline`, 'utf8').split('\0')[1] === dir) out.push(Number(p));
    } catch {
      // gone
    }
  }
  return out;
}

/** the log lines "key K calls N" as K -> N, and whether the root saw its children exit 0 */
function readLog(dir: string): { calls: Map<number, bigint>; ok: boolean } {
  const text = fs.existsSync(path.join(dir, 'log')) ? fs.readFileSync(path.join(dir, 'log'), 'utf8') : '';
  const calls = new Map<number, bigint>();
  for (const m of text.matchAll(/^key (\d+) calls (\d+)$/gm)) calls.set(Number(m[1]), BigInt(m[2]!));
  return { calls, ok: /^children ok$/m.test(text) };
}

if (process.arch !== 'x64') {
  t.pass('the inline hook supports x86-64 only for now');
} else {
  t.setTimeout(240_000);
  const native = loadNative();
  build();

  const counterOf = (tt: Tap.Test): NativeShmMap => counterMap(tt, native, KEYS);

  t.test('fork, exec of itself and of another binary, a new thread: counted from main; close unhooks them all', async (tt) => {
    const dir = workdir(tt);
    const counter = counterOf(tt);
    const { agent, exited } = launchUnderAgent(tt, AGENT, [TARGET, dir, 'tree', OTHER]);
    agent.sendMap({ id: 1, fd: counter.fd, notifyFd: -1 });
    agent.sendProgram({ id: 1, insns: COUNT_BY_ARG });
    tt.match(agent.sendHook(hookOn(LIB, 'follow_fn', 1, 1)), /^hook 1 at 0x[0-9a-f]+$/, 'the root hooks follow_fn in libfollow.so');
    agent.start();

    const all = (c: bigint[]): boolean => [0, 1, 2, 3].every((k) => c[k]! > 0n);
    tt.ok(await until(() => all(counts(native, counter)), 20_000), 'hits counted in the root\'s new thread, the fork child, the exec\'d target and the exec\'d other binary');
    const c = counts(native, counter);
    tt.same(c.slice(8, 12), [1n, 1n, 1n, 1n], 'each process\'s first call (at the start of main) counted once');
    tt.equal(runningIn(dir).length, 4, 'four processes run');

    agent.close();
    await sleep(1500);
    const before = counts(native, counter);
    await sleep(1000);
    const after = counts(native, counter);
    tt.same(after, before, 'after close, no process counts any more');
    tt.equal(runningIn(dir).length, 4, 'while all four keep running');

    fs.writeFileSync(path.join(dir, 'stop'), '');
    tt.equal(await exited, 0, 'the root exits 0');
    const log = readLog(dir);
    tt.ok(log.ok, 'every descendant exited 0');
    for (const k of [0, 1, 2, 3]) {
      const calls = log.calls.get(k) ?? 0n;
      tt.ok(calls > after[k]!, `key ${k}: ${calls} calls, ${after[k]} counted (it kept calling unhooked)`);
    }
  });

  t.test('the root exits first: closing the channel still unhooks its orphaned child', async (tt) => {
    const dir = workdir(tt);
    const counter = counterOf(tt);
    const { agent, exited } = launchUnderAgent(tt, AGENT, [TARGET, dir, 'orphan'], true);
    agent.sendMap({ id: 1, fd: counter.fd, notifyFd: -1 });
    agent.sendProgram({ id: 1, insns: COUNT_BY_ARG });
    agent.sendHook(hookOn(LIB, 'follow_fn', 1, 1));
    agent.start();
    tt.equal(await exited, 0, 'the root exits 0');
    tt.ok(await until(() => counts(native, counter)[1]! > 0n, 20_000), 'its child counts');
    agent.close();
    await sleep(1000);
    const before = counts(native, counter);
    await sleep(1000);
    tt.same(counts(native, counter), before, 'after close, the child counts no more');
    tt.equal(runningIn(dir).length, 1, 'while it keeps running');
    fs.writeFileSync(path.join(dir, 'stop'), '');
    tt.ok(await until(() => (readLog(dir).calls.get(1) ?? 0n) > before[1]!, 10_000), 'it kept calling unhooked and ended');
  });

  t.test('a hostile descendant overwrites the registry: no agent breaks, the others keep their hooks', async (tt) => {
    const dir = workdir(tt);
    const counter = counterOf(tt);
    const { agent, exited } = launchUnderAgent(tt, AGENT, [TARGET, dir, 'scribble']);
    agent.sendMap({ id: 1, fd: counter.fd, notifyFd: -1 });
    agent.sendProgram({ id: 1, insns: COUNT_BY_ARG });
    agent.sendHook(hookOn(LIB, 'follow_fn', 1, 1));
    agent.start();
    tt.ok(await until(() => runningIn(dir).length === 3, 10_000), 'the root, the scribbler and an exec\'d child after it run');
    await sleep(500);
    const a = counts(native, counter);
    await sleep(500);
    const b = counts(native, counter);
    tt.ok(b[0]! > a[0]! && b[1]! > a[1]!, 'the root and the scribbler still count (their hooks stand)');
    tt.match(agent.sendHook(hookOn(LIB, 'follow_fn', 2, 1)), /^hook 2 at 0x[0-9a-f]+$/, 'the root still answers');
    fs.writeFileSync(path.join(dir, 'stop'), '');
    tt.equal(await exited, 0, 'the root exits 0');
    tt.ok(readLog(dir).ok, 'and its children exited 0');
  });

  t.test('forks while hooks come and go (200 cycles): no hang, every child exits 0, none counts after the end', async (tt) => {
    const dir = workdir(tt);
    const counter = counterOf(tt);
    const { agent, exited } = launchUnderAgent(tt, AGENT, [TARGET, dir, 'forker']);
    agent.sendMap({ id: 1, fd: counter.fd, notifyFd: -1 });
    agent.sendProgram({ id: 1, insns: COUNT_BY_ARG });
    agent.start();
    const target = hookOn(LIB, 'follow_fn', 0, 1);
    let refused = 0;
    for (let i = 1; i <= 200; i++) {
      if (!/^hook \d+ at 0x/.test(agent.sendHook({ ...target, id: i }))) refused++;
      await sleep(2);
      agent.unhook(i);
    }
    tt.equal(refused, 0, 'every hook set');
    const c = counts(native, counter);
    tt.ok(c[0]! > 0n && c[1]! > 0n, `the root (${c[0]}) and its children (${c[1]}) counted inside the windows`);
    agent.close();
    await sleep(300);
    const before = counts(native, counter);
    await sleep(500);
    tt.same(counts(native, counter), before, 'after the last unhook and close nothing counts');
    fs.writeFileSync(path.join(dir, 'stop'), '');
    tt.equal(await exited, 0, 'the root exits 0');
    tt.match(fs.readFileSync(path.join(dir, 'log'), 'utf8'), /^forks [1-9]\d* ok$/m, 'every child exited 0');
  });

  t.test('a hook on a library loaded later by dlopen: pending, then set in each process that loads it', async (tt) => {
    const dir = workdir(tt);
    const counter = counterOf(tt);
    const { agent, stdout, exited } = launchUnderAgent(tt, AGENT, [TARGET, dir, 'dlopen', DL_LIB]);
    agent.sendMap({ id: 1, fd: counter.fd, notifyFd: -1 });
    agent.sendProgram({ id: 1, insns: COUNT_BY_ARG });
    agent.start();
    await sleep(200);
    tt.match(agent.sendHook(hookOn(DL_LIB, 'dl_fn', 1, 1)), /^hook 1 pending: file offset 0x[0-9a-f]+ of dev \d+:\d+ inode \d+ is not mapped executable$/,
      'not mapped yet: pending');
    fs.writeFileSync(path.join(dir, 'go'), '');
    tt.equal(await exited, 0, 'the target exits 0');
    tt.match(stdout(), /dlopen done/, 'both processes loaded the library and called dl_fn');
    const c = counts(native, counter);
    tt.same([c[0], c[1]], [100n, 100n], 'every call counted, in the root (dlopen) and in its fork child (dlmopen)');
    agent.poll();
    tt.same(agent.notices, [], 'no notice');
  });

  t.test('kill -9 of the host: every agent unhooks within a second, the processes run on and exit 0', async (tt) => {
    const dir = workdir(tt);
    const counter = counterOf(tt);
    const h = hookOn(LIB, 'follow_fn', 1, 1);
    const arg = JSON.stringify({
      agent: AGENT,
      cmd: [TARGET, dir, 'tree', OTHER],
      prog: Buffer.from(COUNT_BY_ARG).toString('base64'),
      hook: { ...h, dev: String(h.dev), ino: String(h.ino) },
    });
    const holder = spawn(process.execPath, ['--import', 'tsx', path.join(SRC, 'follow-holder.ts'), arg], {
      cwd: ROOT,
      stdio: ['ignore', 'pipe', 'pipe', counter.fd],
    });
    tt.teardown(() => {
      if (holder.exitCode === null && holder.signalCode === null) holder.kill('SIGKILL');
    });
    let out = '', err = '';
    holder.stdout?.on('data', (d: Buffer) => (out += d.toString()));
    holder.stderr?.on('data', (d: Buffer) => (err += d.toString()));
    tt.ok(await until(() => /ready \d+/.test(out), 30_000), 'the holder started the command', { stderr: err });
    const root = Number(/ready (\d+)/.exec(out)![1]);
    const all = (c: bigint[]): boolean => [0, 1, 2, 3].every((k) => c[k]! > 0n);
    tt.ok(await until(() => all(counts(native, counter)), 20_000), 'all four processes count');

    const gone = new Promise<void>((resolve) => holder.on('exit', () => resolve()));
    holder.kill('SIGKILL');
    await gone;
    await sleep(1000);
    const before = counts(native, counter);
    await sleep(1000);
    const after = counts(native, counter);
    tt.same(after, before, 'within a second of the kill no process counts any more');
    tt.equal(runningIn(dir).length, 4, 'while all four keep running');

    fs.writeFileSync(path.join(dir, 'stop'), '');
    tt.ok(await until(() => !fs.existsSync(`/proc/${root}`) || runningIn(dir).length === 0, 20_000), 'they end');
    tt.ok(await until(() => readLog(dir).ok, 5_000), 'the root saw every descendant exit 0');
    for (const k of [0, 1, 2, 3]) tt.ok((readLog(dir).calls.get(k) ?? 0n) > after[k]!, `key ${k} kept calling unhooked`);
  });

  t.test('wasm-bpf run through /bin/sh -c: a forked and exec\'d command and the shell\'s exec\'d last one', async (tt) => {
    if (!fs.existsSync(APP)) throw new Error(`${APP} is not built: make -C matrix`);
    const T = UPROBE_TARGET;
    // the exec'd command pauses 200 ms after each call: its last records are read before its exit stops the app
    const r = runCli(['run', '--backend', 'userspace', APP, T, '--', '/bin/sh', '-c', `${T} 2 3 5 && exec ${T} 4 5 2 0 1 200000`], { timeout: 90_000 });
    tt.equal(r.code, 0, 'exit status 0 (the command\'s)', { stderr: r.stderr });
    tt.match(r.stdout, /uprobe_target_add\(2, 3\) = 5, 5 calls/, 'the shell\'s child ran');
    tt.match(r.stdout, /uprobe_target_add\(4, 5\) = 9, 2 calls/, 'the command the shell exec\'d ran');
    const lines = r.stdout.split('\n');
    const of = (re: RegExp): string[] => lines.filter((l) => re.test(l)).map((l) => l.replace(/^\S+ pid=\d+ /, ''));
    tt.same(of(/^UPROBE /), [...Array(5).fill('a=2 b=3'), ...Array(2).fill('a=4 b=5')], 'every entry, with its arguments');
    tt.same(of(/^URETPROBE /), [...Array(5).fill('ret=5'), ...Array(2).fill('ret=9')], 'every return, with its value');
    const pids = new Set(lines.filter((l) => /^URE?T?PROBE /.test(l)).map((l) => /pid=(\d+)/.exec(l)?.[1]));
    tt.equal(pids.size, 2, 'from two processes');
  });
}
