// README's "Using wasm-bpf from JavaScript or TypeScript": its trace.mjs, word for word, imports 'wasm-bpf'
// (this checkout, through a node_modules link as an installed package resolves) from an empty directory,
// runs bootstrap.wasm from the checkout's root for its 5 s while execs happen, and prints the exit code of
// a terminated guest and the execs it counted from the -j lines.
import t from 'tap';
import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { ROOT } from './helpers.js';

const readme = fs.readFileSync(path.join(ROOT, 'README.md'), 'utf8');
const section = /^## Using wasm-bpf from JavaScript[^\n]*\n([\s\S]*?)^## /m.exec(readme)?.[1];
const script = section ? /```js\n(\/\/ trace\.mjs[\s\S]*?)```/.exec(section)?.[1] : undefined;

t.test('README: the library example, word for word', async (t) => {
  t.ok(script, 'README has the trace.mjs example');
  if (!script) return;
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'wasm-bpf-api-readme-'));
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
  fs.mkdirSync(path.join(dir, 'node_modules'));
  fs.symlinkSync(ROOT, path.join(dir, 'node_modules', 'wasm-bpf'));
  const file = path.join(dir, 'trace.mjs');
  fs.writeFileSync(file, script);
  // execs for bootstrap to report while the example runs it
  const execs = spawn('sh', ['-c', 'for i in $(seq 40); do sleep 0.25; /bin/true; done'], { stdio: 'ignore' });
  t.teardown(() => execs.kill());
  const r = spawnSync(process.execPath, [file], { cwd: ROOT, encoding: 'utf8', timeout: 60_000 });
  t.equal(r.status, 0, `node trace.mjs ran: ${r.stderr.slice(-3000)}`);
  const m = /^exit (\d+), (\d+) execs$/m.exec(r.stdout);
  t.ok(m, `it printed its result line: ${r.stdout.slice(-500)}`);
  if (!m) return;
  t.equal(Number(m[1]), 143, 'exit 143 after terminate() (128 + SIGTERM), as the comment says');
  t.ok(Number(m[2]) >= 5, `it counted the execs of the 5 s (${m[2]})`);
});
