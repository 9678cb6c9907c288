// An embedder that runs several short guests one after another through the library API: Node dlclosed the
// native addon (and libbpf, libelf, libz with it) whenever the last worker thread that had loaded it ended,
// while other threads of the process could still be in that code, and 1-3 of 15 such processes died with
// SIGSEGV at a pc in the unmapped libelf. The addon is linked `-z nodelete` (native/CMakeLists.txt): it stays
// mapped for the life of the process. Checked three ways: the flag in the built addon; the dynamic loader's
// own log (LD_DEBUG=files) showing no unload of the addon while guests come and go; and embedder processes
// that each run eight short guests and must all exit 0.
import t from 'tap';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { spawnSync } from 'node:child_process';
import { BUILD, FIXTURES, ROOT, buildGuest } from './helpers.js';

const ADDON = path.join(ROOT, 'native', 'build', 'Release', 'wasm_bpf_native.node');
const guest = buildGuest(path.join(FIXTURES, 'api-guest.c'), path.join(BUILD, 'api-guest.wasm'));
const TMP = fs.mkdtempSync(path.join(os.tmpdir(), 'wasm-bpf-api-unload-'));
t.teardown(() => fs.rmSync(TMP, { recursive: true, force: true }));

const embedder = path.join(TMP, 'embedder.mjs');
fs.writeFileSync(embedder, `const { run } = await import(${JSON.stringify(path.join(ROOT, 'dist', 'src', 'index.js'))});
const imports = { env: { add: (a, b) => BigInt(a) + BigInt(b), wait: () => 0 } };
const n = Number(process.argv[2]);
const codes = [];
for (let i = 0; i < n; i++) {
  const app = run(${JSON.stringify(guest)}, { args: ['add'], imports });
  app.stdout.resume();
  app.stderr.resume();
  codes.push(await app.exit);
}
process.stdout.write(JSON.stringify(codes) + '\\n');
`);

function embed(n: number, env: NodeJS.ProcessEnv = {}): { status: number | null; signal: string | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, [embedder, String(n)], { encoding: 'utf8', timeout: 120_000, env: { ...process.env, NODE_OPTIONS: '', ...env }, maxBuffer: 64 << 20 });
  return { status: r.status, signal: r.signal, stdout: r.stdout ?? '', stderr: r.stderr ?? '' };
}

t.test('the addon is never unloaded', async (t) => {
  // DT_FLAGS_1 with DF_1_NODELETE, read from the dynamic section by readelf
  const r = spawnSync('readelf', ['-d', ADDON], { encoding: 'utf8' });
  t.equal(r.status, 0, 'readelf reads the addon', { stderr: r.stderr });
  t.match(r.stdout, /\(FLAGS_1\)\s+Flags:.*\bNODELETE\b/, 'the addon carries DF_1_NODELETE');

  const e = embed(3, { LD_DEBUG: 'files' });
  t.equal(e.status, 0, 'three short guests in one embedder: exit 0', { signal: e.signal, stderr: e.stderr.slice(-2000) });
  t.same(JSON.parse(e.stdout.trim().split('\n').pop() ?? '[]'), [7, 7, 7], "each guest's exit code");
  // the loader logs "calling fini: PATH" when it unloads an object (and once more for each at process exit)
  const finis = (lib: RegExp): number => e.stderr.split('\n').filter((l) => /calling fini: /.test(l) && lib.test(l)).length;
  t.ok(finis(/wasm_bpf_native\.node/) <= 1, `the addon is not unloaded between guests (fini calls: ${finis(/wasm_bpf_native\.node/)})`);
  t.ok(finis(/libelf\.so/) <= 1, `nor is libelf (fini calls: ${finis(/libelf\.so/)})`);
});

t.test('embedders running short guests one after another stay alive', async (t) => {
  const bad: string[] = [];
  for (let i = 0; i < 12; i++) {
    const e = embed(8);
    if (e.status !== 0) bad.push(`process ${i}: ${e.signal ?? `exit ${e.status}`}: ${e.stderr.slice(-300)}`);
    else t.same(JSON.parse(e.stdout.trim()), Array(8).fill(7), `process ${i}: 8 guests, each exit 7`);
  }
  t.same(bad, [], '12 embedder processes x 8 guests: none died');
});
