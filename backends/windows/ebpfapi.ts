// The one binding interface the Windows backend's load path (./load.ts) runs on: the libbpf-compatible
// calls eBPF for Windows' ebpfapi.dll exports (libbpf.so.1 exports the same, bar native mode), as
// ./binding.ts declares them with koffi. Tests give load.ts a recording fake of this interface.
// Handles are opaque pointers (bigint, never 0n); a call that fails returns a negative errno instead.

export type Handle = bigint;

/** a map definition set before the load (bpf_map__set_type / key / value / max_entries) */
export interface MapDef {
  type: number;
  keySize: number;
  valueSize: number;
  /** 0: leave the object's */
  maxEntries: number;
}

/** what bpf_obj_get_info_by_fd tells of a program (native mode: the names come from the driver) */
export interface ProgramInfo {
  name: string;
  /** Windows' enum bpf_prog_type */
  type: number;
}

export interface EbpfBinding {
  /** the library's file (ebpfapi.dll, libbpf.so.1), for messages */
  readonly library: string;
  /** bpf_object__open_mem on a native copy of the (translated) ELF bytes; freed by objectClose */
  objectOpenMem(bytes: Uint8Array, name: string): Handle | number;
  /** bpf_map_create: a map the backend creates for the object (the translation's host maps), its fd or -errno */
  mapCreate(def: MapDef & { name: string }): number;
  /** bpf_object__find_map_by_name + bpf_map__set_type and sizes (the translation's edits), before the load */
  mapSetDef(obj: Handle, mapName: string, def: MapDef): number;
  /** bpf_object__load: JIT mode (the verifier and JIT in the eBPF service / the kernel) */
  objectLoad(obj: Handle): number;
  /** bpf_object__close (also frees the bytes' copy) */
  objectClose(obj: Handle): void;
  /** bpf_object__find_program_by_name + bpf_program__fd: the loaded program's fd, or -errno */
  programFd(obj: Handle, name: string): number;
  /** bpf_object__find_map_by_name + bpf_map__fd */
  mapFd(obj: Handle, name: string): number;
  /** the interface index of a name (if_nametoindex), 0 when there is none */
  ifIndex(name: string): number;
  /**
   * one map operation with backends/linux's contract (cmd 1 lookup, 2 update, 3 delete, 4 next key, 21
   * lookup and delete; key and value at offsets of `mem`, -1 for NULL): 0 or -errno, never a throw
   */
  mapOp(cmd: number, fd: number, mem: Uint8Array, keyOff: number, valOff: number, flags: number): number;
  /** bpf_xdp_attach(ifindex, prog fd, flags, NULL) / bpf_xdp_detach(ifindex, flags, NULL) */
  xdpAttach(ifindex: number, progFd: number, flags: number): number;
  xdpDetach(ifindex: number, flags: number): number;
  /** bpf_prog_attach / bpf_prog_detach2: sock_ops and sock_addr hooks (Windows attach types; target: the compartment, 0 all) */
  progAttach(progFd: number, target: number, attachType: number): number;
  progDetach(progFd: number, target: number, attachType: number): number;
  /** ring_buffer__new with a callback per record (its bytes valid during the call only) / __poll / __free */
  ringBufferNew(mapFd: number, onRecord: (data: Uint8Array) => void): Handle | number;
  ringBufferPoll(rb: Handle, timeoutMs: number): number;
  ringBufferFree(rb: Handle): void;
  /** perf_buffer__new(map fd, pages, sample, lost) / __poll / __free */
  perfBufferNew(mapFd: number, pages: number, onSample: (cpu: number, data: Uint8Array) => void, onLost: (cpu: number, count: number) => void): Handle | number;
  perfBufferPoll(pb: Handle, timeoutMs: number): number;
  perfBufferFree(pb: Handle): void;
  /**
   * native mode: ebpf_object_load_native_by_fds(file) on a bpf2c driver (.sys) written to `sysPath`: the
   * fds of its maps and programs (the caller closes them), or -errno. Windows only (EOPNOTSUPP elsewhere).
   */
  loadNative(sysPath: string): { mapFds: number[]; progFds: number[] } | number;
  /** bpf_obj_get_info_by_fd on a program fd (native mode: name and type), or -errno */
  programInfo(progFd: number): ProgramInfo | number;
  /** closes an fd the binding handed out (native mode's) */
  closeFd(fd: number): void;
}
