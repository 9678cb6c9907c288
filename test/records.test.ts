// Record delivery of wasm_bpf_buffer_poll (src/abi/records.ts, dispatch.ts, pollgate.ts), with a scripted
// record source behind a fake backend so that sizes, alignment, errors and re-entry are exact: every
// record reaches the guest callback once, in order, at data_ptr, with the size copied and the bytes
// intact; chunks go through the Wasm dispatcher when the guest's buffer is large enough, one call per
// record otherwise (small buffers, records larger than the staging area, truncation). Every scenario
// runs twice: with the host's JavaScript poll only ("host"), and with a direct record source ("direct":
// the guest's import is pollgate.ts's Wasm, fed by a JavaScript stand-in for the C fill of
// native/src/guestmaps.cc, with the same answers). The real kernel ring and perf buffers, and the C
// fill itself, are covered by abi.test.ts, native.test.ts and examples.test.ts.
import t from 'tap';
import path from 'node:path';
import { readFileSync } from 'node:fs';
import { BUILD, FIXTURES, buildGuest } from './helpers.js';
import { WasmBpfHost } from '../src/abi/host.js';
import { createDispatcher } from '../src/abi/dispatch.js';
import { readModuleShape } from '../src/wasm/imports.js';
import { StopSignal } from '../src/runtime/stop.js';
import { MAP_TYPE, type Backend, type LoadedObject, type RecordSource } from '../backends/backend.js';
import { POLL_SLOW, type DirectMapOps, type DirectPoll } from '../backends/fastpath.js';
import { Interrupted } from '../src/errors.js';

const ENOBUFS = 105;
const EBUSY = 16;
const EINTR = 4;

class ScriptedSource implements RecordSource {
  readonly queue: Uint8Array[] = [];
  polls = 0;
  poll(_timeoutMs: number, out: Uint8Array): number {
    this.polls++;
    const dv = new DataView(out.buffer, out.byteOffset, out.byteLength);
    let off = 0;
    let n = 0;
    while (this.queue.length > 0) {
      const r = this.queue[0]!;
      const need = 8 + ((r.length + 7) & ~7);
      if (off + need > out.byteLength) {
        if (n === 0) return -ENOBUFS;
        break;
      }
      dv.setUint32(off, r.length, true);
      dv.setUint32(off + 4, 0, true);
      out.set(r, off + 8);
      out.fill(0, off + 8 + r.length, off + need);
      off += need;
      n++;
      this.queue.shift();
    }
    return n;
  }
  pendingSize(): number {
    return this.queue[0]?.length ?? 0;
  }
  lost(): number {
    return 0;
  }
  close(): void {}
}

/** DirectPoll as native/src/guestmaps.cc answers it, over the scripted source */
class FakeDirectPoll implements DirectPoll {
  readonly handles = new Set<number>();
  readonly fds = new Map<number, ScriptedSource>();
  readonly busyFds = new Set<number>();
  memory: WebAssembly.Memory | undefined;
  stop: Int32Array | undefined;
  wakeFd = -2;
  /** fills that delivered records */
  fills = 0;
  readonly fill = ((handle: bigint, fd: number, stage: number, len: number, _timeout: number, more: number): number => {
    if (!this.handles.has(Number(handle))) return POLL_SLOW;
    const src = this.fds.get(fd);
    if (!src || !this.memory) return POLL_SLOW;
    if (this.busyFds.has(fd) && !more) return -EBUSY;
    if (this.stop && Atomics.load(this.stop, 0) !== 0) {
      this.busyFds.delete(fd);
      return -EINTR;
    }
    stage >>>= 0;
    len >>>= 0;
    if (stage + len > this.memory.buffer.byteLength) return POLL_SLOW;
    const n = src.poll(0, new Uint8Array(this.memory.buffer, stage, len));
    if (n > 0) {
      this.busyFds.add(fd);
      this.fills++;
    } else this.busyFds.delete(fd);
    // kMore: the staging area filled up before the source was empty
    return n > 0 && src.queue.length > 0 ? n | (1 << 30) : n;
  }) as unknown as (...args: never[]) => number;
  readonly done = ((fd: number): number => {
    this.busyFds.delete(fd);
    return 0;
  }) as unknown as (...args: never[]) => number;
  bind(wakeFd: number, stop: SharedArrayBuffer): void {
    this.wakeFd = wakeFd;
    this.stop = new Int32Array(stop);
  }
  handle(handle: number, open: boolean): void {
    if (open) this.handles.add(handle);
    else this.handles.delete(handle);
  }
  buffer(fd: number, src: RecordSource | undefined): boolean {
    this.busyFds.delete(fd);
    if (src === undefined) return this.fds.delete(fd), true;
    if (!(src instanceof ScriptedSource)) return false;
    this.fds.set(fd, src);
    return true;
  }
  busy(fd: number): boolean {
    return this.busyFds.has(fd);
  }
}

function fakeDirect(poll: FakeDirectPoll): DirectMapOps {
  return {
    owner: 'userspace',
    fn: (() => -22) as unknown as (...args: never[]) => number,
    poll,
    bind: (memory) => void (poll.memory = memory),
    add: () => undefined,
    remove: () => undefined,
    close: () => undefined,
    release: () => undefined,
  };
}

function fakeBackend(src: ScriptedSource, direct?: FakeDirectPoll, mapType: number = MAP_TYPE.RINGBUF): Backend {
  const obj: LoadedObject = {
    backend: 'userspace',
    programs: [],
    maps: [{ name: 'rb', type: mapType, keySize: 0, valueSize: 0, maxEntries: 1 << 20, fd: 100, opValueSize: 0 }],
    attach: () => undefined,
    mapOperate: () => -22,
    openRecords: () => src,
    close: () => undefined,
  };
  return {
    name: 'userspace',
    load: () => obj,
    wakeFd: () => -1,
    dispose: () => undefined,
    ...(direct ? { directMapOps: () => fakeDirect(direct) } : {}),
  };
}

function record(i: number, size: number): Uint8Array {
  const r = new Uint8Array(size);
  for (let j = 0; j < size; j++) r[j] = (i * 31 + j * 7 + 3) & 0xff;
  if (size >= 4) new DataView(r.buffer).setUint32(0, i, true);
  return r;
}

function fnv(b: Uint8Array): number {
  let h = 2166136261;
  for (const x of b) h = Math.imul(h ^ x, 16777619) >>> 0;
  return h >>> 0;
}

interface Guest {
  setup(): number;
  configure(failEvery: number, reenter: number): void;
  set_scribble(n: number): void;
  poll_at(data: number, maxSize: number): number;
  poll(offset: number, maxSize: number, wrapper: number): number;
  buf_addr(): number;
  nlog(): number;
  inner_result(): number;
  log_ptr(): number;
  log_size(): number;
  log_hash(): number;
  log_ctx(): number;
  memory: WebAssembly.Memory;
  _initialize(): void;
}

const wasm = buildGuest(path.join(FIXTURES, 'records.c'), path.join(BUILD, 'records.wasm'), ['-mexec-model=reactor']);
const bytes = new Uint8Array(readFileSync(wasm));
const shape = readModuleShape(bytes);
const module = new WebAssembly.Module(bytes);

type Mode = 'host' | 'direct';

function start(mode: Mode = 'host', mapType: number = MAP_TYPE.RINGBUF): { g: Guest; src: ScriptedSource; logs: string[]; direct: FakeDirectPoll | undefined; stop: StopSignal } {
  const src = new ScriptedSource();
  const logs: string[] = [];
  const direct = mode === 'direct' ? new FakeDirectPoll() : undefined;
  const stop = new StopSignal();
  const host = new WasmBpfHost({
    backend: fakeBackend(src, direct, mapType),
    objectName: 'records',
    verbose: true,
    wrapperModule: 'callback-wrapper',
    callbackExport: 'go-callback',
    stop,
    log: (l) => logs.push(l),
  });
  const inst = new WebAssembly.Instance(module, host.imports(shape) as WebAssembly.Imports);
  host.bind(inst);
  const g = inst.exports as unknown as Guest;
  g._initialize();
  if (g.setup() !== 100) throw new Error('setup failed');
  if (direct) {
    if (!logs.some((l) => /buffer_poll: served by the backend from Wasm/.test(l))) throw new Error(`no direct poll: ${logs.join('\n')}`);
    // the first poll of a buffer (and of a callback index) goes through the host, which then registers
    // both with the direct poll: the records the tests queue next come through the direct path
    if (g.poll(0, 16384, 0) !== 0 || !direct.fds.has(100)) throw new Error('the buffer was not registered with the direct poll');
  }
  return { g, src, logs, direct, stop };
}

interface Seen {
  ptr: number;
  size: number;
  hash: number;
  ctx: number;
}

function seen(g: Guest): Seen[] {
  const n = g.nlog();
  const u32 = new Uint32Array(g.memory.buffer);
  const col = (at: number, i: number): number => u32[(at >>> 2) + i]!;
  const out: Seen[] = [];
  for (let i = 0; i < n; i++) out.push({ ptr: col(g.log_ptr(), i), size: col(g.log_size(), i), hash: col(g.log_hash(), i), ctx: col(g.log_ctx(), i) });
  return out;
}

/** polls until every queued record was delivered (or 10,000 polls); the non-negative poll results summed */
function drain(g: Guest, src: ScriptedSource, offset: number, maxSize: number, wrapper = 0): { sum: number; errors: number[] } {
  let sum = 0;
  const errors: number[] = [];
  for (let i = 0; i < 10_000; i++) {
    const r = g.poll(offset, maxSize, wrapper);
    if (r < 0) errors.push(r);
    else if (r === 0 && src.queue.length === 0) break;
    else sum += r;
  }
  return { sum, errors };
}

function check(t: Tap.Test, g: Guest, records: Uint8Array[], offset: number, maxSize: number, ctx = 77): void {
  const got = seen(g);
  t.equal(got.length, records.length, 'every record delivered exactly once');
  const data = g.buf_addr() + offset;
  let bad = 0;
  for (let i = 0; i < Math.min(got.length, records.length); i++) {
    const r = records[i]!;
    const copied = Math.min(r.length, maxSize);
    const s = got[i]!;
    if (s.ptr !== data || s.size !== copied || s.hash !== fnv(r.subarray(0, copied)) || s.ctx !== ctx) {
      if (bad++ < 3) t.fail(`record ${i} (${r.length} bytes): got ptr ${s.ptr} size ${s.size} hash ${s.hash} ctx ${s.ctx}, want ptr ${data} size ${copied} hash ${fnv(r.subarray(0, copied))} ctx ${ctx}`);
    }
  }
  t.equal(bad, 0, 'in order, at data_ptr, with the copied size, the exact bytes and the ctx');
}

const sizes = (n: number, f: (i: number) => number): Uint8Array[] => Array.from({ length: n }, (_, i) => record(i, f(i)));

for (const mode of ['host', 'direct'] as const) {
  t.test(`[${mode}] large guest buffer: chunks through the Wasm dispatcher, sizes 1..300 (word copy and memory.copy), two host batches`, async (t) => {
    const { g, src, direct } = start(mode);
    const recs = sizes(3000, (i) => 1 + ((i * 37) % 300));
    src.queue.push(...recs);
    const { sum, errors } = drain(g, src, 0, 16384);
    t.same(errors, []);
    t.equal(sum, 3000, 'poll results add up to the records delivered');
    t.ok(src.polls >= 2, `the host's 256 KiB batch was refilled (${src.polls} source polls)`);
    check(t, g, recs, 0, 16384);
    if (direct) t.ok(direct.fills > 1, `records came through the direct poll (${direct.fills} fills)`);
  });

  t.test(`[${mode}] unaligned guest buffer (data_ptr % 8 == 3)`, async (t) => {
    const { g, src, direct } = start(mode);
    const recs = sizes(500, (i) => 5 + ((i * 13) % 90));
    src.queue.push(...recs);
    drain(g, src, 3, 5000);
    check(t, g, recs, 3, 5000);
    if (direct) t.ok(direct.fills > 1, `records came through the direct poll (${direct.fills} fills)`);
  });

  t.test(`[${mode}] a callback error stops the poll; the rest come with the next polls, none lost or repeated`, async (t) => {
    const { g, src, direct } = start(mode);
    g.configure(7, 0);
    const recs = sizes(400, (i) => 8 + (i % 40));
    src.queue.push(...recs);
    const { errors } = drain(g, src, 0, 8192);
    t.equal(errors.length, Math.floor(400 / 7), 'one -7 per failing record');
    t.ok(errors.every((e) => e === -7), 'the callback result is returned as is');
    check(t, g, recs, 0, 8192);
    if (direct) t.ok(direct.fills > 1, `records came through the direct poll (${direct.fills} fills)`);
  });

  t.test(`[${mode}] small guest buffer: one host call per record, larger records truncated and reported`, async (t) => {
    const { g, src, logs, direct } = start(mode);
    const recs = sizes(200, (i) => (i % 10 === 0 ? 700 : 24));
    src.queue.push(...recs);
    drain(g, src, 0, 512);
    check(t, g, recs, 0, 512);
    t.ok(logs.some((l) => /a record of 700 bytes .* truncated to the guest buffer's 512 bytes/.test(l)), 'truncation reported');
  });

  t.test(`[${mode}] records larger than the staging area (but not than the buffer) are delivered whole; larger ones truncated`, async (t) => {
    const { g, src, direct } = start(mode);
    const recs = [record(0, 24), record(1, 1995), record(2, 24), record(3, 3000), record(4, 2000), record(5, 8)];
    src.queue.push(...recs);
    drain(g, src, 0, 2000);
    check(t, g, recs, 0, 2000);
    if (direct) t.ok(direct.fills > 0, `small records came through the direct poll (${direct.fills} fills), the large ones through the host`);
  });

  t.test(`[${mode}] TinyGo: chunks delivered to the go-callback export with the ctx`, async (t) => {
    const { g, src, direct } = start(mode);
    const recs = sizes(1000, (i) => 16 + (i % 64));
    src.queue.push(...recs);
    drain(g, src, 0, 16384, 1);
    check(t, g, recs, 0, 16384);
  });

  t.test(`[${mode}] a callback that polls the same buffer again gets -EBUSY; nothing is delivered twice`, async (t) => {
    const { g, src, direct } = start(mode);
    g.configure(0, 1);
    const recs = sizes(300, () => 32);
    src.queue.push(...recs);
    drain(g, src, 0, 16384);
    t.equal(g.inner_result(), -16, 'the nested poll returned -EBUSY');
    check(t, g, recs, 0, 16384);
    if (direct) t.ok(direct.fills > 0, 'through the direct poll');
  });
}

t.test('[direct] records the guest overwrote in its own poll buffer are reported lost; the poll goes on', async (t) => {
  const { g, src, logs, direct } = start('direct');
  g.set_scribble(11); // the 11th callback wipes the rest of its buffer, where the batch's next records wait
  src.queue.push(...sizes(100, () => 32));
  t.equal(g.poll(0, 4096, 0), 11, 'the records up to the careless callback were delivered and counted');
  const lost = logs.find((l) => /record\(s\) of map fd 100 were lost: the guest overwrote them in its poll buffer/.test(l));
  t.ok(lost, `reported: ${lost}`);
  t.equal(Number(/(\d+) record\(s\)/.exec(lost ?? '')?.[1]), 89, 'the other 89 of the batch');
  g.set_scribble(0);
  t.equal(g.poll(0, 4096, 0), 0, 'the next poll (the host\'s, which registers the buffer again) finds nothing');
  const more = Array.from({ length: 50 }, (_, i) => record(1000 + i, 40));
  src.queue.push(...more);
  const { errors } = drain(g, src, 0, 4096);
  t.same(errors, []);
  t.equal(g.nlog(), 11 + 50, 'later records arrive as before');
  t.ok(direct!.fills > 1, 'through the direct poll again');
});

t.test('[direct] out-of-range buffers get -EFAULT as from the host poll, and guest memory is left alone', async (t) => {
  const { g, src, direct } = start('direct');
  src.queue.push(...sizes(20, () => 24));
  const before = new Uint8Array(g.memory.buffer).slice(0, 4096);
  const EFAULT = -14;
  t.equal(g.poll_at(0xfffffff9, 2000), EFAULT, 'a buffer that wraps around the address space (its aligned stage would be 0)');
  t.same(new Uint8Array(g.memory.buffer).slice(0, 4096), before, 'nothing written at the bottom of memory');
  t.equal(g.poll_at(g.memory.buffer.byteLength - 1000, 4096), EFAULT, 'a buffer past the end of memory');
  t.equal(g.poll_at(g.buf_addr(), -5), EFAULT, 'a negative size');
  t.equal(g.nlog(), 0, 'no record delivered');
  t.equal(direct!.fills, 0, 'the direct poll handed every one to the host');
  t.equal(g.poll(0, 4096, 0), 20, 'a good buffer then gets them all');
});

t.test('[direct] a perf event array is served by the direct poll too', async (t) => {
  const { g, src, direct } = start('direct', MAP_TYPE.PERF_EVENT_ARRAY);
  const recs = sizes(700, (i) => 4 + ((i * 11) % 120));
  src.queue.push(...recs);
  const { errors } = drain(g, src, 0, 4096);
  t.same(errors, []);
  check(t, g, recs, 0, 4096);
  t.ok(direct!.fills > 1, `through the direct poll (${direct!.fills} fills)`);
});

t.test('[direct] a stop request ends a direct poll like the host poll: Interrupted', async (t) => {
  const { g, src, stop } = start('direct');
  src.queue.push(...sizes(10, () => 16));
  stop.request(2, -1);
  t.throws(() => g.poll(0, 4096, 0), Interrupted, 'the run is interrupted');
  t.equal(g.nlog(), 0, 'nothing delivered after the stop');
});

for (const mode of ['host', 'direct'] as const) {
  t.test(`[${mode}] a draining stop (the launched command ended) delivers what is queued, then Interrupted`, async (t) => {
    const { g, src, stop } = start(mode);
    src.queue.push(...sizes(10, () => 16));
    stop.request(15, -1, true);
    t.equal(stop.stopped, 15, 'the signal number reads as before');
    t.ok(stop.draining, 'draining');
    t.equal(g.poll(0, 4096, 0), 10, 'the 10 records already produced are delivered');
    t.throws(() => g.poll(0, 4096, 0), Interrupted, 'then the run is interrupted');
    t.equal(g.nlog(), 10, 'none lost, none twice');
  });
}

t.test('createDispatcher: only a Wasm function of type (i32, i32, i32) -> i32 gets a dispatcher', async (t) => {
  const mem = new WebAssembly.Memory({ initial: 1 });
  // (module (func (export "f") (param i32 i32 i64) (result i32) i32.const 0))
  const wrong = new WebAssembly.Instance(
    new WebAssembly.Module(
      new Uint8Array([0, 97, 115, 109, 1, 0, 0, 0, 1, 8, 1, 0x60, 3, 0x7f, 0x7f, 0x7e, 1, 0x7f, 3, 2, 1, 0, 7, 5, 1, 1, 102, 0, 0, 10, 6, 1, 4, 0, 0x41, 0, 0x0b]),
    ),
  ).exports['f'];
  t.equal(createDispatcher(mem, wrong), undefined, 'i64 parameter: no dispatcher (LinkError caught)');
  t.equal(createDispatcher(mem, (a: number, b: number) => a + b), undefined, 'two parameters: none');
  t.equal(createDispatcher(mem, 42), undefined, 'not a function: none');
  const { g } = start();
  t.ok(createDispatcher(g.memory, (g as unknown as Record<string, unknown>)['go-callback']), 'the guest callback gets one');
});
