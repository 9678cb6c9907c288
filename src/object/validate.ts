// The project's own validation of an eBPF object, run on every object a guest loads before any backend
// (and so before libbpf's bpf_object__open_mem) sees its bytes. Parse-only: no syscalls.
//
// libbpf trusts much of what it reads: an out-of-range BTF type id, a section that points outside the
// file or a relocation naming a missing symbol make it read outside its buffers (the host segfaults).
// loadObject() (./loader.ts) reads everything libbpf reads, with every offset, size, index and type id
// checked: the ELF header and section table, string tables, symbols, relocations, .BTF, .BTF.ext and
// the map sections. What libbpf also relies on and loadObject() does not need for itself is checked
// by loadObject() too (./libbpf-needs.ts), so `check`, the userspace backend and this door apply the same
// rules. An object that passes is one libbpf can parse without trusting it.
import { BackendError } from '../errors.js';
import { type BpfObject, loadObject, ObjectError } from './loader.js';

const EINVAL = 22;
const EOPNOTSUPP = 95;

/**
 * Validates an eBPF object; returns the parsed object. Throws BackendError (EINVAL for malformed bytes,
 * EOPNOTSUPP for well-formed things no backend loads) naming what is wrong; never RangeError/TypeError.
 */
export function validateObject(bytes: Uint8Array, objectName?: string): BpfObject {
  const what = objectName ? `object '${objectName}'` : 'the eBPF object';
  try {
    return loadObject(bytes);
  } catch (e) {
    if (e instanceof ObjectError) {
      throw new BackendError(
        `invalid eBPF object: ${what} was refused before loading: ${e.message}`,
        e.code === 'OBJECT_UNSUPPORTED' ? EOPNOTSUPP : EINVAL,
        '',
        '`wasm-bpf check FILE` reads an object (or the objects inside a module) and names what is wrong with it',
        { cause: e },
      );
    }
    throw e;
  }
}
