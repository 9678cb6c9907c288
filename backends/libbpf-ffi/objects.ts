// Objects through the FFI path: bpf_object__open_mem on a native copy of the bytes (libbpf reads them
// until load), the programs and maps listed, the before-load settings, load and close (its links first).
import type { NativeMapInfo, NativeOpenOptions, NativeProgramInfo } from '../linux/native.js';
import { libbpfApi } from './api.js';
import { linuxApi } from './linux.js';
import { koffi } from './library.js';
import { captureLog } from './log.js';
import { checkInt, checkPtr, ffiError } from './errors.js';
import { ERRNO } from '../../src/kernel/uapi.js';

const { EBADF, ENOENT } = ERRNO;


export interface FfiObject {
  name: string;
  obj: bigint;
  /** the bytes' native copy (freed at close) */
  copy: bigint;
  logLevel: number;
  /** destroy functions of the object's links, by link id */
  links: Set<number>;
}

const objects = new Map<number, FfiObject>();
let nextId = 1;

/** the open object `id`, or the addon's EBADF error */
export function requireObject(id: number, op: string): FfiObject {
  const o = objects.get(id);
  if (!o) throw ffiError(op, EBADF, 'bpf object is closed');
  return o;
}

export function open(bytes: Uint8Array, objectName: string, opts: NativeOpenOptions): number {
  const { api, openOptsSize } = libbpfApi();
  const k = koffi();
  const log = captureLog(opts.logLevel ?? 0);
  const copy = k.alloc('uint8_t', Math.max(1, bytes.length)) as bigint;
  new Uint8Array(k.view(copy, Math.max(1, bytes.length))).set(bytes);
  let obj: bigint;
  try {
    const ret = api.bpf_object__open_mem(copy, bytes.length, {
      sz: openOptsSize,
      object_name: objectName || null,
      relaxed_maps: false,
      pin_root_path: null,
      kconfig: null,
      // libbpf copies the name and the path at open (strdup): koffi's temporary strings are enough
      btf_custom_path: opts.btfCustomPath || null,
      kernel_log_buf: null,
      kernel_log_size: 0,
      kernel_log_level: Math.max(0, opts.kernelLogLevel ?? 0),
    });
    obj = checkPtr(ret, 'bpf_object__open_mem', `object '${objectName}'`, log);
  } catch (err) {
    k.free(copy);
    throw err;
  }
  const id = nextId++;
  objects.set(id, { name: objectName, obj, copy, logLevel: opts.logLevel ?? 0, links: new Set() });
  return id;
}

export function programs(id: number): NativeProgramInfo[] {
  const { api } = libbpfApi();
  const o = requireObject(id, 'programs');
  const out: NativeProgramInfo[] = [];
  for (let p = api.bpf_object__next_program(o.obj, null); p; p = api.bpf_object__next_program(o.obj, p)) {
    out.push({
      name: api.bpf_program__name(p),
      section: api.bpf_program__section_name(p) ?? '',
      type: api.bpf_program__type(p),
      expectedAttachType: api.bpf_program__expected_attach_type(p),
    });
  }
  return out;
}

export function maps(id: number): NativeMapInfo[] {
  const { api } = libbpfApi();
  const lx = linuxApi();
  const o = requireObject(id, 'maps');
  const out: NativeMapInfo[] = [];
  for (let m = api.bpf_object__next_map(o.obj, null); m; m = api.bpf_object__next_map(o.obj, m)) {
    const fd = api.bpf_map__fd(m); // libbpf 1.x: -EINVAL before load
    out.push({
      name: api.bpf_map__name(m),
      type: api.bpf_map__type(m),
      keySize: api.bpf_map__key_size(m),
      valueSize: api.bpf_map__value_size(m),
      maxEntries: api.bpf_map__max_entries(m),
      fd: fd < 0 ? -1 : fd,
      flags: lx.bpf_map__map_flags(m),
      pinPath: lx.bpf_map__pin_path(m) ?? '',
    });
  }
  return out;
}

/** the map `name` of object `id`, with its log scope started */
function findMap(id: number, name: string, op: string): { o: FfiObject; m: bigint; log: () => string } {
  const o = requireObject(id, op);
  const log = captureLog(o.logLevel);
  const m = libbpfApi().api.bpf_object__find_map_by_name(o.obj, name);
  if (!m) throw ffiError('bpf_object__find_map_by_name', ENOENT, `no map '${name}' in object '${o.name}'`, log());
  return { o, m, log };
}

export function setMapType(id: number, mapName: string, type: number, keySize: number, valueSize: number, maxEntries: number): void {
  const { m, log } = findMap(id, mapName, 'setMapType');
  const lx = linuxApi();
  const what = `map '${mapName}'`;
  if (type >= 0) checkInt(lx.bpf_map__set_type(m, type), 'bpf_map__set_type', what, log);
  if (keySize >= 0) checkInt(lx.bpf_map__set_key_size(m, keySize), 'bpf_map__set_key_size', what, log);
  if (valueSize >= 0) checkInt(lx.bpf_map__set_value_size(m, valueSize), 'bpf_map__set_value_size', what, log);
  if (maxEntries >= 0) checkInt(lx.bpf_map__set_max_entries(m, maxEntries), 'bpf_map__set_max_entries', what, log);
}

export function setMapPinPath(id: number, mapName: string, path: string): void {
  const { m, log } = findMap(id, mapName, 'setMapPinPath');
  checkInt(linuxApi().bpf_map__set_pin_path(m, path === '' ? null : path), 'bpf_map__set_pin_path', `map '${mapName}'`, log);
}

export function setMapFlags(id: number, mapName: string, flags: number): void {
  const { m, log } = findMap(id, mapName, 'setMapFlags');
  checkInt(linuxApi().bpf_map__set_map_flags(m, flags >>> 0), 'bpf_map__set_map_flags', `map '${mapName}'`, log);
}

export function load(id: number): void {
  const o = requireObject(id, 'load');
  const log = captureLog(o.logLevel);
  checkInt(libbpfApi().api.bpf_object__load(o.obj), 'bpf_object__load', `object '${o.name}'`, log);
}

/** detach every link of the object (destroy: set by attach.ts), then close it; idempotent */
export function close(id: number, destroyLink: (link: number) => void): void {
  const o = objects.get(id);
  if (!o) return;
  objects.delete(id);
  const log = captureLog(0);
  for (const l of [...o.links]) {
    try {
      destroyLink(l);
    } catch {
      // a link the kernel already dropped: the object still closes
    }
  }
  libbpfApi().api.bpf_object__close(o.obj);
  koffi().free(o.copy);
}
