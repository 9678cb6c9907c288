// README's "Building an app", word for word: every `sh` block between the tutorial markers runs, in order,
// in an empty directory, with this checkout's CLI as `wasm-bpf` on PATH. The app it builds must print its
// header and the execs that happen while it runs.
import t from 'tap';
import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { CLI, ROOT } from './helpers.js';

const readme = fs.readFileSync(path.join(ROOT, 'README.md'), 'utf8');
const section = /<!-- tutorial:start[^>]*-->([\s\S]*?)<!-- tutorial:end -->/.exec(readme)?.[1];

t.test('README: building an app, word for word', async (t) => {
  t.ok(section, 'README has the tutorial section');
  if (!section) return;
  const blocks = [...section.matchAll(/```sh\n([\s\S]*?)```/g)].map((m) => m[1]!);
  t.ok(blocks.length >= 3, `${blocks.length} shell blocks`);
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'wasm-bpf-tutorial-'));
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
  const bin = path.join(dir, 'bin');
  fs.mkdirSync(bin);
  fs.symlinkSync(CLI, path.join(bin, 'wasm-bpf'));
  const work = path.join(dir, 'work');
  fs.mkdirSync(work);
  // execs for the app to see while it runs (its last command runs it for 5 s)
  const execs = spawn('sh', ['-c', 'for i in $(seq 60); do sleep 0.5; /bin/true; done'], { stdio: 'ignore' });
  t.teardown(() => execs.kill());
  const r = spawnSync('bash', ['-e', '-c', blocks.join('\n')], {
    cwd: work,
    encoding: 'utf8',
    env: { ...process.env, PATH: `${bin}:${process.env['PATH']}` },
    timeout: 120_000,
  });
  t.equal(r.status, 0, `the commands ran: ${r.stderr.slice(-3000)}`);
  const lines = r.stdout.split('\n');
  t.ok(lines.includes(`${'PID'.padEnd(8)} COMM`), 'the header line');
  t.ok(lines.some((l) => /^\d+ +true$/.test(l)), 'the execs of /bin/true while it ran');
  for (const f of ['vmlinux.h', 'libbpf-wasm.h', 'hello.bpf.o', 'hello.skel.h', 'hello.wasm']) t.ok(fs.existsSync(path.join(work, 'hello', f)), `hello/${f} made`);
});
