// Test helpers: build fixtures with the project's toolchain, run the CLI, watch kernel objects.
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
export const BUILD = path.join(ROOT, 'test', 'build');
export const CLI = path.join(ROOT, 'bin', 'wasm-bpf.js');
export const FIXTURES = path.join(ROOT, 'test', 'fixtures');
export const GUEST_INCLUDE = path.join(ROOT, 'src', 'guest');

fs.mkdirSync(BUILD, { recursive: true });

function newer(out: string, ...inputs: string[]): boolean {
  if (!fs.existsSync(out)) return false;
  const t = fs.statSync(out).mtimeMs;
  return inputs.every((i) => fs.statSync(i).mtimeMs <= t);
}

export function buildBpf(src: string, out: string, defines: string[] = ['-D__TARGET_ARCH_x86']): string {
  if (!newer(out, src)) {
    execFileSync('clang-16', ['-g', '-O2', '-target', 'bpf', ...defines, '-I', `/usr/include/${process.arch === 'arm64' ? 'aarch64' : 'x86_64'}-linux-gnu`, '-I', path.join(ROOT, 'matrix', 'build'), '-c', src, '-o', out]);
  }
  return out;
}

/** writes a C header holding the bytes of `file` as `name[]` and `name_len` */
export function embed(file: string, name: string, out: string): string {
  if (!newer(out, file)) {
    const bytes = fs.readFileSync(file);
    const rows: string[] = [];
    for (let i = 0; i < bytes.length; i += 16) rows.push(Array.from(bytes.subarray(i, i + 16), (b) => `0x${b.toString(16).padStart(2, '0')}`).join(','));
    fs.writeFileSync(out, `static unsigned char ${name}[] __attribute__((aligned(8))) = {\n${rows.join(',\n')}\n};\nstatic unsigned int ${name}_len = ${bytes.length};\n`);
  }
  return out;
}

export function buildGuest(src: string, out: string, extra: string[] = [], deps: string[] = []): string {
  if (!newer(out, src, path.join(GUEST_INCLUDE, 'libbpf-wasm.h'), ...deps)) {
    execFileSync('clang-16', [
      '--target=wasm32-wasi', '--sysroot=/usr', '-O2', '-I', GUEST_INCLUDE, '-I', BUILD, src, '-o', out,
      '-Wl,--allow-undefined,--export-table', '-Wl,--strip-debug', ...extra,
    ]);
  }
  return out;
}

/** the ABI test guest (test/fixtures/abi.c) with probe.bpf.o embedded */
export function abiGuest(variant: 'both' | 'i32' = 'both'): string {
  const obj = buildBpf(path.join(FIXTURES, 'probe.bpf.c'), path.join(BUILD, 'probe.bpf.o'));
  const hdr = embed(obj, 'probe_obj', path.join(BUILD, 'probe_obj.h'));
  // 'i32': map_operate imported with i32 pointers only (the kernel backend serves it from C)
  return variant === 'i32'
    ? buildGuest(path.join(FIXTURES, 'abi.c'), path.join(BUILD, 'abi-i32.wasm'), ['-DNO_OP64'], [hdr])
    : buildGuest(path.join(FIXTURES, 'abi.c'), path.join(BUILD, 'abi.wasm'), [], [hdr]);
}

export interface CliResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

export function runCli(args: string[], opts: { timeout?: number; env?: NodeJS.ProcessEnv } = {}): CliResult {
  const r = spawnSync(process.execPath, [CLI, ...args], {
    encoding: 'utf8',
    timeout: opts.timeout ?? 60_000,
    env: opts.env ?? process.env,
  });
  return { code: r.status, signal: r.signal, stdout: r.stdout, stderr: r.stderr };
}

/** `key=value` pairs from lines like `a=1 b=2` */
export function kv(text: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const line of text.split('\n')) {
    for (const m of line.matchAll(/([A-Za-z0-9_]+)=(\S*)/g)) out[m[1]!] = m[2]!;
  }
  return out;
}

import { Running } from '../matrix/harness/running.js';
export { Running, parseEvents, sleep, until, untilEvent, type AppEvent } from '../matrix/harness/running.js';

/** true as soon as `what()` holds (checked every 10 ms), false when it still does not after `ms` */
export async function pollUntil(what: () => boolean, ms: number): Promise<boolean> {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    if (what()) return true;
    await new Promise((r) => setTimeout(r, 10));
  }
  return what();
}

/** `env`: the child's whole environment */
/** the CLI started in the background; `wrap` runs it through a command (e.g. setpriv ... to change users) */
export function startCli(args: string[], opts: { env?: NodeJS.ProcessEnv; wrap?: string[] } = {}): Running {
  const argv = [...(opts.wrap ?? []), process.execPath, CLI, ...args];
  return new Running(spawn(argv[0]!, argv.slice(1), { stdio: ['ignore', 'pipe', 'pipe'], ...(opts.env ? { env: opts.env } : {}) }));
}

export interface KernelIds {
  progs: Set<number>;
  maps: Set<number>;
  links: Set<number>;
}

/** `bpftool -j KIND show`; retried: it fails when an object goes away while it walks the list (other tests run meanwhile) */
function bpftoolShow(kind: 'prog' | 'map' | 'link'): Array<{ id: number; map_ids?: number[] }> {
  for (let attempt = 1; ; attempt++) {
    try {
      return JSON.parse(execFileSync('bpftool', ['-j', kind, 'show'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] }) || '[]') as Array<{ id: number; map_ids?: number[] }>;
    } catch (err) {
      if (attempt >= 5) throw err;
    }
  }
}

function ids(kind: 'prog' | 'map' | 'link'): Set<number> {
  return new Set(bpftoolShow(kind).map((x) => x.id));
}

/** every BPF program, map and link id in the kernel now */
export function kernelIds(): KernelIds {
  return { progs: ids('prog'), maps: ids('map'), links: ids('link') };
}

/**
 * ids held by processes that are not this checkout's (another checkout's tests may run on the same kernel
 * at the same time): every process whose command line does not name ROOT, read from /proc/PID/fdinfo
 */
function foreignHeld(): KernelIds {
  const held: KernelIds = { progs: new Set(), maps: new Set(), links: new Set() };
  for (const pid of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(pid) || Number(pid) === process.pid) continue;
    try {
      if (fs.readFileSync(`/proc/${pid}/cmdline`, 'latin1').includes(ROOT)) continue;
      for (const fd of fs.readdirSync(`/proc/${pid}/fdinfo`)) {
        const info = fs.readFileSync(`/proc/${pid}/fdinfo/${fd}`, 'latin1');
        for (const m of info.matchAll(/^(prog|map|link)_id:\s*(\d+)/gm)) held[`${m[1] as 'prog' | 'map' | 'link'}s`].add(Number(m[2]));
      }
    } catch {
      // the process ended meanwhile, or is not ours to read
    }
  }
  // the maps a foreign program uses are held through it
  for (const p of bpftoolShow('prog')) if (held.progs.has(p.id)) for (const m of p.map_ids ?? []) held.maps.add(m);
  return held;
}

/** ids present now that were not in `before`, less those only other checkouts' processes hold */
export function leakedSince(before: KernelIds): { progs: number[]; maps: number[]; links: number[] } {
  const now = kernelIds();
  const foreign = foreignHeld();
  const diff = (a: Set<number>, b: Set<number>, f: Set<number>): number[] => [...a].filter((x) => !b.has(x) && !f.has(x));
  return {
    progs: diff(now.progs, before.progs, foreign.progs),
    maps: diff(now.maps, before.maps, foreign.maps),
    links: diff(now.links, before.links, foreign.links),
  };
}

/** waits until no object created since `before` remains (the kernel frees them asynchronously) */
export async function settledLeaks(before: KernelIds, ms = 3000): Promise<{ progs: number[]; maps: number[]; links: number[] }> {
  const deadline = Date.now() + ms;
  for (;;) {
    const l = leakedSince(before);
    if ((l.progs.length === 0 && l.maps.length === 0 && l.links.length === 0) || Date.now() > deadline) return l;
    await new Promise((r) => setTimeout(r, 100));
  }
}

export function ensureMounts(): void {
  if (!fs.existsSync('/sys/kernel/tracing/events')) spawnSync('mount', ['-t', 'tracefs', 'nodev', '/sys/kernel/tracing']);
}

/** the environment of uid 65534's runs: a HOME it may write, and not tap's NODE_OPTIONS (its process-info hook
 *  would write into .tap/ at exit: EACCES) */
export function nobodyEnv(): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env, HOME: '/tmp' };
  delete env['NODE_OPTIONS'];
  return env;
}
