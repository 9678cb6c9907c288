// The Windows backend's binding (./ebpfapi.ts's EbpfBinding) over the libbpf-compatible library through
// koffi: backends/libbpf-ffi's declarations (ebpfapi.dll on Windows, libbpf.so.1 on Linux) plus the few
// calls this path adds (ring_buffer__poll, perf_buffer__poll, the map settings, libbpf_get_error,
// bpf_obj_get_info_by_fd). What exists only on Windows goes through ./win32.ts; on Linux the same
// calls run against libbpf.so.1 (test/windows-load.test.ts), native mode answers -EOPNOTSUPP.
import { libbpfApi, declare, type Ptr } from '../libbpf-ffi/api.js';
import { koffi, openLibrary } from '../libbpf-ffi/library.js';
import * as sys from '../libbpf-ffi/sys.js';
import { mapOp } from '../libbpf-ffi/mapop.js';
import { ERRNO } from '../../src/kernel/uapi.js';
import type { EbpfBinding, Handle, MapDef, ProgramInfo } from './ebpfapi.js';
import { win32 } from './win32.js';

const { EINVAL, ENOENT, EOPNOTSUPP, EIO } = ERRNO;
const WINDOWS = process.platform === 'win32';

/** eBPF for Windows' ebpf_result_t values the native load answers with (include/ebpf_result.h) */
const EBPF_SUCCESS = 0;

/** Linux's struct bpf_prog_info: type u32 @0, name[16] @64 (the kernel zero-fills past what it knows) */
const LINUX_PROG_INFO_SIZE = 256;
const LINUX_PROG_INFO_NAME = 64;
const LINUX_OBJ_NAME_LEN = 16;

interface Extra {
  libbpf_get_error(p: Ptr): number;
  ring_buffer__poll(rb: Ptr, timeoutMs: number): number;
  perf_buffer__poll(pb: Ptr, timeoutMs: number): number;
  bpf_map__set_type(m: Ptr, type: number): number;
  bpf_map__set_key_size(m: Ptr, n: number): number;
  bpf_map__set_value_size(m: Ptr, n: number): number;
  bpf_map__set_max_entries(m: Ptr, n: number): number;
  bpf_obj_get_info_by_fd(fd: number, info: Uint8Array, len: number[]): number;
  bpf_map_create(type: number, name: string | null, keySize: number, valueSize: number, maxEntries: number, opts: null): number;
}

const copyOf = (data: bigint, size: number): Uint8Array => (size === 0 ? new Uint8Array(0) : new Uint8Array(koffi().view(data, size)).slice());

let binding: EbpfBinding | undefined;

/** The binding over the system's library (opened once); throws what backends/libbpf-ffi's openLibrary throws. */
export function ffiBinding(): EbpfBinding {
  if (binding) return binding;
  const { api, protos } = libbpfApi();
  const { lib, file } = openLibrary();
  const k = koffi();
  const x = declare(lib, file, [
    'long libbpf_get_error(void *ptr)',
    'int ring_buffer__poll(void *rb, int timeout_ms)',
    'int perf_buffer__poll(void *pb, int timeout_ms)',
    'int bpf_map__set_type(void *m, int type)',
    'int bpf_map__set_key_size(void *m, uint32_t size)',
    'int bpf_map__set_value_size(void *m, uint32_t size)',
    'int bpf_map__set_max_entries(void *m, uint32_t n)',
    'int bpf_obj_get_info_by_fd(int fd, _Inout_ uint8_t *info, _Inout_ uint32_t *len)',
    'int bpf_map_create(int type, const char *name, uint32_t key_size, uint32_t value_size, uint32_t max_entries, void *opts)',
  ]) as unknown as Extra;
  /** an object's native copy of its bytes, freed at close */
  const copies = new Map<Handle, bigint>();
  /** the callbacks registered for a buffer, unregistered at free */
  const callbacks = new Map<Handle, bigint[]>();
  const ptrOr = (p: Ptr): Handle | number => (p === null || p === 0n ? Math.min(-1, Number(x.libbpf_get_error(p))) : p);
  const unregister = (h: Handle): void => {
    for (const c of callbacks.get(h) ?? []) k.unregister(c);
    callbacks.delete(h);
  };
  binding = {
    library: file,
    objectOpenMem(bytes, name) {
      const copy = k.alloc('uint8_t', Math.max(1, bytes.length)) as bigint;
      new Uint8Array(k.view(copy, Math.max(1, bytes.length))).set(bytes);
      const obj = ptrOr(api.bpf_object__open_mem(copy, bytes.length, { sz: libbpfApi().openOptsSize, object_name: name || null, relaxed_maps: false, pin_root_path: null, kconfig: null, btf_custom_path: null, kernel_log_buf: null, kernel_log_size: 0, kernel_log_level: 0 }));
      if (typeof obj === 'number') k.free(copy);
      else copies.set(obj, copy);
      return obj;
    },
    mapCreate: (def) => x.bpf_map_create(def.type, def.name || null, def.keySize, def.valueSize, def.maxEntries, null),
    mapSetDef(obj, mapName, def: MapDef) {
      const m = api.bpf_object__find_map_by_name(obj, mapName);
      if (!m) return -ENOENT;
      for (const r of [x.bpf_map__set_type(m, def.type), x.bpf_map__set_key_size(m, def.keySize), x.bpf_map__set_value_size(m, def.valueSize), def.maxEntries ? x.bpf_map__set_max_entries(m, def.maxEntries) : 0]) if (r < 0) return r;
      return 0;
    },
    objectLoad: (obj) => api.bpf_object__load(obj),
    objectClose(obj) {
      api.bpf_object__close(obj);
      const copy = copies.get(obj);
      if (copy !== undefined) k.free(copy);
      copies.delete(obj);
    },
    programFd(obj, name) {
      const p = api.bpf_object__find_program_by_name(obj, name);
      return p ? api.bpf_program__fd(p) : -ENOENT;
    },
    mapFd(obj, name) {
      const m = api.bpf_object__find_map_by_name(obj, name);
      return m ? api.bpf_map__fd(m) : -ENOENT;
    },
    mapOp(cmd, fd, mem, keyOff, valOff, flags) {
      try {
        return mapOp(cmd, fd, mem, keyOff, valOff, flags);
      } catch (err) {
        // a call the library does not export (ebpfapi.dll: lookup-and-delete) throws EOPNOTSUPP where it is declared
        return -Math.abs((err as { errno?: number }).errno ?? EOPNOTSUPP);
      }
    },
    ifIndex: (name) => (WINDOWS ? win32().ifNameToIndex(name) : sys.ifIndex(name)),
    xdpAttach: (ifindex, progFd, flags) => api.bpf_xdp_attach(ifindex, progFd, flags, null),
    xdpDetach: (ifindex, flags) => api.bpf_xdp_detach(ifindex, flags, null),
    progAttach: (progFd, target, attachType) => api.bpf_prog_attach(progFd, target, attachType, 0),
    progDetach: (progFd, target, attachType) => api.bpf_prog_detach2(progFd, target, attachType),
    ringBufferNew(mapFd, onRecord) {
      const cb = k.register(((_ctx: bigint, data: bigint, size: number | bigint) => (onRecord(copyOf(data, Number(size))), 0)) as never, k.pointer(protos.ringSample));
      const rb = ptrOr(api.ring_buffer__new(mapFd, cb, null, null));
      if (typeof rb === 'number') k.unregister(cb);
      else callbacks.set(rb, [cb]);
      return rb;
    },
    ringBufferPoll: (rb, timeoutMs) => x.ring_buffer__poll(rb, timeoutMs),
    ringBufferFree(rb) {
      api.ring_buffer__free(rb);
      unregister(rb);
    },
    perfBufferNew(mapFd, pages, onSample, onLost) {
      const sample = k.register(((_ctx: bigint, cpu: number, data: bigint, size: number) => void onSample(cpu, copyOf(data, size))) as never, k.pointer(protos.perfSample));
      const lost = k.register(((_ctx: bigint, cpu: number, cnt: number | bigint) => void onLost(cpu, Number(cnt))) as never, k.pointer(protos.perfLost));
      const pb = ptrOr(api.perf_buffer__new(mapFd, pages, sample, lost, null, null));
      if (typeof pb === 'number') {
        k.unregister(sample);
        k.unregister(lost);
      } else callbacks.set(pb, [sample, lost]);
      return pb;
    },
    perfBufferPoll: (pb, timeoutMs) => x.perf_buffer__poll(pb, timeoutMs),
    perfBufferFree(pb) {
      api.perf_buffer__free(pb);
      unregister(pb);
    },
    loadNative(sysPath) {
      if (!WINDOWS) return -EOPNOTSUPP;
      const w = win32();
      // first the counts (EBPF_NO_MEMORY with the counts filled in), then the fds
      const maps = [0];
      const progs = [0];
      w.loadNativeByFds(sysPath, maps, null, progs, null);
      if (maps[0]! > 4096 || progs[0]! > 4096) return -EINVAL;
      const mapFds = new Int32Array(Math.max(1, maps[0]!));
      const progFds = new Int32Array(Math.max(1, progs[0]!));
      const r = w.loadNativeByFds(sysPath, maps, mapFds, progs, progFds);
      if (r !== EBPF_SUCCESS) return -EIO; // an ebpf_result_t: the service's log says which
      return { mapFds: [...mapFds.subarray(0, maps[0])], progFds: [...progFds.subarray(0, progs[0])] };
    },
    programInfo(progFd): ProgramInfo | number {
      if (WINDOWS) return win32().programInfo(progFd);
      const info = new Uint8Array(LINUX_PROG_INFO_SIZE);
      const r = x.bpf_obj_get_info_by_fd(progFd, info, [LINUX_PROG_INFO_SIZE]);
      if (r < 0) return r;
      const raw = info.subarray(LINUX_PROG_INFO_NAME, LINUX_PROG_INFO_NAME + LINUX_OBJ_NAME_LEN);
      const end = raw.indexOf(0);
      return { type: new DataView(info.buffer).getUint32(0, true), name: new TextDecoder().decode(raw.subarray(0, end < 0 ? raw.length : end)) };
    },
    closeFd(fd) {
      if (WINDOWS) win32().close(fd);
      else sys.closeFd(fd);
    },
  };
  return binding;
}
