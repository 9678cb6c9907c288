// The ringbuf -> perf buffer compat pass as the selector applies it: rewrite the ELF (rewrite.ts) and
// describe, as data, what the backend does as it opens the result: every ring buffer map becomes a perf
// event array (max_entries 0: one slot per possible CPU), and a per-CPU scratch map is created for the
// reserves. Pure: bytes in, bytes and edits out; no kernel, no addon.
import type { ObjectEdits } from '../../src/object/edits.js';
import { MAP_TYPE } from '../../src/kernel/uapi.js';
import { rewriteRingbuf } from './rewrite.js';

export { rewriteRingbuf, usesRingbufHelpers, CompatError } from './rewrite.js';

export interface RingbufToPerf {
  bytes: Uint8Array;
  edits: ObjectEdits;
  /** one line per change, for --verbose */
  notes: string[];
}

/** `maps`: the object's maps (the selector's parse); the ring buffers among them become perf event arrays. */
export function ringbufToPerf(bytes: Uint8Array, maps: ReadonlyArray<{ name: string; type: number }>): RingbufToPerf {
  const r = rewriteRingbuf(bytes);
  const notes = [...new Set(r.notes)];
  const rings = maps.filter((m) => m.type === MAP_TYPE.RINGBUF);
  for (const m of rings) notes.push(`map '${m.name}': ringbuf -> perf_event_array`);
  if (r.scratchValueSize > 0) notes.push(`per-CPU scratch map: ${r.scratchValueSize}-byte value`);
  return {
    bytes: r.bytes,
    edits: {
      retype: rings.map((m) => ({ name: m.name, type: MAP_TYPE.PERF_EVENT_ARRAY, keySize: 4, valueSize: 4, maxEntries: 0 })),
      ...(r.scratchValueSize > 0
        ? { hostMaps: [{ name: 'wbpf_rb_scratch', type: MAP_TYPE.PERCPU_ARRAY, keySize: 4, valueSize: r.scratchValueSize, maxEntries: 1, fdAt: r.scratchFdAt }] }
        : {}),
    },
    notes,
  };
}
