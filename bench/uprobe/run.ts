// The uprobe benchmark (issue 16): bench_fn in five entry kinds (the fifth, trap, one our inline hook refuses), called N times in a timed loop, bare,
// under the kernel's uprobe (--backend linux) and under our in-process hook (--backend userspace), with
// the same ring buffer program; prints the table and rewrites bench/uprobe/RESULTS.md and results.json.
//
//   node --import=tsx bench/uprobe/run.ts [--runs 3] [--calls 1000000] [--kernel-calls 200000]
//        [--kinds nop5,endbr64,push,plain,trap] [--interval 10] [--linger 1000] [--no-kernel] [--no-write] [--cli PATH]
//        [--nice N] [--render] [--ptrace-calls 20000] [--no-ptrace] [--only-ptrace] [--help]
//   npm run bench:uprobe           (the same, compiled: node dist/bench/uprobe/run.js)
//
// --nice N renices the runner and so every process it starts (other people's bursts on a shared machine
// land less in the timed loops); --render rewrites RESULTS.md from results.json and ANALYSIS.md, measuring nothing;
// --only-ptrace measures only the ptrace tier's rows (--userspace-tier ptrace, --ptrace-calls calls a run) and adds
// them to the saved results.json.
//
// Needs gcc, clang-16, llvm-strip-16, bpftool, wasi-libc, the built runtime (dist/) and agent
// (native/agent/build); the kernel's rows need root (skipped otherwise).
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { runCell, type CellPaths, type CellRun } from './cell.js';
import { KINDS, markdown, ptraceRows, table, type Kind, type KindResult, type Meta, type RowSpec } from './report.js';

function findRoot(from: string): string {
  let dir = from;
  for (;;) {
    if (fs.existsSync(path.join(dir, 'package.json')) && fs.existsSync(path.join(dir, 'bench', 'uprobe'))) return dir;
    const up = path.dirname(dir);
    if (up === dir) throw new Error(`cannot find the repository root above ${from}`);
    dir = up;
  }
}

const ROOT = findRoot(path.dirname(fileURLToPath(import.meta.url)));
const HERE = path.join(ROOT, 'bench', 'uprobe');
const BUILD = path.join(HERE, 'build');

interface Options {
  runs: number;
  calls: number;
  kernelCalls: number;
  kinds: Kind[];
  intervalMs: number;
  lingerMs: number;
  kernel: boolean;
  write: boolean;
  cli: string;
  nice: number;
  render: boolean;
  ptraceCalls: number;
  ptrace: boolean;
  onlyPtrace: boolean;
}

/** what --help prints */
export const USAGE = `usage: node --import=tsx bench/uprobe/run.ts [options]   (or: npm run bench:uprobe -- [options])
Measures a uprobe hit (a ring buffer record per call of bench_fn) bare, under the kernel (--backend linux)
and under the in-process agent (--backend userspace), per entry kind, and rewrites bench/uprobe/RESULTS.md
and results.json.
  --runs N           runs per cell (3)
  --calls N          calls per userspace and bare run (1000000)
  --kernel-calls N   calls per kernel run (200000)
  --kinds LIST       entry kinds, comma-separated, of ${KINDS.join(',')} (all)
  --interval MS      the app's ring drain interval for the batching rows (10)
  --linger MS        the target's wait before and after its loop, for attach and drain (1000)
  --no-kernel        skip the kernel's rows (they need root)
  --no-write         print the table only; leave RESULTS.md and results.json alone
  --cli PATH         the wasm-bpf CLI to run (bin/wasm-bpf.js)
  --nice N           renice the runner and so every process it starts
  --render           rewrite RESULTS.md from results.json and ANALYSIS.md; measure nothing
  --ptrace-calls N   calls per ptrace-tier run (20000)
  --no-ptrace        skip the ptrace tier's rows
  --only-ptrace      measure only the ptrace tier's rows, added to the saved results.json
  --help, -h         this text
One cell, two agent builds A/B: bench/uprobe/ab.ts (see its header).`;

function parseOptions(argv: string[]): Options {
  const o: Options = {
    runs: 3,
    calls: 1_000_000,
    kernelCalls: 200_000,
    kinds: [...KINDS],
    intervalMs: 10,
    lingerMs: 1000,
    kernel: true,
    write: true,
    cli: path.join(ROOT, 'bin', 'wasm-bpf.js'),
    nice: 0,
    render: false,
    ptraceCalls: 20_000,
    ptrace: true,
    onlyPtrace: false,
  };
  const num = (i: number, name: string): number => {
    const v = Number(argv[i]);
    if (!Number.isFinite(v) || v < 0) throw new Error(`${name} needs a number`);
    return v;
  };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (a === '--help' || a === '-h') {
      console.log(USAGE);
      process.exit(0);
    } else if (a === '--runs') o.runs = Math.max(1, num(++i, a));
    else if (a === '--calls') o.calls = Math.max(1, num(++i, a));
    else if (a === '--kernel-calls') o.kernelCalls = Math.max(1, num(++i, a));
    else if (a === '--interval') o.intervalMs = num(++i, a);
    else if (a === '--linger') o.lingerMs = num(++i, a);
    else if (a === '--no-kernel') o.kernel = false;
    else if (a === '--no-write') o.write = false;
    else if (a === '--cli') o.cli = path.resolve(argv[++i] ?? '');
    else if (a === '--nice') o.nice = Number(argv[++i]);
    else if (a === '--render') o.render = true;
    else if (a === '--ptrace-calls') o.ptraceCalls = Math.max(1, num(++i, a));
    else if (a === '--no-ptrace') o.ptrace = false;
    else if (a === '--only-ptrace') o.onlyPtrace = true;
    else if (a === '--kinds') {
      const kinds = (argv[++i] ?? '').split(',');
      for (const k of kinds) if (!(KINDS as readonly string[]).includes(k)) throw new Error(`unknown kind ${k} (${KINDS.join(', ')})`);
      o.kinds = kinds as Kind[];
    } else throw new Error(`unknown option ${a} (--help lists them)`);
  }
  return o;
}

/** how each kind is built (bench/uprobe/Makefile) and how its first instruction must look */
const BUILDS: Record<Kind, { build: string; check: (insn: string) => boolean }> = {
  nop5: { build: 'gcc -O2 -pg -mfentry -mnop-mcount (no PIE)', check: (i) => /^0f 1f 44 00 00\s+nop/.test(i) },
  endbr64: { build: 'gcc -O2 -fcf-protection', check: (i) => /\sendbr64/.test(i) },
  push: { build: 'clang-16 -O2 -fno-omit-frame-pointer', check: (i) => /\spush\s+%rbp/.test(i) },
  plain: { build: 'gcc -O2 -fcf-protection=none', check: (i) => !/\s(nop|endbr64|push)/.test(i) },
  trap: { build: 'gcc -O2 -DTRAP_ENTRY (lfence at +2: the agent\'s trap tier)', check: (i) => /^89 f8\s+mov\s+%edi,%eax/.test(i) },
};

/** bench_fn's first instruction: "bytes  mnemonic operands" as objdump prints it */
function firstInsn(binary: string): string {
  const dis = execFileSync('objdump', ['-d', binary], { encoding: 'utf8', maxBuffer: 64 << 20 });
  const m = /<bench_fn>:\n\s*[0-9a-f]+:\s*([^\n]+)/.exec(dis);
  if (!m) throw new Error(`no bench_fn in ${binary}`);
  return m[1]!.replace(/\s+#.*$/, '').replace(/\t/g, ' ').replace(/\s+/g, ' ').trim();
}

function rowSpecs(intervalMs: number): RowSpec[] {
  const batch = `batching consumer (-i ${intervalMs})`;
  return [
    { id: 'entry', variant: 'entry', intervalMs, label: `entry, ${batch}`, targetNs: 100 },
    { id: 'return', variant: 'return', intervalMs, label: `return, ${batch}`, targetNs: 150 },
    { id: 'both', variant: 'both', intervalMs, label: `entry + return, ${batch}` },
    { id: 'entry-eager', variant: 'entry', intervalMs: 0, label: 'entry, eager consumer (-i 0)' },
  ];
}

function machine(): string {
  let osName = os.type();
  try {
    osName = (fs.readFileSync('/etc/os-release', 'utf8').match(/^PRETTY_NAME="?([^"\n]+)"?/m) ?? [])[1] ?? osName;
  } catch {
    // keep os.type()
  }
  const cpu = os.cpus()[0]?.model ?? 'unknown CPU';
  return `kernel ${os.release()}, ${osName}; ${cpu} x ${os.cpus().length}; ${Math.round(os.totalmem() / 2 ** 30)} GiB; Node ${process.version}`;
}

function commit(): string {
  try {
    return execFileSync('git', ['-C', ROOT, 'rev-parse', '--short', 'HEAD'], { encoding: 'utf8' }).trim();
  } catch {
    return 'unknown';
  }
}

/** the hand-written analysis (bench/uprobe/ANALYSIS.md), appended to RESULTS.md when present */
function analysis(): string {
  const f = path.join(HERE, 'ANALYSIS.md');
  return fs.existsSync(f) ? `\n${fs.readFileSync(f, 'utf8')}` : '';
}

function render(): void {
  const saved = JSON.parse(fs.readFileSync(path.join(HERE, 'results.json'), 'utf8')) as { meta: Meta; results: KindResult[] };
  fs.writeFileSync(path.join(HERE, 'RESULTS.md'), markdown(saved.results, rowSpecs(saved.meta.intervalMs), saved.meta) + analysis());
}

/** one ptrace tier cell: the entry probe, batching consumer */
function ptraceCell(o: Options, paths: CellPaths, k: KindResult, run: number): void {
  const target = path.join(BUILD, `target-${k.kind}`);
  const r = runCell(target, o.ptraceCalls, { backend: 'userspace', tier: 'ptrace', variant: 'entry', intervalMs: o.intervalMs }, paths, o.lingerMs, 180_000);
  (k.ptrace ??= []).push(r);
  process.stderr.write(`# run ${run}/${o.runs} ${k.kind} ptrace entry: ${r.wallNsPerCall.toFixed(0)} wall ns/call, records ${r.records}/${r.expected}\n`);
}

/** --only-ptrace: the ptrace tier's rows, added to the saved results */
function onlyPtrace(o: Options): void {
  const file = path.join(HERE, 'results.json');
  const saved = JSON.parse(fs.readFileSync(file, 'utf8')) as { meta: Meta; results: KindResult[] };
  const loadStart = os.loadavg().map((x) => x.toFixed(2)).join(' ');
  execFileSync('make', ['-s', '-C', HERE, `WASM_BPF=${process.execPath} ${o.cli}`], { stdio: 'inherit' });
  const paths: CellPaths = { cli: o.cli, wasm: path.join(BUILD, 'ubench.wasm') };
  const kinds = saved.results.filter((k) => o.kinds.includes(k.kind));
  for (const k of kinds) k.ptrace = [];
  for (let run = 1; run <= o.runs; run++) for (const k of kinds) ptraceCell(o, paths, k, run);
  const loadEnd = os.loadavg().map((x) => x.toFixed(2)).join(' ');
  saved.meta.ptrace = { date: new Date().toISOString(), commit: commit(), runs: o.runs, calls: o.ptraceCalls, load: `${loadStart} / ${loadEnd}` };
  process.stdout.write(`${ptraceRows(saved.results).join('\n')}\n`);
  if (!o.write) return;
  fs.writeFileSync(file, JSON.stringify(saved, null, 2) + '\n');
  render();
  process.stderr.write(`# added the ptrace tier's rows to ${path.relative(ROOT, path.join(HERE, 'RESULTS.md'))} and results.json\n`);
}

function main(): void {
  const o = parseOptions(process.argv.slice(2));
  if (o.render) return render();
  if (o.nice) os.setPriority(0, o.nice);
  if (o.onlyPtrace) return onlyPtrace(o);
  if (o.nice) os.setPriority(0, o.nice);
  const t0 = Date.now();
  const loadStart = os.loadavg().map((x) => x.toFixed(2)).join(' ');
  execFileSync('make', ['-s', '-C', HERE, `WASM_BPF=${process.execPath} ${o.cli}`], { stdio: 'inherit' });
  const paths: CellPaths = { cli: o.cli, wasm: path.join(BUILD, 'ubench.wasm') };
  const root = process.getuid?.() === 0;
  const kernel = o.kernel && root;
  const specs = rowSpecs(o.intervalMs);

  const results: KindResult[] = o.kinds.map((kind) => {
    const insn = firstInsn(path.join(BUILD, `target-${kind}`));
    if (!BUILDS[kind].check(insn)) throw new Error(`target-${kind}: bench_fn starts with "${insn}", not a ${kind} entry: check the compiler`);
    return { kind, build: BUILDS[kind].build, firstInsn: insn, bare: [], linux: {}, userspace: {} };
  });

  const timeoutMs = 180_000;
  for (let run = 1; run <= o.runs; run++) {
    for (const k of results) {
      const target = path.join(BUILD, `target-${k.kind}`);
      const log = (what: string, r: CellRun): void => {
        const rec = r.expected !== undefined ? `, records ${r.records}/${r.expected}` : '';
        process.stderr.write(`# run ${run}/${o.runs} ${k.kind} ${what}: ${r.nsPerCall.toFixed(2)} cpu ns/call (wall ${r.wallNsPerCall.toFixed(2)})${rec}\n`);
      };
      const bare = runCell(target, o.calls, undefined, paths, o.lingerMs, timeoutMs);
      k.bare.push(bare);
      log('bare', bare);
      for (const spec of specs) {
        for (const backend of kernel ? (['linux', 'userspace'] as const) : (['userspace'] as const)) {
          // the trap tier costs microseconds per hit, as the kernel's single-step: the same small N
          const calls = backend === 'linux' || k.kind === 'trap' ? o.kernelCalls : o.calls;
          const r = runCell(target, calls, { backend, variant: spec.variant, intervalMs: spec.intervalMs }, paths, o.lingerMs, timeoutMs);
          (k[backend][spec.id] ??= []).push(r);
          log(`${backend} ${spec.id}`, r);
        }
      }
      if (o.ptrace) ptraceCell(o, paths, k, run);
    }
  }

  const loadEnd = os.loadavg().map((x) => x.toFixed(2)).join(' ');
  process.stdout.write(`${table(results, specs)}\n`);
  if (!o.write) return;
  const meta: Meta = {
    date: new Date().toISOString(),
    seconds: Math.round((Date.now() - t0) / 1000),
    machine: machine(),
    load: `${loadStart} / ${loadEnd}`,
    commit: commit(),
    runs: o.runs,
    calls: o.calls,
    kernelCalls: o.kernelCalls,
    intervalMs: o.intervalMs,
    lingerMs: o.lingerMs,
    ...(o.ptrace ? { ptrace: { date: new Date().toISOString(), commit: commit(), runs: o.runs, calls: o.ptraceCalls, load: `${loadStart} / ${os.loadavg().map((x) => x.toFixed(2)).join(' ')}` } } : {}),
    ...(o.nice ? { nice: o.nice } : {}),
    ...(kernel ? {} : { kernelNote: o.kernel ? 'The kernel rows were not run: they need root.' : 'The kernel rows were not run (--no-kernel).' }),
  };
  fs.writeFileSync(path.join(HERE, 'RESULTS.md'), markdown(results, specs, meta) + analysis());
  fs.writeFileSync(path.join(HERE, 'results.json'), JSON.stringify({ meta, results }, null, 2) + '\n');
  process.stderr.write(`# wrote ${path.relative(ROOT, path.join(HERE, 'RESULTS.md'))} and results.json\n`);
}

main();
