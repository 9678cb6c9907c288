// Ring buffer and perf buffer readers through the FFI path, with the addon's bufferPoll contract
// (native/src/buffer.cc): records copied into `out` by src/records.ts's writer ([u32 size][u32 0][data, padded to 8]), none dropped.
import type { TypeObject } from 'koffi';
import { libbpfApi } from './api.js';
import { libcApi, lastErrno } from './libc.js';
import { koffi } from './library.js';
import { captureLog } from './log.js';
import { checkPtr } from './errors.js';
import { ERRNO } from '../../src/kernel/uapi.js';
import { recordView, writeRecord } from '../../src/records.js';

const { ENOBUFS, EINTR, EBADF } = ERRNO;

const POLLIN = 1;
const POLLNVAL = 0x20;

interface Reader {
  ring: boolean;
  handle: bigint;
  /** libbpf's epoll fd over the buffer's fds (readable when records are there) */
  epfd: number;
  /** records consumed from the kernel, not yet delivered */
  pending: Uint8Array[];
  lost: number;
  callbacks: bigint[];
}

const readers = new Map<number, Reader>();
let nextId = 1;

function copyOf(data: bigint, size: number): Uint8Array {
  return size === 0 ? new Uint8Array(0) : new Uint8Array(koffi().view(data, size)).slice();
}

function register(fn: (...args: never[]) => unknown, proto: TypeObject): bigint {
  return koffi().register(fn, koffi().pointer(proto));
}

export function ringbufOpen(mapFd: number): number {
  const { api, protos } = libbpfApi();
  const log = captureLog(0);
  const r: Reader = { ring: true, handle: 0n, epfd: -1, pending: [], lost: 0, callbacks: [] };
  const cb = register(((_ctx: bigint, data: bigint, size: number) => (r.pending.push(copyOf(data, Number(size))), 0)) as never, protos.ringSample);
  r.callbacks.push(cb);
  try {
    r.handle = checkPtr(api.ring_buffer__new(mapFd, cb, null, null), 'ring_buffer__new', `map fd ${mapFd}`, log);
  } catch (err) {
    koffi().unregister(cb);
    throw err;
  }
  r.epfd = api.ring_buffer__epoll_fd(r.handle);
  const id = nextId++;
  readers.set(id, r);
  return id;
}

export function perfbufOpen(mapFd: number, pageCount: number): number {
  const { api, protos } = libbpfApi();
  const log = captureLog(0);
  const r: Reader = { ring: false, handle: 0n, epfd: -1, pending: [], lost: 0, callbacks: [] };
  const sample = register(((_ctx: bigint, _cpu: number, data: bigint, size: number) => void r.pending.push(copyOf(data, size))) as never, protos.perfSample);
  const lost = register(((_ctx: bigint, _cpu: number, cnt: number | bigint) => void (r.lost += Number(cnt))) as never, protos.perfLost);
  r.callbacks.push(sample, lost);
  try {
    r.handle = checkPtr(api.perf_buffer__new(mapFd, pageCount, sample, lost, null, null), 'perf_buffer__new', `map fd ${mapFd}`, log);
  } catch (err) {
    for (const c of r.callbacks) koffi().unregister(c);
    throw err;
  }
  r.epfd = api.perf_buffer__epoll_fd(r.handle);
  const id = nextId++;
  readers.set(id, r);
  return id;
}

/** whatever the kernel buffer holds now, into r.pending: 0 or -errno */
function consume(r: Reader): number {
  const { api } = libbpfApi();
  const n = r.ring ? api.ring_buffer__consume(r.handle) : api.perf_buffer__consume(r.handle);
  return n < 0 ? n : 0;
}

/** pending records into `out` while they fit: the count, or -ENOBUFS when the first alone does not fit */
function deliver(r: Reader, out: Uint8Array): number {
  let at = 0;
  let count = 0;
  const view = recordView(out);
  while (r.pending.length) {
    const next = writeRecord(out, view, at, r.pending[0]!);
    if (next < 0) break;
    at = next;
    count++;
    r.pending.shift();
  }
  return count > 0 ? count : r.pending.length ? -ENOBUFS : 0;
}

const pollfds = new Uint8Array(16);
const pollView = new DataView(pollfds.buffer);

/** waits up to timeoutMs (-1: no limit) for the buffer or wakeFd: 'data', 'wake', 'timeout' or -errno */
function wait(r: Reader, timeoutMs: number, wakeFd: number): 'data' | 'wake' | 'timeout' | number {
  pollView.setInt32(0, r.epfd, true);
  pollView.setInt16(4, POLLIN, true);
  pollView.setInt16(6, 0, true);
  pollView.setInt32(8, wakeFd, true);
  pollView.setInt16(12, POLLIN, true);
  pollView.setInt16(14, 0, true);
  const n = libcApi().poll(pollfds, wakeFd >= 0 ? 2 : 1, timeoutMs);
  if (n < 0) {
    const e = lastErrno();
    return e === EINTR ? 'timeout' : -e;
  }
  if (n === 0) return 'timeout';
  const wake = wakeFd >= 0 ? pollView.getInt16(14, true) : 0;
  if (wake & POLLNVAL) return -EBADF; // a wake fd that is not open
  if (wake) return 'wake';
  return 'data';
}

export function bufferPoll(id: number, timeoutMs: number, wakeFd: number, out: Uint8Array | ArrayBuffer): number {
  const r = readers.get(id);
  if (!r) return -EBADF;
  const buf = out instanceof Uint8Array ? out : new Uint8Array(out);
  // 1. records left over from an earlier call, and whatever the kernel buffer holds (no syscall)
  if (!r.pending.length) {
    const err = consume(r);
    if (err < 0 && !r.pending.length) return err;
  }
  if (r.pending.length) return deliver(r, buf);
  if (timeoutMs === 0 && wakeFd < 0) return 0;
  // 2. wait for records or for the wake fd (its counter left for the caller)
  const deadline = timeoutMs > 0 ? Date.now() + timeoutMs : 0;
  let left = timeoutMs;
  for (;;) {
    const w = wait(r, left, wakeFd);
    if (typeof w === 'number') return w;
    if (w === 'wake') return -EINTR;
    if (w === 'data') {
      const err = consume(r);
      if (r.pending.length) return deliver(r, buf);
      if (err < 0) return err;
    }
    // a timeout, a signal, or readiness without a record (discarded ring buffer records)
    if (timeoutMs === 0) return 0;
    if (timeoutMs > 0) {
      left = deadline - Date.now();
      if (left <= 0) return 0;
    }
  }
}

export function bufferPendingSize(id: number): number {
  return readers.get(id)?.pending[0]?.length ?? 0;
}

export function bufferLost(id: number): number {
  return readers.get(id)?.lost ?? 0;
}

export function bufferClose(id: number): void {
  const r = readers.get(id);
  if (!r) return;
  readers.delete(id);
  const { api } = libbpfApi();
  if (r.ring) api.ring_buffer__free(r.handle);
  else api.perf_buffer__free(r.handle);
  for (const c of r.callbacks) koffi().unregister(c);
}
