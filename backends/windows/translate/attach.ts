// Linux attach type numbers -> eBPF for Windows' (enum bpf_attach_type in include/ebpf_structs.h of
// microsoft/ebpf-for-windows @ 64be483d, see ./source.ts). Windows numbers its few attach types from 1.
import { ATTACH_TYPE } from '../../../src/kernel/uapi.js';
import { WIN_ATTACH_TYPE } from '../../../src/kernel/ebpf-windows.js';
export { WIN_ATTACH_TYPE };


/** Linux attach type -> Windows attach type, for the hooks both have */
export const ATTACH_TYPE_TO_WINDOWS: ReadonlyMap<number, number> = new Map([
  [ATTACH_TYPE.XDP, WIN_ATTACH_TYPE.XDP],
  [ATTACH_TYPE.CGROUP_SOCK_OPS, WIN_ATTACH_TYPE.CGROUP_SOCK_OPS],
  [ATTACH_TYPE.CGROUP_INET4_CONNECT, WIN_ATTACH_TYPE.CGROUP_INET4_CONNECT],
  [ATTACH_TYPE.CGROUP_INET6_CONNECT, WIN_ATTACH_TYPE.CGROUP_INET6_CONNECT],
]);

/** The Windows attach type of a Linux one (undefined: Windows has no such hook). */
export function windowsAttachType(linuxAttach: number): number | undefined {
  return ATTACH_TYPE_TO_WINDOWS.get(linuxAttach);
}
