// Linux map type numbers -> eBPF for Windows' (enum bpf_map_type in include/ebpf_structs.h of
// microsoft/ebpf-for-windows @ 64be483d, see ./source.ts): data only, with the reason for every type
// Windows lacks. The numbers past PROG_ARRAY differ (ring buffer: 27 on Linux, 13 on Windows).
import { MAP_TYPE } from '../../../src/kernel/uapi.js';
import { WIN_MAP_TYPE } from '../../../src/kernel/ebpf-windows.js';
export { WIN_MAP_TYPE };


/** Linux map type -> Windows map type, for every Linux type Windows has */
export const MAP_TYPE_TO_WINDOWS: ReadonlyMap<number, number> = new Map([
  [MAP_TYPE.HASH, WIN_MAP_TYPE.HASH],
  [MAP_TYPE.ARRAY, WIN_MAP_TYPE.ARRAY],
  [MAP_TYPE.PROG_ARRAY, WIN_MAP_TYPE.PROG_ARRAY],
  [MAP_TYPE.PERF_EVENT_ARRAY, WIN_MAP_TYPE.PERF_EVENT_ARRAY],
  [MAP_TYPE.PERCPU_HASH, WIN_MAP_TYPE.PERCPU_HASH],
  [MAP_TYPE.PERCPU_ARRAY, WIN_MAP_TYPE.PERCPU_ARRAY],
  [MAP_TYPE.LRU_HASH, WIN_MAP_TYPE.LRU_HASH],
  [MAP_TYPE.LRU_PERCPU_HASH, WIN_MAP_TYPE.LRU_PERCPU_HASH],
  [MAP_TYPE.LPM_TRIE, WIN_MAP_TYPE.LPM_TRIE],
  [MAP_TYPE.ARRAY_OF_MAPS, WIN_MAP_TYPE.ARRAY_OF_MAPS],
  [MAP_TYPE.HASH_OF_MAPS, WIN_MAP_TYPE.HASH_OF_MAPS],
  [MAP_TYPE.QUEUE, WIN_MAP_TYPE.QUEUE],
  [MAP_TYPE.STACK, WIN_MAP_TYPE.STACK],
  [MAP_TYPE.RINGBUF, WIN_MAP_TYPE.RINGBUF],
]);

/** the Windows map types, by name, for refusals ("Windows has: hash, array, ...") */
export const WINDOWS_MAP_NAMES: readonly string[] = Object.keys(WIN_MAP_TYPE)
  .filter((k) => k !== 'UNSPEC')
  .map((k) => k.toLowerCase());

/** what to say for a Linux map type Windows lacks, when there is something closer than the list */
const INSTEAD: ReadonlyMap<number, string> = new Map([
  [MAP_TYPE.STACK_TRACE, 'Windows has no stack traces (no bpf_get_stackid)'],
  [MAP_TYPE.CGROUP_ARRAY, 'Windows has no cgroups'],
  [MAP_TYPE.USER_RINGBUF, 'Windows ring buffers carry records from programs to user space only'],
  [MAP_TYPE.DEVMAP, 'Windows XDP has no redirect maps'],
  [MAP_TYPE.DEVMAP_HASH, 'Windows XDP has no redirect maps'],
  [MAP_TYPE.CPUMAP, 'Windows XDP has no redirect maps'],
  [MAP_TYPE.XSKMAP, 'Windows XDP has no AF_XDP socket maps'],
  [MAP_TYPE.SOCKMAP, 'Windows has no socket maps'],
  [MAP_TYPE.SOCKHASH, 'Windows has no socket maps'],
  [MAP_TYPE.SK_STORAGE, 'Windows has no local storage maps; a hash keyed by the socket cookie does the same'],
  [MAP_TYPE.TASK_STORAGE, 'Windows has no local storage maps; a hash keyed by pid does the same'],
  [MAP_TYPE.INODE_STORAGE, 'Windows has no local storage maps'],
  [MAP_TYPE.CGRP_STORAGE, 'Windows has no local storage maps'],
  [MAP_TYPE.BLOOM_FILTER, 'Windows has no bloom filters; a hash does the same with more memory'],
  [MAP_TYPE.STRUCT_OPS, 'Windows has no struct_ops'],
]);

export type MapVerdict = { windows: number } | { refused: string };

/** The Windows number of a Linux map type, or why it has none. */
export function windowsMapType(linuxType: number, linuxName: string): MapVerdict {
  const w = MAP_TYPE_TO_WINDOWS.get(linuxType);
  if (w !== undefined) return { windows: w };
  const closer = INSTEAD.get(linuxType);
  return { refused: `eBPF for Windows has no ${linuxName} maps${closer ? ` (${closer})` : ''}; it has: ${WINDOWS_MAP_NAMES.join(', ')}` };
}
