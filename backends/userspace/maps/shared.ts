// Maps in shared memory (native/agent/maps/, through the addon): what the userspace backend creates when
// its programs run inside traced processes (the agent), so that the guest's map_operate and buffer_poll
// read what every agent writes. One SharedMap per map of the object; its memfd goes to every agent.
import { loadNative, type NativeAddon, type NativeShmMap } from '../../linux/native.js';
import { MAP_TYPE as T } from '../../../src/kernel/uapi.js';
import { E, MapCreateError, type MapSpec } from './common.js';

/** the map types native/agent/maps implements (wbpf_maps.h); others stay TypeScript maps no agent can use */
export const SHARED_MAP_TYPES: ReadonlySet<number> = new Set<number>([
  T.HASH, T.ARRAY, T.PERF_EVENT_ARRAY, T.PERCPU_HASH, T.PERCPU_ARRAY, T.LRU_HASH, T.LRU_PERCPU_HASH, T.RINGBUF,
]);

const LOOKUP = 1, UPDATE = 2;

type ShmAddon = Pick<
  NativeAddon,
  'shmMapCreate' | 'shmMapClose' | 'shmMapOp' | 'shmRingPoll' | 'shmRingPendingSize' | 'shmMapFreeze' | 'shmMapDrops' | 'shmPerfOpenReaders'
>;

let addon: ShmAddon | undefined;
function shm(): ShmAddon {
  if (addon) return addon;
  let a: NativeAddon;
  try {
    a = loadNative();
  } catch (e) {
    throw new MapCreateError(`shared-memory maps need the native addon: ${e instanceof Error ? e.message : String(e)}`, E.EOPNOTSUPP);
  }
  if (typeof a.shmMapCreate !== 'function') {
    throw new MapCreateError('the native addon has no shared-memory maps (rebuild it: npx cmake-js compile -d native --out native/build)', E.EOPNOTSUPP);
  }
  addon = a;
  return a;
}

export class SharedMap {
  readonly id: number;
  readonly fd: number;
  readonly notifyFd: number;
  readonly opValueSize: number;
  private closed = false;

  /** wbpf_map_create with the kernel's creation checks (MapCreateError with the errno); `initial`: element 0 of a global-data array */
  constructor(
    readonly spec: MapSpec,
    ncpus: number,
    perfBytesPerCpu: number,
    initial?: Uint8Array,
  ) {
    const a = shm();
    let m: NativeShmMap;
    try {
      m = a.shmMapCreate(spec.type, spec.keySize, spec.valueSize, spec.maxEntries, spec.flags, ncpus, perfBytesPerCpu, spec.name);
    } catch (e) {
      const errno = (e as { errno?: unknown }).errno;
      throw new MapCreateError(e instanceof Error ? e.message : String(e), typeof errno === 'number' ? Math.abs(errno) : E.EINVAL);
    }
    this.id = m.id;
    this.fd = m.fd;
    this.notifyFd = m.notifyFd;
    this.opValueSize = m.opValueSize;
    if (initial && initial.byteLength > 0) {
      const mem = new Uint8Array(8 + m.opValueSize);
      mem.set(initial.subarray(0, Math.min(initial.byteLength, spec.valueSize)), 8);
      const r = a.shmMapOp(UPDATE, m.id, mem, 0, 8, 0);
      if (r !== 0) {
        a.shmMapClose(m.id);
        throw new MapCreateError(`map '${spec.name}': setting its initial value failed (${r})`, -r);
      }
    }
  }

  get isRing(): boolean {
    return this.spec.type === T.RINGBUF || this.spec.type === T.PERF_EVENT_ARRAY;
  }

  /** map_operate: 0 or -errno, never throws (keyOff -1: a NULL key) */
  operate(cmd: number, mem: Uint8Array, keyOff: number, valOff: number, flags: number): number {
    if (this.closed) return -E.EBADF;
    return shm().shmMapOp(cmd, this.id, mem, keyOff, valOff, flags);
  }

  /** bpf_map_freeze (libbpf freezes .rodata after load) */
  freeze(): void {
    shm().shmMapFreeze(this.id);
  }

  /** a perf event array's readers opened (slots below ncpus accept output) */
  openReaders(): void {
    if (this.spec.type === T.PERF_EVENT_ARRAY) shm().shmPerfOpenReaders(this.id);
  }

  /** records in RecordSource.poll's format, waiting up to timeoutMs on the ring's eventfd and stopFd */
  poll(timeoutMs: number, out: Uint8Array, stopFd: number): number {
    if (this.closed) return -E.EBADF;
    return shm().shmRingPoll(this.id, timeoutMs, out, stopFd);
  }

  pendingSize(): number {
    return this.closed ? 0 : shm().shmRingPendingSize(this.id);
  }

  /** ring buffer: records refused because it was full; perf event array: lost samples */
  drops(): number {
    return this.closed ? 0 : shm().shmMapDrops(this.id);
  }

  /** a lookup of key 0 (global data), for tests */
  lookupZero(): Uint8Array | undefined {
    const mem = new Uint8Array(8 + this.opValueSize);
    return this.operate(LOOKUP, mem, 0, 8, 0) === 0 ? mem.subarray(8) : undefined;
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    shm().shmMapClose(this.id);
  }
}
