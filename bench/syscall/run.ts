// The syscall bench (issue 18): tight loops of getppid, openat+close, getpid (untraced), libc's syscall(getppid) and a raw
// `syscall` instruction in a
// target (build/sysbench), untraced, under the kernel's syscall tracepoint + a ringbuf program, and under each candidate
// userspace mechanism (C prototypes here), and under the agent itself (agent.ts: the real path, "ours"); prints the table and rewrites RESULTS.md and results.json.
//
//   node --import=tsx bench/syscall/run.ts [--rounds 7] [--calls 1000000] [--no-write] [--render] [--agent libwbpf_agent.so]
//
// --render rewrites RESULTS.md from results.json and ANALYSIS.md, measuring nothing. x86_64; the kernel rows need root.
import { execFileSync, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { runAgent } from './agent.js';
import { cells, markdown, table, MECHANISMS, type Mechanism, type Meta, type Run, type Workload } from './report.js';

const HERE = path.dirname(fileURLToPath(import.meta.url)).replace(`${path.sep}dist${path.sep}`, path.sep);
const BUILD = path.join(HERE, 'build');
const BIN = path.join(BUILD, 'sysbench');
const OBJ = path.join(BUILD, 'tp.bpf.o');
const AGENT = path.join(HERE, '..', '..', 'native', 'agent', 'build', 'libwbpf_agent.so');

const PLAN: Record<Workload, readonly Mechanism[]> = {
  getppid: MECHANISMS,
  openat: ['none', 'kernel', 'agent', 'trap', 'sud', 'seccomp-trace', 'ptrace-syscall', 'rewrite'],
  getpid: MECHANISMS,
  'raw-getppid': ['none', 'kernel', 'agent', 'trap', 'rewrite'],
  'asm-getppid': ['none', 'kernel', 'agent', 'rewrite'],
  'raw-getpid': ['none', 'kernel', 'agent', 'rewrite'],
};

interface Options { rounds: number; calls: number; write: boolean; render: boolean; agent: string }

function parseOptions(argv: string[]): Options {
  const o: Options = { rounds: 7, calls: 1_000_000, write: true, render: false, agent: AGENT };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === '--rounds') o.rounds = Number(argv[++i]);
    else if (a === '--calls') o.calls = Number(argv[++i]);
    else if (a === '--no-write') o.write = false;
    else if (a === '--render') o.render = true;
    else if (a === '--agent') o.agent = path.resolve(argv[++i] ?? '');
    else throw new Error(`unknown option '${a}' (--rounds N, --calls N, --no-write, --render, --agent LIB)`);
  }
  return o;
}

/** fewer calls where one costs microseconds, so every cell takes about as long */
function callsFor(m: Mechanism, w: Workload, calls: number): number {
  const slow = m === 'seccomp-trace' || m === 'ptrace-syscall' ? 10 : m === 'sud' || (m === 'trap' && w !== 'getpid') || (m === 'rewrite' && w === 'asm-getppid') ? 4 : 1;
  return Math.max(1000, Math.round(calls / slow / (w === 'openat' ? 4 : 1)));
}

function parse(line: string): Run {
  const kv = Object.fromEntries(line.trim().split(/\s+/).map((p) => p.split('=') as [string, string]));
  const w = kv.workload === 'openat+close' ? 'openat' : (kv.workload as Workload);
  return { mechanism: kv.mechanism as Mechanism, workload: w, calls: Number(kv.calls), threadCpuNs: Number(kv.thread_cpu_ns), wallNs: Number(kv.wall_ns), tracerCpuNs: Number(kv.tracer_cpu_ns), records: Number(kv.records) };
}

function runOne(m: Mechanism, w: Workload, calls: number, asNobody = false): Run {
  const args = [m, w, String(calls), OBJ];
  const r = asNobody
    ? spawnSync('setpriv', ['--reuid', '65534', '--regid', '65534', '--clear-groups', BIN, ...args], { encoding: 'utf8', timeout: 120_000 })
    : spawnSync(BIN, args, { encoding: 'utf8', timeout: 120_000, cwd: BUILD });
  if (r.status !== 0) throw new Error((r.stderr || `exit ${r.status}`).trim());
  return parse(r.stdout);
}

function unprivileged(): Record<string, string> {
  const out: Record<string, string> = {};
  for (const m of MECHANISMS) {
    if (m === 'none' || m === 'sud-allow') continue;
    if (m === 'agent') { out[m] = 'yes (the CLI runs it as uid 65534: test/userspace-syscalls.test.ts)'; continue; }
    try {
      const r = runOne(m, 'getppid', 2000, true);
      out[m] = r.records === r.calls ? 'yes' : `records ${r.records} of ${r.calls}`;
    } catch (e) {
      out[m] = `no (${(e as Error).message.replace(/^sysbench: /, '')})`;
    }
  }
  return out;
}

async function main(): Promise<void> {
  const o = parseOptions(process.argv.slice(2));
  const results = path.join(HERE, 'results.json');
  const analysisFile = path.join(HERE, 'ANALYSIS.md');
  const analysis = fs.existsSync(analysisFile) ? fs.readFileSync(analysisFile, 'utf8') : '';
  if (o.render) {
    const saved = JSON.parse(fs.readFileSync(results, 'utf8')) as { meta: Meta; runs: Run[] };
    fs.writeFileSync(path.join(HERE, 'RESULTS.md'), markdown(cells(saved.runs), saved.meta, analysis));
    return;
  }
  if (os.arch() !== 'x64') throw new Error('the syscall bench\'s prototypes are x86_64 only');
  execFileSync('make', ['-s', '-C', HERE], { stdio: 'inherit' });
  execFileSync('make', ['-s', '-C', path.join(HERE, '..', '..', 'native', 'agent')], { stdio: 'inherit' });
  const root = process.getuid?.() === 0;
  const t0 = Date.now();
  const loadStart = os.loadavg().map((x) => x.toFixed(2)).join(' ');
  const runs: Run[] = [];
  for (let round = 0; round < o.rounds; round++) {
    for (const [w, ms] of Object.entries(PLAN) as [Workload, readonly Mechanism[]][]) {
      for (const m of ms) {
        if (m === 'kernel' && !root) continue;
        const calls = callsFor(m, w, o.calls);
        runs.push({ ...(m === 'agent' ? await runAgent(BIN, o.agent, w, calls) : runOne(m, w, calls)), round });
      }
    }
    process.stderr.write(`round ${round + 1}/${o.rounds} done (${((Date.now() - t0) / 1000).toFixed(0)} s)\n`);
  }
  const meta: Meta = {
    date: new Date().toISOString(),
    seconds: (Date.now() - t0) / 1000,
    kernel: os.release(),
    cpu: `${os.cpus()[0]?.model ?? '?'} x ${os.cpus().length}`,
    loadStart,
    loadEnd: os.loadavg().map((x) => x.toFixed(2)).join(' '),
    commit: execFileSync('git', ['rev-parse', '--short', 'HEAD'], { cwd: HERE, encoding: 'utf8' }).trim(),
    rounds: o.rounds,
    unprivileged: root ? unprivileged() : {},
  };
  const cs = cells(runs);
  process.stdout.write(table(cs, meta));
  if (o.write) {
    fs.writeFileSync(results, `${JSON.stringify({ meta, runs }, null, 1)}\n`);
    fs.writeFileSync(path.join(HERE, 'RESULTS.md'), markdown(cs, meta, analysis));
  }
}

await main();
