// The syscall bench's report: medians of the runs per (mechanism, workload), the added cost per call against the
// untraced process, and RESULTS.md's tables. Pure: results in, text out.

export const MECHANISMS = ['none', 'kernel', 'agent', 'trap', 'sud', 'sud-allow', 'seccomp-trace', 'ptrace-syscall', 'rewrite'] as const;
export type Mechanism = (typeof MECHANISMS)[number];
export const WORKLOADS = ['getppid', 'openat', 'getpid', 'raw-getppid', 'asm-getppid', 'raw-getpid'] as const;
export type Workload = (typeof WORKLOADS)[number];

export const LABEL: Record<Mechanism, string> = {
  none: 'untraced process',
  kernel: 'kernel tracepoint + ringbuf program (root)',
  trap: '(a) seccomp RET_TRAP + SIGSYS handler',
  sud: '(b) Syscall User Dispatch, selector BLOCK',
  'sud-allow': '(b) Syscall User Dispatch on, selector ALLOW',
  'seccomp-trace': '(c) seccomp RET_TRACE + ptrace tracer',
  'ptrace-syscall': '(d) PTRACE_SYSCALL tracer',
  rewrite: '(e) rewritten libc sites + (a) as catch-all',
  agent: 'ours: the agent (rewritten site + the program in its VM)',
};

export const WORKLOAD_LABEL: Record<Workload, string> = {
  getppid: 'getppid() loop, getppid traced',
  openat: 'openat()+close() loop, openat traced',
  getpid: 'getpid() loop while getppid is traced (an untraced syscall)',
  'raw-getppid': 'syscall(SYS_getppid) loop (libc\'s syscall(): (e) rewrites it with a number check), getppid traced',
  'asm-getppid': 'a `syscall` instruction of the target\'s own code (no mechanism rewrites it: (e)\'s catch-all), getppid traced',
  'raw-getpid': 'syscall(SYS_getpid) loop while getppid is traced (an untraced number through libc\'s rewritten syscall())',
};

/** one run of the target: what sysbench prints */
export interface Run {
  mechanism: Mechanism;
  workload: Workload;
  calls: number;
  threadCpuNs: number;
  wallNs: number;
  tracerCpuNs: number;
  records: number;
  /** the round it ran in: added costs pair each run with the untraced run of its round */
  round?: number;
}

export interface Cell {
  mechanism: Mechanism;
  workload: Workload;
  runs: number;
  /** CPU ns per call (the looping thread + the tracer's, for ptrace rows): median, min, max */
  ns: [number, number, number];
  /** ns per call more than the untraced process: the median, over the rounds, of (this run - the untraced run of the same round) */
  added: number;
  records: string;
}

export interface Meta {
  date: string;
  seconds: number;
  kernel: string;
  cpu: string;
  loadStart: string;
  loadEnd: string;
  commit: string;
  rounds: number;
  /** mechanism -> whether uid 65534 can use it ('yes' or the refusal) */
  unprivileged: Record<string, string>;
}

const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
};

export function cells(runs: readonly Run[]): Cell[] {
  const out: Cell[] = [];
  const perCall = (r: Run): number => (r.threadCpuNs + r.tracerCpuNs) / r.calls;
  for (const workload of WORKLOADS) {
    const base = runs.filter((r) => r.workload === workload && r.mechanism === 'none').map(perCall);
    const b = base.length ? median(base) : NaN;
    for (const mechanism of MECHANISMS) {
      const rs = runs.filter((r) => r.workload === workload && r.mechanism === mechanism);
      if (!rs.length) continue;
      const ns = rs.map(perCall);
      const paired = rs.map((r) => {
        const u = runs.find((x) => x.workload === workload && x.mechanism === 'none' && x.round !== undefined && x.round === r.round);
        return u ? perCall(r) - perCall(u) : perCall(r) - b;
      });
      const traced = mechanism !== 'none' && workload !== 'getpid' && workload !== 'raw-getpid' && mechanism !== 'sud-allow';
      const all = rs.every((r) => r.records === r.calls);
      out.push({
        mechanism,
        workload,
        runs: rs.length,
        ns: [median(ns), Math.min(...ns), Math.max(...ns)],
        added: median(paired),
        records: !traced ? (rs.every((r) => r.records === 0) ? 'none' : 'some!') : all ? 'all' : `${Math.min(...rs.map((r) => r.records))} of ${rs[0]!.calls}`,
      });
    }
  }
  return out;
}

const f = (n: number): string => (Math.abs(n) >= 1000 ? `${(n / 1000).toFixed(2)} us` : `${n.toFixed(0)} ns`);

export function verdict(c: Cell, all: readonly Cell[]): string {
  if (c.mechanism === 'none') return '-';
  const base = all.find((x) => x.workload === c.workload && x.mechanism === 'none')!;
  if (c.workload === 'getpid' || c.workload === 'raw-getpid' || c.mechanism === 'sud-allow') {
    const pct = (100 * c.added) / base.ns[0];
    return `untraced +${pct.toFixed(1)} % (target <= 5 %: ${pct <= 5 ? '**PASS**' : '**MISS**'})`;
  }
  if (c.mechanism === 'kernel') return 'the reference';
  if (c.records !== 'all') return `misses traced calls (records: ${c.records})`;
  const k = all.find((x) => x.workload === c.workload && x.mechanism === 'kernel');
  if (!k || k.added <= 0) return '-';
  const ratio = c.added / k.added;
  return `${ratio.toFixed(2)}x the kernel's added cost (target <= 1.25x: ${ratio <= 1.25 ? '**PASS**' : '**MISS**'})`;
}

export function table(cs: readonly Cell[], meta: Meta): string {
  const lines: string[] = [];
  for (const w of WORKLOADS) {
    const rows = cs.filter((c) => c.workload === w);
    if (!rows.length) continue;
    lines.push(`### ${WORKLOAD_LABEL[w]}`, '', '| mechanism | CPU per call: median [min - max] | added per call | records | uid 65534 | verdict |', '|---|---:|---:|---|---|---|');
    for (const c of rows) {
      lines.push(`| ${LABEL[c.mechanism]} | ${f(c.ns[0])} [${f(c.ns[1])} - ${f(c.ns[2])}] | ${c.mechanism === 'none' ? '-' : f(c.added)} | ${c.records} | ${meta.unprivileged[c.mechanism] ?? '-'} | ${verdict(c, cs)} |`);
    }
    lines.push('');
  }
  return lines.join('\n');
}

export function markdown(cs: readonly Cell[], meta: Meta, analysis: string): string {
  return [
    '# Syscall tracing mechanisms, measured (issue 18)',
    '',
    `Generated by \`node --import=tsx bench/syscall/run.ts\` on ${meta.date} (${meta.seconds.toFixed(0)} s). Do not edit by hand: rerun it.`,
    '',
    `- kernel ${meta.kernel}; ${meta.cpu}; load average at the start and the end: ${meta.loadStart} / ${meta.loadEnd}`,
    `- wasm-bpf commit ${meta.commit}; ${meta.rounds} rounds, every cell once per round, interleaved; medians [min - max] of the runs`,
    '- **CPU per call** is the looping thread\'s CPU time (`CLOCK_THREAD_CPUTIME_ID`: the kernel\'s tracepoint, program, signal',
    '  delivery and handler all run in that thread) divided by the calls, plus, for the ptrace rows, the tracer\'s CPU time',
    '  (`getrusage`) over the whole run. **added** = the median over the rounds of (this run - the untraced run of the',
    '  same loop in the same round): pairing by round cancels much of the machine\'s drifting load.',
    '- Every traced call runs the same stub: a 24-byte record into a ring a consumer thread drains every 10 ms (the',
    '  kernel rows: `bpf_ringbuf_reserve/submit` of 24 bytes, a libbpf consumer every 10 ms). The real program in the',
    '  agent costs more than the stub (the uprobe bench measures the agent\'s hit path at ~100 ns): these rows measure',
    '  the mechanism. The **ours** row is the agent\'s real path (bench/syscall/agent.ts): the untraced loop launched under',
    '  libwbpf_agent.so, the syscall attached over its channel, a program as the kernel row\'s (bpf_get_current_pid_tgid,',
    '  ringbuf reserve + submit of 24 bytes) run by the agent\'s VM at the rewritten site, the host draining every 10 ms.',
    '- **uid 65534**: the target run as `setpriv --reuid 65534 --regid 65534 --clear-groups` (2000 calls, every record).',
    '',
    table(cs, meta),
    analysis,
  ].join('\n');
}
