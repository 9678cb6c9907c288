// Record delivery of wasm_bpf_buffer_poll (and TinyGo's wrapper poll), for the handles host.ts has
// (the batch framing, [u32 size][u32 0][data padded to 8], is src/records.ts's: its writer, read here)
// checked: the record buffers (BufferState), the JavaScript poll, chunked delivery through dispatch.ts,
// truncation reports, leftover records, the callback checks and the one-poll-at-a-time flag.
import type { LoadedObject, MapInfo, RecordSource } from '../../backends/backend.js';
import { MAP_TYPE } from '../../backends/backend.js';
import type { DirectPoll } from '../../backends/fastpath.js';
import { Interrupted } from '../errors.js';
import type { ModuleShape } from '../wasm/imports.js';
import { EBADF, EBUSY, EFAULT, EINTR, EINVAL, ENOBUFS, errnoName } from './errno.js';
import type { GuestMemory } from './memory.js';
import { createDispatcher, type RecordDispatcher } from './dispatch.js';
import { checkCallback, type GuestCallback } from './callback.js';
import type { DirectPollFunction } from './pollgate.js';
import { RECORD_HEADER, recordSpan } from '../records.js';

/** What the delivery needs of the host (host.ts): the guest's memory, its maps, and where to report. */
/** the run's stop request (src/runtime/stop.ts's StopSignal): polls end with -EINTR once it is set */
export interface StopFlag {
  readonly stopped: number;
  /** the stop asks polls to deliver the records already produced first (a launched command ended) */
  readonly draining?: boolean;
  readonly shared: SharedArrayBuffer;
}

export interface DeliveryOptions {
  verbose: boolean;
  /** TinyGo: import module carrying the table-less poll, and the callback the host calls */
  wrapperModule: string;
  callbackExport: string;
  stop: StopFlag;
  /** diagnostics (host stderr) */
  log: (line: string) => void;
  /** the guest's memory (throws before the instance is bound) */
  memory: () => GuestMemory;
  /** the guest's map with this fd (fd >= 0), if it owns one */
  map: (fd: number) => { obj: LoadedObject; info: MapInfo } | undefined;
  /** logs a backend failure and answers its -errno */
  report: (err: unknown, what: string) => number;
}

interface BufferState {
  src: RecordSource;
  /** where the backend writes a batch; delivered from here in chunks (see dispatch.ts) or one by one */
  out: ArrayBuffer;
  u8: Uint8Array;
  u32: Uint32Array;
  /** byte position of the next undelivered record in `out` and how many remain */
  pos: number;
  remaining: number;
  truncated: number;
  /** registered with the direct poll (pollgate.ts) right now (only while nothing waits in `out`) */
  served: boolean;
}

const INITIAL_OUT = 256 * 1024;
/** a guest poll buffer with at least this many bytes (after 8-byte alignment) gets chunks of records
 * delivered by a Wasm dispatcher; smaller ones, one record per host -> Wasm call */
const MIN_STAGE = 1024;
/** fewer records than this left in a batch go one by one */
const MIN_CHUNK_RECORDS = 8;
/** after a draining stop request, how long polls still deliver the records already produced (none are waited for) */
const STOP_DRAIN_MS = 250;

/** The record buffers and callbacks of one guest instance. */
export class RecordDelivery {
  private readonly buffers = new Map<number, BufferState>();
  /** when a poll first saw the stop request */
  private stopSeen: number | undefined;
  /** callbacks by table index, once checked (callback.ts) */
  private readonly callbacks = new Map<number, GuestCallback>();
  /** per guest callback: its Wasm dispatcher, or null when it cannot have one (JS delivery) */
  private readonly dispatchers = new Map<GuestCallback, RecordDispatcher | null>();
  private table: WebAssembly.Table | undefined;
  /** the direct poll (pollgate.ts) and the backend's record source behind it, once the guest is bound */
  private directPoll: DirectPollFunction | undefined;
  private dp: DirectPoll | undefined;
  /** TinyGo's callback export, as exported (checked at its first poll) */
  private goExport: unknown;
  private goCallback: GuestCallback | undefined;
  /** the guest module (its imports and function types: which table entries are callbacks) */
  private shape: ModuleShape | undefined;
  /** the imports the host gives the guest as Wasm functions of its own modules (callback.ts) */
  private known: ReadonlyMap<unknown, string> = new Map();
  /**
   * 1 while a poll of any buffer delivers records (from the JavaScript poll or the direct one, which
   * shares it as a global of its Wasm module): a poll from inside a record callback gets -EBUSY
   */
  private polling: { value: number } = { value: 0 };
  private saidBusy = false;

  constructor(private readonly opts: DeliveryOptions) {}

  /** the guest module, and the host's Wasm functions among its imports (never callbacks) */
  guest(shape: ModuleShape, known: ReadonlyMap<unknown, string>): void {
    this.shape = shape;
    this.known = known;
  }

  /** the instance's function table (callbacks by index) and TinyGo's callback export */
  instance(table: WebAssembly.Table | undefined, goExport: unknown): void {
    this.table = table;
    this.goExport = goExport;
  }

  /** from now on the direct poll serves `dp`'s buffers too; it shares the one-poll-at-a-time flag */
  useDirect(poll: DirectPollFunction, dp: DirectPoll): void {
    this.directPoll = poll;
    this.dp = dp;
    this.polling = poll.active;
  }

  /** wasm_bpf_buffer_poll, its handle checked: the callback is the guest's table entry `sampleFunc` */
  tablePoll(sampleFunc: number, fd: number, ctx: number, data: number, maxSize: number, timeoutMs: number): number {
    const fn = this.tableFunction(sampleFunc);
    if (!fn) return -EINVAL;
    // the direct poll may call this index through the table from now on: it is a Wasm function of
    // the callback's exact type (the dispatcher links only with one)
    if (this.directPoll && this.dispatcher(fn)) this.directPoll.allow(sampleFunc);
    return this.poll(fd, fn, ctx, data, maxSize, timeoutMs);
  }

  /** TinyGo's wrapper poll, its handle checked: the callback is the guest's callback export */
  wrapperPoll(fd: number, ctx: number, data: number, maxSize: number, timeoutMs: number): number {
    let fn = this.goCallback;
    if (!fn) {
      const { wrapperModule, callbackExport } = this.opts;
      if (this.goExport === undefined) {
        this.opts.log(`wasm-bpf: the module imports ${wrapperModule}.wasm_bpf_buffer_poll but exports no function "${callbackExport}" (set it with -c/--callback-export-name)`);
        return -EINVAL;
      }
      const checked = checkCallback(this.goExport, this.shape, this.known);
      if (typeof checked === 'string') {
        this.opts.log(`wasm-bpf: ${wrapperModule}.wasm_bpf_buffer_poll: the callback export "${callbackExport}" ${checked}: -EINVAL`);
        return -EINVAL;
      }
      fn = this.goCallback = checked;
    }
    return this.poll(fd, fn, ctx, data, maxSize, timeoutMs);
  }

  /** the map with this fd is going away: its reader closes (and the direct poll stops serving it) */
  close(fd: number): void {
    const buf = this.buffers.get(fd);
    if (buf) {
      if (buf.served) this.dp?.buffer(fd, undefined);
      buf.src.close();
      this.buffers.delete(fd);
    }
  }

  private get memory(): GuestMemory {
    return this.opts.memory();
  }

  private debug(line: string): void {
    if (this.opts.verbose) this.opts.log(`wasm-bpf: ${line}`);
  }

  private dispatcher(fn: GuestCallback): RecordDispatcher | null {
    let d = this.dispatchers.get(fn);
    if (d === undefined) {
      d = createDispatcher(this.memory.memory, fn) ?? null;
      if (!d) this.debug('no Wasm dispatcher for the guest callback (shared memory?): records are delivered one host call each');
      this.dispatchers.set(fn, d);
    }
    return d;
  }

  private tableFunction(index: number): GuestCallback | undefined {
    let fn = this.callbacks.get(index);
    if (fn) return fn;
    const table = this.table;
    if (!table) {
      this.opts.log('wasm-bpf: wasm_bpf_buffer_poll: the module exports no __indirect_function_table (link with --export-table)');
      return undefined;
    }
    if (index < 0 || index >= table.length) {
      this.opts.log(`wasm-bpf: wasm_bpf_buffer_poll: callback index ${index} is outside the function table (${table.length} entries)`);
      return undefined;
    }
    const checked = checkCallback(table.get(index), this.shape, this.known);
    if (typeof checked === 'string') {
      this.opts.log(`wasm-bpf: wasm_bpf_buffer_poll: the callback (table entry ${index}) ${checked}: -EINVAL`);
      return undefined;
    }
    this.callbacks.set(index, checked);
    return checked;
  }

  private buffer(fd: number): BufferState | number {
    const existing = this.buffers.get(fd);
    if (existing) return existing;
    const entry = fd >= 0 ? this.opts.map(fd) : undefined;
    if (entry === undefined) return -EBADF;
    if (entry.info.type !== MAP_TYPE.RINGBUF && entry.info.type !== MAP_TYPE.PERF_EVENT_ARRAY) {
      this.opts.log(`wasm-bpf: wasm_bpf_buffer_poll: map '${entry.info.name}' (fd ${fd}) is neither a ring buffer nor a perf event array`);
      return -EINVAL;
    }
    let src: RecordSource;
    try {
      src = entry.obj.openRecords(fd);
    } catch (err) {
      return this.opts.report(err, `opening the record buffer of map '${entry.info.name}' failed`);
    }
    const out = new ArrayBuffer(INITIAL_OUT);
    const st: BufferState = {
      src,
      out,
      u8: new Uint8Array(out),
      u32: new Uint32Array(out),
      pos: 0,
      remaining: 0,
      truncated: 0,
      served: false,
    };
    this.buffers.set(fd, st);
    return st;
  }

  private poll(fd: number, fn: GuestCallback, ctx: number, data: number, maxSize: number, timeoutMs: number): number {
    // one poll at a time per guest: a callback polling any buffer (its own, whose records would come
    // twice or recurse without end, or another, whose records would overwrite the staged ones of a
    // shared guest buffer) gets -EBUSY, on every path (this poll, the direct one, TinyGo's wrapper)
    if (this.polling.value !== 0) {
      if (!this.saidBusy) this.debug(`poll of fd ${fd} from inside a record callback: -EBUSY (said once)`);
      this.saidBusy = true;
      return -EBUSY;
    }
    const mem = this.memory;
    const dataOff = data >>> 0;
    if (maxSize < 0 || !mem.inRange(dataOff, maxSize)) return -EFAULT;
    const st = this.buffer(fd);
    if (typeof st === 'number') return st;
    const dp = this.dp;
    this.polling.value = 1;
    try {
      if (!dp) return this.pollHost(st, fd, fn, ctx, dataOff, maxSize, timeoutMs);
      // While this poll (or records it leaves in `out`) is under way, the direct poll must not serve
      // the fd: its records would overtake them. Afterwards, with `out` empty, it may again.
      if (st.served) {
        dp.buffer(fd, undefined);
        st.served = false;
      }
      try {
        return this.pollHost(st, fd, fn, ctx, dataOff, maxSize, timeoutMs);
      } finally {
        if (st.remaining === 0 && this.buffers.get(fd) === st) st.served = dp.buffer(fd, st.src);
      }
    } finally {
      this.polling.value = 0;
    }
  }

  /**
   * keep(fd, from, end, count) for the direct poll: the `count` undelivered records it staged at
   * [from, end) of guest memory (a callback failed before them) move to the host's buffer, which the
   * next poll delivers first. The guest may have written over them: records are taken while their
   * sizes fit, the rest is reported lost.
   */
  readonly keep = (fd: number, from: number, end: number, count: number): number => {
    const st = this.buffers.get(fd);
    if (!st || count <= 0) return 0;
    if (st.served) {
      this.dp?.buffer(fd, undefined);
      st.served = false;
    }
    const g8 = this.memory.u8;
    from >>>= 0;
    end = Math.min(end >>> 0, g8.length);
    const dv = new DataView(g8.buffer);
    let p = from;
    let kept = 0;
    while (kept < count && end - p >= RECORD_HEADER) {
      const size = dv.getUint32(p, true);
      if (size > end - p - RECORD_HEADER) break;
      p += recordSpan(size);
      kept++;
    }
    if (kept < count) this.opts.log(`wasm-bpf: warning: ${count - kept} record(s) of map fd ${fd} were lost: the guest overwrote them in its poll buffer`);
    const bytes = p - from;
    if (bytes > st.out.byteLength) {
      st.out = new ArrayBuffer(bytes);
      st.u8 = new Uint8Array(st.out);
      st.u32 = new Uint32Array(st.out);
    }
    st.u8.set(g8.subarray(from, p), 0);
    st.pos = 0;
    st.remaining = kept;
    return 0;
  };

  private pollHost(st: BufferState, fd: number, fn: GuestCallback, ctx: number, dataOff: number, maxSize: number, timeoutMs: number): number {
    if (st.remaining === 0) {
      // a stop request ends the run; a draining one (the launched command ended) first delivers the records
      // already produced, for at most STOP_DRAIN_MS
      const stop = this.opts.stop;
      const draining = stop.stopped !== 0 && stop.draining === true;
      if (stop.stopped !== 0 && (!draining || (this.stopSeen ??= Date.now()) + STOP_DRAIN_MS < Date.now())) throw new Interrupted();
      let n = st.src.poll(draining ? 0 : timeoutMs, st.u8);
      // a draining stop that woke this wait: the records produced meanwhile are delivered first
      if (n === -EINTR && !draining && stop.stopped !== 0 && stop.draining === true) n = st.src.poll(0, st.u8);
      if (draining && (n === 0 || n === -EINTR)) throw new Interrupted();
      while (n === -ENOBUFS) {
        const need = st.src.pendingSize() + 8;
        let size = st.out.byteLength;
        while (size < need) size *= 2;
        st.out = new ArrayBuffer(size);
        st.u8 = new Uint8Array(st.out);
        st.u32 = new Uint32Array(st.out);
        n = st.src.poll(0, st.u8);
      }
      if (n === -EINTR) throw new Interrupted();
      if (n < 0) {
        this.debug(`poll of fd ${fd} failed: ${errnoName(n)}`);
        return n;
      }
      st.pos = 0;
      st.remaining = n;
    }
    // A batch of several records goes in chunks through a Wasm dispatcher (deliverChunks); a few
    // records (the steady-stream case: one per wake-up), records larger than the staging area and
    // callbacks without a dispatcher go one host -> Wasm call each (deliverOne).
    // The staging area: the guest's buffer from its first 8-byte aligned offset.
    const stage = dataOff + ((8 - (dataOff & 7)) & 7);
    const stageLen = dataOff + maxSize - stage;
    const disp = st.remaining >= MIN_CHUNK_RECORDS && stageLen >= MIN_STAGE ? this.dispatcher(fn) : null;
    let delivered = 0;
    for (;;) {
      if (disp && st.remaining >= MIN_CHUNK_RECORDS) {
        const r = this.deliverChunks(st, disp, ctx, dataOff, stage, stageLen);
        if (r < 0) return r;
        delivered += r;
      }
      if (st.remaining === 0) return delivered;
      const r = this.deliverOne(st, fn, ctx, dataOff, maxSize, fd);
      if (r < 0) return r;
      delivered++;
    }
  }

  /**
   * Chunks of whole records copied into the staging area [stage, stage + stageLen) of the guest's
   * buffer, each delivered by one dispatcher call. Stops when fewer than MIN_CHUNK_RECORDS are left or
   * the next record does not fit the staging area; the count delivered, or a callback's negative result.
   */
  private deliverChunks(st: BufferState, disp: RecordDispatcher, ctx: number, dataOff: number, stage: number, stageLen: number): number {
    const u8 = st.u8;
    let delivered = 0;
    while (st.remaining >= MIN_CHUNK_RECORDS) {
      const len = Math.min(stageLen, u8.length - st.pos);
      this.memory.u8.set(u8.subarray(st.pos, st.pos + len), stage);
      // the position is advanced after the chunk (a callback polling meanwhile gets -EBUSY: poll())
      const r = disp.run(ctx, dataOff, stage, stage + len, st.remaining);
      const done = r < 0 ? disp.done() : r;
      if (done > 0) {
        st.pos += disp.used();
        st.remaining -= done;
        delivered += done;
      }
      if (r < 0) return r;
      if (done === 0) break; // the next record alone does not fit: deliverOne takes it
    }
    return delivered;
  }

  /** the next record, copied (truncated to maxSize if need be) to data_ptr, and one callback call */
  private deliverOne(st: BufferState, fn: GuestCallback, ctx: number, dataOff: number, maxSize: number, fd: number): number {
    const mem = this.memory;
    const { u8, u32 } = st;
    const size = u32[st.pos >>> 2]!;
    const start = st.pos + RECORD_HEADER;
    let copied = size;
    if (size > maxSize) {
      copied = maxSize;
      if (st.truncated++ === 0) {
        this.opts.log(`wasm-bpf: warning: a record of ${size} bytes from map fd ${fd} was truncated to the guest buffer's ${maxSize} bytes (further truncations are counted silently)`);
      }
    }
    if (copied <= 128) {
      // small records (the common case): copying words beats allocating a subarray view per record
      let i = 0;
      if ((dataOff & 3) === 0) {
        const d32 = mem.u32;
        const words = copied >>> 2;
        const s0 = start >>> 2;
        const d0 = dataOff >>> 2;
        for (; i < words; i++) d32[d0 + i] = u32[s0 + i]!;
        i <<= 2;
      }
      const dst = mem.u8;
      for (; i < copied; i++) dst[dataOff + i] = u8[start + i]!;
    } else {
      mem.u8.set(u8.subarray(start, start + copied), dataOff);
    }
    st.pos += recordSpan(size);
    st.remaining--;
    return fn(ctx, dataOff, copied);
  }
}
