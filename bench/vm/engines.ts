// The userspace VM's three engines on the same programs, ns per run: the interpreter, the compiler and
// the native engine through vm.execute (input copied in and out, as every engine does), and the agent's
// engine alone in C (bench/vm/engine.c: ctx as a host pointer, no Node), which is what a uprobe hit costs.
//
//   node --import=tsx bench/vm/engines.ts [--no-write]      (needs cc; writes bench/vm/ENGINES.md)
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { vm, type Engine } from '../../backends/userspace/vm/index.js';

const HERE = path.dirname(fileURLToPath(import.meta.url));
const BUILD = path.join(HERE, 'build');
fs.mkdirSync(BUILD, { recursive: true });
const WRITE = !process.argv.includes('--no-write');
const EXE = path.join(BUILD, 'engine');
execFileSync('cc', ['-O2', '-std=gnu11', '-o', EXE, path.join(HERE, 'engine.c'), path.join(HERE, '../../native/agent/vm/ebpf_vm.c')]);

const PROGRAMS: { name: string; what: string; size: number; text: string }[] = [
  {
    name: 'hook',
    what: 'a uprobe-sized program: two ctx loads, a stack slot, a branch (12 instructions, 11 on the path taken)',
    size: 64,
    text: `
      ldxdw %r2, [%r1+8]
      ldxdw %r3, [%r1+16]
      mov %r0, %r2
      xor %r0, %r3
      stxdw [%r10-8], %r0
      jgt %r2, %r3, +2
      mov %r0, 1
      ja +1
      mov %r0, 2
      ldxdw %r4, [%r10-8]
      add %r0, %r4
      exit`,
  },
  {
    name: 'loop',
    what: 'the sum of a 4 KiB ctx byte by byte (4096 iterations of 4 instructions)',
    size: 4096,
    text: `
      mov %r0, 0
      mov %r3, %r1
      add %r3, %r2
    l:
      ldxb %r4, [%r1+0]
      add %r0, %r4
      add %r1, 1
      jlt %r1, %r3, l
      exit`,
  },
];

function median(a: number[]): number {
  const s = [...a].sort((x, y) => x - y);
  return s[s.length >> 1]!;
}

function timeEngine(prog: ReturnType<typeof vm.load>, input: Uint8Array, engine: Engine): { ns: number; r0: bigint } {
  let r0 = 0n;
  // runs per batch: about 20 ms each
  let n = 1;
  for (;;) {
    const t0 = process.hrtime.bigint();
    for (let i = 0; i < n; i++) r0 = vm.execute(prog, input, { engine }).r0;
    const dt = Number(process.hrtime.bigint() - t0);
    if (dt > 20e6 || n > 1e7) break;
    n *= 2;
  }
  const batches: number[] = [];
  for (let b = 0; b < 15; b++) {
    const t0 = process.hrtime.bigint();
    for (let i = 0; i < n; i++) r0 = vm.execute(prog, input, { engine }).r0;
    batches.push(Number(process.hrtime.bigint() - t0) / n);
  }
  return { ns: median(batches), r0 };
}

const rows: string[] = [];
for (const p of PROGRAMS) {
  const insns = vm.asm(p.text);
  const prog = vm.load(insns, { name: p.name });
  const input = new Uint8Array(p.size).map((_, i) => (i * 7 + 1) & 0xff);
  const res: Record<string, { ns: number; r0: bigint }> = {};
  for (const e of ['interp', 'jit', 'native'] as const) res[e] = timeEngine(prog, input, e);
  const file = path.join(os.tmpdir(), `engines-${process.pid}.bin`);
  fs.writeFileSync(file, insns);
  const runs = p.size > 1000 ? 2000 : 2_000_000;
  const [cns, cr0] = execFileSync(EXE, [file, String(p.size), String(runs)], { encoding: 'utf8' }).trim().split(' ');
  fs.rmSync(file);
  const r0s = new Set(Object.values(res).map((r) => r.r0.toString(16)));
  if (r0s.size !== 1) throw new Error(`${p.name}: the engines disagree: ${[...r0s].join(' ')}`);
  const steps = vm.execute(prog, input.slice(), { engine: 'interp' }).steps;
  const f = (x: number): string => (x >= 1000 ? `${(x / 1000).toFixed(1)} µs` : `${x.toFixed(0)} ns`);
  rows.push(`| ${p.name} | ${steps} | ${f(res.interp!.ns)} | ${f(res.jit!.ns)} | ${f(res.native!.ns)} | ${f(Number(cns))} |`);
  console.log(`${p.name}: interp ${f(res.interp!.ns)}, jit ${f(res.jit!.ns)}, native ${f(res.native!.ns)}, C alone ${f(Number(cns))} (r0 ${[...r0s][0]}, C r0 ${cr0})`);
}

const cpu = os.cpus()[0]?.model ?? 'unknown CPU';
const md = `# The three engines, ns per run

\`node --import=tsx bench/vm/engines.ts\` on ${cpu}, Node ${process.versions.node}, ${new Date().toISOString().slice(0, 10)}.
Median of 15 batches. The first three columns are \`vm.execute(prog, input, { engine })\`: each run
copies the input into the VM's memory and back and sets up the run in TypeScript, whatever the engine.
**C alone** is the agent's engine called directly from C (\`bench/vm/engine.c\`: the ctx is a host pointer,
no Node), what a uprobe hit would pay for the program itself. The machine is shared (2 vCPUs, other
jobs running): compare within a row rather than across runs.

| program | steps | interpreter | compiler | native (through N-API) | C alone |
|---|---:|---:|---:|---:|---:|
${rows.join('\n')}

${PROGRAMS.map((p) => `- **${p.name}**: ${p.what}.`).join('\n')}
`;
if (WRITE) fs.writeFileSync(path.join(HERE, 'ENGINES.md'), md);
console.log(md);
