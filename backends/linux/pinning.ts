// Maps declared with pinning = LIBBPF_PIN_BY_NAME. libbpf would reuse any compatible map already
// pinned at /sys/fs/bpf/NAME (another program's map, then readable and writable by the guest) and pin
// the maps it creates, which then outlive the run. The rule: every map of a guest's object is private
// to the run. Its pin path is cleared before the load ('private', the default), or the object is
// refused ('refuse', for a policy that allows no pinned objects).
import { BackendError } from '../../src/errors.js';
import type { LoadOptions } from '../backend.js';
import type { NativeAddon } from './native.js';

const EPERM = 1;

/** applies opts.pinning to every map of the opened (not yet loaded) object `obj` */
export function confinePinning(native: NativeAddon, obj: number, opts: LoadOptions): void {
  for (const m of native.maps(obj)) {
    if (!m.pinPath) continue;
    if (opts.pinning === 'refuse') {
      throw new BackendError(
        `map '${m.name}' is declared with pinning = LIBBPF_PIN_BY_NAME (${m.pinPath}), and pinned objects are not allowed to this module`,
        EPERM,
        '',
        'remove `__uint(pinning, LIBBPF_PIN_BY_NAME)` from the map definition, or allow private maps in place of pinned ones',
      );
    }
    native.setMapPinPath(obj, m.name, '');
    if (opts.verbose) {
      opts.log(`wasm-bpf: map '${m.name}': pinning at ${m.pinPath} ignored: the map is private to this run (nothing pinned in bpffs is reused, nothing is pinned)`);
    }
  }
}
