// Start-up: the CLI starts the guest's thread first thing (src/runtime/prestart.ts) and the thread
// loads one bundle of the runtime (npm run build), with the same behaviour as the plain path.
import t from 'tap';
import fs from 'node:fs';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { abiGuest, ROOT, runCli } from './helpers.js';

const wasm = abiGuest();
const DIST = path.join(ROOT, 'dist', 'src', 'runtime');

t.test('dist: the guest thread runs the bundle, unless worker.js is newer or WASM_BPF_NO_BUNDLE is set', async (t) => {
  const { workerUrl } = (await import(pathToFileURL(path.join(DIST, 'prestart.js')).href)) as typeof import('../src/runtime/prestart.js');
  t.ok(fs.existsSync(path.join(DIST, 'worker.bundle.js')), 'npm run build made the bundle');
  t.equal(workerUrl().pathname, path.join(DIST, 'worker.bundle.js'));
  process.env['WASM_BPF_NO_BUNDLE'] = '1';
  try {
    t.equal(workerUrl().pathname, path.join(DIST, 'worker.js'));
  } finally {
    delete process.env['WASM_BPF_NO_BUNDLE'];
  }
  // a bundle older than worker.js (tsc ran after the last bundle) is not used
  const bundle = path.join(DIST, 'worker.bundle.js');
  const st = fs.statSync(path.join(DIST, 'worker.js'));
  const old = fs.statSync(bundle);
  fs.utimesSync(bundle, old.atime, new Date(st.mtimeMs - 60_000));
  try {
    t.equal(workerUrl().pathname, path.join(DIST, 'worker.js'));
  } finally {
    fs.utimesSync(bundle, old.atime, old.mtime);
  }
});

t.test('the bundle and the plain modules run a guest the same way', async (t) => {
  const a = runCli(['run', '--env', 'GREETING=hi', wasm, 'args', 'x']);
  const b = runCli(['run', '--env', 'GREETING=hi', wasm, 'args', 'x'], { env: { ...process.env, WASM_BPF_NO_BUNDLE: '1' } });
  t.equal(a.code, 7);
  t.equal(b.code, 7);
  t.equal(a.stdout, b.stdout);
  t.match(a.stdout, /^env=hi$/m);
});

t.test('a prestarted thread never adopted (a usage error, --help) does not hold the process', async (t) => {
  const t0 = Date.now();
  const r = runCli(['run', '--frobnicate', wasm]);
  t.equal(r.code, 2);
  t.match(r.stderr, /unknown option --frobnicate/);
  const h = runCli(['run', '--help', wasm]);
  // (errors the prestarted thread meets, malformed modules and the like, are test/cli.test.ts's: every CLI run prestarts)
  t.equal(h.code, 0);
  t.ok(Date.now() - t0 < 10_000, `both ended at once (${Date.now() - t0} ms)`);
});

/** the `# startup NAME MS [NOTE]` marks of a traced run: name -> [ms, note] (the first of each) */
function traced(env: NodeJS.ProcessEnv): { code: number | null; marks: Map<string, [number, string]>; stderr: string } {
  const r = runCli(['run', wasm, 'args', 'x'], { env: { ...env, WASM_BPF_TRACE_STARTUP: '1' } });
  const marks = new Map<string, [number, string]>();
  for (const line of r.stderr.split('\n')) {
    const m = /^# startup (\S+) ([\d.]+)(?: (.*))?$/.exec(line);
    if (m && !marks.has(m[1]!)) marks.set(m[1]!, [Number(m[2]), m[3] ?? '']);
  }
  return { code: r.code, marks, stderr: r.stderr };
}

t.test('WASM_BPF_TRACE_STARTUP=1: both threads mark the start-up in order; the CLI and the guest thread run their bundles', async (t) => {
  const { code, marks, stderr } = traced(process.env);
  t.equal(code, 7, stderr);
  const main = ['script_start', 'worker_spawn', 'cli_modules', 'read_module', 'input_posted'];
  const guest = ['worker_start', 'worker_modules', 'input', 'backend', 'instantiate'];
  for (const order of [main, guest]) {
    const at = order.map((n) => marks.get(n)?.[0] ?? NaN);
    t.ok(at.every((v, i) => Number.isFinite(v) && (i === 0 || v >= at[i - 1]!)), `${order.join(' < ')}: ${at.join(', ')}`);
  }
  t.ok(marks.get('worker_spawn')![0] < marks.get('worker_start')![0], 'the guest thread is spawned before it starts');
  t.equal(marks.get('script_start')?.[1], 'main.bundle.js', 'the CLI runs its bundle');
  t.equal(marks.get('worker_start')?.[1], 'worker.bundle.js', 'the guest thread runs its bundle');
  const plain = traced({ ...process.env, WASM_BPF_NO_BUNDLE: '1' });
  t.equal(plain.code, 7);
  t.equal(plain.marks.get('script_start')?.[1], 'main.js', 'WASM_BPF_NO_BUNDLE=1: the plain CLI modules');
  t.equal(plain.marks.get('worker_start')?.[1], 'quiet.js', 'and the plain worker modules');
  t.notMatch(runCli(['run', wasm, 'args', 'x']).stderr, /# startup/, 'no marks without the variable');
});
