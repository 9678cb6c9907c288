// Map operations through the FFI path with the addon's mapOp contract (native/src/maps.cc): keys and
// values in place in the guest's memory at checked offsets, 0 or -errno, never a throw.
import { libbpfApi, type LibbpfApi } from './api.js';
import { koffi } from './library.js';
import { linuxApi } from './linux.js';
import { checkInt } from './errors.js';
import { captureLog } from './log.js';
import { ERRNO } from '../../src/kernel/uapi.js';

const { EINVAL, EFAULT, EOPNOTSUPP } = ERRNO;

/** the kernel-internal ENOTSUPP, which a guest sees as EOPNOTSUPP (native/src/guesterrno.h) */
const KERNEL_ENOTSUPP = 524;

const LOOKUP = 1;
const UPDATE = 2;
const DELETE = 3;
const GET_NEXT_KEY = 4;
const LOOKUP_AND_DELETE = 21;

/**
 * Typed arrays up to this size may live in V8's heap, where the collector moves them: only larger ones (a
 * guest's memory always is) are passed by address.
 */
const ON_HEAP_MAX = 64;
let lastBuffer: ArrayBufferLike | undefined;
let lastBase = 0;
/** the address of m[0]: its buffer's, cached while the buffer stays the same (memory.grow gives a new one) */
function baseOf(m: Uint8Array): number {
  if (m.buffer !== lastBuffer) {
    lastBase = Number(koffi().address(m.buffer));
    lastBuffer = m.buffer;
  }
  return lastBase + m.byteOffset;
}
/**
 * The view of the last call that took the address path, and the address of its byte 0: a guest passes
 * the same view of its memory call after call, and reading a view's `.buffer` costs more than the rest of
 * the checks (about 50 ns of the ~100 ns this function added to koffi's call). A view never changes
 * buffer or offset; when its buffer is detached (memory.grow) its length reads 0 and every offset fails
 * the bounds check before the cached address could be used.
 */
let lastView: unknown;
let lastViewBase = 0;
/**
 * the address forms of the calls, held in a small object of their own: the API object has too many
 * properties for V8 to keep it in fast mode (each load from it would be a dictionary lookup)
 */
interface AddressCalls {
  lookup: LibbpfApi['lookupNoFlagsAt'];
  lookupFlags: LibbpfApi['lookupAt'];
  update: LibbpfApi['updateAt'];
  del: LibbpfApi['deleteAt'];
  nextKey: LibbpfApi['nextKeyAt'];
}
let fast: AddressCalls | undefined;
function addressCalls(): AddressCalls {
  const a = libbpfApi().api;
  return { lookup: a.lookupNoFlagsAt, lookupFlags: a.lookupAt, update: a.updateAt, del: a.deleteAt, nextKey: a.nextKeyAt };
}

/** the bytes of a buffer or a view (as the addon accepts them), or undefined for anything else */
function bytesOf(mem: unknown): Uint8Array | undefined {
  if (mem instanceof Uint8Array) return mem;
  if (ArrayBuffer.isView(mem)) return new Uint8Array(mem.buffer, mem.byteOffset, mem.byteLength);
  if (mem instanceof ArrayBuffer || mem instanceof SharedArrayBuffer) return new Uint8Array(mem);
  return undefined;
}

/** a command by address (lookup-and-delete goes by buffer: mapOp's checked path) */
function addressOp(cmd: number, fd: number, key: number, val: number, flags: number): number {
  const f = fast!;
  const r =
    cmd === LOOKUP ? (flags === 0 ? f.lookup(fd, key, val) : f.lookupFlags(fd, key, val, flags))
    : cmd === UPDATE ? f.update(fd, key, val, flags)
    : cmd === DELETE ? (flags ? -EINVAL : f.del(fd, key)) // the kernel refuses flags on delete and get-next-key (their attr ends before flags)
    : cmd === GET_NEXT_KEY ? (flags ? -EINVAL : f.nextKey(fd, key, val))
    : -EINVAL;
  return r >= 0 ? 0 : r === -KERNEL_ENOTSUPP ? -EOPNOTSUPP : r;
}

/**
 * One map operation: cmd 1 lookup, 2 update, 3 delete, 4 get next key, 21 lookup and delete; offset -1
 * passes NULL. The caller checked the offsets against the key and value sizes; here, as in the addon,
 * only that they lie inside `mem` (a detached or shrunk memory cannot become a wild pointer).
 */
export function mapOp(cmd: number, fd: number, mem: Uint8Array | ArrayBuffer, keyOff: number, valOff: number, flags: number): number {
  if (mem === lastView && cmd !== LOOKUP_AND_DELETE) {
    // the guest's view again: no type test, no `.buffer`; only the bounds (offset -1 is NULL: below any length)
    const len = (mem as Uint8Array).byteLength;
    if (keyOff >= len || valOff >= len) return -EFAULT;
    return addressOp(cmd, fd, keyOff >= 0 ? lastViewBase + keyOff : 0, valOff >= 0 ? lastViewBase + valOff : 0, flags);
  }
  const m = bytesOf(mem);
  if (!m) return -EINVAL;
  const len = m.byteLength;
  if (cmd !== LOOKUP && cmd !== UPDATE && cmd !== DELETE && cmd !== GET_NEXT_KEY && cmd !== LOOKUP_AND_DELETE) return -EINVAL;
  if ((keyOff >= 0 && keyOff >= len) || (valOff >= 0 && valOff >= len) || ((keyOff >= 0 || valOff >= 0) && len === 0)) return -EFAULT;
  if (cmd !== LOOKUP_AND_DELETE && len > ON_HEAP_MAX) {
    if (!fast) fast = addressCalls();
    const base = baseOf(m);
    // remember the caller's own view (not one made here from an ArrayBuffer: it would never come again)
    if (m === mem) {
      lastView = m;
      lastViewBase = base;
    }
    return addressOp(cmd, fd, keyOff >= 0 ? base + keyOff : 0, valOff >= 0 ? base + valOff : 0, flags);
  }
  const key = keyOff >= 0 ? m.subarray(keyOff) : null;
  const val = valOff >= 0 ? m.subarray(valOff) : null;
  const { api } = libbpfApi();
  let r: number;
  switch (cmd) {
    case LOOKUP:
      r = api.bpf_map_lookup_elem_flags(fd, key, val, flags);
      break;
    case UPDATE:
      r = api.bpf_map_update_elem(fd, key, val, flags);
      break;
    // the kernel refuses flags on these (their attr ends before flags); libbpf's calls take none
    case DELETE:
      r = flags ? -EINVAL : api.bpf_map_delete_elem(fd, key);
      break;
    case GET_NEXT_KEY:
      r = flags ? -EINVAL : api.bpf_map_get_next_key(fd, key, val);
      break;
    default:
      r = linuxApi().bpf_map_lookup_and_delete_elem_flags(fd, key, val, flags);
  }
  if (r >= 0) return 0;
  return r === -KERNEL_ENOTSUPP ? -EOPNOTSUPP : r;
}

/** bpf_map_create: a map the caller owns (closes) */
export function mapCreate(type: number, keySize: number, valueSize: number, maxEntries: number, name: string): number {
  const log = captureLog(0);
  return checkInt(linuxApi().bpf_map_create(type, name || null, keySize, valueSize, maxEntries, null), 'bpf_map_create', `map '${name}'`, log);
}
