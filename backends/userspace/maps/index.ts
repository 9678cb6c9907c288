// The userspace map factory: one class per family (hash.ts, array.ts, ringbuf.ts, perf.ts, queue.ts,
// prog_array.ts), created from a map definition with the kernel's creation checks.

import { mapTypeName } from '../../../src/probe/tables.js';
import { MAP_TYPE as T } from '../../../src/kernel/uapi.js';
import { ArrayMap } from './array.js';
import { E, MapCreateError, type MapEnv, type MapSpec, UserMap } from './common.js';
import { HashMap } from './hash.js';
import { PerfEventArrayMap } from './perf.js';
import { type ProgRef, ProgArrayMap } from './prog_array.js';
import { QueueStackMap } from './queue.js';
import { RingBufMap } from './ringbuf.js';

export * from './common.js';
export { ArrayMap, HashMap, PerfEventArrayMap, ProgArrayMap, QueueStackMap, RingBufMap, type ProgRef };

/** the kernel map types (src/kernel/uapi.ts MAP_TYPE) this backend implements: each has a case in createMap */
const USERSPACE_MAP_TYPES: readonly number[] = [
  T.HASH, T.ARRAY, T.PROG_ARRAY, T.PERF_EVENT_ARRAY, T.PERCPU_HASH, T.PERCPU_ARRAY,
  T.LRU_HASH, T.LRU_PERCPU_HASH, T.QUEUE, T.STACK, T.RINGBUF,
];

export interface CreateMapOptions<P> {
  /** initial value of element 0 (global-data maps) */
  initial?: Uint8Array;
  /** perf_event_array: bytes of records each CPU's buffer holds */
  perfBytesPerCpu?: number;
  /** prog_array: program fd -> program */
  progByFd?: (fd: number) => ProgRef<P> | undefined;
}

export { mapTypeName };

/** Creates a userspace map; throws MapCreateError (errno + sentence) as map creation would fail. */
export function createMap<P = unknown>(spec: MapSpec, env: MapEnv, opts: CreateMapOptions<P> = {}): UserMap {
  switch (spec.type) {
    case T.HASH:
      return new HashMap(spec, env, { percpu: false, lru: false });
    case T.PERCPU_HASH:
      return new HashMap(spec, env, { percpu: true, lru: false });
    case T.LRU_HASH:
      return new HashMap(spec, env, { percpu: false, lru: true });
    case T.LRU_PERCPU_HASH:
      return new HashMap(spec, env, { percpu: true, lru: true });
    case T.ARRAY:
      return new ArrayMap(spec, env, { percpu: false, initial: opts.initial });
    case T.PERCPU_ARRAY:
      return new ArrayMap(spec, env, { percpu: true });
    case T.RINGBUF:
      return new RingBufMap(spec, env);
    case T.PERF_EVENT_ARRAY:
      return new PerfEventArrayMap(spec, env, opts.perfBytesPerCpu ?? 64 * 4096);
    case T.QUEUE:
      return new QueueStackMap(spec, env, { lifo: false });
    case T.STACK:
      return new QueueStackMap(spec, env, { lifo: true });
    case T.PROG_ARRAY:
      return new ProgArrayMap<P>(spec, env, opts.progByFd ?? (() => undefined));
    default:
      throw new MapCreateError(
        `map '${spec.name}' is a ${mapTypeName(spec.type)} map, which the userspace backend does not implement (it has: ${USERSPACE_MAP_TYPES.map(mapTypeName).join(', ')})`,
        E.EOPNOTSUPP,
      );
  }
}
