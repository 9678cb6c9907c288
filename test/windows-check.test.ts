// `wasm-bpf check --backend windows` on Linux: the plan for eBPF for Windows of each matrix app (what would
// load, which translation, what is refused and why), as text and as --json, and through the library API.
import t from 'tap';
import path from 'node:path';
import { ROOT, runCli } from './helpers.js';
import { check } from '../src/index.js';

const MATRIX = path.join(ROOT, 'matrix', 'build');

t.test('xdp: accepted, its program, map and helper in Windows numbers', async (t) => {
  const r = runCli(['check', '--backend', 'windows', path.join(MATRIX, 'xdp.wasm')]);
  t.equal(r.code, 0, r.stderr);
  t.match(r.stdout, /plan: windows backend: the object translates for eBPF for Windows \(tables of microsoft\/ebpf-for-windows@64be483d; nothing loaded\)/);
  t.match(r.stdout, /program 'xdp_count' \(xdp\) -> section 'xdp', program type 1 \(xdp\), attach type 1/);
  t.match(r.stdout, /map 'stats' array 2 -> array 2 \(same number\)/);
  t.match(r.stdout, /helper bpf_map_lookup_elem 1 -> 1 \(same id\), 1 call\(s\)/);
  t.match(r.stdout, /program 'xdp_count' \(xdp\): context xdp_md loads data_end 4 -> 8 \(pointer\), data 0 -> 0 \(pointer\); XDP actions 2 -> 1/);
  t.notMatch(r.stdout, /caveat:/, 'nothing left different');
});

t.test('sockops: accepted through the ring buffer step', async (t) => {
  const r = runCli(['check', '--backend', 'windows', path.join(MATRIX, 'sockops.wasm')]);
  t.equal(r.code, 0, r.stderr);
  t.match(r.stdout, /program 'sockops_handler' \(sockops\) -> section 'sockops', program type 4 \(sock_ops\), attach type 7/);
  t.match(r.stdout, /map 'rb' ringbuf 27 -> perf_event_array 14 \(rewritten in the \.maps BTF\)/);
  t.match(r.stdout, /helper bpf_perf_event_output 25 -> 32, 1 call\(s\)/);
  t.match(r.stdout, /ringbuf records: sockops_handler: bpf_ringbuf_reserve\(40 bytes\) -> per-CPU scratch map lookup/);
  t.match(r.stdout, /context bpf_sock_ops loads op 0 -> 0, family 20 -> 4, local_port 68 -> 24, remote_port 64 -> 44/);
  t.match(r.stdout, /caveat: program 'sockops_handler' \(sockops\): the op numbers differ/);
});

t.test('tracing apps: refused, each program and helper with its reason', async (t) => {
  const r = runCli(['check', '--backend', 'windows', path.join(MATRIX, 'bootstrap.wasm')]);
  t.equal(r.code, 1, 'exit 1: the object cannot run there');
  t.match(r.stdout, /plan: refused: eBPF for Windows cannot run the object/);
  t.match(r.stdout, /- program 'handle_exec' \(tp\/sched\/sched_process_exec\): eBPF for Windows has no tracepoints; process creation and exit are the "process" program type of ntosebpfext.*; Windows offers: xdp, bind, cgroup\/connect4/);
  t.match(r.stdout, /- helper bpf_probe_read_kernel called by 'handle_exec': eBPF for Windows has no bpf_probe_read_kernel \(Windows programs cannot read arbitrary kernel memory\)\n/);
  const k = runCli(['check', '--backend', 'windows', path.join(MATRIX, 'kprobe.wasm')]);
  t.equal(k.code, 1);
  t.match(k.stdout, /- program 'do_unlinkat' \(kprobe\/do_unlinkat\): eBPF for Windows has no kernel function probes/);
  const u = runCli(['check', '--backend', 'windows', path.join(MATRIX, 'uprobe.wasm')]);
  t.match(u.stdout, /- program 'uprobe_add' \(uprobe\): eBPF for Windows has no user-space probes/);
});

t.test('--json: the plan and the translation as data', async (t) => {
  const r = runCli(['check', '--backend', 'windows', '--json', path.join(MATRIX, 'sockops.wasm')]);
  t.equal(r.code, 0, r.stderr);
  const j = JSON.parse(r.stdout) as { runnable: boolean; objects: Array<{ plan: { backend: string | null; reasons: string[] }; windows: { accepted: boolean; programs: unknown[]; maps: unknown[]; helpers: unknown[]; refusals: unknown[]; caveats: string[] } }> };
  t.equal(j.runnable, true);
  const o = j.objects[0]!;
  t.equal(o.plan.backend, 'windows');
  t.match(o.plan.reasons.join('\n'), /this host is linux: the plan says what would load on a Windows host/);
  t.equal(o.windows.accepted, true);
  t.same(o.windows.programs, [{ name: 'sockops_handler', section: 'sockops', windowsSection: 'sockops', progType: 4, progTypeName: 'sock_ops', attachType: 7 }]);
  t.same(o.windows.maps, [{ name: 'rb', linuxType: 27, linuxTypeName: 'ringbuf', windowsType: 14, windowsTypeName: 'perf_event_array', via: 'btf' }]);
  t.same(o.windows.helpers, [{ name: 'bpf_map_lookup_elem', linux: 1, windows: 1, calls: 1 }, { name: 'bpf_perf_event_output', linux: 25, windows: 32, calls: 1 }]);
  t.same(o.windows.refusals, []);
  const b = runCli(['check', '--backend', 'windows', '--json', path.join(MATRIX, 'lsm.wasm')]);
  t.equal(b.code, 1);
  const bj = JSON.parse(b.stdout) as { runnable: boolean; objects: Array<{ plan: { backend: string | null; unavailable: Array<{ backend: string; reason: string }> }; windows: { accepted: boolean; refusals: Array<{ subject: string; reason: string }> } }> };
  t.equal(bj.runnable, false);
  t.equal(bj.objects[0]!.plan.backend, null);
  t.equal(bj.objects[0]!.windows.accepted, false);
  t.equal(bj.objects[0]!.windows.refusals[0]!.subject, "program 'lsm_bprm_check' (lsm/bprm_check_security)");
  t.match(bj.objects[0]!.plan.unavailable[0]!.reason, /no LSM hooks/);
});

t.test('the library API: check(file, { backend: "windows" })', async (t) => {
  const r = await check(path.join(MATRIX, 'xdp.wasm'), { backend: 'windows' });
  t.equal(r.runnable, true);
  t.equal(r.objects[0]!.windows?.programs[0]?.progType, 1);
  const auto = await check(path.join(MATRIX, 'xdp.wasm'));
  t.equal(auto.objects[0]!.windows, undefined, 'only with --backend windows');
});
