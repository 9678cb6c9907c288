// Tests of the native addon (native/, contract: backends/linux/native.ts) on the real kernel; run through the
// FFI libbpf path (backends/libbpf-ffi/) too by native-ffi.test.ts.
// Builds tiny eBPF objects with clang-16 at test time; needs root (bpf(), tracefs, AF_PACKET).
import t from 'tap';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { execFileSync } from 'node:child_process';
import { Worker } from 'node:worker_threads';
import { fileURLToPath } from 'node:url';
import type { NativeErrorFields } from '../backends/linux/native.js';
import { addonOnly, kernelLibUnderTest } from './kernel-lib.js';
import { Bytes, OP, T, buildModule } from '../src/wasm/writer.js';
import { WasmBpfHost } from '../src/abi/host.js';
import { LinuxBackend } from '../backends/linux/index.js';
import { StopSignal } from '../src/runtime/stop.js';
import type { ValType } from '../src/wasm/imports.js';
import v8 from 'node:v8';
import vm from 'node:vm';

const here = path.dirname(fileURLToPath(import.meta.url));
const addonFile = path.resolve(here, '../native/build/Release/wasm_bpf_native.node');

// enum values from <linux/bpf.h>
const BPF_PROG_TYPE_SOCKET_FILTER = 1;
const BPF_PROG_TYPE_TRACEPOINT = 5;
const BPF_MAP_TYPE_HASH = 1;
const BPF_MAP_TYPE_ARRAY = 2;
const BPF_MAP_TYPE_PERF_EVENT_ARRAY = 4;
const BPF_MAP_TYPE_RINGBUF = 27;
const LOOKUP = 1;
const UPDATE = 2;
const DELETE = 3;
const GET_NEXT_KEY = 4;
const BPF_ANY = 0;
const BPF_NOEXIST = 1;
const BPF_EXIST = 2;
const ENOENT = 2;
const EINTR = 4;
const EBADF = 9;
const EEXIST = 17;
const EINVAL = 22;
const ENOBUFS = 105;

const OBJ_SRC = String.raw`
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

char LICENSE[] SEC("license") = "GPL";

struct { __uint(type, BPF_MAP_TYPE_HASH); __uint(max_entries, 64); __type(key, __u32); __type(value, __u64); } hmap SEC(".maps");
/* ctl[0] = tgid to report, ctl[1] = sequence counter, ctl[2] = mode (1: every third record is big) */
struct { __uint(type, BPF_MAP_TYPE_ARRAY); __uint(max_entries, 4); __type(key, __u32); __type(value, __u64); } ctl SEC(".maps");
struct { __uint(type, BPF_MAP_TYPE_RINGBUF); __uint(max_entries, 256 * 1024); } rb SEC(".maps");
struct { __uint(type, BPF_MAP_TYPE_PERF_EVENT_ARRAY); __uint(key_size, 4); __uint(value_size, 4); } pb SEC(".maps");

struct small { __u32 pid; __u32 seq; };
struct big { __u32 pid; __u32 seq; __u8 fill[40]; };

SEC("tp/syscalls/sys_enter_getppid")
int wbn_tp_getppid(void *ctx)
{
	__u32 k0 = 0, k1 = 1, k2 = 2;
	__u64 *want = bpf_map_lookup_elem(&ctl, &k0);
	__u64 *seqp = bpf_map_lookup_elem(&ctl, &k1);
	__u64 *mode = bpf_map_lookup_elem(&ctl, &k2);
	if (!want || !seqp || !mode)
		return 0;
	__u32 pid = bpf_get_current_pid_tgid() >> 32;
	if (*want != pid)
		return 0;
	__u32 seq = *seqp;
	*seqp = seq + 1;
	if (*mode == 1 && seq % 3 == 2) {
		struct big b = { .pid = pid, .seq = seq };
		__builtin_memset(b.fill, 0xab, sizeof(b.fill));
		bpf_ringbuf_output(&rb, &b, sizeof(b), 0);
		bpf_perf_event_output(ctx, &pb, BPF_F_CURRENT_CPU, &b, sizeof(b));
	} else {
		struct small s = { .pid = pid, .seq = seq };
		bpf_ringbuf_output(&rb, &s, sizeof(s), 0);
		bpf_perf_event_output(ctx, &pb, BPF_F_CURRENT_CPU, &s, sizeof(s));
	}
	return 0;
}

SEC("socket")
int wbn_sock(struct __sk_buff *skb)
{
	return 0;
}

SEC("xdp")
int wbn_xdp(struct xdp_md *ctx)
{
	return XDP_PASS;
}

SEC("cgroup_skb/egress")
int wbn_cg(struct __sk_buff *skb)
{
	return 1;
}

/* counts calls in ctl[3] */
SEC("uprobe")
int wbn_up(void *ctx)
{
	__u32 k3 = 3;
	__u64 *n = bpf_map_lookup_elem(&ctl, &k3);
	if (n)
		__sync_fetch_and_add(n, 1);
	return 0;
}

SEC("perf_event")
int wbn_pe(void *ctx)
{
	return 0;
}
`;

// dereferences a scalar: the verifier must reject it
const BAD_SRC = String.raw`
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

char LICENSE[] SEC("license") = "GPL";

SEC("socket")
int wbn_bad(struct __sk_buff *skb)
{
	int *p = (int *)(long)skb->len;
	return *p;
}
`;

type NativeError = Error & NativeErrorFields;

function caught(fn: () => unknown): NativeError {
  try {
    fn();
  } catch (e) {
    return e as NativeError;
  }
  throw new Error('expected an exception');
}

const native = kernelLibUnderTest();
const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'wasm-bpf-native-'));
t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));

function compile(name: string, src: string): Uint8Array {
  const c = path.join(dir, `${name}.bpf.c`);
  const o = path.join(dir, `${name}.bpf.o`);
  fs.writeFileSync(c, src);
  // <linux/bpf.h> needs <asm/types.h>, which Debian keeps in the multiarch include directory
  const multiarch = execFileSync('gcc', ['-print-multiarch'], { encoding: 'utf8' }).trim() || `${os.arch() === 'arm64' ? 'aarch64' : 'x86_64'}-linux-gnu`;
  try {
    execFileSync('clang-16', ['-g', '-O2', '-target', 'bpf', `-I/usr/include/${multiarch}`, '-c', c, '-o', o], { stdio: 'pipe' });
  } catch (e) {
    const err = e as { stderr?: Buffer };
    throw new Error(`clang-16 failed on ${name}.bpf.c:\n${err.stderr?.toString() ?? String(e)}`);
  }
  return new Uint8Array(fs.readFileSync(o));
}

function ensureTracefs(): void {
  const p = '/sys/kernel/tracing';
  let empty = true;
  try {
    empty = fs.readdirSync(p).length === 0;
  } catch {
    empty = true;
  }
  if (empty) execFileSync('mount', ['-t', 'tracefs', 'nodev', p], { stdio: 'pipe' });
}

/** number of loaded kernel programs with that name */
function progCount(name: string): number {
  const out = execFileSync('bpftool', ['-j', 'prog', 'show'], { encoding: 'utf8', maxBuffer: 64 << 20 });
  const list = JSON.parse(out || '[]') as Array<{ name?: string }>;
  return list.filter((p) => p.name === name).length;
}

/** whether an XDP program is attached to lo */
function xdpOn(): boolean {
  const out = execFileSync('bpftool', ['-j', 'net', 'show', 'dev', 'lo'], { encoding: 'utf8' });
  const net = JSON.parse(out) as Array<{ xdp?: unknown[] }>;
  return (net[0]?.xdp ?? []).length > 0;
}

async function eventually(cond: () => boolean, ms = 3000): Promise<boolean> {
  const end = Date.now() + ms;
  for (;;) {
    if (cond()) return true;
    if (Date.now() > end) return false;
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** decodes the [u32 size][u32 0][bytes, padded to 8] records bufferPoll wrote */
function records(out: ArrayBuffer, n: number): Uint8Array[] {
  const dv = new DataView(out);
  const recs: Uint8Array[] = [];
  let off = 0;
  for (let i = 0; i < n; i++) {
    const size = dv.getUint32(off, true);
    if (dv.getUint32(off + 4, true) !== 0) throw new Error('reserved header word not 0');
    recs.push(new Uint8Array(out.slice(off + 8, off + 8 + size)));
    off += 8 + ((size + 7) & ~7);
  }
  return recs;
}

function pidSeq(rec: Uint8Array): { pid: number; seq: number } {
  const dv = new DataView(rec.buffer, rec.byteOffset, rec.byteLength);
  return { pid: dv.getUint32(0, true), seq: dv.getUint32(4, true) };
}

/** getppid() from this process: Node's process.ppid getter performs the syscall every time */
function trigger(n: number): void {
  for (let i = 0; i < n; i++) void process.ppid;
}

// guest memory, as the runtime uses it: key at 0, value at 16
const memory = new WebAssembly.Memory({ initial: 1 });
const mem = memory.buffer;
const dv = new DataView(mem);
const KEY = 0;
const VAL = 16;

function setCtl(fd: number, key: number, value: number): void {
  dv.setUint32(KEY, key, true);
  dv.setBigUint64(VAL, BigInt(value), true);
  const r = native.mapOp(UPDATE, fd, mem, KEY, VAL, BPF_ANY);
  if (r !== 0) throw new Error(`ctl update failed: ${r}`);
}

ensureTracefs();
const objBytes = compile('wbn', OBJ_SRC);
const badBytes = compile('wbn_bad', BAD_SRC);

let obj = 0;
const fds: Record<string, number> = {};


/** registers a test only where its feature exists (the addon's fast calls and per-thread hook are not part of the
 * FFI path, native-ffi.test.ts): elsewhere one comment says what is not run and why (no skip counted) */
const where = (applies: string | false, name: string): typeof t.test => {
  if (applies === false) return t.test.bind(t);
  t.comment(`not on this path: ${name}: ${applies}`);
  return (() => Promise.resolve()) as unknown as typeof t.test;
};

t.test('open, programs, maps before load', async (t) => {
  obj = native.open(objBytes, 'wbn', { logLevel: 0 });
  t.ok(Number.isInteger(obj) && obj > 0, 'object id > 0');
  const progs = native.programs(obj);
  const tp = progs.find((p) => p.name === 'wbn_tp_getppid');
  const sock = progs.find((p) => p.name === 'wbn_sock');
  t.match(tp, { section: 'tp/syscalls/sys_enter_getppid', type: BPF_PROG_TYPE_TRACEPOINT });
  t.match(sock, { section: 'socket', type: BPF_PROG_TYPE_SOCKET_FILTER });
  t.equal(typeof tp?.expectedAttachType, 'number');
  const maps = native.maps(obj);
  t.match(maps.find((m) => m.name === 'hmap'), { type: BPF_MAP_TYPE_HASH, keySize: 4, valueSize: 8, maxEntries: 64, fd: -1 });
  t.match(maps.find((m) => m.name === 'ctl'), { type: BPF_MAP_TYPE_ARRAY, keySize: 4, valueSize: 8, maxEntries: 4, fd: -1 });
  t.match(maps.find((m) => m.name === 'rb'), { type: BPF_MAP_TYPE_RINGBUF, maxEntries: 256 * 1024, fd: -1 });
  t.match(maps.find((m) => m.name === 'pb'), { type: BPF_MAP_TYPE_PERF_EVENT_ARRAY, keySize: 4, valueSize: 4, fd: -1 });
});

t.test('load', async (t) => {
  const before = progCount('wbn_tp_getppid');
  native.load(obj);
  for (const m of native.maps(obj)) {
    t.ok(m.fd >= 0, `${m.name} has an fd after load`);
    fds[m.name] = m.fd;
  }
  t.equal(progCount('wbn_tp_getppid'), before + 1, 'program is in the kernel');
  native.takeLog();
});

t.test('mapOp on a hash map and an array map', async (t) => {
  const fd = fds.hmap!;
  dv.setUint32(KEY, 1, true);
  dv.setBigUint64(VAL, 42n, true);
  t.equal(native.mapOp(UPDATE, fd, mem, KEY, VAL, BPF_ANY), 0, 'update BPF_ANY');
  t.equal(native.mapOp(UPDATE, fd, mem, KEY, VAL, BPF_NOEXIST), -EEXIST, 'BPF_NOEXIST on an existing key');
  dv.setUint32(KEY, 2, true);
  t.equal(native.mapOp(UPDATE, fd, mem, KEY, VAL, BPF_EXIST), -ENOENT, 'BPF_EXIST on a missing key');
  t.equal(native.mapOp(LOOKUP, fd, mem, KEY, VAL, 0), -ENOENT, 'lookup of a missing key');
  dv.setUint32(KEY, 1, true);
  dv.setBigUint64(VAL, 0n, true);
  t.equal(native.mapOp(LOOKUP, fd, mem, KEY, VAL, 0), 0, 'lookup');
  t.equal(dv.getBigUint64(VAL, true), 42n, 'value read into guest memory');
  // GET_NEXT_KEY: NULL key gives the first key; the next key goes to valOff
  dv.setUint32(32, 0xffffffff, true);
  t.equal(native.mapOp(GET_NEXT_KEY, fd, mem, -1, 32, 0), 0, 'first key');
  t.equal(dv.getUint32(32, true), 1);
  t.equal(native.mapOp(GET_NEXT_KEY, fd, mem, 32, 36, 0), -ENOENT, 'no key after the last');
  t.equal(native.mapOp(DELETE, fd, mem, KEY, -1, 0), 0, 'delete');
  t.equal(native.mapOp(DELETE, fd, mem, KEY, -1, 0), -ENOENT, 'delete again');
  t.equal(native.mapOp(GET_NEXT_KEY, fd, mem, -1, 32, 0), -ENOENT, 'empty map has no first key');

  const afd = fds.ctl!;
  dv.setUint32(KEY, 3, true);
  dv.setBigUint64(VAL, 7n, true);
  t.equal(native.mapOp(LOOKUP, afd, mem, KEY, VAL, 0), 0, 'array lookup');
  t.equal(dv.getBigUint64(VAL, true), 0n, 'array slots start zeroed');
  t.equal(native.mapOp(DELETE, afd, mem, KEY, -1, 0), -EINVAL, 'array elements cannot be deleted');
  dv.setUint32(KEY, 4, true);
  t.equal(native.mapOp(UPDATE, afd, mem, KEY, VAL, BPF_ANY), -7 /* E2BIG */, 'index past max_entries');

  t.equal(native.mapOp(LOOKUP, 999999, mem, KEY, VAL, 0), -EBADF, 'bad fd gives -EBADF');
  t.equal(native.mapOp(99, fd, mem, KEY, VAL, 0), -EINVAL, 'unknown command gives -EINVAL');
  t.equal(native.mapOp(LOOKUP, fd, 'nope' as unknown as ArrayBuffer, KEY, VAL, 0), -EINVAL, 'never throws');
});

let tpLink = 0;

where(native.fastCalls ? false : 'no V8 fast calls in this build', 'guestMapOpen')('guestMapOpen: map_operate in C for one guest, its slots and their reuse', async (t) => {
  const { guestMapOpen: open, guestMapBind: bind, guestMapSet: set, guestMapClose: close, guestMapRelease: release } = native;
  if (!open || !bind || !set || !close || !release) throw new Error('fastCalls without the guestMap functions');
  const opened = open();
  t.ok(opened, 'a slot');
  const [slot, fn] = opened!;
  const op = fn as unknown as (fd: number, cmd: number, key: number, value: number, next: number, flags: bigint) => number;
  const fd = fds.hmap!;
  const gm = new WebAssembly.Memory({ initial: 1 });
  const gdv = (): DataView => new DataView(gm.buffer);
  t.equal(op(fd, LOOKUP, 0, 16, 0, 0n), -EBADF, 'a map the guest does not own: -EBADF');
  t.ok(set(slot, fd, 4, 8), 'map registered');
  t.equal(op(fd, LOOKUP, 0, 16, 0, 0n), -14, 'no memory bound yet: -EFAULT');
  t.ok(bind(slot, gm.buffer), 'memory bound');
  t.notOk(bind(slot, 'x' as unknown as ArrayBuffer), 'bind refuses what is not a buffer');
  gdv().setUint32(0, 9, true);
  gdv().setBigUint64(16, 99n, true);
  t.equal(op(fd, UPDATE, 0, 16, 0, 0n), 0, 'update');
  t.equal(op(fd, UPDATE, 0, 16, 0, BigInt(BPF_NOEXIST)), -EEXIST, 'flags reach the kernel');
  t.equal(op(fd, UPDATE, 0, 16, 0, 1n << 40n), -EINVAL, 'flags past 32 bits: -EINVAL');
  t.equal(op(fd, LOOKUP, 65536 - 2, 16, 0, 0n), -14, 'key past the end of memory: -EFAULT');
  t.equal(op(fd, LOOKUP, 0, 65536 - 4, 0, 0n), -14, 'value past the end of memory: -EFAULT');
  t.equal(op(fd, 99, 0, 16, 0, 0n), -EINVAL, 'unknown command: -EINVAL');
  // grown memory: the same store, a longer length
  gm.grow(1);
  gdv().setBigUint64(65536 + 8, 0n, true);
  t.equal(op(fd, LOOKUP, 0, 65536 + 8, 0, 0n), 0, 'a value in memory grown after the bind');
  t.equal(gdv().getBigUint64(65536 + 8, true), 99n, 'lands there');
  // a Wasm module importing it as wasm_bpf_map_operate calls the C function directly
  const loop = wasmCaller(fn);
  const before = native.fastCallCount!();
  gdv().setBigUint64(24, 0n, true);
  t.equal(loop(20000, fd, LOOKUP, 0, 24), 0, 'lookups from Wasm: 0');
  t.equal(gdv().getBigUint64(24, true), 99n, 'the value arrived');
  t.equal(loop(10, fd, LOOKUP, 0, 65536 * 2 - 4), -14, 'from Wasm, a value past the end: -EFAULT');
  t.ok(native.fastCallCount!() - before >= 20000, `every call from Wasm took the fast path (${native.fastCallCount!() - before})`);
  t.ok(set(slot, fd), 'map forgotten');
  t.equal(op(fd, LOOKUP, 0, 16, 0, 0n), -EBADF, 'forgotten: -EBADF');
  set(slot, fd, 4, 8);
  close(slot);
  t.equal(op(fd, LOOKUP, 0, 16, 0, 0n), -EBADF, 'closed: -EBADF, even for a map it had');

  // 64 slots, each free again only when released (the ABI layer does it once the guest's instance
  // is collected); a slot's function is made once
  const held: Array<[number, unknown]> = [];
  for (let r = open(); r; r = open()) held.push(r);
  t.equal(held.length, 63, 'the other 63 slots');
  t.equal(open(), null, 'all taken: null (the guest then gets the JavaScript path)');
  close(held[5]![0]);
  t.equal(open(), null, 'closed is not released');
  release(slot);
  const again = open();
  t.equal(again?.[0], slot, 'a released slot is handed out again');
  t.equal(again?.[1], fn, 'with the same function');
  t.equal(op(fd, LOOKUP, 0, 16, 0, 0n), -EBADF, 'starting empty: nothing of the previous guest');
  for (const [s] of held) release(s);
  release(slot);
});

where(native.fastCalls ? false : 'no V8 fast calls in this build', 'direct map_operate slots')('the ABI layer gives a guest\'s direct map_operate slot back once its instance is collected', async (t) => {
  const freeSlots = (): number => {
    const held: number[] = [];
    for (let r = native.guestMapOpen!(); r; r = native.guestMapOpen!()) held.push(r[0]);
    for (const s of held) native.guestMapRelease!(s);
    return held.length;
  };
  const before = freeSlots();
  const shape = {
    imports: [{ module: 'wasm_bpf', name: 'wasm_bpf_map_operate', kind: 'func' as const, type: { params: ['i32', 'i32', 'i32', 'i32', 'i32', 'i64'] as ValType[], results: ['i32'] as ValType[] } }],
    exports: [],
  };
  let instance: { exports: { memory: WebAssembly.Memory } } | undefined = { exports: { memory: new WebAssembly.Memory({ initial: 1 }) } };
  ((inst) => {
    const host = new WasmBpfHost({
      backend: new LinuxBackend(native),
      objectName: 't',
      verbose: false,
      wrapperModule: 'callback-wrapper',
      callbackExport: 'go-callback',
      stop: new StopSignal(),
      log: () => {},
    });
    const imports = host.imports(shape);
    t.not(imports['wasm_bpf']!['wasm_bpf_map_operate'], undefined);
    host.bind(inst as unknown as WebAssembly.Instance);
  })(instance);
  t.equal(freeSlots(), before - 1, 'the guest holds one slot');
  instance = undefined;
  v8.setFlagsFromString('--expose-gc');
  const gc = vm.runInNewContext('gc') as () => void;
  let after = 0;
  for (let i = 0; i < 20 && after !== before; i++) {
    gc();
    await new Promise((r) => setTimeout(r, 10));
    after = freeSlots();
  }
  t.equal(after, before, 'after the instance is collected, the slot is free again');
});

/**
 * A Wasm module importing `fn` with parameter types `imp` (result i32): loop(n, a1..ak) calls it n
 * times with a1..ak followed by zeros for the import's remaining parameters, and returns the last result.
 */
function wasmLoop(fn: unknown, imp: number[], k: number): (n: number, ...args: Array<number | bigint>) => number {
  const b = new Bytes();
  const get = (l: number): Bytes => b.byte(OP.local_get).u32(l);
  b.byte(OP.loop).byte(T.void);
  for (let i = 1; i <= k; i++) get(i);
  for (const ty of imp.slice(k)) b.byte(ty === T.i64 ? OP.i64_const : OP.i32_const).s32(0);
  b.byte(OP.call).u32(0).byte(OP.local_set).u32(k + 1);
  get(0); b.byte(OP.i32_const).s32(1).byte(OP.i32_sub).byte(OP.local_tee).u32(0).byte(OP.br_if).u32(0);
  b.byte(OP.end);
  get(k + 1);
  const bytes = buildModule({
    types: [
      { params: imp, results: [T.i32] },
      { params: [T.i32, ...imp.slice(0, k)], results: [T.i32] },
    ],
    funcImports: [{ module: 'm', name: 'f', type: 0 }],
    globals: [],
    funcs: [{ type: 1, locals: [[1, T.i32]], body: b.out() }],
    exports: [{ name: 'loop', kind: 'func', index: 1 }],
  });
  const inst = new WebAssembly.Instance(new WebAssembly.Module(bytes), { m: { f: fn as () => number } });
  return inst.exports['loop'] as (n: number, ...args: Array<number | bigint>) => number;
}

/** the guest's wasm_bpf_map_operate import (i32 pointers): loop(n, fd, cmd, key, value), next and flags 0 */
const wasmCaller = (fn: unknown): ((n: number, fd: number, cmd: number, key: number, value: number) => number) =>
  wasmLoop(fn, [T.i32, T.i32, T.i32, T.i32, T.i32, T.i64], 4);

/** DirectPoll's fill as pollgate.ts imports it: loop(n, handle, fd, stage, len), timeout and more 0 */
const wasmFillCaller = (fill: unknown): ((n: number, handle: bigint, fd: number, stage: number, len: number) => number) =>
  wasmLoop(fill, [T.i64, T.i32, T.i32, T.i32, T.i32, T.i32], 4);

where(addonOnly('V8 fast calls'), 'the V8 fast path')('mapOp and bufferPoll called from optimized code (the V8 fast path) give the same results', async (t) => {
  // Node 20 on x86-64 (V8 11.3): the addon registers both with a V8 fast call (native/src/fastcall.h)
  const expectFast = process.arch === 'x64' && process.versions.v8.startsWith('11.3.');
  t.equal(native.fastCalls, expectFast, `fast calls ${expectFast ? 'built' : 'not built'} for V8 ${process.versions.v8} on ${process.arch}`);
  const u8 = new Uint8Array(mem);
  const fd = fds.hmap!;
  dv.setUint32(KEY, 5, true);
  dv.setBigUint64(VAL, 77n, true);
  t.equal(native.mapOp(UPDATE, fd, u8, KEY, VAL, BPF_ANY), 0, 'update');
  const cases: Array<[string, number, number, number, number, number, number]> = [
    ['lookup', LOOKUP, fd, KEY, VAL + 8, 0, 0],
    ['unknown fd', LOOKUP, 999999, KEY, VAL, 0, -EBADF],
    ['value offset past the memory', LOOKUP, fd, KEY, mem.byteLength, 0, -14],
    ['fractional offset', LOOKUP, fd, 0.5, VAL, 0, -EINVAL],
    ['unknown command', 99, fd, KEY, VAL, 0, -EINVAL],
    ['BPF_NOEXIST on an existing key', UPDATE, fd, KEY, VAL, BPF_NOEXIST, -EEXIST],
  ];
  const op = (c: (typeof cases)[number]): number => native.mapOp(c[1], c[2], u8, c[3], c[4], c[5]);
  const seen = cases.map(() => new Set<number>());
  const before = native.fastCallCount!();
  let wrongValue = 0;
  // until V8 has optimized the loop and 10,000 calls took the fast path (at most 400,000 rounds: on a
  // busy machine the optimizing compile can come late)
  for (let i = 0; i < 400_000 && (i < 20_000 || (expectFast && native.fastCallCount!() - before < 10_000)); i++) {
    for (let j = 0; j < cases.length; j++) {
      dv.setBigUint64(VAL + 8, 0n, true);
      seen[j]!.add(op(cases[j]!));
      if (j === 0 && dv.getBigUint64(VAL + 8, true) !== 77n) wrongValue++;
    }
  }
  cases.forEach((c, j) => t.same([...seen[j]!], [c[6]], `${c[0]}: ${c[6]} on every call`));
  t.equal(wrongValue, 0, 'every lookup wrote the value at its offset');
  if (expectFast) t.ok(native.fastCallCount!() - before > 10000, `calls took the fast path (${native.fastCallCount!() - before})`);

  const buf = native.ringbufOpen(fds.rb!);
  const out = new Uint8Array(4096);
  const poll = (id: number): number => native.bufferPoll(id, 0, -1, out);
  const polled = new Set<number>();
  const bad = new Set<number>();
  const before2 = native.fastCallCount!();
  for (let i = 0; i < 1_000_000 && (i < 20_000 || (expectFast && native.fastCallCount!() - before2 < 10_000)); i++) {
    polled.add(poll(buf));
    bad.add(poll(987654));
  }
  native.bufferClose(buf);
  t.same([...polled], [0], 'empty ring buffer: 0 on every poll');
  t.same([...bad], [-EBADF], 'unknown buffer: -EBADF on every poll');
  if (expectFast) t.ok(native.fastCallCount!() - before2 > 10000, `polls took the fast path (${native.fastCallCount!() - before2})`);
});

t.test('attachAuto a tracepoint, ring buffer records', async (t) => {
  setCtl(fds.ctl!, 0, process.pid);
  setCtl(fds.ctl!, 1, 0);
  setCtl(fds.ctl!, 2, 0);
  tpLink = native.attachAuto(obj, 'wbn_tp_getppid');
  t.ok(tpLink > 0, 'link id > 0');
  const buf = native.ringbufOpen(fds.rb!);
  t.ok(buf > 0, 'buffer id > 0');
  const out = new ArrayBuffer(4096);
  t.equal(native.bufferPoll(buf, 0, -1, out), 0, 'nothing yet');
  trigger(3);
  const n = native.bufferPoll(buf, 1000, -1, out);
  t.equal(n, 3, 'three records');
  const recs = records(out, n).map(pidSeq);
  t.same(recs, [0, 1, 2].map((seq) => ({ pid: process.pid, seq })), 'pid and sequence');
  t.equal(native.bufferPendingSize(buf), 0);
  t.equal(native.bufferLost(buf), 0);
  // timeout
  const t0 = Date.now();
  t.equal(native.bufferPoll(buf, 150, -1, out), 0, 'times out with 0');
  t.ok(Date.now() - t0 >= 140, 'waited for the timeout');
  native.bufferClose(buf);
  native.bufferClose(buf); // idempotent
  t.equal(native.bufferPoll(buf, 0, -1, out), -EBADF, 'closed buffer gives -EBADF');
});

t.test('ring buffer: tiny out buffer, pending records, -ENOBUFS, order kept', async (t) => {
  setCtl(fds.ctl!, 1, 0);
  setCtl(fds.ctl!, 2, 1); // every third record is 48 bytes (needs 56 bytes of out)
  const buf = native.ringbufOpen(fds.rb!);
  const N = 30;
  trigger(N);
  const seqs: number[] = [];
  const small = new ArrayBuffer(32); // two 8-byte records (16 bytes each) fit, a big one never does
  const large = new ArrayBuffer(64);
  let enobufs = 0;
  for (let guard = 0; guard < 200 && seqs.length < N; guard++) {
    const n = native.bufferPoll(buf, 0, -1, small);
    if (n === -ENOBUFS) {
      enobufs++;
      t.equal(native.bufferPendingSize(buf), 48, 'pending size is the record size');
      const m = native.bufferPoll(buf, 0, -1, large);
      t.equal(m, 1, 'the big record alone');
      const [rec] = records(large, 1);
      t.equal(rec!.length, 48);
      t.ok(rec!.subarray(8).every((b) => b === 0xab), 'payload intact');
      seqs.push(pidSeq(rec!).seq);
      continue;
    }
    t.ok(n >= 0, `poll result ${n}`);
    for (const rec of records(small, n)) {
      t.equal(rec.length, 8);
      seqs.push(pidSeq(rec).seq);
    }
  }
  t.same(seqs, Array.from({ length: N }, (_, i) => i), 'every record, in order');
  t.equal(enobufs, N / 3, 'one -ENOBUFS per big record');
  t.equal(native.bufferPoll(buf, 0, -1, large), 0, 'drained');
  native.bufferClose(buf);
});

where(native.fastCalls ? false : 'no V8 fast calls in this build', 'guestPoll')('guestPoll: a ring buffer polled in C straight into guest memory, for registered handles and fds only', async (t) => {
  const { guestMapOpen: open, guestMapBind: bind, guestMapRelease: release } = native;
  const { guestPollFunctions: fns, guestPollBind: pbind, guestPollSet: pset, guestPollHandle: phandle, guestPollBusy: pbusy } = native;
  if (!open || !bind || !release || !fns || !pbind || !pset || !phandle || !pbusy) throw new Error('fastCalls without the guestPoll functions');
  const SLOW = -65536;
  const EBUSY = 16;
  const [slot] = open()!;
  const pair = fns(slot)!;
  t.ok(pair, 'the slot\'s fill and done');
  const fill = pair[0] as unknown as (h: bigint, fd: number, stage: number, len: number, timeout: number, more: number) => number;
  const done = pair[1] as unknown as (fd: number) => number;
  setCtl(fds.ctl!, 1, 0);
  setCtl(fds.ctl!, 2, 0);
  const buf = native.ringbufOpen(fds.rb!);
  const scratch = new ArrayBuffer(65536);
  while (native.bufferPoll(buf, 0, -1, scratch) > 0); // what earlier tests left
  const gm = new WebAssembly.Memory({ initial: 1 });
  const FD = 7; // the guest's number for the map: any
  t.equal(fill(1n, FD, 1024, 4096, 0, 0), SLOW, 'nothing registered: the host\'s path');
  t.ok(phandle(slot, 1, true), 'handle 1 open');
  t.equal(fill(1n, FD, 1024, 4096, 0, 0), SLOW, 'an fd that is not registered');
  t.ok(pset(slot, FD, buf), 'fd registered with the record buffer');
  t.equal(fill(1n, FD, 1024, 4096, 0, 0), SLOW, 'no memory bound yet');
  t.ok(bind(slot, gm.buffer));
  t.equal(fill(2n, FD, 1024, 4096, 0, 0), SLOW, 'a handle that is not open');
  t.equal(fill(0n, FD, 1024, 4096, 0, 0), SLOW, 'handle 0');
  t.equal(fill(1n, FD, 65536 - 100, 4096, 0, 0), SLOW, 'a staging area past the end of memory');
  t.equal(fill(1n, FD, -8, 16, 0, 0), SLOW, 'a negative (huge unsigned) stage');
  t.equal(fill(1n, FD, 1024, 4096, 0, 0), 0, 'empty ring: 0');
  trigger(5);
  const n = fill(1n, FD, 1024, 4096, 0, 0);
  t.equal(n, 5, 'five records');
  t.same(records(gm.buffer.slice(1024, 1024 + 4096), n).map(pidSeq), [0, 1, 2, 3, 4].map((seq) => ({ pid: process.pid, seq })), 'written into guest memory at the stage');
  t.ok(pbusy(slot, FD), 'busy while its records are delivered');
  t.equal(fill(1n, FD, 1024, 4096, 0, 0), -EBUSY, 'a new poll of it meanwhile (from a callback): -EBUSY');
  trigger(2);
  t.equal(fill(1n, FD, 1024, 4096, 0, 1), 2, 'the same poll going on (more = 1) gets the next records');
  t.equal(done(FD), 0);
  t.notOk(pbusy(slot, FD), 'done: not busy');
  trigger(3);
  t.equal(fill(1n, FD, 1024, 32, 0, 0), 2 | (1 << 30), 'two 16-byte records fill 32 bytes: the count | kMore (the ring has more)');
  t.equal(fill(1n, FD, 1024, 32, 0, 1), 1, 'the third (queued when it did not fit), without kMore');
  t.same(records(gm.buffer.slice(1024, 1024 + 32), 1).map(pidSeq), [{ pid: process.pid, seq: 9 }], 'in order');
  done(FD);
  // a record larger than the staging area: -ENOBUFS, and it waits (first) for the host's larger buffer
  trigger(1);
  t.equal(fill(1n, FD, 1024, 8, 0, 0), -ENOBUFS, '16 bytes do not fit 8');
  t.equal(native.bufferPoll(buf, 0, -1, scratch), 1, 'the host\'s poll gets it');
  t.equal(pidSeq(records(scratch, 1)[0]!).seq, 10, 'in order');
  // a timed wait, and the stop flag
  const t0 = Date.now();
  t.equal(fill(1n, FD, 1024, 4096, 120, 0), 0, 'a timed wait on an empty ring: 0');
  t.ok(Date.now() - t0 >= 100, 'after the timeout');
  const stop = new SharedArrayBuffer(4);
  t.ok(pbind(slot, -1, stop), 'stop flag bound');
  t.notOk(pbind(slot, -1, new SharedArrayBuffer(2)), 'a stop flag smaller than an int32 is refused');
  Atomics.store(new Int32Array(stop), 0, 2);
  trigger(1);
  t.equal(fill(1n, FD, 1024, 4096, 0, 0), -EINTR, 'stopped: -EINTR, records left for nobody');
  Atomics.store(new Int32Array(stop), 0, 0);
  t.equal(fill(1n, FD, 1024, 4096, 0, 0), 1, 'the record is still there');
  done(FD);
  // from Wasm: the import is the C function
  const loop = wasmFillCaller(pair[0]);
  const before = native.fastCallCount!();
  t.equal(loop(20000, 1n, FD, 1024, 4096), 0, 'polls from Wasm: an empty ring');
  trigger(3);
  t.equal(loop(1, 1n, FD, 1024, 4096), 3, 'and records');
  done(FD);
  t.ok(native.fastCallCount!() - before >= 20000, `every call from Wasm took the fast path (${native.fastCallCount!() - before})`);
  t.ok(phandle(slot, 1, false));
  t.equal(fill(1n, FD, 1024, 4096, 0, 0), SLOW, 'a closed handle');
  phandle(slot, 1, true);
  t.ok(pset(slot, FD, -1), 'fd unregistered');
  t.equal(fill(1n, FD, 1024, 4096, 0, 0), SLOW, 'unregistered: the host\'s path');
  pset(slot, FD, buf);
  native.bufferClose(buf);
  t.equal(fill(1n, FD, 1024, 4096, 0, 0), -EBADF, 'a closed record buffer: -EBADF');
  release(slot);
  t.equal(fill(1n, FD, 1024, 4096, 0, 0), SLOW, 'a released slot forgot everything');
});

t.test('perf buffer: records, pending with a tiny out buffer, lost counter', async (t) => {
  setCtl(fds.ctl!, 1, 0);
  setCtl(fds.ctl!, 2, 0);
  const buf = native.perfbufOpen(fds.pb!, 8);
  t.ok(buf > 0);
  const N = 12;
  trigger(N);
  const out = new ArrayBuffer(24); // one perf record (8 + 12 bytes of raw sample, padded: 24) per poll
  const seqs: number[] = [];
  for (let guard = 0; guard < 100 && seqs.length < N; guard++) {
    const n = native.bufferPoll(buf, 200, -1, out);
    t.ok(n >= 0, `poll result ${n}`);
    for (const rec of records(out, n)) {
      t.ok(rec.length >= 8);
      const { pid, seq } = pidSeq(rec);
      t.equal(pid, process.pid);
      seqs.push(seq);
    }
  }
  // per-CPU buffers: the order across CPUs is not defined, completeness is
  t.same([...seqs].sort((a, b) => a - b), Array.from({ length: N }, (_, i) => i), 'every record once');
  t.equal(native.bufferLost(buf), 0, 'nothing lost');
  t.equal(native.bufferPendingSize(buf), 0);
  native.bufferClose(buf);
});

t.test('bufferPoll returns -EINTR promptly when the wake fd is written from another thread', async (t) => {
  const buf = native.ringbufOpen(fds.rb!);
  const efd = native.eventFd();
  t.ok(efd >= 0);
  const out = new ArrayBuffer(256);
  // the earlier tests' records are still in the ring: drain them
  for (let i = 0; i < 100 && native.bufferPoll(buf, 0, -1, out) > 0; i++);
  t.equal(native.bufferPoll(buf, 0, efd, out), 0, 'not woken yet');
  const w = new Worker(
    `const fs = require('fs');
     const { parentPort, workerData } = require('worker_threads');
     parentPort.postMessage('ready');
     Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 300);
     const b = Buffer.alloc(8); b.writeBigUInt64LE(1n);
     fs.writeSync(workerData.fd, b);`,
    { eval: true, workerData: { fd: efd } },
  );
  await new Promise((r) => w.once('message', r));
  const t0 = Date.now();
  const r = native.bufferPoll(buf, 10000, efd, out); // blocks this thread
  const dt = Date.now() - t0;
  t.equal(r, -EINTR, 'woken');
  t.ok(dt >= 50 && dt < 3000, `blocked, then woken promptly (${dt} ms)`);
  await new Promise((r) => w.once('exit', r));
  t.equal(native.bufferPoll(buf, 0, efd, out), -EINTR, 'the eventfd counter is left as is');
  const cnt = Buffer.alloc(8);
  fs.readSync(efd, cnt);
  t.equal(cnt.readBigUInt64LE(), 1n);
  t.equal(native.bufferPoll(buf, 0, efd, out), 0, 'not woken once the caller read the counter');

  // the buffer's epoll set follows the wake fd the caller passes
  fs.writeSync(efd, Buffer.from([1, 0, 0, 0, 0, 0, 0, 0]));
  t.equal(native.bufferPoll(buf, 50, efd, out), -EINTR, 'a written wake fd wakes a timed wait');
  const t1 = Date.now();
  t.equal(native.bufferPoll(buf, 60, -1, out), 0, 'without a wake fd the same wait times out (the old one is no longer watched)');
  t.ok(Date.now() - t1 >= 50, 'and it did wait');
  const efd2 = native.eventFd();
  t.equal(native.bufferPoll(buf, 20, efd2, out), 0, 'another, unwritten wake fd: timeout');
  fs.writeSync(efd2, Buffer.from([1, 0, 0, 0, 0, 0, 0, 0]));
  t.equal(native.bufferPoll(buf, 1000, efd2, out), -EINTR, 'which then wakes it');
  t.equal(native.bufferPoll(buf, 0, -1, out), 0, 'timeout 0 without a wake fd: the empty buffer answers 0');
  t.equal(native.bufferPoll(buf, 0, 987654, out), -EBADF, 'a wake fd that is not open: -EBADF');
  native.closeFd(efd2);
  native.closeFd(efd);
  native.bufferClose(buf);
});

where(addonOnly('per-thread cleanup hook'), 'worker threads')('the addon works in a worker thread at the same time; worker exit cleans up', async (t) => {
  const before = progCount('wbn_sock');
  setCtl(fds.ctl!, 0, 0); // stop producing records
  const buf = native.ringbufOpen(fds.rb!);
  for (let i = 0; i < 100 && native.bufferPoll(buf, 0, -1, new ArrayBuffer(4096)) > 0; i++);
  const efd = native.eventFd();
  const w = new Worker(
    `const fs = require('fs');
     const { parentPort, workerData } = require('worker_threads');
     const n = require(workerData.addon);
     const obj = n.open(workerData.bytes, 'wbn_worker', {});
     n.load(obj);
     const kept = n.open(workerData.bytes, 'wbn_worker2', {});
     n.load(kept); // left open on purpose: the env cleanup hook must close it
     const mem = new WebAssembly.Memory({ initial: 1 }).buffer;
     const hfd = n.maps(obj).find((m) => m.name === 'hmap').fd;
     new DataView(mem).setUint32(0, 5, true);
     const upd = n.mapOp(2, hfd, mem, 0, 16, 0);
     const look = n.mapOp(1, hfd, mem, 0, 16, 0);
     const cpus = n.numPossibleCpus();
     n.close(obj);
     parentPort.postMessage({ obj, kept, upd, look, cpus });
     const b = Buffer.alloc(8); b.writeBigUInt64LE(1n);
     fs.writeSync(workerData.efd, b);
     setTimeout(() => {}, 200);`,
    { eval: true, workerData: { addon: addonFile, bytes: objBytes, efd } },
  );
  const msg = new Promise<{ obj: number; kept: number; upd: number; look: number; cpus: number }>((r) =>
    w.once('message', r),
  );
  // Block the main thread in native code while the worker uses the addon.
  const r = native.bufferPoll(buf, 20000, efd, new ArrayBuffer(64));
  t.equal(r, -EINTR, 'main thread woken by the worker');
  const m = await msg;
  t.ok(m.obj > 0 && m.kept > 0 && m.obj !== obj && m.kept !== m.obj, 'process-unique ids');
  t.equal(m.upd, 0);
  t.equal(m.look, 0);
  t.equal(m.cpus, native.numPossibleCpus());
  t.equal(native.programs(m.kept).length, 6, 'ids are usable from another thread');
  await new Promise((r) => w.once('exit', r));
  t.ok(await eventually(() => progCount('wbn_sock') === before), 'objects the worker left open were closed');
  t.equal(caught(() => native.programs(m.kept)).code, 'EBADF', 'its id is gone');
  native.closeFd(efd);
  native.bufferClose(buf);
});

t.test('attach errors', async (t) => {
  const e = caught(() => native.attachAuto(obj, 'no_such_prog'));
  t.equal(e.errno, ENOENT);
  t.equal(e.code, 'ENOENT');
  t.match(e.message, /no_such_prog/);
  t.equal(typeof e.op, 'string');
  t.equal(typeof e.log, 'string');
  const e2 = caught(() => native.attachAuto(obj, 'wbn_sock'));
  t.ok(e2.errno > 0, `socket filters have no auto attach: ${e2.message}`);
  t.equal(e2.op, 'bpf_program__attach');
  const e3 = caught(() => native.programs(123456789));
  t.equal(e3.code, 'EBADF');
});

t.test('attachXdp with and without flags', async (t) => {
  const lo = native.ifIndex('lo');
  t.equal(xdpOn(), false, 'nothing attached to lo');
  const link = native.attachXdp(obj, 'wbn_xdp', lo, 0); // bpf_link
  t.ok(link > 0);
  t.equal(xdpOn(), true, 'attached (link)');
  native.detach(link);
  t.equal(xdpOn(), false, 'detached');
  const XDP_FLAGS_SKB_MODE = 2;
  const link2 = native.attachXdp(obj, 'wbn_xdp', lo, XDP_FLAGS_SKB_MODE); // netlink, pseudo link
  t.ok(link2 > 0);
  t.equal(xdpOn(), true, 'attached (netlink, SKB mode)');
  native.detach(link2);
  t.equal(xdpOn(), false, 'detached');
});

const cg2 = fs
  .readFileSync('/proc/mounts', 'utf8')
  .split('\n')
  .map((l) => l.split(' '))
  .find((m) => m[2] === 'cgroup2')?.[1];

t.test('attachCgroup', { skip: cg2 ? false : 'no cgroup2 mount' }, async (t) => {
  const cfd = fs.openSync(cg2!, 'r');
  const link = native.attachCgroup(obj, 'wbn_cg', cfd);
  t.ok(link > 0);
  native.detach(link);
  fs.closeSync(cfd);
});

const libc = ['/lib/x86_64-linux-gnu/libc.so.6', '/lib/aarch64-linux-gnu/libc.so.6', '/usr/lib64/libc.so.6', '/lib64/libc.so.6'].find(
  (p) => fs.existsSync(p),
);

t.test('attachUprobe on libc getppid fires', { skip: libc ? false : 'libc not found' }, async (t) => {
  setCtl(fds.ctl!, 3, 0);
  const link = native.attachUprobe(obj, 'wbn_up', false, process.pid, libc!, 'getppid', 0);
  t.ok(link > 0);
  trigger(5);
  dv.setUint32(KEY, 3, true);
  t.equal(native.mapOp(LOOKUP, fds.ctl!, mem, KEY, VAL, 0), 0);
  t.ok(dv.getBigUint64(VAL, true) >= 5n, `uprobe hits: ${dv.getBigUint64(VAL, true)}`);
  native.detach(link);
  const e = caught(() => native.attachUprobe(obj, 'wbn_up', true, -1, '/no/such/binary', 'f', 0));
  t.ok(e.errno > 0, e.message);
  t.equal(e.op, 'bpf_program__attach_uprobe_opts');
});

t.test('attachPerfEvent', async (t) => {
  // PERF_TYPE_SOFTWARE / PERF_COUNT_SW_CPU_CLOCK, every 1 ms, CPU 0, all processes
  const pfd = native.perfEventOpen(1, 0, false, 1_000_000, -1, 0);
  t.ok(pfd >= 0);
  const link = native.attachPerfEvent(obj, 'wbn_pe', pfd);
  t.ok(link > 0);
  native.detach(link); // libbpf's perf link closes the perf event fd
  t.equal(caught(() => native.closeFd(pfd)).code, 'EBADF', 'perf fd owned by the link');
});

t.test('attachSocket owns the socket; detach closes it', async (t) => {
  const lo = native.ifIndex('lo');
  t.ok(lo > 0, 'lo exists');
  t.equal(native.ifIndex('no-such-if0'), 0);
  const sock = native.openPacketSocket(lo);
  t.ok(sock >= 0);
  const link = native.attachSocket(obj, 'wbn_sock', sock);
  t.ok(link > 0);
  native.detach(link);
  t.equal(caught(() => native.closeFd(sock)).code, 'EBADF', 'the socket was closed by detach');
  native.detach(link); // unknown link: no-op
});

t.test('load failure: errno, code, op and the verifier log', async (t) => {
  native.takeLog();
  const bad = native.open(badBytes, 'wbn_bad', {});
  const e = caught(() => native.load(bad));
  t.ok(e instanceof Error);
  t.ok(e.errno > 0, `errno ${e.errno}`);
  t.equal(e.code, 'EACCES');
  t.equal(e.op, 'bpf_object__load');
  t.match(e.message, /^bpf_object__load: .*Permission denied \(EACCES\)$/);
  t.match(e.log, /invalid mem access|R\d+ invalid/, 'the verifier log is in error.log');
  t.match(native.takeLog(), /BEGIN PROG LOAD LOG/, 'takeLog has it too');
  t.equal(native.takeLog(), '', 'takeLog clears');
  native.close(bad);
});

t.test('open logLevel 2 captures libbpf debug output', async (t) => {
  native.takeLog();
  const o = native.open(objBytes, 'wbn_dbg', { logLevel: 2 });
  t.match(native.takeLog(), /libbpf: /);
  const o2 = native.open(objBytes, 'wbn_quiet', {});
  t.equal(native.takeLog(), '', 'warnings only by default');
  native.close(o);
  native.close(o2);
  const e = caught(() => native.open(new Uint8Array([1, 2, 3, 4]), 'junk', {}));
  t.ok(e.errno > 0);
  t.equal(e.op, 'bpf_object__open_mem');
});

t.test('setMapType before load', async (t) => {
  const o = native.open(objBytes, 'wbn_set', {});
  native.setMapType(o, 'rb', BPF_MAP_TYPE_PERF_EVENT_ARRAY, 4, 4, 0);
  t.match(native.maps(o).find((m) => m.name === 'rb'), { type: BPF_MAP_TYPE_PERF_EVENT_ARRAY, keySize: 4, valueSize: 4 });
  native.setMapType(o, 'hmap', -1, -1, -1, 128);
  t.match(native.maps(o).find((m) => m.name === 'hmap'), { type: BPF_MAP_TYPE_HASH, keySize: 4, valueSize: 8, maxEntries: 128 });
  t.equal(caught(() => native.setMapType(o, 'nope', 1, 4, 4, 1)).code, 'ENOENT');
  native.close(o);
});

t.test('perfEventOpen and eventFd/closeFd', async (t) => {
  // PERF_TYPE_SOFTWARE / PERF_COUNT_SW_CPU_CLOCK on CPU 0, all processes
  const pfd = native.perfEventOpen(1, 0, true, 1, -1, 0);
  t.ok(pfd >= 0);
  native.closeFd(pfd);
  t.ok(native.numPossibleCpus() >= 1);
});

t.test('close detaches everything and is idempotent', async (t) => {
  t.equal(progCount('wbn_tp_getppid') >= 1, true);
  const before = progCount('wbn_tp_getppid');
  const xdpLink = native.attachXdp(obj, 'wbn_xdp', native.ifIndex('lo'), 2 /* XDP_FLAGS_SKB_MODE */);
  const sock = native.openPacketSocket(0);
  native.attachSocket(obj, 'wbn_sock', sock);
  t.equal(xdpOn(), true);
  native.close(obj);
  t.ok(await eventually(() => progCount('wbn_tp_getppid') === before - 1), 'program gone from the kernel');
  t.equal(xdpOn(), false, 'the netlink XDP attachment was removed');
  t.equal(caught(() => native.closeFd(sock)).code, 'EBADF', 'the socket link closed its socket');
  native.detach(xdpLink); // destroyed by close: no-op
  native.close(obj);
  native.close(obj);
  t.equal(caught(() => native.programs(obj)).code, 'EBADF');
  native.detach(tpLink); // destroyed by close: no-op
  t.equal(native.mapOp(LOOKUP, 999999, mem, KEY, VAL, 0), -EBADF);
});
