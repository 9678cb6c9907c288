// Every example app of matrix/ run as Wasm under wasm-bpf on the real kernel: the test causes the
// events and asserts that the specific events it caused arrive with the right fields.
import t from 'tap';
import fs from 'node:fs';
import path from 'node:path';
import { spawn, spawnSync } from 'node:child_process';
import os from 'node:os';
import { CLI, ROOT, Running, ensureMounts, kernelIds, settledLeaks, untilEvent } from './helpers.js';
import { SCENARIOS, type Launcher, type Place } from '../matrix/harness/scenarios.js';

const BUILD = path.join(ROOT, 'matrix', 'build');
ensureMounts();
const before = kernelIds();

function app(name: string, args: string[] = [], ns?: string): Running {
  const argv = [CLI, 'run', path.join(BUILD, `${name}.wasm`), ...args];
  const child = ns
    ? spawn('ip', ['netns', 'exec', ns, process.execPath, ...argv], { stdio: ['ignore', 'pipe', 'pipe'] })
    : spawn(process.execPath, argv, { stdio: ['ignore', 'pipe', 'pipe'] });
  return new Running(child);
}

async function stop(t: Tap.Test, run: Running): Promise<void> {
  const r = await run.interrupt('SIGINT');
  t.equal(r.code, 130, 'Ctrl-C exits 130');
}

// The checks each app must pass are matrix/harness/scenarios.ts: the compatibility matrix judges its
// cells with the same functions.
const TMP = fs.mkdtempSync(path.join(os.tmpdir(), 'wasm-bpf-examples-'));
t.teardown(() => fs.rmSync(TMP, { recursive: true, force: true }));
const place: Place = { build: BUILD, tmp: TMP, node: process.execPath, cgroup: '/sys/fs/cgroup/unified' };
const wasm: Launcher = { label: 'wasm', interruptStatus: 130, start: (name, args, o) => app(name, args, o?.netns) };
const what: Record<string, string> = {
  bootstrap: 'exec and exit of a process the test starts (ring buffer)',
  execve: 'filename, first argument, parent and result (perf buffer)',
  opensnoop: 'a file the test opens, with its fd and flags; a missing one with -ENOENT; -p filters',
  runqlat: 'a histogram read from a hash map with map_operate',
  sockfilter: 'a UDP datagram the test sends on loopback',
  sockops: 'a TCP connection on loopback, seen from both ends',
  uprobe: 'arguments and return value of a function in a binary the test built',
  xdp: 'packets over a veth pair between two network namespaces the test creates',
};
for (const name of ['bootstrap', 'execve', 'opensnoop', 'runqlat', 'sockfilter', 'sockops', 'uprobe', 'xdp'] as const) {
  t.test(`${name}: ${what[name]}`, async (t) => {
    const line = await SCENARIOS[name](wasm, place);
    t.ok(line, line);
  });
}

t.test('bootstrap -d: the rodata minimum duration reaches the kernel', async (t) => {
  const run = app('bootstrap', ['-j', '-d', '400']);
  await run.attached('bootstrap');
  const quick = spawnSync('/bin/true').pid;
  const slow = spawn('/bin/sleep', ['0.6']);
  await untilEvent(run, (e) => e.event === 'exit' && e['pid'] === slow.pid, 'the exit of the slow process', () => {});
  t.equal(run.events((e) => e.event === 'exit' && e['pid'] === quick).length, 0, 'a process shorter than 400 ms is not reported');
  await stop(t, run);
});

t.test('sockops: a cgroup outside the allow-list is refused', async (t) => {
  const r = spawnSync(process.execPath, [CLI, 'run', '--allow-cgroup', '/sys/fs/cgroup/unified/wasm-bpf-none-' + process.pid, path.join(BUILD, 'sockops.wasm'), '/sys/fs/cgroup/unified'], { encoding: 'utf8' });
  t.equal(r.status, 2, 'a missing --allow-cgroup directory is a usage error');
  const dir = '/sys/fs/cgroup/unified/wasm-bpf-test-' + process.pid;
  fs.mkdirSync(dir);
  try {
    const s = spawnSync(process.execPath, [CLI, 'run', '--allow-cgroup', dir, path.join(BUILD, 'sockops.wasm'), '/sys/fs/cgroup/unified'], { encoding: 'utf8', timeout: 20_000 });
    t.equal(s.status, 1);
    t.match(s.stderr, /cgroup path \/sys\/fs\/cgroup\/unified is outside the allowed cgroup directories/);
  } finally {
    fs.rmdirSync(dir);
  }
});

// examples-ffi.test.ts runs this file with the addon hidden: the prober's live probes (its BPF_PROG_LOAD tries,
// native/src/probe.cc) are the addon's, so the plan cannot know ahead that this kernel refuses trampolines
// (the refusal then comes at load: the kernel's EPERM with the same hint)
const ffi = process.env.WASM_BPF_NO_ADDON === '1';

t.test('lsm: cannot load on this kernel, and the run says why', async (t) => {
  const r = spawnSync(process.execPath, [CLI, 'run', path.join(BUILD, 'lsm.wasm')], { encoding: 'utf8', timeout: 20_000 });
  t.equal(r.status, 1);
  if (ffi) {
    t.match(r.stderr, /the kernel refused to load program 'lsm_bprm_check' \(lsm\/bprm_check_security\): Operation not permitted \(EPERM\)/, 'FFI path: the kernel refuses it at load');
    t.match(r.stderr, /hint: this kernel refuses BPF trampoline programs/);
    return;
  }
  t.match(r.stderr, /no backend on this host can run the object:\n  - program 'lsm_bprm_check' \(lsm\/bprm_check_security\) needs program type lsm \(Linux 5\.7\+\): loading an lsm program .* refused with EPERM/);
  const forced = spawnSync(process.execPath, [CLI, 'run', '--backend', 'linux', path.join(BUILD, 'lsm.wasm')], { encoding: 'utf8', timeout: 20_000 });
  t.equal(forced.status, 1);
  t.match(forced.stderr, /refused to load program 'lsm_bprm_check' \(lsm\/bprm_check_security\): Operation not permitted \(EPERM\)/);
  t.match(forced.stderr, /hint: this kernel refuses BPF trampoline programs/);
});

t.test('kprobe: cannot attach on this kernel, and the run says why', async (t) => {
  const r = spawnSync(process.execPath, [CLI, 'run', path.join(BUILD, 'kprobe.wasm')], { encoding: 'utf8', timeout: 20_000 });
  t.equal(r.status, 1);
  t.match(r.stderr, /programs 'do_unlinkat' \(kprobe\/do_unlinkat\), 'do_unlinkat_exit' \(kretprobe\/do_unlinkat\) need attach mechanism kprobe .*CONFIG_KPROBES is not set/);
  t.equal(r.stderr.match(/CONFIG_KPROBES is not set/g)?.length, 1, 'one line for the missing capability, both programs named on it');
  const forced = spawnSync(process.execPath, [CLI, 'run', '--backend', 'linux', path.join(BUILD, 'kprobe.wasm')], { encoding: 'utf8', timeout: 20_000 });
  t.equal(forced.status, 1);
  t.match(forced.stderr, /attaching program 'do_unlinkat' failed/);
  t.match(forced.stderr, /hint: kprobe attach needs a kernel built with CONFIG_KPROBES/);
});

t.test('fentry: BPF trampolines are refused on this kernel, and the run says why', async (t) => {
  const r = spawnSync(process.execPath, [CLI, 'run', path.join(BUILD, 'fentry.wasm')], { encoding: 'utf8', timeout: 20_000 });
  t.equal(r.status, 1);
  if (ffi) {
    t.match(r.stderr, /the kernel refused to load program 'unlink_entry' \(fentry\/do_unlinkat\): Operation not permitted \(EPERM\)/, 'FFI path: the kernel refuses it at load');
    t.match(r.stderr, /hint: this kernel refuses BPF trampoline programs \(fentry\/fexit\/fmod_ret\/lsm\) with EPERM even for root/);
    return;
  }
  t.match(r.stderr, /program 'unlink_entry' \(fentry\/do_unlinkat\) needs attach mechanism fentry \(Linux 5\.5\+\): .*refused with EPERM/);
  t.match(r.stderr, /program 'unlink_exit' \(fexit\/do_unlinkat\) needs attach mechanism fexit/);
  t.match(r.stderr, /; fix: this kernel refuses BPF trampoline programs \(fentry\/fexit\/fmod_ret\/lsm\) with EPERM even for root: run on a kernel with BPF trampolines enabled/, 'auto mode gives the true fix, as --backend linux does');
  t.notMatch(r.stderr, /run on a kernel that supports it/);
  const forced = spawnSync(process.execPath, [CLI, 'run', '--backend', 'linux', path.join(BUILD, 'fentry.wasm')], { encoding: 'utf8', timeout: 20_000 });
  t.equal(forced.status, 1);
  t.match(forced.stderr, /hint: this kernel refuses BPF trampoline programs/);
});

t.test('no program, map or link is left in the kernel', async (t) => {
  t.same(await settledLeaks(before), { progs: [], maps: [], links: [] });
});
