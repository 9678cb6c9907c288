// Benchmark of the prober (not a test): the default report cold (no cache), the cached lookup the runtime's
// routing uses, --full, and the CLI end to end. Prints medians; `--write` also writes bench/PROBE.md.
//   npx tsx bench/probe-bench.ts [--runs N] [--write]      (or node dist/bench/probe-bench.js after tsc)
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { spawn, spawnSync } from 'node:child_process';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { cachedProbeResult, hostSystem, probe } from '../src/probe/index.js';
import { nativeProbes } from '../src/probe/live.js';

const here = path.dirname(fileURLToPath(import.meta.url));
// from the source tree (tsx) or from dist/bench
const ROOT = fs.existsSync(path.join(here, '..', 'package.json')) ? path.resolve(here, '..') : path.resolve(here, '..', '..');
const CLI = path.join(ROOT, 'bin', 'wasm-bpf.js');

const args = process.argv.slice(2);
const runsArg = args.indexOf('--runs');
const RUNS = runsArg >= 0 ? Number(args[runsArg + 1]) : 15;
const WRITE = args.includes('--write');

function stats(xs: number[]): { median: number; min: number; p90: number; max: number } {
  const s = [...xs].sort((a, b) => a - b);
  const q = (p: number): number => s[Math.min(s.length - 1, Math.floor(p * s.length))]!;
  return { median: q(0.5), min: s[0]!, p90: q(0.9), max: s[s.length - 1]! };
}

const fmt = (ms: number): string => (ms < 1 ? `${(ms * 1000).toFixed(0)} µs` : `${ms.toFixed(1)} ms`);
const sleep = (ms: number): void => void Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);

const native = nativeProbes();
if (!('live' in native)) throw new Error(`native probes unavailable: ${native.error}`);
const sys = hostSystem(native.live);

// 1. default report, in-process, cold (no cache). A pause between runs lets the kernel finish closing the
//    previous run's tracepoint/uprobe events (their close waits for an RCU grace period, in the background).
probe({ system: sys }); // warm the JIT once
const cold: number[] = [];
for (let i = 0; i < RUNS; i++) {
  sleep(300);
  const t0 = performance.now();
  probe({ system: sys });
  cold.push(performance.now() - t0);
}

// 2. the cached lookup (what routing calls): key (boot id, release, /proc/self/status) + read + JSON.parse
const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'wasm-bpf-probe-bench-'));
cachedProbeResult({ system: sys, cacheDir: dir });
const cached: number[] = [];
for (let i = 0; i < RUNS * 20; i++) {
  const t0 = performance.now();
  const r = cachedProbeResult({ system: sys, cacheDir: dir });
  cached.push(performance.now() - t0);
  if (!r.hit) throw new Error('expected a cache hit');
}
const cacheBytes = fs.statSync(fs.readdirSync(dir).map((f) => path.join(dir, f)).find((f) => f.endsWith('.json'))!).size;

// 3. a fresh process: load the runtime's entry (src/probe/fast.ts) and the routing code, read the cached
//    report, pick a backend: the runtime's first routing decision, node start-up excluded
const distFast = path.join(ROOT, 'dist', 'src', 'probe', 'fast.js');
const distPlan = path.join(ROOT, 'dist', 'src', 'select', 'plan.js');
const fresh: number[] = [];
const freshLookup: number[] = [];
if (fs.existsSync(distFast)) {
  const script = `const t0 = performance.now();
const f = await import(${JSON.stringify(pathToFileURL(distFast).href)}); const q = await import(${JSON.stringify(pathToFileURL(distPlan).href)});
const t1 = performance.now();
const r = f.readCachedReport({ cacheDir: ${JSON.stringify(dir)} });
if (!r) throw new Error('miss');
const d = q.planObject(r, { programs: [{ name: 'p', section: 'tp/sched/sched_process_exec', type: 0 }], maps: [] });
const t2 = performance.now();
console.log(JSON.stringify([t1 - t0, t2 - t1, d.backend]));`;
  for (let i = 0; i < Math.min(RUNS, 10); i++) {
    const r = spawnSync(process.execPath, ['--input-type=module', '-e', script], { encoding: 'utf8' });
    if (r.status !== 0) throw new Error(r.stderr);
    const [imp, look] = JSON.parse(r.stdout) as [number, number];
    fresh.push(imp + look);
    freshLookup.push(look);
  }
}
fs.rmSync(dir, { recursive: true, force: true });

// 4. --full (helpers per program type)
const full: number[] = [];
for (let i = 0; i < Math.min(RUNS, 5); i++) {
  sleep(300);
  const t0 = performance.now();
  probe({ system: sys, full: true });
  full.push(performance.now() - t0);
}

// 5. the CLI end to end (node start-up included), no cache: until the report is printed, and until the
//    process has exited (the exit waits for the kernel to finish closing the tracepoint/uprobe events)
const printed: number[] = [];
const cli: number[] = [];
const cliCache = fs.mkdtempSync(path.join(os.tmpdir(), 'wasm-bpf-probe-bench-cli-'));
if (fs.existsSync(CLI)) {
  for (let i = 0; i < Math.min(RUNS, 10); i++) {
    sleep(300);
    const t0 = performance.now();
    const child = spawn(process.execPath, [CLI, 'probe', '--json', '--no-cache'], { env: { ...process.env, WASM_BPF_CACHE_DIR: cliCache } });
    let out = '';
    let tPrinted = 0;
    child.stdout.setEncoding('utf8').on('data', (d: string) => {
      out += d;
      if (out.endsWith('}\n') && !tPrinted) tPrinted = performance.now();
    });
    const code = await new Promise<number | null>((resolve) => child.on('close', resolve));
    cli.push(performance.now() - t0);
    printed.push(tPrinted - t0);
    if (code !== 0) throw new Error(`probe exited ${code}`);
  }
}

fs.rmSync(cliCache, { recursive: true, force: true });

// 6. baseline: node itself
const nodeOnly: number[] = [];
for (let i = 0; i < Math.min(RUNS, 10); i++) {
  const t0 = performance.now();
  spawnSync(process.execPath, ['-e', '0']);
  nodeOnly.push(performance.now() - t0);
}

const rows: Array<[string, number[], string]> = [
  ['default report, cold (in-process, no cache)', cold, 'budget < 300 ms'],
  ['cached report lookup (in-process)', cached, `budget < 5 ms; cache file ${(cacheBytes / 1024).toFixed(0)} KiB`],
  ['fresh process: load fast.js + select/plan.js, read cache, plan an object', fresh, 'node start-up excluded'],
  ['fresh process: read cache + select backend (modules loaded)', freshLookup, 'first call, cold JIT'],
  ['--full report (helpers), cold', full, ''],
  ['`wasm-bpf probe --json --no-cache`: until the report is printed', printed, 'node start-up included'],
  ['`wasm-bpf probe --json --no-cache`: until the process has exited', cli, 'exit waits for the kernel to close the perf events'],
  ['baseline: `node -e 0`, whole process', nodeOnly, ''],
];
const lines = [
  `# Prober timings`,
  '',
  `Measured by \`bench/probe-bench.ts\` on ${os.hostname()} (${os.cpus().length} CPUs, Linux ${os.release()}, Node ${process.version}), ${new Date().toISOString().slice(0, 10)}.`,
  `${RUNS} runs unless fewer shown; times are wall-clock (performance.now).`,
  '',
  '| what | median | min | p90 | max | runs | note |',
  '|---|---|---|---|---|---|---|',
  ...rows.filter(([, xs]) => xs.length > 0).map(([what, xs, note]) => {
    const s = stats(xs);
    return `| ${what} | ${fmt(s.median)} | ${fmt(s.min)} | ${fmt(s.p90)} | ${fmt(s.max)} | ${xs.length} | ${note} |`;
  }),
  '',
];
process.stdout.write(lines.join('\n'));
if (WRITE) fs.writeFileSync(path.join(ROOT, 'bench', 'PROBE.md'), lines.join('\n'));
