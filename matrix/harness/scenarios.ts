// What each example app must show to pass: the harness starts the app (through a Launcher: the Wasm
// build under wasm-bpf, with or without forced fallbacks, or its native libbpf twin), causes the
// events the app reports, and checks that the specific events it caused arrived with the right
// fields. The apps run with `-j` (one JSON object per event, matrix/apps/common/json.h), so no check
// depends on the human layout. The tap tests (test/examples.test.ts) and the compatibility matrix
// (matrix/run.ts) both judge an app with these functions, so a cell of the table means what a
// passing test means.
import fs from 'node:fs';
import net from 'node:net';
import dgram from 'node:dgram';
import path from 'node:path';
import { spawn } from 'node:child_process';
import { Running, descendants, exec, sleep, untilEvent, type AppEvent } from './running.js';

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

/** an event as evidence: its JSON line */
const show = (e: AppEvent | undefined): string => (e ? JSON.stringify(e) : 'none');

/** one check per app; resolves with the event that proved it (its JSON line), throws CheckFailed (or a timeout) otherwise */
export const SCENARIOS: Record<App, (l: Launcher, p: Place) => Promise<string>> = {
  async bootstrap(l) {
    const sh0 = bin('/bin/sh', '/usr/bin/sh');
    if (l.launches) {
      // a shell launched under the app runs a shell that exits 3 (exec'd descendants and their exits are traced)
      const run = l.start('bootstrap', ['-j', '--', sh0, '-c', `${sh0} -c 'exit 3'; exit 0`]);
      const r = await run.exited;
      expect(r.code === 0, `the app with its launched shell exited ${r.code ?? r.signal}`, run);
      const root = run.events((e) => e.event === 'exec')[0];
      const exit = run.events((e) => e.event === 'exit' && e['exit_code'] === 3 && e['ppid'] === root?.['pid'])[0];
      expect(exit !== undefined, `an exit event with exit_code 3 of the launched shell's child: ${run.events(() => true).map(show).join(' | ') || 'no event'}`, run);
      const ex = run.events((e) => e.event === 'exec' && e['pid'] === exit['pid'])[0];
      expect(ex?.['filename'] === sh0 && ex['ppid'] === root?.['pid'] && ex['comm'] === path.basename(sh0), `the exec event of pid ${exit['pid']} names ${sh0}, its parent the launched shell: ${show(ex)}`, run);
      return show(exit);
    }
    const run = l.start('bootstrap', ['-j']);
    await run.attached('bootstrap');
    const sh = bin('/bin/sh');
    const pids: number[] = [];
    await untilEvent(run, (e) => e.event === 'exec' && pids.includes(e['pid'] as number), 'the exec of a shell it ran', async () => void pids.push((await exec(sh, ['-c', 'exit 3'])).pid), 30_000);
    let exit: AppEvent | undefined;
    for (let i = 0; i < 100 && !exit; i++) {
      exit = run.events((e) => e.event === 'exit' && pids.includes(e['pid'] as number) && e['exit_code'] === 3)[0];
      if (!exit) await sleep(100);
    }
    expect(exit !== undefined, `no exit event with exit_code 3 for the shells ${pids.join(',')}`, run);
    const ex = run.events((e) => e.event === 'exec' && e['pid'] === exit['pid'])[0];
    expect(ex?.['filename'] === sh, `the exec event of pid ${exit['pid']} names ${sh}: ${show(ex)}`, run);
    await stop(l, run);
    return show(exit);
  },

  async execve(l) {
    if (l.launches) {
      // a shell launched under the app execs echo with a marker (after a builtin-only pause: execve's perf buffer is
      // read once the app has attached, and an exec before that is lost with any backend)
      const sh = bin('/bin/sh', '/usr/bin/sh'), echo = bin('/bin/echo', '/usr/bin/echo', '/bbin/echo');
      const run = l.start('execve', ['-j', '--', sh, '-c', `i=0; while [ $i -lt 40000 ]; do i=$((i+1)); done; ${echo} wasm-bpf-marker-1 > /dev/null; exit 0`]);
      const r = await run.exited;
      expect(r.code === 0, `the app with its launched shell exited ${r.code ?? r.signal}`, run);
      const e = run.events((x) => x['arg1'] === 'wasm-bpf-marker-1')[0];
      expect(e !== undefined && e.event === 'exec' && e['filename'] === echo && e['ret'] === 0 && e['comm'] === 'echo' && typeof e['uid'] === 'number', `exec event of the marker echo: ${run.events(() => true).map(show).join(' | ') || 'no event'}`, run);
      expect(e['pid'] !== process.pid && e['ppid'] !== e['pid'], `the echo's pid and parent: ${show(e)}`, run);
      return show(e);
    }
    const run = l.start('execve', ['-j']);
    await run.attached('execve');
    const echo = bin('/bin/echo', '/usr/bin/echo', '/bbin/echo');
    const pids = new Set<number>();
    const e = await untilEvent(run, (e) => e['arg1'] === 'wasm-bpf-marker-1', 'the marker exec', async () => void pids.add((await exec(echo, ['wasm-bpf-marker-1'])).pid), 30_000);
    expect(e.event === 'exec' && e['filename'] === echo && e['uid'] === 0 && e['ret'] === 0 && typeof e['comm'] === 'string', `exec event: ${show(e)}`, run);
    expect(pids.has(e['pid'] as number) && e['ppid'] === process.pid, `the exec event is of an echo this process ran (${[...pids].join(',')}, parent ${process.pid}): ${show(e)}`, run);
    await stop(l, run);
    return show(e);
  },

  async opensnoop(l, p) {
    const file = path.join(p.tmp, 'opensnoop-target.txt');
    fs.writeFileSync(file, 'x');
    fs.chmodSync(file, 0o644);
    if (l.launches) {
      // a shell launched under the app runs cat on the file and on a missing one (exec'd descendants are traced)
      const sh = bin('/bin/sh', '/usr/bin/sh'), cat = bin('/bin/cat', '/usr/bin/cat');
      const run = l.start('opensnoop', ['-j', '--', sh, '-c', `${cat} ${file} > /dev/null; ${cat} /no-such-file-for-opensnoop 2> /dev/null; exit 0`]);
      const r = await run.exited;
      expect(r.code === 0, `the app with its launched shell exited ${r.code ?? r.signal}`, run);
      const opens = run.events((e) => e.event === 'open' && e['comm'] === 'cat');
      const e = opens.find((x) => x['filename'] === file);
      expect(e !== undefined && (e['ret'] as number) >= 0 && typeof e['flags'] === 'number' && e['pid'] !== process.pid, `cat's open of the file: ${opens.map(show).join(' | ') || 'no event'}`, run);
      const missing = opens.find((x) => x['filename'] === '/no-such-file-for-opensnoop');
      expect(missing !== undefined && missing['ret'] === -2, `a missing file reports ret -2: ${opens.map(show).join(' | ')}`, run);
      return show(e);
    }
    const run = l.start('opensnoop', ['-j', '-p', String(process.pid)]);
    await run.attached('opensnoop');
    const e = await untilEvent(run, (e) => e['filename'] === file, 'the open of the target', () => fs.closeSync(fs.openSync(file, 'r')), 30_000);
    expect(e.event === 'open' && e['pid'] === process.pid && typeof e['comm'] === 'string' && (e['ret'] as number) >= 0 && typeof e['flags'] === 'number', `open event: ${show(e)}`, run);
    const missing = await untilEvent(run, (e) => e['filename'] === '/no-such-file-for-opensnoop', 'the open of a missing file', () => {
      try {
        fs.openSync('/no-such-file-for-opensnoop', 'r');
      } catch {
        /* expected */
      }
    });
    expect(missing['ret'] === -2, `a missing file reports ret -2: ${show(missing)}`, run);
    const others = run.events((e) => e.event === 'open' && e['pid'] !== process.pid);
    expect(others.length === 0, `-p lets other processes through: ${show(others[0])}`, run);
    await stop(l, run);
    return show(e);
  },

  async runqlat(l) {
    const run = l.start('runqlat', ['-j', '1', '2']);
    const { code } = await run.exited;
    expect(code === 0, `runqlat exited ${code}`, run);
    const hists = run.events((e) => e.event === 'hist');
    expect(hists.length === 2, `two hist events, got ${hists.length}`, run);
    for (const h of hists) {
      const slots = h['slots'];
      expect(h['key'] === 0 && h['unit'] === 'usecs' && Array.isArray(slots) && slots.length === 26, `hist event: ${show(h)}`, run);
      const sum = slots.reduce((a, b) => a + b, 0);
      expect(sum === h['total'], `total ${h['total']} is the sum of the slots (${sum})`, run);
      expect(sum > 0, 'the scheduler ran something', run);
    }
    return show(hists[1]);
  },

  async sockfilter(l) {
    const run = l.start('sockfilter', ['-j', 'lo']);
    await run.attached('sockfilter');
    const sock = dgram.createSocket('udp4');
    try {
      await new Promise<void>((r) => sock.bind(0, '127.0.0.1', () => r()));
      const port = 40000 + (process.pid % 20000);
      const mine = (e: AppEvent): boolean =>
        e.event === 'packet' && e['proto'] === 'UDP' && e['src'] === '127.0.0.1' && e['src_port'] === sock.address().port && e['dst'] === '127.0.0.1' && e['dst_port'] === port;
      const e = await untilEvent(run, mine, 'the UDP datagram', () => new Promise<void>((r) => sock.send('hello', port, '127.0.0.1', () => r())), 30_000);
      expect(typeof e['len'] === 'number' && e['len'] > 0, `packet event: ${show(e)}`, run);
      await stop(l, run);
      return show(e);
    } finally {
      sock.close();
    }
  },

  async sockops(l, p) {
    const run = l.start('sockops', ['-j', p.cgroup]);
    await run.attached('sockops');
    const server = net.createServer((s) => s.end());
    try {
      await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
      const port = (server.address() as net.AddressInfo).port;
      const active = (e: AppEvent): boolean => e.event === 'tcp' && e['op'] === 'active' && e['ipver'] === 4 && e['local'] === '127.0.0.1' && e['remote'] === '127.0.0.1' && e['remote_port'] === port;
      const e = await untilEvent(run, active, 'the active open', () => new Promise<void>((r) => void net.connect(port, '127.0.0.1').on('close', () => r()).on('error', () => r())), 30_000);
      // the passive side's event is its own ring record: on a slow guest it may be printed a poll later than the active one
      await run.waitEvent((e) => e.event === 'tcp' && e['op'] === 'passive' && e['local'] === '127.0.0.1' && e['local_port'] === port, 'the passive side too', 15_000);
      await stop(l, run);
      return show(e);
    } finally {
      server.close();
    }
  },

  async uprobe(l, p) {
    const target = path.join(p.build, 'uprobe-target');
    if (l.launches) {
      // the target runs under the app, which ends (with the target's status) when the target exits
      const run = l.start('uprobe', ['-j', target, '--', target, '3', '4', '2', '0']);
      // the processes under the app while it runs: the target among them (held before its main until
      // the app has attached), so the events' pid can be checked as the kernel column checks it
      const under = new Set<number>();
      const watch = setInterval(() => {
        if (run.child.pid) for (const p of descendants(run.child.pid).slice(1)) under.add(p);
      }, 20);
      const r = await run.exited.finally(() => clearInterval(watch));
      expect(r.code === 0, `the app with its launched target exited ${r.code ?? r.signal}`, run);
      expect(run.lines(/^uprobe-target: /)[0] === 'uprobe-target: uprobe_target_add(3, 4) = 7, 2 calls', 'the target ran to its end', run);
      const calls = run.events((e) => e.event === 'uprobe');
      const rets = run.events((e) => e.event === 'uretprobe');
      const pids = new Set([...calls, ...rets].map((c) => c['pid']));
      expect(pids.size === 1, `one traced pid: ${[...pids].join(', ')}`, run);
      const pid = [...pids][0] as number;
      expect(under.has(pid), `the events' pid ${pid} is the launched target's (processes under the app: ${[...under].join(', ') || 'none seen'})`, run);
      expect(calls.length === 2 && calls.every((c) => c['a'] === 3 && c['b'] === 4), `two uprobe events a=3 b=4: ${calls.map(show).join(' | ')}`, run);
      expect(rets.length === 2 && rets.every((c) => c['ret'] === 7), `two uretprobe events ret=7: ${rets.map(show).join(' | ')}`, run);
      return show(calls[0]);
    }
    const run = l.start('uprobe', ['-j', target]);
    await run.attached('uprobe');
    const child = await exec(target, ['3', '4', '2', '0']);
    expect(child.status === 0, `uprobe-target exited ${child.status}: ${child.stderr}`);
    // both calls' events (each its own record, maybe printed a poll apart on a slow guest), then a moment for any extra one
    for (const ev of ['uprobe', 'uretprobe']) {
      await run.waitEvent((e) => e.event === ev && e['pid'] === child.pid && run.events((x) => x.event === ev && x['pid'] === child.pid).length >= 2, `two ${ev} events of ${child.pid}`, 30_000);
    }
    await sleep(300);
    const calls = run.events((e) => e.event === 'uprobe' && e['pid'] === child.pid);
    const rets = run.events((e) => e.event === 'uretprobe' && e['pid'] === child.pid);
    expect(calls.length === 2 && calls.every((c) => c['a'] === 3 && c['b'] === 4), `two uprobe events a=3 b=4: ${calls.map(show).join(' | ')}`, run);
    expect(rets.length === 2 && rets.every((c) => c['ret'] === 7), `two uretprobe events ret=7: ${rets.map(show).join(' | ')}`, run);
    await stop(l, run);
    return show(calls[0]);
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
      const run = l.start('xdp', ['-j', '-i', '200', 'wbm1'], { netns: b });
      await run.attached('xdp');
      // five datagrams from the other namespace, sent by one short node process
      const send = `const s=require('dgram').createSocket('udp4');let n=0;const go=()=>s.send('x',9,'10.213.9.2',()=>{if(++n<5)go();else s.close()});go();`;
      const sender = new Running(spawn('ip', ['netns', 'exec', a, p.node, '-e', send], { stdio: ['ignore', 'pipe', 'pipe'] }));
      const sent = await sender.exited;
      expect(sent.code === 0, `the sender in ${a} failed: ${sender.stderr}`);
      const e = await untilEvent(run, (e) => e.event === 'proto' && e['proto'] === 'UDP' && e['packets'] === 5, 'the five UDP packets', () => {}, 30_000);
      expect(typeof e['bytes'] === 'number' && e['bytes'] > 0, `proto event: ${show(e)}`, run);
      await stop(l, run);
      return show(e);
    } finally {
      await exec('ip', ['netns', 'del', a]);
      await exec('ip', ['netns', 'del', b]);
    }
  },

  async lsm(l) {
    const run = l.start('lsm', ['-j']);
    await run.attached('lsm');
    const t = bin('/bin/true', '/usr/bin/true', '/bbin/true');
    const pids = new Set<number>();
    const e = await untilEvent(run, (e) => e['filename'] === t, `an exec of ${t}`, async () => void pids.add((await exec(t, [])).pid), 30_000);
    expect(e.event === 'exec' && pids.has(e['pid'] as number) && typeof e['comm'] === 'string', `exec event for one of ${[...pids].join(',')}: ${show(e)}`, run);
    await stop(l, run);
    return show(e);
  },

  kprobe: (l, p) => unlinks('kprobe', l, p),
  fentry: (l, p) => unlinks('fentry', l, p),
};

/** kprobe and fentry: the unlink of a file the harness creates, on entry and on return */
async function unlinks(app: 'kprobe' | 'fentry', l: Launcher, p: Place): Promise<string> {
  const file = path.join(p.tmp, `${app}-unlink-me`);
  const run = l.start(app, ['-j']);
  await run.attached(app);
  const mine = (e: AppEvent): boolean => e.event === 'unlink' && e['pid'] === process.pid && typeof e['filename'] === 'string' && e['filename'].endsWith(`${app}-unlink-me`);
  const e = await untilEvent(run, mine, 'the unlink', () => {
    fs.writeFileSync(file, 'x');
    fs.unlinkSync(file);
  }, 30_000);
  await untilEvent(run, (e) => e.event === 'unlink_ret' && e['pid'] === process.pid && e['ret'] === 0, 'its return', () => {}, 10_000);
  await stop(l, run);
  return show(e);
}
