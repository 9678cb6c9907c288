// Choosing the kernel backend's native part (backends/linux/kernellib.ts): the addon when built, else the
// system's libbpf through FFI; `probe` names it, `run --libbpf` forces it. On the real kernel.
import t from 'tap';
import path from 'node:path';
import { spawn } from 'node:child_process';
import { CLI, ROOT, Running, ensureMounts, kernelIds, runCli, settledLeaks } from './helpers.js';
import type { Report } from '../src/probe/types.js';

ensureMounts();
const before = kernelIds();
const BOOTSTRAP = path.join(ROOT, 'matrix', 'build', 'bootstrap.wasm');
const hidden = { ...process.env, WASM_BPF_NO_ADDON: '1' };

t.test('probe names the kernel path: the addon when built, FFI when it is not (and why)', async (t) => {
  const withAddon = JSON.parse(runCli(['probe', '--json']).stdout) as Report;
  t.equal(withAddon.backends.linux.state, 'yes');
  t.same(withAddon.backends.linux.kernelPath, { path: 'addon', reason: 'the native addon is built' });
  const r = runCli(['probe', '--json'], { env: hidden });
  const noAddon = JSON.parse(r.stdout) as Report;
  t.equal(noAddon.backends.linux.state, 'yes', 'the kernel backend still runs');
  t.equal(noAddon.backends.linux.built, true);
  t.equal(noAddon.backends.linux.kernelPath?.path, 'ffi');
  t.match(noAddon.backends.linux.kernelPath?.reason ?? '', /^libbpf\.so\.1 through koffi \(the addon: native addon hidden by WASM_BPF_NO_ADDON=1/);
  const text = runCli(['probe'], { env: hidden }).stdout;
  t.match(text, /\n {4}via {6}libbpf through FFI: libbpf\.so\.1 through koffi/, 'the text report says it too');
});

/** bootstrap's events for a process the test starts, through `env` and `args` */
async function bootstrap(t: Tap.Test, args: string[], env: NodeJS.ProcessEnv): Promise<string> {
  const run = new Running(spawn(process.execPath, [CLI, 'run', '--verbose', ...args, BOOTSTRAP, '-j'], { stdio: ['ignore', 'pipe', 'pipe'], env }));
  await run.attached('bootstrap');
  const child = spawn('/bin/sleep', ['0.2']);
  await run.waitEvent((e) => e.event === 'exec' && e['pid'] === child.pid, 'the exec of the test\'s process');
  await run.waitEvent((e) => e.event === 'exit' && e['pid'] === child.pid, 'its exit');
  const r = await run.interrupt('SIGINT');
  t.equal(r.code, 130, 'Ctrl-C exits 130');
  return run.stderr.split('\n').filter((l) => l.includes('wasm-bpf: selector: the kernel backend runs on')).join('\n');
}

t.test('run: automatic FFI without the addon, --libbpf ffi with it, --libbpf addon by default; same events', async (t) => {
  t.match(await bootstrap(t, [], hidden), /runs on libbpf through FFI \(libbpf\.so\.1 through koffi: native addon hidden/, 'auto without the addon: FFI');
  t.match(await bootstrap(t, ['--libbpf', 'ffi'], process.env), /runs on libbpf through FFI \(asked for \(--libbpf ffi\)/, 'forced');
  t.match(await bootstrap(t, [], process.env), /runs on the native addon \(the native addon is built\)/, 'auto with the addon: the addon');
});

t.test('run --libbpf addon without the addon fails and says why; a bad value is a usage error', async (t) => {
  const r = runCli(['run', '--libbpf', 'addon', BOOTSTRAP], { env: hidden });
  t.equal(r.code, 1);
  t.match(r.stderr, /native addon hidden by WASM_BPF_NO_ADDON=1/);
  const bad = runCli(['run', '--libbpf', 'dll', BOOTSTRAP]);
  t.equal(bad.code, 2);
  t.match(bad.stderr, /--libbpf must be one of auto, addon, ffi/);
  t.match(runCli(['run', '--help']).stdout, /--libbpf auto\|addon\|ffi/);
});

t.test('no program, map or link is left in the kernel', async (t) => {
  t.same(await settledLeaks(before), { progs: [], maps: [], links: [] });
});
