// What each example app must show to pass: the harness starts the app (through a Launcher: the Wasm
// build under wasm-bpf, with or without forced fallbacks, or its native libbpf twin), causes the
// events the app reports, and checks that the specific events it caused arrived with the right
// fields. The tap tests (test/examples.test.ts) and the compatibility matrix (matrix/run.ts) both
// judge an app with these functions, so a cell of the table means what a passing test means.
import fs from 'node:fs';
import net from 'node:net';
import dgram from 'node:dgram';
import path from 'node:path';
import { spawn } from 'node:child_process';
import { Running, descendants, exec, sleep, until } from './running.js';

export const APPS = ['bootstrap', 'execve', 'opensnoop', 'runqlat', 'sockfilter', 'sockops', 'uprobe', 'xdp', 'lsm', 'kprobe', 'fentry'] as const;
export type App = (typeof APPS)[number];

/** starts one build of an app */
export interface Launcher {
  /** what runs: "wasm", "native", "wasm --assume-missing ringbuf", ... (for messages) */
  readonly label: string;
  /** exit status after Ctrl-C: 130 under wasm-bpf, 0 for a native app */
  readonly interruptStatus: number;
  /**
   * the build traces only the commands it launches (the userspace backend: `wasm-bpf run APP ARGS --
   * COMMAND`): a scenario whose events come from a process it starts launches it through the app
   */
  readonly launches?: boolean;
  start(app: App, args: string[], opts?: { netns?: string }): Running;
}

/** where the scenario runs */
export interface Place {
  /** matrix/build for this machine's arch (uprobe-target lives there) */
  build: string;
  /** writable scratch directory */
  tmp: string;
  /** node, for helper processes inside network namespaces */
  node: string;
  /** a cgroup v2 directory the sockops app may attach to */
  cgroup: string;
}

export class CheckFailed extends Error {
  override name = 'CheckFailed';
}

function expect(ok: boolean, what: string, run?: Running): asserts ok {
  if (!ok) throw new CheckFailed(run ? `${what}\nstdout:\n${run.stdout.slice(-2000)}\nstderr:\n${run.stderr.slice(-3000)}` : what);
}

async function stop(l: Launcher, run: Running): Promise<void> {
  const r = await run.interrupt('SIGINT');
  expect(r.code === l.interruptStatus, `Ctrl-C: exit status ${r.code ?? r.signal}, expected ${l.interruptStatus}`, run);
  expect(r.ms < 5000, `Ctrl-C took ${r.ms} ms`, run);
}

/** the first of these binaries that exists (an arm64 guest's userland is small) */
function bin(...candidates: string[]): string {
  return candidates.find((c) => fs.existsSync(c)) ?? candidates[0]!;
}

const esc = (s: string): string => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

/** one check per app; resolves with the line that proved it, throws CheckFailed (or a timeout) otherwise */
export const SCENARIOS: Record<App, (l: Launcher, p: Place) => Promise<string>> = {
  async bootstrap(l) {
    const run = l.start('bootstrap', []);
    await run.waitFor(/^# bootstrap/, 60_000);
    const sh = bin('/bin/sh');
    const pids: number[] = [];
    await until(run, /^EXEC /, async () => void pids.push((await exec(sh, ['-c', 'exit 3'])).pid), 30_000);
    let exit = '';
    for (let i = 0; i < 100 && !exit; i++) {
      exit = pids.map((p) => run.lines(new RegExp(`^EXIT pid=${p} `))[0]).find((x) => x) ?? '';
      if (!exit) await sleep(100);
    }
    expect(/exit_code=3 /.test(exit), `no EXIT line with exit_code=3 for the shells ${pids.join(',')}`, run);
    const pid = /^EXIT pid=(\d+) /.exec(exit)![1];
    const execLine = run.lines(new RegExp(`^EXEC pid=${pid} `))[0] ?? '';
    expect(execLine.endsWith(`filename=${sh}`), `EXEC line of pid ${pid} names ${sh}: ${execLine}`, run);
    await stop(l, run);
    return exit;
  },

  async execve(l) {
    const run = l.start('execve', []);
    await run.waitFor(/^# execve/, 60_000);
    const echo = bin('/bin/echo', '/usr/bin/echo', '/bbin/echo');
    const line = await until(run, /arg1=wasm-bpf-marker-1/, async () => void (await exec(echo, ['wasm-bpf-marker-1'])), 30_000);
    expect(new RegExp(`^EXECVE pid=\\d+ uid=0 comm=\\S+ filename=${esc(echo)} arg1=wasm-bpf-marker-1$`).test(line), `EXECVE line: ${line}`, run);
    await stop(l, run);
    return line;
  },

  async opensnoop(l, p) {
    const file = path.join(p.tmp, 'opensnoop-target.txt');
    fs.writeFileSync(file, 'x');
    const run = l.start('opensnoop', ['-p', String(process.pid)]);
    await run.waitFor(/^# opensnoop/, 60_000);
    const line = await until(run, /opensnoop-target\.txt/, () => fs.closeSync(fs.openSync(file, 'r')), 30_000);
    expect(new RegExp(`^OPEN pid=${process.pid} comm=\\S+ ret=\\d+ flags=0x[0-9a-f]+ filename=${esc(file)}$`).test(line), `OPEN line: ${line}`, run);
    const missing = await until(run, /no-such-file-for-opensnoop/, () => {
      try {
        fs.openSync('/no-such-file-for-opensnoop', 'r');
      } catch {
        /* expected */
      }
    });
    expect(/ret=-2 /.test(missing), `a missing file reports ret=-2: ${missing}`, run);
    const others = run.lines(/^OPEN /).filter((x) => !x.includes(`pid=${process.pid} `));
    expect(others.length === 0, `-p lets other processes through: ${others[0]}`, run);
    await stop(l, run);
    return line;
  },

  async runqlat(l) {
    const run = l.start('runqlat', ['1', '2']);
    const { code } = await run.exited;
    expect(code === 0, `runqlat exited ${code}`, run);
    const hists = run.lines(/^HIST /);
    expect(hists.length === 2, `two HIST lines, got ${hists.length}`, run);
    for (const h of hists) {
      const m = /^HIST key=0 total=(\d+) slots=((?:\d+,){25}\d+)$/.exec(h);
      expect(m !== null, `HIST line: ${h}`, run);
      const sum = m[2]!.split(',').map(Number).reduce((a, b) => a + b, 0);
      expect(sum === Number(m[1]), `total ${m[1]} is the sum of the slots (${sum})`, run);
      expect(Number(m[1]) > 0, 'the scheduler ran something', run);
    }
    return hists[1]!;
  },

  async sockfilter(l) {
    const run = l.start('sockfilter', ['lo']);
    await run.waitFor(/^# sockfilter/, 60_000);
    const sock = dgram.createSocket('udp4');
    try {
      await new Promise<void>((r) => sock.bind(0, '127.0.0.1', () => r()));
      const port = 40000 + (process.pid % 20000);
      const re = new RegExp(`^PKT proto=UDP src=127\\.0\\.0\\.1:${sock.address().port} dst=127\\.0\\.0\\.1:${port} `);
      const line = await until(run, re, () => new Promise<void>((r) => sock.send('hello', port, '127.0.0.1', () => r())), 30_000);
      expect(/len=\d+$/.test(line), `PKT line: ${line}`, run);
      await stop(l, run);
      return line;
    } finally {
      sock.close();
    }
  },

  async sockops(l, p) {
    const run = l.start('sockops', [p.cgroup]);
    await run.waitFor(/^# sockops/, 60_000);
    const server = net.createServer((s) => s.end());
    try {
      await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
      const port = (server.address() as net.AddressInfo).port;
      const re = new RegExp(`^TCP op=active local=127\\.0\\.0\\.1:\\d+ remote=127\\.0\\.0\\.1:${port}$`);
      const line = await until(run, re, () => new Promise<void>((r) => void net.connect(port, '127.0.0.1').on('close', () => r()).on('error', () => r())), 30_000);
      expect(run.lines(new RegExp(`^TCP op=passive local=127\\.0\\.0\\.1:${port} `)).length > 0, 'the passive side too', run);
      await stop(l, run);
      return line;
    } finally {
      server.close();
    }
  },

  async uprobe(l, p) {
    const target = path.join(p.build, 'uprobe-target');
    if (l.launches) {
      // the target runs under the app, which ends (with the target's status) when the target exits
      const run = l.start('uprobe', [target, '--', target, '3', '4', '2', '0']);
      // the processes under the app while it runs: the target among them (held before its main until
      // the app has attached), so the events' pid can be checked as the kernel column checks it
      const under = new Set<number>();
      const watch = setInterval(() => {
        if (run.child.pid) for (const p of descendants(run.child.pid).slice(1)) under.add(p);
      }, 20);
      const r = await run.exited.finally(() => clearInterval(watch));
      expect(r.code === 0, `the app with its launched target exited ${r.code ?? r.signal}`, run);
      expect(run.lines(/^uprobe-target: /)[0] === 'uprobe-target: uprobe_target_add(3, 4) = 7, 2 calls', 'the target ran to its end', run);
      const calls = run.lines(/^UPROBE pid=\d+ /);
      const rets = run.lines(/^URETPROBE pid=\d+ /);
      const pids = new Set([...calls, ...rets].map((c) => /pid=(\d+)/.exec(c)![1]));
      expect(pids.size === 1, `one traced pid: ${[...pids].join(', ')}`, run);
      const pid = [...pids][0]!;
      expect(under.has(Number(pid)), `the events' pid ${pid} is the launched target's (processes under the app: ${[...under].join(', ') || 'none seen'})`, run);
      expect(calls.length === 2 && calls.every((c) => c === `UPROBE pid=${pid} a=3 b=4`), `two UPROBE a=3 b=4 lines: ${calls.join(' | ')}`, run);
      expect(rets.length === 2 && rets.every((c) => c === `URETPROBE pid=${pid} ret=7`), `two URETPROBE ret=7 lines: ${rets.join(' | ')}`, run);
      return calls[0]!;
    }
    const run = l.start('uprobe', [target]);
    await run.waitFor(/^# uprobe/, 60_000);
    const child = await exec(target, ['3', '4', '2', '0']);
    expect(child.status === 0, `uprobe-target exited ${child.status}: ${child.stderr}`);
    await until(run, new RegExp(`^URETPROBE pid=${child.pid} `), () => {}, 30_000);
    await sleep(300);
    const calls = run.lines(new RegExp(`^UPROBE pid=${child.pid} `));
    const rets = run.lines(new RegExp(`^URETPROBE pid=${child.pid} `));
    expect(calls.length === 2 && calls.every((c) => c === `UPROBE pid=${child.pid} a=3 b=4`), `two UPROBE a=3 b=4 lines: ${calls.join(' | ')}`, run);
    expect(rets.length === 2 && rets.every((c) => c === `URETPROBE pid=${child.pid} ret=7`), `two URETPROBE ret=7 lines: ${rets.join(' | ')}`, run);
    await stop(l, run);
    return calls[0]!;
  },

  async xdp(l, p) {
    const tag = `${process.pid % 100000}`;
    const a = `wbma${tag}`;
    const b = `wbmb${tag}`;
    const ip = async (...args: string[]): Promise<void> => {
      const r = await exec('ip', args);
      expect(r.status === 0, `ip ${args.join(' ')}: exit ${r.status}: ${r.stderr.trim()}`);
    };
    await ip('netns', 'add', a);
    try {
      await ip('netns', 'add', b);
      await ip('link', 'add', 'wbm0', 'netns', a, 'type', 'veth', 'peer', 'name', 'wbm1', 'netns', b);
      await ip('-n', a, 'addr', 'add', '10.213.9.1/24', 'dev', 'wbm0');
      await ip('-n', b, 'addr', 'add', '10.213.9.2/24', 'dev', 'wbm1');
      await ip('-n', a, 'link', 'set', 'wbm0', 'up');
      await ip('-n', b, 'link', 'set', 'wbm1', 'up');
      const run = l.start('xdp', ['-i', '200', 'wbm1'], { netns: b });
      await run.waitFor(/^# xdp/, 60_000);
      // five datagrams from the other namespace, sent by one short node process
      const send = `const s=require('dgram').createSocket('udp4');let n=0;const go=()=>s.send('x',9,'10.213.9.2',()=>{if(++n<5)go();else s.close()});go();`;
      const sender = new Running(spawn('ip', ['netns', 'exec', a, p.node, '-e', send], { stdio: ['ignore', 'pipe', 'pipe'] }));
      const sent = await sender.exited;
      expect(sent.code === 0, `the sender in ${a} failed: ${sender.stderr}`);
      const line = await until(run, /^XDP proto=UDP packets=5 /, () => {}, 30_000);
      expect(/bytes=\d+$/.test(line), `XDP line: ${line}`, run);
      await stop(l, run);
      return line;
    } finally {
      await exec('ip', ['netns', 'del', a]);
      await exec('ip', ['netns', 'del', b]);
    }
  },

  async lsm(l) {
    const run = l.start('lsm', []);
    await run.waitFor(/^# lsm/, 60_000);
    const t = bin('/bin/true', '/usr/bin/true', '/bbin/true');
    const pids = new Set<number>();
    const line = await until(run, new RegExp(`filename=${esc(t)}$`), async () => void pids.add((await exec(t, [])).pid), 30_000);
    const pid = Number(/^LSM pid=(\d+) /.exec(line)?.[1]);
    expect(pids.has(pid) && /^LSM pid=\d+ comm=\S+ filename=/.test(line), `LSM line for one of ${[...pids].join(',')}: ${line}`, run);
    await stop(l, run);
    return line;
  },

  kprobe: (l, p) => unlinks('kprobe', l, p),
  fentry: (l, p) => unlinks('fentry', l, p),
};

/** kprobe and fentry: the unlink of a file the harness creates, on entry and on return */
async function unlinks(app: 'kprobe' | 'fentry', l: Launcher, p: Place): Promise<string> {
  const file = path.join(p.tmp, `${app}-unlink-me`);
  const run = l.start(app, []);
  await run.waitFor(new RegExp(`^# ${app}`), 60_000);
  const line = await until(run, new RegExp(`^UNLINK pid=${process.pid} filename=\\S*${app}-unlink-me$`), () => {
    fs.writeFileSync(file, 'x');
    fs.unlinkSync(file);
  }, 30_000);
  await until(run, new RegExp(`^UNLINK_RET pid=${process.pid} ret=0$`), () => {}, 10_000);
  await stop(l, run);
  return line;
}
