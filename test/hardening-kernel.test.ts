// Issue 14, the kernel backend: a guest reaches only its own maps (pinned-by-name maps are private,
// fd-valued and struct_ops maps are guarded), nothing it registers outlives the run (struct_ops through
// a BPF link, even after SIGKILL), queue/stack/bloom maps work on both map_operate paths, and no
// kernel-internal errno (ENOTSUPP, 524) reaches a guest. Everything on the real kernel.
import t from 'tap';
import { execFileSync, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { BUILD, FIXTURES, buildBpf, buildGuest, embed, kernelIds, kv, runCli, settledLeaks, startCli } from './helpers.js';
import { directPaths, kernelLibUnderTest } from './kernel-lib.js';
import { LinuxBackend } from '../backends/linux/index.js';
import { hostReport } from '../src/probe/fast.js';
import { planObject } from '../src/select/plan.js';
import { MAP_TYPE } from '../src/kernel/uapi.js';

/** struct_ops maps register through links here (the prober's struct_ops_link: Linux 6.4+) */
const structOpsLinks = (await hostReport()).features.struct_ops_link.state === 'yes';
import { guestErrno, toBackendError } from '../backends/linux/errors.js';
import { BackendError } from '../src/errors.js';
import { buildPolicy } from '../src/policy/policy.js';

const before = kernelIds();

// the objects, and the guest that embeds them (test/fixtures/hkobj.c)
const mapsObj = buildBpf(path.join(FIXTURES, 'hkobj.bpf.c'), path.join(BUILD, 'hkobj.bpf.o'));
const stFull = buildBpf(path.join(FIXTURES, 'hkobj_st.bpf.c'), path.join(BUILD, 'hkobj_st.full.bpf.o'));
const stObj = path.join(BUILD, 'hkobj_st.bpf.o');
// vmlinux.h's DWARF makes the object 600 KiB; BTF is all libbpf needs
if (!fs.existsSync(stObj) || fs.statSync(stObj).mtimeMs < fs.statSync(stFull).mtimeMs) execFileSync('llvm-strip-16', ['--strip-debug', stFull, '-o', stObj]);
const hdrs = [embed(mapsObj, 'hkobj_obj', path.join(BUILD, 'hkobj_obj.h')), embed(stObj, 'hkobj_st_obj', path.join(BUILD, 'hkobj_st_obj.h'))];
const wasm = buildGuest(path.join(FIXTURES, 'hkobj.c'), path.join(BUILD, 'hkobj.wasm'), [], hdrs);

const JS_PATH = { ...process.env, WASM_BPF_DIRECT_MAP_OPS: '0' };
const CC = 'wbkobj_cc';
const BPFFS = '/sys/fs/bpf';
const PINNED = path.join(BPFFS, 'wbkobj_pin');
const NEW_PIN = path.join(BPFFS, 'wbkobj_new');

function congestionControls(): string[] {
  return fs.readFileSync('/proc/sys/net/ipv4/tcp_available_congestion_control', 'utf8').trim().split(/\s+/);
}

/** a struct_ops of ours left registered (by a runtime without the fix): unregister it, report it */
function unregisterLeftovers(): number {
  const out = spawnSync('bpftool', ['-j', 'struct_ops', 'show'], { encoding: 'utf8' }).stdout;
  const list = JSON.parse(out || '[]') as Array<{ id: number; name: string }>;
  const ours = list.filter((s) => s.name === CC);
  for (const s of ours) spawnSync('bpftool', ['struct_ops', 'unregister', 'id', String(s.id)]);
  return ours.length;
}

/** 'exits 0', with the end of its stderr when it did not */
function exitMessage(r: { code: number | null; stderr: string }): string {
  return r.code === 0 ? 'exits 0' : `exits 0: ${r.stderr.slice(-3000)}`;
}

/** both map_operate paths: the C function the guest imports directly, and the host's JavaScript */
function bothPaths(t: Tap.Test, args: string[]): Record<string, string> {
  const direct = runCli(['--verbose', wasm, ...args]);
  t.equal(direct.code, 0, exitMessage(direct));
  if (directPaths()) t.match(direct.stderr, /map_operate: served by the backend directly/, 'the guest imports the C function');
  else t.match(direct.stderr, /map_operate: served by the host in JavaScript/, 'FFI path: the host serves it');
  const js = runCli(['--verbose', wasm, ...args], { env: JS_PATH });
  t.equal(js.code, 0, exitMessage(js));
  t.match(js.stderr, /map_operate: served by the host in JavaScript/);
  t.equal(direct.stdout, js.stdout, 'identical results on both paths');
  t.equal(kv(direct.stdout)['load'], '1');
  return kv(direct.stdout);
}

t.test('6. queue, stack and bloom filter maps (NULL keys): push, peek, pop, lookup, on both map_operate paths', async (t) => {
  const r = runCli([wasm, 'queues']);
  t.equal(r.code, 0, exitMessage(r));
  // before the fix the direct path answered -EFAULT without a syscall: key NULL became 4294967295
  for (const [name, order] of [['q', [10, 20, 30]], ['st', [30, 20, 10]]] as const) {
    for (const i of [1, 2, 3]) t.match(r.stdout, new RegExp(`^${name}_push${i}=0$`, 'm'), `${name}: push ${i}`);
    t.match(r.stdout, new RegExp(`^${name}_peek=0 value=${order[0]}$`, 'm'), `${name}: peek (lookup, NULL key)`);
    order.forEach((v, i) => t.match(r.stdout, new RegExp(`^${name}_pop${i + 1}=0 value=${v}$`, 'm'), `${name}: pop ${i + 1} (lookup-and-delete, 21)`));
    t.match(r.stdout, new RegExp(`^${name}_pop4=-2 `, 'm'), `${name}: empty: -ENOENT`);
    t.match(r.stdout, new RegExp(`^${name}_delete=-22$`, 'm'));
  }
  t.match(r.stdout, /^bloom_update=0$/m);
  t.match(r.stdout, /^bloom_lookup_present=0$/m);
  t.match(r.stdout, /^bloom_lookup_absent=-2$/m);
  t.match(r.stdout, /^bloom_delete=-95$/m);
  bothPaths(t, ['queues']);
});

t.test('12. map operations never return the kernel-internal ENOTSUPP (524): -EOPNOTSUPP (95), on both paths', async (t) => {
  const v = bothPaths(t, ['enotsupp']);
  // every map_operate on a ring buffer is ENOTSUPP in the kernel (kernel/bpf/ringbuf.c)
  for (const k of ['rb_lookup', 'rb_update', 'rb_delete', 'rb_next_key']) t.equal(v[k], '-95', k);
});

t.test('12. attach and load failures: the errno a guest gets is never the kernel-internal ENOTSUPP', async (t) => {
  // what the addon throws for a bpf() that failed with 524 (e.g. fentry attach on arm64 6.1)
  const native = Object.assign(new Error('bpf_program__attach: Operation not supported by this kernel (ENOTSUPP)'), { errno: 524, code: 'ENOTSUPP', op: 'bpf_program__attach', log: '' });
  const err = toBackendError(native, "program 'p'");
  t.equal(err.errno, 95, 'EOPNOTSUPP');
  t.match(err.message, /ENOTSUPP/, 'the host\'s message keeps the kernel\'s word');
  t.equal(guestErrno(524), 95);
  t.equal(guestErrno(1), 1);
});

t.test('maps whose values are fds: a guest names only its own maps, never a program, socket or other fd of the host', async (t) => {
  const v = bothPaths(t, ['fdvalues']);
  t.equal(v['outer_own'], '0', 'a map of maps takes one of the guest\'s own maps');
  t.equal(v['outer_foreign'], '-9', 'and not another fd of the host process (-EBADF)');
  t.equal(v['progs_guess'], '-1', 'a program array update (guessed program fds) is -EPERM');
  t.equal(v['progs_lookup'], '-2', 'the program array stayed empty');
  t.equal(v['socks_update'], '-1', 'a sockmap update naming a host fd is -EPERM');
  t.equal(v['devs_ifindex'], '0', 'a devmap entry with an interface only is fine');
  t.equal(v['devs_prog'], '-1', 'a devmap entry naming a program fd is -EPERM');
});

t.test('2. pinning = LIBBPF_PIN_BY_NAME: the maps are private to the run; nothing pinned is reused, nothing is pinned', async (t) => {
  if (spawnSync('mountpoint', ['-q', BPFFS]).status !== 0) spawnSync('mount', ['-t', 'bpf', 'bpf', BPFFS]);
  for (const p of [PINNED, NEW_PIN]) fs.rmSync(p, { force: true });
  t.teardown(() => {
    for (const p of [PINNED, NEW_PIN]) fs.rmSync(p, { force: true });
  });
  // another program's map, pinned where the object's map would be looked for
  execFileSync('bpftool', ['map', 'create', PINNED, 'type', 'hash', 'key', '4', 'value', '8', 'entries', '16', 'name', 'wbkobj_pin']);
  execFileSync('bpftool', ['map', 'update', 'pinned', PINNED, 'key', '1', '0', '0', '0', 'value', '7', '0', '0', '0', '0', '0', '0', '0']);
  const dump = (): string => execFileSync('bpftool', ['-j', 'map', 'dump', 'pinned', PINNED], { encoding: 'utf8' });
  const pinnedBefore = dump();
  const ours = (): string[] => fs.readdirSync(BPFFS).filter((n) => n.startsWith('wbkobj')).sort();

  for (const env of [process.env, JS_PATH]) {
    const r = runCli(['--verbose', wasm, 'pinned'], { env });
    t.equal(r.code, 0, exitMessage(r));
    const v = kv(r.stdout);
    t.equal(v['pin_lookup'], '-2', 'the guest does not see the pinned map\'s key 1');
    t.equal(v['pin_update'], '0', 'it writes its own private map');
    t.equal(v['new_update'], '0');
    t.match(r.stderr, /map 'wbkobj_pin': pinning at \/sys\/fs\/bpf\/wbkobj_pin ignored: the map is private to this run/, '--verbose says so');
    t.equal(dump(), pinnedBefore, 'the pinned map is unchanged');
    t.same(ours(), ['wbkobj_pin'], 'nothing new is pinned (no /sys/fs/bpf/wbkobj_new)');
  }

  // the policy switch: refuse such objects
  const backend = new LinuxBackend();
  const logs: string[] = [];
  const bytes = fs.readFileSync(mapsObj);
  const err = (() => {
    try {
      backend.load(bytes, { objectName: 'hkobj', verbose: false, log: (l) => logs.push(l), policy: buildPolicy({ pin: 'refuse' }) }).close();
      return undefined;
    } catch (e) {
      return e;
    }
  })();
  t.ok(err instanceof BackendError, 'pinning: refuse throws a BackendError');
  t.equal((err as BackendError).errno, 13, 'EACCES, as every policy refusal');
  t.match((err as BackendError).message, /map 'wbkobj_pin' is declared with pinning = LIBBPF_PIN_BY_NAME \(\/sys\/fs\/bpf\/wbkobj_pin\), and the policy allows no pinned objects/);
  const obj = backend.load(bytes, { objectName: 'hkobj', verbose: false, log: (l) => logs.push(l) });
  t.ok(obj.maps.some((m) => m.name === 'wbkobj_pin' && m.fd >= 0), 'the default (private) loads it');
  obj.close();

  // --allow-pin DIR: pins honoured below DIR only (shared between the tool's own runs, not with others)
  const root = `/sys/fs/bpf/wbkobj_root_${process.pid}`;
  fs.mkdirSync(root);
  t.teardown(() => fs.rmSync(root, { recursive: true, force: true }));
  const allow = buildPolicy({ pin: root });
  const first = backend.load(bytes, { objectName: 'hkobj', verbose: true, log: (l) => logs.push(l), policy: allow });
  t.ok(fs.existsSync(`${root}/wbkobj_pin`), 'pinned below the allowed directory');
  t.match(logs.join('\n'), new RegExp(`map 'wbkobj_pin': pinned at ${root}/wbkobj_pin`));
  const firstId = JSON.parse(execFileSync('bpftool', ['-j', 'map', 'show', 'pinned', `${root}/wbkobj_pin`], { encoding: 'utf8' })) as { id: number };
  first.close();
  const second = backend.load(bytes, { objectName: 'hkobj', verbose: false, log: (l) => logs.push(l), policy: allow });
  const secondMap = second.maps.find((m) => m.name === 'wbkobj_pin')!;
  const fdinfo = fs.readFileSync(`/proc/self/fdinfo/${secondMap.fd}`, 'utf8');
  t.match(fdinfo, new RegExp(`map_id:\\s*${firstId.id}\\b`), 'a later run reuses the map pinned there');
  second.close();
  backend.dispose();
  fs.rmSync(root, { recursive: true, force: true });
  t.same(ours(), ['wbkobj_pin']);
  t.equal(dump(), pinnedBefore, 'the map pinned by someone else at /sys/fs/bpf is never touched');
});

/** the kernel's value layout of a tcp_congestion_ops struct_ops map, from the running kernel's BTF */
function structOpsLayout(): string[] {
  const raw = execFileSync('bpftool', ['btf', 'dump', 'file', '/sys/kernel/btf/vmlinux', 'format', 'raw'], { encoding: 'utf8', maxBuffer: 1 << 28 });
  const struct = (name: string): { size: number; members: Map<string, number> } => {
    const m = new RegExp(`^\\[\\d+\\] STRUCT '${name}' size=(\\d+) vlen=(\\d+)\\n((?:\\t.*\\n)*)`, 'm').exec(raw);
    if (!m) throw new Error(`no struct ${name} in vmlinux BTF`);
    const members = new Map<string, number>();
    for (const l of m[3]!.matchAll(/^\t'([^']+)' type_id=\d+ bits_offset=(\d+)/gm)) members.set(l[1]!, Number(l[2]) / 8);
    return { size: Number(m[1]), members };
  };
  const value = struct('bpf_struct_ops_tcp_congestion_ops');
  const ops = struct('tcp_congestion_ops');
  return [value.size, value.members.get('data'), ...['ssthresh', 'cong_avoid', 'undo_cwnd', 'name'].map((n) => ops.members.get(n))].map(String);
}

t.test('3. struct_ops: the guest cannot register its map through map_operate, nor operate on its program fds', async (t) => {
  t.teardown(() => void unregisterLeftovers());
  const layout = structOpsLayout();
  const v = bothPaths(t, ['structops-hostile', ...layout]);
  t.equal(v['st_lookup'], '-1', 'map_operate on a struct_ops map: -EPERM');
  t.equal(v['st_update'], '-1', 'an update naming guessed program fds: -EPERM (before: 0, a congestion control registered)');
  t.equal(v['prog_fds_ebadf'], '5', 'the fds after the map (its programs) are not maps: -EBADF');
  t.notOk(congestionControls().includes(CC), 'no congestion control registered after the runs');
  t.equal(unregisterLeftovers(), 0, 'no struct_ops of the guest left registered');
  t.same(await settledLeaks(before), { progs: [], maps: [], links: [] }, 'no program, map or link left');
});

t.test('3. struct_ops attached by wasm_attach_bpf_program: registered while the run lasts, gone after exit and after SIGKILL', { skip: !structOpsLinks && 'needs Linux 6.4+ (BPF_F_LINK)' }, async (t) => {
  t.teardown(() => void unregisterLeftovers());
  // a normal run: every program of the skeleton attached (each registers the map once), then closed
  const r = runCli([wasm, 'structops-attach']);
  t.equal(r.code, 0, exitMessage(r));
  const v = kv(r.stdout);
  for (const k of ['attach_wbk_ssthresh', 'attach_wbk_undo_cwnd', 'attach_wbk_cong_avoid', 'attach_map', 'close']) t.equal(v[k], '0', k);
  t.notOk(congestionControls().includes(CC), 'unregistered after a normal exit');

  const run = startCli([wasm, 'structops-attach', '60']);
  await run.waitFor(/^# ready/m);
  t.ok(congestionControls().includes(CC), 'registered while the guest runs');
  run.child.kill('SIGKILL');
  const exit = await run.exited;
  t.equal(exit.signal, 'SIGKILL');
  const deadline = Date.now() + 3000;
  while (congestionControls().includes(CC) && Date.now() < deadline) await new Promise((res) => setTimeout(res, 50));
  t.notOk(congestionControls().includes(CC), 'the link died with the process: unregistered');
  t.equal(unregisterLeftovers(), 0);
  t.same(await settledLeaks(before), { progs: [], maps: [], links: [] }, 'no program, map or link left');
});

t.test('3. struct_ops without BPF_F_LINK (the pre-6.4 path): closing the object unregisters it', async (t) => {
  t.teardown(() => void unregisterLeftovers());
  const native = kernelLibUnderTest();
  const obj = native.open(fs.readFileSync(stObj), 'hkobj_st', {});
  try {
    native.load(obj);
    native.attachStructOps(obj, CC, false);
    t.ok(congestionControls().includes(CC), 'registered by libbpf\'s map update');
  } finally {
    native.close(obj);
  }
  t.notOk(congestionControls().includes(CC), 'close(obj) unregistered it');
  t.throws(() => native.attachStructOps(obj, CC, false), /closed|EBADF|ENOENT/, 'a closed object attaches nothing');
  t.same(await settledLeaks(before), { progs: [], maps: [], links: [] });
});

t.test('struct_ops links: the prober says (Linux 6.4+), the plan decides, the backend follows', async (t) => {
  const report = await hostReport();
  const f = report.features.struct_ops_link;
  t.equal(f.since, '6.4');
  const shape = { programs: [], maps: [{ name: 'cc', type: MAP_TYPE.STRUCT_OPS }] };
  t.equal(planObject(report, shape).structOpsLink === true, f.state === 'yes', 'the plan follows the report');
  const old = { ...report, features: { ...report.features, struct_ops_link: { ...f, state: 'no' as const, reason: 'needs Linux 6.4+ (this is 6.1)' } } };
  const p = planObject(old, shape);
  t.notOk(p.structOpsLink, 'no links on an older kernel');
  t.match(p.reasons.join('\n'), /struct_ops: no BPF links for struct_ops maps \(needs Linux 6\.4\+/);
  t.notOk(planObject(report, { programs: [], maps: [{ name: 'm', type: MAP_TYPE.HASH }] }).structOpsLink, 'only objects with struct_ops maps');
});

t.test('no kernel object left by this file', async (t) => {
  t.same(await settledLeaks(before), { progs: [], maps: [], links: [] });
});
