// eBPF for Windows' numbers (the Windows side of src/kernel/uapi.ts): enum bpf_map_type, bpf_prog_type,
// bpf_attach_type and ebpf_helper_id_t of include/ebpf_structs.h, microsoft/ebpf-for-windows at commit
// 64be483d2312f841f8e8fbc8282a6267c99a7ad6 (backends/windows/translate/source.ts). Facts, not their code.

/** eBPF for Windows' enum bpf_map_type */
export const WIN_MAP_TYPE = {
  UNSPEC: 0,
  HASH: 1,
  ARRAY: 2,
  PROG_ARRAY: 3,
  PERCPU_HASH: 4,
  PERCPU_ARRAY: 5,
  HASH_OF_MAPS: 6,
  ARRAY_OF_MAPS: 7,
  LRU_HASH: 8,
  LPM_TRIE: 9,
  QUEUE: 10,
  LRU_PERCPU_HASH: 11,
  STACK: 12,
  RINGBUF: 13,
  PERF_EVENT_ARRAY: 14,
} as const;

/** eBPF for Windows' ebpf_helper_id_t (the general helpers every program type has) */
export const WIN_HELPER = {
  map_lookup_elem: 1,
  map_update_elem: 2,
  map_delete_elem: 3,
  map_lookup_and_delete_elem: 4,
  tail_call: 5,
  get_prandom_u32: 6,
  ktime_get_boot_ns: 7,
  get_smp_processor_id: 8,
  ktime_get_ns: 9,
  csum_diff: 10,
  ringbuf_output: 11,
  trace_printk2: 12,
  trace_printk3: 13,
  trace_printk4: 14,
  trace_printk5: 15,
  map_push_elem: 16,
  map_pop_elem: 17,
  map_peek_elem: 18,
  get_current_pid_tgid: 19,
  get_current_logon_id: 20,
  is_current_admin: 21,
  memcpy_s: 22,
  memcmp_s: 23,
  memset: 24,
  memmove_s: 25,
  get_socket_cookie: 26,
  strncpy_s: 27,
  strncat_s: 28,
  strnlen_s: 29,
  ktime_get_boot_ms: 30,
  ktime_get_ms: 31,
  perf_event_output: 32,
} as const;

/** eBPF for Windows' enum bpf_attach_type */
export const WIN_ATTACH_TYPE = {
  UNSPEC: 0,
  XDP: 1,
  BIND: 2,
  CGROUP_INET4_CONNECT: 3,
  CGROUP_INET6_CONNECT: 4,
  CGROUP_INET4_RECV_ACCEPT: 5,
  CGROUP_INET6_RECV_ACCEPT: 6,
  CGROUP_SOCK_OPS: 7,
  SAMPLE: 8,
  XDP_TEST: 9,
  NETEVENT: 10,
  PROCESS: 11,
} as const;

/** eBPF for Windows' enum bpf_prog_type */
export const WIN_PROG_TYPE = {
  UNSPEC: 0,
  XDP: 1,
  BIND: 2,
  CGROUP_SOCK_ADDR: 3,
  SOCK_OPS: 4,
  NETEVENT: 5,
  PROCESS: 6,
  XDP_TEST: 998,
  SAMPLE: 999,
} as const;
