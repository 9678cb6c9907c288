// The selector's one host-changing step: tracefs is mounted right before an object with tracepoint
// programs loads, when it is missing then (the prober's report may be older than the mounts).
import t from 'tap';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { spawnSync } from 'node:child_process';
import { CLI, ROOT, parseEvents, runCli } from './helpers.js';
import { hostReport } from '../src/probe/fast.js';
import { planObject } from '../src/select/plan.js';
import { MAP_TYPE } from '../src/kernel/uapi.js';

const wasm = path.join(ROOT, 'matrix', 'build', 'bootstrap.wasm');
const root = process.getuid?.() === 0;

t.test('the plan: tracefs for tracepoint programs on the kernel, nothing for others', async (t) => {
  const report = await hostReport();
  const tp = { programs: [{ name: 'p', section: 'tp/sched/sched_process_exec', type: 0 }], maps: [{ name: 'rb', type: MAP_TYPE.RINGBUF }] };
  t.same(planObject(report, tp).mounts?.map((m) => [m.fs, m.target]), [['tracefs', '/sys/kernel/tracing']]);
  t.same(planObject(report, tp, 'linux').mounts?.length, 1, '--backend linux too');
  t.notOk(planObject(report, tp, 'userspace').mounts, 'not for the userspace backend');
  t.notOk(planObject(report, { programs: [{ name: 'x', section: 'xdp', type: 0 }], maps: [] }).mounts, 'not for xdp');
  t.same(planObject(undefined, tp, 'linux').mounts?.length, 1, 'without a report (the probe failed) too');
  // a report that says tracefs is missing: the tracepoint need is not a blocker, the mount is the fix
  const noTracefs = {
    ...report,
    attach: { ...report.attach, tracepoint: { state: 'no' as const, reason: 'tracefs is not mounted', method: 'file' as const, since: '4.7', mount: { fs: 'tracefs' as const, target: '/sys/kernel/tracing' } } },
  };
  const p = planObject(noTracefs, tp);
  t.equal(p.backend, 'linux');
  t.same(p.blocking, []);
  t.match(p.mounts?.[0]?.why ?? '', /tracefs is not mounted/);
  t.match(p.reasons.join('\n'), /mount tracefs on \/sys\/kernel\/tracing: program 'p'/);
});

t.test('a run in a mount namespace without tracefs mounts it and attaches (the host\'s cached report is not the namespace\'s)', { skip: !root && 'needs root' }, async (t) => {
  const cache = fs.mkdtempSync(path.join(os.tmpdir(), 'wasm-bpf-mounts-'));
  t.teardown(() => fs.rmSync(cache, { recursive: true, force: true }));
  const env = { ...process.env, WASM_BPF_CACHE_DIR: cache };
  // the report is cached by a run where tracefs is mounted
  const first = runCli(['probe', '--json'], { env });
  t.equal(first.code, 0, first.stderr);
  t.equal((JSON.parse(first.stdout) as { attach: { tracepoint: { state: string } } }).attach.tracepoint.state, 'yes', 'the cached report has tracefs');
  const script = [
    'umount -l /sys/kernel/debug 2>/dev/null; umount -l /sys/kernel/tracing 2>/dev/null',
    'test -e /sys/kernel/tracing/events && { echo "tracefs still there"; exit 9; }',
    // the namespace has its own probe report (its own cache file): the run probes first, then execs fire
    `(for i in $(seq 16); do sleep 0.5; /bin/true; done) & exec timeout --preserve-status -s INT 9 ${JSON.stringify(process.execPath)} ${JSON.stringify(CLI)} run --verbose ${JSON.stringify(wasm)} -j`,
  ].join('\n');
  const r = spawnSync('unshare', ['-m', '--propagation', 'private', 'sh', '-c', script], { encoding: 'utf8', env, timeout: 40_000 });
  t.equal(r.status, 130, `Ctrl-C ends the run: ${r.stderr}`);
  t.match(r.stderr, /wasm-bpf: mounted tracefs on \/sys\/kernel\/tracing \(program 'handle_ex(ec|it)' \(tp\/sched\/sched_process_ex(ec|it)\)(: tracefs is not mounted| attaches through tracefs)/);
  t.ok(parseEvents(r.stdout).some((e) => e.event === 'exec' && e['filename'] === '/bin/true'), 'the tracepoint fires');
  t.ok(fs.existsSync('/sys/kernel/tracing/events'), 'the host namespace keeps its own tracefs');
});
