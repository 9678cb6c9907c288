// The uprobe benchmark's report: per entry kind and variant, the cost per hit (probed minus bare, per
// call) of the kernel's uprobe and of our in-process hook, records received, targets and verdicts.
import type { CellRun, Variant } from './cell.js';

export const KINDS = ['nop5', 'endbr64', 'push', 'plain', 'trap'] as const;
export type Kind = (typeof KINDS)[number];

/** the rows of each kind: a variant of the app and its consumer */
export interface RowSpec {
  id: string;
  variant: Variant;
  intervalMs: number;
  label: string;
  /** our per-hit target in ns, if the issue sets one */
  targetNs?: number;
}

export interface KindResult {
  kind: Kind;
  /** how the target was built, and bench_fn's first instruction as objdump shows it */
  build: string;
  firstInsn: string;
  bare: CellRun[];
  /** by RowSpec id: the kernel's runs and ours */
  linux: Record<string, CellRun[]>;
  userspace: Record<string, CellRun[]>;
  /** the ptrace tier (`--userspace-tier ptrace`), entry probe, batching consumer: its runs */
  ptrace?: CellRun[];
}

export interface Meta {
  date: string;
  seconds: number;
  machine: string;
  load: string;
  commit: string;
  runs: number;
  calls: number;
  kernelCalls: number;
  intervalMs: number;
  lingerMs: number;
  /** the runner's nice value, if it set one */
  nice?: number;
  kernelNote?: string;
  /** when the ptrace tier's rows were measured (`--only-ptrace` adds them to a saved run) */
  ptrace?: { date: string; commit: string; runs: number; calls: number; load: string };
}

export const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[s.length >> 1]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
};

const ns = (x: number): string => (Math.abs(x) >= 100 ? x.toFixed(0) : Math.abs(x) >= 10 ? x.toFixed(1) : x.toFixed(2));

/** per hit of each run: its ns per call minus the bare median */
function perHit(runs: CellRun[], bare: number): number[] {
  return runs.map((r) => r.nsPerCall - bare);
}

function spread(xs: number[]): string {
  if (xs.length === 0) return '-';
  if (xs.length === 1) return ns(xs[0]!);
  return `${ns(median(xs))} [${ns(Math.min(...xs))} - ${ns(Math.max(...xs))}]`;
}

/** "all N" when every run received what its programs produced, else the worst run's shortfall: records
 * the ring refused (full; ours reports them) and records produced but not delivered before the run stopped */
function records(runs: CellRun[]): string {
  if (runs.length === 0) return '-';
  const lost = (r: CellRun): number => (r.expected ?? 0) - (r.records ?? 0);
  const worst = runs.reduce((a, b) => (lost(b) > lost(a) ? b : a));
  const expected = worst.expected ?? 0;
  if (lost(worst) <= 0) return `all ${expected}`;
  const dropped = worst.dropped ?? 0;
  const why = [dropped ? `${dropped} refused, ring full` : '', lost(worst) - dropped > 0 ? `${lost(worst) - dropped} not delivered before the stop` : ''].filter(Boolean);
  return `${worst.records ?? 0} of ${expected} (worst run: ${why.join(', ')})`;
}

export interface Row {
  kind: Kind;
  spec: RowSpec;
  kernel?: number;
  ours?: number;
  cells: string[];
  verdicts: string[];
}

export function rows(results: KindResult[], specs: RowSpec[]): Row[] {
  const out: Row[] = [];
  for (const k of results) {
    const bare = median(k.bare.map((r) => r.nsPerCall));
    for (const spec of specs) {
      const kr = k.linux[spec.id] ?? [];
      const ur = k.userspace[spec.id] ?? [];
      const kernel = kr.length ? median(perHit(kr, bare)) : undefined;
      const ours = ur.length ? median(perHit(ur, bare)) : undefined;
      const verdicts: string[] = [];
      if (ours !== undefined && spec.targetNs !== undefined) verdicts.push(`<= ${spec.targetNs} ns: ${ours <= spec.targetNs ? '**PASS**' : '**MISS**'}`);
      if (ours !== undefined && kernel !== undefined) verdicts.push(`faster than the kernel: ${ours < kernel ? '**PASS**' : '**MISS**'}`);
      out.push({
        kind: k.kind,
        spec,
        ...(kernel !== undefined ? { kernel } : {}),
        ...(ours !== undefined ? { ours } : {}),
        cells: [
          k.kind,
          spec.label,
          ns(bare),
          kr.length ? spread(perHit(kr, bare)) : 'not run',
          ur.length ? spread(perHit(ur, bare)) : 'not run',
          kernel !== undefined && ours !== undefined && kernel > 0 ? `${(ours / kernel).toFixed(3)}x` : '-',
          `${records(kr)} / ${records(ur)}`,
        ],
        verdicts,
      });
    }
  }
  return out;
}

const us = (x: number): string => `${(x / 1000).toFixed(1)} us`;

/** the ptrace tier's rows: CPU per hit = the target thread's (its trap, its stops) + the tracer's own (its
 * waits, ptrace calls and the program), against the kernel's uprobe on the same kind; and the wall-clock
 * per hit, which on a loaded machine is mostly the wait for the tracer to be scheduled */
export function ptraceRows(results: KindResult[]): string[] {
  const measured = results.filter((k) => (k.ptrace ?? []).length > 0);
  if (measured.length === 0) return ['| any | ptrace tier (the host runs the program at each hit) | - | - | not run | - | - | - |'];
  return measured.map((k) => {
    const runs = k.ptrace ?? [];
    const bare = median(k.bare.map((r) => r.nsPerCall));
    const bareWall = median(k.bare.map((r) => r.wallNsPerCall));
    const cpu = runs.map((r) => r.nsPerCall - bare + (r.tracerNsPerHit ?? 0));
    const wall = median(runs.map((r) => r.wallNsPerCall - bareWall));
    const kr = k.linux['entry'] ?? [];
    const kernel = kr.length ? median(perHit(kr, bare)) : undefined;
    const m = median(cpu);
    const cell = cpu.length === 1 ? us(m) : `${us(m)} [${us(Math.min(...cpu))} - ${us(Math.max(...cpu))}]`;
    const ratio = kernel !== undefined && kernel > 0 ? `${(m / kernel).toFixed(1)}x` : '-';
    return `| ${k.kind}, ptrace tier | entry, batching consumer: CPU per hit, target + tracer (wall ${us(wall)}) | ${ns(bare)} | ${kernel !== undefined ? ns(kernel) : 'not run'} | ${cell} | ${ratio} | - / ${records(runs)} | a last resort (static binaries): correct, slow |`;
  });
}

export function table(results: KindResult[], specs: RowSpec[]): string {
  const head = [
    '| entry kind | programs attached, consumer | bare: CPU ns/call | kernel uprobe: ns per hit | ours (in-process hook): ns per hit | ours/kernel | records received (kernel / ours) | verdict |',
    '|---|---|---:|---:|---:|---:|---|---|',
  ];
  const body = rows(results, specs).map((r) => `| ${r.cells.join(' | ')} | ${r.verdicts.join('; ') || '-'} |`);
  return [...head, ...body, ...ptraceRows(results)].join('\n');
}

export function markdown(results: KindResult[], specs: RowSpec[], meta: Meta): string {
  const kinds = results.map((k) => `| ${k.kind} | ${k.build} | \`${k.firstInsn}\` |`).join('\n');
  const kernelNote = meta.kernelNote ? `\n- ${meta.kernelNote}` : '';
  const trapNote = results.some((k) => k.kind === 'trap')
    ? `- **trap**: an entry our inline hook refuses (an instruction its relocator does not know at +2), so the agent
  hooks it with its **trap tier**: an int3 on the first byte, a SIGTRAP per hit, the program run in the
  signal handler, the first instruction run out of line; ${meta.kernelCalls} calls per run, as under the kernel's uprobe.
`
    : '';
  return `# Uprobe benchmark: the kernel's uprobe and our in-process hook, side by side

Generated by \`node --import=tsx bench/uprobe/run.ts\` (or \`npm run bench:uprobe\`) on ${meta.date} (${meta.seconds} s). Do not edit by hand: rerun it.

- ${meta.machine}; load average at the start and the end: ${meta.load}
- wasm-bpf commit ${meta.commit}; ${meta.runs} runs of every cell, kinds and cells interleaved; medians [min - max] of the runs${meta.nice ? `; every process at nice ${meta.nice}` : ''}

## Results

${table(results, specs)}

- **ns per hit** = (ns per call of the probed run - the median ns per call of the bare runs): what one call of
  \`bench_fn\` costs more with the probe and its program. Each run times one loop of calls inside the target
  (${meta.calls} calls for the bare and our runs, ${meta.kernelCalls} under the kernel's uprobe), so start-up,
  attach and the consumer's last drain are outside it. The time is the target thread's **CPU time**
  (\`CLOCK_THREAD_CPUTIME_ID\`): both probes do their work in that thread (the kernel's trap handler,
  single-step and program; our trampoline, agent and program), and on a shared machine it leaves out the
  time other processes held the CPU; results.json also keeps the wall-clock times.
- **The program** (bench/uprobe/ubench.bpf.c): at each hit, \`bpf_ringbuf_reserve\` of a 16-byte record,
  \`bpf_get_current_pid_tgid\`, the argument (entry) or result (return), \`bpf_ringbuf_submit\` with flags 0;
  a 32 MiB ring buffer. The same object on both backends (\`wasm-bpf run --backend linux|userspace
  bench/uprobe/build/ubench.wasm -m entry|return|both -i MS TARGET bench_fn -- TARGET N LINGER_MS\`).
- **entry** = uprobe only; **return** = uretprobe only; **entry + return** = both on the same function
  (two records per call). Targets (issue 16): ours <= 100 ns per hit with the record program (uprobe),
  <= 150 ns (uretprobe), and faster than the kernel's uprobe on every entry kind.
- **Consumer**: "batching" polls without waiting until the ring is empty, then sleeps ${meta.intervalMs} ms
  (\`-i ${meta.intervalMs}\`), so a hit rarely finds the consumer caught up and waiting; "eager" blocks in the poll (\`-i 0\`), so, when it keeps up, the hit
  that finds it waiting wakes it: a \`write\` to the ring's eventfd from the hit (ours), an irq_work and a
  wake-up (the kernel). The target stays ${meta.lingerMs} ms after its loop (untimed) so that the consumer drains
  the last records before the run stops with the command's exit; "records received" counts what the
  guest's callback saw, against the calls made (x2 for entry + return); a shortfall is split into records
  the ring refused because it was full (ours reports them; the kernel's ring buffer counts none) and records
  not delivered before the run stopped.
${trapNote}- The **ptrace tier** (\`--userspace-tier ptrace\`; chosen by itself for static binaries, where no agent can
  be loaded): the tracer \`wbpf-ptrace\` stops the thread at an int3, runs the same program in its own engine
  and resumes it (two context switches and several ptrace calls per hit). Its rows add the tracer's own CPU
  time per hit (\`WBPF_PTRACE_STATS=1\` makes it report it) to the target thread's, and show the wall-clock
  per hit beside it (on a loaded machine mostly the wait for the tracer to be scheduled); the entry probe with the batching consumer,
  ${meta.ptrace ? `${meta.ptrace.calls} calls per run, ${meta.ptrace.runs} runs, measured ${meta.ptrace.date} at commit ${meta.ptrace.commit} (load ${meta.ptrace.load})` : 'not run'}; "ours/kernel" compares
  that CPU time with the kernel's uprobe per hit.${kernelNote}

## The entry kinds

Same source (bench/uprobe/target.c), one build per kind (bench/uprobe/Makefile):

| kind | build | first instruction of bench_fn |
|---|---|---|
${kinds}
`;
}
