// The live syscall probes, over the native addon (native/src/probe.cc). Loaded only when probing this host.
import { loadNative } from '../../backends/linux/native.js';
import type { LiveProbes } from './system.js';

/** The addon's probes, or undefined with the reason when the addon cannot be loaded (not built, not Linux). */
export function nativeProbes(): { live: LiveProbes } | { error: string } {
  if (process.platform !== 'linux') return { error: `no live probes on ${process.platform}` };
  try {
    const n = loadNative();
    return {
      live: {
        load: (req) => n.probeLoad(req),
        mapType: (type) => n.probeMapType(type),
        perfEvents: (specs) => {
          const batch = n.probePerfEventsStart(specs);
          let res: number[] | undefined;
          return () => (res ??= n.probePerfEventsWait(batch));
        },
        lsmListModules: () => n.lsmListModules(),
      },
    };
  } catch (err) {
    return { error: err instanceof Error ? err.message : String(err) };
  }
}

/** Wraps probes with a call counter (tests use it to see that a cached report ran no probe). */
export function countingProbes(inner: LiveProbes): { live: LiveProbes; calls: () => number } {
  let calls = 0;
  const live: LiveProbes = {
    load: (req) => (calls++, inner.load(req)),
    mapType: (t) => (calls++, inner.mapType(t)),
    perfEvents: (specs) => (calls++, inner.perfEvents(specs)),
    lsmListModules: () => (calls++, inner.lsmListModules()),
  };
  return { live, calls: () => calls };
}
