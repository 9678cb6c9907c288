// wasm-bpf benchmarks: each benchmark runs as a native libbpf program and as a Wasm guest under
// `wasm-bpf run`, alternating (native, wasm, native, wasm, ...) in the same run; the report gives the
// median and min/max of each, the ratio wasm/native of the medians, the target and PASS/MISS, and
// rewrites bench/RESULTS.md and bench/results.json.
//
//   node --import=tsx bench/run.ts [--quick] [--reps N] [--only map,drain,steady,empty,startup,micro]
//                                  [--no-write] [--cli OTHER/bin/wasm-bpf.js] [--nice -10] [--render]
//
// --render rewrites RESULTS.md from results.json and ANALYSIS.md (after editing the analysis) without measuring.
// --nice N renices the runner, and so every process it starts, for the run: on a machine shared with other
// people's builds and tests it keeps their bursts from landing in one side's runs (both sides get it).
//   npm run bench                  (the same, compiled: node dist/bench/run.js)
//
// Needs root (BPF), clang-16, gcc, libbpf-dev, llvm-strip-16, bpftool, wasi-libc, and the native addon
// built (npm install). Builds what it needs into bench/build/, including its own compiled copy of the
// runtime (bench/build/rt, from the current sources; the native addon is the one in native/build).
import { execFileSync, spawn, spawnSync, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { startupMarks } from './startup.js';

// ---- paths ------------------------------------------------------------------------------------------

function findRoot(from: string): string {
  let dir = from;
  for (;;) {
    if (fs.existsSync(path.join(dir, 'package.json')) && fs.existsSync(path.join(dir, 'bench'))) return dir;
    const up = path.dirname(dir);
    if (up === dir) throw new Error(`cannot find the repository root above ${from}`);
    dir = up;
  }
}

const ROOT = findRoot(path.dirname(fileURLToPath(import.meta.url)));
const BENCH = path.join(ROOT, 'bench');
const SRC = path.join(BENCH, 'src');
const BUILD = path.join(BENCH, 'build');
// The runtime is compiled into a private copy (bench/build/rt: dist/ + bin/ + a link to native/), so that
// other people's concurrent `tsc` runs rewriting dist/ cannot break a benchmark run half-way.
const RT = path.join(BUILD, 'rt');
const RT_DIST = path.join(RT, 'dist');
// `--cli PATH`: run the wasm side with another build of the runtime (e.g. an experimental copy)
let CLI = path.join(RT, 'bin', 'wasm-bpf.js');
const GUEST_INCLUDE = path.join(ROOT, 'src', 'guest');
const DIST_BENCH = path.join(BUILD, 'rt', 'dist', 'bench');
/** the native addon (the start-up floor loads it directly) */
const ADDON = path.join(ROOT, 'native', 'build', 'Release', 'wasm_bpf_native.node');
const ARCH_INCLUDE = `/usr/include/${process.arch === 'arm64' ? 'aarch64' : 'x86_64'}-linux-gnu`;
const BPF_ARCH = process.arch === 'arm64' ? 'arm64' : 'x86';

// ---- options ----------------------------------------------------------------------------------------

const ALL = ['map', 'drain', 'steady', 'empty', 'startup', 'micro'] as const;
type Part = (typeof ALL)[number];

interface Options {
  quick: boolean;
  reps: number;
  startupReps: number;
  only: Set<Part>;
  write: boolean;
  /** nice value for the runner and (inherited) every benchmark process; 0 = unchanged */
  nice: number;
  /** only re-render RESULTS.md from results.json (+ ANALYSIS.md), measure nothing */
  render: boolean;
}

function parseOptions(argv: string[]): Options {
  const o: Options = { quick: false, reps: 5, startupReps: 11, only: new Set(ALL), write: true, nice: 0, render: false };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (a === '--quick') {
      o.quick = true;
      o.reps = 2;
      o.startupReps = 3;
    } else if (a === '--reps') {
      o.reps = Math.max(1, Number(argv[++i]));
      o.startupReps = Math.max(o.reps, 3);
    } else if (a === '--only') {
      const parts = (argv[++i] ?? '').split(',').filter(Boolean);
      for (const p of parts) if (!(ALL as readonly string[]).includes(p)) throw new Error(`--only: unknown part '${p}' (${ALL.join(', ')})`);
      o.only = new Set(parts as Part[]);
    } else if (a === '--cli') {
      CLI = path.resolve(argv[++i] ?? '');
      if (!fs.existsSync(CLI)) throw new Error(`--cli: no ${CLI}`);
    } else if (a === '--nice') {
      o.nice = Number(argv[++i]);
      if (!Number.isInteger(o.nice) || o.nice < -20 || o.nice > 19) throw new Error('--nice takes -20..19');
    } else if (a === '--render') {
      o.render = true;
    } else if (a === '--no-write') {
      o.write = false;
    } else if (a === '-h' || a === '--help') {
      process.stdout.write(`usage: run.ts [--quick] [--reps N] [--only ${ALL.join(',')}] [--no-write] [--cli bin/wasm-bpf.js] [--nice N] [--render]\n`);
      process.exit(0);
    } else {
      throw new Error(`unknown option ${a}`);
    }
  }
  return o;
}

// sizes of the benchmarks
const MAP_N = 1_000_000;
const DRAIN_K = 200_000;
const DRAIN_WARM = 50_000;
const STEADY_RATE = 10_000; // records per second
const STEADY_K = 10_000;
const EMPTY_N = 200_000;
const EXEC_INTERVAL_US = 2000;

// ---- building ----------------------------------------------------------------------------------------

const log = (s: string): void => {
  process.stderr.write(`${s}\n`);
};

function mtime(f: string): number {
  return fs.existsSync(f) ? fs.statSync(f).mtimeMs : -1;
}

/** true when out exists and is newer than every input */
function fresh(out: string, inputs: string[]): boolean {
  const t = mtime(out);
  return t >= 0 && inputs.every((i) => mtime(i) <= t);
}

function run(cmd: string, args: string[], cwd = ROOT): void {
  const r = spawnSync(cmd, args, { cwd, encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')} failed (${r.status ?? r.signal}):\n${r.stdout}${r.stderr}`);
}

function tsFiles(dir: string): string[] {
  if (!fs.existsSync(dir)) return [];
  const out: string[] = [];
  for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
    const p = path.join(dir, e.name);
    if (e.isDirectory() && e.name !== 'build' && e.name !== 'node_modules') out.push(...tsFiles(p));
    else if (e.isFile() && e.name.endsWith('.ts')) out.push(p);
  }
  return out;
}

function embed(file: string, name: string, out: string): void {
  if (fresh(out, [file])) return;
  const bytes = fs.readFileSync(file);
  const rows: string[] = [];
  for (let i = 0; i < bytes.length; i += 16) rows.push(Array.from(bytes.subarray(i, i + 16), (b) => `0x${b.toString(16).padStart(2, '0')}`).join(','));
  fs.writeFileSync(out, `static unsigned char ${name}[] __attribute__((aligned(8))) = {\n${rows.join(',\n')}\n};\nstatic unsigned int ${name}_len = ${bytes.length};\n`);
}

interface Bootstrap {
  wasm: string;
  native: string;
  bpfObj: string;
  from: string;
}

function build(): Bootstrap {
  fs.mkdirSync(BUILD, { recursive: true });
  // the runtime and the compiled bench scripts, in bench/build/rt (see RT)
  const stamp = path.join(RT_DIST, 'src', 'cli', 'main.js');
  const sources = [...tsFiles(path.join(ROOT, 'src')), ...tsFiles(path.join(ROOT, 'backends')), ...tsFiles(path.join(ROOT, 'compat')), ...tsFiles(BENCH), path.join(ROOT, 'bin', 'wasm-bpf.js')];
  if (!fresh(stamp, sources) || !fs.existsSync(path.join(DIST_BENCH, 'startup.js'))) {
    log('building the TypeScript into bench/build/rt (npx tsc -p tsconfig.json --outDir bench/build/rt/dist) ...');
    // type errors elsewhere in the tree do not stop tsc from emitting; only a missing output is fatal
    spawnSync('npx', ['tsc', '-p', 'tsconfig.json', '--outDir', RT_DIST], { cwd: ROOT, encoding: 'utf8' });
    if (!fs.existsSync(stamp) || !fs.existsSync(path.join(DIST_BENCH, 'micro.js'))) throw new Error('tsc produced no output: see `npx tsc -p tsconfig.json`');
    // the guest thread's bundle and the CLI's, as `npm run build` makes them (package.json "bundle")
    for (const [dir, entry, chunks] of [['runtime', 'worker', 'worker.chunk'], ['cli', 'main', 'cli.chunk']] as const) {
      const out = path.join(RT_DIST, 'src', dir);
      for (const f of fs.readdirSync(out)) if (f === `${entry}.bundle.js` || (f.startsWith(`${chunks}-`) && f.endsWith('.js'))) fs.rmSync(path.join(out, f));
      const esb = spawnSync(path.join(ROOT, 'node_modules', '.bin', 'esbuild'), [path.join(out, `${entry}.js`), '--bundle', '--platform=node', '--format=esm', '--target=node18', '--splitting', `--outdir=${out}`, '--entry-names=[name].bundle', `--chunk-names=${chunks}-[hash]`, '--log-level=warning'], { encoding: 'utf8' });
      if (esb.status !== 0) throw new Error(`esbuild failed: ${esb.stderr}`);
    }
    fs.mkdirSync(path.join(RT, 'bin'), { recursive: true });
    fs.copyFileSync(path.join(ROOT, 'bin', 'wasm-bpf.js'), path.join(RT, 'bin', 'wasm-bpf.js'));
    fs.chmodSync(path.join(RT, 'bin', 'wasm-bpf.js'), 0o755);
    fs.utimesSync(stamp, new Date(), new Date());
  }
  // backends/linux/native.ts finds the addon at <dist>/../native/build/Release
  const nativeLink = path.join(RT, 'native');
  if (!fs.existsSync(nativeLink)) fs.symlinkSync(path.join(ROOT, 'native'), nativeLink);
  if (!fs.existsSync(ADDON)) {
    throw new Error('the native addon is not built: run `npm install` first');
  }
  const common = path.join(SRC, 'common.h');
  const header = path.join(GUEST_INCLUDE, 'libbpf-wasm.h');
  // eBPF object (DWARF stripped: BTF is all libbpf needs, and the object is embedded)
  const bpfSrc = path.join(SRC, 'bench.bpf.c');
  const bpfObj = path.join(BUILD, 'bench.bpf.o');
  if (!fresh(bpfObj, [bpfSrc])) {
    const dbg = path.join(BUILD, 'bench.bpf.dbg.o');
    run('clang-16', ['-g', '-O2', '-target', 'bpf', `-D__TARGET_ARCH_${BPF_ARCH}`, '-I', ARCH_INCLUDE, '-c', bpfSrc, '-o', dbg]);
    run('llvm-strip-16', ['-g', dbg, '-o', bpfObj]);
  }
  const objHeader = path.join(BUILD, 'bench_obj.h');
  embed(bpfObj, 'bench_obj', objHeader);
  for (const prog of ['mapbench', 'ringbench']) {
    const src = path.join(SRC, `${prog}.c`);
    const deps = [src, common, objHeader];
    const wasm = path.join(BUILD, `${prog}.wasm`);
    if (!fresh(wasm, [...deps, header])) {
      run('clang-16', ['--target=wasm32-wasi', '--sysroot=/usr', '-O2', '-Wall', '-I', GUEST_INCLUDE, '-I', BUILD, src, '-o', wasm, '-Wl,--allow-undefined,--export-table', '-Wl,--strip-debug']);
    }
    const exe = path.join(BUILD, prog);
    if (!fresh(exe, deps)) run('gcc', ['-O2', '-Wall', '-I', BUILD, src, '-o', exe, '-lbpf', '-lelf', '-lz']);
  }
  for (const [prog, libs] of [['producer', []], ['execloop', []], ['loadphases', ['-lbpf', '-lelf', '-lz']]] as const) {
    const src = path.join(SRC, `${prog}.c`);
    const exe = path.join(BUILD, prog);
    if (!fresh(exe, [src])) run('gcc', ['-O2', '-Wall', src, '-o', exe, ...libs]);
  }
  for (const [mod, deps] of [['micro', [objHeader]], ['adapter', []]] as const) {
    const src = path.join(SRC, `${mod}.c`);
    const out = path.join(BUILD, `${mod}.wasm`);
    if (!fresh(out, [src, ...deps])) run('clang-16', ['--target=wasm32', '-nostdlib', '-O2', '-I', BUILD, '-Wl,--no-entry', src, '-o', out]);
  }
  // bootstrap (start-up benchmark): matrix/build when the matrix has been built, else our own build of
  // the matrix app into bench/build/matrix
  const m = path.join(ROOT, 'matrix', 'build');
  const mine = path.join(BUILD, 'matrix');
  const appSrc = [path.join(ROOT, 'matrix', 'apps', 'bootstrap', 'bootstrap.c'), path.join(ROOT, 'matrix', 'apps', 'bootstrap', 'bootstrap.bpf.c')];
  if (fs.existsSync(path.join(m, 'bootstrap.wasm')) && fs.existsSync(path.join(m, 'native', 'bootstrap')) && fresh(path.join(m, 'bootstrap.wasm'), appSrc)) {
    return { wasm: path.join(m, 'bootstrap.wasm'), native: path.join(m, 'native', 'bootstrap'), bpfObj: path.join(m, 'bootstrap.bpf.o'), from: 'matrix/build' };
  }
  log('matrix/build/bootstrap.wasm is not there (or stale): building the matrix bootstrap app into bench/build/matrix ...');
  run('make', ['-C', path.join(ROOT, 'matrix'), `B=${mine}`, path.join(mine, 'bootstrap.wasm'), path.join(mine, 'native', 'bootstrap')]);
  return { wasm: path.join(mine, 'bootstrap.wasm'), native: path.join(mine, 'native', 'bootstrap'), bpfObj: path.join(mine, 'bootstrap.bpf.o'), from: 'bench/build/matrix (own build of matrix/apps/bootstrap)' };
}

// ---- processes ---------------------------------------------------------------------------------------

const live = new Set<ChildProcess>();
process.on('exit', () => {
  for (const c of live) c.kill('SIGKILL');
});
for (const sig of ['SIGINT', 'SIGTERM'] as const) {
  process.on(sig, () => {
    for (const c of live) c.kill('SIGKILL');
    process.exit(130);
  });
}

class Proc {
  out = '';
  err = '';
  private waiters: Array<{ re: RegExp; from: number; resolve: (l: string) => void }> = [];
  readonly exited: Promise<number | null>;
  constructor(readonly child: ChildProcess, readonly label: string) {
    live.add(child);
    child.stdout?.setEncoding('utf8').on('data', (d: string) => {
      this.out += d;
      this.check();
    });
    child.stderr?.setEncoding('utf8').on('data', (d: string) => (this.err += d));
    this.exited = new Promise((resolve) =>
      child.on('close', (code) => {
        live.delete(child);
        resolve(code);
        this.check();
      }),
    );
  }
  private check(): void {
    for (const w of [...this.waiters]) {
      const line = this.out
        .slice(w.from)
        .split('\n')
        .find((l, i, all) => (i < all.length - 1 || this.child.exitCode !== null) && w.re.test(l));
      if (line !== undefined) {
        this.waiters.splice(this.waiters.indexOf(w), 1);
        w.resolve(line);
      }
    }
  }
  /** the first complete stdout line matching re; rejects when the process exits first or on timeout */
  waitLine(re: RegExp, ms = 60_000): Promise<string> {
    return new Promise<string>((resolve, reject) => {
      const timer = setTimeout(() => fail(`timed out after ${ms} ms waiting for ${re}`), ms);
      const fail = (why: string): void => {
        clearTimeout(timer);
        reject(new Error(`${this.label}: ${why}\nstdout:\n${this.out.slice(-2000)}\nstderr:\n${this.err.slice(-2000)}`));
      };
      this.waiters.push({ re, from: 0, resolve: (l) => (clearTimeout(timer), resolve(l)) });
      this.check();
      void this.exited.then((code) => {
        if (this.waiters.some((w) => w.re === re)) fail(`exited (${code ?? this.child.signalCode}) before printing ${re}`);
      });
    });
  }
  async done(ms = 30_000): Promise<void> {
    const t = setTimeout(() => this.child.kill('SIGKILL'), ms);
    await this.exited;
    clearTimeout(t);
  }
}

function start(cmd: string, args: string[], label: string, stdin: 'pipe' | 'ignore' = 'ignore', env: NodeJS.ProcessEnv = process.env): Proc {
  return new Proc(spawn(cmd, args, { cwd: ROOT, stdio: [stdin, 'pipe', 'pipe'], env }), label);
}

/**
 * The environment of the start-up runs: this one without NODE_EXTRA_CA_CERTS. Node reads and parses that
 * file (here the whole system CA bundle) at every process start, ~40 ms on this VM, although wasm-bpf
 * never uses TLS; a user's shell rarely sets it. The cost is reported separately (startup_env rows).
 */
const CLEAN_ENV: NodeJS.ProcessEnv = Object.fromEntries(Object.entries(process.env).filter(([k]) => k !== 'NODE_EXTRA_CA_CERTS'));

type Flavour = 'native' | 'wasm';
const FLAVOURS: readonly Flavour[] = ['native', 'wasm'];

function command(flavour: Flavour, prog: string, args: string[]): [string, string[]] {
  return flavour === 'native'
    ? [path.join(BUILD, prog), args]
    : [process.execPath, [CLI, 'run', path.join(BUILD, `${prog}.wasm`), ...args]];
}

/** `key=value` pairs of a line */
function kv(line: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const m of line.matchAll(/([A-Za-z0-9_]+)=(\S*)/g)) out[m[1]!] = m[2]!;
  return out;
}

function num(rec: Record<string, string>, key: string, label: string): number {
  const v = Number(rec[key]);
  if (!Number.isFinite(v)) throw new Error(`${label}: no numeric ${key} in ${JSON.stringify(rec)}`);
  return v;
}

/** total run time (ns) of every thread of a process so far */
function schedRunNs(pid: number): number {
  let sum = 0;
  try {
    for (const t of fs.readdirSync(`/proc/${pid}/task`)) {
      try {
        sum += Number(fs.readFileSync(`/proc/${pid}/task/${t}/schedstat`, 'utf8').split(' ')[0]);
      } catch {
        // the thread ended meanwhile
      }
    }
  } catch {
    return NaN;
  }
  return sum;
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

// ---- statistics --------------------------------------------------------------------------------------

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const n = s.length;
  if (n === 0) return NaN;
  return n % 2 ? s[(n - 1) / 2]! : (s[n / 2 - 1]! + s[n / 2]!) / 2;
}

interface Metric {
  id: string;
  title: string;
  unit: string;
  /** max allowed wasm/native ratio; undefined: informational */
  target?: number;
  native: number[];
  wasm: number[];
}

interface Summary {
  id: string;
  title: string;
  unit: string;
  target: number | null;
  native: { median: number; min: number; max: number; runs: number[] };
  wasm: { median: number; min: number; max: number; runs: number[] };
  ratio: number;
  /** median of wasm/native of each adjacent (native, wasm) pair of runs: less sensitive to load drifts */
  pairRatio: number;
  verdict: 'PASS' | 'MISS' | 'info';
}

function summarize(m: Metric): Summary {
  const s = (xs: number[]): Summary['native'] => ({ median: median(xs), min: Math.min(...xs), max: Math.max(...xs), runs: xs });
  const n = s(m.native);
  const w = s(m.wasm);
  const ratio = w.median / n.median;
  const pairRatio = median(m.wasm.map((x, i) => x / m.native[i]!).filter((x) => Number.isFinite(x)));
  return {
    id: m.id,
    title: m.title,
    unit: m.unit,
    target: m.target ?? null,
    native: n,
    wasm: w,
    ratio,
    pairRatio,
    verdict: m.target === undefined ? 'info' : ratio <= m.target ? 'PASS' : 'MISS',
  };
}

// ---- the benchmarks -----------------------------------------------------------------------------------

async function mapBench(o: Options): Promise<Metric[]> {
  const n = o.quick ? MAP_N / 4 : MAP_N;
  const metrics: Metric[] = [
    { id: 'map_lookup_hash', title: '(a) map lookup, HASH u32->u64', unit: 'ns/op', target: 1.15, native: [], wasm: [] },
    { id: 'map_lookup_array', title: '(a) map lookup, ARRAY u32->u64', unit: 'ns/op', target: 1.15, native: [], wasm: [] },
    { id: 'map_update_hash', title: 'map update, HASH (existing key)', unit: 'ns/op', native: [], wasm: [] },
  ];
  const keys = ['lookup_hash_ns', 'lookup_array_ns', 'update_hash_ns'];
  for (let r = 0; r < o.reps; r++) {
    for (const f of FLAVOURS) {
      const [cmd, args] = command(f, 'mapbench', [String(n)]);
      const p = start(cmd, args, `mapbench ${f}`);
      const rec = kv(await p.waitLine(/^flavour=/, 120_000));
      await p.done();
      metrics.forEach((m, i) => m[f].push(num(rec, keys[i]!, `mapbench ${f}`)));
      log(`  map ${f}: ${keys.map((k) => `${k}=${rec[k]}`).join(' ')}`);
    }
  }
  return metrics;
}

async function withProducer<T>(rate: number, body: (producer: Proc) => Promise<T>): Promise<T> {
  const producer = start(path.join(BUILD, 'producer'), [String(rate)], 'producer', 'pipe');
  try {
    return await body(producer);
  } finally {
    producer.child.stdin?.end();
    await producer.done(10_000);
  }
}

async function drainBench(o: Options): Promise<Metric[]> {
  const k = o.quick ? DRAIN_K / 2 : DRAIN_K;
  const warm = o.quick ? DRAIN_WARM / 2 : DRAIN_WARM;
  const warmMetric: Metric = { id: 'ring_drain', title: '(b) ring buffer, drain queued records', unit: 'ns/record', target: 4, native: [], wasm: [] };
  const cold: Metric = { id: 'ring_drain_cold', title: 'ring buffer, drain, first (cold) round', unit: 'ns/record', native: [], wasm: [] };
  for (let r = 0; r < o.reps; r++) {
    for (const f of FLAVOURS) {
      await withProducer(0, async (producer) => {
        const [cmd, args] = command(f, 'ringbench', ['drain', String(producer.child.pid), String(k), String(warm)]);
        const c = start(cmd, args, `ringbench drain ${f}`);
        await c.waitLine(/^# ready/);
        producer.child.stdin!.write(`${warm}\n`);
        const w = kv(await c.waitLine(/^# warm/));
        producer.child.stdin!.write(`${k}\n`);
        const rec = kv(await c.waitLine(/^flavour=/));
        await c.done();
        if (rec['out_of_order'] !== '0' || Number(rec['records']) !== k) throw new Error(`ringbench drain ${f}: bad delivery ${JSON.stringify(rec)}`);
        warmMetric[f].push(num(rec, 'drain_ns_per_rec', 'drain'));
        cold[f].push(num(w, 'cold_ns_per_rec', 'drain warm-up'));
        log(`  drain ${f}: ${rec['drain_ns_per_rec']} ns/record (cold round ${w['cold_ns_per_rec']}), ${rec['polls']} polls`);
      });
    }
  }
  return [warmMetric, cold];
}

async function steadyBench(o: Options, rate = STEADY_RATE, total = STEADY_K, reps = o.reps, primary = true): Promise<Metric[]> {
  const k = o.quick ? total / 2 : total;
  const suffix = primary ? '' : `_${rate / 1000}k`;
  const cpu: Metric = primary
    ? { id: 'ring_steady', title: `(b) ring buffer, steady stream ${rate}/s: consumer CPU`, unit: 'ns/record', target: 1.2, native: [], wasm: [] }
    : { id: `ring_steady${suffix}`, title: `ring buffer, steady stream ${rate}/s: consumer CPU (rate sweep)`, unit: 'ns/record', native: [], wasm: [] };
  const sched: Metric = { id: `ring_steady_schedstat${suffix}`, title: `ring buffer, steady stream ${rate}/s: consumer CPU by schedstat (cross-check)`, unit: 'ns/record', native: [], wasm: [] };
  for (let r = 0; r < reps; r++) {
    for (const f of FLAVOURS) {
      await withProducer(rate, async (producer) => {
        const [cmd, args] = command(f, 'ringbench', ['steady', String(producer.child.pid), String(k)]);
        const c = start(cmd, args, `ringbench steady ${f}`);
        await c.waitLine(/^# ready/);
        const pid = c.child.pid!;
        const s0 = schedRunNs(pid);
        producer.child.stdin!.write(`${k}\n`);
        const rec = kv(await c.waitLine(/^flavour=/));
        const s1 = schedRunNs(pid);
        await c.done();
        if (rec['out_of_order'] !== '0') throw new Error(`ringbench steady ${f}: records out of order ${JSON.stringify(rec)}`);
        cpu[f].push(num(rec, 'cpu_ns_per_rec', 'steady'));
        sched[f].push(Math.round((s1 - s0) / k));
        log(`  steady ${rate}/s ${f}: ${rec['cpu_ns_per_rec']} ns/record CPU (schedstat ${Math.round((s1 - s0) / k)}), ${rec['polls']} polls, ${rec['rate_per_s']}/s`);
      });
    }
  }
  return primary ? [cpu, sched] : [cpu];
}

async function emptyBench(o: Options): Promise<Metric[]> {
  const m: Metric = { id: 'ring_empty_poll', title: 'poll of an empty ring buffer (timeout 0): fixed cost per poll', unit: 'ns/poll', native: [], wasm: [] };
  for (let r = 0; r < Math.min(o.reps, 3); r++) {
    for (const f of FLAVOURS) {
      const [cmd, args] = command(f, 'ringbench', ['empty', '0', String(o.quick ? EMPTY_N / 4 : EMPTY_N)]);
      const c = start(cmd, args, `ringbench empty ${f}`);
      const rec = kv(await c.waitLine(/^flavour=/));
      await c.done();
      m[f].push(num(rec, 'empty_poll_ns', 'empty'));
      log(`  empty poll ${f}: ${rec['empty_poll_ns']} ns`);
    }
  }
  return [m];
}

interface StartupDetail {
  phases: Array<{ phase: string; ms: number; min: number; max: number }>;
  totalToFirstPollMs: number;
  nodeBareMs: number[];
  nodeFirstLineMs: number[];
  nodeFirstLineEnvMs: number[];
  emptyWorkerMs: number[];
  nativeLibbpf: Record<string, number>;
  bundleImportMs: { esm: number[]; bundled: number[] } | null;
}

/** spawns a bootstrap-like consumer with execloop behind it: ms to its first /bin/true EXEC line and to its "attached" line */
async function oneStartup(cmd: string, args: string[], env: NodeJS.ProcessEnv, label: string): Promise<{ first: number; attached: number }> {
  const t0 = performance.now();
  const c = start(cmd, args, label, 'ignore', env);
  let tAttached = NaN;
  void c.waitLine(/^# bootstrap: attached/, 20_000).then(
    () => (tAttached = performance.now() - t0),
    () => undefined,
  );
  const loop = start(path.join(BUILD, 'execloop'), [String(EXEC_INTERVAL_US), '/bin/true'], 'execloop');
  try {
    // bootstrap's row `TIME EXEC  COMM PID PPID /bin/true`, or the floor's `EXEC pid=.. filename=/bin/true`
    await c.waitLine(/^(\S+ +)?EXEC .*[ =]\/bin\/true$/, 20_000);
  } finally {
    loop.child.kill('SIGKILL');
  }
  const t1 = performance.now() - t0;
  c.child.kill('SIGINT');
  await Promise.all([c.done(), loop.done()]);
  await sleep(100); // let the detach of this run finish
  return { first: t1, attached: tAttached };
}

/**
 * `floor`: also the start-up floor of any runtime that keeps the guest on a worker thread
 * (bench/startup-floor.ts: node + a worker + the addon loading bootstrap.bpf.o directly), in the
 * metric's wasm column, paired with the same round's native run
 */
async function startupRuns(boot: Bootstrap, reps: number, env: NodeJS.ProcessEnv, first: Metric, attached: Metric, tag: string, floor?: Metric): Promise<void> {
  for (let r = 0; r < reps; r++) {
    let nativeFirst = NaN;
    for (const f of FLAVOURS) {
      const [cmd, args] = f === 'native' ? [boot.native, []] : [process.execPath, [CLI, 'run', boot.wasm]];
      const t = await oneStartup(cmd, args, env, `bootstrap ${f}`);
      if (f === 'native') nativeFirst = t.first;
      first[f].push(round1(t.first));
      attached[f].push(round1(t.attached));
      log(`  startup${tag} ${f}: first event ${t.first.toFixed(1)} ms (attached ${t.attached.toFixed(1)} ms)`);
    }
    if (floor) {
      const t = await oneStartup(process.execPath, [path.join(DIST_BENCH, 'startup-floor.js'), ADDON, boot.bpfObj], env, 'startup floor');
      floor.native.push(round1(nativeFirst));
      floor.wasm.push(round1(t.first));
      log(`  startup${tag} floor (node + worker + addon, no Wasm): first event ${t.first.toFixed(1)} ms`);
    }
  }
}

async function startupBench(o: Options, boot: Bootstrap): Promise<{ metrics: Metric[]; detail: StartupDetail }> {
  const first: Metric = { id: 'startup_first_event', title: '(c) start-up: exec to first event (bootstrap)', unit: 'ms', target: 2, native: [], wasm: [] };
  const attached: Metric = { id: 'startup_attached', title: 'start-up: exec to "attached" line', unit: 'ms', native: [], wasm: [] };
  const floor: Metric = {
    id: 'startup_floor',
    title: 'start-up floor of any Node runtime with the guest on a worker thread: node + a worker + the addon loading bootstrap.bpf.o directly, no Wasm (bench/startup-floor.ts), exec to first event',
    unit: 'ms',
    native: [],
    wasm: [],
  };
  await startupRuns(boot, o.startupReps, CLEAN_ENV, first, attached, '', floor);
  const metrics = [first, attached, floor];
  if (process.env['NODE_EXTRA_CA_CERTS']) {
    const envFirst: Metric = { id: 'startup_first_event_env', title: 'start-up: exec to first event, with NODE_EXTRA_CA_CERTS as set here', unit: 'ms', native: [], wasm: [] };
    const envAttached: Metric = { id: 'startup_attached_env', title: 'start-up: exec to "attached", with NODE_EXTRA_CA_CERTS', unit: 'ms', native: [], wasm: [] };
    await startupRuns(boot, Math.max(3, Math.ceil(o.startupReps / 2)), process.env, envFirst, envAttached, ' (NODE_EXTRA_CA_CERTS)');
    metrics.push(envFirst);
  }
  const detail = await startupBreakdown(o, boot);
  return { metrics, detail };
}

/** where the wasm-bpf start-up time goes (bench/startup.ts), plus reference points */
async function startupBreakdown(o: Options, boot: Bootstrap): Promise<StartupDetail> {
  const runs = o.quick ? 3 : 5;
  const profiles: Array<Map<string, number>> = [];
  for (let i = 0; i < runs; i++) {
    profiles.push(new Map(startupMarks(CLI, [boot.wasm, '-t', '0.2'], CLEAN_ENV)));
    await sleep(100);
  }
  // the real path (src/trace.ts marks): the guest's thread starts while the main thread loads
  // the CLI, so main-thread and worker rows overlap in time
  const spans: Array<[string, string | null, string]> = [
    ['node start-up (process start -> first line of the CLI)', null, 'script_start'],
    ['main: CLI start -> the guest\'s thread is spawned', 'script_start', 'worker_spawn'],
    ['main: CLI modules (cli/run.js, runtime.js, ...), in parallel with the thread\'s start', 'worker_spawn', 'cli_modules'],
    ['main: read the .wasm, compile it and read the prober\'s report, post the input', 'cli_modules', 'input_posted'],
    ['guest thread: Node\'s worker start-up (spawn -> the bundle\'s first line)', 'worker_spawn', 'worker_start'],
    ['guest thread: the bundle\'s modules', 'worker_start', 'worker_modules'],
    ['guest thread: native addon dlopen (+ libbpf, libelf, libz)', 'worker_modules', 'addon_load'],
    ['guest thread: waiting for the input', 'addon_load', 'input'],
    ['guest thread: backend (selector with the report)', 'input', 'backend'],
    ['guest thread: host/WASI set-up and WebAssembly.instantiate', 'backend', 'instantiate'],
    ['guest start until its object reaches the selector (libc init, skeleton open, copy of the object)', 'instantiate', 'select:start'],
    ['selector: read the object (or reuse the main thread\'s facts), policy, plan, mounts, compat passes', 'select:start', 'select:end'],
    ['selector -> bpf_object__open_mem (host maps of the edits)', 'select:end', 'open:start'],
    ['bpf_object__open_mem (ELF + BTF parsing)', 'open:start', 'open:end'],
    ['between open and load (edits, programs(), pin paths, struct_ops)', 'open:end', 'load:start'],
    ['bpf_object__load (feature probes, vmlinux BTF + CO-RE, maps, verifier)', 'load:start', 'load:end'],
    ['load -> first attach (host bookkeeping, guest)', 'load:end', 'attach:start'],
    ['attach (all programs)', 'attach:start', 'attach:end'],
    ['attach -> the first buffer poll (guest, ring buffer open)', 'attach:end', 'poll'],
  ];
  const phases = spans.map(([phase, from, to]) => {
    const vals = profiles.map((p) => (p.get(to) ?? NaN) - (from ? p.get(from) ?? NaN : 0));
    return { phase, ms: round1(median(vals)), min: round1(Math.min(...vals)), max: round1(Math.max(...vals)) };
  });
  const totalToFirstPollMs = round1(median(profiles.map((p) => p.get('poll') ?? NaN)));

  // reference points: bare node, node's first script line, an empty worker
  const nodeBareMs: number[] = [];
  const nodeFirstLineMs: number[] = [];
  const nodeFirstLineEnvMs: number[] = [];
  const emptyWorkerMs: number[] = [];
  const probe = `const t=performance.now();const {Worker}=require('node:worker_threads');const w0=performance.now();` +
    `const w=new Worker('require("node:worker_threads").parentPort.postMessage(0)',{eval:true});` +
    `w.on('message',()=>{console.log(JSON.stringify({first:t,worker:performance.now()-w0}));w.terminate();});`;
  for (let i = 0; i < runs; i++) {
    const t0 = performance.now();
    spawnSync(process.execPath, ['-e', '0'], { env: CLEAN_ENV });
    nodeBareMs.push(round1(performance.now() - t0));
    const r = spawnSync(process.execPath, ['-e', probe], { encoding: 'utf8', env: CLEAN_ENV });
    const j = JSON.parse(r.stdout.trim()) as { first: number; worker: number };
    nodeFirstLineMs.push(round1(j.first));
    emptyWorkerMs.push(round1(j.worker));
    if (process.env['NODE_EXTRA_CA_CERTS']) {
      const e = spawnSync(process.execPath, ['-e', probe], { encoding: 'utf8' });
      nodeFirstLineEnvMs.push(round1((JSON.parse(e.stdout.trim()) as { first: number }).first));
    }
  }
  // the native libbpf phases of the same object
  const nat: Array<Record<string, string>> = [];
  for (let i = 0; i < runs; i++) {
    const r = spawnSync(path.join(BUILD, 'loadphases'), [boot.bpfObj], { encoding: 'utf8' });
    if (r.status === 0) nat.push(kv(r.stdout));
  }
  const nativeLibbpf: Record<string, number> = {};
  for (const key of ['open_ms', 'load_ms', 'attach_ms', 'ringbuf_ms', 'total_ms']) nativeLibbpf[key] = round1(median(nat.map((x) => Number(x[key]))));

  return { phases, totalToFirstPollMs, nodeBareMs, nodeFirstLineMs, nodeFirstLineEnvMs, emptyWorkerMs, nativeLibbpf, bundleImportMs: bundleExperiment(runs) };
}

/**
 * How long the worker's module graph takes to import as today's ESM files vs one esbuild bundle
 * (esbuild ships with tsx). Evidence for the "bundle the runtime" suggestion; null when esbuild is absent.
 */
function bundleExperiment(runs: number): StartupDetail['bundleImportMs'] {
  const esbuild = path.join(ROOT, 'node_modules', '.bin', 'esbuild');
  const entry = path.join(RT_DIST, 'src', 'runtime', 'worker.js');
  if (!fs.existsSync(esbuild) || !fs.existsSync(entry)) return null;
  const dir = path.join(BUILD, 'bundle');
  fs.mkdirSync(dir, { recursive: true });
  // the worker's static imports + the backend it imports dynamically, without running the worker
  const shim = path.join(dir, 'entry.mjs');
  const rel = (p: string): string => path.relative(dir, path.join(RT_DIST, p)).split(path.sep).join('/');
  const mods = ['src/runtime/quiet.js', 'src/errors.js', 'src/wasm/imports.js', 'src/abi/host.js', 'src/runtime/wasi.js', 'src/runtime/stop.js', 'src/select/backend.js', 'backends/linux/index.js'];
  fs.writeFileSync(shim, mods.map((m, i) => `import * as m${i} from './${rel(m)}';`).join('\n') + `\nexport const all = [${mods.map((_, i) => `m${i}`).join(',')}];\n`);
  // --splitting keeps what the runtime imports dynamically (prober, ELF loader, userspace backend) in
  // separate chunks, as the ESM files are: only the static graph is loaded, in both cases
  const outDir = path.join(dir, 'split');
  fs.rmSync(outDir, { recursive: true, force: true });
  const r = spawnSync(esbuild, [shim, '--bundle', '--splitting', '--platform=node', '--format=esm', `--outdir=${outDir}`, '--log-level=error'], { encoding: 'utf8' });
  if (r.status !== 0) return null;
  const bundle = path.join(outDir, 'entry.js');
  const timeImport = (file: string): number => {
    const code = `const t=performance.now();await import(${JSON.stringify(`file://${file}`)});console.log(performance.now()-t);`;
    const x = spawnSync(process.execPath, ['--input-type=module', '-e', code], { encoding: 'utf8', cwd: ROOT });
    return round1(Number(x.stdout.trim()));
  };
  const esm: number[] = [];
  const bundled: number[] = [];
  for (let i = 0; i < runs; i++) {
    esm.push(timeImport(shim));
    bundled.push(timeImport(bundle));
  }
  return { esm, bundled };
}

function round1(x: number): number {
  return Math.round(x * 10) / 10;
}

/** bench/ffi-map.ts's section of the current RESULTS.md (its own run, kept when this rewrites the file) */
function ffiSection(): string {
  let text = '';
  try {
    text = fs.readFileSync(path.join(BENCH, 'RESULTS.md'), 'utf8');
  } catch {
    return '';
  }
  const a = text.indexOf('<!-- ffi-map:start -->');
  const b = text.indexOf('<!-- ffi-map:end -->');
  return a >= 0 && b > a ? `\n${text.slice(a, b + '<!-- ffi-map:end -->'.length)}\n` : '';
}

async function microBench(): Promise<Record<string, number>> {
  const r = spawnSync(process.execPath, [path.join(DIST_BENCH, 'micro.js'), BUILD], { cwd: ROOT, encoding: 'utf8', timeout: 120_000 });
  const line = r.stdout.split('\n').find((l) => l.startsWith('{'));
  if (!line) throw new Error(`micro failed:\n${r.stdout}\n${r.stderr}`);
  return JSON.parse(line) as Record<string, number>;
}

// ---- report -------------------------------------------------------------------------------------------

interface Report {
  date: string;
  machine: Record<string, string>;
  bootstrapFrom: string;
  cli: string;
  durationS: number;
  options: { quick: boolean; reps: number; startupReps: number; nice: number };
  summaries: Summary[];
  micro: Record<string, number> | null;
  startup: StartupDetail | null;
}

function machineInfo(): Record<string, string> {
  const cpu = (fs.readFileSync('/proc/cpuinfo', 'utf8').match(/^model name\s*:\s*(.+)$/m) ?? [])[1] ?? os.arch();
  let osName = os.type();
  try {
    osName = (fs.readFileSync('/etc/os-release', 'utf8').match(/^PRETTY_NAME="?([^"\n]+)"?/m) ?? [])[1] ?? osName;
  } catch {
    // keep os.type()
  }
  const out = (cmd: string, args: string[]): string => {
    try {
      return execFileSync(cmd, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim();
    } catch {
      return '?';
    }
  };
  return {
    kernel: os.release(),
    os: osName,
    cpu: `${cpu} x ${os.cpus().length}`,
    memory: `${Math.round(os.totalmem() / 2 ** 30)} GiB`,
    node: process.version,
    libbpf: out('pkg-config', ['--modversion', 'libbpf']),
    clang: out('clang-16', ['--version']).split('\n')[0] ?? '?',
    commit: out('git', ['-C', ROOT, 'rev-parse', '--short', 'HEAD']) + (out('git', ['-C', ROOT, 'status', '--porcelain', '--untracked-files=no']) ? ' (+ uncommitted changes)' : ''),
    load: os.loadavg().map((x) => x.toFixed(2)).join(' '),
  };
}

const fmt = (x: number): string => (Number.isFinite(x) ? (Math.abs(x) >= 100 ? x.toFixed(0) : Math.abs(x) >= 10 ? x.toFixed(1) : x.toFixed(2)) : 'n/a');

function markdown(r: Report): string {
  const L: string[] = [];
  const m = r.machine;
  L.push('# wasm-bpf benchmarks');
  L.push('');
  L.push(`Generated by \`bench/run.ts\` on ${r.date} (${r.durationS.toFixed(0)} s). Do not edit by hand: rerun \`node --import=tsx bench/run.ts\` (or \`npm run bench\`).`);
  L.push('');
  L.push(`- kernel ${m['kernel']}, ${m['os']}; ${m['cpu']}; ${m['memory']}; load average at the end ${m['load']} (shared, noisy VM)`);
  L.push(`- Node ${m['node']}, libbpf ${m['libbpf']}, ${m['clang']}; wasm-bpf commit ${m['commit']}`);
  L.push(`- wasm side: \`${path.relative(ROOT, r.cli)}\``);
  L.push(`- ${r.options.reps} runs of each side (${r.options.startupReps} for start-up), native and wasm alternating; bootstrap from ${r.bootstrapFrom}${r.options.nice ? `; all benchmark processes at nice ${r.options.nice}` : ''}${r.options.quick ? '; **--quick run: smaller sizes, fewer runs**' : ''}`);
  L.push('');
  L.push('## Results');
  L.push('');
  L.push('| benchmark | unit | native median [min - max] | wasm-bpf median [min - max] | wasm/native | per-pair ratio | target | verdict |');
  L.push('|---|---|---|---|---|---|---|---|');
  for (const s of r.summaries) {
    L.push(
      `| ${s.title} | ${s.unit} | ${fmt(s.native.median)} [${fmt(s.native.min)} - ${fmt(s.native.max)}] | ${fmt(s.wasm.median)} [${fmt(s.wasm.min)} - ${fmt(s.wasm.max)}] | ${s.ratio.toFixed(2)}x | ${s.pairRatio.toFixed(2)}x | ${s.target === null ? '-' : `<= ${s.target}x`} | ${s.verdict === 'info' ? '-' : `**${s.verdict}**`} |`,
    );
  }
  L.push('');
  L.push('Existing C++ runtime on this machine (from the issue): map lookup 2.1x, steady stream 1.8x, drain 24x.');
  L.push('');
  if (r.micro) {
    const u = r.micro;
    L.push('## Map operation: where the time goes (bench/micro.ts)');
    L.push('');
    L.push('ns per lookup of an ARRAY element (best of 3 x 300k), loop in Wasm unless said otherwise:');
    L.push('');
    L.push('| path | ns/op | what it adds |');
    L.push('|---|---|---|');
    const rows: Array<[string, string, string]> = [
      ['js_fast_only', 'JS -> native.mapOp with a Uint8Array, invalid cmd (no syscall)', 'a V8 fast call (native/src/fastcall.h) from optimized JS'],
      ['js_fast', 'JS -> native.mapOp with a Uint8Array (lookup)', 'fast call + the bpf() syscall'],
      ['js_napi_only', 'JS -> native.mapOp with an ArrayBuffer, invalid cmd (no syscall)', 'not a fast call: the slow callback unpacks 6 arguments'],
      ['js_mapop', 'JS -> native.mapOp with an ArrayBuffer (lookup)', 'slow callback + the bpf() syscall'],
      ['noop_i64', 'Wasm -> JS import, i64 flags, empty body', 'Wasm -> JS transition incl. the i64 -> BigInt conversion'],
      ['noop_i32', 'Wasm -> JS import, i32 only, empty body', 'Wasm -> JS transition without BigInt'],
      ['direct_i64', 'Wasm -> JS (i64) -> native.mapOp, `memory.buffer` per call', 'host.ts minus its bookkeeping'],
      ['direct_i32', 'Wasm -> JS (i32 only) -> native.mapOp, cached ArrayBuffer', 'no BigInt, no memory.buffer getter'],
      ['adapted', 'Wasm -> adapter.wasm (i64 split) -> JS -> native.mapOp, cached buffer', 'what the guest would get with an adapter module'],
      ['host', "the real path: the guest's wasm_bpf_map_operate import is the addon's C function (native/src/guestmaps.cc)", 'today: Wasm -> C, no JavaScript'],
      ['host_js', 'the same guest with WASM_BPF_DIRECT_MAP_OPS=0: host.ts -> LinuxBackend -> native.mapOp (fast call)', 'the JavaScript path (i64 pointers, userspace backend)'],
      ['probe_noop_js', 'JS -> an empty N-API function (bench/src/napi_probe.c)', 'the N-API floor'],
      ['probe_op6_js', "JS -> napi_probe op6: MapOp's shape (cmd, fd, ArrayBuffer, int64 offsets, int64 flags)", 'N-API + syscall, as maps.cc does it'],
      ['probe_op4_js', 'JS -> napi_probe op4: memory registered once (setMem), 4 int32 args', 'a leaner binding'],
      ['probe_op4_wasm', 'Wasm (i32 import) -> JS glue -> op4', 'floor for a guest call with N-API'],
      ['probe_op7_wasm', 'Wasm (i32 import) bound to the N-API function itself, no JS glue', 'V8 uses a generic wrapper for API functions: slower, not faster'],
      ['probe_host_lean', "Wasm (the real i64 import) -> host.ts's checks with a cached buffer and `flags === 0n` fast path -> op4", 'what host.ts + maps.cc could be'],
    ];
    for (const [k, what, adds] of rows) if (u[k] !== undefined) L.push(`| ${what} | ${fmt(u[k])} | ${adds} |`);
    const nat = r.summaries.find((x) => x.id === 'map_lookup_array');
    if (nat) L.push(`| (native C: bpf_map_lookup_elem on the same ARRAY, mapbench median of this run) | ${fmt(nat.native.median)} | the syscall + libbpf's memset |`);
    L.push('');
    L.push('Record delivery into the guest, ns per 32-byte record (JS loop over a staging buffer laid out as native.bufferPoll writes it, then the guest callback). These are the designs the JavaScript poll went through; on the kernel backend a poll is now Wasm -> C -> Wasm (src/abi/pollgate.ts, the drain and steady rows above), and the JavaScript poll (other backends, a buffer\'s first poll) delivers chunks through src/abi/dispatch.ts:');
    L.push('');
    L.push('| variant | ns/record |');
    L.push('|---|---|');
    L.push(`| first design: \`mem.u8\` getter (reads \`memory.buffer\`) + \`subarray()\` + \`set()\` per record | ${fmt(u['deliver_current'] ?? NaN)} |`);
    L.push(`| cached guest Uint8Array (re-derived only when detached), \`subarray()\` + \`set()\` | ${fmt(u['deliver_cached'] ?? NaN)} |`);
    L.push(`| cached Uint32Array views, word copy for aligned records <= 256 bytes (no allocation) | ${fmt(u['deliver_words'] ?? NaN)} |`);
    L.push(`| the guest callback alone | ${fmt(u['deliver_cb_only'] ?? NaN)} |`);
    L.push('');
  }
  if (r.startup) {
    const s = r.startup;
    L.push('## Start-up: where the time goes (bench/startup.ts, median of runs)');
    L.push('');
    L.push('`wasm-bpf run bootstrap.wasm` itself, with `WASM_BPF_TRACE_STARTUP=1` (src/trace.ts: both threads write timestamped marks, ms since the process started). The guest\'s thread starts first thing and boots while the main thread loads the CLI, so the main-thread rows overlap the guest-thread rows:');
    L.push('');
    L.push('| phase | ms | min - max |');
    L.push('|---|---|---|');
    for (const p of s.phases) L.push(`| ${p.phase} | ${fmt(p.ms)} | ${fmt(p.min)} - ${fmt(p.max)} |`);
    L.push(`| **process start -> first ring buffer poll** | **${fmt(s.totalToFirstPollMs)}** | |`);
    L.push('');
    L.push('Reference points:');
    L.push('');
    L.push(`- \`node -e 0\` (spawn to exit): median ${fmt(median(s.nodeBareMs))} ms [${s.nodeBareMs.map(fmt).join(', ')}]`);
    L.push(`- node: process start to the first line of a script: median ${fmt(median(s.nodeFirstLineMs))} ms${s.nodeFirstLineEnvMs.length ? ` (${fmt(median(s.nodeFirstLineEnvMs))} ms with this machine's NODE_EXTRA_CA_CERTS)` : ''}; an empty \`new Worker\` to its first message: median ${fmt(median(s.emptyWorkerMs))} ms`);
    const n = s.nativeLibbpf;
    L.push(`- native libbpf, same bootstrap.bpf.o (bench/src/loadphases.c): open ${fmt(n['open_ms'] ?? NaN)} ms, load ${fmt(n['load_ms'] ?? NaN)} ms, attach ${fmt(n['attach_ms'] ?? NaN)} ms, ring buffer ${fmt(n['ringbuf_ms'] ?? NaN)} ms, total ${fmt(n['total_ms'] ?? NaN)} ms`);
    if (s.bundleImportMs) {
      L.push(`- the worker's module graph imported as today's ESM files: median ${fmt(median(s.bundleImportMs.esm))} ms; as an esbuild bundle (code-split at the dynamic imports, like the files): median ${fmt(median(s.bundleImportMs.bundled))} ms`);
    }
    L.push('');
  }
  L.push('## Method');
  L.push('');
  L.push('- Every benchmark is one C source built twice: as a wasm32-wasi guest (libbpf-wasm.h, the eBPF object embedded as a C array, run with `wasm-bpf run X.wasm`, from a private compile of the current sources in bench/build/rt unless `--cli` names another build) and natively with gcc against the system libbpf (`bpf_object__open_mem` on the same embedded bytes). The eBPF side is `bench/src/bench.bpf.c`: ARRAY and HASH maps (u32 -> u64), a 64 MiB RINGBUF, and a `tp/syscalls/sys_enter_getppid` program that emits one 32-byte record per call of the producer process (its tgid is set by the consumer in a 1-entry config ARRAY after load, so the guest needs no rodata patching).');
  L.push(`- (a) \`bench/src/mapbench.c\`: ${MAP_N.toLocaleString('en')} lookups of an existing key in 5 chunks (the median chunk counts; after a warm-up of N/10), timed in-process with CLOCK_MONOTONIC; also updates.`);
  L.push(`- (b) drain: \`bench/src/ringbench.c drain\` attaches and polls nothing while \`bench/src/producer.c\` (a separate process calling getppid()) queues the records; then the consumer polls (timeout 0) until all are consumed. A first round of ${DRAIN_WARM.toLocaleString('en')} records warms the runtime up (reported as "cold"), the measured round is ${DRAIN_K.toLocaleString('en')} records. Native: \`ring_buffer__poll(rb, 0)\`; wasm: \`wasm_bpf_buffer_poll(..., timeout 0)\`; both with the same callback (checks the sequence number).`);
  L.push(`- (b) steady stream: the producer emits ${STEADY_K.toLocaleString('en')} records at ${STEADY_RATE.toLocaleString('en')}/s (paced against an absolute clock) while the consumer polls with a 100 ms timeout; the consumer reads its own process CPU time (CLOCK_PROCESS_CPUTIME_ID: every thread, so for wasm-bpf also Node's own threads) at the first and at the last record. Cross-check: the runner sums /proc/PID/task/*/schedstat run time of the consumer between releasing the producer and the result line. The same at 2,000/s and 40,000/s (informational rate sweep: the per-record cost depends on the idle time between wake-ups).`);
  L.push('- empty poll: the fixed cost of one poll call on an empty ring buffer (timeout 0): for wasm-bpf the guest\'s poll import (Wasm, src/abi/pollgate.ts) and the C record source it calls (a V8 fast call), which answers an empty ring without a syscall; native one epoll_wait(2).');
  L.push(`- (c) start-up: the runner spawns the consumer (\`bootstrap\` of matrix/, native vs \`wasm-bpf run bootstrap.wasm\`) and right after it \`bench/src/execloop.c\`, which posix_spawns /bin/true every ${EXEC_INTERVAL_US / 1000} ms; measured is the wall time from the spawn to the first \`EXEC ... filename=/bin/true\` line on the consumer's stdout (resolution ~${EXEC_INTERVAL_US / 1000} ms). The "floor" row runs \`bench/startup-floor.ts\` the same way: Node, one worker thread, and the native addon loading and attaching bootstrap.bpf.o directly, no Wasm and no wasm-bpf code; the issue asks for the guest on a worker thread, so no wasm-bpf start-up can be shorter.`);
  L.push('- "wasm/native" is wasm median / native median (the verdict uses it); "per-pair ratio" is the median of wasm/native over the adjacent (native, wasm) pairs of runs. All times on a shared 2-core VM: expect +-10-20 % between runs; the runs alternate native and wasm so that drifts hit both.');
  L.push('');
  return L.join('\n');
}

// ---- main ----------------------------------------------------------------------------------------------

async function main(): Promise<void> {
  const o = parseOptions(process.argv.slice(2));
  if (o.render) {
    const report = JSON.parse(fs.readFileSync(path.join(BENCH, 'results.json'), 'utf8')) as Report;
    fs.writeFileSync(path.join(BENCH, 'RESULTS.md'), `${markdown(report)}\n${analysisSection(report)}${ffiSection()}`);
    log('rewrote bench/RESULTS.md from bench/results.json');
    return;
  }
  if (process.getuid?.() !== 0) log('warning: not root: loading BPF objects will probably fail');
  if (o.nice !== 0) os.setPriority(o.nice);
  const t0 = performance.now();
  log('building ...');
  const boot = build();
  const metrics: Metric[] = [];
  let micro: Record<string, number> | null = null;
  let startup: StartupDetail | null = null;
  if (o.only.has('map')) {
    log('map operations ...');
    metrics.push(...(await mapBench(o)));
  }
  if (o.only.has('drain')) {
    log('ring buffer drain ...');
    metrics.push(...(await drainBench(o)));
  }
  if (o.only.has('steady')) {
    log('ring buffer steady stream ...');
    metrics.push(...(await steadyBench(o)));
    // how the per-record cost depends on the time between wake-ups (informational)
    const sweepReps = Math.min(o.reps, 3);
    metrics.push(...(await steadyBench(o, 2_000, 4_000, sweepReps, false)));
    metrics.push(...(await steadyBench(o, 40_000, 40_000, sweepReps, false)));
  }
  if (o.only.has('empty')) {
    log('empty poll ...');
    metrics.push(...(await emptyBench(o)));
  }
  if (o.only.has('startup')) {
    log('start-up ...');
    const s = await startupBench(o, boot);
    metrics.push(...s.metrics);
    startup = s.detail;
  }
  if (o.only.has('micro')) {
    log('micro-benchmarks ...');
    micro = await microBench();
  }
  const summaries = metrics.map(summarize);
  const report: Report = {
    date: new Date().toISOString(),
    machine: machineInfo(),
    bootstrapFrom: boot.from,
    cli: CLI,
    durationS: (performance.now() - t0) / 1000,
    options: { quick: o.quick, reps: o.reps, startupReps: o.startupReps, nice: o.nice },
    summaries,
    micro,
    startup,
  };
  const md = markdown(report);
  if (o.write) {
    fs.writeFileSync(path.join(BENCH, 'RESULTS.md'), `${md}\n${analysisSection(report)}${ffiSection()}`);
    fs.writeFileSync(path.join(BENCH, 'results.json'), `${JSON.stringify(report, null, 2)}\n`);
    log('wrote bench/RESULTS.md and bench/results.json');
  }
  process.stdout.write(`${md.split('## Map operation')[0]!.split('## Results')[1] ?? md}\n`);
  const missed = summaries.filter((s) => s.verdict === 'MISS');
  log(missed.length ? `targets missed: ${missed.map((s) => s.id).join(', ')}` : 'all targets met');
}

/** the analysis text kept in bench/ANALYSIS.md (hand-written), appended to RESULTS.md when present */
function analysisSection(r: Report): string {
  void r;
  const f = path.join(BENCH, 'ANALYSIS.md');
  return fs.existsSync(f) ? `\n${fs.readFileSync(f, 'utf8')}` : '';
}

main().catch((err: unknown) => {
  log(`bench: ${err instanceof Error ? err.message : String(err)}`);
  process.exitCode = 1;
});
