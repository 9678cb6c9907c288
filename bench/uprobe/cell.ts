// One cell of the uprobe benchmark: one run of a target binary, bare or launched under `wasm-bpf run`
// with the ubench app on one backend, and what it printed (ns per call, records the app received).
import { spawnSync } from 'node:child_process';

/** which programs the app attaches (its -m flag) */
export type Variant = 'entry' | 'return' | 'both';

export interface Probe {
  backend: 'linux' | 'userspace';
  variant: Variant;
  /** the app's -i: 0 a blocking poll (woken by the hits), else drain every intervalMs ms */
  intervalMs: number;
  /** the userspace backend's ptrace tier (`--userspace-tier ptrace`) instead of the in-process hook */
  tier?: 'ptrace';
}

export interface CellRun {
  /** calls made in the timed loop */
  calls: number;
  /** the target thread's CPU time per call (what the report uses) */
  nsPerCall: number;
  /** wall-clock time per call (also counts the time other processes held the CPU) */
  wallNsPerCall: number;
  /** records the app counted (undefined for a bare run) */
  records?: number;
  /** records the programs should have produced: calls, or 2 x calls for entry + return */
  expected?: number;
  /** records the ring refused because it was full, as the run reported them (ours counts them; the kernel does not) */
  dropped?: number;
  /** the ptrace tier: the tracer's own CPU time per hit (WBPF_PTRACE_STATS) */
  tracerNsPerHit?: number;
}

export interface CellPaths {
  cli: string;
  wasm: string;
}

const TARGET_LINE = /^target: (\d+) calls, (\d+) ns, [\d.]+ ns per call, (\d+) cpu ns/m;
const RECORDS_LINE = /^ubench: records (\d+)$/gm;
const DROPS_LINE = /map 'rb': (\d+) records refused because it was full/;
const TRACER_LINE = /^wbpf-ptrace: (\d+) hits, (\d+) ns of the tracer's CPU per hit[;\n]/m;

/** Runs TARGET N (bare) or under the app; throws with the output when the run fails or prints no result. */
export function runCell(target: string, calls: number, probe: Probe | undefined, paths: CellPaths, lingerMs: number, timeoutMs: number): CellRun {
  const targetArgs = [target, String(calls), String(probe ? lingerMs : 0)];
  const argv = probe
    ? [paths.cli, 'run', '--backend', probe.backend, ...(probe.tier ? ['--userspace-tier', probe.tier] : []), paths.wasm, '-m', probe.variant, '-i', String(probe.intervalMs), target, 'bench_fn', '--', ...targetArgs]
    : targetArgs;
  const r = probe
    ? spawnSync(process.execPath, argv, { encoding: 'utf8', timeout: timeoutMs, maxBuffer: 64 << 20, env: probe.tier ? { ...process.env, WBPF_PTRACE_STATS: '1' } : process.env })
    : spawnSync(argv[0]!, argv.slice(1), { encoding: 'utf8', timeout: timeoutMs });
  const out = `${r.stdout ?? ''}${r.stderr ?? ''}`;
  const what = probe ? `${probe.backend}${probe.tier ? ` (${probe.tier} tier)` : ''} ${probe.variant} -i ${probe.intervalMs}` : 'bare';
  if (r.error || r.status !== 0) {
    throw new Error(`${what} run of ${target} failed (${r.error ? r.error.message : `exit ${r.status}`}):\n${out.slice(-2000)}`);
  }
  const m = TARGET_LINE.exec(r.stdout);
  if (!m) throw new Error(`${what} run of ${target} printed no "target:" line:\n${out.slice(-2000)}`);
  const run: CellRun = { calls: Number(m[1]), nsPerCall: Number(m[3]) / Number(m[1]), wallNsPerCall: Number(m[2]) / Number(m[1]) };
  if (probe) {
    let records = 0;
    for (const rm of r.stdout.matchAll(RECORDS_LINE)) records = Number(rm[1]);
    run.records = records;
    run.expected = probe.variant === 'both' ? 2 * calls : calls;
    const d = DROPS_LINE.exec(r.stderr);
    if (d) run.dropped = Number(d[1]);
    const tr = TRACER_LINE.exec(r.stderr);
    if (tr) run.tracerNsPerHit = Number(tr[2]);
  }
  return run;
}
