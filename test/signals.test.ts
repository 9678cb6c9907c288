// Ctrl-C and SIGTERM: prompt exit while the guest blocks in a poll, a sleep or a busy loop; every
// kernel object closed; no output line lost when stdout is a pipe or a file.
import t from 'tap';
import fs from 'node:fs';
import path from 'node:path';
import { spawn, spawnSync } from 'node:child_process';
import { abiGuest, BUILD, buildGuest, CLI, FIXTURES, kernelIds, ROOT, Running, settledLeaks, startCli } from './helpers.js';

const wasm = abiGuest();
const before = kernelIds();

for (const [mode, sig, code] of [
  ['poll', 'SIGINT', 130],
  ['sleep', 'SIGINT', 130],
  ['poll', 'SIGTERM', 143],
] as const) {
  t.test(`${sig} while the guest blocks in a ${mode}: exit ${code} within 1 s, output kept`, async (t) => {
    const run = startCli([wasm, 'block', mode]);
    await run.waitFor(/^# ready/);
    await new Promise((r) => setTimeout(r, 200));
    const r = await run.interrupt(sig);
    t.equal(r.code, code);
    t.ok(r.ms < 1000, `exited in ${r.ms} ms`);
    for (let i = 0; i < 5; i++) t.match(run.stdout, new RegExp(`^line ${i}$`, 'm'));
    t.notMatch(run.stdout, /not reached/);
  });
}

t.test('stdout to a file: every line written before Ctrl-C is there', async (t) => {
  const file = path.join(BUILD, 'signals-out.txt');
  const fd = fs.openSync(file, 'w');
  const child = spawn(process.execPath, [CLI, wasm, 'block'], { stdio: ['ignore', fd, 'pipe'] });
  fs.closeSync(fd);
  const run = new Running(child);
  const deadline = Date.now() + 20_000;
  while (!fs.readFileSync(file, 'utf8').includes('# ready') && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
  const r = await run.interrupt('SIGINT');
  t.equal(r.code, 130);
  const out = fs.readFileSync(file, 'utf8');
  t.equal(out, 'load=1\nline 0\nline 1\nline 2\nline 3\nline 4\n# ready\n');
});

t.test('a guest spinning without host calls is stopped within 1 s', async (t) => {
  const spin = buildGuest(path.join(FIXTURES, 'bad', 'spin.c'), path.join(BUILD, 'spin.wasm'));
  const run = startCli([spin]);
  await run.waitFor(/^# spinning/);
  const r = await run.interrupt('SIGINT');
  t.equal(r.code, 130);
  t.ok(r.ms < 1500, `exited in ${r.ms} ms`);
});

// the guest inside its own record callback (called by the host from a buffer poll), which sleeps or spins:
// Ctrl-C through the CLI, and terminate() through the library API, stop it as promptly
for (const how of ['callback', 'callback-spin'] as const) {
  const limit = how === 'callback' ? 1000 : 1500; // a spin is ended after the 0.9 s grace
  t.test(`SIGINT while the guest is inside its own callback (${how === 'callback' ? 'sleeping' : 'spinning'}): exit 130 within ${limit} ms`, async (t) => {
    const run = startCli([wasm, 'block', how]);
    await run.waitFor(/^# ready/);
    for (let i = 0; i < 200 && !/^# in callback$/m.test(run.stdout); i++) {
      void process.ppid; // a getppid() record for the guest's callback
      await new Promise((r) => setTimeout(r, 20));
    }
    t.match(run.stdout, /^# in callback$/m, 'the guest is in its callback');
    const r = await run.interrupt('SIGINT');
    t.equal(r.code, 130);
    t.ok(r.ms < limit, `exited in ${r.ms} ms`);
  });
  t.test(`the library API: terminate() while the guest is inside its own callback (${how === 'callback' ? 'sleeping' : 'spinning'})`, async (t) => {
    // the embedder is a plain node process importing dist/, as an installed package is used
    const file = path.join(BUILD, `signals-embedder-${how}.mjs`);
    fs.writeFileSync(
      file,
      `const { run } = await import(${JSON.stringify(path.join(ROOT, 'dist', 'src', 'index.js'))});
const app = run(${JSON.stringify(wasm)}, { args: ['block', '${how}'] });
let out = '';
app.stdout.setEncoding('utf8').on('data', (d) => (out += d));
app.stderr.resume();
for (let i = 0; i < 500 && !/^# in callback$/m.test(out); i++) {
  if (out.includes('# ready')) void process.ppid; // a getppid() record for the guest's callback
  await new Promise((r) => setTimeout(r, 20));
}
const t0 = Date.now();
const code = await app.terminate();
process.stdout.write(JSON.stringify({ inCallback: /^# in callback$/m.test(out), code, ms: Date.now() - t0 }));
`,
    );
    const r = spawnSync(process.execPath, [file], { encoding: 'utf8', timeout: 60_000, env: { ...process.env, NODE_OPTIONS: '' } });
    t.equal(r.status, 0, r.stderr);
    const out = JSON.parse(r.stdout) as { inCallback: boolean; code: number; ms: number };
    t.ok(out.inCallback, 'the guest was in its callback');
    t.equal(out.code, 143, '128 + SIGTERM');
    t.ok(out.ms < limit, `ended in ${out.ms} ms`);
  });
}

t.test('nothing left in the kernel', async (t) => {
  t.same(await settledLeaks(before), { progs: [], maps: [], links: [] });
});
