// The runtime's entry to the prober: the cached report in well under 5 ms, loading only the cache code.
// A miss (first run after boot, another kernel/user) loads the whole prober and probes.
import { cacheFile, currentKey, defaultCacheDir, readCache } from './cache.js';
import { hostSystem } from './system.js';
import type { Report } from './types.js';
import { applyAssumedMissing } from './assume.js';

/** The cached report for this host if it is still valid (same boot, kernel, uid, capabilities), else undefined. */
export function readCachedReport(opts: { cacheDir?: string; full?: boolean } = {}): Report | undefined {
  const sys = hostSystem();
  const key = currentKey(sys, opts);
  if (!key) return undefined;
  return readCache(cacheFile(opts.cacheDir ?? defaultCacheDir(key.uid), key), key);
}

/** The report: from the cache when valid, otherwise probed now (and cached). */
export async function hostReport(opts: { cacheDir?: string; full?: boolean; assumeMissing?: readonly string[] } = {}): Promise<Report> {
  const hit = readCachedReport(opts);
  // --assume-missing / WASM_BPF_ASSUME_MISSING (applied to the copy handed out, never cached)
  if (hit) return applyAssumedMissing(hit, opts.assumeMissing ?? []);
  const { cachedProbeResult } = await import('./index.js');
  return cachedProbeResult(opts).report;
}
