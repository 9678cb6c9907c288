// The prober: `probe()` builds a report of what eBPF can do on this host (or on a fixture tree);
// `cachedProbeResult()` returns the per-boot cached one when it is still valid. See src/probe/README.md.
import { buildReport, type BuildOptions } from './report.js';
import { fixtureSystem, hostSystem, type SystemView } from './system.js';
import { nativeProbes } from './live.js';
import { addonFile } from '../../backends/linux/native.js';
import { ffiLibrary } from '../../backends/libbpf-ffi/library.js';
import { cacheFile, currentKey, defaultCacheDir, readCache, writeCache } from './cache.js';
import type { Report } from './types.js';
import { applyAssumedMissing } from './assume.js';

export * from './types.js';
export {
  answer,
  describeNeed,
  requirementsMet,
  needsForProgram,
  needsForMap,
  type Need,
  type Missing,
  type Requirements,
} from './require.js';
export { readCachedReport, hostReport } from './fast.js';
export { applyAssumedMissing, assumedMissing, cliAssumedMissing, ASSUME_MISSING_ENV } from './assume.js';
export { fixtureSystem, hostSystem, type SystemView, type LiveProbes } from './system.js';
export { countingProbes } from './live.js';

export interface ProbeOptions {
  /** the system to look at (default: this host, with the native addon's live probes) */
  system?: SystemView;
  /** read system files under this directory instead (fixture mode; nothing is tried) */
  root?: string;
  /** probe helpers per program type (slow) */
  full?: boolean;
  /** an explicit vmlinux BTF file (libbpf's btf_custom_path) */
  btfPath?: string;
  /** cache directory (default: /var/cache/wasm-bpf for root, else $XDG_CACHE_HOME/wasm-bpf) */
  cacheDir?: string;
  /** names the report handed out says are absent (--assume-missing); the cached report is never changed */
  assumeMissing?: readonly string[];
  /** the agent's build directory the userspace checks look at (default: this install's native/agent/build) */
  agentDir?: string;
}

/** This host; the native addon is loaded on first use of `live` (a cache hit never loads it). */
function lazyHost(): SystemView {
  let n: ReturnType<typeof nativeProbes> | undefined;
  const get = (): ReturnType<typeof nativeProbes> => (n ??= nativeProbes());
  return Object.defineProperties(
    { ...hostSystem() },
    {
      live: { get: () => { const r = get(); return 'live' in r ? r.live : undefined; }, enumerable: true },
      liveError: { get: () => { const r = get(); return 'error' in r ? `not probed: ${r.error}` : undefined; }, enumerable: true },
    },
  ) as SystemView;
}

function resolveSystem(opts: ProbeOptions): { sys: SystemView; noProbeReason?: string } {
  if (opts.system) return { sys: opts.system };
  if (opts.root !== undefined) return { sys: fixtureSystem(opts.root) };
  return { sys: lazyHost() };
}

/** the kernel backend's native part on this host (backends/linux/kernellib.ts's automatic choice), or why none */
function hostKernelPath(sys: SystemView): { path: 'addon' | 'ffi'; reason: string } | { missing: string } {
  if (addonFile()) return { path: 'addon', reason: 'the native addon is built' };
  const why = (sys.liveError ?? 'not built').replace(/^not probed: /, '');
  const ffi = ffiLibrary();
  if ('library' in ffi) return { path: 'ffi', reason: `${ffi.library} through koffi (the addon: ${why})` };
  return { missing: `${why}; no libbpf for the FFI path either (${ffi.error})` };
}

function buildOpts(opts: ProbeOptions, sys: SystemView, noProbeReason?: string): BuildOptions {
  // this host (not a fixture, not a given view): the kernel backend's native part, the addon or else libbpf
  // through FFI; neither: the kernel backend is missing
  const host = !opts.system && opts.root === undefined && process.platform === 'linux';
  const path = host ? hostKernelPath(sys) : undefined;
  const addonMissing = path && 'missing' in path ? path.missing : undefined;
  const kernelPath = path && 'path' in path ? path : undefined;
  return {
    ...(addonMissing ? { addonMissing } : {}),
    ...(kernelPath ? { kernelPath } : {}),
    ...(opts.full ? { full: true } : {}),
    ...(opts.btfPath ? { btfPath: opts.btfPath } : {}),
    ...(opts.agentDir ? { agentDir: opts.agentDir } : {}),
    // the cache (and the BTFHub files in it) belong to the host running wasm-bpf, also in fixture mode
    cacheDir: opts.cacheDir ?? defaultCacheDir(typeof process.getuid === 'function' ? process.getuid() : null),
    ...(noProbeReason ?? sys.liveError ? { noProbeReason: noProbeReason ?? sys.liveError } : {}),
  };
}

/** Probes now (no cache). */
export function probe(opts: ProbeOptions = {}): Report {
  const { sys, noProbeReason } = resolveSystem(opts);
  return buildReport(sys, buildOpts(opts, sys, noProbeReason));
}

export interface CachedResult {
  report: Report;
  /** the report came from the cache file */
  hit: boolean;
  /** the cache file used or written (undefined: caching not possible, e.g. fixture mode or no boot id) */
  file: string | undefined;
  /** why the cache could not be written, if it could not */
  writeError?: string;
}

/**
 * The report from the per-boot cache when its key (kernel release, boot id, uid, capabilities, schema,
 * options) still matches; otherwise probes and rewrites the cache. Fixture mode is never cached.
 */
export function cachedProbeResult(opts: ProbeOptions & { noCache?: boolean } = {}): CachedResult {
  const { sys, noProbeReason } = resolveSystem(opts);
  const fixture = sys.mode === 'fixture';
  const key = fixture ? undefined : currentKey(sys, opts);
  const dir = opts.cacheDir ?? defaultCacheDir(key?.uid ?? sys.uid());
  const file = key ? cacheFile(dir, key) : undefined;
  if (file && key && !opts.noCache) {
    const cached = readCache(file, key);
    if (cached) return { report: applyAssumedMissing(cached, opts.assumeMissing ?? []), hit: true, file };
  }
  const report = buildReport(sys, buildOpts({ ...opts, cacheDir: dir }, sys, noProbeReason));
  if (!file || !key) return { report: applyAssumedMissing(report, opts.assumeMissing ?? []), hit: false, file: undefined };
  const writeError = writeCache(file, key, report);
  return { report: applyAssumedMissing(report, opts.assumeMissing ?? []), hit: false, file, ...(writeError ? { writeError } : {}) };
}
