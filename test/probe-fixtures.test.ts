// The prober against fixture trees of other systems (test/fixtures/probe-systems/*): the report each gives
// and the routing decisions made from it; bad input (malformed config.gz, os-release, BTF, uname.json).
import t from 'tap';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import zlib from 'node:zlib';
import { FIXTURES, runCli } from './helpers.js';
import { probe, requirementsMet, needsForProgram, needsForMap, type Report } from '../src/probe/index.js';
import { planObject, refusal, type Plan } from '../src/select/plan.js';

/** the selector's plan for an object of one program (and maps of these types) */
function plan(r: Report, section: string, mapTypes: number[] = [], choice: Parameters<typeof planObject>[2] = 'auto'): Plan {
  return planObject(r, { programs: [{ name: 'p', section, type: 0 }], maps: mapTypes.map((type, i) => ({ name: `m${i}`, type })) }, choice);
}
import { parseKconfig } from '../src/probe/kconfig.js';
import { parseOsRelease } from '../src/probe/osrelease.js';

const SYSTEMS = path.join(FIXTURES, 'probe-systems');
const UBUNTU = path.join(SYSTEMS, 'ubuntu-20.04-arm64');
const DEBIAN = path.join(SYSTEMS, 'debian-11-x86_64');
const WINDOWS = path.join(SYSTEMS, 'windows-11-x64');

/** a writable copy of a fixture tree */
function copyOf(t: Tap.Test, src: string): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'wasm-bpf-probe-fixture-'));
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
  fs.cpSync(src, dir, { recursive: true });
  return dir;
}

t.test('ubuntu 20.04 arm64, kernel 5.4, no BTF', async (t) => {
  const r = probe({ root: UBUNTU });
  t.equal(r.mode, 'fixture');
  t.equal(r.system.platform, 'linux');
  t.same([r.system.distro.id, r.system.distro.versionId, r.system.distro.codename], ['ubuntu', '20.04', 'focal']);
  t.same(r.system.arch, { machine: 'aarch64', normalized: 'arm64' });
  t.equal(r.system.kernel.release, '5.4.0-42-generic');
  t.equal(r.system.kernel.version, '5.4.44', 'from /proc/version_signature');
  t.equal(r.system.kernel.code, (5 << 16) + (4 << 8) + 44);

  t.equal(r.privileges.uid, 0);
  t.equal(r.privileges.capabilities.has.CAP_SYS_ADMIN, true);
  t.equal(r.privileges.capabilities.has.CAP_BPF, false, 'no CAP_BPF bit before 5.8');
  t.match(r.privileges.capabilities.note, /before Linux 5\.8/);
  t.equal(r.privileges.lockdown.mode, 'none');
  t.same(r.privileges.lsms.active, ['capability', 'lockdown', 'yama', 'apparmor']);

  t.equal(r.kconfig.status, 'found');
  t.equal(r.kconfig.path, '/boot/config-5.4.0-42-generic');
  t.equal(r.kconfig.options['CONFIG_KPROBES'], 'y');
  t.equal(r.kconfig.options['CONFIG_DEBUG_INFO_BTF'], 'n');
  t.equal(r.kconfig.options['CONFIG_FPROBE'], 'n', 'absent from the file: off');

  t.equal(r.btf.vmlinux.source, 'none');
  t.equal(r.btf.vmlinux.state, 'no');
  t.equal(r.btf.vmlinux.malformed, false);
  t.match(r.btf.vmlinux.reason, /CONFIG_DEBUG_INFO_BTF is not set/);
  t.equal(r.btf.vmlinux.searched[0]?.path, '/sys/kernel/btf/vmlinux');
  t.equal(r.btf.vmlinux.searched.length, 9, 'sysfs + libbpf\'s 7 disk paths + the BTFHub cache');
  t.match(r.btf.vmlinux.searched[8]?.path ?? '', /btfhub\/ubuntu\/20\.04\/arm64\/5\.4\.0-42-generic\.btf$/);

  const ring = r.mapTypes['ringbuf']!;
  t.equal(ring.state, 'no');
  t.equal(ring.since, '5.8');
  t.equal(ring.method, 'inferred');
  t.match(ring.reason, /needs Linux 5\.8\+ \(this is 5\.4\.44\)/);
  t.equal(r.mapTypes['perf_event_array']?.state, 'yes');
  t.equal(r.mapTypes['hash']?.method, 'inferred');
  t.match(r.mapTypes['hash']?.reason ?? '', /inferred from kernel version/);
  t.equal(r.progTypes['kprobe']?.state, 'yes');
  t.equal(r.progTypes['lsm']?.state, 'no');
  t.equal(r.attach.kprobe.state, 'yes', 'kprobe PMU present');
  t.equal(r.attach.fentry.state, 'no');
  t.equal(r.attach.fentry.since, '6.0', 'BPF trampolines reached arm64 in 6.0');
  t.equal(r.attach.tracepoint.state, 'yes');
  t.equal(r.attach.cgroup.state, 'yes');
  t.match(r.attach.cgroup.reason, /\/sys\/fs\/cgroup\/unified/);
  t.equal(r.features.bpf_link.state, 'no');
  t.equal(r.features.bounded_loops.state, 'yes');
  t.equal(r.features.isa_v4.state, 'no');
  t.equal(r.features.btf_vmlinux.state, 'no');
  t.equal(r.backends.linux.state, 'yes');

  // routing
  const ringNeed = requirementsMet(r, needsForMap(27));
  t.equal(ringNeed.ok, false);
  t.equal(ringNeed.missing[0]?.what, 'map type ringbuf');
  t.match(ringNeed.missing[0]?.reason ?? '', /needs Linux 5\.8\+/);
  t.same(ringNeed.missing[0]?.fallback, { kind: 'map', type: 'perf_event_array' }, 'a compat pass could use a perf buffer');
  t.ok(requirementsMet(r, [...needsForProgram('kprobe/do_unlinkat'), ...needsForMap(4)]).ok, 'kprobe + perf buffer: fine');
  const fentry = requirementsMet(r, needsForProgram('fentry/do_unlinkat'));
  t.notOk(fentry.ok);
  t.same(fentry.missing.map((m) => m.what), ['program type tracing', 'attach mechanism fentry', 'feature btf_vmlinux']);
  t.same(fentry.missing[1]?.fallback, { kind: 'attach', mech: 'kprobe' });
  t.ok(requirementsMet(r, [{ kind: 'kernel', min: '5.4' }]).ok);
  t.equal(requirementsMet(r, [{ kind: 'kernel', min: '5.8' }]).missing[0]?.fix, 'a Linux 5.8+ kernel');
  t.equal(plan(r, 'tp/sched/sched_process_exec').backend, 'linux');
  const d = plan(r, 'tp/sched/sched_process_exec', [27]);
  t.equal(d.backend, 'linux', 'a ring buffer on 5.4: the kernel, with the compat pass');
  t.same(d.compat, ['ringbuf->perf']);
  t.match(d.reasons.join('\n'), /compat ringbuf->perf: map 'm0' \(ringbuf\)/);
  const none = plan(r, 'lsm/file_open');
  t.equal(none.backend, null);
  t.match(none.reasons.join('\n'), /linux: \d+ need\(s\) missing/);
  t.match(none.reasons.join('\n'), /userspace: it cannot run lsm programs \('p'\); it attaches: uprobe, uprobe.s, uretprobe, uretprobe.s/);
  t.match(refusal(none), /^no backend on this host can run the object:\n  - program 'p' \(lsm\/file_open\) needs [^\n]*\n(.*\n)*  - the userspace backend: it cannot run lsm programs/);
});

t.test('debian 11 x86_64, kernel 5.10, BTF', async (t) => {
  const r = probe({ root: DEBIAN });
  t.same([r.system.distro.id, r.system.distro.versionId, r.system.distro.codename], ['debian', '11', 'bullseye']);
  t.equal(r.system.distro.reason, '/usr/lib/os-release', 'os-release fallback');
  t.equal(r.system.kernel.version, '5.10.197', 'from Debian\'s uname -v, not the release 5.10.0');
  t.equal(r.kconfig.path, '/proc/config.gz');
  t.equal(r.kconfig.options['CONFIG_BPF_LSM'], 'y');
  t.equal(r.btf.vmlinux.source, 'sysfs');
  t.equal(r.btf.vmlinux.state, 'yes');
  t.equal(r.btf.vmlinux.searched[0]?.status, 'raw');
  t.equal(r.btf.modules.state, 'yes');
  t.equal(r.mapTypes['ringbuf']?.state, 'yes');
  t.equal(r.mapTypes['ringbuf']?.method, 'inferred');
  t.equal(r.mapTypes['task_storage']?.state, 'no');
  t.equal(r.progTypes['sk_lookup']?.state, 'yes');
  t.equal(r.progTypes['syscall']?.state, 'no');
  // only a load can tell about trampolines: unknown, not guessed
  for (const m of ['fentry', 'fexit', 'tp_btf', 'struct_ops'] as const) {
    t.equal(r.attach[m].state, 'unknown', m);
    t.equal(r.attach[m].reason, 'not probed: fixture');
  }
  t.equal(r.attach.lsm.state, 'no', 'bpf is not an active LSM on this system');
  t.match(r.attach.lsm.reason, /bpf is not an active LSM/);
  t.match(r.attach.lsm.fix ?? '', /lsm=/);
  t.equal(r.attach.kprobe_multi.state, 'no');
  t.equal(r.features.ringbuf.state, 'yes');
  t.equal(r.features.perf_link.state, 'no');
  t.equal(r.features.bpf_cookie.state, 'no');
  t.equal(r.features.struct_ops_link.state, 'no', 'struct_ops links need 6.4');
  t.match(r.features.struct_ops_link.reason, /needs Linux 6\.4\+/);

  t.ok(requirementsMet(r, [...needsForProgram('tp/sched/sched_process_exec'), ...needsForMap(27)]).ok, 'ringbuf + tracepoint: fine');
  const fe = requirementsMet(r, needsForProgram('fentry/do_unlinkat'));
  t.notOk(fe.ok);
  t.same(fe.missing.map((m) => [m.what, m.state]), [['program type tracing', 'unknown'], ['attach mechanism fentry', 'unknown']]);
  t.match(fe.missing[0]?.fix ?? '', /probe/);
  t.equal(plan(r, 'xdp').backend, 'linux');
  const forced = plan(r, 'xdp', [], 'windows');
  t.equal(forced.backend, 'windows', '--backend is obeyed by the plan');
  t.match(forced.reasons.join('\n'), /--backend windows: chosen by the user/);
});

t.test('a windows host', async (t) => {
  const r = probe({ root: WINDOWS });
  t.equal(r.system.platform, 'win32');
  t.equal(r.system.distro.id, null);
  t.equal(r.system.kernel.code, 0);
  t.equal(r.kconfig.status, 'not-found');
  t.equal(r.btf.vmlinux.state, 'no');
  t.equal(r.backends.linux.state, 'no');
  t.match(r.backends.linux.reason, /needs Linux; this is win32/);
  t.equal(r.backends.windows.host.state, 'yes', 'eBPF for Windows is installed');
  t.match(r.backends.windows.host.reason, /ebpfapi\.dll/);
  t.equal(r.backends.windows.built, true);
  t.equal(r.backends.windows.state, 'yes', 'the windows backend is usable there (test/windows-route.test.ts plans and runs objects on it)');
  for (const f of Object.values(r.progTypes)) t.equal(f.state, 'no');
  t.equal(r.attach.xdp.state, 'no');
  const d = plan(r, 'xdp');
  t.equal(d.backend, null);
  t.match(d.reasons.join('\n'), /windows: eBPF for Windows: \/Windows\/System32\/ebpfapi\.dll; objects are planned for it by their translation/);
  t.notMatch(refusal(d), /the windows backend/, 'the shape alone does not refuse it: the selector plans Windows objects from their bytes');

  const noDll = copyOf(t, WINDOWS);
  fs.rmSync(path.join(noDll, 'Windows/System32/ebpfapi.dll'));
  const r2 = probe({ root: noDll });
  t.equal(r2.backends.windows.host.state, 'no');
  t.match(r2.backends.windows.host.reason, /not installed/);
});

t.test('an unprivileged user on debian 11: the linux backend is out', async (t) => {
  const dir = copyOf(t, DEBIAN);
  fs.writeFileSync(path.join(dir, 'proc/self/status'), 'Name:\tnode\nUid:\t1000\t1000\t1000\t1000\nCapEff:\t0000000000000000\n');
  const r = probe({ root: dir });
  t.equal(r.privileges.uid, 1000);
  t.equal(r.privileges.privileged, false);
  t.equal(r.features.bpf_syscall.state, 'no');
  t.match(r.features.bpf_syscall.reason, /unprivileged_bpf_disabled=2/);
  t.equal(r.backends.linux.state, 'no');
  const d = plan(r, 'xdp');
  t.equal(d.backend, null);
  t.match(d.reasons[0] ?? '', /^linux: .*unprivileged/);
  t.match(refusal(d), /^no backend on this host can run the object:\n  - the linux backend: .*unprivileged[^\n]*\n  - the userspace backend: it cannot run xdp programs/, 'the refusal says why, per backend (never an empty list)');
});

t.test('the userspace backend: arch, agent, ptrace (Yama), LD_PRELOAD, process_vm_readv', async (t) => {
  const agent = fs.mkdtempSync(path.join(os.tmpdir(), 'wasm-bpf-agent-'));
  t.teardown(() => fs.rmSync(agent, { recursive: true, force: true }));
  fs.writeFileSync(path.join(agent, 'libwbpf_agent.so'), '\x7fELF');

  // ubuntu arm64: Yama scope 1, root with every capability
  const u = probe({ root: UBUNTU, agentDir: agent }).userspace;
  t.same(u.attaches, ['uprobe', 'uprobe.s', 'uretprobe', 'uretprobe.s'], 'USERSPACE_ATTACH: uprobes and uretprobes');
  t.equal(u.arch.state, 'yes', 'arm64: the agent\'s hook supports it (native/agent/hook/arm64)');
  t.match(u.arch.reason, /^arm64: the agent's inline hook supports it \(native\/agent\/hook\/arm64\)$/);
  t.equal(u.agent.state, 'yes');
  t.same(u.agent.files, ['libwbpf_agent.so']);
  t.equal(u.ptrace.state, 'yes');
  t.equal(u.ptrace.yamaScope, 1);
  t.equal(u.ptrace.capSysPtrace, true);
  t.match(u.ptrace.reason, /^Yama ptrace_scope 1 \(restricted: only its descendants.*\), but this process has CAP_SYS_PTRACE/);
  t.equal(u.preload.state, 'yes');
  t.match(u.preload.reason, /setuid\/setgid or file-capability programs .* ignores LD_PRELOAD/);
  t.equal(u.processVmReadv.state, 'yes');
  t.equal(u.processVmReadv.since, '3.2');
  t.match(u.processVmReadv.reason, /CONFIG_CROSS_MEMORY_ATTACH=y/);

  // debian x86_64: no Yama; a config without the option
  const d = probe({ root: DEBIAN, agentDir: agent }).userspace;
  t.equal(d.arch.state, 'yes');
  t.equal(d.ptrace.state, 'yes');
  t.equal(d.ptrace.yamaScope, null);
  t.match(d.ptrace.reason, /^no Yama \(no \/proc\/sys\/kernel\/yama\/ptrace_scope\): a process may ptrace the dumpable processes of its own uid \(and CAP_SYS_PTRACE: any process\)/);
  t.equal(d.processVmReadv.state, 'unknown');
  t.match(d.processVmReadv.reason, /CONFIG_CROSS_MEMORY_ATTACH is not in \/proc\/config\.gz/);

  // an agent library built for another arch (an x86-64 one on this arm64 host) is refused, by its ELF header
  const x86 = fs.mkdtempSync(path.join(os.tmpdir(), 'wasm-bpf-agent-x86-'));
  t.teardown(() => fs.rmSync(x86, { recursive: true, force: true }));
  const hdr = Buffer.alloc(64);
  hdr.write('\x7fELF', 0, 'latin1');
  hdr.writeUInt16LE(62, 18); // EM_X86_64
  fs.writeFileSync(path.join(x86, 'libwbpf_agent.so'), hdr);
  const wrong = probe({ root: UBUNTU, agentDir: x86 }).userspace.agent;
  t.equal(wrong.state, 'no', 'an x86-64 agent on an arm64 host');
  t.match(wrong.reason, /libwbpf_agent\.so is built for x86_64, not for this arm64 host/);
  t.equal(probe({ root: DEBIAN, agentDir: x86 }).userspace.agent.state, 'yes', 'the same library on an x86_64 host');

  // the agent not built
  const none = probe({ root: DEBIAN, agentDir: path.join(agent, 'nothere') }).userspace.agent;
  t.equal(none.state, 'no');
  t.match(none.reason, /the agent is not built: .*nothere has no libwbpf_agent\.so/);
  t.equal(none.fix, `make -C ${agent}`);

  // join (--pid): the injector and the join build, ptrace, Linux 5.6+
  t.equal(d.join.state, 'no', 'the injector not built');
  t.match(d.join.reason, /the injector is not built: .* has no wbpf-inject, libwbpf_agent_join\.so/);
  for (const f of ['wbpf-inject', 'libwbpf_agent_join.so']) fs.writeFileSync(path.join(agent, f), '\x7fELF');
  const dj = probe({ root: DEBIAN, agentDir: agent }).userspace.join;
  t.same([dj.state, dj.since], ['yes', '5.6'], 'built, ptrace allowed, a 5.10 kernel');
  t.match(dj.reason, /wbpf-inject and libwbpf_agent_join\.so built; ptrace of this user's own processes allowed; pidfd_getfd/);

  // an ordinary user under each Yama scope
  const user = copyOf(t, UBUNTU);
  fs.writeFileSync(path.join(user, 'proc/self/status'), 'Name:\tnode\nUid:\t1000\t1000\t1000\t1000\nCapEff:\t0000000000000000\n');
  const scope = (v: string): ReturnType<typeof probe>['userspace']['ptrace'] => {
    fs.writeFileSync(path.join(user, 'proc/sys/kernel/yama/ptrace_scope'), `${v}\n`);
    return probe({ root: user, agentDir: agent }).userspace.ptrace;
  };
  const s0 = scope('0');
  t.same([s0.state, s0.yamaScope, s0.capSysPtrace], ['yes', 0, false]);
  t.match(s0.reason, /^Yama ptrace_scope 0 \(classic: a process may ptrace any dumpable process of its own uid\)$/);
  const s1 = scope('1');
  t.same([s1.state, s1.errno], ['no', 'EPERM']);
  const j1 = probe({ root: user, agentDir: agent }).userspace.join;
  t.equal(j1.state, 'no', 'a 5.4 kernel: no join');
  t.match(j1.reason, /^the agent gets its channel with pidfd_getfd, Linux 5\.6\+ \(this is 5\.4/);
  t.match(s1.reason, /joining a running process needs CAP_SYS_PTRACE, which this process lacks; commands launched under wasm-bpf \(LD_PRELOAD\) are not affected/);
  t.match(s1.fix, /CAP_SYS_PTRACE .*kernel\.yama\.ptrace_scope=0/);
  const s2 = scope('2');
  t.equal(s2.state, 'no');
  t.match(s2.reason, /^Yama ptrace_scope 2 \(admin-only: only with CAP_SYS_PTRACE\)/);
  const s3 = scope('3');
  t.equal(s3.state, 'no');
  t.match(s3.reason, /no attach: nobody may ptrace-attach, not even root/);
  t.match(s3.fix, /cannot be lowered until reboot/);
  const bad = scope('x');
  t.same([bad.state, bad.yamaScope], ['unknown', null]);
  t.match(bad.reason, /'x' is not a Yama scope/);
  // root is no exception at scope 3
  const root3 = copyOf(t, UBUNTU);
  fs.writeFileSync(path.join(root3, 'proc/sys/kernel/yama/ptrace_scope'), '3\n');
  t.equal(probe({ root: root3, agentDir: agent }).userspace.ptrace.state, 'no');

  // windows: none of it
  const w = probe({ root: WINDOWS, agentDir: agent }).userspace;
  t.same([w.ptrace.state, w.preload.state, w.processVmReadv.state], ['no', 'no', 'no']);

  // shown by `wasm-bpf probe`
  const human = runCli(['probe', '--root', UBUNTU]);
  t.equal(human.code, 0, human.stderr);
  t.match(human.stdout, /Userspace backend {2}attaching in live processes\n {2}attaches +uprobe, uprobe.s, uretprobe, uretprobe.s\n {2}arch +yes +arm64: the agent's inline hook supports it/);
  // this checkout's agent is the x86-64 host's: not one for the arm64 fixture
  t.match(human.stdout, /\n {2}agent +no +\S*libwbpf_agent\.so is built for x86_64, not for this arm64 host/);
  t.match(human.stdout, /\n {2}ptrace +yes +Yama ptrace_scope 1/);
  t.match(human.stdout, /\n {2}LD_PRELOAD +yes /);
  t.match(human.stdout, /\n {2}process_vm_readv yes +CONFIG_CROSS_MEMORY_ATTACH=y/);
  const json = runCli(['probe', '--root', UBUNTU, '--json']);
  const j = JSON.parse(json.stdout) as Report;
  t.equal(j.userspace.ptrace.yamaScope, 1);
  t.equal(j.userspace.arch.state, 'yes');
  t.equal(j.userspace.agent.state, 'no', 'the x86-64 agent, on the arm64 fixture');
});

t.test('bad input: config.gz', async (t) => {
  const dir = copyOf(t, DEBIAN);
  const gz = path.join(dir, 'proc/config.gz');

  fs.writeFileSync(gz, Buffer.from('this is not gzip at all'));
  let r = probe({ root: dir });
  t.equal(r.kconfig.status, 'malformed');
  t.equal(r.kconfig.state, 'unknown');
  t.match(r.kconfig.reason, /not valid gzip/);
  t.equal(r.kconfig.options['CONFIG_BPF'], null, 'options unknown, not "off"');
  t.equal(r.mapTypes['ringbuf']?.state, 'yes', 'decisions fall back to the kernel version');

  // a truncated gzip stream
  fs.writeFileSync(gz, zlib.gzipSync(Buffer.from('CONFIG_BPF=y\n'.repeat(100))).subarray(0, 30));
  r = probe({ root: dir });
  t.equal(r.kconfig.status, 'malformed');

  // valid gzip, no config inside
  fs.writeFileSync(gz, zlib.gzipSync(Buffer.from('hello\nworld\n')));
  r = probe({ root: dir });
  t.equal(r.kconfig.status, 'malformed');
  t.match(r.kconfig.reason, /no kernel config options/);

  // unreadable (a directory where the file should be)
  fs.rmSync(gz);
  fs.mkdirSync(gz);
  r = probe({ root: dir });
  t.equal(r.kconfig.status, 'unreadable');
  t.match(r.kconfig.reason, /EISDIR/);

  // absent everywhere: "not found", distinct from off
  fs.rmSync(gz, { recursive: true });
  r = probe({ root: dir });
  t.equal(r.kconfig.status, 'not-found');
  t.equal(r.kconfig.options['CONFIG_KPROBES'], null);
});

t.test('bad input: os-release', async (t) => {
  const dir = copyOf(t, DEBIAN);
  const f = path.join(dir, 'usr/lib/os-release');
  fs.writeFileSync(f, Buffer.from([0xff, 0xfe, 0x00, 0x41, 0x0a, 0x01, 0x02, 0x80]));
  let r = probe({ root: dir });
  t.equal(r.system.distro.state, 'unknown');
  t.equal(r.system.distro.id, null);
  t.match(r.system.distro.reason, /malformed/);
  t.equal(r.mapTypes['ringbuf']?.state, 'yes', 'the rest of the report stands');

  fs.writeFileSync(f, 'ID=$(rm -rf /)\nVERSION_ID="11"\n');
  r = probe({ root: dir });
  t.equal(r.system.distro.id, null, 'shell syntax is not a value');

  fs.rmSync(f);
  r = probe({ root: dir });
  t.equal(r.system.distro.state, 'unknown');
  t.match(r.system.distro.reason, /no os-release/);

  t.same(parseOsRelease('ID=ubuntu\nVERSION_ID="20.04"\nNAME=\'Ubuntu\'\n# comment\nbogus line\n'), { ID: 'ubuntu', VERSION_ID: '20.04', NAME: 'Ubuntu' });
});

t.test('bad input: BTF', async (t) => {
  const dir = copyOf(t, DEBIAN);
  const f = path.join(dir, 'sys/kernel/btf/vmlinux');
  fs.writeFileSync(f, Buffer.from('not BTF, just text that is long enough for a header\n'));
  let r = probe({ root: dir });
  t.equal(r.btf.vmlinux.state, 'no');
  t.equal(r.btf.vmlinux.malformed, true, 'BTF malformed');
  t.equal(r.btf.vmlinux.searched[0]?.status, 'malformed');
  t.match(r.btf.vmlinux.reason, /bad magic/);
  t.equal(r.features.btf_vmlinux.state, 'no');
  t.equal(r.attach.fentry.state, 'no', 'no usable BTF: no trampolines');
  t.match(r.attach.fentry.reason, /needs the kernel's own BTF/);

  // right magic, section lengths past the end
  const good = fs.readFileSync(path.join(DEBIAN, 'sys/kernel/btf/vmlinux'));
  fs.writeFileSync(f, good.subarray(0, 40));
  r = probe({ root: dir });
  t.equal(r.btf.vmlinux.malformed, true);
  t.match(r.btf.vmlinux.reason, /extends past the end/);

  // a good file on one of libbpf's disk paths is used when sysfs is bad
  fs.mkdirSync(path.join(dir, 'boot'), { recursive: true });
  fs.writeFileSync(path.join(dir, 'boot/vmlinux-5.10.0-26-amd64'), good);
  r = probe({ root: dir });
  t.equal(r.btf.vmlinux.source, 'disk');
  t.equal(r.btf.vmlinux.path, '/boot/vmlinux-5.10.0-26-amd64');

  // a custom path wins
  const custom = path.join(dir, 'custom.btf');
  fs.writeFileSync(custom, good);
  r = probe({ root: dir, btfPath: '/custom.btf' });
  t.equal(r.btf.vmlinux.source, 'custom');
  t.equal(r.btf.vmlinux.state, 'yes');
});

t.test('bad input: uname.json and --root on the CLI', async (t) => {
  const dir = copyOf(t, UBUNTU);
  fs.writeFileSync(path.join(dir, 'uname.json'), '{"sysname": 1}');
  t.throws(() => probe({ root: dir }), /uname\.json needs string fields/);

  const ok = runCli(['probe', '--root', UBUNTU, '--json']);
  t.equal(ok.code, 0, ok.stderr);
  const j = JSON.parse(ok.stdout) as Report;
  t.equal(j.mode, 'fixture');
  t.equal(j.mapTypes['ringbuf']?.state, 'no');
  const human = runCli(['probe', '--root', WINDOWS]);
  t.equal(human.code, 0);
  t.match(human.stdout, /windows +yes +eBPF for Windows: \/Windows\/System32\/ebpfapi\.dll/);
  const missing = runCli(['probe', '--root', '/nonexistent-dir']);
  t.equal(missing.code, 2);
  t.match(missing.stderr, /not a directory/);
  const noUname = runCli(['probe', '--root', os.tmpdir()]);
  t.equal(noUname.code, 2);
  t.match(noUname.stderr, /no uname\.json/);
});

t.test('kconfig parsing', async (t) => {
  const m = parseKconfig('CONFIG_A=y\nCONFIG_B=m\n# CONFIG_C is not set\nCONFIG_D="x,y"\nCONFIG_E=250\ngarbage\n');
  t.same(Object.fromEntries(m), { CONFIG_A: 'y', CONFIG_B: 'm', CONFIG_C: 'n', CONFIG_D: 'x,y', CONFIG_E: '250' });
});

t.test('program sections -> needs', async (t) => {
  t.same(needsForProgram('kprobe/do_unlinkat'), [{ kind: 'prog', type: 'kprobe' }, { kind: 'attach', mech: 'kprobe' }]);
  t.same(needsForProgram('uretprobe//lib/libc.so.6:malloc'), [{ kind: 'prog', type: 'kprobe' }, { kind: 'attach', mech: 'uprobe' }]);
  t.same(needsForProgram('tp/syscalls/sys_enter_openat', 5), [{ kind: 'prog', type: 5 }, { kind: 'attach', mech: 'tracepoint' }], 'type 5 is tracepoint: not repeated');
  t.same(needsForProgram('lsm/file_open'), [{ kind: 'prog', type: 'lsm' }, { kind: 'attach', mech: 'lsm' }, { kind: 'feature', name: 'btf_vmlinux' }]);
  t.same(needsForProgram('cgroup/connect4'), [{ kind: 'prog', type: 'cgroup_sock_addr' }, { kind: 'attach', mech: 'cgroup' }]);
  t.same(needsForProgram('cgroup/getsockopt'), [{ kind: 'prog', type: 'cgroup_sockopt' }, { kind: 'attach', mech: 'cgroup' }]);
  t.same(needsForProgram('sockops'), [{ kind: 'prog', type: 'sock_ops' }, { kind: 'attach', mech: 'cgroup' }]);
  t.same(needsForProgram('.text'), []);
});
