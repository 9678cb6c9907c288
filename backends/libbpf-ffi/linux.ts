// The libbpf calls only libbpf.so.1 has (eBPF for Windows exports none of them: uprobe, perf event and
// cgroup attach, struct_ops, the before-load map settings, lookup-and-delete, bpf_map_create), declared with koffi.
import { libbpfApi, declare, type Ptr } from './api.js';
import { koffi as libbpfKoffi, openLibrary } from './library.js';

export interface LinuxLibbpf {
  bpf_program__attach_uprobe_opts(p: Ptr, pid: number, binary: string, offset: number, opts: UprobeOpts): Ptr;
  bpf_program__attach_perf_event(p: Ptr, perfFd: number): Ptr;
  bpf_program__attach_cgroup(p: Ptr, cgroupFd: number): Ptr;
  bpf_program__attach_xdp(p: Ptr, ifindex: number): Ptr;
  bpf_map__attach_struct_ops(m: Ptr): Ptr;
  bpf_link_create(progFd: number, targetFd: number, type: number, opts: Ptr): number;
  bpf_link__disconnect(l: Ptr): void;
  bpf_map__set_type(m: Ptr, type: number): number;
  bpf_map__set_key_size(m: Ptr, size: number): number;
  bpf_map__set_value_size(m: Ptr, size: number): number;
  bpf_map__set_max_entries(m: Ptr, n: number): number;
  bpf_map__set_map_flags(m: Ptr, flags: number): number;
  bpf_map__set_pin_path(m: Ptr, path: string | null): number;
  bpf_map__map_flags(m: Ptr): number;
  bpf_map__pin_path(m: Ptr): string | null;
  bpf_map_lookup_and_delete_elem_flags(fd: number, key: Uint8Array | null, value: Uint8Array | null, flags: bigint | number): number;
  bpf_map_create(type: number, name: string | null, keySize: number, valueSize: number, maxEntries: number, opts: Ptr): number;
}

/** struct bpf_uprobe_opts (libbpf 1.1) */
export interface UprobeOpts {
  sz: number;
  ref_ctr_offset: number;
  bpf_cookie: number;
  retprobe: boolean;
  func_name: string | null;
}

let lx: { api: LinuxLibbpf; uprobeOptsSize: number } | undefined;

function declareLinux(): { api: LinuxLibbpf; uprobeOptsSize: number } {
  if (lx) return lx;
  libbpfApi(); // the shared types first
  const { lib, file } = openLibrary();
  const k = libbpfKoffi();
  const UprobeOptsT = k.struct('wbpf_uprobe_opts', { sz: 'size_t', ref_ctr_offset: 'size_t', bpf_cookie: 'uint64_t', retprobe: 'bool', func_name: 'const char *' });
  const api = declare(lib, file, [
    'void *bpf_program__attach_uprobe_opts(void *p, int pid, const char *binary, size_t offset, const wbpf_uprobe_opts *opts)',
    'void *bpf_program__attach_perf_event(void *p, int pfd)',
    'void *bpf_program__attach_cgroup(void *p, int cgroup_fd)',
    'void *bpf_program__attach_xdp(void *p, int ifindex)',
    'void *bpf_map__attach_struct_ops(void *m)',
    'int bpf_link_create(int prog_fd, int target_fd, int type, void *opts)',
    'void bpf_link__disconnect(void *l)',
    'int bpf_map__set_type(void *m, int type)',
    'int bpf_map__set_key_size(void *m, uint32_t size)',
    'int bpf_map__set_value_size(void *m, uint32_t size)',
    'int bpf_map__set_max_entries(void *m, uint32_t n)',
    'int bpf_map__set_map_flags(void *m, uint32_t flags)',
    'int bpf_map__set_pin_path(void *m, const char *path)',
    'uint32_t bpf_map__map_flags(void *m)',
    'const char *bpf_map__pin_path(void *m)',
    'int bpf_map_lookup_and_delete_elem_flags(int fd, void *key, void *value, uint64_t flags)',
    'int bpf_map_create(int type, const char *name, uint32_t key_size, uint32_t value_size, uint32_t max_entries, void *opts)',
  ]) as unknown as LinuxLibbpf;
  lx = { api, uprobeOptsSize: k.sizeof(UprobeOptsT) };
  return lx;
}

/** the Linux-only calls (declared once per thread) */
export function linuxApi(): LinuxLibbpf {
  return declareLinux().api;
}

/** sizeof(struct bpf_uprobe_opts) as declared */
export function uprobeOptsSize(): number {
  return declareLinux().uprobeOptsSize;
}
