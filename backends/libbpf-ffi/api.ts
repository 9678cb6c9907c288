// The libbpf calls both libbpf.so.1 and eBPF for Windows' ebpfapi.dll export (the subset Windows shares),
// declared once with koffi. Pointers are bigints (koffi 3); a NULL pointer comes back as null or 0n.
import type { LibraryHandle, TypeObject } from 'koffi';
import { koffi, openLibrary } from './library.js';

/** a C pointer as koffi hands it out */
export type Ptr = bigint | null;
/** guest or host bytes passed in place as `void *` */
export type Bytes = Uint8Array;

export interface LibbpfApi {
  /** the library's file, for messages and `probe` */
  file: string;
  libbpf_set_print(fn: bigint | null): Ptr;
  bpf_object__open_mem(buf: Ptr, size: number, opts: OpenOpts | null): Ptr;
  bpf_object__load(obj: Ptr): number;
  bpf_object__close(obj: Ptr): void;
  bpf_object__next_program(obj: Ptr, prev: Ptr): Ptr;
  bpf_object__next_map(obj: Ptr, prev: Ptr): Ptr;
  bpf_object__find_program_by_name(obj: Ptr, name: string): Ptr;
  bpf_object__find_map_by_name(obj: Ptr, name: string): Ptr;
  bpf_program__name(p: Ptr): string;
  bpf_program__section_name(p: Ptr): string | null;
  bpf_program__type(p: Ptr): number;
  bpf_program__expected_attach_type(p: Ptr): number;
  bpf_program__fd(p: Ptr): number;
  bpf_program__attach(p: Ptr): Ptr;
  bpf_map__name(m: Ptr): string;
  bpf_map__type(m: Ptr): number;
  bpf_map__key_size(m: Ptr): number;
  bpf_map__value_size(m: Ptr): number;
  bpf_map__max_entries(m: Ptr): number;
  bpf_map__fd(m: Ptr): number;
  bpf_link__destroy(l: Ptr): number;
  bpf_map_lookup_elem_flags(fd: number, key: Bytes | null, value: Bytes | null, flags: bigint | number): number;
  bpf_map_update_elem(fd: number, key: Bytes | null, value: Bytes | null, flags: bigint | number): number;
  bpf_map_delete_elem(fd: number, key: Bytes | null): number;
  bpf_map_get_next_key(fd: number, key: Bytes | null, next: Bytes | null): number;
  /** the same four calls with addresses (uintptr_t as a number) instead of buffers: mapop.ts's fast form */
  lookupAt(fd: number, key: number, value: number, flags: number): number;
  /** lookup without flags: koffi's uint64_t argument from a number costs about 150 ns, the call itself less */
  lookupNoFlagsAt(fd: number, key: number, value: number): number;
  updateAt(fd: number, key: number, value: number, flags: number): number;
  deleteAt(fd: number, key: number): number;
  nextKeyAt(fd: number, key: number, next: number): number;
  bpf_xdp_attach(ifindex: number, progFd: number, flags: number, opts: Ptr): number;
  bpf_xdp_detach(ifindex: number, flags: number, opts: XdpAttachOpts | null): number;
  bpf_prog_attach(progFd: number, targetFd: number, type: number, flags: number): number;
  bpf_prog_detach2(progFd: number, targetFd: number, type: number): number;
  ring_buffer__new(mapFd: number, cb: bigint, ctx: Ptr, opts: Ptr): Ptr;
  ring_buffer__consume(rb: Ptr): number;
  ring_buffer__epoll_fd(rb: Ptr): number;
  ring_buffer__free(rb: Ptr): void;
  perf_buffer__new(mapFd: number, pageCount: number, sample: bigint, lost: bigint, ctx: Ptr, opts: Ptr): Ptr;
  perf_buffer__consume(pb: Ptr): number;
  perf_buffer__epoll_fd(pb: Ptr): number;
  perf_buffer__free(pb: Ptr): void;
  libbpf_num_possible_cpus(): number;
}

/** struct bpf_object_open_opts up to kernel_log_level (libbpf 1.1; `sz` tells libbpf how much of it we know) */
export interface OpenOpts {
  sz: number;
  object_name: string | null;
  relaxed_maps: boolean;
  pin_root_path: string | null;
  kconfig: string | null;
  btf_custom_path: string | null;
  kernel_log_buf: Ptr;
  kernel_log_size: number;
  kernel_log_level: number;
}

/** struct bpf_xdp_attach_opts (libbpf 1.x) */
export interface XdpAttachOpts {
  sz: number;
  old_prog_fd: number;
}

/** callback prototypes (registered with koffi.register) */
export interface Protos {
  print: TypeObject;
  ringSample: TypeObject;
  perfSample: TypeObject;
  perfLost: TypeObject;
}

/**
 * koffi functions for C declarations; a symbol the library does not export becomes a function that throws
 * saying so (ebpfapi.dll lacks some of libbpf's calls), so one missing call does not disable the rest
 */
export function declare(lib: LibraryHandle, file: string, decls: readonly string[]): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const d of decls) {
    const name = /([A-Za-z0-9_]+)\(/.exec(d)![1]!;
    try {
      out[name] = lib.func(d);
    } catch (err) {
      const why = err instanceof Error ? err.message : String(err);
      out[name] = () => {
        throw Object.assign(new Error(`${name}: ${file} does not export it (${why}): this libbpf is too old or not libbpf; install libbpf 1.x`), {
          errno: 95,
          code: 'EOPNOTSUPP',
          op: name,
          log: '',
        });
      };
    }
  }
  return out;
}

let api: { api: LibbpfApi; protos: Protos; openOptsSize: number } | undefined;

/** Declares the shared calls on the opened library (once per thread). Throws what openLibrary throws. */
export function libbpfApi(): { api: LibbpfApi; protos: Protos; openOptsSize: number } {
  if (api) return api;
  const { lib, file } = openLibrary();
  const k = koffi();
  const OpenOptsT = k.struct('wbpf_open_opts', {
    sz: 'size_t',
    object_name: 'const char *',
    relaxed_maps: 'bool',
    pin_root_path: 'const char *',
    kconfig: 'const char *',
    btf_custom_path: 'const char *',
    kernel_log_buf: 'void *',
    kernel_log_size: 'size_t',
    kernel_log_level: 'uint32_t',
  });
  k.struct('wbpf_xdp_attach_opts', { sz: 'size_t', old_prog_fd: 'int' });
  const protos: Protos = {
    // fmt and the va_list stay raw pointers: log.ts formats them with the C library's vsnprintf
    print: k.proto('int wbpf_print_fn(int level, void *fmt, void *ap)'),
    ringSample: k.proto('int wbpf_ring_sample_fn(void *ctx, void *data, size_t size)'),
    perfSample: k.proto('void wbpf_perf_sample_fn(void *ctx, int cpu, void *data, uint32_t size)'),
    perfLost: k.proto('void wbpf_perf_lost_fn(void *ctx, int cpu, uint64_t cnt)'),
  };
  const decls = [
    'void *libbpf_set_print(wbpf_print_fn *fn)',
    'void *bpf_object__open_mem(void *buf, size_t size, const wbpf_open_opts *opts)',
    'int bpf_object__load(void *obj)',
    'void bpf_object__close(void *obj)',
    'void *bpf_object__next_program(void *obj, void *prev)',
    'void *bpf_object__next_map(void *obj, void *prev)',
    'void *bpf_object__find_program_by_name(void *obj, const char *name)',
    'void *bpf_object__find_map_by_name(void *obj, const char *name)',
    'const char *bpf_program__name(void *p)',
    'const char *bpf_program__section_name(void *p)',
    'int bpf_program__type(void *p)',
    'int bpf_program__expected_attach_type(void *p)',
    'int bpf_program__fd(void *p)',
    'void *bpf_program__attach(void *p)',
    'const char *bpf_map__name(void *m)',
    'int bpf_map__type(void *m)',
    'uint32_t bpf_map__key_size(void *m)',
    'uint32_t bpf_map__value_size(void *m)',
    'uint32_t bpf_map__max_entries(void *m)',
    'int bpf_map__fd(void *m)',
    'int bpf_link__destroy(void *l)',
    'int bpf_map_lookup_elem_flags(int fd, void *key, void *value, uint64_t flags)',
    'int bpf_map_update_elem(int fd, void *key, void *value, uint64_t flags)',
    'int bpf_map_delete_elem(int fd, void *key)',
    'int bpf_map_get_next_key(int fd, void *key, void *next)',
    'int bpf_xdp_attach(int ifindex, int prog_fd, uint32_t flags, void *opts)',
    'int bpf_xdp_detach(int ifindex, uint32_t flags, const wbpf_xdp_attach_opts *opts)',
    'int bpf_prog_attach(int prog_fd, int target_fd, int type, unsigned int flags)',
    'int bpf_prog_detach2(int prog_fd, int target_fd, int type)',
    'void *ring_buffer__new(int map_fd, void *cb, void *ctx, void *opts)',
    'int ring_buffer__consume(void *rb)',
    'int ring_buffer__epoll_fd(void *rb)',
    'void ring_buffer__free(void *rb)',
    'void *perf_buffer__new(int map_fd, size_t page_cnt, void *sample, void *lost, void *ctx, void *opts)',
    'int perf_buffer__consume(void *pb)',
    'int perf_buffer__epoll_fd(void *pb)',
    'void perf_buffer__free(void *pb)',
    'int libbpf_num_possible_cpus()',
  ];
  const out: Record<string, unknown> = { file, ...declare(lib, file, decls) };
  const at = declare(lib, file, [
    'int bpf_map_lookup_elem_flags(int fd, uintptr_t key, uintptr_t value, uint64_t flags)',
    'int bpf_map_lookup_elem(int fd, uintptr_t key, uintptr_t value)',
    'int bpf_map_update_elem(int fd, uintptr_t key, uintptr_t value, uint64_t flags)',
    'int bpf_map_delete_elem(int fd, uintptr_t key)',
    'int bpf_map_get_next_key(int fd, uintptr_t key, uintptr_t next)',
  ]);
  out.lookupAt = at.bpf_map_lookup_elem_flags;
  out.lookupNoFlagsAt = at.bpf_map_lookup_elem;
  out.updateAt = at.bpf_map_update_elem;
  out.deleteAt = at.bpf_map_delete_elem;
  out.nextKeyAt = at.bpf_map_get_next_key;
  api = { api: out as unknown as LibbpfApi, protos, openOptsSize: k.sizeof(OpenOptsT) };
  return api;
}
