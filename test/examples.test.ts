// Every example app of matrix/ run as Wasm under wasm-bpf on the real kernel: the test causes the
// events and asserts that the specific events it caused arrive with the right fields.
import t from 'tap';
import fs from 'node:fs';
import net from 'node:net';
import dgram from 'node:dgram';
import path from 'node:path';
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { CLI, ROOT, Running, ensureMounts, kernelIds, settledLeaks, until } from './helpers.js';

const BUILD = path.join(ROOT, 'matrix', 'build');
ensureMounts();
const before = kernelIds();

function app(name: string, args: string[] = [], ns?: string): Running {
  const argv = [CLI, 'run', path.join(BUILD, `${name}.wasm`), ...args];
  const child = ns
    ? spawn('ip', ['netns', 'exec', ns, process.execPath, ...argv], { stdio: ['ignore', 'pipe', 'pipe'] })
    : spawn(process.execPath, argv, { stdio: ['ignore', 'pipe', 'pipe'] });
  return new Running(child);
}

async function stop(t: Tap.Test, run: Running): Promise<void> {
  const r = await run.interrupt('SIGINT');
  t.equal(r.code, 130, 'Ctrl-C exits 130');
}

t.test('bootstrap: exec and exit of a process the test starts (ring buffer)', async (t) => {
  const run = app('bootstrap');
  await run.waitFor(/^# bootstrap/);
  let pid = 0;
  const exec = await until(run, /^EXEC /, () => {
    const c = spawnSync('/bin/sh', ['-c', 'exit 3']);
    pid = c.pid ?? 0;
  });
  t.match(exec, /comm=sh? /);
  const mine = await until(run, new RegExp(`^EXIT pid=${pid} `), () => {});
  t.match(mine, /exit_code=3 /);
  t.match(run.lines(new RegExp(`^EXEC pid=${pid} `))[0] ?? '', /filename=\/bin\/sh$/);
  await stop(t, run);
});

t.test('bootstrap -d: the rodata minimum duration reaches the kernel', async (t) => {
  const run = app('bootstrap', ['-d', '400']);
  await run.waitFor(/^# bootstrap/);
  const quick = spawnSync('/bin/true').pid;
  const slow = spawn('/bin/sleep', ['0.6']);
  await until(run, new RegExp(`^EXIT pid=${slow.pid} `), () => {});
  t.equal(run.lines(new RegExp(`^EXIT pid=${quick} `)).length, 0, 'a process shorter than 400 ms is not reported');
  await stop(t, run);
});

t.test('execve: filename and first argument (perf buffer)', async (t) => {
  const run = app('execve');
  await run.waitFor(/^# execve/);
  const line = await until(run, /arg1=wasm-bpf-marker-1/, () => void spawnSync('/bin/echo', ['wasm-bpf-marker-1']));
  t.match(line, /^EXECVE pid=\d+ uid=0 comm=\S+ filename=\/bin\/echo arg1=wasm-bpf-marker-1$/);
  await stop(t, run);
});

t.test('opensnoop: a file the test opens, with its fd and flags; a missing one with -ENOENT', async (t) => {
  const file = path.join(BUILD, 'opensnoop-target.txt');
  fs.writeFileSync(file, 'x');
  const run = app('opensnoop', ['-p', String(process.pid)]);
  await run.waitFor(/^# opensnoop/);
  const line = await until(run, /opensnoop-target\.txt/, () => fs.closeSync(fs.openSync(file, 'r')));
  t.match(line, new RegExp(`^OPEN pid=${process.pid} comm=\\S+ ret=\\d+ flags=0x[0-9a-f]+ filename=${file.replace(/[.]/g, '\\.')}$`));
  const missing = await until(run, /no-such-file-for-opensnoop/, () => {
    try {
      fs.openSync('/no-such-file-for-opensnoop', 'r');
    } catch {
      /* expected */
    }
  });
  t.match(missing, /ret=-2 /);
  t.equal(run.lines(/^OPEN /).filter((l) => !l.includes(`pid=${process.pid} `)).length, 0, '-p filters other processes out');
  await stop(t, run);
});

t.test('runqlat: a histogram read from a hash map with map_operate', async (t) => {
  const run = app('runqlat', ['1', '2']);
  const { code } = await run.exited;
  t.equal(code, 0, run.stderr);
  const hists = run.lines(/^HIST /);
  t.equal(hists.length, 2, 'one line per interval');
  for (const h of hists) {
    const m = /^HIST key=0 total=(\d+) slots=((?:\d+,){25}\d+)$/.exec(h);
    t.ok(m, h);
    const slots = m![2]!.split(',').map(Number);
    t.equal(slots.reduce((a, b) => a + b, 0), Number(m![1]), 'total is the sum of the slots');
    t.ok(Number(m![1]) > 0, 'the scheduler ran something');
  }
});

t.test('sockfilter: a UDP datagram the test sends on loopback', async (t) => {
  const run = app('sockfilter', ['lo']);
  await run.waitFor(/^# sockfilter/);
  const sock = dgram.createSocket('udp4');
  await new Promise<void>((r) => sock.bind(0, '127.0.0.1', () => r()));
  const port = 40000 + (process.pid % 20000);
  const line = await until(run, new RegExp(`^PKT proto=UDP src=127\\.0\\.0\\.1:${sock.address().port} dst=127\\.0\\.0\\.1:${port} `), async () => {
    await new Promise<void>((r) => sock.send('hello', port, '127.0.0.1', () => r()));
  });
  t.match(line, /len=\d+$/);
  sock.close();
  await stop(t, run);
});

t.test('sockops: a TCP connection on loopback, seen from both ends', async (t) => {
  const run = app('sockops', ['/sys/fs/cgroup/unified']);
  await run.waitFor(/^# sockops/);
  const server = net.createServer((s) => s.end());
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  const port = (server.address() as net.AddressInfo).port;
  const active = await until(run, new RegExp(`^TCP op=active local=127\\.0\\.0\\.1:\\d+ remote=127\\.0\\.0\\.1:${port}$`), async () => {
    await new Promise<void>((r) => net.connect(port, '127.0.0.1').on('close', () => r()).on('error', () => r()));
  });
  t.ok(active);
  t.ok(run.lines(new RegExp(`^TCP op=passive local=127\\.0\\.0\\.1:${port} `)).length > 0, 'passive side too');
  server.close();
  await stop(t, run);
});

t.test('sockops: a cgroup outside the allow-list is refused', async (t) => {
  const r = spawnSync(process.execPath, [CLI, 'run', '--allow-cgroup', '/sys/fs/cgroup/unified/wasm-bpf-none-' + process.pid, path.join(BUILD, 'sockops.wasm'), '/sys/fs/cgroup/unified'], { encoding: 'utf8' });
  t.equal(r.status, 2, 'a missing --allow-cgroup directory is a usage error');
  const dir = '/sys/fs/cgroup/unified/wasm-bpf-test-' + process.pid;
  fs.mkdirSync(dir);
  try {
    const s = spawnSync(process.execPath, [CLI, 'run', '--allow-cgroup', dir, path.join(BUILD, 'sockops.wasm'), '/sys/fs/cgroup/unified'], { encoding: 'utf8', timeout: 20_000 });
    t.equal(s.status, 1);
    t.match(s.stderr, /cgroup path \/sys\/fs\/cgroup\/unified is outside the allowed cgroup directories/);
  } finally {
    fs.rmdirSync(dir);
  }
});

t.test('uprobe: arguments and return value of a function in a binary the test built', async (t) => {
  const target = path.join(BUILD, 'uprobe-target');
  const run = app('uprobe', [target]);
  await run.waitFor(/^# uprobe/);
  const child = spawnSync(target, ['3', '4', '2', '0'], { encoding: 'utf8' });
  t.equal(child.status, 0);
  await until(run, new RegExp(`^URETPROBE pid=${child.pid} `), () => {});
  await new Promise((r) => setTimeout(r, 200));
  t.same(run.lines(new RegExp(`^UPROBE pid=${child.pid} `)), [`UPROBE pid=${child.pid} a=3 b=4`, `UPROBE pid=${child.pid} a=3 b=4`]);
  t.same(run.lines(new RegExp(`^URETPROBE pid=${child.pid} `)), [`URETPROBE pid=${child.pid} ret=7`, `URETPROBE pid=${child.pid} ret=7`]);
  await stop(t, run);
});

t.test('xdp: packets over a veth pair between two network namespaces the test creates', async (t) => {
  const a = `wbxa${process.pid}`;
  const b = `wbxb${process.pid}`;
  const ip = (...args: string[]): void => void execFileSync('ip', args);
  ip('netns', 'add', a);
  ip('netns', 'add', b);
  t.teardown(() => {
    spawnSync('ip', ['netns', 'del', a]);
    spawnSync('ip', ['netns', 'del', b]);
  });
  ip('link', 'add', 'wbx0', 'netns', a, 'type', 'veth', 'peer', 'name', 'wbx1', 'netns', b);
  ip('-n', a, 'addr', 'add', '10.213.7.1/24', 'dev', 'wbx0');
  ip('-n', b, 'addr', 'add', '10.213.7.2/24', 'dev', 'wbx1');
  ip('-n', a, 'link', 'set', 'wbx0', 'up');
  ip('-n', b, 'link', 'set', 'wbx1', 'up');
  const run = app('xdp', ['-i', '200', 'wbx1'], b);
  await run.waitFor(/^# xdp/);
  execFileSync('ip', ['netns', 'exec', a, 'bash', '-c', 'for i in 1 2 3 4 5; do echo -n x >/dev/udp/10.213.7.2/9; done']);
  const line = await until(run, /^XDP proto=UDP packets=5 /, () => {});
  t.match(line, /bytes=\d+$/);
  await stop(t, run);
});

t.test('lsm: cannot load on this kernel, and the run says why', async (t) => {
  const r = spawnSync(process.execPath, [CLI, 'run', path.join(BUILD, 'lsm.wasm')], { encoding: 'utf8', timeout: 20_000 });
  t.equal(r.status, 1);
  t.match(r.stderr, /no backend on this host can run the object:\n  - program 'lsm_bprm_check' \(lsm\/bprm_check_security\) needs program type lsm \(Linux 5\.7\+\): loading an lsm program .* refused with EPERM/);
  const forced = spawnSync(process.execPath, [CLI, 'run', '--backend', 'linux', path.join(BUILD, 'lsm.wasm')], { encoding: 'utf8', timeout: 20_000 });
  t.equal(forced.status, 1);
  t.match(forced.stderr, /refused to load program 'lsm_bprm_check' \(lsm\/bprm_check_security\): Operation not permitted \(EPERM\)/);
  t.match(forced.stderr, /hint: this kernel refuses BPF trampoline programs/);
});

t.test('kprobe: cannot attach on this kernel, and the run says why', async (t) => {
  const r = spawnSync(process.execPath, [CLI, 'run', path.join(BUILD, 'kprobe.wasm')], { encoding: 'utf8', timeout: 20_000 });
  t.equal(r.status, 1);
  t.match(r.stderr, /program 'do_unlinkat' \(kprobe\/do_unlinkat\) needs attach mechanism kprobe .*CONFIG_KPROBES is not set/);
  const forced = spawnSync(process.execPath, [CLI, 'run', '--backend', 'linux', path.join(BUILD, 'kprobe.wasm')], { encoding: 'utf8', timeout: 20_000 });
  t.equal(forced.status, 1);
  t.match(forced.stderr, /attaching program 'do_unlinkat' failed/);
  t.match(forced.stderr, /hint: kprobe attach needs a kernel built with CONFIG_KPROBES/);
});

t.test('no program, map or link is left in the kernel', async (t) => {
  t.same(await settledLeaks(before), { progs: [], maps: [], links: [] });
});
