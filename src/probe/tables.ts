// The feature tables: every program type, map type, attach mechanism and feature the prober knows,
// with the mainline version that introduced it and the kernel config it needs (cilium/ebpf's `features`
// and the BCC kernel-versions list). Data only; the ids are the kernel's, from the generated src/kernel/uapi.ts.
import { ATTACH_TYPE, BPF_F, ERRNO, MAP_TYPE, PROG_TYPE } from '../kernel/uapi.js';

export interface ProgTypeDef {
  name: string;
  id: number;
  since: string;
  /** each must be y/m (when the config is known) */
  kconfig?: string[];
  expectedAttachType?: number;
  progFlags?: number;
  /** decided by a dedicated load rather than `r0 = 0; exit` */
  special?: 'tracing' | 'ext' | 'lsm' | 'struct_ops';
}

export const PROG_TYPES: readonly ProgTypeDef[] = [
  { name: 'socket_filter', id: PROG_TYPE.SOCKET_FILTER, since: '3.19', kconfig: ['CONFIG_NET'] },
  { name: 'kprobe', id: PROG_TYPE.KPROBE, since: '4.1', kconfig: ['CONFIG_BPF_EVENTS'] },
  { name: 'sched_cls', id: PROG_TYPE.SCHED_CLS, since: '4.1', kconfig: ['CONFIG_NET'] },
  { name: 'sched_act', id: PROG_TYPE.SCHED_ACT, since: '4.1', kconfig: ['CONFIG_NET'] },
  { name: 'tracepoint', id: PROG_TYPE.TRACEPOINT, since: '4.7', kconfig: ['CONFIG_BPF_EVENTS'] },
  { name: 'xdp', id: PROG_TYPE.XDP, since: '4.8', kconfig: ['CONFIG_NET'] },
  { name: 'perf_event', id: PROG_TYPE.PERF_EVENT, since: '4.9', kconfig: ['CONFIG_BPF_EVENTS'] },
  { name: 'cgroup_skb', id: PROG_TYPE.CGROUP_SKB, since: '4.10', kconfig: ['CONFIG_CGROUP_BPF'] },
  { name: 'cgroup_sock', id: PROG_TYPE.CGROUP_SOCK, since: '4.10', kconfig: ['CONFIG_CGROUP_BPF'] },
  { name: 'lwt_in', id: PROG_TYPE.LWT_IN, since: '4.10', kconfig: ['CONFIG_NET'] },
  { name: 'lwt_out', id: PROG_TYPE.LWT_OUT, since: '4.10', kconfig: ['CONFIG_NET'] },
  { name: 'lwt_xmit', id: PROG_TYPE.LWT_XMIT, since: '4.10', kconfig: ['CONFIG_NET'] },
  { name: 'sock_ops', id: PROG_TYPE.SOCK_OPS, since: '4.13', kconfig: ['CONFIG_CGROUP_BPF'] },
  { name: 'sk_skb', id: PROG_TYPE.SK_SKB, since: '4.14', kconfig: ['CONFIG_NET'] },
  { name: 'cgroup_device', id: PROG_TYPE.CGROUP_DEVICE, since: '4.15', kconfig: ['CONFIG_CGROUP_BPF'] },
  { name: 'sk_msg', id: PROG_TYPE.SK_MSG, since: '4.17', kconfig: ['CONFIG_NET'] },
  { name: 'raw_tracepoint', id: PROG_TYPE.RAW_TRACEPOINT, since: '4.17', kconfig: ['CONFIG_BPF_EVENTS'] },
  { name: 'cgroup_sock_addr', id: PROG_TYPE.CGROUP_SOCK_ADDR, since: '4.17', kconfig: ['CONFIG_CGROUP_BPF'], expectedAttachType: ATTACH_TYPE.CGROUP_INET4_CONNECT },
  { name: 'lwt_seg6local', id: PROG_TYPE.LWT_SEG6LOCAL, since: '4.18', kconfig: ['CONFIG_NET'] },
  { name: 'lirc_mode2', id: PROG_TYPE.LIRC_MODE2, since: '4.18', kconfig: ['CONFIG_BPF_LIRC_MODE2'] },
  { name: 'sk_reuseport', id: PROG_TYPE.SK_REUSEPORT, since: '4.19', kconfig: ['CONFIG_NET'] },
  { name: 'flow_dissector', id: PROG_TYPE.FLOW_DISSECTOR, since: '4.20', kconfig: ['CONFIG_NET'] },
  { name: 'cgroup_sysctl', id: PROG_TYPE.CGROUP_SYSCTL, since: '5.2', kconfig: ['CONFIG_CGROUP_BPF'] },
  { name: 'raw_tracepoint_writable', id: PROG_TYPE.RAW_TRACEPOINT_WRITABLE, since: '5.2', kconfig: ['CONFIG_BPF_EVENTS'] },
  { name: 'cgroup_sockopt', id: PROG_TYPE.CGROUP_SOCKOPT, since: '5.3', kconfig: ['CONFIG_CGROUP_BPF'], expectedAttachType: ATTACH_TYPE.CGROUP_GETSOCKOPT },
  { name: 'tracing', id: PROG_TYPE.TRACING, since: '5.5', kconfig: ['CONFIG_BPF_EVENTS'], special: 'tracing' },
  { name: 'struct_ops', id: PROG_TYPE.STRUCT_OPS, since: '5.6', kconfig: ['CONFIG_BPF_JIT'], special: 'struct_ops' },
  { name: 'ext', id: PROG_TYPE.EXT, since: '5.6', kconfig: ['CONFIG_BPF_JIT'], special: 'ext' },
  { name: 'lsm', id: PROG_TYPE.LSM, since: '5.7', kconfig: ['CONFIG_BPF_LSM'], special: 'lsm' },
  { name: 'sk_lookup', id: PROG_TYPE.SK_LOOKUP, since: '5.9', kconfig: ['CONFIG_NET'], expectedAttachType: ATTACH_TYPE.SK_LOOKUP },
  { name: 'syscall', id: PROG_TYPE.SYSCALL, since: '5.14', progFlags: BPF_F.SLEEPABLE },
  { name: 'netfilter', id: PROG_TYPE.NETFILTER, since: '6.4', kconfig: ['CONFIG_NETFILTER_BPF_LINK'], expectedAttachType: ATTACH_TYPE.NETFILTER },
];

export interface MapTypeDef {
  name: string;
  id: number;
  since: string;
  kconfig?: string[];
  /** an error that means "this type exists" (STRUCT_OPS: ENOTSUPP for a bad value type) */
  okErrno?: number;
}

export const MAP_TYPES: readonly MapTypeDef[] = [
  { name: 'hash', id: MAP_TYPE.HASH, since: '3.19' },
  { name: 'array', id: MAP_TYPE.ARRAY, since: '3.19' },
  { name: 'prog_array', id: MAP_TYPE.PROG_ARRAY, since: '4.2' },
  { name: 'perf_event_array', id: MAP_TYPE.PERF_EVENT_ARRAY, since: '4.3', kconfig: ['CONFIG_PERF_EVENTS'] },
  { name: 'percpu_hash', id: MAP_TYPE.PERCPU_HASH, since: '4.6' },
  { name: 'percpu_array', id: MAP_TYPE.PERCPU_ARRAY, since: '4.6' },
  { name: 'stack_trace', id: MAP_TYPE.STACK_TRACE, since: '4.6', kconfig: ['CONFIG_PERF_EVENTS'] },
  { name: 'cgroup_array', id: MAP_TYPE.CGROUP_ARRAY, since: '4.8', kconfig: ['CONFIG_CGROUPS'] },
  { name: 'lru_hash', id: MAP_TYPE.LRU_HASH, since: '4.10' },
  { name: 'lru_percpu_hash', id: MAP_TYPE.LRU_PERCPU_HASH, since: '4.10' },
  { name: 'lpm_trie', id: MAP_TYPE.LPM_TRIE, since: '4.11' },
  { name: 'array_of_maps', id: MAP_TYPE.ARRAY_OF_MAPS, since: '4.12' },
  { name: 'hash_of_maps', id: MAP_TYPE.HASH_OF_MAPS, since: '4.12' },
  { name: 'devmap', id: MAP_TYPE.DEVMAP, since: '4.14', kconfig: ['CONFIG_NET'] },
  { name: 'sockmap', id: MAP_TYPE.SOCKMAP, since: '4.14', kconfig: ['CONFIG_NET'] },
  { name: 'cpumap', id: MAP_TYPE.CPUMAP, since: '4.15', kconfig: ['CONFIG_NET'] },
  { name: 'xskmap', id: MAP_TYPE.XSKMAP, since: '4.18', kconfig: ['CONFIG_XDP_SOCKETS'] },
  { name: 'sockhash', id: MAP_TYPE.SOCKHASH, since: '4.18', kconfig: ['CONFIG_NET'] },
  { name: 'cgroup_storage', id: MAP_TYPE.CGROUP_STORAGE, since: '4.19', kconfig: ['CONFIG_CGROUP_BPF'] },
  { name: 'reuseport_sockarray', id: MAP_TYPE.REUSEPORT_SOCKARRAY, since: '4.19', kconfig: ['CONFIG_NET'] },
  { name: 'percpu_cgroup_storage', id: MAP_TYPE.PERCPU_CGROUP_STORAGE, since: '4.20', kconfig: ['CONFIG_CGROUP_BPF'] },
  { name: 'queue', id: MAP_TYPE.QUEUE, since: '4.20' },
  { name: 'stack', id: MAP_TYPE.STACK, since: '4.20' },
  { name: 'sk_storage', id: MAP_TYPE.SK_STORAGE, since: '5.2', kconfig: ['CONFIG_NET'] },
  { name: 'devmap_hash', id: MAP_TYPE.DEVMAP_HASH, since: '5.4', kconfig: ['CONFIG_NET'] },
  { name: 'struct_ops', id: MAP_TYPE.STRUCT_OPS, since: '5.6', kconfig: ['CONFIG_BPF_JIT'], okErrno: ERRNO.ENOTSUPP },
  { name: 'ringbuf', id: MAP_TYPE.RINGBUF, since: '5.8' },
  { name: 'inode_storage', id: MAP_TYPE.INODE_STORAGE, since: '5.10', kconfig: ['CONFIG_BPF_LSM'] },
  { name: 'task_storage', id: MAP_TYPE.TASK_STORAGE, since: '5.11' },
  { name: 'bloom_filter', id: MAP_TYPE.BLOOM_FILTER, since: '5.16' },
  { name: 'user_ringbuf', id: MAP_TYPE.USER_RINGBUF, since: '6.1' },
  { name: 'cgrp_storage', id: MAP_TYPE.CGRP_STORAGE, since: '6.2', kconfig: ['CONFIG_CGROUPS'] },
  { name: 'arena', id: MAP_TYPE.ARENA, since: '6.9', kconfig: ['CONFIG_MMU'] },
];

/** a map type's bpftool name ('ringbuf'), or 'type N' for one this table does not know */
export function mapTypeName(type: number): string {
  return MAP_TYPES.find((m) => m.id === type)?.name ?? `type ${type}`;
}

export interface MechDef {
  since: string;
  /** a different `since` on some architectures (BPF trampolines reached arm64 in 6.0) */
  sinceArch?: Record<string, string>;
  /** each must be y/m */
  kconfig?: string[];
  /** what it is, for the human report */
  what: string;
}

export const ATTACH_DEFS = {
  kprobe: { since: '4.1', kconfig: ['CONFIG_KPROBES', 'CONFIG_KPROBE_EVENTS'], what: 'kprobe/kretprobe (kprobe PMU or kprobe_events)' },
  kprobe_multi: { since: '5.18', kconfig: ['CONFIG_FPROBE'], what: 'kprobe.multi links (fprobe)' },
  uprobe: { since: '4.1', kconfig: ['CONFIG_UPROBE_EVENTS'], what: 'uprobe/uretprobe (uprobe PMU)' },
  uprobe_multi: { since: '6.6', kconfig: ['CONFIG_UPROBES'], what: 'uprobe.multi links' },
  tracepoint: { since: '4.7', kconfig: ['CONFIG_BPF_EVENTS'], what: 'tracepoints (tracefs)' },
  raw_tracepoint: { since: '4.17', kconfig: ['CONFIG_BPF_EVENTS'], what: 'raw tracepoints' },
  tp_btf: { since: '5.5', kconfig: ['CONFIG_DEBUG_INFO_BTF'], what: 'BTF-typed raw tracepoints' },
  fentry: { since: '5.5', sinceArch: { arm64: '6.0' }, kconfig: ['CONFIG_DEBUG_INFO_BTF', 'CONFIG_FUNCTION_TRACER'], what: 'fentry (BPF trampoline)' },
  fexit: { since: '5.5', sinceArch: { arm64: '6.0' }, kconfig: ['CONFIG_DEBUG_INFO_BTF', 'CONFIG_FUNCTION_TRACER'], what: 'fexit (BPF trampoline)' },
  lsm: { since: '5.7', sinceArch: { arm64: '6.0' }, kconfig: ['CONFIG_BPF_LSM', 'CONFIG_DEBUG_INFO_BTF'], what: 'BPF LSM hooks' },
  cgroup: { since: '4.10', kconfig: ['CONFIG_CGROUP_BPF'], what: 'cgroup programs (cgroup v2)' },
  xdp: { since: '4.8', kconfig: ['CONFIG_NET'], what: 'XDP' },
  tc: { since: '4.1', kconfig: ['CONFIG_NET_CLS_BPF'], what: 'tc classifier (clsact)' },
  tcx: { since: '6.6', kconfig: ['CONFIG_NET_XGRESS'], what: 'tcx links' },
  perf_event: { since: '4.9', kconfig: ['CONFIG_PERF_EVENTS'], what: 'perf_event programs (software clock)' },
  socket_filter: { since: '3.19', kconfig: ['CONFIG_NET'], what: 'socket filters' },
  struct_ops: { since: '5.6', sinceArch: { arm64: '6.0' }, kconfig: ['CONFIG_DEBUG_INFO_BTF'], what: 'struct_ops (tcp_congestion_ops)' },
} satisfies Record<string, MechDef>;

export const FEATURE_DEFS = {
  bpf_syscall: { since: '3.18', kconfig: ['CONFIG_BPF_SYSCALL'], what: 'bpf() usable by this process' },
  bpf_link: { since: '5.7', what: 'BPF_LINK_CREATE' },
  perf_link: { since: '5.15', what: 'bpf_link for kprobe/uprobe/tracepoint perf events' },
  ringbuf: { since: '5.8', what: 'BPF ring buffer' },
  bpf_cookie: { since: '5.15', what: 'bpf_get_attach_cookie()' },
  bounded_loops: { since: '5.3', what: 'bounded loops (back-edges)' },
  isa_v2: { since: '4.14', what: 'ISA v2 (JLT/JLE/JSLT/JSLE)' },
  isa_v3: { since: '5.1', what: 'ISA v3 (JMP32, ALU32 jumps)' },
  isa_v4: { since: '6.6', what: 'ISA v4 (sign extension, gotol, bswap, sdiv)' },
  btf_vmlinux: { since: '5.2', kconfig: ['CONFIG_DEBUG_INFO_BTF'], what: 'vmlinux BTF (CO-RE)' },
  struct_ops_link: { since: '6.4', what: 'struct_ops maps registered through a BPF link (BPF_F_LINK)' },
} satisfies Record<string, MechDef>;
