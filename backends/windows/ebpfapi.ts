// What the Windows backend will need from the libbpf-compatible binding (the FFI layer another step builds
// over ebpfapi.dll / libbpf.so.1): an interface only, no binding here. Handles are opaque numbers
// (pointers or fds as the binding represents them); every call returns a negative errno on failure.

export type Handle = bigint;

/** the subset of ebpfapi.dll's exports the Windows backend calls (names as ebpfapi.dll exports them) */
export interface EbpfApi {
  /** bpf_object__open_mem: the translated ELF bytes (backends/windows/translate) */
  objectOpenMem(bytes: Uint8Array, name: string): Handle | number;
  /** bpf_object__load */
  objectLoad(obj: Handle): number;
  /** bpf_object__close */
  objectClose(obj: Handle): void;
  /** bpf_object__find_program_by_name / bpf_object__find_map_by_name */
  findProgram(obj: Handle, name: string): Handle | null;
  findMap(obj: Handle, name: string): Handle | null;
  /** bpf_map__set_type and friends: the translation's edits (ring buffers made perf event arrays) before load */
  mapSetDef(map: Handle, def: { type: number; keySize: number; valueSize: number; maxEntries: number }): number;
  /** bpf_program__fd / bpf_map__fd */
  programFd(prog: Handle): number;
  mapFd(map: Handle): number;
  /** bpf_xdp_attach(ifindex, prog fd, flags): XDP by interface index (the caller resolves the name) */
  xdpAttach(ifindex: number, progFd: number, flags: number): number;
  /** bpf_prog_attach(prog fd, 0, attach type): sock_ops and sock_addr hooks, Windows attach types (src/kernel/ebpf-windows.ts) */
  progAttach(progFd: number, attachType: number): number;
  /** bpf_program__attach: a link for the program's own attach type; bpf_link__destroy */
  programAttach(prog: Handle): Handle | number;
  linkDestroy(link: Handle): number;
  /** bpf_map_lookup_elem / update / delete / get_next_key on a map fd */
  mapLookup(fd: number, key: Uint8Array, value: Uint8Array): number;
  mapUpdate(fd: number, key: Uint8Array, value: Uint8Array, flags: bigint): number;
  mapDelete(fd: number, key: Uint8Array): number;
  mapNextKey(fd: number, key: Uint8Array | null, next: Uint8Array): number;
  /** ring_buffer__new/poll/free and perf_buffer__new/poll/free, records handed to `onRecord` */
  ringBufferNew(mapFd: number, onRecord: (data: Uint8Array) => number): Handle | number;
  ringBufferPoll(rb: Handle, timeoutMs: number): number;
  ringBufferFree(rb: Handle): void;
  perfBufferNew(mapFd: number, pages: number, onRecord: (cpu: number, data: Uint8Array) => void): Handle | number;
  perfBufferPoll(pb: Handle, timeoutMs: number): number;
  perfBufferFree(pb: Handle): void;
  /** ebpf_object_load_native_by_fds: native mode, when the module's object bytes are a PE image (.sys from bpf2c) */
  loadNative?(sysPath: string, mapFds: Int32Array, progFds: Int32Array): number;
}
