// The npm package as a user gets it: `npm pack` of this checkout, installed into an empty temporary project.
// Without its native parts (the install script skips or fails them) the install succeeds, `probe` says the
// kernel backend is missing and why, and `vm`, `check`, `probe` work. With them (this checkout's builds, copied
// in as the install script would have made them: a real build takes minutes on a busy machine) an embedder
// imports the library API by name and runs modules on the real kernel.
import t from 'tap';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { execFileSync, spawnSync } from 'node:child_process';
import { ROOT, FIXTURES, BUILD, buildGuest, kernelIds, settledLeaks } from './helpers.js';

const BOOTSTRAP = path.join(ROOT, 'matrix', 'build', 'bootstrap.wasm');
const ADDON = path.join(ROOT, 'native', 'build', 'Release', 'wasm_bpf_native.node');
const AGENT = path.join(ROOT, 'native', 'agent', 'build');
const skip =
  (process.getuid?.() !== 0 && 'needs root (runs eBPF on the kernel)') ||
  (!fs.existsSync(BOOTSTRAP) && 'matrix/build not built (make -C matrix)') ||
  (!fs.existsSync(ADDON) && 'native addon not built') ||
  (!fs.existsSync(path.join(ROOT, 'dist', 'src', 'index.js')) && 'dist not built (npm run build)') ||
  false;

const TMP = fs.mkdtempSync(path.join(os.tmpdir(), 'wasm-bpf-package-'));
const PROJECT = path.join(TMP, 'project');
const PKG = path.join(PROJECT, 'node_modules', 'wasm-bpf');
// the probe cache of this test's installs: never the machine's
const env = { ...process.env, WASM_BPF_CACHE_DIR: path.join(TMP, 'cache'), NO_COLOR: '1' };
t.teardown(() => fs.rmSync(TMP, { recursive: true, force: true }));

const npx = (args: string[], opts: { input?: string } = {}) =>
  spawnSync('npx', ['--no-install', 'wasm-bpf', ...args], { cwd: PROJECT, env, encoding: 'utf8', timeout: 60_000, ...(opts.input !== undefined ? { input: opts.input } : {}) });

t.test('the package', { skip }, async (t) => {
  const before = kernelIds();
  // dist/ is this checkout's build (prepack builds it in a fresh clone; here the test suite's build is current)
  const packed = JSON.parse(execFileSync('npm', ['pack', '--ignore-scripts', '--json', '--pack-destination', TMP], { cwd: ROOT, encoding: 'utf8' })) as Array<{ filename: string; files: Array<{ path: string }> }>;
  const files = packed[0]!.files.map((f) => f.path);
  const tarball = path.join(TMP, packed[0]!.filename);

  t.test('the tarball ships what runs and nothing of the tests, benchmarks or matrix', async (t) => {
    for (const f of [
      'bin/wasm-bpf.js',
      'dist/src/index.js',
      'dist/src/index.d.ts',
      'dist/src/cli/main.bundle.js',
      'dist/src/runtime/worker.bundle.js',
      'native/install.js',
      'native/CMakeLists.txt',
      'native/src/addon.cc',
      'native/agent/Makefile',
      'native/agent/lib/agent.c',
      'src/guest/libbpf-wasm.h',
    ]) {
      t.ok(files.includes(f), f);
    }
    const bad = files.filter((f) => /^(test|bench|matrix|dist\/(test|bench|matrix))\/|^native\/(build|agent\/build|agent\/test)\/|node_modules|install-status/.test(f));
    t.same(bad, [], 'no test/, bench/, matrix/, build output or install state');
    const pkg = JSON.parse(fs.readFileSync(path.join(ROOT, 'package.json'), 'utf8')) as { scripts: Record<string, string> };
    t.match(pkg.scripts['prepack'], /build/, 'prepack builds dist/ (a pack from a fresh clone is whole)');
  });

  fs.mkdirSync(PROJECT, { recursive: true });
  fs.writeFileSync(path.join(PROJECT, 'package.json'), JSON.stringify({ name: 'embedder', private: true, type: 'module' }));
  // the registry is only asked for what the npm cache lacks (cmake-js, node-addon-api and their dependencies)
  const install = spawnSync('npm', ['install', '--prefer-offline', '--no-audit', '--no-fund', '--foreground-scripts', tarball], {
    cwd: PROJECT,
    env: { ...env, WASM_BPF_SKIP_NATIVE: '1' },
    encoding: 'utf8',
    timeout: 300_000,
  });

  t.test('installed without its native parts: the install succeeds and says so', async (t) => {
    t.equal(install.status, 0, install.stderr);
    t.match(install.stderr + install.stdout, /wasm-bpf install: kernel backend addon: not built: WASM_BPF_SKIP_NATIVE=1/);
    const status = JSON.parse(fs.readFileSync(path.join(PKG, 'native', 'install-status.json'), 'utf8')) as { addon: { ok: boolean } };
    t.equal(status.addon.ok, false);
  });

  t.test('without the addon: probe says the kernel backend runs on the system libbpf through FFI, and why; vm, check and probe work', async (t) => {
    const p = npx(['probe', '--json']);
    t.equal(p.status, 0, p.stderr);
    const report = JSON.parse(p.stdout) as { backends: { linux: { state: string; built: boolean; kernelPath: { path: string; reason: string } }; userspace: { state: string } } };
    t.equal(report.backends.linux.state, 'yes', 'the kernel backend is there without the addon');
    t.equal(report.backends.linux.kernelPath.path, 'ffi', 'through libbpf.so.1 and koffi');
    t.match(report.backends.linux.kernelPath.reason, /libbpf\.so\.1 through koffi \(the addon: native addon not built .*WASM_BPF_SKIP_NATIVE=1/, 'naming why the addon is not used');
    t.equal(report.backends.userspace.state, 'yes');
    const human = npx(['probe']);
    t.match(human.stdout, /^\s+linux\s+yes\s/m);
    t.match(human.stdout, /^\s+via\s+libbpf through FFI: .*native addon not built/m);
    // and an app runs there: a user without a compiler gets the kernel backend
    const run = npx(['run', BOOTSTRAP, '-j', '-t', '1']);
    t.equal(run.status, 0, run.stderr);
    t.match(run.stdout, /^\{"event":"attached","app":"bootstrap"/m, 'bootstrap attached through libbpf.so.1');
    const asm = npx(['vm', 'asm'], { input: 'mov %r0, 42\nexit\n' });
    t.equal(asm.status, 0, asm.stderr);
    const prog = path.join(TMP, 'p.bin');
    fs.writeFileSync(prog, Buffer.from(asm.stdout, 'latin1'));
    const vm = spawnSync('sh', ['-c', `npx --no-install wasm-bpf vm asm | npx --no-install wasm-bpf vm run`], { cwd: PROJECT, env, input: 'mov %r0, 42\nexit\n', encoding: 'utf8' });
    t.equal(vm.status, 0, vm.stderr);
    t.match(vm.stdout, /2a/, 'vm run returns 42');
    const check = npx(['check', '--json', BOOTSTRAP]);
    const plan = JSON.parse(check.stdout) as { objects: Array<{ programs: unknown[] }> };
    t.ok(plan.objects[0]!.programs.length > 0, 'check reads the objects of a module');
    const gen = npx(['gen', 'skeleton', path.join(ROOT, 'matrix', 'build', 'bootstrap.bpf.o')]);
    t.equal(gen.status, 0, gen.stderr);
    t.match(gen.stdout, /#include "libbpf-wasm.h"/);
    t.ok(fs.existsSync(path.join(PKG, 'src', 'guest', 'libbpf-wasm.h')), 'the header the skeleton includes is shipped');
  });

  t.test('a native build that fails (no C++ compiler) is reported; the install script still exits 0', async (t) => {
    const r = spawnSync(process.execPath, ['native/install.js'], { cwd: PKG, env: { ...env, CXX: '/nonexistent/g++', WASM_BPF_SKIP_NATIVE: 'agent' }, encoding: 'utf8', timeout: 300_000 });
    t.equal(r.status, 0, r.stderr);
    t.match(r.stderr, /wasm-bpf install: kernel backend addon: the libbpf addon \(native\/\) failed .*CXX.*; to build it, install the build tools and libbpf .*npm rebuild wasm-bpf/);
    t.match(r.stderr, /the install goes on: `wasm-bpf probe` says what is missing/);
    const p = npx(['probe', '--json']);
    const linux = (JSON.parse(p.stdout) as { backends: { linux: { state: string; kernelPath: { path: string; reason: string } } } }).backends.linux;
    t.equal(linux.state, 'yes', 'the kernel backend runs on the system libbpf instead');
    t.equal(linux.kernelPath.path, 'ffi');
    t.match(linux.kernelPath.reason, /npm's install script did not build it: the libbpf addon \(native\/\) failed .*CXX/, 'probe names the cause');
  });

  t.test('the library API, imported by name from the installed package', async (t) => {
    // what the install script builds, from this checkout's build
    fs.mkdirSync(path.join(PKG, 'native', 'build', 'Release'), { recursive: true });
    fs.copyFileSync(ADDON, path.join(PKG, 'native', 'build', 'Release', 'wasm_bpf_native.node'));
    if (fs.existsSync(AGENT)) fs.cpSync(AGENT, path.join(PKG, 'native', 'agent', 'build'), { recursive: true });
    const guest = buildGuest(path.join(FIXTURES, 'api-guest.c'), path.join(BUILD, 'api-guest.wasm'));
    fs.copyFileSync(path.join(FIXTURES, 'api-embedder.mjs'), path.join(PROJECT, 'embedder.mjs'));
    // the CLI's answers first: the API's come from the same cache
    const cliProbe = JSON.parse(npx(['probe', '--json']).stdout) as unknown;
    const cliCheck = JSON.parse(npx(['check', '--json', BOOTSTRAP]).stdout) as unknown;
    const r = spawnSync(process.execPath, ['embedder.mjs', BOOTSTRAP, guest], { cwd: PROJECT, env, encoding: 'utf8', timeout: 120_000 });
    t.equal(r.status, 0, r.stderr);
    const out = JSON.parse(r.stdout) as Record<string, any>;
    t.same(out['probe'], cliProbe, 'probe() is what `probe --json` prints');
    t.equal(out['probe'].backends.linux.state, 'yes', 'with the addon built, the kernel backend is there (the cache is keyed by it)');
    t.same(out['check'], cliCheck, 'check() is what `check --json` prints');

    const b = out['bootstrap'];
    t.equal(b.header, '{"event":"attached","app":"bootstrap"}', 'bootstrap.wasm runs on the kernel, its stdout a stream');
    t.ok(b.exec, 'an exec the test caused arrives');
    t.equal(b.code, 143, 'terminate() while it polls: 128 + SIGTERM');
    t.ok(b.ms < 1500, `it ended within ${b.ms} ms`);
    t.same(b.held, [], 'the embedder holds no kernel object after the run');

    t.same(out['add'], { stdout: 'arg0=api-guest.wasm\narg1=add\narg2=two words\nsum=2000000000040\n', stderr: 'done\n', code: 7 }, 'args, streams, an embedder function of an i32 and an i64, the exit code');
    t.equal(out['waitTerminated'].code, 143, 'terminate() while the guest waits for an embedder function');
    t.ok(out['waitTerminated'].ms < 1000, `... within ${out['waitTerminated'].ms} ms`);
    t.same(out['waitAnswered'], { stdout: 'arg0=api-guest.wasm\narg1=wait\nwaiting\nwaited=41\n', code: 7 }, 'an embedder function may answer with a promise');
    t.equal(out['sleepTerminated'].code, 143, 'terminate() while the guest sleeps');
    t.ok(out['sleepTerminated'].ms < 1000, `... within ${out['sleepTerminated'].ms} ms`);
    t.equal(out['spinTerminated'].code, 143, 'terminate() of a guest that never calls the host (its thread is ended after graceMs)');
    t.ok(out['spinTerminated'].ms >= 250 && out['spinTerminated'].ms < 2000, `... after the grace, within ${out['spinTerminated'].ms} ms`);
    t.equal(out['threw'].code, 134, 'an embedder function that throws traps the guest');
    t.match(out['threw'].stderr, /the guest trapped: the embedder's host function env\.add threw: boom/);
    const p = out['pause'];
    t.equal(p.later, p.atPause, `no output while paused (${p.atPause} lines)`);
    t.ok(p.resumed > p.later, `output again after resume (${p.resumed} lines)`);
    t.equal(p.code, 143, 'terminate() of a paused guest');
    t.ok(p.ms < 1000, `... within ${p.ms} ms`);
    t.equal(out['missing'].error, 'WASM_IMPORT');
    t.match(out['missing'].message, /imports env\.wait; the embedder's module env provides: add/);
    t.same(out['heldAtEnd'], []);
    t.same(await settledLeaks(before), { progs: [], maps: [], links: [] }, 'no kernel object left');
  });

  t.test('the types: a strict TypeScript embedder compiles against the package', async (t) => {
    fs.writeFileSync(
      path.join(PROJECT, 'typed.ts'),
      `import { run, probe, check, policy, type RunningModule, type HostImports } from 'wasm-bpf';
const imports: HostImports = { env: { add: (a, b) => BigInt(a) + BigInt(b) } };
const app: RunningModule = run('x.wasm', { args: ['a'], env: { K: 'v' }, preopens: { '/data': '/tmp' }, backend: 'linux', imports, policy: policy({ base: 'deny', programTypes: ['tracepoint'] }) });
const code: Promise<number> = app.exit;
const linux: string = probe().backends.linux.state;
void check('x.wasm').then((r) => r.runnable satisfies boolean);
void code; void linux;
`,
    );
    const tsc = spawnSync(process.execPath, [path.join(ROOT, 'node_modules', 'typescript', 'bin', 'tsc'), '--noEmit', '--strict', '--module', 'nodenext', '--moduleResolution', 'nodenext', '--target', 'es2022', '--skipLibCheck', '--typeRoots', path.join(ROOT, 'node_modules', '@types'), '--types', 'node', 'typed.ts'], { cwd: PROJECT, encoding: 'utf8' });
    t.equal(tsc.status, 0, tsc.stdout + tsc.stderr);
  });
});
