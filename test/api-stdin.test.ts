// The library API's `stdin` option (as the Rust runtime's Config.stdin): the guest's fd 0 from the
// embedder's bytes or string, or nothing ('ignore'), instead of the embedder's own stdin. The embedder is a
// plain node process importing dist/ (as an installed package is used), not this test's process.
import t from 'tap';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { spawnSync } from 'node:child_process';
import { BUILD, FIXTURES, ROOT, buildGuest } from './helpers.js';

const guest = buildGuest(path.join(FIXTURES, 'stdin-cat.c'), path.join(BUILD, 'stdin-cat.wasm'));
const TMP = fs.mkdtempSync(path.join(os.tmpdir(), 'wasm-bpf-api-stdin-'));
t.teardown(() => fs.rmSync(TMP, { recursive: true, force: true }));

// one guest per embedder process (several short guests in one process: test/api-addon-unload.test.ts)
const script = (stdin: string): string => `const { run } = await import(${JSON.stringify(path.join(ROOT, 'dist', 'src', 'index.js'))});
let code, stdout = '';
try {
  const app = run(${JSON.stringify(guest)}, { stdin: ${stdin} });
  app.stdout.setEncoding('utf8').on('data', (d) => (stdout += d));
  app.stderr.resume();
  code = await app.exit;
} catch (err) {
  code = err.code;
}
process.stdout.write(JSON.stringify({ code, xs: stdout.split('x').length - 1, stdout: stdout.slice(-40) }));
`;

function embed(stdin: string): { code: number | string; xs: number; stdout: string } {
  const file = path.join(TMP, 'embedder.mjs');
  fs.writeFileSync(file, script(stdin));
  // the embedder's own stdin holds something else: the guest must never see it
  const r = spawnSync(process.execPath, [file], { input: "the embedder's stdin\n", encoding: 'utf8', timeout: 60_000, env: { ...process.env, NODE_OPTIONS: '' } });
  if (r.status !== 0) throw new Error(`the embedder exited ${r.status ?? r.signal}: ${r.stderr}`);
  return JSON.parse(r.stdout) as { code: number | string; xs: number; stdout: string };
}

t.test('stdin: a string, bytes, or nothing; anything else is a usage error', async (t) => {
  t.same(embed(`'hello\\nwörld\\n'`), { code: 7, xs: 0, stdout: 'hello\nwörld\nread=13 eof=1\n' }, 'a string: its UTF-8 bytes, then end of file');
  t.same(embed(`new Uint8Array(Buffer.alloc(100000, 'x'))`), { code: 7, xs: 100_000, stdout: `${'x'.repeat(40 - 'read=100000 eof=1\n'.length)}read=100000 eof=1\n` }, 'bytes, read in many pieces');
  t.same(embed(`'ignore'`), { code: 7, xs: 0, stdout: 'read=0 eof=1\n' }, "'ignore': end of file at once (not the embedder's stdin)");
  t.same(embed('42'), { code: 'USAGE', xs: 0, stdout: '' }, 'anything else: a usage error');
});
