// The Linux -> eBPF for Windows translation (backends/windows/translate/): every table entry, the pass on
// fixture objects (each renumbered map and helper read back from the rewritten bytes, nothing else changed),
// and on every matrix app's object: xdp and sockops accepted with their Windows numbers, the rest refused.
import t from 'tap';
import fs from 'node:fs';
import path from 'node:path';
import { buildBpf, BUILD, FIXTURES, ROOT } from './helpers.js';
import { loadObject, ObjectError } from '../src/object/loader.js';
import { HELPER, MAP_TYPE, ATTACH_TYPE, PROG_TYPE } from '../src/kernel/uapi.js';
import { MAP_TYPE_TO_WINDOWS, WIN_MAP_TYPE, windowsMapType } from '../backends/windows/translate/maps.js';
import { HELPER_TO_WINDOWS, WIN_HELPER, windowsHelper, windowsTracePrintk } from '../backends/windows/translate/helpers.js';
import { ATTACH_TYPE_TO_WINDOWS, WIN_ATTACH_TYPE, windowsAttachType } from '../backends/windows/translate/attach.js';
import { WINDOWS_SECTIONS, WIN_PROG_TYPE, windowsProgram } from '../backends/windows/translate/programs.js';
import { translateForWindows, printkArgs, type Translation } from '../backends/windows/translate/index.js';

fs.mkdirSync(BUILD, { recursive: true });
const MATRIX = path.join(ROOT, 'matrix', 'build');

t.test('map types: every Linux type Windows has, by its Windows number', async (t) => {
  const expected: Array<[number, number]> = [
    [MAP_TYPE.HASH, 1], [MAP_TYPE.ARRAY, 2], [MAP_TYPE.PROG_ARRAY, 3], [MAP_TYPE.PERCPU_HASH, 4], [MAP_TYPE.PERCPU_ARRAY, 5],
    [MAP_TYPE.HASH_OF_MAPS, 6], [MAP_TYPE.ARRAY_OF_MAPS, 7], [MAP_TYPE.LRU_HASH, 8], [MAP_TYPE.LPM_TRIE, 9], [MAP_TYPE.QUEUE, 10],
    [MAP_TYPE.LRU_PERCPU_HASH, 11], [MAP_TYPE.STACK, 12], [MAP_TYPE.RINGBUF, 13], [MAP_TYPE.PERF_EVENT_ARRAY, 14],
  ];
  t.equal(MAP_TYPE_TO_WINDOWS.size, expected.length, 'one entry per Windows map type');
  for (const [linux, win] of expected) t.same(windowsMapType(linux, `#${linux}`), { windows: win }, `Linux ${linux} -> Windows ${win}`);
  t.equal(WIN_MAP_TYPE.RINGBUF, 13);
  for (const linux of Object.values(MAP_TYPE)) {
    if (linux === 0 || MAP_TYPE_TO_WINDOWS.has(linux)) continue;
    const v = windowsMapType(linux, `type${linux}`);
    t.ok('refused' in v && /eBPF for Windows has no type\d+ maps/.test(v.refused) && /it has: hash, array/.test(v.refused), `Linux map type ${linux} refused, naming what Windows has`);
  }
  const st = windowsMapType(MAP_TYPE.STACK_TRACE, 'stack_trace');
  t.match('refused' in st ? st.refused : '', /no stack traces/);
});

t.test('helpers: every mapped id, the printk split, the rewritten and the refused', async (t) => {
  const expected: Array<[number, number]> = [
    [HELPER.map_lookup_elem, 1], [HELPER.map_update_elem, 2], [HELPER.map_delete_elem, 3], [HELPER.tail_call, 5],
    [HELPER.get_prandom_u32, 6], [HELPER.ktime_get_boot_ns, 7], [HELPER.get_smp_processor_id, 8], [HELPER.ktime_get_ns, 9],
    [HELPER.csum_diff, 10], [HELPER.ringbuf_output, 11], [HELPER.map_push_elem, 16], [HELPER.map_pop_elem, 17],
    [HELPER.map_peek_elem, 18], [HELPER.get_current_pid_tgid, 19], [HELPER.get_socket_cookie, 26], [HELPER.perf_event_output, 32],
  ];
  t.equal(HELPER_TO_WINDOWS.size, expected.length);
  for (const [linux, win] of expected) t.same(windowsHelper(linux, `h${linux}`), { windows: win }, `Linux helper ${linux} -> Windows ${win}`);
  t.same([2, 3, 4, 5].map(windowsTracePrintk), [WIN_HELPER.trace_printk2, WIN_HELPER.trace_printk3, WIN_HELPER.trace_printk4, WIN_HELPER.trace_printk5]);
  for (const id of [HELPER.trace_printk, HELPER.ringbuf_reserve, HELPER.ringbuf_submit, HELPER.ringbuf_discard]) t.ok('rewritten' in windowsHelper(id, 'x'), `helper ${id} is rewritten by a step`);
  const pr = windowsHelper(HELPER.probe_read_kernel, 'bpf_probe_read_kernel');
  t.match('refused' in pr ? pr.refused : '', /no bpf_probe_read_kernel \(Windows programs cannot read arbitrary kernel memory\)/);
  const skb = windowsHelper(HELPER.skb_load_bytes, 'bpf_skb_load_bytes');
  t.match('refused' in skb ? skb.refused : '', /no bpf_skb_load_bytes; its general helpers: bpf_map_lookup_elem/);
  // printk's argument count: the highest of r3..r5 set in the straight-line code before the call
  const ins = (code: number, dst: number): number[] => [code, dst, 0, 0, 0, 0, 0, 0];
  const seq = (...xs: number[][]): Uint8Array => new Uint8Array(xs.flat());
  t.equal(printkArgs(seq(ins(0xbf, 1), ins(0xb7, 2), ins(0x85, 0)), 2), 2, 'fmt and size only');
  t.equal(printkArgs(seq(ins(0xb7, 3), ins(0xbf, 1), ins(0xb7, 2), ins(0x85, 0)), 3), 3, 'r3 set');
  t.equal(printkArgs(seq(ins(0xb7, 5), ins(0x79, 4), ins(0xb7, 3), ins(0x85, 0)), 3), 5, 'r3..r5 set');
  t.equal(printkArgs(seq(ins(0xb7, 5), ins(0x85, 0), ins(0xb7, 2), ins(0x85, 0)), 3), 2, 'a write before the previous call does not count');
  t.equal(printkArgs(seq(ins(0xb7, 4), ins(0x15, 1), ins(0xb7, 2), ins(0x85, 0)), 3), 2, 'nor one before a branch');
});

t.test('attach types: every hook both have', async (t) => {
  const expected: Array<[number, number]> = [
    [ATTACH_TYPE.XDP, WIN_ATTACH_TYPE.XDP], [ATTACH_TYPE.CGROUP_SOCK_OPS, WIN_ATTACH_TYPE.CGROUP_SOCK_OPS],
    [ATTACH_TYPE.CGROUP_INET4_CONNECT, WIN_ATTACH_TYPE.CGROUP_INET4_CONNECT], [ATTACH_TYPE.CGROUP_INET6_CONNECT, WIN_ATTACH_TYPE.CGROUP_INET6_CONNECT],
  ];
  t.equal(ATTACH_TYPE_TO_WINDOWS.size, expected.length);
  for (const [linux, win] of expected) t.equal(windowsAttachType(linux), win, `Linux attach ${linux} -> Windows ${win}`);
  t.same([WIN_ATTACH_TYPE.XDP, WIN_ATTACH_TYPE.BIND, WIN_ATTACH_TYPE.CGROUP_INET4_CONNECT, WIN_ATTACH_TYPE.CGROUP_SOCK_OPS], [1, 2, 3, 7]);
  t.equal(windowsAttachType(ATTACH_TYPE.CGROUP_INET_INGRESS), undefined, 'cgroup skb: none');
  t.equal(windowsAttachType(ATTACH_TYPE.TRACE_FENTRY), undefined, 'fentry: none');
});

t.test('program sections: every Windows hook, every Linux kind refused with what Windows offers', async (t) => {
  const expected: Array<[string, number, number]> = [
    ['xdp', 1, 1], ['bind', 2, 2], ['cgroup/connect4', 3, 3], ['cgroup/connect6', 3, 4],
    ['cgroup/recv_accept4', 3, 5], ['cgroup/recv_accept6', 3, 6], ['sockops', 4, 7],
  ];
  t.equal(WINDOWS_SECTIONS.length, expected.length);
  for (const [sec, prog, attach] of expected) t.same(windowsProgram(sec), { windows: WINDOWS_SECTIONS.find((s) => s.section === sec) }, sec);
  for (const [sec, prog, attach] of expected) {
    const s = WINDOWS_SECTIONS.find((x) => x.section === sec)!;
    t.same([s.progType, s.attachType], [prog, attach], `${sec}: program type ${prog}, attach type ${attach}`);
  }
  const sx = WINDOWS_SECTIONS.find((x) => x.section === 'xdp')!;
  t.same(sx.linux, { progType: PROG_TYPE.XDP, attachType: ATTACH_TYPE.XDP });
  t.equal(WIN_PROG_TYPE.SOCK_OPS, 4);
  const refused: Array<[string, RegExp]> = [
    ['kprobe/do_unlinkat', /no kernel function probes/], ['kretprobe/do_unlinkat', /no kernel function probes/], ['ksyscall/openat', /no kernel function probes/],
    ['uprobe//bin/bash:readline', /no user-space probes/], ['uretprobe', /no user-space probes/], ['usdt/x:y:z', /no user-space probes/],
    ['tp/sched/sched_process_exec', /no tracepoints; process creation and exit are the "process" program type/], ['tracepoint/syscalls/sys_enter_openat', /no tracepoints/],
    ['raw_tp/sched_switch', /no tracepoints/], ['tp_btf/sched_wakeup', /no tracepoints/],
    ['fentry/do_unlinkat', /no BTF trampolines/], ['fexit/x', /no BTF trampolines/], ['fmod_ret/x', /no BTF trampolines/], ['iter/task', /no BTF trampolines/],
    ['lsm/bprm_check_security', /no LSM hooks/], ['cgroup_skb/ingress', /no cgroups/], ['cgroup/skb', /no cgroups/], ['cgroup/sysctl', /no cgroups/],
    ['cgroup/bind4', /bind hook \(section "bind", BPF_PROG_TYPE_BIND\) has its own context/],
    ['perf_event', /no perf events/], ['socket', /no socket-level packet programs/], ['sk_msg', /no socket-level/],
    ['tc', /no traffic control/], ['tcx/ingress', /no traffic control/], ['struct_ops/x', /no such program type/], ['mystery/x', /no program type for section 'mystery\/x'/],
  ];
  for (const [sec, why] of refused) {
    const v = windowsProgram(sec);
    t.ok('refused' in v && why.test(v.refused) && /Windows offers: xdp, bind, cgroup\/connect4, cgroup\/connect6, cgroup\/recv_accept4, cgroup\/recv_accept6, sockops$/.test(v.refused), `${sec}: refused (${'refused' in v ? v.refused : 'accepted'})`);
  }
});

/** the helper ids of every call of the object's executable sections, in order */
function callIds(bytes: Uint8Array): number[] {
  const obj = loadObject(bytes);
  const out: number[] = [];
  for (const f of obj.functions) {
    const d = obj.elf.section(f.section)!.data();
    for (let i = f.sectionInsn; i < f.sectionInsn + f.length; i++) if (d[i * 8] === 0x85 && d[i * 8 + 1]! >> 4 === 0) out.push(new DataView(d.buffer, d.byteOffset + i * 8 + 4, 4).getInt32(0, true));
  }
  return out;
}

/** byte offsets where a and b differ */
function diffs(a: Uint8Array, b: Uint8Array): number[] {
  const out: number[] = [];
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) out.push(i);
  return out;
}

t.test('the pass on a fixture: BTF and legacy map types, helper ids, nothing else', async (t) => {
  const bytes = fs.readFileSync(buildBpf(path.join(FIXTURES, 'windows-maps.bpf.c'), path.join(BUILD, 'windows-maps.bpf.o')));
  const before = loadObject(bytes);
  const tr = translateForWindows(bytes);
  t.equal(tr.accepted, true, JSON.stringify(tr.refusals));
  t.same(tr.refusals, []);
  t.equal(tr.bytes.length, bytes.length, 'renumbering does not move anything');
  const after = loadObject(tr.bytes);
  const type = (o: typeof after, n: string): number => o.map(n)!.type;
  t.same(['h', 'pa', 'lru', 'q', 'rb', 'legacy_lpm'].map((n) => type(before, n)), [1, 6, 9, 22, 27, 11], 'Linux numbers before');
  t.same(['h', 'pa', 'lru', 'q', 'rb', 'legacy_lpm'].map((n) => type(after, n)), [1, 5, 8, 10, 13, 9], 'Windows numbers after, read back by our loader');
  t.same(Object.fromEntries(tr.maps.map((m) => [m.name, m.via])), { h: 'same', pa: 'btf', lru: 'btf', q: 'btf', rb: 'btf', legacy_lpm: 'legacy' });
  for (const n of ['h', 'pa', 'lru', 'q', 'rb', 'legacy_lpm']) t.same([after.map(n)!.keySize, after.map(n)!.valueSize, after.map(n)!.maxEntries], [before.map(n)!.keySize, before.map(n)!.valueSize, before.map(n)!.maxEntries], `${n}: sizes untouched`);
  const linuxCalls = callIds(bytes);
  const winCalls = callIds(tr.bytes);
  t.same(linuxCalls, [HELPER.ktime_get_ns, HELPER.get_prandom_u32, HELPER.map_update_elem, HELPER.map_lookup_elem, HELPER.map_update_elem, HELPER.map_push_elem, HELPER.ringbuf_output, HELPER.trace_printk, HELPER.trace_printk]);
  t.same(winCalls, [9, 6, 2, 1, 2, 16, 11, 13, 15], 'Windows ids; printk with 1 and 3 values -> trace_printk3 and trace_printk5');
  // exactly the renumbered words changed: 4 BTF nelems (h stays 1), the legacy type, 6 call immediates (the
  // 3 map update/lookup calls keep ids 1 and 2) and the return value (XDP_PASS 2 -> 1)
  const words = [...new Set(diffs(bytes, tr.bytes).map((o) => o - (o % 4)))];
  const sectionOf = (o: number): string => before.elf.sections.find((x) => o >= x.offset && o < x.offset + x.size)?.name ?? '?';
  const bySection: Record<string, number> = {};
  for (const w of words) bySection[sectionOf(w)] = (bySection[sectionOf(w)] ?? 0) + 1;
  t.same(bySection, { '.BTF': 4, maps: 1, xdp: 7 }, `changed words: ${words.join(', ')}`);
  t.same(tr.programs, [{ name: 'xdp_all', section: 'xdp', linux: { progType: PROG_TYPE.XDP, attachType: ATTACH_TYPE.XDP }, windows: { section: 'xdp', progType: 1, attachType: 1 } }]);
  t.same(tr.caveats, [], 'its context (no loads) and return code translated');
  t.match(tr.steps.join('\n'), /program 'xdp_all' \(xdp\): context xdp_md loads none; XDP actions 2 -> 1/);
  t.equal(tr.edits, undefined, 'no ring buffer records: no edits');
});

t.test('the pass refuses a map whose BTF type encoding is shared', async (t) => {
  const bytes = fs.readFileSync(buildBpf(path.join(FIXTURES, 'windows-shared.bpf.c'), path.join(BUILD, 'windows-shared.bpf.o')));
  const tr = translateForWindows(bytes);
  t.equal(tr.accepted, false);
  t.equal(tr.refusals.length, 1);
  t.equal(tr.refusals[0]!.subject, "map 'q' (queue)");
  t.match(tr.refusals[0]!.reason, /int \(\*\)\[22\]' it uses also encodes another field/);
  t.equal(tr.bytes, bytes, 'refused: the input bytes, unchanged');
  t.equal(loadObject(bytes).map('a')!.maxEntries, 22);
});

const APPS = ['bootstrap', 'execve', 'opensnoop', 'runqlat', 'sockfilter', 'sockops', 'uprobe', 'xdp', 'lsm', 'kprobe', 'fentry'];

t.test('every matrix app', async (t) => {
  const missing = APPS.filter((a) => !fs.existsSync(path.join(MATRIX, `${a}.bpf.o`)));
  t.same(missing, [], 'matrix/build has every app (make -s -C matrix)');
  const tr: Record<string, Translation> = {};
  for (const a of APPS) tr[a] = translateForWindows(fs.readFileSync(path.join(MATRIX, `${a}.bpf.o`)));

  const xdp = tr.xdp!;
  t.equal(xdp.accepted, true, 'xdp accepted');
  t.same(xdp.programs.map((p) => p.windows), [{ section: 'xdp', progType: WIN_PROG_TYPE.XDP, attachType: WIN_ATTACH_TYPE.XDP }]);
  t.same(xdp.maps, [{ name: 'stats', linuxType: MAP_TYPE.ARRAY, windowsType: WIN_MAP_TYPE.ARRAY, via: 'same' }]);
  t.same(callIds(xdp.bytes), [WIN_HELPER.map_lookup_elem]);
  // its context loads become Windows' pointer loads, its XDP_PASS Windows' 1 (llvm-objdump: the first two and the return)
  const code = (o: Uint8Array): Uint8Array => loadObject(o).elf.section('xdp')!.data();
  const lin = code(fs.readFileSync(path.join(MATRIX, 'xdp.bpf.o')));
  const win = code(xdp.bytes);
  t.same([...lin.subarray(0, 4)], [0x61, 0x16, 4, 0], 'Linux: r6 = *(u32 *)(r1 + 4) (data_end)');
  t.same([...win.subarray(0, 4)], [0x79, 0x16, 8, 0], 'Windows: r6 = *(u64 *)(r1 + 8)');
  t.same([...lin.subarray(8, 12)], [0x61, 0x17, 0, 0], 'Linux: r7 = *(u32 *)(r1 + 0) (data)');
  t.same([...win.subarray(8, 12)], [0x79, 0x17, 0, 0], 'Windows: r7 = *(u64 *)(r1 + 0)');
  const ret = (b: Uint8Array): number[] => { const out: number[] = []; for (let i = 0; i + 8 <= b.length; i += 8) if (b[i] === 0xb7 && (b[i + 1]! & 0xf) === 0) out.push(new DataView(b.buffer, b.byteOffset + i + 4, 4).getInt32(0, true)); return out; };
  t.same(ret(lin), [2], 'Linux: return XDP_PASS (2)');
  t.same(ret(win), [1], 'Windows: return XDP_PASS (1)');
  t.same(diffs(fs.readFileSync(path.join(MATRIX, 'xdp.bpf.o')), xdp.bytes).length > 0 && xdp.caveats, [], 'no caveat left');

  const so = tr.sockops!;
  t.equal(so.accepted, true, `sockops accepted ${JSON.stringify(so.refusals)}`);
  t.same(so.programs.map((p) => p.windows), [{ section: 'sockops', progType: WIN_PROG_TYPE.SOCK_OPS, attachType: WIN_ATTACH_TYPE.CGROUP_SOCK_OPS }]);
  t.same(so.maps, [{ name: 'rb', linuxType: MAP_TYPE.RINGBUF, windowsType: WIN_MAP_TYPE.PERF_EVENT_ARRAY, via: 'btf' }], 'its ring buffer (reserve/submit) becomes a Windows perf event array');
  t.equal(loadObject(so.bytes).map('rb')!.type, 14, 'read back from the rewritten BTF');
  t.same(callIds(so.bytes), [WIN_HELPER.map_lookup_elem, WIN_HELPER.perf_event_output], 'reserve -> scratch lookup (1), submit -> perf_event_output (32)');
  t.same(so.edits?.retype, [{ name: 'rb', type: WIN_MAP_TYPE.PERF_EVENT_ARRAY, keySize: 4, valueSize: 4, maxEntries: 0 }]);
  t.same(so.edits?.hostMaps?.map((h) => [h.type, h.keySize, h.valueSize, h.maxEntries]), [[WIN_MAP_TYPE.PERCPU_ARRAY, 4, 40, 1]]);
  t.match(so.steps.join('\n'), /bpf_ringbuf_reserve\(40 bytes\) -> per-CPU scratch map lookup/);
  t.match(so.caveats.join('\n'), /sockops_handler.*the op numbers differ \(Linux BPF_SOCK_OPS_ACTIVE_ESTABLISHED_CB 4/);
  t.match(so.steps.join('\n'), /context bpf_sock_ops loads op 0 -> 0, family 20 -> 4, local_port 68 -> 24, remote_port 64 -> 44, remote_ip4 24 -> 28, local_ip4 28 -> 8/);
  const soCode = loadObject(so.bytes).elf.section('sockops')!.data();
  const family = [...Array(soCode.length / 8).keys()].find((i) => soCode[i * 8] === 0x61 && new DataView(soCode.buffer, soCode.byteOffset + i * 8 + 2, 2).getInt16(0, true) === 4);
  t.ok(family !== undefined, 'a u32 load at Windows offset 4 (family) exists in the rewritten code');

  const reasons: Record<string, RegExp[]> = {
    bootstrap: [/program 'handle_exec' \(tp\/sched\/sched_process_exec\): .*no tracepoints/, /helper bpf_probe_read_kernel called by 'handle_exec'/, /helper bpf_get_current_comm/],
    execve: [/tracepoint\/syscalls\/sys_enter_execve\): .*no tracepoints/, /bpf_get_current_uid_gid.*bpf_get_current_logon_id/],
    opensnoop: [/sys_enter_openat\): .*no tracepoints/, /bpf_probe_read_user_str/],
    runqlat: [/program 'sched_switch' \(tp_btf\/sched_switch\): .*no tracepoints/],
    sockfilter: [/program 'socket_handler' \(socket\): .*no socket-level packet programs; packets are seen by xdp/, /helper bpf_skb_load_bytes called by 'socket_handler'/],
    uprobe: [/program 'uprobe_add' \(uprobe\): .*no user-space probes/, /program 'uretprobe_add' \(uretprobe\)/],
    lsm: [/program 'lsm_bprm_check' \(lsm\/bprm_check_security\): .*no LSM hooks/],
    kprobe: [/program 'do_unlinkat' \(kprobe\/do_unlinkat\): .*no kernel function probes/, /'do_unlinkat_exit' \(kretprobe\/do_unlinkat\)/],
    fentry: [/program 'unlink_entry' \(fentry\/do_unlinkat\): .*no BTF trampolines/, /'unlink_exit' \(fexit\/do_unlinkat\)/],
  };
  for (const [app, res] of Object.entries(reasons)) {
    const r = tr[app]!;
    t.equal(r.accepted, false, `${app} refused`);
    t.equal(Buffer.compare(r.bytes, fs.readFileSync(path.join(MATRIX, `${app}.bpf.o`))), 0, `${app}: bytes unchanged`);
    const text = r.refusals.map((x) => `${x.subject}: ${x.reason}`).join('\n');
    for (const re of res) t.match(text, re, `${app}: ${re}`);
  }
});

t.test('hostile objects: every mutation either translates, refuses or is an ObjectError, promptly', async (t) => {
  const base = fs.readFileSync(path.join(MATRIX, 'sockops.bpf.o'));
  const elf = loadObject(base).elf;
  const code = elf.section('sockops')!;
  const btf = elf.section('.BTF')!;
  let seed = 19;
  const rnd = (n: number): number => {
    seed = (seed * 1103515245 + 12345) >>> 0;
    return seed % n;
  };
  const outcomes = { accepted: 0, refused: 0, threw: 0 };
  const t0 = Date.now();
  for (let k = 0; k < 300; k++) {
    const b = new Uint8Array(base);
    const sec = k % 2 ? code : btf;
    for (let j = 0; j < 1 + rnd(4); j++) b[sec.offset + rnd(sec.size)] = rnd(256);
    try {
      const tr = translateForWindows(b);
      outcomes[tr.accepted ? 'accepted' : 'refused']++;
    } catch (e) {
      // only our object reader's errors (what is malformed, where), never a crash of the pass itself
      if (!(e instanceof ObjectError)) throw e;
      outcomes.threw++;
    }
  }
  t.ok(Date.now() - t0 < 60_000, `300 mutations in ${Date.now() - t0} ms (${JSON.stringify(outcomes)})`);
  t.equal(outcomes.accepted + outcomes.refused + outcomes.threw, 300);
});
