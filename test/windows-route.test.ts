// Issue 19: objects routed to the Windows backend.
// 1. the selector fed the recorded Windows 11 fixture's report (test/fixtures/probe-systems/windows-11-x64):
//    the matrix apps planned for eBPF for Windows (xdp, sockops accepted, with the translation as the plan's
//    compat step; the tracing apps refused per program with the reasons), auto routing there on a Windows
//    report; what the host's install refuses (native-only: no eBPF service).
// 2. a run: the matrix's sockops.wasm in-process, on the selector createBackend makes for win32 (platform and
//    binding injected: the recording fake of backends/windows/ebpfapi.ts), WASI and the wasm_bpf host as the
//    guest's thread sets them up: load, attach, a buffer poll delivering a record the app prints, close;
//    every binding call checked in order.
// 3. on Linux `run --backend windows` refuses naming why; `check --backend windows` still shows the plan.
import t from 'tap';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { FIXTURES, ROOT, runCli } from './helpers.js';
import { probe } from '../src/probe/index.js';
import { loadObject } from '../src/object/loader.js';
import { planWindows } from '../src/select/windows.js';
import { createBackend, Selector } from '../src/select/backend.js';
import { refusal } from '../src/select/plan.js';
import { WasmBpfHost } from '../src/abi/host.js';
import { GuestWasi } from '../src/runtime/wasi.js';
import { StopSignal } from '../src/runtime/stop.js';
import { readModuleShape } from '../src/wasm/imports.js';
import { Interrupted } from '../src/errors.js';
import { DEFAULT_POLICY } from '../src/policy/policy.js';
import { WIN_ATTACH_TYPE, WIN_MAP_TYPE } from '../src/kernel/ebpf-windows.js';
import type { Handle } from '../backends/windows/ebpfapi.js';
import { FakeBinding } from './windows-fake.js';

const WINDOWS = path.join(FIXTURES, 'probe-systems', 'windows-11-x64');
const MATRIX = path.join(ROOT, 'matrix', 'build');
const report = probe({ root: WINDOWS });
const obj = (app: string): Uint8Array => new Uint8Array(fs.readFileSync(path.join(MATRIX, `${app}.bpf.o`)));
const SC_MISSING = '[SC] EnumQueryServicesStatus:OpenService FAILED 1060:\r\n\r\nThe specified service does not exist as an installed service.\r\n\r\n';

t.test('the Windows fixture report: the windows backend is usable there', async (t) => {
  t.equal(report.system.platform, 'win32');
  t.same([report.backends.windows.state, report.backends.windows.built], ['yes', true]);
  t.equal(report.windows?.execution.mode, 'jit');
});

t.test('the selector on the Windows report: xdp and sockops planned for the Windows backend', async (t) => {
  const sel = new Selector({}, report, 'auto');
  for (const [app, linuxType, lines] of [
    ['xdp', 6, /program 'xdp_count': section 'xdp', Windows program type 1, attach type 1/],
    ['sockops', 13, /ringbuf records: sockops_handler: bpf_ringbuf_reserve\(40 bytes\)/],
  ] as const) {
    const bytes = obj(app);
    const logs: string[] = [];
    const { plan } = sel.plan(bytes, { objectName: app, verbose: true, log: (l) => logs.push(l) });
    t.equal(plan.backend, 'windows', `${app}: auto on a Windows report routes to the windows backend`);
    t.same(plan.compat, ['windows'], `${app}: the translation is the plan's compat step`);
    t.match(plan.reasons.join('\n'), /windows: this host: Windows 11 Pro build 22631\.3315, eBPF for Windows 0\.21\.0, jit/);
    t.match(logs.join('\n'), lines, `${app}: --verbose says the translation's steps`);
    t.equal(loadObject(bytes).programs[0]!.type, linuxType);
    const forced = new Selector({}, report, 'windows').plan(bytes, { objectName: app, verbose: false, log: () => {} }).plan;
    t.equal(forced.backend, 'windows', `${app}: --backend windows too`);
  }
});

t.test('the selector on the Windows report: tracing apps refused, each program with its reason', async (t) => {
  const sel = new Selector({}, report, 'auto');
  const cases = [
    ['bootstrap', /program 'handle_exec' \(tp\/sched\/sched_process_exec\): eBPF for Windows has no tracepoints/],
    ['kprobe', /program 'do_unlinkat' \(kprobe\/do_unlinkat\): eBPF for Windows has no kernel function probes/],
    ['uprobe', /program 'uprobe_add' \(uprobe\): eBPF for Windows has no user-space probes/],
    ['lsm', /program 'lsm_bprm_check' \(lsm\/bprm_check_security\): .*no LSM hooks/],
    ['opensnoop', /eBPF for Windows has no tracepoints/],
  ] as const;
  for (const [app, why] of cases) {
    const { plan } = sel.plan(obj(app), { objectName: app, verbose: false, log: () => {} });
    t.equal(plan.backend, null, `${app}: refused`);
    t.ok(plan.unavailable?.every((u) => u.backend === 'windows'), `${app}: by the windows backend`);
    t.match(refusal(plan), why, `${app}: the reason`);
  }
  // the load itself is refused before any backend is asked
  t.throws(() => sel.load(obj('kprobe'), { objectName: 'kprobe', verbose: false, log: () => {} }), { errno: 95, message: /the windows backend: program 'do_unlinkat'/ });
});

t.test("what this host's install refuses: native-only (no eBPF service), eBPF for Windows absent", async (t) => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'wasm-bpf-winroute-'));
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
  fs.cpSync(WINDOWS, dir, { recursive: true });
  fs.writeFileSync(path.join(dir, 'commands', 'sc-ebpfsvc.txt'), SC_MISSING);
  const native = probe({ root: dir });
  t.equal(native.windows?.execution.mode, 'native-only');
  const { plan, windows } = planWindows(obj('xdp'), loadObject(obj('xdp')), native);
  t.equal(plan.backend, null);
  t.equal(windows.accepted, false, 'the translation is fine, the host refuses');
  t.match(refusal(plan), /the windows backend: eBPF for Windows: .*only signed native images \(\.sys made by bpf2c\) load, ELF objects do not.*wasm-bpf loads the ELF objects the module embeds/);
  fs.rmSync(path.join(dir, 'Windows/System32/ebpfapi.dll'));
  const none = probe({ root: dir });
  t.equal(none.backends.windows.state, 'no');
  t.match(refusal(planWindows(obj('xdp'), loadObject(obj('xdp')), none).plan), /eBPF for Windows is not installed/);
  // a Linux report: the plan says what would load on Windows, nothing of this host's
  const linux = probe({ root: path.join(FIXTURES, 'probe-systems', 'debian-11-x86_64') });
  const onLinux = planWindows(obj('xdp'), loadObject(obj('xdp')), linux).plan;
  t.equal(onLinux.backend, 'windows');
  t.match(onLinux.reasons.join('\n'), /this host is linux: the plan says what would load on a Windows host/);
});

/** the fake, for the run: the first perf buffer poll delivers `first` (then the run is stopped) */
class RunBinding extends FakeBinding {
  polls = 0;
  constructor(private readonly stop: StopSignal, private readonly first: Uint8Array) {
    super();
  }
  override perfBufferPoll(pb: Handle, timeoutMs: number): number {
    this.polls++;
    if (this.polls === 1) this.toDeliver = [this.first];
    else this.stop.request(2, -1);
    return super.perfBufferPoll(pb, timeoutMs);
  }
}

/** sockops.h's struct tcp_event: 10.0.0.5:50000 -> 10.0.0.9:443, IPv4, active */
function tcpEvent(): Uint8Array {
  const e = new Uint8Array(40);
  e.set([10, 0, 0, 5], 0);
  e.set([10, 0, 0, 9], 16);
  const dv = new DataView(e.buffer);
  dv.setUint16(32, 50000, true);
  dv.setUint16(34, 443, true);
  e[36] = 4;
  e[37] = 1;
  return e;
}

t.test('a run on win32 (platform and binding injected): sockops.wasm through the selector to WindowsBackend', async (t) => {
  const stop = new StopSignal();
  const b = new RunBinding(stop, tcpEvent());
  const logs: string[] = [];
  const log = (l: string): void => void logs.push(l);
  const selector = await createBackend('auto', { platform: 'win32', windowsBinding: () => b, report, stop: stop.shared, log });
  t.equal(selector.wakeFd(), -1, 'no wake fd: the binding polls in slices');
  t.equal(selector.directMapOps(), undefined, 'map_operate through the host');
  t.match(logs.join('\n'), /the windows backend runs on fake-ebpfapi\.dll/);
  const bytes = new Uint8Array(fs.readFileSync(path.join(MATRIX, 'sockops.wasm')));
  const shape = readModuleShape(bytes);
  const host = new WasmBpfHost({ backend: selector, objectName: 'sockops', verbose: true, policy: DEFAULT_POLICY, wrapperModule: 'callback-wrapper', callbackExport: 'go-callback', stop, log });
  const out: string[] = [];
  const wasi = new GuestWasi({ args: ['sockops', '-j', 'C:\\compartment'], env: {}, preopens: {}, stop, output: (fd, d) => void out.push(`${fd}:${Buffer.from(d).toString()}`) });
  const inst = await WebAssembly.instantiate(await WebAssembly.compile(bytes), { wasi_snapshot_preview1: wasi.imports, ...host.imports(shape) } as WebAssembly.Imports);
  host.bind(inst);
  let code: number;
  try {
    code = wasi.start(inst);
  } catch (err) {
    // as the guest's thread ends a run stopped in a poll (src/runtime/worker.ts guestEnd)
    if (!(err instanceof Interrupted)) throw err;
    code = 128 + stop.stopped;
  } finally {
    host.closeAll();
    selector.dispose();
  }
  const stdout = out.filter((o) => o.startsWith('1:')).map((o) => o.slice(2)).join('');
  t.match(stdout, /"op": ?"active".*10\.0\.0\.5:50000.*10\.0\.0\.9:443|10\.0\.0\.5.*50000.*10\.0\.0\.9.*443/s, `the record reached the app (stdout: ${stdout}; stderr: ${out.filter((o) => o.startsWith('2:')).join('')})`);
  t.match(logs.join('\n'), /wasm-bpf: selector: windows: translated for eBPF for Windows/);
  t.match(logs.join('\n'), /wasm-bpf: windows: helper ids: .*bpf_perf_event_output 25 -> 32/, "WindowsBackend's --verbose lines");
  t.equal(code, 130, 'the app ended on the stop (SIGINT): -EINTR from the poll');
  const calls = b.calls.map((c) => (c[0] === 'mapOp' ? ['mapOp', c[1], c[2]] : c));
  const polls = calls.filter((c) => c[0] === 'perfBufferPoll');
  t.ok(polls.length >= 2, 'polled until stopped');
  const rest = calls.filter((c) => c[0] !== 'perfBufferPoll' && c[0] !== 'mapOp');
  t.same(rest, [
    ['mapCreate', rest[0]?.[1], WIN_MAP_TYPE.PERCPU_ARRAY],
    ['objectOpenMem', 'sockops'],
    ['mapSetDef', 0x1000n, 'rb', WIN_MAP_TYPE.PERF_EVENT_ARRAY],
    ['objectLoad', 0x1000n],
    ['programFd', 0x1000n, 'sockops_handler'],
    ['mapFd', 0x1000n, 'rb'],
    ['progAttach', 12, 0, WIN_ATTACH_TYPE.CGROUP_SOCK_OPS],
    ['mapFd', 0x1000n, 'rb'],
    ['perfBufferNew', 23, rest[8]?.[2]],
    ['perfBufferFree', 0x3000n],
    ['progDetach', 12, 0, WIN_ATTACH_TYPE.CGROUP_SOCK_OPS],
    ['objectClose', 0x1000n],
    ['closeFd', 100],
  ], 'load (host map, open, retype, load, fds), attach (sock_ops, compartment 0), perf buffer, then close: reader, link, object, host map');
});

t.test('on Linux: run --backend windows refuses naming why; check --backend windows shows the plan; on Windows without ebpfapi.dll: a clear refusal', async (t) => {
  const r = runCli(['run', '--backend', 'windows', path.join(MATRIX, 'xdp.wasm'), 'lo']);
  t.not(r.code, 0);
  t.match(r.stderr, /the windows backend runs on Windows with eBPF for Windows \(ebpfapi\.dll\); this is linux.*check --backend windows APP\.wasm/s);
  t.notMatch(r.stderr, /not available in this build/);
  const c = runCli(['check', '--backend', 'windows', path.join(MATRIX, 'xdp.wasm')]);
  t.equal(c.code, 0, c.stderr);
  t.match(c.stdout, /plan: windows backend: the object translates for eBPF for Windows/);
  await t.rejects(createBackend('windows', { platform: 'linux' }), { code: 'UNSUPPORTED', message: /this is linux/ });
  const noDll = (): never => {
    throw new Error('ebpfapi.dll: cannot open');
  };
  await t.rejects(createBackend('auto', { platform: 'win32', report, windowsBinding: noDll }), { code: 'UNSUPPORTED', message: /the windows backend cannot open eBPF for Windows' library: ebpfapi\.dll: cannot open; install eBPF for Windows/ }, 'on Windows without the library: a clear refusal');
});
