// BTFHub (compat/btfhub): naming quirks, fetch + unpack + validate + atomic cache from a loopback mirror,
// the 404 / corrupt / offline failures, `wasm-bpf btf`, and the real thing: a CO-RE example run in a
// private mount namespace whose /sys/kernel/btf/vmlinux is /dev/null, its BTF served by a loopback
// btfhub-archive mirror built from this kernel's own BTF.
import t from 'tap';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { CLI, ROOT, Running, type AppEvent } from './helpers.js';
import { fetchBtf, hubArch, hubDistro, hubTarget, resolveBtf, BtfhubError, type HubTarget } from '../compat/btfhub/index.js';
import type { SystemView } from '../src/probe/system.js';

const TMP = fs.mkdtempSync(path.join(os.tmpdir(), 'wasm-bpf-btfhub-'));
t.teardown(() => fs.rmSync(TMP, { recursive: true, force: true }));
const RELEASE = os.release();
const HAVE_BTF = fs.existsSync('/sys/kernel/btf/vmlinux');

t.test('distro and arch naming quirks of btfhub-archive', async (t) => {
  t.same(hubDistro('ubuntu', '20.04'), { id: 'ubuntu', version: '20.04' });
  t.same(hubDistro('centos', '7.9.2009'), { id: 'centos', version: '7' });
  t.same(hubDistro('centos', '8'), { id: 'centos', version: '8' });
  t.same(hubDistro('rhel', '8.6'), { id: 'rhel', version: '8' });
  t.same(hubDistro('ol', '7.9'), { id: 'ol', version: '7' });
  t.same(hubDistro('amzn', '2'), { id: 'amzn', version: '2' });
  t.same(hubDistro('amzn', '2018.03'), { id: 'amzn', version: '2018' });
  t.same(hubDistro('debian', '12'), { id: 'debian', version: '12' });
  t.same(hubDistro('fedora', '34'), { id: 'fedora', version: '34' });
  t.same(hubDistro('sles', '15.3'), { id: 'sles', version: '15.3' });
  t.same(hubDistro('opensuse-leap', '15.3'), { id: 'opensuse-leap', version: '15.3' });
  t.equal(hubArch('x86_64'), 'x86_64');
  t.equal(hubArch('aarch64'), 'arm64');
  t.equal(hubArch('riscv64'), null);
});

function fakeSystem(files: Record<string, string>, machine = 'x86_64', release = '3.10.0-1160.el7.x86_64'): SystemView {
  const get = (p: string): Buffer => {
    const v = files[p];
    if (v === undefined) throw Object.assign(new Error(`ENOENT ${p}`), { code: 'ENOENT' });
    return Buffer.from(v);
  };
  return {
    mode: 'fixture',
    root: '/',
    readFile: get,
    readHead: (p, n, off = 0) => get(p).subarray(off, off + n),
    exists: (p) => p in files,
    readdir: () => [],
    uname: () => ({ sysname: 'Linux', release, version: '#1 SMP', machine, platform: 'linux' }),
    uid: () => 0,
    env: () => undefined,
  };
}

t.test('target: URL path from the archive names, cache path from os-release (the prober\'s btfhubPath)', async (t) => {
  const sys = fakeSystem({ '/etc/os-release': 'ID="centos"\nVERSION_ID="7.9.2009"\n' });
  const tg = hubTarget(sys, '/c');
  t.equal(tg.relPath, 'centos/7/x86_64/3.10.0-1160.el7.x86_64.btf.tar.xz');
  t.equal(tg.cachePath, '/c/btfhub/centos/7.9.2009/x86_64/3.10.0-1160.el7.x86_64.btf');
  const arm = hubTarget(fakeSystem({ '/etc/os-release': 'ID=ubuntu\nVERSION_ID="20.04"\n' }, 'aarch64', '5.4.0-42-generic'), '/c');
  t.equal(arm.relPath, 'ubuntu/20.04/arm64/5.4.0-42-generic.btf.tar.xz');
  t.throws(() => hubTarget(fakeSystem({ '/etc/os-release': 'ID=arch\n' }), '/c'), /VERSION_ID/);
  t.throws(() => hubTarget(fakeSystem({ '/etc/os-release': 'ID=ubuntu\nVERSION_ID=20.04\n' }, 'riscv64'), '/c'), /riscv64/);
  // a kernel without BTF, nothing cached, fetch disabled: says what was looked at
  await t.rejects(resolveBtf({ sys, cacheDir: path.join(TMP, 'none'), fetch: false }), /no vmlinux BTF .*btfhub\/centos\/7\.9\.2009/);
});

// ---- a loopback btfhub-archive mirror -------------------------------------------------------------

const target: HubTarget = hubTarget(undefined, path.join(TMP, 'unused'));
const ARCHIVE = path.join(TMP, 'archive');
const GOOD = path.join(ARCHIVE, ...target.relPath.split('/'));
const NOTBTF = path.join(TMP, 'notbtf.btf.tar.xz');

function makeTarXz(out: string, member: string, bytes: Buffer): void {
  const dir = fs.mkdtempSync(path.join(TMP, 'pack-'));
  fs.writeFileSync(path.join(dir, member), bytes);
  fs.mkdirSync(path.dirname(out), { recursive: true });
  execFileSync('tar', ['-C', dir, '-cJf', out, member]);
  fs.rmSync(dir, { recursive: true });
}

if (HAVE_BTF) makeTarXz(GOOD, `${RELEASE}.btf`, fs.readFileSync('/sys/kernel/btf/vmlinux'));
makeTarXz(NOTBTF, `${RELEASE}.btf`, Buffer.from('this is not BTF at all, just some text\n'.repeat(4)));

const requests: string[] = [];
let slowSent = 0;
const server = http.createServer((req, res) => {
  const url = req.url ?? '/';
  requests.push(url);
  const [, mode, ...rest] = url.split('/');
  const rel = rest.join('/');
  if (rel !== target.relPath) {
    res.writeHead(404).end('not found');
    return;
  }
  if (mode === 'ok' && fs.existsSync(GOOD)) {
    const body = fs.readFileSync(GOOD);
    res.writeHead(200, { 'content-length': body.length }).end(body);
  } else if (mode === 'redirect') {
    res.writeHead(302, { location: `/ok/${rel}` }).end();
  } else if (mode === 'corrupt') {
    res.writeHead(200).end(Buffer.from('\xfd7zXZ\x00garbage garbage garbage', 'latin1'));
  } else if (mode === 'notbtf') {
    res.writeHead(200).end(fs.readFileSync(NOTBTF));
  } else if (mode === 'slow') {
    // 10 MB promised, 64 KiB every 100 ms: a fetch interrupted in the middle
    res.writeHead(200, { 'content-length': 10 << 20 });
    const timer = setInterval(() => {
      slowSent += 64 << 10;
      res.write(Buffer.alloc(64 << 10, 0x41));
    }, 100);
    res.on('close', () => clearInterval(timer));
  } else res.writeHead(404).end('not found');
});
const port = await new Promise<number>((r) => server.listen(0, '127.0.0.1', () => r((server.address() as AddressInfo).port)));
t.teardown(() => server.close());
const BASE = `http://127.0.0.1:${port}`;
// a port nothing listens on
const closedPort = await new Promise<number>((r) => {
  const s = http.createServer();
  s.listen(0, '127.0.0.1', () => {
    const p = (s.address() as AddressInfo).port;
    s.close(() => r(p));
  });
});

function cacheFiles(dir: string): string[] {
  const out: string[] = [];
  const walk = (d: string): void => {
    if (!fs.existsSync(d)) return;
    for (const e of fs.readdirSync(d, { withFileTypes: true })) {
      if (e.isDirectory()) walk(path.join(d, e.name));
      else out.push(path.relative(dir, path.join(d, e.name)));
    }
  };
  walk(dir);
  return out;
}

t.test('fetch from a mirror: unpacked, validated and cached atomically', { skip: !HAVE_BTF && 'no /sys/kernel/btf/vmlinux to build an archive from' }, async (t) => {
  const dir = path.join(TMP, 'c1');
  const tg = hubTarget(undefined, dir);
  const n = requests.length;
  const r = await fetchBtf(tg, { mirror: `${BASE}/redirect` });
  t.equal(r.path, tg.cachePath);
  t.equal(r.from, `${BASE}/redirect/${tg.relPath}`);
  t.same(requests.slice(n), [`/redirect/${tg.relPath}`, `/ok/${tg.relPath}`], 'the redirect was followed');
  t.ok(fs.readFileSync(tg.cachePath).equals(fs.readFileSync('/sys/kernel/btf/vmlinux')), 'the cached file is the BTF that was served');
  t.same(cacheFiles(dir), [path.relative(dir, tg.cachePath)], 'no temporary file left behind');
  // from a local archive tree
  const dir2 = path.join(TMP, 'c2');
  const r2 = await fetchBtf(hubTarget(undefined, dir2), { archive: ARCHIVE });
  t.equal(r2.from, GOOD);
  t.ok(fs.existsSync(r2.path));
});

t.test('404, corrupt archive, not BTF, offline: clear errors, nothing cached', async (t) => {
  const dir = path.join(TMP, 'c3');
  const tg = hubTarget(undefined, dir);
  await t.rejects(fetchBtf(tg, { mirror: `${BASE}/missing` }), new RegExp(`${BASE}/missing/${tg.relPath.replace(/\./g, '\\.')}: HTTP 404`));
  await t.rejects(fetchBtf(tg, { mirror: `${BASE}/corrupt` }), new RegExp(`cannot unpack ${BASE}/corrupt/.*: xz: `));
  await t.rejects(fetchBtf(tg, { mirror: `${BASE}/notbtf` }), /is not BTF \(bad magic/);
  const off = fetchBtf(tg, { mirror: `http://127.0.0.1:${closedPort}` });
  await t.rejects(off, new RegExp(`http://127\\.0\\.0\\.1:${closedPort}/.*ECONNREFUSED`));
  await t.rejects(fetchBtf(tg, { archive: path.join(TMP, 'empty-archive') }), /not in the BTFHub archive/);
  await off.catch((e: unknown) => t.ok(e instanceof BtfhubError));
  t.same(cacheFiles(dir), [], 'nothing cached, no temporary file left');
  t.notOk(fs.existsSync(dir), 'not even the cache directories the failed fetches created');
});

t.test('Ctrl-C in the middle of `btf fetch` from a slow mirror: no file, no directory left; a killed fetch\'s leftovers go at the next one', async (t) => {
  const dir = path.join(TMP, 'c9');
  const env = { ...process.env, WASM_BPF_CACHE_DIR: dir };
  const tg = hubTarget(undefined, dir);
  const fetchDir = path.dirname(tg.cachePath);
  const partial = (): number => {
    let n = 0;
    if (fs.existsSync(fetchDir)) for (const f of cacheFiles(fetchDir)) n += fs.statSync(path.join(fetchDir, f)).size;
    return n;
  };
  for (const sig of ['SIGINT', 'SIGTERM'] as const) {
    slowSent = 0;
    const run = new Running(spawn(process.execPath, [CLI, 'btf', 'fetch', '--force', '--btfhub-mirror', `${BASE}/slow`], { env, stdio: ['ignore', 'pipe', 'pipe'] }));
    const t0 = Date.now();
    while (partial() < 128 << 10 && Date.now() - t0 < 20_000) await new Promise((r) => setTimeout(r, 50));
    t.ok(partial() >= 128 << 10, `a partial archive is on disk before the ${sig} (${partial()} bytes, ${slowSent} sent)`);
    run.child.kill(sig);
    const end = await run.exited;
    t.equal(end.signal, sig, `the fetch ended by the ${sig}`, { stderr: run.stderr });
    t.notOk(fs.existsSync(dir), `nothing left: no partial archive, no work or cache directory (${cacheFiles(dir).join(', ')})`);
  }
  // SIGKILL leaves its work directory (nothing can run then): the next fetch removes it
  const killed = new Running(spawn(process.execPath, [CLI, 'btf', 'fetch', '--force', '--btfhub-mirror', `${BASE}/slow`], { env, stdio: ['ignore', 'pipe', 'pipe'] }));
  const t0 = Date.now();
  while (partial() < 64 << 10 && Date.now() - t0 < 20_000) await new Promise((r) => setTimeout(r, 50));
  killed.child.kill('SIGKILL');
  await killed.exited;
  t.ok(fs.readdirSync(fetchDir).some((f) => f.startsWith('.fetch-')), 'a SIGKILLed fetch left its work directory');
  const r = await cli(['btf', 'fetch', '--force', '--btfhub-mirror', `${BASE}/ok`], env);
  t.equal(r.code, 0, r.stderr);
  t.same(cacheFiles(dir), [path.relative(dir, tg.cachePath)], 'the next fetch cached the file and removed the dead one\'s leftovers');
});

/** runs the CLI asynchronously (the mirror lives in this process) */
function cli(args: string[], env: NodeJS.ProcessEnv, ns = false): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const argv = [process.execPath, CLI, ...args].map((a) => `'${a.replace(/'/g, `'\\''`)}'`).join(' ');
  const child = ns
    ? spawn('unshare', ['-m', 'sh', '-c', `mount --make-rprivate / && mount --bind /dev/null /sys/kernel/btf/vmlinux && exec ${argv}`], { env, stdio: ['ignore', 'pipe', 'pipe'] })
    : spawn(process.execPath, [CLI, ...args], { env, stdio: ['ignore', 'pipe', 'pipe'] });
  const run = new Running(child);
  return run.exited.then(({ code }) => ({ code, stdout: run.stdout, stderr: run.stderr }));
}

t.test('wasm-bpf btf path | fetch | clear', { skip: !HAVE_BTF && 'no kernel BTF' }, async (t) => {
  const dir = path.join(TMP, 'c4');
  const env = { ...process.env, WASM_BPF_CACHE_DIR: dir };
  const tg = hubTarget(undefined, dir);
  let r = await cli(['btf', 'path', '--json', '--btfhub-mirror', `${BASE}/ok`], env);
  t.equal(r.code, 0, r.stderr);
  const j = JSON.parse(r.stdout) as Record<string, unknown>;
  t.equal(j['source'], 'sysfs');
  t.equal(j['btfhubPath'], tg.cachePath);
  t.equal(j['fetchFrom'], `${BASE}/ok/${tg.relPath}`);
  t.equal(j['cached'], false);
  r = await cli(['btf', 'fetch', '--btfhub-mirror', `${BASE}/missing`], env);
  t.equal(r.code, 1);
  t.match(r.stderr, `${BASE}/missing/${tg.relPath}: HTTP 404`);
  r = await cli(['btf', 'fetch', '--btfhub-mirror', `${BASE}/ok`], env);
  t.equal(r.code, 0, r.stderr);
  t.equal(r.stdout.trim(), tg.cachePath);
  r = await cli(['btf', 'path', '--json'], env);
  t.equal((JSON.parse(r.stdout) as Record<string, unknown>)['cached'], true);
  r = await cli(['btf', 'clear'], env);
  t.equal(r.code, 0);
  t.notOk(fs.existsSync(tg.cachePath));
  r = await cli(['btf', 'frobnicate'], env);
  t.equal(r.code, 2);
  r = await cli(['run', '--btfhub-mirror', 'ftp://x', 'a.wasm'], env);
  t.equal(r.code, 2);
  t.match(r.stderr, /--btfhub-mirror expects an http\(s\) URL/);
});

// ---- the real thing: no vmlinux BTF for libbpf, BTF from the loopback mirror ----------------------

const canNs = HAVE_BTF && process.getuid?.() === 0 && spawnSync('unshare', ['-m', 'true']).status === 0 && fs.existsSync(path.join(ROOT, 'matrix', 'build', 'bootstrap.wasm'));

t.test('bootstrap (CO-RE) in a mount namespace without vmlinux BTF, BTF from the mirror', { skip: !canNs && 'needs root, unshare, kernel BTF and matrix/build' }, async (t) => {
  const dir = path.join(TMP, 'c5');
  const env = { ...process.env, WASM_BPF_CACHE_DIR: dir };
  // first, in the namespace libbpf really finds no BTF: without a mirror the run fails
  const probe = await cli(['btf', 'path', '--json'], env, true);
  t.equal((JSON.parse(probe.stdout) as Record<string, unknown>)['source'], 'none', 'no kernel BTF inside the namespace');

  const before = requests.length;
  const argv = [process.execPath, CLI, 'run', '--btfhub-mirror', `${BASE}/ok`, path.join(ROOT, 'matrix', 'build', 'bootstrap.wasm'), '-j'];
  const run = new Running(
    spawn('unshare', ['-m', 'sh', '-c', `mount --make-rprivate / && mount --bind /dev/null /sys/kernel/btf/vmlinux && exec ${argv.join(' ')}`], { env, stdio: ['ignore', 'pipe', 'pipe'] }),
  );
  await run.attached('bootstrap');
  t.ok(requests.slice(before).includes(`/ok/${target.relPath}`), 'the archive was fetched from the mirror');
  t.match(run.stderr, /no vmlinux BTF; using BTFHub's .*fetched from http:\/\/127\.0\.0\.1/);
  const tg = hubTarget(undefined, dir);
  t.ok(fs.existsSync(tg.cachePath), 'cached');
  let pid = 0;
  const deadline = Date.now() + 15_000;
  const execOf = (p: number): AppEvent | undefined => run.events((e) => e.event === 'exec' && e['pid'] === p)[0];
  while (!execOf(pid)) {
    if (Date.now() > deadline || run.child.exitCode !== null) break;
    pid = spawnSync('/bin/sh', ['-c', 'exit 3']).pid ?? 0;
    await new Promise((r) => setTimeout(r, 100));
  }
  t.equal(execOf(pid)?.['filename'], '/bin/sh', `the exec event of /bin/sh\n${run.stdout.slice(-2000)}\n${run.stderr}`);
  const exit = await run.interrupt('SIGINT');
  t.equal(exit.code, 130);

  // a second run uses the cache: no request
  const n = requests.length;
  const again = new Running(
    spawn('unshare', ['-m', 'sh', '-c', `mount --make-rprivate / && mount --bind /dev/null /sys/kernel/btf/vmlinux && exec ${argv.join(' ')}`], { env, stdio: ['ignore', 'pipe', 'pipe'] }),
  );
  await again.attached('bootstrap');
  t.equal(requests.length, n, 'no download when cached');
  t.equal((await again.interrupt('SIGINT')).code, 130);

  // air-gapped: a local archive tree, fresh cache
  const env2 = { ...process.env, WASM_BPF_CACHE_DIR: path.join(TMP, 'c7') };
  const argv2 = [process.execPath, CLI, 'run', '--btfhub-archive', ARCHIVE, path.join(ROOT, 'matrix', 'build', 'bootstrap.wasm'), '-j'];
  const gapped = new Running(
    spawn('unshare', ['-m', 'sh', '-c', `mount --make-rprivate / && mount --bind /dev/null /sys/kernel/btf/vmlinux && exec ${argv2.join(' ')}`], { env: env2, stdio: ['ignore', 'pipe', 'pipe'] }),
  );
  await gapped.attached('bootstrap');
  t.match(gapped.stderr, `fetched from ${GOOD}`);
  t.equal(requests.length, n, 'no request to the mirror');
  t.equal((await gapped.interrupt('SIGINT')).code, 130);
});

t.test('run without vmlinux BTF: 404, corrupt, offline exit 1 naming the URL; nothing cached', { skip: !canNs && 'needs root, unshare, kernel BTF and matrix/build' }, async (t) => {
  const dir = path.join(TMP, 'c6');
  const env = { ...process.env, WASM_BPF_CACHE_DIR: dir };
  const wasm = path.join(ROOT, 'matrix', 'build', 'bootstrap.wasm');
  const tg = hubTarget(undefined, dir);
  let r = await cli(['run', '--btfhub-mirror', `${BASE}/missing`, wasm], env, true);
  t.equal(r.code, 1);
  t.match(r.stderr, `${BASE}/missing/${tg.relPath}: HTTP 404`);
  t.match(r.stderr, 'no vmlinux BTF');
  r = await cli(['run', '--btfhub-mirror', `${BASE}/corrupt`, wasm], env, true);
  t.equal(r.code, 1);
  t.match(r.stderr, /cannot unpack/);
  r = await cli(['run', '--btfhub-mirror', `${BASE}/notbtf`, wasm], env, true);
  t.equal(r.code, 1);
  t.match(r.stderr, /not BTF/);
  r = await cli(['run', '--btfhub-mirror', `http://127.0.0.1:${closedPort}`, wasm], env, true);
  t.equal(r.code, 1);
  t.match(r.stderr, `http://127.0.0.1:${closedPort}/${tg.relPath}: ECONNREFUSED`);
  t.notOk(r.stdout.includes('# bootstrap'), 'nothing loaded');
  t.same(cacheFiles(path.join(dir, 'btfhub')), [], 'nothing cached');
});

t.test('Ctrl-C in the middle of a run\'s BTF fetch: exit 130, nothing left; the library API: terminate() aborts it, the embedder\'s signals untouched', { skip: !canNs && 'needs root, unshare, kernel BTF and matrix/build' }, async (t) => {
  const wasm = path.join(ROOT, 'matrix', 'build', 'bootstrap.wasm');
  const dir = path.join(TMP, 'c10');
  const env = { ...process.env, WASM_BPF_CACHE_DIR: dir };
  const tg = hubTarget(undefined, dir);
  const fetchDir = path.dirname(tg.cachePath);
  const downloading = async (): Promise<boolean> => {
    const t0 = Date.now();
    while (Date.now() - t0 < 20_000) {
      if (fs.existsSync(fetchDir) && cacheFiles(fetchDir).some((f) => f.endsWith('.tar.xz') && fs.statSync(path.join(fetchDir, f)).size >= 64 << 10)) return true;
      await new Promise((r) => setTimeout(r, 50));
    }
    return false;
  };
  const inNs = (argv: string[]): Running =>
    new Running(spawn('unshare', ['-m', 'sh', '-c', `mount --make-rprivate / && mount --bind /dev/null /sys/kernel/btf/vmlinux && exec "$@"`, 'sh', ...argv], { env, stdio: ['ignore', 'pipe', 'pipe'] }));

  const run = inNs([process.execPath, CLI, 'run', '--btfhub-mirror', `${BASE}/slow`, wasm, '-j']);
  t.ok(await downloading(), 'the run is downloading');
  run.child.kill('SIGINT');
  const end = await run.exited;
  t.equal(end.code, 130, 'the run ends as Ctrl-C says (130), not as a failure');
  t.match(run.stderr, /fetching http:\/\/127\.0\.0\.1:\d+\/slow\/.*: interrupted by SIGINT; nothing was kept/);
  t.notOk(fs.existsSync(dir), `nothing left (${cacheFiles(dir).join(', ')})`);

  // the library API in an embedder: its SIGINT stays its own; terminate() stops the fetch
  const script = path.join(TMP, 'api-fetch.mjs');
  fs.writeFileSync(
    script,
    `const count = () => process.listenerCount('SIGINT') + process.listenerCount('SIGTERM') + process.listenerCount('SIGHUP');
const base = count(); // a test harness's own (tap's processinfo hooks signals through NODE_OPTIONS)
const { run } = await import(${JSON.stringify(path.join(ROOT, 'dist', 'src', 'index.js'))});
const app = run(${JSON.stringify(wasm)}, { args: ['-j'], btfhub: { mirror: ${JSON.stringify(`${BASE}/slow`)} } });
let err = ''; app.stderr.on('data', (d) => (err += d)); app.stdout.resume();
process.stdout.write('fetching\\n');
await new Promise((r) => process.stdin.once('data', r));
process.stdin.destroy();
const listeners = count() - base;
const t0 = Date.now();
const code = await app.terminate();
process.stdout.write(JSON.stringify({ code, ms: Date.now() - t0, listeners, err }) + '\\n');
`,
  );
  const api = new Running(spawn('unshare', ['-m', 'sh', '-c', `mount --make-rprivate / && mount --bind /dev/null /sys/kernel/btf/vmlinux && exec "$@"`, 'sh', process.execPath, script], { env, stdio: ['pipe', 'pipe', 'pipe'] }));
  t.ok(await downloading(), 'the embedded run is downloading');
  api.child.stdin!.end('go\n');
  const done = await api.exited;
  t.equal(done.code, 0, api.stderr);
  const out = JSON.parse(api.stdout.split('\n').find((l) => l.startsWith('{'))!) as { code: number; ms: number; listeners: number; err: string };
  t.equal(out.listeners, 0, `no signal handler of ours in the embedder's process while it fetched (${out.listeners})`);
  t.equal(out.code, 143, 'terminate() during the fetch: 128 + SIGTERM');
  t.ok(out.ms < 1000, `within ${out.ms} ms`);
  t.match(out.err, /stopped by terminate\(\); nothing was kept/);
  t.notOk(fs.existsSync(dir), `nothing left (${cacheFiles(dir).join(', ')})`);
});
