// The compatibility matrix (matrix/): its judge rejects wrong events, its report shows every cell with
// a reason, and --check fails when a cell that passed before no longer does (on the real kernel).
import t from 'tap';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { spawn, spawnSync } from 'node:child_process';
import { ROOT, Running, ensureMounts, kernelIds, settledLeaks } from './helpers.js';
import { APPS, SCENARIOS, CheckFailed, type Launcher, type Place } from '../matrix/harness/scenarios.js';
import { regressions, renderMarkdown, renderSummary, renderSvg, withSummary, type Results } from '../matrix/report.js';
import type { Cell } from '../matrix/harness/cells.js';

const TMP = fs.mkdtempSync(path.join(os.tmpdir(), 'wasm-bpf-matrix-test-'));
t.teardown(() => fs.rmSync(TMP, { recursive: true, force: true }));
const place: Place = { build: path.join(ROOT, 'matrix', 'build'), tmp: TMP, node: process.execPath, cgroup: '/sys/fs/cgroup/unified' };
ensureMounts();
const before = kernelIds();

/** an "app" that is a shell script printing what we tell it */
function fake(script: string): Launcher {
  return { label: 'fake', interruptStatus: 0, start: () => new Running(spawn('sh', ['-c', script], { stdio: ['ignore', 'pipe', 'pipe'] })) };
}

t.test('the judge: an event with a wrong field fails the cell', async (t) => {
  // (the apps run with -j: one JSON object per line)
  const wrong = fake(`echo '{"event":"attached","app":"execve"}'; echo '{"event":"exec","pid":1,"ppid":0,"uid":0,"ret":0,"comm":"x","filename":"/bin/false","arg1":"wasm-bpf-marker-1"}'; sleep 20`);
  await t.rejects(SCENARIOS.execve(wrong, place), CheckFailed);
  await t.rejects(SCENARIOS.execve(wrong, place), /exec event: .*"filename":"\/bin\/false"/);
  // runqlat whose total is not the sum of its slots
  const hist = (total: number): string => `echo '{"event":"hist","key":0,"unit":"usecs","total":${total},"slots":[${Array(26).fill(1).join(',')}]}'`;
  const bad = fake(`${hist(5)}; ${hist(26)}`);
  await t.rejects(SCENARIOS.runqlat(bad, place), /total 5 is the sum of the slots \(26\)/);
  // an app that dies before attaching
  await t.rejects(SCENARIOS.bootstrap(fake('echo "bootstrap: load BPF skeleton: Invalid argument" >&2; exit 1'), place), /exited \(1\) before/);
});

t.test('the judge: a launched uprobe target\'s events must come from the process the app launched', async (t) => {
  /** an "app" that launches a child (a sleep) and prints events for the pid PID stands for */
  const launching = (pid: string): Launcher => ({
    ...fake(''),
    launches: true,
    start: () => {
      const call = '{"event":"uprobe","pid":PID,"a":3,"b":4}';
      const ret = '{"event":"uretprobe","pid":PID,"ret":7}';
      const lines = [call, ret, call, ret, 'uprobe-target: uprobe_target_add(3, 4) = 7, 2 calls'];
      const script = `sleep 0.5 & c=$!; sleep 0.2; ${lines.map((l) => `echo '${l.replace(/PID/g, `'"${pid}"'`)}'`).join('; ')}; wait`;
      return new Running(spawn('sh', ['-c', script], { stdio: ['ignore', 'pipe', 'pipe'] }));
    },
  });
  t.match(await SCENARIOS.uprobe(launching('$c'), place), /^\{"event":"uprobe","pid":\d+,"a":3,"b":4\}$/, 'the launched child\'s events pass');
  await t.rejects(SCENARIOS.uprobe(launching('1'), place), /the events' pid 1 is the launched target's/, 'another process\'s events fail the cell');
});

const cell = (c: Partial<Cell>): Cell => ({ app: 'bootstrap', platform: 'host', config: 'default', runner: 'wasm', verdict: 'pass', reason: 'wasm', ms: 1, ...c });
const fixture: Results = {
  generated: '2026-11-22T00:00:00Z',
  host: { kernel: '6.18.0', arch: 'x86_64', node: 'v20' },
  platforms: [
    { id: 'host', label: 'host 6.18 x86_64', kernel: '6.18.0', arch: 'x86_64', node: 'v20', status: 'ran', seconds: 20 },
    { id: 'arm64-5.10', label: 'arm64 5.10 (qemu)', status: 'failed', note: 'did not start (exit 125)' },
    { id: 'windows', label: 'Windows', status: 'not run', note: 'no Windows host' },
  ],
  cells: [
    cell({ runner: 'native' }),
    cell({}),
    cell({ app: 'kprobe', verdict: 'unsupported', reason: 'attach mechanism kprobe (Linux 4.1+): CONFIG_KPROBES is not set' }),
    cell({ app: 'xdp', config: 'no-btf', verdict: 'fail', reason: 'timed out | waiting' }),
    cell({ app: 'uprobe', platform: 'arm64-5.10', verdict: 'fail', reason: 'no result: did not start' }),
  ],
};

t.test('the report: tables per platform, a reason for every cell that is not a pass, an SVG', async (t) => {
  const md = renderMarkdown(fixture);
  t.match(md, /\| bootstrap \| ✅ · ✅ \| — · — \| — · — \|/);
  t.match(md, /\| kprobe \| · · ⛔ \|/, 'a cell the run did not produce on a platform that ran does not apply');
  t.match(md, /⛔ \*\*kprobe\*\* on host 6\.18 x86_64, wasm-bpf: attach mechanism kprobe \(Linux 4\.1\+\): CONFIG_KPROBES is not set/);
  t.match(md, /❌ \*\*xdp\*\* on host 6\.18 x86_64, no vmlinux BTF, wasm-bpf: timed out \\\| waiting/, 'pipes in reasons are escaped');
  t.match(md, /— \*\*Windows\*\*: no Windows host/);
  const svg = renderSvg(fixture);
  t.match(svg, /^<svg xmlns="http:\/\/www\.w3\.org\/2000\/svg"/);
  t.equal((svg.match(/<rect x="\d+(\.\d+)?" y="\d+" width="86"/g) ?? []).length, APPS.length * (6 + 1), 'one coloured box per app and column');
  t.match(svg, /<title>kprobe · host 6\.18 x86_64 · wasm-bpf: unsupported — attach mechanism kprobe/);
});

t.test('regressions: a pass that became anything else, or vanished', async (t) => {
  const now: Results = { ...fixture, cells: [cell({ runner: 'native', verdict: 'fail', reason: 'x' }), cell({ app: 'kprobe', verdict: 'pass' })] };
  const r = regressions(fixture, now);
  t.same(r.map((x) => `${x.was.app}/${x.was.runner}->${x.now?.verdict ?? 'missing'}`), ['bootstrap/native->fail', 'bootstrap/wasm->missing']);
});

t.test('npm run matrix on the host: real cells, files written, --check fails on a regression', async (t) => {
  const out = path.join(TMP, 'out');
  fs.mkdirSync(out);
  // the previous run claims kprobe passed here (it cannot: no CONFIG_KPROBES), so this run regresses it
  const previous: Results = { ...fixture, platforms: [fixture.platforms[0]!], cells: [cell({ app: 'kprobe' }), cell({ app: 'runqlat', runner: 'native' })] };
  fs.writeFileSync(path.join(out, 'results.json'), JSON.stringify(previous));
  const r = spawnSync(process.execPath, [path.join(ROOT, 'dist', 'matrix', 'run.js'), '--platforms', 'host', '--apps', 'runqlat,kprobe', '--out', out, '--check'], { encoding: 'utf8', timeout: 110_000 });
  t.equal(r.status, 1, r.stderr);
  t.match(r.stderr, /REGRESSION kprobe on host \(default, wasm\): passed before, now unsupported: attach mechanism kprobe/);
  t.notMatch(r.stderr, /REGRESSION runqlat/);
  const res = JSON.parse(fs.readFileSync(path.join(out, 'results.json'), 'utf8')) as Results;
  const get = (app: string, config: string, runner: string): Cell | undefined => res.cells.find((c) => c.app === app && c.platform === 'host' && c.config === config && c.runner === runner);
  t.equal(get('runqlat', 'default', 'native')?.verdict, 'pass');
  t.equal(get('runqlat', 'default', 'wasm')?.verdict, 'pass');
  t.match(get('runqlat', 'default', 'wasm')?.evidence ?? '', /^\{"event":"hist","key":0,"unit":"usecs","total":\d+,"slots":\[/);
  t.equal(get('runqlat', 'no-btf', 'wasm')?.verdict, 'unsupported', 'tp_btf needs the kernel\'s own BTF, BTFHub cannot help');
  t.equal(get('kprobe', 'default', 'native')?.verdict, 'unsupported');
  t.equal(get('runqlat', 'unprivileged', 'wasm')?.verdict, 'unsupported', 'an ordinary user: refused, not failed');
  t.match(get('runqlat', 'unprivileged', 'wasm')?.reason ?? '', /^the linux backend: bpf\(\) not permitted for uid 65534 .*; fix: .*; the userspace backend: it cannot run tp_btf programs/, 'with each backend\'s reason');
  t.equal(res.platforms.find((p) => p.id === 'windows')?.status, 'not run');
  t.match(fs.readFileSync(path.join(out, 'RESULTS.md'), 'utf8'), /\| runqlat \| ✅ · ✅ \|/);
  t.ok(fs.readFileSync(path.join(out, 'results.svg'), 'utf8').includes('</svg>'));
  const usage = spawnSync(process.execPath, [path.join(ROOT, 'dist', 'matrix', 'run.js'), '--platforms', 'mars'], { encoding: 'utf8' });
  t.equal(usage.status, 2);
  t.match(usage.stderr, /unknown platform mars/);
});

t.test('a cell past its time limit fails, naming where its processes hang, and leaves nothing running', async (t) => {
  const cells = path.join(ROOT, 'dist', 'matrix', 'harness', 'cells.js');
  // runqlat 1 2 runs for 2 s: with a 1 s limit both tries are cut off while it sleeps between intervals
  const r = spawnSync(process.execPath, [cells, '--apps', 'runqlat', '--runners', 'native'], { encoding: 'utf8', timeout: 60_000, env: { ...process.env, WASM_BPF_CELL_LIMIT: '1' } });
  t.equal(r.status, 0, r.stderr);
  t.match(r.stdout, /^BEGIN \{"app":"runqlat","config":"default","runner":"native"\}$/m, 'the start of a cell is announced');
  const line = r.stdout.split('\n').find((l) => l.startsWith('CELL '));
  const c = JSON.parse(line!.slice(5)) as Cell;
  t.equal(c.verdict, 'fail');
  t.match(c.reason, /^timed out after 1 s: pid \d+ \(runqlat\) state S wchan \S+/);
  t.ok(c.ms < 10_000, `both tries ended at the limit (${c.ms} ms)`);
  for (let i = 0; i < 50 && spawnSync('pgrep', ['-x', 'runqlat']).status === 0; i++) await new Promise((r) => setTimeout(r, 100));
  t.equal(spawnSync('pgrep', ['-x', 'runqlat']).status, 1, 'the app was killed');
});

t.test('npm run matrix: a harness that stops responding is stopped, its cell fails, the other cells stand', async (t) => {
  const out = path.join(TMP, 'stall');
  fs.mkdirSync(out);
  const previous: Results = { ...fixture, platforms: [fixture.platforms[0]!], cells: [cell({ app: 'execve', runner: 'native' }), cell({ app: 'execve' })] };
  fs.writeFileSync(path.join(out, 'results.json'), JSON.stringify(previous));
  const env = { ...process.env, WASM_BPF_MATRIX_HANG: 'execve:default:wasm', WASM_BPF_MATRIX_STALL: '4' };
  const t0 = Date.now();
  const r = spawnSync(process.execPath, [path.join(ROOT, 'dist', 'matrix', 'run.js'), '--platforms', 'host', '--apps', 'execve', '--out', out, '--check'], { encoding: 'utf8', timeout: 60_000, env });
  t.equal(r.status, 1, r.stderr);
  t.ok(Date.now() - t0 < 40_000, 'stopped after the stall, not at a time limit');
  t.match(r.stderr, /host: no output for \d+ s during execve wasm \(default\): stopping/);
  t.match(r.stderr, /REGRESSION execve on host \(default, wasm\): passed before, now fail: the harness stopped responding during this cell/);
  t.notMatch(r.stderr, /REGRESSION execve on host \(default, native\)/);
  const res = JSON.parse(fs.readFileSync(path.join(out, 'results.json'), 'utf8')) as Results;
  t.equal(res.cells.find((c) => c.app === 'execve' && c.platform === 'host' && c.runner === 'native')?.verdict, 'pass');
  t.match(res.platforms.find((p) => p.id === 'host')?.note ?? '', /stalled after 1 cells/);
  t.equal(spawnSync('pgrep', ['-f', 'matrix/harness/cells.js']).status, 1, 'the stalled harness was killed');
});

t.test('matrix/guests/boot.sh: bad input is refused before anything boots', async (t) => {
  const boot = path.join(ROOT, 'matrix', 'guests', 'boot.sh');
  const script = path.join(TMP, 'guest.sh');
  fs.writeFileSync(script, 'true\n');
  const unknown = spawnSync('sh', [boot, 'x86_64-9.9', script], { encoding: 'utf8' });
  t.equal(unknown.status, 2);
  t.match(unknown.stderr, /unknown platform 'x86_64-9\.9' \(x86_64-6\.1 x86_64-5\.10 arm64-6\.1 arm64-5\.10\)/);
  const missing = spawnSync('sh', [boot, 'x86_64-6.1', path.join(TMP, 'no-such-script.sh')], { encoding: 'utf8' });
  t.equal(missing.status, 2);
  t.match(missing.stderr, /no such script/);
  const usage = spawnSync('sh', [boot], { encoding: 'utf8' });
  t.equal(usage.status, 2);
  t.match(usage.stderr, /usage: /);
});

t.test('no program, map or link is left in the kernel', async (t) => {
  t.same(await settledLeaks(before), { progs: [], maps: [], links: [] });
});

t.test('README\'s "What works where" is the committed results.json', async (t) => {
  const results = JSON.parse(fs.readFileSync(path.join(ROOT, 'matrix', 'results.json'), 'utf8')) as Results;
  const readme = fs.readFileSync(path.join(ROOT, 'README.md'), 'utf8');
  t.ok(readme.includes(renderSummary(results)), 'the table is there, as renderSummary makes it (npm run matrix -- --render rewrites it)');
  t.equal(withSummary(readme, results), readme, 'nothing to rewrite');
  t.match(renderSummary(results), /^\| app \| host [^|]+ \|.*\| userspace backend \| unprivileged user \|\n/, 'platforms, then the host\'s userspace and unprivileged columns');
});
