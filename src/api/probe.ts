// What eBPF can do on this host, as data: the object `wasm-bpf probe --json` prints (the prober's report
// plus the compat passes it implies). Shared by the CLI (src/cli/probe.ts) and the library API.
import path from 'node:path';
import { cachedProbeResult, type CachedResult, type Report } from '../probe/index.js';
import { compatSteps, type CompatStep } from '../select/compat.js';

export interface ProbeRequest {
  /** also probe every helper from every program type (slower) */
  full?: boolean;
  /** probe again instead of using the cached report (the cache is rewritten) */
  noCache?: boolean;
  /** fixture mode: read /proc, /sys, /boot, /etc under this directory and uname from root/uname.json */
  root?: string;
  /** a vmlinux BTF file to use (libbpf's btf_custom_path); relative to the current directory, or inside root */
  btf?: string;
  /** features to report as absent (e.g. 'ringbuf'), as --assume-missing */
  assumeMissing?: readonly string[];
}

/** the report with the compat steps the selector would apply here (an addition to schema version 1) */
export type ProbeResult = Report & { compat: CompatStep[] };

/** the report and whether it came from the cache (the CLI's header says so) */
export function probeHost(req: ProbeRequest = {}): { result: ProbeResult; cached: CachedResult } {
  const cached = cachedProbeResult({
    ...(req.root !== undefined ? { root: req.root } : {}),
    ...(req.btf !== undefined ? { btfPath: req.root === undefined ? path.resolve(req.btf) : req.btf } : {}),
    full: req.full ?? false,
    noCache: req.noCache ?? false,
    assumeMissing: req.assumeMissing ?? [],
  });
  return { result: { ...cached.report, compat: compatSteps(cached.report) }, cached };
}
