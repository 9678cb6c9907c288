// The run's policy (src/policy/): what objects may load (program types, helpers, pinning) and where
// they may attach (cgroups, interfaces, uprobe binaries), from options and policy files; `check` shows
// what a module needs and writes the policy that allows exactly that. Real loads on the real kernel.
import t from 'tap';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { abiGuest, BUILD, buildBpf, ensureMounts, FIXTURES, kernelIds, kv, ROOT, runCli, settledLeaks } from './helpers.js';
import { buildPolicy, parsePolicySpec } from '../src/policy/policy.js';
import { allowCgroup, allowUprobe, PolicyDenied } from '../src/policy/enforce.js';

ensureMounts();
const before = kernelIds();
const wasm = abiGuest();
buildBpf(path.join(FIXTURES, 'probe.bpf.c'), path.join(BUILD, 'probe.bpf.o'));
buildBpf(path.join(FIXTURES, 'pin.bpf.c'), path.join(BUILD, 'pin.bpf.o'));
buildBpf(path.join(FIXTURES, 'pin.bpf.c'), path.join(BUILD, 'nopin.bpf.o'), ['-D__TARGET_ARCH_x86', '-DNO_PIN']);
const dir = ['--dir', `${BUILD}:/objs`];
const CG = '/sys/fs/cgroup/unified';
const MATRIX = path.join(ROOT, 'matrix', 'build');
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'wasm-bpf-policy-'));
t.teardown(() => fs.rmSync(tmp, { recursive: true, force: true }));

/** runs abi.wasm file OBJ PROG TARGET under the given policy options */
function attach(policy: string[], obj: string, prog: string, target = ''): { load: string | undefined; attach: string | undefined; stderr: string } {
  const r = runCli([...policy, ...dir, wasm, 'file', `/objs/${obj}`, prog, target]);
  const v = kv(r.stdout);
  return { load: v['load'], attach: v['attach'], stderr: r.stderr };
}

t.test('policy specs: bad files and values are usage errors that name the problem', async (t) => {
  t.throws(() => parsePolicySpec([], 'p.json'), /a policy is a JSON object/);
  t.throws(() => parsePolicySpec({ default: 'maybe' }, 'p.json'), /"default" must be "allow" or "deny"/);
  t.throws(() => parsePolicySpec({ helpers: 'bpf_map_lookup_elem' }, 'p.json'), /"helpers" must be a list/);
  t.throws(() => parsePolicySpec({ interface: ['lo'] }, 'p.json'), /unknown key "interface"/);
  t.throws(() => buildPolicy({ cgroups: ['relative/dir'] }), /give an absolute path/);
  t.throws(() => buildPolicy({ uprobes: ['/no/such/binary'] }), /does not exist/);
  t.throws(() => buildPolicy({ pin: '/etc/passwd' }), /is not a directory/);
  const deny = buildPolicy({ base: 'deny' });
  t.same([deny.programTypes, deny.helpers, deny.cgroups, deny.interfaces, deny.uprobes], [[], [], [], [], []], 'deny: every list empty');
  t.equal(deny.pin.mode, 'refuse');
  const allow = buildPolicy({});
  t.same([allow.programTypes, allow.helpers, allow.interfaces, allow.uprobes], [null, null, null, null], 'the default allows anything');
  t.equal(allow.pin.mode, 'private');

  const file = path.join(tmp, 'bad.json');
  fs.writeFileSync(file, '{"default": "deny", ');
  const r = runCli(['--policy', file, wasm]);
  t.equal(r.code, 2);
  t.match(r.stderr, /the policy file .*bad\.json is not JSON/);
  const pt = runCli(['--allow-prog-type', 'kprobes', wasm]);
  t.equal(pt.code, 2);
  t.match(pt.stderr, /program type 'kprobes' is not one the kernel knows/);
  const help = runCli(['run', '--help']);
  t.match(help.stdout, /The default is to allow every program\ntype and helper/, '--help states the default');
});

t.test('program types and helpers: the load gate refuses before the kernel sees the object', async (t) => {
  const ok = attach(['--default-deny', '--allow-prog-type', 'tracepoint', '--allow-helper', 'bpf_map_lookup_elem'], 'pin.bpf.o', 'on_getppid');
  t.equal(ok.load, '0', 'deny-by-default refuses the pinning object');
  t.match(ok.stderr, /map\(s\) wasm_bpf_policy_pinned ask to be pinned, which the policy does not allow/);

  const types = attach(['--allow-prog-type', 'xdp'], 'probe.bpf.o', 'on_getppid');
  t.equal(types.load, '0');
  t.match(types.stderr, /the policy refuses the object:\n  - program 'on_getppid' \(tp\/syscalls\/sys_enter_getppid\) is of type tracepoint, which the policy does not allow \(--allow-prog-type tracepoint\)/);
  t.match(types.stderr, /program 'on_tick' \(perf_event\) is of type perf_event/);
  t.notMatch(types.stderr, /program 'xdp_pass'/, 'allowed types are not listed');

  const helpers = attach(['--allow-helper', 'map_lookup_elem'], 'nopin.bpf.o', 'on_getppid');
  t.not(helpers.load, '0', `only the helpers it calls: loads (${helpers.stderr.trim()})`);
  t.equal(helpers.attach, '0');
  const missing = attach(['--allow-helper', 'bpf_ktime_get_ns'], 'nopin.bpf.o', 'on_getppid');
  t.equal(missing.load, '0');
  t.match(missing.stderr, /program 'on_getppid' .* calls bpf_map_lookup_elem, which the policy does not allow \(--allow-helper NAME\)/);
});

t.test('cgroups: outside the allowed ones is EACCES whether the path exists or not; missing inside is ENOENT', async (t) => {
  const sub = path.join(CG, `wasm-bpf-policy-${process.pid}`);
  fs.mkdirSync(sub, { recursive: true });
  t.teardown(() => fs.rmdirSync(sub));
  const allow = ['--allow-cgroup', sub];
  t.equal(attach(allow, 'probe.bpf.o', 'sockops_prog', sub).attach, '0', 'the allowed cgroup');
  for (const target of [CG, '/etc', '/no/such/dir', `${CG}/no-such-cgroup`]) {
    const r = attach(allow, 'probe.bpf.o', 'sockops_prog', target);
    t.equal(r.attach, '-13', `${target}: EACCES`);
    t.match(r.stderr, /cgroup path .* is outside the allowed cgroup directories/);
    t.match(r.stderr, /hint: allow it with --allow-cgroup PATH/);
  }
  const missing = attach(allow, 'probe.bpf.o', 'sockops_prog', `${sub}/missing`);
  t.equal(missing.attach, '-2', 'inside the allowed cgroup, a missing directory is ENOENT');
  const defaults = attach([], 'probe.bpf.o', 'sockops_prog', '/no/such/dir');
  t.equal(defaults.attach, '-13', 'the default (any cgroup2 mount) does not tell whether a host path exists either');
  t.equal(attach([], 'probe.bpf.o', 'sockops_prog', CG).attach, '0', 'the default allows the cgroup2 mount');
});

t.test('interfaces: XDP and socket filters attach only to allowed interfaces', async (t) => {
  const only = ['--allow-ifname', 'lo'];
  t.equal(attach(only, 'probe.bpf.o', 'xdp_pass', 'lo').attach, '0');
  t.equal(attach(only, 'probe.bpf.o', 'sock_prog', 'lo').attach, '0');
  const other = attach(['--allow-ifname', 'eth9'], 'probe.bpf.o', 'xdp_pass', 'lo');
  t.equal(other.attach, '-13');
  t.match(other.stderr, /interface 'lo' is not allowed by the policy \(allowed: eth9\)/);
  const every = attach(only, 'probe.bpf.o', 'sock_prog', '');
  t.equal(every.attach, '-13', 'a socket filter on every interface needs any interface allowed');
  t.match(every.stderr, /attaching to every interface is not allowed by the policy/);
});

t.test('uprobes: only allowed binaries, whether named by the guest or by the section', async (t) => {
  const target = path.join(MATRIX, 'uprobe-target');
  const guest = path.join(MATRIX, 'uprobe.wasm');
  const ok = runCli(['--allow-uprobe', target, guest, '-t', '1', target]);
  t.equal(ok.code, 0, ok.stderr);
  t.match(ok.stdout, /attached/);
  const dirOk = runCli(['--allow-uprobe', MATRIX, guest, '-t', '1', target]);
  t.equal(dirOk.code, 0, `a directory allows what is below it: ${dirOk.stderr}`);
  for (const named of [target, '/no/such/binary', '/etc/../no/such']) {
    const r = runCli(['--allow-uprobe', '/usr/bin/true', guest, '-t', '1', named]);
    t.not(r.code, 0, `${named}: refused`);
    t.match(r.stderr, /uprobe binary .* is outside the allowed uprobe binaries \(\/usr\/bin\/true\)/);
    t.notMatch(r.stderr, /does not exist/, 'a refusal does not tell whether the path exists');
  }
  const policy = buildPolicy({ uprobes: [path.dirname(target)] });
  t.throws(() => allowUprobe(policy, `${path.dirname(target)}/missing`, 'p'), /does not exist/, 'missing inside an allowed directory: ENOENT');
  t.throws(() => allowUprobe(policy, 'libc.so.6', 'p'), PolicyDenied, 'a library name is refused under a binary list (absolute paths only)');
  t.equal(allowUprobe(buildPolicy({}), 'libc.so.6', 'p'), 'libc.so.6', 'unrestricted: libbpf resolves names as before');
  const link = path.join(tmp, 'link-to-target');
  fs.symlinkSync(target, link);
  t.equal(allowUprobe(buildPolicy({ uprobes: [target] }), link, 'p'), target, 'a symlink is checked (and probed) as what it points to');
  t.throws(() => allowCgroup(buildPolicy({ cgroups: [CG] }), 'relative', 'p'), /must be an absolute path/);
});

t.test('check shows what a module needs and writes the policy that allows exactly that', async (t) => {
  const bootstrap = path.join(MATRIX, 'bootstrap.wasm');
  const c = runCli(['check', bootstrap]);
  t.equal(c.code, 0);
  t.match(c.stdout, /needs \(policy\):\n    program types: tracepoint\n    helpers: .*bpf_ringbuf_reserve/);
  const j = JSON.parse(runCli(['check', '--json', path.join(BUILD, 'pin.bpf.o')]).stdout) as { objects: Array<{ needs: { pinnedMaps: string[] } }> };
  t.same(j.objects[0]!.needs.pinnedMaps, ['wasm_bpf_policy_pinned']);
  const refused = runCli(['check', '--default-deny', bootstrap]);
  t.equal(refused.code, 1, 'check exits 1 when the policy given refuses an object');
  t.match(refused.stdout, /policy: refused:\n    - program 'handle_exec' .* is of type tracepoint/);

  const emitted = runCli(['check', '--emit-policy', bootstrap]);
  t.equal(emitted.code, 0);
  const file = path.join(tmp, 'bootstrap.policy.json');
  fs.writeFileSync(file, emitted.stdout);
  const spec = JSON.parse(emitted.stdout) as { default: string; programTypes: string[] };
  t.equal(spec.default, 'deny');
  t.same(spec.programTypes, ['tracepoint']);
  t.equal(runCli(['check', '--policy', file, bootstrap]).code, 0, 'the emitted policy allows the module');
  const run = runCli(['--policy', file, bootstrap, '-t', '1']);
  t.equal(run.code, 0, run.stderr);
  t.match(run.stdout, /attached/, 'and the module runs under it');
});

t.test('no program, map or link created by these tests is left in the kernel', async (t) => {
  t.same(await settledLeaks(before), { progs: [], maps: [], links: [] });
});
