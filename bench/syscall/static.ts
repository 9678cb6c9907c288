// The ptrace tier's syscall tracepoints (native/agent/ptrace/sys.c), measured end to end: matrix's opensnoop
// (sys_enter_openat + sys_exit_openat, unchanged) over a statically linked loop (static-loop.c), on the kernel
// backend (the reference) and on the userspace backend's ptrace tier, launched (a seccomp RET_TRACE filter for
// openat only) and joined (every syscall stops: PTRACE_SYSCALL). Two loops: openat+close (openat traced: close is
// an untraced syscall in the same loop) and getpid (untraced while openat is traced: what the filter costs
// everything else). Rounds interleave the cells; each cell's added cost is paired with the untraced run of its
// round. Writes bench/syscall/STATIC.md. Run as root (the kernel rows): node --import=tsx bench/syscall/static.ts
import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const HERE = path.dirname(fileURLToPath(import.meta.url));
const ROOT = path.resolve(HERE, '..', '..');
const CLI = path.join(ROOT, 'bin', 'wasm-bpf.js');
const APP = path.join(ROOT, 'matrix', 'build', 'opensnoop.wasm');
const OUT = path.join(ROOT, 'bench', 'build', 'syscall-static');
const LOOP = path.join(OUT, 'static-loop');
const ROUNDS = Number(process.env['ROUNDS'] ?? 5);
const N: Record<Loop, number> = { openat: 3000, getpid: 50000 };
const JOINED_N: Record<Loop, number> = { openat: 1000, getpid: 3000 };

type Loop = 'openat' | 'getpid';
type Cell = 'untraced' | 'kernel' | 'seccomp' | 'joined';
interface Sample { wall: number; cpu: number; tracer?: number }

function parse(stdout: string, what: string): Sample {
  const m = /calls (\d+) wall_ns (\d+) cpu_ns (\d+)/.exec(stdout);
  if (!m) throw new Error(`${what}: no result line in ${JSON.stringify(stdout.slice(-400))}`);
  const n = Number(m[1]);
  return { wall: Number(m[2]) / n, cpu: Number(m[3]) / n };
}

function launched(loop: Loop, backend: string): Sample {
  const args = backend === 'none' ? [LOOP, loop, String(N[loop])] : [process.execPath, CLI, 'run', '--backend', backend, '--verbose', APP, '-j', '--', LOOP, loop, String(N[loop])];
  const r = spawnSync(args[0]!, args.slice(1), { encoding: 'utf8', timeout: 300_000, maxBuffer: 64 << 20 });
  if (r.status !== 0) throw new Error(`${args.join(' ')}: status ${r.status}: ${r.stderr}`);
  const s = parse(r.stdout, `${loop} ${backend}`);
  const t = /(\d+) traced syscalls \(([^)]*\)?)\), (\d+) ns of the tracer's CPU per traced syscall/.exec(r.stderr);
  if (t) s.tracer = Number(t[3]); // per program run: an openat's enter and exit are two
  return s;
}

async function joined(loop: Loop): Promise<Sample> {
  const target = spawn(LOOP, [loop, String(JOINED_N[loop]), '-w'], { stdio: ['pipe', 'pipe', 'inherit'] });
  let said = '';
  target.stdout.setEncoding('utf8').on('data', (d: string) => (said += d));
  const run = spawn(process.execPath, [CLI, 'run', '--backend', 'userspace', '--pid', String(target.pid), APP, '-j', '-t', '600'], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '', err = '';
  run.stdout.setEncoding('utf8').on('data', (d: string) => (out += d));
  run.stderr.setEncoding('utf8').on('data', (d: string) => (err += d));
  const until = async (f: () => boolean, ms: number): Promise<void> => {
    const end = Date.now() + ms;
    while (!f()) {
      if (Date.now() > end) throw new Error(`joined ${loop}: timed out (${err})`);
      await new Promise((r) => setTimeout(r, 20));
    }
  };
  await until(() => out.includes('"event":"attached"'), 60_000);
  target.stdin.write('g');
  await until(() => said.includes('calls '), 300_000);
  const ended = new Promise((r) => run.on('close', r));
  run.kill('SIGINT');
  await ended;
  target.stdin.end();
  return parse(said, `joined ${loop}`);
}

const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
};
const fmt = (ns: number): string => (Math.abs(ns) >= 1000 ? `${(ns / 1000).toFixed(2)} us` : `${Math.round(ns)} ns`);

async function main(): Promise<void> {
  if (process.getuid?.() !== 0) throw new Error('run as root: the kernel backend is the reference');
  fs.mkdirSync(OUT, { recursive: true });
  const cc = spawnSync('gcc', ['-O2', '-static', path.join(HERE, 'static-loop.c'), '-o', LOOP], { encoding: 'utf8' });
  if (cc.status !== 0) throw new Error(cc.stderr);
  const t0 = Date.now();
  const load0 = os.loadavg().map((x) => x.toFixed(2)).join(' ');
  const samples: Record<string, Sample[]> = {};
  const add = (k: string, s: Sample): void => void (samples[k] ??= []).push(s);
  for (let r = 0; r < ROUNDS; r++) {
    for (const loop of ['openat', 'getpid'] as const) {
      add(`${loop}/untraced`, launched(loop, 'none'));
      add(`${loop}/kernel`, launched(loop, 'linux'));
      add(`${loop}/seccomp`, launched(loop, 'userspace'));
      add(`${loop}/joined`, await joined(loop));
      process.stderr.write(`round ${r + 1}/${ROUNDS} ${loop} done\n`);
    }
  }
  const rows: string[] = [];
  const names: Record<Cell, string> = {
    untraced: 'untraced (the loop alone)',
    kernel: 'kernel backend (tracepoint programs, root)',
    seccomp: 'ptrace tier, launched: seccomp RET_TRACE for openat only',
    joined: 'ptrace tier, joined: PTRACE_SYSCALL (every syscall stops)',
  };
  for (const loop of ['openat', 'getpid'] as const) {
    rows.push('', loop === 'openat' ? '### openat()+close() loop (openat traced; close untraced in the same loop)' : '### getpid() loop (untraced: openat is the traced number)', '');
    rows.push('| mechanism | wall per iteration (median [min - max]) | added wall | CPU of the target per iteration | added CPU | tracer CPU per program run |', '|---|---:|---:|---:|---:|---:|');
    const base = samples[`${loop}/untraced`]!;
    for (const cell of ['untraced', 'kernel', 'seccomp', 'joined'] as const) {
      const s = samples[`${loop}/${cell}`]!;
      const walls = s.map((x) => x.wall), cpus = s.map((x) => x.cpu);
      const addW = cell === 'untraced' ? '-' : fmt(median(s.map((x, i) => x.wall - base[i]!.wall)));
      const addC = cell === 'untraced' ? '-' : fmt(median(s.map((x, i) => x.cpu - base[i]!.cpu)));
      const tr = s.every((x) => x.tracer !== undefined) ? fmt(median(s.map((x) => x.tracer!))) : '-';
      rows.push(`| ${names[cell]} | ${fmt(median(walls))} [${fmt(Math.min(...walls))} - ${fmt(Math.max(...walls))}] | ${addW} | ${fmt(median(cpus))} | ${addC} | ${tr} |`);
    }
  }
  const rev = spawnSync('git', ['-C', ROOT, 'rev-parse', '--short', 'HEAD'], { encoding: 'utf8' }).stdout.trim();
  const md = [
    '# Syscall tracepoints in static binaries: the ptrace tier, measured (issue 18)',
    '',
    `Generated by \`node --import=tsx bench/syscall/static.ts\` on ${new Date().toISOString()} (${Math.round((Date.now() - t0) / 1000)} s). Do not edit by hand: rerun it.`,
    '',
    `- kernel ${os.release()}; ${os.cpus()[0]?.model ?? '?'} x ${os.cpus().length}; load average at the start and the end: ${load0} / ${os.loadavg().map((x) => x.toFixed(2)).join(' ')}`,
    `- wasm-bpf commit ${rev}; ${ROUNDS} rounds, every cell once per round, interleaved; medians [min - max] over the rounds`,
    `- matrix's opensnoop (sys_enter_openat and sys_exit_openat, a ring record per open) over \`static-loop\` (gcc -static, raw \`syscall\`` +
      ` instructions): ${N.openat} openat+close or ${N.getpid} getpid per launched run; a joined run ${JOINED_N.openat} / ${JOINED_N.getpid}.`,
    '- **wall** is the loop\'s wall-clock time per iteration (the traced thread waits for the tracer at each stop: on a shared 2-CPU machine this',
    '  includes the scheduling of the tracer and the host); **CPU of the target** is the loop process\'s own CPU time',
    '  (`CLOCK_PROCESS_CPUTIME_ID`: its stops, the kernel\'s tracepoint and program); **added** = the median over rounds of (cell - the',
    '  untraced run of the same round). **tracer CPU** is wbpf-ptrace\'s own CPU time (getrusage) over the whole run divided by the',
    '  programs it ran (an openat runs two: enter and exit), from its `--verbose` line; the joined tracer prints none.',
    ...rows,
    '',
  ].join('\n');
  fs.writeFileSync(path.join(HERE, 'STATIC.md'), md);
  process.stdout.write(md);
}

main().catch((e: unknown) => {
  process.stderr.write(`${e instanceof Error ? e.stack : String(e)}\n`);
  process.exit(1);
});
