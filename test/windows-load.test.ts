// The Windows backend's load path (backends/windows/load.ts) on its one binding interface (ebpfapi.ts):
// 1. against a recording fake of the interface (typed, every call checked in order): JIT mode for an
//    object translated for Windows (open_mem of the translated bytes, the map edits, host maps' fds in
//    the bytes, load, program fds), XDP by interface name, sock_ops and sock_addr by Windows' attach
//    types, ring and perf buffer records in the ABI's framing, close in reverse; native mode (a PE image
//    through ebpf_object_load_native_by_fds, names from bpf_obj_get_info_by_fd); failures (nothing left).
// 2. the same sequence's shared part for real, through backends/windows/binding.ts on libbpf.so.1: XDP on a
//    veth whose peer sits in a network namespace the test creates, records through ring_buffer__poll and
//    perf_buffer__poll, no kernel object left. Nothing here runs on Windows (no Windows machine exists here).
import t from 'tap';
import fs from 'node:fs';
import path from 'node:path';
import { execFileSync } from 'node:child_process';
import { BUILD, FIXTURES, ROOT, buildBpf, kernelIds, settledLeaks } from './helpers.js';
import { translateForWindows } from '../backends/windows/translate/index.js';
import { WindowsObject, WindowsBackendError, planFromTranslation, isPeImage, type LoadPlan } from '../backends/windows/load.js';
import { WIN_ATTACH_TYPE, WIN_MAP_TYPE } from '../src/kernel/ebpf-windows.js';
import { ffiBinding } from '../backends/windows/binding.js';
import { WindowsBackend } from '../backends/windows/index.js';
import { MAP_TYPE } from '../backends/backend.js';
import { DEFAULT_POLICY } from '../src/policy/policy.js';
import { win32 } from '../backends/windows/win32.js';
import { FakeBinding, framed, names } from './windows-fake.js';
import type { Handle } from '../backends/windows/ebpfapi.js';

fs.mkdirSync(BUILD, { recursive: true });
const OBJ = buildBpf(path.join(FIXTURES, 'windows-load.bpf.c'), path.join(BUILD, 'windows-load.bpf.o'));
const objBytes = new Uint8Array(fs.readFileSync(OBJ));

t.test('fake: JIT mode, XDP by interface name, sock_addr by attach type, ring + perf records, close in reverse', async (t) => {
  const tr = translateForWindows(objBytes);
  t.ok(tr.accepted, `the fixture translates (${tr.refusals.map((r) => r.reason).join('; ')})`);
  const plan = planFromTranslation('windows-load', tr);
  t.same(plan.programs, [{ name: 'xdp_report', hook: { kind: 'xdp' } }, { name: 'connect_allow', hook: { kind: 'prog', attachType: WIN_ATTACH_TYPE.CGROUP_INET4_CONNECT } }]);
  const b = new FakeBinding();
  const o = WindowsObject.load(b, plan);
  t.equal(o.mode, 'jit');
  t.same(b.opened, tr.bytes, 'the translated bytes are what is opened');
  t.notSame(tr.bytes, objBytes, '(and they differ from the Linux object: helper ids and map types rewritten)');
  t.same(b.calls, [['objectOpenMem', 'windows-load'], ['objectLoad', 0x1000n], ['programFd', 0x1000n, 'xdp_report'], ['programFd', 0x1000n, 'connect_allow']]);
  b.calls.length = 0;
  t.equal(o.attach('xdp_report', 'Ethernet 2'), 0);
  t.equal(o.attach('connect_allow', ''), 1);
  t.same(b.calls, [['ifIndex', 'Ethernet 2'], ['xdpAttach', 7, 10, 0], ['progAttach', 11, 0, WIN_ATTACH_TYPE.CGROUP_INET4_CONNECT]]);
  b.calls.length = 0;
  const ring = o.records('ring', 'ring');
  const perf = o.records('perf', 'perf', { pages: 4 });
  t.same(b.calls, [['mapFd', 0x1000n, 'ring'], ['ringBufferNew', 20], ['mapFd', 0x1000n, 'perf'], ['perfBufferNew', 21, 4]]);
  const out = new Uint8Array(64);
  b.toDeliver = [new Uint8Array([1, 2, 3]), new Uint8Array(8).fill(4)];
  t.equal(ring.poll(50, out), 2);
  t.same(framed(out, 2), [[1, 2, 3], [4, 4, 4, 4, 4, 4, 4, 4]], 'ring records in the ABI framing');
  b.toDeliver = [new Uint8Array(60)];
  t.equal(perf.poll(0, out), -105, 'a record larger than the buffer: -ENOBUFS');
  t.equal(perf.pendingSize(), 60);
  t.equal(perf.poll(0, new Uint8Array(72)), 1, 'then delivered into a buffer large enough, without another poll');
  t.equal(perf.lost(), 2, 'perf_buffer lost counts');
  b.calls.length = 0;
  o.close();
  o.close();
  t.same(b.calls, [['progDetach', 11, 0, WIN_ATTACH_TYPE.CGROUP_INET4_CONNECT], ['xdpDetach', 7, 0], ['ringBufferFree', 0x2000n], ['perfBufferFree', 0x3000n], ['objectClose', 0x1000n]], 'links newest first, readers, object; once');
  t.throws(() => o.attach('xdp_report', 'Ethernet 2'), { errno: 9 }, 'attach after close: EBADF');
});

t.test('fake: sock_ops (the ring buffer -> perf compat edits: retype and a host map) ', async (t) => {
  const tr = translateForWindows(new Uint8Array(fs.readFileSync(path.join(ROOT, 'matrix', 'build', 'sockops.bpf.o'))));
  const plan = planFromTranslation('sockops', tr);
  const host = plan.hostMaps![0]!;
  const b = new FakeBinding();
  const o = WindowsObject.load(b, plan);
  t.same(b.calls.slice(0, 4), [['mapCreate', host.name, host.type], ['objectOpenMem', 'sockops'], ['mapSetDef', 0x1000n, 'rb', WIN_MAP_TYPE.PERF_EVENT_ARRAY], ['objectLoad', 0x1000n]]);
  const dv = new DataView(b.opened!.buffer);
  for (const at of host.fdAt) t.equal(dv.getInt32(at, true), 100, `the host map's fd at ${at}`);
  t.same(tr.bytes.subarray(0, 16), b.opened!.subarray(0, 16), 'the plan\'s bytes are copied, not written');
  t.not(new DataView(tr.bytes.buffer, tr.bytes.byteOffset).getInt32(host.fdAt[0]!, true), 100);
  b.calls.length = 0;
  o.attach('sockops_handler', '');
  t.same(b.calls, [['progAttach', 12, 0, WIN_ATTACH_TYPE.CGROUP_SOCK_OPS]]);
  b.calls.length = 0;
  o.close();
  t.same(b.calls, [['progDetach', 12, 0, WIN_ATTACH_TYPE.CGROUP_SOCK_OPS], ['objectClose', 0x1000n], ['closeFd', 100]], 'the host map closed after the object');
});

/** a minimal PE image: "MZ", e_lfanew at 0x3c -> "PE\0\0" */
function peImage(): Uint8Array {
  const b = new Uint8Array(0x100);
  b[0] = 0x4d;
  b[1] = 0x5a;
  new DataView(b.buffer).setUint32(0x3c, 0x80, true);
  b.set([0x50, 0x45, 0, 0], 0x80);
  return b;
}

t.test('fake: native mode (a PE image): ebpf_object_load_native_by_fds, names from the driver, the .sys removed at close', async (t) => {
  t.ok(isPeImage(peImage()));
  t.notOk(isPeImage(objBytes), 'an ELF is not');
  t.notOk(isPeImage(new Uint8Array([0x4d, 0x5a, 1, 2])), 'nor "MZ" alone');
  const b = new FakeBinding();
  const plan: LoadPlan = { name: 'bindmon', bytes: peImage(), programs: [] };
  const o = WindowsObject.load(b, plan);
  t.equal(o.mode, 'native');
  t.same(b.sysSeen!.bytes, plan.bytes, 'the driver written to a file of its own');
  t.same(b.calls, [['loadNative', '.sys'], ['programInfo', 51], ['programInfo', 52]]);
  t.same(o.programNames(), ['sys_xdp', 'sys_connect']);
  b.calls.length = 0;
  o.attach('sys_xdp', 'Ethernet 2');
  t.throws(() => o.attach('sys_connect', ''), { code: 'UNSUPPORTED', message: /connect4, connect6/ }, 'native sock_addr without a hook named: refused');
  o.attach('sys_connect', 'connect6');
  t.same(b.calls, [['ifIndex', 'Ethernet 2'], ['xdpAttach', 7, 51, 0], ['progAttach', 52, 0, WIN_ATTACH_TYPE.CGROUP_INET6_CONNECT]]);
  t.throws(() => o.records('ring', 'ring'), { code: 'UNSUPPORTED' }, 'native mode buffers: not read yet (said)');
  b.calls.length = 0;
  o.close();
  t.same(names(b.calls), ['progDetach', 'xdpDetach', 'closeFd', 'closeFd', 'closeFd']);
  t.notOk(fs.existsSync(b.sysSeen!.path), 'the .sys file and its directory are gone');
  t.notOk(fs.existsSync(path.dirname(b.sysSeen!.path)));
});

t.test('fake: failures are errors with the errno; nothing the load made is left', async (t) => {
  const plan = planFromTranslation('windows-load', translateForWindows(objBytes));
  const b = new FakeBinding();
  b.fail.objectLoad = -13;
  let err: unknown;
  try {
    WindowsObject.load(b, plan);
  } catch (e) {
    err = e;
  }
  t.ok(err instanceof WindowsBackendError, 'a WindowsBackendError');
  t.match(err, { errno: 13, op: 'bpf_object__load', code: 'BACKEND', message: /fake-ebpfapi\.dll/ });
  t.same(names(b.calls), ['objectOpenMem', 'objectLoad', 'objectClose'], 'the opened object is closed');
  const b2 = new FakeBinding();
  b2.fail.objectOpenMem = -22;
  t.throws(() => WindowsObject.load(b2, plan), { errno: 22 });
  t.same(names(b2.calls), ['objectOpenMem'], 'nothing to close when the open failed');
  const b3 = new FakeBinding();
  const o = WindowsObject.load(b3, plan);
  b3.calls.length = 0;
  t.throws(() => o.attach('xdp_report', 'no-such-if'), { code: 'NOT_FOUND', errno: 19 }, 'an unknown interface: ENODEV');
  t.throws(() => o.attach('nope', 'Ethernet 2'), { errno: 2, message: /it has: xdp_report, connect_allow/ });
  b3.fail.xdpAttach = -16;
  t.throws(() => o.attach('xdp_report', 'Ethernet 2'), { errno: 16 });
  t.throws(() => o.attach('xdp_report', ''), { errno: 22 }, 'XDP without an interface');
  o.close();
  t.same(names(b3.calls), ['ifIndex', 'ifIndex', 'xdpAttach', 'objectClose'], 'no detach of links that never were');
  const b4 = new FakeBinding();
  b4.fail.loadNative = -5;
  let sys = '';
  t.throws(() => WindowsObject.load(b4, { name: 'x', bytes: peImage(), programs: [] }), { errno: 5 });
  sys = b4.sysSeen!.path;
  t.notOk(fs.existsSync(path.dirname(sys)), 'a failed native load leaves no file');
  const b5 = new FakeBinding();
  b5.fail.mapCreate = -1;
  const sockops = planFromTranslation('sockops', translateForWindows(new Uint8Array(fs.readFileSync(path.join(ROOT, 'matrix', 'build', 'sockops.bpf.o')))));
  t.throws(() => WindowsObject.load(b5, sockops), { errno: 1 });
  t.same(names(b5.calls), ['mapCreate']);
  const refused = translateForWindows(new Uint8Array(fs.readFileSync(path.join(ROOT, 'matrix', 'build', 'kprobe.bpf.o'))));
  t.throws(() => planFromTranslation('kprobe', refused), { code: 'UNSUPPORTED', message: /kernel function probes/ }, 'a refused translation has no plan');
});

t.test('fake: the Backend contract over the load path (WindowsBackend): Linux names for the guest, Windows underneath', async (t) => {
  const b = new FakeBinding();
  const stop = new SharedArrayBuffer(8);
  const backend = new WindowsBackend(b, { stop });
  t.equal(backend.name, 'windows');
  t.equal(backend.wakeFd(), -1);
  const logs: string[] = [];
  const obj = backend.load(objBytes, { objectName: 'windows-load', verbose: true, log: (l) => logs.push(l), policy: { ...DEFAULT_POLICY, interfaces: ['Ethernet 2'] } });
  t.match(logs.join('\n'), /windows: helper ids: bpf_ringbuf_output 130 -> 11/, '--verbose: the translation steps');
  t.same(obj.programs.map((p) => [p.name, p.type]), [['xdp_report', 6], ['connect_allow', 18]], 'programs under their Linux types');
  t.same(obj.maps.map((m) => [m.name, m.type, m.fd, m.keySize, m.valueSize]), [['counts', MAP_TYPE.ARRAY, 22, 4, 8], ['ring', MAP_TYPE.RINGBUF, 20, 0, 0], ['perf', MAP_TYPE.PERF_EVENT_ARRAY, 21, 4, 4]], 'maps under their Linux types, the Windows fds');
  b.calls.length = 0;
  const mem = new Uint8Array(128);
  t.equal(obj.mapOperate(1, 22, mem, 0, 8, 0), 0);
  t.same(b.calls, [['mapOp', 1, 22, 128, 0, 8, 0]], 'map_operate: the binding, as given');
  b.calls.length = 0;
  t.throws(() => obj.attach('xdp_report', 'Ethernet 9'), { code: 'POLICY' }, 'the policy first');
  t.same(b.calls, [], 'nothing asked of the binding for a refused target');
  obj.attach('xdp_report', 'Ethernet 2');
  t.same(b.calls, [['ifIndex', 'Ethernet 2'], ['xdpAttach', 7, 10, 0]]);
  t.throws(() => obj.openRecords(22), { errno: 22 }, 'an array is no record source');
  t.throws(() => obj.openRecords(99), { errno: 9 }, 'a map fd of no map of ours');
  const src = obj.openRecords(20);
  b.toDeliver = [new Uint8Array([7, 7])];
  const out = new Uint8Array(32);
  t.equal(src.poll(10, out), 1);
  t.same(framed(out, 1), [[7, 7]]);
  new Int32Array(stop)[0] = 1;
  t.equal(src.poll(1000, out), -4, 'the run stopped: -EINTR');
  b.calls.length = 0;
  obj.close();
  obj.close();
  t.same(names(b.calls), ['xdpDetach', 'ringBufferFree', 'objectClose']);
  t.equal(obj.mapOperate(1, 22, mem, 0, 8, 0), -9, 'closed: -EBADF');
  const kprobe = new Uint8Array(fs.readFileSync(path.join(ROOT, 'matrix', 'build', 'kprobe.bpf.o')));
  t.throws(() => backend.load(kprobe, { objectName: 'kprobe', verbose: false, log: () => {} }), { code: 'UNSUPPORTED', message: /kernel function probes/ });
  t.throws(() => backend.load(objBytes, { objectName: 'x', verbose: false, log: () => {}, edits: { retype: [{ name: 'ring', type: 4, keySize: 4, valueSize: 4, maxEntries: 0 }] } }), { errno: 95 }, "the selector's edits: refused");
  t.throws(() => backend.load(objBytes, { objectName: 'x', verbose: false, log: () => {}, policy: { ...DEFAULT_POLICY, programTypes: ['kprobe'] } }), { code: 'POLICY' }, 'the load policy: an object with program kinds it does not allow');
});

// ---- the shared part for real: libbpf.so.1 through backends/windows/binding.ts ---------------------------

function sh(cmd: string, args: string[]): string {
  return execFileSync(cmd, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
}

t.test('libbpf.so.1: the load path through the binding, XDP on a veth (peer in a netns), ring + perf records', async (t) => {
  if (process.getuid?.() !== 0) {
    t.fail('needs root (bpf(), netns)');
    return;
  }
  const tag = `wl${process.pid % 100000}`;
  const ns = `wasm-bpf-${tag}`;
  const host = `${tag}h`;
  const peer = `${tag}p`;
  const before = kernelIds();
  sh('ip', ['netns', 'add', ns]);
  t.teardown(() => {
    try {
      sh('ip', ['link', 'del', host]);
    } catch {
      // gone with the namespace
    }
    sh('ip', ['netns', 'del', ns]);
  });
  sh('ip', ['link', 'add', host, 'type', 'veth', 'peer', 'name', peer]);
  sh('ip', ['link', 'set', peer, 'netns', ns]);
  sh('ip', ['addr', 'add', '10.199.77.1/24', 'dev', host]);
  sh('ip', ['link', 'set', host, 'up']);
  sh('ip', ['-n', ns, 'addr', 'add', '10.199.77.2/24', 'dev', peer]);
  sh('ip', ['-n', ns, 'link', 'set', peer, 'up']);
  sh('ip', ['-n', ns, 'link', 'set', 'lo', 'up']);

  const b = ffiBinding();
  t.match(b.library, /libbpf\.so\.1/);
  // Linux numbers (the object untranslated): the sequence is the Windows one, the semantics Linux's
  const plan: LoadPlan = { name: 'windows-load', bytes: objBytes, programs: [{ name: 'xdp_report', hook: { kind: 'xdp' } }] };
  const o = WindowsObject.load(b, plan);
  let closed = false;
  t.teardown(() => closed || o.close());
  const fd = b.programFd((o as unknown as { obj: Handle }).obj, 'xdp_report');
  const info = b.programInfo(fd);
  t.same(typeof info === 'number' ? info : { name: info.name, type: info.type }, { name: 'xdp_report', type: 6 }, 'bpf_obj_get_info_by_fd: the name and type (Linux layout)');
  t.throws(() => o.attach('xdp_report', 'no-such-if0'), { errno: 19 }, 'an unknown interface name');
  o.attach('xdp_report', host);
  t.match(sh('ip', ['link', 'show', host]), /xdp/, 'XDP attached to the interface by name');
  const ring = o.records('ring', 'ring');
  const perf = o.records('perf', 'perf', { pages: 8 });
  // packets into the host end: pings from the namespace (replies or not, each frame passes the XDP program)
  try {
    sh('ip', ['netns', 'exec', ns, 'ping', '-c', '3', '-i', '0.2', '-W', '1', '10.199.77.1']);
  } catch {
    // the frames were sent; the records tell
  }
  const out = new Uint8Array(4096);
  const got = { ring: [] as number[][], perf: [] as number[][] };
  const deadline = Date.now() + 3000;
  while ((got.ring.length < 3 || got.perf.length < 3) && Date.now() < deadline) {
    const r = ring.poll(100, out);
    if (r > 0) got.ring.push(...framed(out, r));
    const p = perf.poll(100, out);
    if (p > 0) got.perf.push(...framed(out, p));
  }
  t.ok(got.ring.length >= 3, `ring_buffer__poll: ${got.ring.length} records`);
  t.ok(got.perf.length >= 3, `perf_buffer__poll: ${got.perf.length} records`);
  const seqs = (recs: number[][]): number[] => recs.map((r) => new DataView(Uint8Array.from(r).buffer).getUint32(4, true));
  t.same(seqs(got.ring).slice(0, 3), [0, 1, 2], 'ring records: the packets in order, 8 bytes each');
  t.ok(got.ring.every((r) => r.length === 8) && got.perf.every((r) => r.length >= 8), 'record sizes');
  t.equal(perf.lost(), 0);
  o.close();
  closed = true;
  t.notMatch(sh('ip', ['link', 'show', host]), /xdp/, 'XDP detached at close');
  const leaks = await settledLeaks(before);
  t.same(leaks, { progs: [], maps: [], links: [] }, 'no program, map or link left');
});

t.test('libbpf.so.1: native mode is Windows-only (EOPNOTSUPP here, said)', async (t) => {
  const b = ffiBinding();
  t.equal(b.loadNative('/nonexistent.sys'), -95);
  t.throws(() => WindowsObject.load(b, { name: 'drv', bytes: peImage(), programs: [] }), { code: 'UNSUPPORTED', op: 'ebpf_object_load_native_by_fds' });
});

t.test("Windows-only calls live in backends/windows/win32.ts alone (cilium/ebpf's internal/efw rule)", async (t) => {
  const WINDOWS_ONLY = /ebpf_object_load_native_by_fds\(|iphlpapi\.dll|ucrtbase\.dll|\b_close\(/;
  const dirs = [path.join(ROOT, 'backends'), path.join(ROOT, 'src')];
  const files: string[] = [];
  const walk = (d: string): void => {
    for (const e of fs.readdirSync(d, { withFileTypes: true })) {
      const p = path.join(d, e.name);
      if (e.isDirectory()) walk(p);
      else if (e.name.endsWith('.ts')) files.push(p);
    }
  };
  dirs.forEach(walk);
  const code = (f: string): string => fs.readFileSync(f, 'utf8').split('\n').filter((l) => !/^\s*(\/\/|\*|\/\*)/.test(l)).join('\n');
  const hits = files.filter((f) => WINDOWS_ONLY.test(code(f))).map((f) => path.relative(ROOT, f));
  t.same(hits, ['backends/windows/win32.ts'], 'the native load, iphlpapi, the C runtime: one module');
  t.match(code(path.join(ROOT, 'backends/windows/win32.ts')), /process\.platform !== 'win32'/, 'which refuses to run elsewhere');
  t.throws(() => win32(), { code: 'EOPNOTSUPP', message: /Windows only; this is linux/ }, 'on Linux it throws, saying so');
});
