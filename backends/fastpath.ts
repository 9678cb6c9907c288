// An optional capability a backend may have besides Backend: map_operate and buffer_poll served
// without JavaScript (the kernel backend's C functions, native/src/guestmaps.cc). A backend without it
// implements Backend alone; the ABI layer asks with hasFastPaths().
import type { BackendName, GuestMapAccess, RecordSource } from './backend.js';

/**
 * map_operate served without JavaScript: a function the guest imports directly as
 * wasm_bpf.wasm_bpf_map_operate (i32 pointers), with the same checks and results as the ABI layer's
 * own. The ABI layer tells it the guest's memory and, as objects load and close, the maps it owns.
 */
export interface DirectMapOps {
  /** the backend whose maps it serves (LoadedObject.backend): other objects' maps stay on the JavaScript path */
  readonly owner: BackendName;
  readonly fn: (...args: never[]) => number;
  /** wasm_bpf_buffer_poll's common case without JavaScript, when the backend can serve it */
  readonly poll?: DirectPoll;
  bind(memory: WebAssembly.Memory): void;
  add(fd: number, keySize: number, opValueSize: number, access?: GuestMapAccess): void;
  remove(fd: number): void;
  /** the guest is done (its calls then get -EBADF) */
  close(): void;
  /** no instance can call `fn` any more: the backend may reuse what serves it for another guest */
  release(): void;
}

/**
 * The record source of src/abi/pollgate.ts's Wasm poll: C functions that poll a ring buffer straight
 * into guest memory, for the buffers, handles and callbacks the ABI layer has checked and registered.
 */
export interface DirectPoll {
  /** (i64 handle, i32 fd, i32 stage, i32 len, i32 timeoutMs, i32 more) -> count | 0 | -errno | POLL_SLOW */
  readonly fill: (...args: never[]) => number;
  /** (i32 fd) -> 0: the records of the last fill are delivered */
  readonly done: (...args: never[]) => number;
  /** the backend's wake fd and the run's stop flag */
  bind(wakeFd: number, stop: SharedArrayBuffer): void;
  /** an object handle of the guest opened or closed */
  handle(handle: number, open: boolean): void;
  /** serve fd's polls from `src` (false if this backend cannot: the host's path serves it), or stop (undefined) */
  buffer(fd: number, src: RecordSource | undefined): boolean;
}

/** DirectPoll.fill's answer for "not here: the host's JavaScript poll takes this call" */
export const POLL_SLOW = -65536;

/** What a backend with fast paths adds to Backend. */
export interface FastPaths {
  /** a direct map_operate (and poll) for one guest, when this backend has one now (the kernel backend with V8 fast calls) */
  directMapOps(): DirectMapOps | undefined;
}

export function hasFastPaths<B extends object>(backend: B): backend is B & FastPaths {
  return typeof (backend as Partial<FastPaths>).directMapOps === 'function';
}
