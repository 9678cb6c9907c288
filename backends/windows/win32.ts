// Every Windows-only call of the Windows backend, in this one module (as cilium/ebpf keeps its own in
// internal/efw): ebpfapi.dll's native-mode load and its bpf_prog_info layout, iphlpapi.dll's
// if_nametoindex, the C runtime's _close. Nothing here runs on Linux (win32() throws there); it is
// written from eBPF for Windows' headers (include/ebpf_api.h, include/ebpf_structs.h) and not yet run
// on Windows: no Windows machine has executed it.
import { koffi } from '../libbpf-ffi/library.js';
import { openLibrary } from '../libbpf-ffi/library.js';
import type { ProgramInfo } from './ebpfapi.js';

export interface Win32Calls {
  /** ebpf_object_load_native_by_fds: 0 (EBPF_SUCCESS) or an ebpf_result_t; the counts in/out */
  loadNativeByFds(file: string, mapCount: number[], mapFds: Int32Array | null, progCount: number[], progFds: Int32Array | null): number;
  ifNameToIndex(name: string): number;
  close(fd: number): number;
  programInfo(fd: number): ProgramInfo | number;
}

/** eBPF for Windows' struct bpf_prog_info: id u32 @0, type u32 @4, nr_map_ids @8, map_ids uintptr @16, name[64] @24, ... 128 bytes */
const PROG_INFO_SIZE = 128;
const PROG_INFO_TYPE = 4;
const PROG_INFO_NAME = 24;
const OBJ_NAME_LEN = 64;

let calls: Win32Calls | undefined;

export function win32(): Win32Calls {
  if (calls) return calls;
  if (process.platform !== 'win32') throw Object.assign(new Error(`eBPF for Windows' own calls (ebpfapi.dll native mode, iphlpapi.dll) exist on Windows only; this is ${process.platform}`), { errno: 95, code: 'EOPNOTSUPP' });
  const k = koffi();
  const { lib } = openLibrary(); // ebpfapi.dll
  const loadNative = lib.func('int ebpf_object_load_native_by_fds(const char *file, _Inout_ size_t *count_of_maps, _Out_ int *map_fds, _Inout_ size_t *count_of_programs, _Out_ int *program_fds)');
  const getInfo = lib.func('int bpf_obj_get_info_by_fd(int fd, _Inout_ uint8_t *info, _Inout_ uint32_t *len)');
  const ifNameToIndex = k.load('iphlpapi.dll').func('uint32_t if_nametoindex(const char *name)');
  const crtClose = k.load('ucrtbase.dll').func('int _close(int fd)');
  calls = {
    loadNativeByFds: (file, mapCount, mapFds, progCount, progFds) => loadNative(file, mapCount, mapFds, progCount, progFds) as number,
    ifNameToIndex: (name) => ifNameToIndex(name) as number,
    close: (fd) => crtClose(fd) as number,
    programInfo: (fd) => {
      const info = new Uint8Array(PROG_INFO_SIZE);
      const r = getInfo(fd, info, [PROG_INFO_SIZE]) as number;
      if (r < 0) return r;
      const dv = new DataView(info.buffer);
      const raw = info.subarray(PROG_INFO_NAME, PROG_INFO_NAME + OBJ_NAME_LEN);
      const end = raw.indexOf(0);
      return { type: dv.getUint32(PROG_INFO_TYPE, true), name: new TextDecoder().decode(raw.subarray(0, end < 0 ? raw.length : end)) };
    },
  };
  return calls;
}
