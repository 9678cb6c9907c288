// `--assume-missing FEATURE` / WASM_BPF_ASSUME_MISSING=ringbuf[,feature...]: make the report say a feature
// is absent, so that the fallback paths (compat passes) run on a kernel that has everything. Applied to the
// report handed out, never to the cached one. The command line reads the variable and the options once
// (cliAssumedMissing); the names then travel as arguments (ProbeOptions.assumeMissing, RunOptions.assumeMissing).
import type { Report } from './types.js';
import { ATTACH_DEFS, FEATURE_DEFS, MAP_TYPES, PROG_TYPES } from './tables.js';

export const ASSUME_MISSING_ENV = 'WASM_BPF_ASSUME_MISSING';

/** the names from the environment variable (comma or space separated) */
export function assumedMissing(env: NodeJS.ProcessEnv): string[] {
  return (env[ASSUME_MISSING_ENV] ?? '').split(/[\s,]+/).filter(Boolean);
}

/** whether the prober reports something under this name (a map type, program type, attach mechanism or feature) */
function isKnownFeature(name: string): boolean {
  return MAP_TYPES.some((m) => m.name === name) || PROG_TYPES.some((p) => p.name === name) || name in ATTACH_DEFS || name in FEATURE_DEFS;
}

/**
 * The names a command line asks for: the environment variable's, then each --assume-missing value
 * (comma separated). Throws naming the first the prober does not know.
 */
export function cliAssumedMissing(options: readonly string[], env: NodeJS.ProcessEnv): string[] {
  const names = [...assumedMissing(env), ...options.flatMap((o) => o.split(',').filter(Boolean))];
  const bad = names.find((n) => !isKnownFeature(n));
  if (bad !== undefined || options.some((o) => o.split(',').filter(Boolean).length === 0)) {
    throw new Error(`--assume-missing ${bad ?? ''}: not a map type, program type, attach mechanism or feature the prober knows (e.g. ringbuf)`);
  }
  return [...new Set(names)];
}

/**
 * A copy of `report` where each name (a map type, program type, attach mechanism or feature, e.g. 'ringbuf')
 * is 'no'. Throws for a name the report does not know.
 */
export function applyAssumedMissing(report: Report, names: readonly string[]): Report {
  if (names.length === 0) return report;
  const r: Report = { ...report, mapTypes: { ...report.mapTypes }, progTypes: { ...report.progTypes }, attach: { ...report.attach }, features: { ...report.features } };
  const reason = 'assumed missing (--assume-missing)';
  for (const name of names) {
    let hit = false;
    for (const table of [r.mapTypes, r.progTypes, r.attach, r.features] as Array<Record<string, { state: string; reason: string; method: string }>>) {
      const f = table[name];
      if (!f) continue;
      table[name] = { ...f, state: 'no', reason, method: 'none', fix: `drop --assume-missing ${name} (and ${ASSUME_MISSING_ENV})` } as typeof f;
      hit = true;
    }
    if (!hit) throw new Error(`--assume-missing ${name}: not a map type, program type, attach mechanism or feature the prober knows`);
  }
  return r;
}
