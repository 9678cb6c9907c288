// The ringbuf -> perf buffer compat pass as the linux backend applies it: rewrite the ELF (rewrite.ts),
// create the per-CPU scratch map, open the rewritten object and turn every ring buffer map into a perf
// event array (max_entries 0: libbpf sizes it to the number of CPUs).
import type { NativeAddon, NativeOpenOptions } from '../../backends/linux/native.js';
import { MAP_TYPE } from '../../src/kernel/uapi.js';
import { rewriteRingbuf } from './rewrite.js';

export { rewriteRingbuf, usesRingbufHelpers, CompatError } from './rewrite.js';

export interface RingbufCompatResult {
  /** the opened (not loaded) object */
  obj: number;
  /** the scratch map's fd (-1 if none); close it after the load (the programs hold their own reference) */
  scratchFd: number;
  notes: string[];
}

export function openWithRingbufCompat(native: NativeAddon, bytes: Uint8Array, objectName: string, openOpts: NativeOpenOptions): RingbufCompatResult {
  const { scratchValueSize } = rewriteRingbuf(bytes, -1);
  const scratchFd = scratchValueSize > 0 ? native.mapCreate(MAP_TYPE.PERCPU_ARRAY, 4, scratchValueSize, 1, 'wbpf_rb_scratch') : -1;
  try {
    const r = rewriteRingbuf(bytes, scratchFd);
    const obj = native.open(r.bytes, objectName, openOpts);
    const notes = [...new Set(r.notes)];
    try {
      for (const m of native.maps(obj)) {
        if (m.type !== MAP_TYPE.RINGBUF) continue;
        native.setMapType(obj, m.name, MAP_TYPE.PERF_EVENT_ARRAY, 4, 4, 0);
        notes.push(`map '${m.name}': ringbuf -> perf_event_array`);
      }
      if (scratchFd >= 0) notes.push(`per-CPU scratch map: ${scratchValueSize}-byte value`);
    } catch (err) {
      native.close(obj);
      throw err;
    }
    return { obj, scratchFd, notes };
  } catch (err) {
    if (scratchFd >= 0) native.closeFd(scratchFd);
    throw err;
  }
}
