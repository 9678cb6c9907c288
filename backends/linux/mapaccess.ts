// Which of an object's maps a guest's map_operate may change, and how (MapInfo.guestAccess). The
// guest may reach only its own maps: a map whose update makes the kernel take a reference to some
// other object through a file descriptor (a program, a socket, a perf event, a cgroup, a map) would
// let it name any fd of the host process, or register kernel state that outlives the run.
import type { GuestMapAccess } from '../backend.js';

export const MAP_TYPE_FD = {
  PROG_ARRAY: 3,
  PERF_EVENT_ARRAY: 4,
  CGROUP_ARRAY: 8,
  ARRAY_OF_MAPS: 12,
  HASH_OF_MAPS: 13,
  DEVMAP: 14,
  SOCKMAP: 15,
  CPUMAP: 16,
  XSKMAP: 17,
  SOCKHASH: 18,
  DEVMAP_HASH: 25,
  STRUCT_OPS: 26,
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
