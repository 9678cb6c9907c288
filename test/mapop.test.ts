// wasm_bpf_map_operate, one table of cases (test/fixtures/mapop-cases.ts) through both paths on the
// real kernel: the C function the guest imports directly (native/src/guestmaps.cc, called from Wasm so
// that V8's fast call is taken, and from JavaScript, its N-API callback) and the host's JavaScript
// (src/abi/host.ts). Each path loads its own objects and runs every case in order; each result must be
// the table's, on every path. mapop-ffi.test.ts runs it on libbpf through FFI (its JavaScript path alone).
import t from 'tap';
import fs from 'node:fs';
import path from 'node:path';
import { execFileSync } from 'node:child_process';
import { BUILD, FIXTURES, buildBpf, kernelIds, settledLeaks } from './helpers.js';
import { MAPOP_CASES, KEY, NEXT, VAL, type MapOpCase, type Ptr } from './fixtures/mapop-cases.js';
import { LinuxBackend } from '../backends/linux/index.js';
import { kernelLibUnderTest, testKernelPath } from './kernel-lib.js';
import { WasmBpfHost } from '../src/abi/host.js';
import { StopSignal } from '../src/runtime/stop.js';
import { OP, T, Bytes, buildModule } from '../src/wasm/writer.js';
import type { ModuleShape, ValType } from '../src/wasm/imports.js';

const before = kernelIds();
const native = kernelLibUnderTest();

const mapsObj = buildBpf(path.join(FIXTURES, 'mapop.bpf.c'), path.join(BUILD, 'mapop.bpf.o'));
// the struct_ops map (hkobj_st.bpf.c, as test/hardening-kernel.test.ts builds it, under names of its own)
const stFull = buildBpf(path.join(FIXTURES, 'hkobj_st.bpf.c'), path.join(BUILD, 'mapop_st.full.bpf.o'));
const stObj = path.join(BUILD, 'mapop_st.bpf.o');
if (!fs.existsSync(stObj) || fs.statSync(stObj).mtimeMs < fs.statSync(stFull).mtimeMs) execFileSync('llvm-strip-16', ['--strip-debug', stFull, '-o', stObj]);

const i32 = 'i32' as ValType;
const SHAPE: ModuleShape = {
  imports: [
    { module: 'wasm_bpf', name: 'wasm_load_bpf_object', kind: 'func', type: { params: [i32, i32], results: ['i64'] } },
    { module: 'wasm_bpf', name: 'wasm_bpf_map_fd_by_name', kind: 'func', type: { params: ['i64', i32], results: [i32] } },
    { module: 'wasm_bpf', name: 'wasm_bpf_map_operate', kind: 'func', type: { params: [i32, i32, i32, i32, i32, 'i64'], results: [i32] } },
    { module: 'wasm_bpf', name: 'wasm_close_bpf_object', kind: 'func', type: { params: ['i64'], results: [i32] } },
  ],
  exports: [],
};

type MapOperate = (fd: number, cmd: number, key: number, value: number, next: number, flags: bigint) => number;

/** a Wasm function calling `fn` as a guest's wasm_bpf_map_operate import (i32 pointers) */
function wasmCaller(fn: unknown): MapOperate {
  const b = new Bytes();
  for (let l = 0; l < 6; l++) b.byte(OP.local_get).u32(l);
  b.byte(OP.call).u32(0);
  const sig = { params: [T.i32, T.i32, T.i32, T.i32, T.i32, T.i64], results: [T.i32] };
  const bytes = buildModule({
    types: [sig],
    funcImports: [{ module: 'm', name: 'f', type: 0 }],
    globals: [],
    funcs: [{ type: 0, locals: [], body: b.out() }],
    exports: [{ name: 'call', kind: 'func', index: 1 }],
  });
  const inst = new WebAssembly.Instance(new WebAssembly.Module(bytes), { m: { f: fn as () => number } });
  return inst.exports['call'] as MapOperate;
}

const OBJ_AT = 65536;
const NAME_AT = 60000;
/** a per-CPU value of a u64 map: round_up(8, 8) for every possible CPU */
const PCPU = 8 * native.numPossibleCpus();

interface PathRun {
  results: number[];
  outs: Array<number | undefined>;
  served: string;
}

function runPath(which: 'direct' | 'direct-napi' | 'js', foreignFd: number): PathRun {
  const logs: string[] = [];
  const backend = new LinuxBackend(native);
  const host = new WasmBpfHost({
    backend,
    objectName: 'mapop',
    verbose: true,
    wrapperModule: 'callback-wrapper',
    callbackExport: 'go-callback',
    stop: new StopSignal(),
    log: (l) => logs.push(l),
    ...(which === 'js' ? { noDirectMapOps: true } : {}),
  });
  const imports = host.imports(SHAPE)['wasm_bpf']!;
  const memory = new WebAssembly.Memory({ initial: 2 });
  host.bind({ exports: { memory } } as unknown as WebAssembly.Instance);
  const u8 = (): Uint8Array => new Uint8Array(memory.buffer);
  const dv = (): DataView => new DataView(memory.buffer);
  const load = imports['wasm_load_bpf_object'] as unknown as (p: number, n: number) => bigint;
  const fdByName = imports['wasm_bpf_map_fd_by_name'] as unknown as (h: bigint, p: number) => number;
  const close = imports['wasm_close_bpf_object'] as unknown as (h: bigint) => number;
  const op = which === 'direct-napi' ? (imports['wasm_bpf_map_operate'] as unknown as MapOperate) : wasmCaller(imports['wasm_bpf_map_operate']);

  const fds = new Map<string, number>();
  const handles: bigint[] = [];
  for (const [file, names] of [[mapsObj, ['h', 'pa', 'q', 'st', 'in1', 'outer', 'progs', 'socks', 'devs']], [stObj, ['wbkobj_cc']]] as const) {
    const bytes = fs.readFileSync(file);
    u8().set(bytes, OBJ_AT);
    const h = load(OBJ_AT, bytes.length);
    if (h <= 0n) throw new Error(`${which}: loading ${file} failed: ${logs.join('\n')}`);
    handles.push(h);
    for (const name of names) {
      u8().set(Buffer.from(`${name}\0`), NAME_AT);
      const fd = fdByName(h, NAME_AT);
      if (fd < 0) throw new Error(`${which}: no map ${name}`);
      fds.set(name, fd);
    }
  }
  u8().fill(0, OBJ_AT);

  const len = memory.buffer.byteLength;
  const ptr = (p: Ptr | undefined, dflt: number): number =>
    p === undefined ? dflt : typeof p === 'number' ? p : len - p.end - (p.cpus ? PCPU : 0);
  const fdOf = (c: MapOpCase): number => {
    if (typeof c.fd === 'number') return c.fd;
    if (c.fd === 'foreign') return foreignFd;
    const fd = fds.get(c.fd);
    if (fd === undefined) throw new Error(`no map ${c.fd} in the table's objects`);
    return fd;
  };
  const fastBefore = (native.fastCallCount?.() ?? 0);
  const run: PathRun = { results: [], outs: [], served: logs.find((l) => l.includes('map_operate: served')) ?? '' };
  for (const c of MAPOP_CASES) {
    for (const [at, v] of c.set ?? []) {
      if (typeof v === 'bigint') dv().setBigUint64(at, v, true);
      else dv().setInt32(at, typeof v === 'string' ? fds.get(v)! : v, true);
    }
    run.results.push(op(fdOf(c), c.cmd, ptr(c.key, KEY), ptr(c.value, VAL), ptr(c.next, NEXT), c.flags ?? 0n));
    run.outs.push(c.out ? dv().getUint32(c.out[0], true) : undefined);
  }
  if (which === 'direct' && (native.fastCallCount?.() ?? 0) - fastBefore < MAPOP_CASES.length) {
    run.served += ` (only ${(native.fastCallCount?.() ?? 0) - fastBefore} fast calls)`;
  }
  for (const h of handles) close(h);
  host.closeAll();
  backend.dispose();
  return run;
}

t.test('every map_operate case of the table gives the table\'s result, on both paths', async (t) => {
  // a map of the host process that no guest loaded
  const foreign = new LinuxBackend(native).load(fs.readFileSync(mapsObj), { objectName: 'foreign', verbose: false, log: () => {} });
  t.teardown(() => foreign.close());
  const foreignFd = foreign.maps.find((m) => m.name === 'h')!.fd;
  const paths = {
    direct: native.fastCalls ? runPath('direct', foreignFd) : undefined,
    'direct-napi': native.fastCalls ? runPath('direct-napi', foreignFd) : undefined,
    js: runPath('js', foreignFd),
  };
  if (testKernelPath() === 'addon') {
    t.ok(native.fastCalls, 'this build has V8 fast calls (the direct path)');
    t.match(paths.direct?.served ?? '', /^wasm-bpf: map_operate: served by the backend directly \(no JavaScript per call\)$/, 'direct: the guest imports the C function, every call a fast call');
    t.match(paths['direct-napi']?.served ?? '', /^wasm-bpf: map_operate: served by the backend directly/, 'direct-napi: the same C function, called from JavaScript');
  } else t.notOk(native.fastCalls, 'the FFI path has no direct map_operate: the host\'s JavaScript serves it');
  t.match(paths.js.served, /served by the host in JavaScript$/, 'js: the host\'s function');
  for (const [which, run] of Object.entries(paths)) {
    if (!run) continue;
    MAPOP_CASES.forEach((c, i) => {
      t.equal(run.results[i], c.want, `${which}: ${c.name}`);
      if (c.out) t.equal(run.outs[i], c.out[1], `${which}: ${c.name}: the u32 at ${c.out[0]}`);
    });
  }
  if (paths.direct) t.same(paths.direct.results, paths.js.results, 'the two paths agree on every case');
  if (paths['direct-napi']) t.same(paths['direct-napi'].results, paths.js.results, 'the C function\'s N-API callback agrees too');
});

t.test('no kernel object left by this file', async (t) => {
  t.same(await settledLeaks(before), { progs: [], maps: [], links: [] });
});
