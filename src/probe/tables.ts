// The feature tables: every program type, map type, attach mechanism and feature the prober knows,
// with the mainline version that introduced it and the kernel config it needs (cilium/ebpf's `features`
// and the BCC kernel-versions list). Data only.

/** enum bpf_attach_type values the probes use */
export const ATTACH = {
  CGROUP_INET_INGRESS: 0,
  CGROUP_INET4_CONNECT: 10,
  CGROUP_GETSOCKOPT: 21,
  TRACE_RAW_TP: 23,
  TRACE_FENTRY: 24,
  TRACE_FEXIT: 25,
  LSM_MAC: 27,
  SK_LOOKUP: 36,
  PERF_EVENT: 41,
  TRACE_KPROBE_MULTI: 42,
  NETFILTER: 45,
  TCX_INGRESS: 46,
  TRACE_UPROBE_MULTI: 48,
} as const;

export const BPF_F_SLEEPABLE = 1 << 4;

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
  { name: 'socket_filter', id: 1, since: '3.19', kconfig: ['CONFIG_NET'] },
  { name: 'kprobe', id: 2, since: '4.1', kconfig: ['CONFIG_BPF_EVENTS'] },
  { name: 'sched_cls', id: 3, since: '4.1', kconfig: ['CONFIG_NET'] },
  { name: 'sched_act', id: 4, since: '4.1', kconfig: ['CONFIG_NET'] },
  { name: 'tracepoint', id: 5, since: '4.7', kconfig: ['CONFIG_BPF_EVENTS'] },
  { name: 'xdp', id: 6, since: '4.8', kconfig: ['CONFIG_NET'] },
  { name: 'perf_event', id: 7, since: '4.9', kconfig: ['CONFIG_BPF_EVENTS'] },
  { name: 'cgroup_skb', id: 8, since: '4.10', kconfig: ['CONFIG_CGROUP_BPF'] },
  { name: 'cgroup_sock', id: 9, since: '4.10', kconfig: ['CONFIG_CGROUP_BPF'] },
  { name: 'lwt_in', id: 10, since: '4.10', kconfig: ['CONFIG_NET'] },
  { name: 'lwt_out', id: 11, since: '4.10', kconfig: ['CONFIG_NET'] },
  { name: 'lwt_xmit', id: 12, since: '4.10', kconfig: ['CONFIG_NET'] },
  { name: 'sock_ops', id: 13, since: '4.13', kconfig: ['CONFIG_CGROUP_BPF'] },
  { name: 'sk_skb', id: 14, since: '4.14', kconfig: ['CONFIG_NET'] },
  { name: 'cgroup_device', id: 15, since: '4.15', kconfig: ['CONFIG_CGROUP_BPF'] },
  { name: 'sk_msg', id: 16, since: '4.17', kconfig: ['CONFIG_NET'] },
  { name: 'raw_tracepoint', id: 17, since: '4.17', kconfig: ['CONFIG_BPF_EVENTS'] },
  { name: 'cgroup_sock_addr', id: 18, since: '4.17', kconfig: ['CONFIG_CGROUP_BPF'], expectedAttachType: ATTACH.CGROUP_INET4_CONNECT },
  { name: 'lwt_seg6local', id: 19, since: '4.18', kconfig: ['CONFIG_NET'] },
  { name: 'lirc_mode2', id: 20, since: '4.18', kconfig: ['CONFIG_BPF_LIRC_MODE2'] },
  { name: 'sk_reuseport', id: 21, since: '4.19', kconfig: ['CONFIG_NET'] },
  { name: 'flow_dissector', id: 22, since: '4.20', kconfig: ['CONFIG_NET'] },
  { name: 'cgroup_sysctl', id: 23, since: '5.2', kconfig: ['CONFIG_CGROUP_BPF'] },
  { name: 'raw_tracepoint_writable', id: 24, since: '5.2', kconfig: ['CONFIG_BPF_EVENTS'] },
  { name: 'cgroup_sockopt', id: 25, since: '5.3', kconfig: ['CONFIG_CGROUP_BPF'], expectedAttachType: ATTACH.CGROUP_GETSOCKOPT },
  { name: 'tracing', id: 26, since: '5.5', kconfig: ['CONFIG_BPF_EVENTS'], special: 'tracing' },
  { name: 'struct_ops', id: 27, since: '5.6', kconfig: ['CONFIG_BPF_JIT'], special: 'struct_ops' },
  { name: 'ext', id: 28, since: '5.6', kconfig: ['CONFIG_BPF_JIT'], special: 'ext' },
  { name: 'lsm', id: 29, since: '5.7', kconfig: ['CONFIG_BPF_LSM'], special: 'lsm' },
  { name: 'sk_lookup', id: 30, since: '5.9', kconfig: ['CONFIG_NET'], expectedAttachType: ATTACH.SK_LOOKUP },
  { name: 'syscall', id: 31, since: '5.14', progFlags: BPF_F_SLEEPABLE },
  { name: 'netfilter', id: 32, since: '6.4', kconfig: ['CONFIG_NETFILTER_BPF_LINK'], expectedAttachType: ATTACH.NETFILTER },
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
  { name: 'hash', id: 1, since: '3.19' },
  { name: 'array', id: 2, since: '3.19' },
  { name: 'prog_array', id: 3, since: '4.2' },
  { name: 'perf_event_array', id: 4, since: '4.3', kconfig: ['CONFIG_PERF_EVENTS'] },
  { name: 'percpu_hash', id: 5, since: '4.6' },
  { name: 'percpu_array', id: 6, since: '4.6' },
  { name: 'stack_trace', id: 7, since: '4.6', kconfig: ['CONFIG_PERF_EVENTS'] },
  { name: 'cgroup_array', id: 8, since: '4.8', kconfig: ['CONFIG_CGROUPS'] },
  { name: 'lru_hash', id: 9, since: '4.10' },
  { name: 'lru_percpu_hash', id: 10, since: '4.10' },
  { name: 'lpm_trie', id: 11, since: '4.11' },
  { name: 'array_of_maps', id: 12, since: '4.12' },
  { name: 'hash_of_maps', id: 13, since: '4.12' },
  { name: 'devmap', id: 14, since: '4.14', kconfig: ['CONFIG_NET'] },
  { name: 'sockmap', id: 15, since: '4.14', kconfig: ['CONFIG_NET'] },
  { name: 'cpumap', id: 16, since: '4.15', kconfig: ['CONFIG_NET'] },
  { name: 'xskmap', id: 17, since: '4.18', kconfig: ['CONFIG_XDP_SOCKETS'] },
  { name: 'sockhash', id: 18, since: '4.18', kconfig: ['CONFIG_NET'] },
  { name: 'cgroup_storage', id: 19, since: '4.19', kconfig: ['CONFIG_CGROUP_BPF'] },
  { name: 'reuseport_sockarray', id: 20, since: '4.19', kconfig: ['CONFIG_NET'] },
  { name: 'percpu_cgroup_storage', id: 21, since: '4.20', kconfig: ['CONFIG_CGROUP_BPF'] },
  { name: 'queue', id: 22, since: '4.20' },
  { name: 'stack', id: 23, since: '4.20' },
  { name: 'sk_storage', id: 24, since: '5.2', kconfig: ['CONFIG_NET'] },
  { name: 'devmap_hash', id: 25, since: '5.4', kconfig: ['CONFIG_NET'] },
  { name: 'struct_ops', id: 26, since: '5.6', kconfig: ['CONFIG_BPF_JIT'], okErrno: 524 },
  { name: 'ringbuf', id: 27, since: '5.8' },
  { name: 'inode_storage', id: 28, since: '5.10', kconfig: ['CONFIG_BPF_LSM'] },
  { name: 'task_storage', id: 29, since: '5.11' },
  { name: 'bloom_filter', id: 30, since: '5.16' },
  { name: 'user_ringbuf', id: 31, since: '6.1' },
  { name: 'cgrp_storage', id: 32, since: '6.2', kconfig: ['CONFIG_CGROUPS'] },
  { name: 'arena', id: 33, since: '6.9', kconfig: ['CONFIG_MMU'] },
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
} satisfies Record<string, MechDef>;
