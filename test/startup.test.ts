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
