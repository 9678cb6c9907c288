// A/B of two agent builds on one cell of the uprobe benchmark: runs target-<kind> under `wasm-bpf run
// --backend userspace` with each agent library in turn (A, B, A, B, ...: interleaved, so a burst of load hits
// both alike), installing it as native/agent/build/libwbpf_agent.so for its run (the original put back at the
// end), and prints each side's per-call CPU time: median, minimum and every run.
//
//   node --import=tsx bench/uprobe/ab.ts --a OLD.so --b NEW.so [--kind nop5] [--variant entry|return|both]
//        [--runs 7] [--calls 1000000] [--interval 10] [--linger 1000]
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { runCell, type Variant } from './cell.js';

const HERE = path.dirname(fileURLToPath(import.meta.url));
const ROOT = path.resolve(HERE, '..', '..');
const INSTALLED = path.join(ROOT, 'native', 'agent', 'build', 'libwbpf_agent.so');

interface AbOptions {
  a: string;
  b: string;
  kind: string;
  variant: Variant;
  runs: number;
  calls: number;
  intervalMs: number;
  lingerMs: number;
}

const USAGE = `usage: node --import=tsx bench/uprobe/ab.ts --a OLD.so --b NEW.so [options]
Runs one cell of the uprobe benchmark under two agent libraries, interleaved (A B A B ...), each installed as
native/agent/build/libwbpf_agent.so for its run (the original put back), and prints per-call CPU ns.
  --a PATH             agent library A (required)
  --b PATH             agent library B (required)
  --kind K             the target's entry kind: nop5, endbr64, push, plain, trap (nop5)
  --variant V          entry, return or both (entry)
  --runs N             runs per side (7)
  --calls N            calls per run (1000000)
  --interval MS        the app's ring drain interval (10)
  --linger MS          the target's wait around its loop (1000)
  --help, -h           this text`;

function parse(argv: string[]): AbOptions {
  const o: AbOptions = { a: '', b: '', kind: 'nop5', variant: 'entry', runs: 7, calls: 1_000_000, intervalMs: 10, lingerMs: 1000 };
  for (let i = 0; i < argv.length; i++) {
    const f = argv[i]!, v = argv[i + 1] ?? '';
    if (f === '--help' || f === '-h') {
      console.log(USAGE);
      process.exit(0);
    } else if (f === '--a') o.a = path.resolve(v);
    else if (f === '--b') o.b = path.resolve(v);
    else if (f === '--kind') o.kind = v;
    else if (f === '--variant') o.variant = v as Variant;
    else if (f === '--runs') o.runs = Number(v);
    else if (f === '--calls') o.calls = Number(v);
    else if (f === '--interval') o.intervalMs = Number(v);
    else if (f === '--linger') o.lingerMs = Number(v);
    else throw new Error(`unknown option ${f} (--help lists them)`);
    i++;
  }
  if (!o.a || !o.b) throw new Error('--a and --b name the two agent libraries');
  if (!['entry', 'return', 'both'].includes(o.variant)) throw new Error(`--variant: entry, return or both, not ${o.variant}`);
  return o;
}

const median = (xs: number[]): number => {
  const s = [...xs].sort((x, y) => x - y);
  return s.length % 2 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
};

function main(): void {
  const o = parse(process.argv.slice(2));
  const cli = path.join(ROOT, 'bin', 'wasm-bpf.js');
  execFileSync('make', ['-s', '-C', HERE, `WASM_BPF=${process.execPath} ${cli}`], { stdio: 'inherit' });
  const target = path.join(HERE, 'build', `target-${o.kind}`);
  const paths = { cli, wasm: path.join(HERE, 'build', 'ubench.wasm') };
  const saved = `${INSTALLED}.ab-saved`;
  fs.copyFileSync(INSTALLED, saved);
  const ns: Record<'a' | 'b', number[]> = { a: [], b: [] };
  const load0 = os.loadavg()[0]!;
  try {
    for (let r = 0; r < o.runs; r++) {
      for (const side of ['a', 'b'] as const) {
        fs.copyFileSync(o[side], `${INSTALLED}.tmp`);
        fs.renameSync(`${INSTALLED}.tmp`, INSTALLED);
        const run = runCell(target, o.calls, { backend: 'userspace', variant: o.variant, intervalMs: o.intervalMs }, paths, o.lingerMs, 180_000);
        if (run.records !== run.expected) console.log(`  ${side}: ${run.records} records of ${run.expected}`);
        ns[side].push(run.nsPerCall);
      }
    }
  } finally {
    fs.renameSync(saved, INSTALLED);
  }
  const load1 = os.loadavg()[0]!;
  console.log(`${o.kind} ${o.variant}, ${o.runs} runs x ${o.calls} calls each side, CPU ns per call (load ${load0.toFixed(1)} -> ${load1.toFixed(1)}, ${os.cpus().length} CPUs)`);
  for (const side of ['a', 'b'] as const) {
    const xs = ns[side];
    console.log(`  ${side} ${path.basename(o[side])}: median ${median(xs).toFixed(1)}, min ${Math.min(...xs).toFixed(1)}; runs ${xs.map((x) => x.toFixed(1)).join(' ')}`);
  }
}

main();
