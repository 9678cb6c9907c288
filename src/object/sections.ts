// libbpf's section table: the SEC() name of a program -> its program type, expected attach type and
// sleepable flag (libbpf 1.x's section_defs and sec_def_matches). Data and one lookup; the numbers are
// the kernel's, from the generated src/kernel/uapi.ts.
import { ATTACH_TYPE, PROG_TYPE } from '../kernel/uapi.js';

export interface SectionDef {
  /** "x" exact, "x/" prefix with extras, "x+" exact or "x/extras" (libbpf's sec_def_matches) */
  sec: string;
  type: number;
  attach: number;
  sleepable?: boolean;
  /** attached to a user binary (libbpf's attach_uprobe, attach_uprobe_multi, attach_usdt) */
  uprobe?: boolean;
}

const P = PROG_TYPE;
const A = ATTACH_TYPE;
/** libbpf 1.x's section_defs, in its order (the first match wins). */
const SECTION_DEFS: readonly SectionDef[] = [
  { sec: 'socket', type: P.SOCKET_FILTER, attach: 0 },
  { sec: 'sk_reuseport/migrate', type: P.SK_REUSEPORT, attach: A.SK_REUSEPORT_SELECT_OR_MIGRATE },
  { sec: 'sk_reuseport', type: P.SK_REUSEPORT, attach: A.SK_REUSEPORT_SELECT },
  { sec: 'kprobe+', type: P.KPROBE, attach: 0 },
  { sec: 'uprobe+', type: P.KPROBE, attach: 0, uprobe: true },
  { sec: 'uprobe.s+', type: P.KPROBE, attach: 0, sleepable: true, uprobe: true },
  { sec: 'kretprobe+', type: P.KPROBE, attach: 0 },
  { sec: 'uretprobe+', type: P.KPROBE, attach: 0, uprobe: true },
  { sec: 'uretprobe.s+', type: P.KPROBE, attach: 0, sleepable: true, uprobe: true },
  { sec: 'kprobe.multi+', type: P.KPROBE, attach: A.TRACE_KPROBE_MULTI },
  { sec: 'kretprobe.multi+', type: P.KPROBE, attach: A.TRACE_KPROBE_MULTI },
  { sec: 'uprobe.multi+', type: P.KPROBE, attach: A.TRACE_UPROBE_MULTI, uprobe: true },
  { sec: 'uretprobe.multi+', type: P.KPROBE, attach: A.TRACE_UPROBE_MULTI, uprobe: true },
  { sec: 'uprobe.multi.s+', type: P.KPROBE, attach: A.TRACE_UPROBE_MULTI, sleepable: true, uprobe: true },
  { sec: 'uretprobe.multi.s+', type: P.KPROBE, attach: A.TRACE_UPROBE_MULTI, sleepable: true, uprobe: true },
  { sec: 'ksyscall+', type: P.KPROBE, attach: 0 },
  { sec: 'kretsyscall+', type: P.KPROBE, attach: 0 },
  { sec: 'usdt+', type: P.KPROBE, attach: 0, uprobe: true },
  { sec: 'usdt.s+', type: P.KPROBE, attach: 0, sleepable: true, uprobe: true },
  { sec: 'tc/ingress', type: P.SCHED_CLS, attach: A.TCX_INGRESS },
  { sec: 'tc/egress', type: P.SCHED_CLS, attach: A.TCX_EGRESS },
  { sec: 'tcx/ingress', type: P.SCHED_CLS, attach: A.TCX_INGRESS },
  { sec: 'tcx/egress', type: P.SCHED_CLS, attach: A.TCX_EGRESS },
  { sec: 'tc', type: P.SCHED_CLS, attach: 0 },
  { sec: 'classifier', type: P.SCHED_CLS, attach: 0 },
  { sec: 'action', type: P.SCHED_ACT, attach: 0 },
  { sec: 'tracepoint+', type: P.TRACEPOINT, attach: 0 },
  { sec: 'tp+', type: P.TRACEPOINT, attach: 0 },
  { sec: 'raw_tracepoint+', type: P.RAW_TRACEPOINT, attach: 0 },
  { sec: 'raw_tp+', type: P.RAW_TRACEPOINT, attach: 0 },
  { sec: 'raw_tracepoint.w+', type: P.RAW_TRACEPOINT_WRITABLE, attach: 0 },
  { sec: 'raw_tp.w+', type: P.RAW_TRACEPOINT_WRITABLE, attach: 0 },
  { sec: 'tp_btf+', type: P.TRACING, attach: A.TRACE_RAW_TP },
  { sec: 'fentry+', type: P.TRACING, attach: A.TRACE_FENTRY },
  { sec: 'fmod_ret+', type: P.TRACING, attach: A.MODIFY_RETURN },
  { sec: 'fexit+', type: P.TRACING, attach: A.TRACE_FEXIT },
  { sec: 'fentry.s+', type: P.TRACING, attach: A.TRACE_FENTRY, sleepable: true },
  { sec: 'fmod_ret.s+', type: P.TRACING, attach: A.MODIFY_RETURN, sleepable: true },
  { sec: 'fexit.s+', type: P.TRACING, attach: A.TRACE_FEXIT, sleepable: true },
  { sec: 'freplace+', type: P.EXT, attach: 0 },
  { sec: 'lsm+', type: P.LSM, attach: A.LSM_MAC },
  { sec: 'lsm.s+', type: P.LSM, attach: A.LSM_MAC, sleepable: true },
  { sec: 'lsm_cgroup+', type: P.LSM, attach: A.LSM_CGROUP },
  { sec: 'iter+', type: P.TRACING, attach: A.TRACE_ITER },
  { sec: 'iter.s+', type: P.TRACING, attach: A.TRACE_ITER, sleepable: true },
  { sec: 'syscall', type: P.SYSCALL, attach: 0, sleepable: true },
  { sec: 'xdp.frags/devmap', type: P.XDP, attach: A.XDP_DEVMAP },
  { sec: 'xdp/devmap', type: P.XDP, attach: A.XDP_DEVMAP },
  { sec: 'xdp.frags/cpumap', type: P.XDP, attach: A.XDP_CPUMAP },
  { sec: 'xdp/cpumap', type: P.XDP, attach: A.XDP_CPUMAP },
  { sec: 'xdp.frags', type: P.XDP, attach: A.XDP },
  { sec: 'xdp', type: P.XDP, attach: A.XDP },
  { sec: 'perf_event', type: P.PERF_EVENT, attach: 0 },
  { sec: 'lwt_in', type: P.LWT_IN, attach: 0 },
  { sec: 'lwt_out', type: P.LWT_OUT, attach: 0 },
  { sec: 'lwt_xmit', type: P.LWT_XMIT, attach: 0 },
  { sec: 'lwt_seg6local', type: P.LWT_SEG6LOCAL, attach: 0 },
  { sec: 'sockops', type: P.SOCK_OPS, attach: A.CGROUP_SOCK_OPS },
  { sec: 'sk_skb/stream_parser', type: P.SK_SKB, attach: A.SK_SKB_STREAM_PARSER },
  { sec: 'sk_skb/stream_verdict', type: P.SK_SKB, attach: A.SK_SKB_STREAM_VERDICT },
  { sec: 'sk_skb', type: P.SK_SKB, attach: 0 },
  { sec: 'sk_msg', type: P.SK_MSG, attach: A.SK_MSG_VERDICT },
  { sec: 'lirc_mode2', type: P.LIRC_MODE2, attach: A.LIRC_MODE2 },
  { sec: 'flow_dissector', type: P.FLOW_DISSECTOR, attach: A.FLOW_DISSECTOR },
  { sec: 'cgroup_skb/ingress', type: P.CGROUP_SKB, attach: A.CGROUP_INET_INGRESS },
  { sec: 'cgroup_skb/egress', type: P.CGROUP_SKB, attach: A.CGROUP_INET_EGRESS },
  { sec: 'cgroup/skb', type: P.CGROUP_SKB, attach: 0 },
  { sec: 'cgroup/sock_create', type: P.CGROUP_SOCK, attach: A.CGROUP_INET_SOCK_CREATE },
  { sec: 'cgroup/sock_release', type: P.CGROUP_SOCK, attach: A.CGROUP_INET_SOCK_RELEASE },
  { sec: 'cgroup/sock', type: P.CGROUP_SOCK, attach: A.CGROUP_INET_SOCK_CREATE },
  { sec: 'cgroup/post_bind4', type: P.CGROUP_SOCK, attach: A.CGROUP_INET4_POST_BIND },
  { sec: 'cgroup/post_bind6', type: P.CGROUP_SOCK, attach: A.CGROUP_INET6_POST_BIND },
  { sec: 'cgroup/bind4', type: P.CGROUP_SOCK_ADDR, attach: A.CGROUP_INET4_BIND },
  { sec: 'cgroup/bind6', type: P.CGROUP_SOCK_ADDR, attach: A.CGROUP_INET6_BIND },
  { sec: 'cgroup/connect4', type: P.CGROUP_SOCK_ADDR, attach: A.CGROUP_INET4_CONNECT },
  { sec: 'cgroup/connect6', type: P.CGROUP_SOCK_ADDR, attach: A.CGROUP_INET6_CONNECT },
  { sec: 'cgroup/sendmsg4', type: P.CGROUP_SOCK_ADDR, attach: A.CGROUP_UDP4_SENDMSG },
  { sec: 'cgroup/sendmsg6', type: P.CGROUP_SOCK_ADDR, attach: A.CGROUP_UDP6_SENDMSG },
  { sec: 'cgroup/recvmsg4', type: P.CGROUP_SOCK_ADDR, attach: A.CGROUP_UDP4_RECVMSG },
  { sec: 'cgroup/recvmsg6', type: P.CGROUP_SOCK_ADDR, attach: A.CGROUP_UDP6_RECVMSG },
  { sec: 'cgroup/getpeername4', type: P.CGROUP_SOCK_ADDR, attach: A.CGROUP_INET4_GETPEERNAME },
  { sec: 'cgroup/getpeername6', type: P.CGROUP_SOCK_ADDR, attach: A.CGROUP_INET6_GETPEERNAME },
  { sec: 'cgroup/getsockname4', type: P.CGROUP_SOCK_ADDR, attach: A.CGROUP_INET4_GETSOCKNAME },
  { sec: 'cgroup/getsockname6', type: P.CGROUP_SOCK_ADDR, attach: A.CGROUP_INET6_GETSOCKNAME },
  { sec: 'cgroup/sysctl', type: P.CGROUP_SYSCTL, attach: A.CGROUP_SYSCTL },
  { sec: 'cgroup/getsockopt', type: P.CGROUP_SOCKOPT, attach: A.CGROUP_GETSOCKOPT },
  { sec: 'cgroup/setsockopt', type: P.CGROUP_SOCKOPT, attach: A.CGROUP_SETSOCKOPT },
  { sec: 'cgroup/dev', type: P.CGROUP_DEVICE, attach: A.CGROUP_DEVICE },
  { sec: 'struct_ops+', type: P.STRUCT_OPS, attach: 0 },
  { sec: 'struct_ops.s+', type: P.STRUCT_OPS, attach: 0, sleepable: true },
  { sec: 'sk_lookup', type: P.SK_LOOKUP, attach: A.SK_LOOKUP },
  { sec: 'netfilter', type: P.NETFILTER, attach: A.NETFILTER },
];

/** libbpf's sec_def_matches */
function secDefMatches(def: string, name: string): boolean {
  const last = def[def.length - 1];
  if (last === '/') return name.startsWith(def);
  if (last === '+') {
    const pfx = def.slice(0, -1);
    if (!name.startsWith(pfx)) return false;
    return name.length === pfx.length || name[pfx.length] === '/';
  }
  return name === def;
}

/** The program type libbpf infers from a section name (undefined: not in the table). */
export function sectionDef(section: string): SectionDef | undefined {
  return SECTION_DEFS.find((d) => secDefMatches(d.sec, section));
}
