// Maps declared with pinning = LIBBPF_PIN_BY_NAME. libbpf would reuse any compatible map already
// pinned at /sys/fs/bpf/NAME (another program's map, then readable and writable by the guest) and pin
// the maps it creates, which then outlive the run. The policy's pin rule decides: 'private' (the
// default) clears every pin path before the load, so every map is private to the run; 'refuse'
// refuses the object; 'allow' pins below the directory the user chose (never /sys/fs/bpf itself unless
// that is the directory given), so a tool shares its maps between its own runs and no others.
import path from 'node:path';
import { BackendError } from '../../src/errors.js';
import { DEFAULT_POLICY } from '../../src/policy/policy.js';
import { PolicyDenied } from '../../src/policy/enforce.js';
import type { LoadOptions } from '../backend.js';
import type { KernelLib } from './native.js';
import { ERRNO } from '../../src/kernel/uapi.js';

const { EINVAL } = ERRNO;

/** applies the policy's pin rule to every map of the opened (not yet loaded) object `obj` */
export function confinePinning(native: KernelLib, obj: number, opts: LoadOptions): void {
  const rule = (opts.policy ?? DEFAULT_POLICY).pin;
  for (const m of native.maps(obj)) {
    if (!m.pinPath) continue;
    if (rule.mode === 'refuse') {
      throw new PolicyDenied(
        `map '${m.name}' is declared with pinning = LIBBPF_PIN_BY_NAME (${m.pinPath}), and the policy allows no pinned objects`,
        'allow private maps in place of pinned ones (--pin private) or pinning below a directory (--allow-pin DIR)',
      );
    }
    if (rule.mode === 'allow') {
      if (!/^[A-Za-z0-9_.]+$/.test(m.name) || m.name === '.' || m.name === '..') {
        throw new BackendError(`map '${m.name}': a pinned map's name must be a plain file name`, EINVAL);
      }
      const at = path.join(rule.root, m.name);
      native.setMapPinPath(obj, m.name, at);
      if (opts.verbose) opts.log(`wasm-bpf: map '${m.name}': pinned at ${at} (reused when a compatible map is pinned there)`);
      continue;
    }
    native.setMapPinPath(obj, m.name, '');
    if (opts.verbose) {
      opts.log(`wasm-bpf: map '${m.name}': pinning at ${m.pinPath} ignored: the map is private to this run (nothing pinned in bpffs is reused, nothing is pinned)`);
    }
  }
}
