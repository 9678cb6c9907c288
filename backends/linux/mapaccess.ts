// Which of an object's maps a guest's map_operate may change, and how (MapInfo.guestAccess). The
// guest may reach only its own maps: a map whose update makes the kernel take a reference to some
// other object through a file descriptor (a program, a socket, a perf event, a cgroup, a map) would
// let it name any fd of the host process, or register kernel state that outlives the run.
import type { GuestMapAccess } from '../backend.js';
import { MAP_TYPE } from '../../src/kernel/uapi.js';

const { PROG_ARRAY, PERF_EVENT_ARRAY, CGROUP_ARRAY, ARRAY_OF_MAPS, HASH_OF_MAPS, DEVMAP, SOCKMAP, CPUMAP, XSKMAP, SOCKHASH, DEVMAP_HASH, STRUCT_OPS } = MAP_TYPE;
/** the map types whose values name file descriptors */
export const MAP_TYPE_FD = {
  PROG_ARRAY,
  PERF_EVENT_ARRAY,
  CGROUP_ARRAY,
  ARRAY_OF_MAPS,
  HASH_OF_MAPS,
  DEVMAP,
  SOCKMAP,
  CPUMAP,
  XSKMAP,
  SOCKHASH,
  DEVMAP_HASH,
  STRUCT_OPS,
} as const;

const T = MAP_TYPE_FD;

/** the rule for a map of this type, or undefined when the guest may do anything the kernel allows */
export function guestAccessFor(type: number): GuestMapAccess | undefined {
  switch (type) {
    case T.STRUCT_OPS:
      // an update registers the struct_ops (e.g. a TCP congestion control) with the program fds it
      // names; wasm_attach_bpf_program registers it instead, tied to the run (attach.ts)
      return 'none';
    case T.PROG_ARRAY:
    case T.PERF_EVENT_ARRAY:
    case T.CGROUP_ARRAY:
    case T.SOCKMAP:
    case T.SOCKHASH:
    case T.XSKMAP:
      return 'no-update';
    case T.ARRAY_OF_MAPS:
    case T.HASH_OF_MAPS:
      return 'own-map-values';
    case T.DEVMAP:
    case T.DEVMAP_HASH:
    case T.CPUMAP:
      return 'no-prog-fd';
    default:
      return undefined;
  }
}

/** DirectMapOps.add's access as native/src/guestmaps.cc numbers it */
export function accessCode(access: GuestMapAccess | undefined): number {
  switch (access) {
    case undefined:
      return 0;
    case 'none':
      return 1;
    case 'no-update':
      return 2;
    case 'own-map-values':
      return 3;
    case 'no-prog-fd':
      return 4;
  }
}
