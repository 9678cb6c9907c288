// The ringbuf -> perf buffer compat pass (compat/ringbuf/) on the real kernel: every example app that uses
// a ring buffer and runs on this host, once as is and once with `--assume-missing ringbuf` (the prober then
// reports no ring buffer and the selector applies the pass). Both runs must show the same events the test
// caused, and the map must really be a perf_event_array in the compat run and a ringbuf otherwise.
import t from 'tap';
import fs from 'node:fs';
import net from 'node:net';
import dgram from 'node:dgram';
import path from 'node:path';
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { loadObject } from '../src/object/loader.js';
import { rewriteRingbuf, usesRingbufHelpers } from '../compat/ringbuf/index.js';
import { CLI, ROOT, Running, abiGuest, ensureMounts, kernelIds, kv, settledLeaks, type KernelIds, until, untilEvent } from './helpers.js';

const BUILD = path.join(ROOT, 'matrix', 'build');
ensureMounts();
const before = kernelIds();

type Mode = 'ringbuf' | 'compat';
const MODES: Mode[] = ['ringbuf', 'compat'];

function app(name: string, mode: Mode, args: string[] = []): Running {
  const argv = [CLI, 'run', '--verbose', ...(mode === 'compat' ? ['--assume-missing', 'ringbuf'] : []), path.join(BUILD, `${name}.wasm`), ...args];
  const env = { ...process.env };
  delete env.WASM_BPF_ASSUME_MISSING;
  return new Running(spawn(process.execPath, argv, { stdio: ['ignore', 'pipe', 'pipe'], env }));
}

/** the types of the maps named `name` that process `pid` holds (its fds' fdinfo, names from bpftool):
 * other processes' maps, e.g. of a test run elsewhere on the machine, cannot be mistaken for ours */
function newMapTypes(since: KernelIds, name: string, pid: number): string[] {
  const held = new Set<number>();
  for (const fd of fs.readdirSync(`/proc/${pid}/fdinfo`)) {
    try {
      const m = /^map_id:\s*(\d+)$/m.exec(fs.readFileSync(`/proc/${pid}/fdinfo/${fd}`, 'utf8'));
      if (m) held.add(Number(m[1]));
    } catch {
      // the fd closed meanwhile
    }
  }
  const list = JSON.parse(execFileSync('bpftool', ['-j', 'map', 'show'], { encoding: 'utf8' }) || '[]') as Array<{ id: number; name?: string; type: string }>;
  return list.filter((m) => !since.maps.has(m.id) && held.has(m.id) && m.name === name).map((m) => m.type);
}

async function checkMode(t: Tap.Test, run: Running, mode: Mode, since: KernelIds): Promise<void> {
  const types = newMapTypes(since, 'rb', run.child.pid!);
  t.ok(types.length >= 1, `a map 'rb' exists (${types.join(', ')})`);
  if (mode === 'compat') {
    t.ok(types.every((x) => x === 'perf_event_array'), 'the ring buffer is a perf_event_array');
    t.match(run.stderr, /selector: compat ringbuf->perf: map 'rb' \(ringbuf\): assumed missing \(--assume-missing\)/);
    t.match(run.stderr, /compat ringbuf->perf: map 'rb': ringbuf -> perf_event_array/);
  } else {
    t.ok(types.every((x) => x === 'ringbuf'), 'the ring buffer is a ringbuf');
    t.notMatch(run.stderr, /compat ringbuf->perf/);
  }
  const r = await run.interrupt('SIGINT');
  t.equal(r.code, 130, 'Ctrl-C exits 130');
}

t.test('the ELF rewrite alone: every ring buffer example still parses, with no ring buffer helper left', async (t) => {
  for (const name of ['bootstrap', 'opensnoop', 'sockfilter', 'sockops', 'uprobe', 'kprobe', 'lsm']) {
    const bytes = new Uint8Array(fs.readFileSync(path.join(BUILD, `${name}.bpf.o`)));
    t.ok(usesRingbufHelpers(bytes), `${name} uses ring buffer helpers`);
    const r = rewriteRingbuf(bytes, 77);
    t.notOk(usesRingbufHelpers(r.bytes), `${name}: none left after the rewrite`);
    t.ok(r.scratchValueSize > 0, `${name}: scratch value size ${r.scratchValueSize}`);
    t.ok(r.scratchFdAt.length > 0, `${name}: ${r.scratchFdAt.length} scratch map reference(s)`);
    const dv = new DataView(r.bytes.buffer, r.bytes.byteOffset, r.bytes.byteLength);
    t.ok(r.scratchFdAt.every((at) => dv.getInt32(at, true) === 77 && r.bytes[at - 4] === 0x18 && r.bytes[at - 3] === 0x11), `${name}: each is the immediate of an ld_imm64 r1, map fd`);
    const pure = rewriteRingbuf(bytes);
    t.same(pure.scratchFdAt, r.scratchFdAt, `${name}: the same places without an fd`);
    t.ok(pure.scratchFdAt.every((at) => new DataView(pure.bytes.buffer).getInt32(at, true) === -1), `${name}: holding -1 until the backend writes the fd`);
    const before = loadObject(bytes);
    const after = loadObject(r.bytes);
    t.same(after.programs.map((p) => p.name), before.programs.map((p) => p.name), `${name}: same programs`);
    t.ok(after.programs.every((p, i) => p.insns.length >= before.programs[i]!.insns.length), `${name}: no program shrank`);
    t.ok(after.programs.some((p, i) => p.insns.length > before.programs[i]!.insns.length), `${name}: instructions were inserted`);
  }
  const execve = new Uint8Array(fs.readFileSync(path.join(BUILD, 'execve.bpf.o')));
  t.notOk(usesRingbufHelpers(execve), 'execve (a perf buffer app) needs no rewrite');
});

for (const mode of MODES) {
  t.test(`bootstrap (${mode}): exec and exit of a process the test starts`, async (t) => {
    const since = kernelIds();
    const run = app('bootstrap', mode, ['-j']);
    await run.attached('bootstrap');
    let pid = 0;
    // the exec of a shell this test ran (the app sees every exec on the host: others' too)
    const pids = new Set<number>();
    const exec = await untilEvent(run, (e) => e.event === 'exec' && pids.has(e['pid'] as number), 'an exec of ours', () => {
      const c = spawnSync('/bin/sh', ['-c', 'exit 3']);
      pid = c.pid ?? 0;
      pids.add(pid);
    });
    t.match(exec['comm'], /^sh?$/);
    const mine = await untilEvent(run, (e) => e.event === 'exit' && e['pid'] === exec['pid'], `the exit of ${String(exec['pid'])}`, () => {});
    t.equal(mine['exit_code'], 3);
    t.equal(run.events((e) => e.event === 'exec' && e['pid'] === exec['pid'])[0]?.['filename'], '/bin/sh');
    await checkMode(t, run, mode, since);
  });

  t.test(`opensnoop (${mode}): a file the test opens; a missing one with -ENOENT`, async (t) => {
    const since = kernelIds();
    const file = path.join(BUILD, `opensnoop-compat-${mode}.txt`);
    fs.writeFileSync(file, 'x');
    const run = app('opensnoop', mode, ['-j', '-p', String(process.pid)]);
    await run.attached('opensnoop');
    const e = await untilEvent(run, (e) => e['filename'] === file, 'the open of the file', () => fs.closeSync(fs.openSync(file, 'r')));
    t.match(e, { event: 'open', pid: process.pid, comm: /^\S+$/, ret: Number, flags: Number });
    t.ok((e['ret'] as number) >= 0, 'an fd');
    const missing = await untilEvent(run, (e) => e['filename'] === '/no-such-file-for-opensnoop-compat', 'the missing file', () => {
      try {
        fs.openSync('/no-such-file-for-opensnoop-compat', 'r');
      } catch {
        /* expected */
      }
    });
    t.equal(missing['ret'], -2);
    t.equal(run.events((e) => e.event === 'open' && e['pid'] !== process.pid).length, 0, '-p filters other processes out');
    await checkMode(t, run, mode, since);
  });

  t.test(`sockfilter (${mode}): a UDP datagram the test sends on loopback (reserve/discard/submit)`, async (t) => {
    const since = kernelIds();
    const run = app('sockfilter', mode, ['-j', 'lo']);
    await run.attached('sockfilter');
    const sock = dgram.createSocket('udp4');
    await new Promise<void>((r) => sock.bind(0, '127.0.0.1', () => r()));
    const port = 40000 + ((process.pid + (mode === 'compat' ? 1 : 0)) % 20000);
    const src = sock.address().port;
    const pkt = await untilEvent(run, (e) => e.event === 'packet' && e['proto'] === 'UDP' && e['src'] === '127.0.0.1' && e['src_port'] === src && e['dst'] === '127.0.0.1' && e['dst_port'] === port, 'the datagram', async () => {
      await new Promise<void>((r) => sock.send('hello', port, '127.0.0.1', () => r()));
    });
    t.type(pkt['len'], 'number');
    sock.close();
    await checkMode(t, run, mode, since);
  });

  t.test(`sockops (${mode}): a TCP connection on loopback, seen from both ends`, async (t) => {
    const since = kernelIds();
    const run = app('sockops', mode, ['-j', '/sys/fs/cgroup/unified']);
    await run.attached('sockops');
    const server = net.createServer((s) => s.end());
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
    const port = (server.address() as net.AddressInfo).port;
    const active = await untilEvent(run, (e) => e.event === 'tcp' && e['op'] === 'active' && e['local'] === '127.0.0.1' && e['remote'] === '127.0.0.1' && e['remote_port'] === port, 'the active open', async () => {
      await new Promise<void>((r) => net.connect(port, '127.0.0.1').on('close', () => r()).on('error', () => r()));
    });
    t.ok(active);
    await untilEvent(run, (e) => e.event === 'tcp' && e['op'] === 'passive' && e['local'] === '127.0.0.1' && e['local_port'] === port, 'the passive open', () => {});
    server.close();
    await checkMode(t, run, mode, since);
  });

  t.test(`uprobe (${mode}): arguments and return value of a function in a binary the test built`, async (t) => {
    const since = kernelIds();
    const target = path.join(BUILD, 'uprobe-target');
    const run = app('uprobe', mode, [target]);
    await run.waitFor(/^# uprobe/);
    const child = spawnSync(target, ['3', '4', '2', '0'], { encoding: 'utf8' });
    t.equal(child.status, 0);
    await until(run, new RegExp(`^URETPROBE pid=${child.pid} `), () => {});
    await new Promise((r) => setTimeout(r, 200));
    t.same(run.lines(new RegExp(`^UPROBE pid=${child.pid} `)), [`UPROBE pid=${child.pid} a=3 b=4`, `UPROBE pid=${child.pid} a=3 b=4`]);
    t.same(run.lines(new RegExp(`^URETPROBE pid=${child.pid} `)), [`URETPROBE pid=${child.pid} ret=7`, `URETPROBE pid=${child.pid} ret=7`]);
    await checkMode(t, run, mode, since);
  });
}

t.test('bpf_ringbuf_output (two ring buffers of one object) becomes bpf_perf_event_output; poll is unchanged', async (t) => {
  const wasm = abiGuest();
  const run = new Running(spawn(process.execPath, [CLI, 'run', '--verbose', '--assume-missing', 'ringbuf', wasm, 'poll', '50'], { stdio: ['ignore', 'pipe', 'pipe'] }));
  await run.waitFor(/^# ready/);
  const deadline = Date.now() + 15_000;
  while (run.child.exitCode === null && Date.now() < deadline) {
    for (let i = 0; i < 5; i++) void process.ppid; // getppid(2): the fixture's tracepoint
    await new Promise((r) => setTimeout(r, 20));
  }
  const { code } = await run.exited;
  t.equal(code, 0, run.stderr);
  const v = kv(run.stdout);
  t.equal(v['attach'], '0');
  t.ok(Number(v['seen']) >= 50, `seen ${v['seen']}`);
  t.equal(v['order_ok'], '1', 'sequence numbers strictly increase');
  // perf samples carry the kernel's 8-byte alignment padding (24 bytes of data -> 28)
  t.ok(Number(v['last_size']) >= 24 && Number(v['last_size']) <= 32, `size ${v['last_size']}`);
  // the guest drains rb2 with a 0 ms poll after each rb poll and stops once rb reached 50: a perf buffer's wakeup
  // comes through irq_work, so the last burst (5 records) may still be pending on rb2 when it stops
  t.ok(Number(v['seen2']) >= 40, `the second buffer delivered too (${v['seen2']})`);
  t.match(run.stderr, /compat ringbuf->perf: on_getppid: bpf_ringbuf_output -> bpf_perf_event_output/);
  t.match(run.stderr, /map 'rb2': ringbuf -> perf_event_array/);
});

t.test('check shows the compat step under WASM_BPF_ASSUME_MISSING', async (t) => {
  const env = { ...process.env, WASM_BPF_ASSUME_MISSING: 'ringbuf' };
  const r = spawnSync(process.execPath, [CLI, 'check', path.join(BUILD, 'bootstrap.wasm')], { encoding: 'utf8', env, timeout: 30_000 });
  t.equal(r.status, 0, r.stderr);
  t.match(r.stdout, /compat ringbuf->perf: map 'rb' \(ringbuf\): assumed missing \(--assume-missing\)/);
  const plain = spawnSync(process.execPath, [CLI, 'check', path.join(BUILD, 'bootstrap.wasm')], { encoding: 'utf8', env: { ...process.env, WASM_BPF_ASSUME_MISSING: '' }, timeout: 30_000 });
  t.equal(plain.status, 0, plain.stderr);
  t.notMatch(plain.stdout, /compat ringbuf->perf/);
});

t.test('--assume-missing with a name the prober does not know is a usage error', async (t) => {
  const r = spawnSync(process.execPath, [CLI, 'run', '--assume-missing', 'no_such_feature', path.join(BUILD, 'bootstrap.wasm')], { encoding: 'utf8', timeout: 20_000 });
  t.equal(r.status, 2);
  t.match(r.stderr, /--assume-missing no_such_feature: not a map type/);
});

t.test('no program, map or link is left in the kernel', async (t) => {
  t.same(await settledLeaks(before), { progs: [], maps: [], links: [] });
});
