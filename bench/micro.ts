// Micro-benchmarks that split the cost of the wasm-bpf hot paths into their parts (run by run.ts, or
// alone: `node --import=tsx bench/micro.ts [bench/build]` after a `run.ts` build). Prints one JSON
// object. Every figure is ns per operation, the loop running in Wasm (or in JS where said).
//
// map operation on an ARRAY (key 7), from a Wasm loop unless said otherwise:
//   host          the real path: the guest's wasm_bpf_map_operate import, which on Node 20 is the addon's
//                 C function itself (native/src/guestmaps.cc, a V8 fast call straight from Wasm)
//   host_js       the same with the host's JavaScript map_operate (WASM_BPF_DIRECT_MAP_OPS=0):
//                 host.ts -> LinuxBackend -> native.mapOp (a V8 fast call from optimized JS)
//   js_fast       JS loop calling native.mapOp with a Uint8Array (V8 fast call + syscall)
//   js_fast_only  the same with an invalid cmd: the fast call alone, no syscall
//   js_mapop      JS loop calling native.mapOp with an ArrayBuffer (not a fast call: the slow callback)
//   js_napi_only  the same with an invalid cmd: the slow callback's argument handling, no syscall
//   noop_i64      Wasm -> JS import of the real signature (i64 flags -> BigInt), doing nothing
//   noop_i32      the same with flags as two i32 (no BigInt)
//   direct_i64    Wasm -> JS (i64) -> native.mapOp with `memory.buffer` fetched per call (host.ts minus
//                 its bookkeeping)
//   direct_i32    Wasm -> JS (i32 only) -> native.mapOp with a cached ArrayBuffer
//   adapted       Wasm -> adapter.wasm (i64 -> 2 x i32) -> JS -> native.mapOp: what the guest would see
//                 if host.ts interposed adapter.wasm
// a leaner binding, measured with bench/src/napi_probe.c (an N-API module built for this only):
//   probe_noop_js     JS loop calling an empty N-API function: the N-API floor
//   probe_op6_js      JS loop, MapOp's shape today (6 args incl. the ArrayBuffer, int64 reads)
//   probe_op4_js      JS loop, memory registered once (setMem), 4 int32 args
//   probe_op4_wasm    Wasm (i32-only import) -> JS glue -> op4
//   probe_op7_wasm    Wasm (i32-only import) bound directly to the N-API function: no JS at all
//   probe_host_lean   the real i64 import signature -> a JS mapOperate with host.ts's checks (fd table,
//                     bounds, flags) but a cached buffer (re-registered only when detached by
//                     memory.grow), `flags === 0n` fast path -> op4: what host.ts + maps.cc could be
// record delivery (32-byte records laid out as native.bufferPoll writes them), JS loop:
//   deliver_current   host.ts today: memory.buffer getter + subarray() + set() per record, then the callback
//   deliver_cached    cached guest Uint8Array (re-derived only when detached), subarray() + set()
//   deliver_words     cached Uint32Array views, word copy for aligned small records (no allocation)
//   deliver_dispatch  host.ts now: chunks copied into the guest's buffer, a Wasm dispatcher per chunk
//   deliver_cb_only   the guest callback alone (lower bound)
import fs from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { createDispatcher } from '../src/abi/dispatch.js';
import { WasmBpfHost } from '../src/abi/host.js';
import { readModuleShape } from '../src/wasm/imports.js';
import { StopSignal } from '../src/runtime/stop.js';
import { LinuxBackend } from '../backends/linux/index.js';
import { loadNative } from '../backends/linux/native.js';

type Fn = (...args: never[]) => unknown;
type Cb = (ctx: number, data: number, size: number) => number;

function nsPer(n: number, f: () => void): number {
  const t0 = process.hrtime.bigint();
  f();
  return Number(process.hrtime.bigint() - t0) / n;
}

/** best of `reps` runs of n iterations after one warm-up run */
function best(n: number, reps: number, f: (n: number) => void): number {
  f(Math.max(1, n >> 2));
  let b = Infinity;
  for (let i = 0; i < reps; i++) b = Math.min(b, nsPer(n, () => f(n)));
  return Math.round(b * 10) / 10;
}

export function runMicro(buildDir: string, n = 300_000, reps = 3): Record<string, number> {
  const native = loadNative();
  const microBytes = fs.readFileSync(path.join(buildDir, 'micro.wasm'));
  const adapterBytes = fs.readFileSync(path.join(buildDir, 'adapter.wasm'));
  const microModule = new WebAssembly.Module(microBytes);
  const adapterModule = new WebAssembly.Module(adapterBytes);
  const shape = readModuleShape(microBytes);
  const backend = new LinuxBackend();
  const host = new WasmBpfHost({
    backend,
    objectName: 'micro',
    verbose: false,
    wrapperModule: 'callback-wrapper',
    callbackExport: 'go-callback',
    stop: new StopSignal(),
    log: (l) => process.stderr.write(`${l}\n`),
  });

  // one instance per variant (imports are fixed at instantiation); all share the host's object
  let memory: WebAssembly.Memory | undefined;
  let cachedBuf: ArrayBuffer | undefined;
  const bench: Record<string, Fn> = {
    op_i64: (() => 0) as Fn,
    op_i32: (() => 0) as Fn,
    op_adapted: (() => 0) as Fn,
  };
  const instantiate = (over: Partial<Record<string, Fn>>, withHost = false): WebAssembly.Instance => {
    const hostImports = host.imports(shape);
    const inst = new WebAssembly.Instance(microModule, {
      wasm_bpf: hostImports['wasm_bpf'] ?? {},
      bench: { ...bench, ...over },
    } as WebAssembly.Imports);
    if (withHost) host.bind(inst);
    return inst;
  };
  type Ex = {
    memory: WebAssembly.Memory;
    setup: (name: number) => number;
    name_buf: () => number;
    key_ptr: () => number;
    val_ptr: () => number;
    loop_host: (fd: number, n: number) => number;
    loop_i64: (fd: number, n: number) => number;
    loop_i32: (fd: number, n: number) => number;
    loop_adapted: (fd: number, n: number) => number;
    cb: Cb;
    rec_buf: () => number;
  };
  const hostInst = instantiate({}, true);
  const hx = hostInst.exports as unknown as Ex;
  const nameAt = hx.name_buf();
  new Uint8Array(hx.memory.buffer).set(Buffer.from('array\0'), nameAt);
  const fd = hx.setup(nameAt);
  if (fd < 0) throw new Error(`micro: loading bench.bpf.o failed (${fd})`);
  // value for key 7
  const kOff = hx.key_ptr();
  const vOff = hx.val_ptr();
  new DataView(hx.memory.buffer).setBigUint64(vOff, 42n, true);
  if (native.mapOp(2, fd, hx.memory.buffer, kOff, vOff, 0) !== 0) throw new Error('micro: array update failed');

  const out: Record<string, number> = {};
  const check = (r: number, what: string): void => {
    if (r !== 0) throw new Error(`micro: ${what} returned ${r}`);
  };

  out['host'] = best(n, reps, (k) => check(hx.loop_host(fd, k), 'loop_host'));
  {
    // the same guest code against a host that keeps map_operate in JavaScript
    const jsHost = new WasmBpfHost({
      backend,
      objectName: 'micro',
      verbose: false,
      wrapperModule: 'callback-wrapper',
      callbackExport: 'go-callback',
      stop: new StopSignal(),
      log: (l) => process.stderr.write(`${l}\n`),
      noDirectMapOps: true,
    });
    const ji = new WebAssembly.Instance(microModule, { wasm_bpf: jsHost.imports(shape)['wasm_bpf'] ?? {}, bench } as WebAssembly.Imports);
    jsHost.bind(ji);
    const jx = ji.exports as unknown as Ex;
    const jname = jx.name_buf();
    new Uint8Array(jx.memory.buffer).set(Buffer.from('array\0'), jname);
    const jfd = jx.setup(jname);
    if (jfd < 0) throw new Error(`micro: loading bench.bpf.o (JS host) failed (${jfd})`);
    out['host_js'] = best(n, reps, (k) => check(jx.loop_host(jfd, k), 'loop_host (JS)'));
    jsHost.closeAll();
  }
  // the Uint8Array and the ArrayBuffer loops are written out separately on purpose: one call site per
  // argument type keeps V8's feedback monomorphic (a shared helper would measure a polymorphic call)
  const u8 = new Uint8Array(hx.memory.buffer);
  out['js_fast'] = best(n, reps, (k) => {
    let bad = 0;
    for (let i = 0; i < k; i++) bad |= native.mapOp(1, fd, u8, kOff, vOff, 0);
    check(bad, 'js mapOp (Uint8Array)');
  });
  out['js_fast_only'] = best(n, reps, (k) => {
    let bad = 0;
    for (let i = 0; i < k; i++) bad |= native.mapOp(99, fd, u8, kOff, vOff, 0) + 22;
    check(bad, 'js mapOp(99) (Uint8Array)');
  });

  const buf = hx.memory.buffer;
  out['js_mapop'] = best(n, reps, (k) => {
    let bad = 0;
    for (let i = 0; i < k; i++) bad |= native.mapOp(1, fd, buf, kOff, vOff, 0);
    check(bad, 'js mapOp');
  });
  out['js_napi_only'] = best(n, reps, (k) => {
    let bad = 0;
    for (let i = 0; i < k; i++) bad |= native.mapOp(99, fd, buf, kOff, vOff, 0) + 22;
    check(bad, 'js mapOp(99)');
  });

  const noop = instantiate({});
  const nx = noop.exports as unknown as Ex;
  out['noop_i64'] = best(n, reps, (k) => check(nx.loop_i64(fd, k), 'noop_i64'));
  out['noop_i32'] = best(n, reps, (k) => check(nx.loop_i32(fd, k), 'noop_i32'));

  const direct = instantiate({
    op_i64: ((f: number, cmd: number, key: number, val: number, _nk: number, flags: bigint) =>
      native.mapOp(cmd, f, memory!.buffer, key, val, Number(flags))) as Fn,
    op_i32: ((f: number, cmd: number, key: number, val: number, _nk: number, lo: number) =>
      native.mapOp(cmd, f, cachedBuf!, key, val, lo)) as Fn,
  });
  const dx = direct.exports as unknown as Ex;
  memory = dx.memory;
  cachedBuf = dx.memory.buffer;
  out['direct_i64'] = best(n, reps, (k) => check(dx.loop_i64(fd, k), 'direct_i64'));
  out['direct_i32'] = best(n, reps, (k) => check(dx.loop_i32(fd, k), 'direct_i32'));

  let adaptedBuf: ArrayBuffer | undefined;
  const adapter = new WebAssembly.Instance(adapterModule, {
    host: { op: (f: number, cmd: number, key: number, val: number, _nk: number, lo: number) => native.mapOp(cmd, f, adaptedBuf!, key, val, lo) },
  });
  const ad = instantiate({ op_adapted: adapter.exports['op'] as Fn });
  const ax = ad.exports as unknown as Ex;
  adaptedBuf = ax.memory.buffer;
  out['adapted'] = best(n, reps, (k) => check(ax.loop_adapted(fd, k), 'adapted'));

  // ---- a leaner binding (bench/src/napi_probe.c) ----------------------------------------------------
  const probeFile = path.join(buildDir, 'napi_probe.node');
  if (fs.existsSync(probeFile)) {
    const probe = createRequire(import.meta.url)(probeFile) as {
      noop: () => number;
      op6: (cmd: number, fd: number, mem: ArrayBuffer, k: number, v: number, flags: number) => number;
      setMem: (mem: ArrayBuffer) => void;
      op4: (cmd: number, fd: number, k: number, v: number) => number;
      op7: Fn;
    };
    out['probe_noop_js'] = best(n, reps, (k) => {
      let bad = 0;
      for (let i = 0; i < k; i++) bad |= probe.noop();
      check(bad, 'noop');
    });
    out['probe_op6_js'] = best(n, reps, (k) => {
      let bad = 0;
      for (let i = 0; i < k; i++) bad |= probe.op6(1, fd, buf, kOff, vOff, 0);
      check(bad, 'op6');
    });
    probe.setMem(buf);
    out['probe_op4_js'] = best(n, reps, (k) => {
      let bad = 0;
      for (let i = 0; i < k; i++) bad |= probe.op4(1, fd, kOff, vOff);
      check(bad, 'op4');
    });
    const p4 = instantiate({ op_i32: ((f: number, cmd: number, key: number, val: number) => probe.op4(cmd, f, key, val)) as Fn }).exports as unknown as Ex;
    probe.setMem(p4.memory.buffer);
    out['probe_op4_wasm'] = best(n, reps, (k) => check(p4.loop_i32(fd, k), 'probe_op4_wasm'));
    const p7 = instantiate({ op_i32: probe.op7 }).exports as unknown as Ex;
    probe.setMem(p7.memory.buffer);
    out['probe_op7_wasm'] = best(n, reps, (k) => check(p7.loop_i32(fd, k), 'probe_op7_wasm'));
    // host.ts's mapOperate, lean
    const table = new Map<number, { keySize: number; valueSize: number }>([[fd, { keySize: 4, valueSize: 8 }]]);
    let leanMem: WebAssembly.Memory | undefined;
    let leanBuf = new ArrayBuffer(0);
    let leanLen = 0;
    const lean = (f: number, cmd: number, key: number, val: number, _nk: number, flags: bigint): number => {
      const e = table.get(f);
      if (e === undefined) return -9;
      if (leanBuf.byteLength === 0) {
        // first call, or memory.grow detached the old buffer
        leanBuf = leanMem!.buffer;
        leanLen = leanBuf.byteLength;
        probe.setMem(leanBuf);
      }
      if (flags !== 0n && (flags < 0n || flags > 0xffffffffn)) return -22;
      key >>>= 0;
      val >>>= 0;
      if (key + e.keySize > leanLen) return -14;
      if (cmd === 1 || cmd === 2) {
        if (val + e.valueSize > leanLen) return -14;
        return probe.op4(cmd, f, key, val);
      }
      return -22;
    };
    const pl = instantiate({ op_i64: lean as unknown as Fn }).exports as unknown as Ex;
    leanMem = pl.memory;
    out['probe_host_lean'] = best(n, reps, (k) => check(pl.loop_i64(fd, k), 'probe_host_lean'));
    probe.setMem(new ArrayBuffer(0));
  }

  // ---- record delivery ---------------------------------------------------------------------------
  const R = 6000; // records per "poll", as many as fit the host's 256 KiB staging buffer
  const REC = 32;
  const staging = new ArrayBuffer(R * (8 + REC));
  const su8 = new Uint8Array(staging);
  const su32 = new Uint32Array(staging);
  for (let i = 0; i < R; i++) {
    su32[(i * (8 + REC)) >>> 2] = REC;
    su32[((i * (8 + REC)) >>> 2) + 4] = i; // seq (low word)
  }
  const gx = instantiate({}).exports as unknown as Ex;
  const gmem = gx.memory;
  const cb = gx.cb;
  const dataOff = gx.rec_buf();
  const maxSize = 4096;

  // host.ts today (GuestMemory.u8 getter compares memory.buffer on every access)
  let gbuf = gmem.buffer;
  let gview = new Uint8Array(gbuf);
  const u8getter = (): Uint8Array => {
    if (gmem.buffer !== gbuf) {
      gbuf = gmem.buffer;
      gview = new Uint8Array(gbuf);
    }
    return gview;
  };
  const polls = Math.max(1, Math.round(n / R));
  out['deliver_current'] = best(polls * R, reps, (k) => {
    for (let p = 0; p < k / R; p++) {
      let pos = 0;
      for (let r = 0; r < R; r++) {
        const size = su32[pos >>> 2]!;
        const start = pos + 8;
        const copied = size > maxSize ? maxSize : size;
        u8getter().set(su8.subarray(start, start + copied), dataOff);
        pos = start + ((size + 7) & ~7);
        if (cb(0, dataOff, copied) < 0) return;
      }
    }
  });

  let cview = new Uint8Array(gmem.buffer);
  out['deliver_cached'] = best(polls * R, reps, (k) => {
    for (let p = 0; p < k / R; p++) {
      let pos = 0;
      for (let r = 0; r < R; r++) {
        const size = su32[pos >>> 2]!;
        const start = pos + 8;
        const copied = size > maxSize ? maxSize : size;
        if (cview.length === 0) cview = new Uint8Array(gmem.buffer); // detached by memory.grow
        cview.set(su8.subarray(start, start + copied), dataOff);
        pos = start + ((size + 7) & ~7);
        if (cb(0, dataOff, copied) < 0) return;
      }
    }
  });

  let w32 = new Uint32Array(gmem.buffer);
  let w8 = new Uint8Array(gmem.buffer);
  out['deliver_words'] = best(polls * R, reps, (k) => {
    for (let p = 0; p < k / R; p++) {
      let pos = 0;
      for (let r = 0; r < R; r++) {
        const size = su32[pos >>> 2]!;
        const start = pos + 8;
        const copied = size > maxSize ? maxSize : size;
        if (w8.length === 0) {
          w8 = new Uint8Array(gmem.buffer);
          w32 = new Uint32Array(gmem.buffer);
        }
        if ((dataOff & 3) === 0 && copied <= 256) {
          const d = dataOff >>> 2;
          const s = start >>> 2;
          const words = copied >>> 2;
          for (let i = 0; i < words; i++) w32[d + i] = su32[s + i]!;
          for (let i = words << 2; i < copied; i++) w8[dataOff + i] = su8[start + i]!; // never past copied
        } else {
          w8.set(su8.subarray(start, start + copied), dataOff);
        }
        pos = start + ((size + 7) & ~7);
        if (cb(0, dataOff, copied) < 0) return;
      }
    }
  });

  // host.ts now: chunks of records copied into the tail of the guest's buffer, delivered by a Wasm
  // dispatcher (src/abi/dispatch.ts): one host -> Wasm call per chunk
  const disp = createDispatcher(gmem, cb);
  if (disp) {
    const stage = dataOff + ((8 - (dataOff & 7)) & 7);
    const stageLen = dataOff + maxSize - stage;
    out['deliver_dispatch'] = best(polls * R, reps, (k) => {
      for (let p = 0; p < k / R; p++) {
        let pos = 0;
        let remaining = R;
        while (remaining > 0) {
          if (w8.length === 0) w8 = new Uint8Array(gmem.buffer);
          const len = Math.min(stageLen, su8.length - pos);
          w8.set(su8.subarray(pos, pos + len), stage);
          const r = disp.run(0, dataOff, stage, stage + len, remaining);
          if (r <= 0) return;
          pos += disp.used();
          remaining -= r;
        }
      }
    });
  }

  out['deliver_cb_only'] = best(polls * R, reps, (k) => {
    for (let p = 0; p < k / R; p++) {
      for (let r = 0; r < R; r++) if (cb(0, dataOff, REC) < 0) return;
    }
  });

  host.closeAll();
  backend.dispose();
  return out;
}

const self = fileURLToPath(import.meta.url);
if (process.argv[1] && path.resolve(process.argv[1]) === self) {
  const root = path.resolve(path.dirname(self), fs.existsSync(path.join(path.dirname(self), '..', 'package.json')) ? '..' : '../..');
  const dir = process.argv[2] ?? path.join(root, 'bench', 'build');
  process.stdout.write(`${JSON.stringify(runMicro(dir))}\n`);
}
