// Program section names -> eBPF for Windows program and attach types: the sections netebpfext registers
// (netebpfext/net_ebpf_ext_program_info.h) with the numbers of include/ebpf_structs.h, microsoft/ebpf-for-windows
// @ 64be483d (./source.ts); and, for every Linux kind Windows lacks, the reason and what it offers instead.
import { ATTACH_TYPE, PROG_TYPE } from '../../../src/kernel/uapi.js';
import { WIN_ATTACH_TYPE } from './attach.js';
import { WIN_PROG_TYPE } from '../../../src/kernel/ebpf-windows.js';
export { WIN_PROG_TYPE };


export interface WindowsSection {
  /** the section name eBPF for Windows matches */
  section: string;
  progType: number;
  attachType: number;
  /** the Linux section this comes from, when Linux has one ('cgroup/recv_accept4' has none) */
  linux?: { progType: number; attachType: number };
}

/** netebpfext's sections (exact names, as its section table registers them) */
export const WINDOWS_SECTIONS: readonly WindowsSection[] = [
  { section: 'xdp', progType: WIN_PROG_TYPE.XDP, attachType: WIN_ATTACH_TYPE.XDP, linux: { progType: PROG_TYPE.XDP, attachType: ATTACH_TYPE.XDP } },
  { section: 'bind', progType: WIN_PROG_TYPE.BIND, attachType: WIN_ATTACH_TYPE.BIND },
  { section: 'cgroup/connect4', progType: WIN_PROG_TYPE.CGROUP_SOCK_ADDR, attachType: WIN_ATTACH_TYPE.CGROUP_INET4_CONNECT, linux: { progType: PROG_TYPE.CGROUP_SOCK_ADDR, attachType: ATTACH_TYPE.CGROUP_INET4_CONNECT } },
  { section: 'cgroup/connect6', progType: WIN_PROG_TYPE.CGROUP_SOCK_ADDR, attachType: WIN_ATTACH_TYPE.CGROUP_INET6_CONNECT, linux: { progType: PROG_TYPE.CGROUP_SOCK_ADDR, attachType: ATTACH_TYPE.CGROUP_INET6_CONNECT } },
  { section: 'cgroup/recv_accept4', progType: WIN_PROG_TYPE.CGROUP_SOCK_ADDR, attachType: WIN_ATTACH_TYPE.CGROUP_INET4_RECV_ACCEPT },
  { section: 'cgroup/recv_accept6', progType: WIN_PROG_TYPE.CGROUP_SOCK_ADDR, attachType: WIN_ATTACH_TYPE.CGROUP_INET6_RECV_ACCEPT },
  { section: 'sockops', progType: WIN_PROG_TYPE.SOCK_OPS, attachType: WIN_ATTACH_TYPE.CGROUP_SOCK_OPS, linux: { progType: PROG_TYPE.SOCK_OPS, attachType: ATTACH_TYPE.CGROUP_SOCK_OPS } },
];

/** "xdp, bind, cgroup/connect4, ..." for refusals */
export const WINDOWS_HOOKS = WINDOWS_SECTIONS.map((s) => s.section).join(', ');

/** why Windows cannot run a Linux program kind, and what it offers instead; first match on the section head wins */
const REFUSALS: ReadonlyArray<{ heads: readonly string[]; why: string }> = [
  { heads: ['kprobe', 'kretprobe', 'kprobe.multi', 'kretprobe.multi', 'ksyscall', 'kretsyscall'], why: 'eBPF for Windows has no kernel function probes (no kprobe attach in ebpfapi.dll)' },
  { heads: ['uprobe', 'uretprobe', 'uprobe.s', 'uretprobe.s', 'uprobe.multi', 'uretprobe.multi', 'uprobe.multi.s', 'uretprobe.multi.s', 'usdt', 'usdt.s'], why: 'eBPF for Windows has no user-space probes (no uprobe attach in ebpfapi.dll)' },
  { heads: ['tracepoint', 'tp', 'raw_tracepoint', 'raw_tp', 'raw_tracepoint.w', 'raw_tp.w', 'tp_btf'], why: 'eBPF for Windows has no tracepoints; process creation and exit are the "process" program type of ntosebpfext, a separate extension' },
  { heads: ['fentry', 'fexit', 'fmod_ret', 'fentry.s', 'fexit.s', 'fmod_ret.s', 'freplace', 'iter', 'iter.s'], why: 'eBPF for Windows has no BTF trampolines (fentry/fexit/fmod_ret, iterators, freplace)' },
  { heads: ['lsm', 'lsm.s', 'lsm_cgroup'], why: 'eBPF for Windows has no LSM hooks' },
  { heads: ['cgroup_skb', 'cgroup'], why: 'eBPF for Windows has no cgroups; its socket hooks are cgroup/connect4|6, cgroup/recv_accept4|6 and sockops (machine-wide), packets are seen by xdp' },
  { heads: ['perf_event'], why: 'eBPF for Windows has no perf events' },
  { heads: ['socket', 'sk_skb', 'sk_msg', 'sk_lookup', 'sk_reuseport', 'flow_dissector'], why: 'eBPF for Windows has no socket-level packet programs; packets are seen by xdp' },
  { heads: ['tc', 'tcx', 'classifier', 'action', 'lwt_in', 'lwt_out', 'lwt_xmit', 'lwt_seg6local', 'netfilter'], why: 'eBPF for Windows has no traffic control, lightweight tunnel or netfilter hooks; inbound packets are seen by xdp' },
  { heads: ['struct_ops', 'struct_ops.s', 'syscall', 'lirc_mode2'], why: 'eBPF for Windows has no such program type' },
];

export type ProgramVerdict = { windows: WindowsSection } | { refused: string };

/** The Windows program and attach type of a program, by its section, or why Windows has none. */
export function windowsProgram(section: string): ProgramVerdict {
  const exact = WINDOWS_SECTIONS.find((s) => s.section === section);
  if (exact) return { windows: exact };
  if (section === 'cgroup/bind4' || section === 'cgroup/bind6') {
    return { refused: `Windows' bind hook (section "bind", BPF_PROG_TYPE_BIND) has its own context (bind_md_t), not Linux's bpf_sock_addr; a Linux ${section} program does not translate; Windows offers: ${WINDOWS_HOOKS}` };
  }
  const head = section.split('/')[0] ?? section;
  const r = REFUSALS.find((x) => x.heads.includes(head));
  const why = r?.why ?? `eBPF for Windows has no program type for section '${section}'`;
  return { refused: `${why}; Windows offers: ${WINDOWS_HOOKS}` };
}
