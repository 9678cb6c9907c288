// The prober on this host (live probes through the native addon): the facts docs/notes/platform.md lists,
// the JSON schema, the per-boot cache, the CLI (--help, NO_COLOR, a run as an unprivileged user) and
// that no probe leaves a kernel object behind. Needs root.
import { planObject } from '../src/select/plan.js';
import t from 'tap';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { spawnSync } from 'node:child_process';
import { CLI, kernelIds, settledLeaks, runCli } from './helpers.js';
import {
  cachedProbeResult,
  countingProbes,
  hostSystem,
  probe,
  requirementsMet,
  needsForProgram,
  SCHEMA_VERSION,
  type Report,
  type Feature,
} from '../src/probe/index.js';
import { nativeProbes } from '../src/probe/live.js';
import { scanBtf } from '../src/probe/btf.js';
import { BTF_QUERIES } from '../src/probe/run.js';
import { formatReport, useColor } from '../src/probe/format.js';
import { hostReport, readCachedReport } from '../src/probe/fast.js';
import { parseBtf } from '../src/object/btf.js';

// CLI runs below must not touch the host's real cache (/var/cache/wasm-bpf)
const CACHE_DIR = fs.mkdtempSync(path.join(os.tmpdir(), 'wasm-bpf-probe-test-cache-'));
process.env['WASM_BPF_CACHE_DIR'] = CACHE_DIR;
t.teardown(() => fs.rmSync(CACHE_DIR, { recursive: true, force: true }));

const native = nativeProbes();
if (!('live' in native)) throw new Error(`native probes unavailable: ${native.error}`);
const live = native.live;

// one live report shared by the fact checks (probing is ~100 ms)
const report: Report = probe({ system: hostSystem(live) });

t.test('system section', async (t) => {
  const s = report.system;
  t.equal(report.schemaVersion, SCHEMA_VERSION);
  t.equal(report.mode, 'live');
  t.equal(s.platform, 'linux');
  t.equal(s.distro.id, 'debian');
  t.equal(s.distro.versionId, '12');
  t.equal(s.distro.codename, 'bookworm');
  t.equal(s.arch.machine, 'x86_64');
  t.equal(s.arch.normalized, 'x86_64');
  t.equal(s.kernel.release, os.release());
  const [maj, min] = os.release().split('.').map(Number);
  t.equal(s.kernel.code >> 16, maj);
  t.equal((s.kernel.code >> 8) & 0xff, min);
  t.equal(s.bootId, fs.readFileSync('/proc/sys/kernel/random/boot_id', 'utf8').trim());
});

t.test('privileges section', async (t) => {
  const p = report.privileges;
  t.equal(p.uid, 0);
  t.equal(p.privileged, true);
  t.equal(p.fullyPrivileged, true);
  t.same(p.capabilities.has, { CAP_BPF: true, CAP_PERFMON: true, CAP_SYS_ADMIN: true, CAP_NET_ADMIN: true });
  t.equal(p.unprivilegedBpfDisabled.value, Number(fs.readFileSync('/proc/sys/kernel/unprivileged_bpf_disabled', 'utf8')));
  t.equal(p.jit.enable.value, 1);
  t.ok(p.lsms.active?.includes('bpf'), `bpf is an active LSM (${p.lsms.active?.join(',')})`);
  t.ok(['securityfs', 'syscall'].includes(p.lsms.source ?? ''), 'LSM list read, not guessed');
  t.ok(p.lockdown.mode === 'none' || p.lockdown.mode === 'integrity' || p.lockdown.mode === 'confidentiality');
});

t.test('kconfig section', async (t) => {
  const k = report.kconfig;
  t.equal(k.status, 'found');
  t.ok(k.path === '/proc/config.gz' || k.path === `/boot/config-${os.release()}`);
  t.equal(k.options['CONFIG_BPF_SYSCALL'], 'y');
  t.equal(k.options['CONFIG_KPROBES'], 'n', 'off, not "not found"');
  t.equal(k.options['CONFIG_UPROBES'], 'y');
  for (const o of ['CONFIG_FPROBE', 'CONFIG_DEBUG_INFO_BTF_MODULES', 'CONFIG_FUNCTION_TRACER', 'CONFIG_DYNAMIC_FTRACE_WITH_DIRECT_CALLS', 'CONFIG_HZ']) {
    t.ok(o in k.options, `${o} reported`);
  }
});

t.test('the facts of this host', async (t) => {
  t.equal(report.btf.vmlinux.source, 'sysfs', 'BTF from sysfs');
  t.equal(report.btf.vmlinux.path, '/sys/kernel/btf/vmlinux');
  t.equal(report.btf.vmlinux.state, 'yes');

  const a = report.attach;
  t.equal(a.kprobe.state, 'no', 'kprobe attach unavailable');
  t.match(a.kprobe.reason, /CONFIG_KPROBES is not set/);
  for (const m of ['fentry', 'fexit', 'lsm'] as const) {
    t.equal(a[m].state, 'no', `${m} unavailable`);
    t.equal(a[m].errno, 'EPERM', `${m}: load refused with EPERM`);
    t.equal(a[m].method, 'probe', `${m}: decided by a real load`);
  }
  t.match(a.lsm.reason, /bpf is an active LSM/);
  for (const m of ['uprobe', 'tracepoint', 'xdp', 'cgroup', 'tc', 'perf_event', 'raw_tracepoint', 'tp_btf', 'socket_filter'] as const) {
    t.equal(a[m].state, 'yes', `${m} available (${a[m].reason})`);
  }
  t.equal(a.kprobe_multi.state, 'no', 'kprobe.multi: CONFIG_FPROBE off');
  t.equal(report.features.ringbuf.state, 'yes');
  t.equal(report.mapTypes['ringbuf']?.state, 'yes');
  t.equal(report.mapTypes['ringbuf']?.since, '5.8');
  for (const f of ['bpf_syscall', 'bpf_link', 'bounded_loops', 'isa_v2', 'isa_v3', 'isa_v4', 'bpf_cookie', 'btf_vmlinux'] as const) {
    t.equal(report.features[f].state, 'yes', `${f} (${report.features[f].reason})`);
  }
  t.equal(report.progTypes['socket_filter']?.state, 'yes');
  t.equal(report.progTypes['lirc_mode2']?.state, 'no', 'lirc_mode2: CONFIG_BPF_LIRC_MODE2 off');
  t.equal(report.progTypes['lsm']?.state, 'no');
  t.equal(report.progTypes['tracing']?.state, 'yes', 'tracing programs load as tp_btf');
  t.equal(report.backends.linux.state, 'yes');
  t.equal(report.backends.userspace.state, 'yes', 'the userspace backend is built (BUILT_BACKENDS tells the truth)');
  t.equal(report.backends.userspace.built, true);
  t.match(report.backends.userspace.reason, /attaches uprobe, uprobe.s, uretprobe, uretprobe.s/);
  t.equal(report.backends.windows.state, 'no');
});

t.test('routing on this host', async (t) => {
  t.ok(requirementsMet(report, needsForProgram('tp/sched/sched_process_exec')).ok);
  t.ok(requirementsMet(report, [{ kind: 'map', type: 27 }, ...needsForProgram('uprobe//bin/bash:readline')]).ok);
  const fe = requirementsMet(report, needsForProgram('fentry/do_unlinkat'));
  t.notOk(fe.ok);
  t.ok(fe.missing.some((m) => m.need.kind === 'attach' && m.state === 'no' && /EPERM/.test(m.reason)));
  const kp = requirementsMet(report, needsForProgram('kprobe/do_unlinkat'));
  t.notOk(kp.ok, 'kprobe attach is missing here');
  const one = (section: string): ReturnType<typeof planObject> => planObject(report, { programs: [{ name: 'p', section, type: 0 }], maps: [] });
  t.equal(one('xdp').backend, 'linux');
  const none = one('lsm/file_open');
  t.equal(none.backend, null);
  t.match(none.reasons.join('\n'), /linux: \d+ need\(s\) missing/);
});

t.test('every check is tri-state with a reason and a since', async (t) => {
  const sections: Array<[string, Record<string, Feature>]> = [
    ['progTypes', report.progTypes],
    ['mapTypes', report.mapTypes],
    ['attach', report.attach],
    ['features', report.features],
  ];
  for (const [name, sec] of sections) {
    for (const [k, f] of Object.entries(sec)) {
      t.ok(['yes', 'no', 'unknown'].includes(f.state), `${name}.${k}.state`);
      t.type(f.reason, 'string');
      t.ok(f.reason.length > 0, `${name}.${k} has a reason`);
      t.match(f.since, /^\d+\.\d+$/, `${name}.${k}.since`);
      t.ok(['probe', 'file', 'inferred', 'none'].includes(f.method), `${name}.${k}.method`);
    }
  }
});

t.test('the BTF name scan finds what the full BTF parser finds', async (t) => {
  const bytes = fs.readFileSync('/sys/kernel/btf/vmlinux');
  const hits = scanBtf(bytes, BTF_QUERIES);
  const btf = parseBtf(bytes);
  for (const q of BTF_QUERIES) {
    const want = btf.findByName(q.name, q.kind);
    const got = hits.get(`${q.kind}:${q.name}`);
    if (want.length === 0) t.equal(got, undefined, `${q.kind} ${q.name} absent`);
    else t.equal(got?.id, want[0], `${q.kind} ${q.name}`);
  }
  const tcp = hits.get('STRUCT:tcp_congestion_ops');
  t.ok(tcp?.members?.includes('ssthresh'));
});

t.test('JSON from the CLI', async (t) => {
  const r = runCli(['probe', '--json', '--no-cache']);
  t.equal(r.code, 0, r.stderr);
  const j = JSON.parse(r.stdout) as Report;
  t.equal(j.schemaVersion, 1);
  for (const k of ['generatedAt', 'durationMs', 'mode', 'root', 'full', 'system', 'privileges', 'kconfig', 'btf', 'progTypes', 'mapTypes', 'attach', 'features', 'backends']) {
    t.ok(k in j, `top-level ${k}`);
  }
  t.notOk('helpers' in j, 'helpers only with --full');
  t.equal(j.attach.kprobe.state, 'no');
  t.equal(j.btf.vmlinux.source, 'sysfs');
});

t.test('--full probes helpers per program type', async (t) => {
  const full = probe({ system: hostSystem(live), full: true });
  t.ok(full.helpers);
  const h = full.helpers!;
  t.equal(h['xdp']?.['xdp_adjust_head']?.state, 'yes');
  t.equal(h['socket_filter']?.['xdp_adjust_head']?.state, 'no', 'an XDP helper is refused to socket filters');
  t.equal(h['tracepoint']?.['get_attach_cookie']?.state, 'yes');
  t.equal(h['lirc_mode2']?.['map_lookup_elem']?.state, 'unknown', 'no helpers for a type this kernel lacks');
  t.equal(h['tracing']?.['get_current_pid_tgid']?.state, 'yes', 'tracing helpers probed through tp_btf');
});

t.test('human output: sections, reasons, help, colours', async (t) => {
  const r = runCli(['probe', '--no-cache'], { env: { ...process.env, NO_COLOR: '1' } });
  t.equal(r.code, 0, r.stderr);
  for (const h of ['System', 'Privileges', 'Kernel config', 'BTF', 'Program types', 'Map types', 'Attach mechanisms', 'Features', 'Backends']) {
    t.match(r.stdout, new RegExp(`^${h}`, 'm'), `section ${h}`);
  }
  t.match(r.stdout, /^ {2}kprobe +no +CONFIG_KPROBES is not set/m, 'a "no" line shows its reason');
  t.match(r.stdout, /^ {2}fentry +no +.*EPERM/m);
  t.notMatch(r.stdout, /\x1b\[/, 'no escape codes when not a TTY');

  t.equal(useColor({ isTTY: true }, {}), true);
  t.equal(useColor({ isTTY: true }, { NO_COLOR: '1' }), false);
  t.equal(useColor({ isTTY: true }, { NO_COLOR: '' }), true, 'an empty NO_COLOR does not disable colour');
  t.equal(useColor({ isTTY: false }, {}), false);
  t.match(formatReport(report, { color: true }), /\x1b\[32myes/);
  t.notMatch(formatReport(report, { color: false }), /\x1b\[/);

  // on a real terminal: colour unless NO_COLOR
  const script = spawnSync('script', ['-qec', `${process.execPath} ${CLI} probe`, '/dev/null'], { encoding: 'utf8', env: { ...process.env, NO_COLOR: '' } });
  if (script.error) t.skip('script(1) unavailable');
  else {
    t.match(script.stdout, /\x1b\[32m/, 'colours on a TTY');
    const plain = spawnSync('script', ['-qec', `${process.execPath} ${CLI} probe`, '/dev/null'], { encoding: 'utf8', env: { ...process.env, NO_COLOR: '1' } });
    t.notMatch(plain.stdout, /\x1b\[3\dm/, 'NO_COLOR respected on a TTY');
  }

  const help = runCli(['probe', '--help']);
  t.equal(help.code, 0);
  t.match(help.stdout, /Usage: wasm-bpf probe/);
  t.match(help.stdout, /--json/);
  t.match(help.stdout, /--root DIR/);
  const bad = runCli(['probe', '--bogus']);
  t.equal(bad.code, 2);
  t.match(bad.stderr, /unexpected argument '--bogus'/);
  t.match(runCli(['--help']).stdout, /wasm-bpf probe/, 'listed in the main usage');
});

t.test('the per-boot cache: a valid cache runs no probe; a changed key re-probes', async (t) => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'wasm-bpf-probe-cache-'));
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
  const counted = countingProbes(live);
  const sys = hostSystem(counted.live);

  const first = cachedProbeResult({ system: sys, cacheDir: dir });
  t.equal(first.hit, false);
  t.ok(first.file && fs.existsSync(first.file), 'cache file written');
  const afterFirst = counted.calls();
  t.ok(afterFirst > 20, `the first call probed (${afterFirst} live probes)`);

  const second = cachedProbeResult({ system: sys, cacheDir: dir });
  t.equal(second.hit, true, 'second call served from the cache');
  t.equal(counted.calls(), afterFirst, 'no live probe ran');
  t.same(second.report, first.report);

  // the runtime's light entry reads the same cache
  t.same(readCachedReport({ cacheDir: dir }), first.report, 'src/probe/fast.ts finds the cached report');
  t.same(await hostReport({ cacheDir: dir }), first.report);

  // another boot (same file, different boot id) -> stale
  const file = first.file!;
  const onDisk = JSON.parse(fs.readFileSync(file, 'utf8')) as { key: { bootId: string }; report: Report };
  onDisk.key.bootId = '00000000-0000-0000-0000-000000000000';
  fs.writeFileSync(file, JSON.stringify(onDisk));
  const third = cachedProbeResult({ system: sys, cacheDir: dir });
  t.equal(third.hit, false, 'a different boot id invalidates the cache');
  t.ok(counted.calls() > afterFirst, 'probed again');
  t.equal(JSON.parse(fs.readFileSync(file, 'utf8')).key.bootId, report.system.bootId, 'cache rewritten with this boot id');

  // a torn / foreign file -> probe again, no crash
  fs.writeFileSync(file, '{"key": {');
  const before = counted.calls();
  const fourth = cachedProbeResult({ system: sys, cacheDir: dir });
  t.equal(fourth.hit, false);
  t.ok(counted.calls() > before);

  // --no-cache bypasses a valid cache
  const n0 = counted.calls();
  const fifth = cachedProbeResult({ system: sys, cacheDir: dir, noCache: true });
  t.equal(fifth.hit, false);
  t.ok(counted.calls() > n0);

  // --full is cached separately
  const full = cachedProbeResult({ system: sys, cacheDir: dir, full: true });
  t.equal(full.hit, false);
  t.not(full.file, first.file);
});

t.test('the CLI uses the cache', async (t) => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'wasm-bpf-probe-cli-cache-'));
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
  const env = { ...process.env, WASM_BPF_CACHE_DIR: dir };
  const a = runCli(['probe', '--json'], { env });
  const b = runCli(['probe'], { env });
  t.equal(a.code, 0, a.stderr);
  t.equal(b.code, 0, b.stderr);
  t.notMatch(a.stdout, /cached/);
  t.match(b.stdout, /cached answer, probed \d{4}-\d\d-\d\dT\S+ in [\d.]+ ms; --no-cache to probe again/, 'the second run says it is cached, and when it was made');
  const ns = /\[(\d+)\]/.exec(fs.readlinkSync('/proc/self/ns/mnt'))![1];
  t.ok(fs.existsSync(path.join(dir, `probe-0-mnt${ns}.json`)), 'written under $WASM_BPF_CACHE_DIR, named by uid and mount namespace');
});

t.test('the cache is keyed by mount namespace and the BTF file: a namespace never reads or overwrites another\'s answer', async (t) => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'wasm-bpf-probe-ns-cache-'));
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
  const env = { ...process.env, WASM_BPF_CACHE_DIR: dir };
  const vmlinux = (stdout: string): string => (JSON.parse(stdout) as Report).btf.vmlinux.state;
  const host = runCli(['probe', '--json'], { env });
  t.equal(host.code, 0, host.stderr);
  t.equal(vmlinux(host.stdout), 'yes', 'the host has vmlinux BTF');
  // a mount namespace whose /sys/kernel/btf/vmlinux is an empty file
  const empty = path.join(dir, 'empty-vmlinux');
  fs.writeFileSync(empty, '');
  const inside = (extra: string[]): ReturnType<typeof spawnSync> =>
    spawnSync('unshare', ['-m', '--propagation', 'private', 'sh', '-c', `mount --bind ${empty} /sys/kernel/btf/vmlinux && exec "$0" "$@"`, process.execPath, CLI, 'probe', '--json', ...extra], { env, encoding: 'utf8', timeout: 60_000 });
  const a = inside([]);
  t.equal(a.status, 0, String(a.stderr));
  t.equal(vmlinux(String(a.stdout)), 'no', 'inside: its own answer (empty vmlinux), not the host\'s cached one');
  const b = inside(['--no-cache']);
  t.equal(vmlinux(String(b.stdout)), 'no', 'inside, --no-cache: the same');
  const again = runCli(['probe', '--json'], { env });
  t.equal(vmlinux(again.stdout), 'yes', 'outside again: the host\'s answer, not overwritten by the namespace\'s');
  const files = fs.readdirSync(dir).filter((f) => /^probe-0-mnt\d+\.json$/.test(f));
  t.equal(files.length, 2, `one cache file per mount namespace (${files.join(', ')})`);
});

t.test('no kernel object is left behind', async (t) => {
  const before = kernelIds();
  probe({ system: hostSystem(live) });
  probe({ system: hostSystem(live), full: true });
  const r = runCli(['probe', '--json', '--no-cache', '--full']);
  t.equal(r.code, 0);
  const leaks = await settledLeaks(before);
  t.same(leaks, { progs: [], maps: [], links: [] }, 'every probe fd closed');
});

t.test('as an unprivileged user (uid 65534): reports, does not crash', async (t) => {
  const tmpBefore = fs.readdirSync(os.tmpdir()).filter((f) => f.startsWith('wasm-bpf-probe-')).length;
  const r = spawnSync('env', ['-u', 'NODE_OPTIONS', 'setpriv', '--reuid=65534', '--regid=65534', '--clear-groups', process.execPath, CLI, 'probe', '--json', '--no-cache'], {
    encoding: 'utf8',
    env: { ...process.env, HOME: '/nonexistent', XDG_CACHE_HOME: '' },
    timeout: 60_000,
  });
  if (r.error) {
    t.skip(`setpriv: ${r.error.message}`);
    return;
  }
  t.equal(r.status, 0, r.stderr);
  const j = JSON.parse(r.stdout) as Report;
  t.equal(j.privileges.uid, 65534);
  t.equal(j.privileges.privileged, false);
  t.equal(j.privileges.capabilities.has.CAP_BPF, false);
  t.equal(j.system.distro.id, 'debian');
  t.equal(j.btf.vmlinux.source, 'sysfs');
  for (const [name, f] of Object.entries(j.progTypes)) {
    t.ok(f.state === 'unknown' || f.state === 'no', `${name}: ${f.state}`);
  }
  t.equal(j.progTypes['socket_filter']?.errno, 'EPERM');
  t.match(j.progTypes['socket_filter']?.reason ?? '', /not permitted for uid 65534/);
  t.equal(j.features.bpf_syscall.state, 'no', 'this process cannot use bpf()');
  t.equal(j.backends.linux.state, 'no');
  t.match(j.backends.linux.fix ?? '', /root|CAP_BPF/);
  t.equal(j.attach.kprobe.state, 'no', 'facts that need no privilege still decided');
  const tmpAfter = fs.readdirSync(os.tmpdir()).filter((f) => f.startsWith('wasm-bpf-probe-')).length;
  t.equal(tmpAfter, tmpBefore, 'the uprobe target file is removed');
});
