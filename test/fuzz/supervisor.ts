// The fuzz supervisor: runs the driver (./driver.ts) in a child process, restarts it after a host crash
// (the child died by a signal, or exited while a mutant ran) or a hang (no answer within the per-mutant
// timeout), saves each such mutant under test/fuzz/cases/ (the bytes, and a .json with the seed, the
// index, the input, the changes and what happened), and compares kernel objects (bpftool prog/map/link)
// and the content of /sys/fs/bpf before and after.
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import readline from 'node:readline';
import { fileURLToPath } from 'node:url';
import { generate, type Kind } from './jobs.js';
import { execFileSync } from 'node:child_process';
import { kernelIds, type KernelIds } from '../helpers.js';

const HERE = path.dirname(fileURLToPath(import.meta.url));
export const CASES = path.join(HERE, 'cases');

export interface FuzzOptions {
  kind: Kind;
  /** generated mutants: seed, count and the well-formed inputs they start from */
  seed?: number;
  count?: number;
  inputs?: string[];
  /** or these files (saved cases), run as they are */
  files?: string[];
  /** per-mutant timeout (a hang) */
  timeoutMs?: number;
  /** modules: how long each runs before it is stopped */
  runMs?: number;
  /** stop starting mutants after this long (the figures then count what ran) */
  budgetMs?: number;
  /** save crashes and hangs as cases (default: true for generated mutants) */
  save?: boolean;
  /** load objects without the project's validation */
  raw?: boolean;
  log?: (line: string) => void;
  /** log a progress line every this many mutants */
  progressEvery?: number;
}

export interface Failure {
  index: number;
  what: 'crash' | 'hang' | 'unclean';
  detail: string;
  input?: string;
  ops?: string[];
  saved?: string;
}

export interface FuzzFigures {
  kind: Kind;
  seed: number | undefined;
  run: number;
  errors: number;
  ok: number;
  unclean: number;
  crashes: number;
  hangs: number;
  failures: Failure[];
  leaked: { progs: number[]; maps: number[]; links: number[]; bpffs: string[] };
  ms: number;
  /** error messages seen, most frequent first (the first words of each) */
  topErrors: [string, number][];
}

function bpffs(): string[] {
  const out: string[] = [];
  const walk = (d: string): void => {
    let names: string[];
    try {
      names = fs.readdirSync(d);
    } catch {
      return;
    }
    for (const n of names) {
      const p = path.join(d, n);
      out.push(p);
      try {
        if (fs.lstatSync(p).isDirectory()) walk(p);
      } catch {
        // removed meanwhile
      }
    }
  };
  walk('/sys/fs/bpf');
  // the kernel's own entries of every bpffs mount (bpf_preload), which appear when anyone mounts one
  return out.filter((p) => !/\/(maps|progs)\.debug$/.test(p));
}

/**
 * kernel objects created since `before` that no live process holds (by an fd, or through a program it
 * holds): what a run left behind once its drivers are gone. Objects of processes still running (other
 * checkouts' tests, a concurrent run of this one) are theirs, not leaks.
 */
function unheld(before: KernelIds): { progs: number[]; maps: number[]; links: number[] } {
  const now = kernelIds();
  const held: KernelIds = { progs: new Set(), maps: new Set(), links: new Set() };
  for (const pid of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(pid)) continue;
    try {
      for (const fd of fs.readdirSync(`/proc/${pid}/fdinfo`)) {
        const info = fs.readFileSync(`/proc/${pid}/fdinfo/${fd}`, 'latin1');
        for (const m of info.matchAll(/^(prog|map|link)_id:\s*(\d+)/gm)) held[`${m[1] as 'prog' | 'map' | 'link'}s`].add(Number(m[2]));
      }
    } catch {
      // ended meanwhile
    }
  }
  const progs = JSON.parse(execFileSync('bpftool', ['-j', 'prog', 'show'], { encoding: 'utf8' }) || '[]') as Array<{ id: number; map_ids?: number[] }>;
  for (const p of progs) if (held.progs.has(p.id)) for (const m of p.map_ids ?? []) held.maps.add(m);
  const links = JSON.parse(execFileSync('bpftool', ['-j', 'link', 'show'], { encoding: 'utf8' }) || '[]') as Array<{ id: number; prog_id?: number }>;
  for (const l of links) if (held.links.has(l.id) && l.prog_id !== undefined) held.progs.add(l.prog_id);
  for (const p of progs) if (held.progs.has(p.id)) for (const m of p.map_ids ?? []) held.maps.add(m);
  const diff = (a: Set<number>, b: Set<number>, h: Set<number>): number[] => [...a].filter((x) => !b.has(x) && !h.has(x));
  return { progs: diff(now.progs, before.progs, held.progs), maps: diff(now.maps, before.maps, held.maps), links: diff(now.links, before.links, held.links) };
}

/** waits until nothing created since `before` is left unheld (the kernel frees objects asynchronously) */
async function settledUnheld(before: KernelIds, ms: number): Promise<{ progs: number[]; maps: number[]; links: number[] }> {
  const deadline = Date.now() + ms;
  for (;;) {
    const l = unheld(before);
    if ((l.progs.length === 0 && l.maps.length === 0 && l.links.length === 0) || Date.now() > deadline) return l;
    await new Promise((r) => setTimeout(r, 200));
  }
}

function driverArgs(o: FuzzOptions, from: number, to: number): string[] {
  const args = ['--import=tsx', path.join(HERE, 'driver.ts'), '--kind', o.kind, '--run-ms', String(o.runMs ?? 150)];
  if (o.files) {
    // the driver numbers files from 0: pass the rest of the list
    args.push('--files', o.files.slice(from, to).join(','));
  } else {
    args.push('--seed', String(o.seed ?? 1), '--from', String(from), '--to', String(to), '--inputs', (o.inputs ?? []).join(','));
  }
  if (o.raw) args.push('--raw');
  return args;
}

interface DriverRun {
  /** index of the first mutant not finished (crashed, hung, or the end) */
  next: number;
  failure?: { index: number; what: 'crash' | 'hang'; detail: string };
}

/** runs the driver over [from, to) until it finishes, crashes or hangs */
function runDriver(o: FuzzOptions, from: number, to: number, onEnd: (i: number, outcome: string, msg: string) => void, deadline: number): Promise<DriverRun> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, driverArgs(o, from, to), { stdio: ['ignore', 'ignore', 'pipe', 'pipe'], cwd: path.join(HERE, '..', '..') });
    let stderr = '';
    child.stderr!.on('data', (d: Buffer) => {
      stderr = (stderr + d.toString()).slice(-4000);
    });
    let current = -1;
    let next = from;
    let hung = false;
    // the budget ran out: the driver is stopped between two mutants, which is no crash
    let stopping = false;
    let timer: NodeJS.Timeout | undefined;
    // the first mutant's budget includes the driver's start-up
    const arm = (ms: number): void => {
      clearTimeout(timer);
      timer = setTimeout(() => {
        hung = true;
        child.kill('SIGKILL');
      }, ms);
    };
    arm((o.timeoutMs ?? 10_000) + 20_000);
    const offset = o.files ? from : 0;
    const rl = readline.createInterface({ input: child.stdio[3] as NodeJS.ReadableStream });
    rl.on('line', (line) => {
      const m = /^(begin|end) (\d+)(?: (\S+) ?(.*))?$/.exec(line);
      if (!m || stopping) return;
      const i = Number(m[2]) + offset;
      if (m[1] === 'begin') {
        current = i;
        arm(o.timeoutMs ?? 10_000);
        return;
      }
      current = -1;
      next = i + 1;
      onEnd(i, m[3]!, m[4] ?? '');
      if (Date.now() > deadline) {
        stopping = true;
        clearTimeout(timer);
        child.kill('SIGKILL');
      } else arm((o.timeoutMs ?? 10_000) + 5_000);
    });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      if (stopping) {
        resolve({ next: to });
      } else if (current >= 0) {
        const what = hung ? 'hang' : 'crash';
        const detail = hung ? `no answer within ${o.timeoutMs ?? 10_000} ms` : `driver exited (${signal ?? `code ${code}`}) ${stderr.trim().split('\n').slice(-6).join(' | ')}`;
        resolve({ next: current + 1, failure: { index: current, what, detail } });
      } else if (next < to && !(Date.now() > deadline) && (signal || code !== 0)) {
        // died between mutants (start-up): count it against the next one
        resolve({ next: next + 1, failure: { index: next, what: hung ? 'hang' : 'crash', detail: `driver exited outside a mutant (${signal ?? `code ${code}`}) ${stderr.trim().split('\n').slice(-6).join(' | ')}` } });
      } else {
        resolve({ next: Date.now() > deadline ? to : next });
      }
    });
  });
}

/** runs mutants (or saved cases) through the driver; returns the figures */
export async function fuzz(o: FuzzOptions): Promise<FuzzFigures> {
  const t0 = Date.now();
  const total = o.files ? o.files.length : (o.count ?? 0);
  const deadline = o.budgetMs ? t0 + o.budgetMs : Number.POSITIVE_INFINITY;
  const save = o.save ?? (!o.files && !o.raw);
  const log = o.log ?? (() => {});
  const figures: FuzzFigures = {
    kind: o.kind, seed: o.files ? undefined : (o.seed ?? 1), run: 0, errors: 0, ok: 0, unclean: 0, crashes: 0, hangs: 0,
    failures: [], leaked: { progs: [], maps: [], links: [], bpffs: [] }, ms: 0, topErrors: [],
  };
  const errorCounts = new Map<string, number>();
  const beforeIds = kernelIds();
  const beforeFs = new Set(bpffs());
  const inputs = (o.inputs ?? []).map((f) => new Uint8Array(fs.readFileSync(f)));
  const onEnd = (i: number, outcome: string, msg: string): void => {
    figures.run++;
    if (o.progressEvery && figures.run % o.progressEvery === 0) {
      log(`fuzz: ${o.kind}: ${figures.run} run, ${figures.crashes} crashes, ${figures.hangs} hangs, ${figures.unclean} unclean (${((figures.run / (Date.now() - t0)) * 1000).toFixed(1)}/s)`);
    }
    if (outcome === 'ok') figures.ok++;
    else if (outcome === 'error') {
      figures.errors++;
      const key = msg.replace(/\d+/g, 'N').slice(0, 90);
      errorCounts.set(key, (errorCounts.get(key) ?? 0) + 1);
    } else {
      figures.unclean++;
      const f: Failure = { index: i, what: 'unclean', detail: msg };
      if (!o.files) Object.assign(f, describe(o, i, inputs));
      figures.failures.push(f);
      log(`fuzz: ${o.kind} #${i}: unclean error: ${msg}`);
    }
  };
  let from = 0;
  while (from < total && Date.now() <= deadline) {
    const r = await runDriver(o, from, total, onEnd, deadline);
    if (r.failure) {
      figures.run++;
      if (r.failure.what === 'crash') figures.crashes++;
      else figures.hangs++;
      const f: Failure = { ...r.failure };
      if (o.files) f.input = o.files[r.failure.index];
      else Object.assign(f, describe(o, r.failure.index, inputs));
      if (save && !o.files) f.saved = saveCase(o, f, inputs);
      figures.failures.push(f);
      log(`fuzz: ${o.kind} #${f.index}: HOST ${f.what.toUpperCase()}: ${f.detail}${f.saved ? ` (saved ${path.relative(process.cwd(), f.saved)})` : ''}`);
    }
    from = r.next;
  }
  const leaks = await settledUnheld(beforeIds, 5000);
  figures.leaked = { ...leaks, bpffs: bpffs().filter((p) => !beforeFs.has(p)) };
  figures.ms = Date.now() - t0;
  figures.topErrors = [...errorCounts].sort((a, b) => b[1] - a[1]).slice(0, 12);
  return figures;
}

function describe(o: FuzzOptions, i: number, inputs: Uint8Array[]): { input: string; ops: string[] } {
  const g = generate(o.kind, o.seed ?? 1, i, inputs, o.inputs ?? []);
  return { input: path.basename(g.input), ops: g.ops };
}

/** writes cases/<kind>-<seed>-<index>.elf (.wasm for modules; not .o, which git ignores) and its .json */
function saveCase(o: FuzzOptions, f: Failure, inputs: Uint8Array[]): string {
  fs.mkdirSync(CASES, { recursive: true });
  const g = generate(o.kind, o.seed ?? 1, f.index, inputs, o.inputs ?? []);
  const base = path.join(CASES, `${o.kind === 'objects' ? 'object' : 'module'}-${o.seed ?? 1}-${f.index}`);
  const file = `${base}${o.kind === 'objects' ? '.elf' : '.wasm'}`;
  fs.writeFileSync(file, g.bytes);
  fs.writeFileSync(
    `${base}.json`,
    `${JSON.stringify({ kind: o.kind, seed: o.seed ?? 1, index: f.index, input: path.basename(g.input), ops: g.ops, outcome: f.what, detail: f.detail, found: new Date().toISOString() }, null, 2)}\n`,
  );
  return file;
}

export function formatFigures(f: FuzzFigures): string {
  const leaked = f.leaked.progs.length + f.leaked.maps.length + f.leaked.links.length + f.leaked.bpffs.length;
  const lines = [
    `${f.kind}: ${f.run} mutants${f.seed !== undefined ? ` (seed ${f.seed})` : ''} in ${(f.ms / 1000).toFixed(1)} s: ` +
      `${f.errors} clean errors, ${f.ok} succeeded, ${f.unclean} unclean errors, ${f.crashes} host crashes, ${f.hangs} hangs, ` +
      `${leaked} leaked kernel objects${leaked ? ` (progs ${f.leaked.progs.join(',')} maps ${f.leaked.maps.join(',')} links ${f.leaked.links.join(',')} bpffs ${f.leaked.bpffs.join(',')})` : ''}`,
  ];
  for (const x of f.failures) lines.push(`  #${x.index} ${x.what}: ${x.detail}${x.input ? ` [${x.input}${x.ops ? `: ${x.ops.join('; ')}` : ''}]` : ''}`);
  return lines.join('\n');
}
