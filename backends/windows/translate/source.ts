// Where the Windows numbers of this folder's tables come from: eBPF for Windows' own headers, read (not
// copied) at one version. Every table file cites the file it follows; this is the version they share.

/** microsoft/ebpf-for-windows at commit 64be483d2312f841f8e8fbc8282a6267c99a7ad6 (the first stored version
 *  whose ebpf_structs.h has BPF_MAP_TYPE_PERF_EVENT_ARRAY = 14 and BPF_FUNC_perf_event_output = 32, the
 *  v0.21-era API; the v1.5 keeps these numbers) */
export const EBPF_FOR_WINDOWS_SOURCE = {
  repository: 'microsoft/ebpf-for-windows',
  commit: '64be483d2312f841f8e8fbc8282a6267c99a7ad6',
  files: {
    structs: 'include/ebpf_structs.h (enum bpf_map_type, ebpf_helper_id_t, enum bpf_prog_type, enum bpf_attach_type)',
    helpers: 'include/bpf_helper_defs.h (the general helpers and their prototypes)',
    sections: 'netebpfext/net_ebpf_ext_program_info.h (the ELF section names netebpfext registers)',
    context: 'include/ebpf_nethooks.h (xdp_md_t, bpf_sock_ops_t, bpf_sock_addr_t)',
  },
} as const;
