// The FFI libbpf path's map lookup beside the addon's and native C's, in one run (issue 19: FFI <= 1.3x
// native): `node --import=tsx bench/ffi-map.ts [--rounds R] [--n N]`. Each round runs the C baseline
// (bench/src/ffimap.c, built here with gcc and -lbpf), a JS loop through the addon's mapOp and one through
// backends/libbpf-ffi's mapOp (their order reversed every other round); medians of the rounds. Rewrites its own section of bench/RESULTS.md (between the ffi-map markers; run.ts keeps it).
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { execFileSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { loadNative, type KernelLib } from '../backends/linux/native.js';
import { ffiKernel } from '../backends/libbpf-ffi/index.js';
import { koffi } from '../backends/libbpf-ffi/library.js';

const BENCH = path.dirname(fileURLToPath(import.meta.url));
const ARRAY = 2;
const LOOKUP = 1;
const UPDATE = 2;
export const FFI_SECTION_START = '<!-- ffi-map:start -->';
export const FFI_SECTION_END = '<!-- ffi-map:end -->';

function arg(name: string, dflt: number): number {
  const i = process.argv.indexOf(name);
  return i > 0 ? Number(process.argv[i + 1]) : dflt;
}

/** an ARRAY map of `lib` holding key 7 -> 42, and a guest-like memory with the key at 0 and the value at 16 */
function setup(lib: KernelLib): { fd: number; mem: Uint8Array } {
  const fd = lib.mapCreate(ARRAY, 4, 8, 16, 'ffimap');
  const mem = new Uint8Array(new WebAssembly.Memory({ initial: 1 }).buffer);
  const dv = new DataView(mem.buffer);
  dv.setUint32(0, 7, true);
  dv.setBigUint64(16, 42n, true);
  if (lib.mapOp(UPDATE, fd, mem, 0, 16, 0) !== 0) throw new Error('update failed');
  return { fd, mem };
}

/*
 * ns per lookup of key 7 through the addon's mapOp / the FFI path's mapOp from a JS loop, each side on its
 * own ARRAY map. Two loops written out, not one loop given either function: one call site seeing both
 * would become polymorphic (V8 then neither inlines the FFI path's JavaScript nor makes the addon's fast
 * call), where a run's host calls one backend's mapOp only.
 */
function addonLoop(lib: KernelLib, n: number): number {
  const { fd, mem } = setup(lib);
  let bad = 0;
  for (let i = 0; i < n / 10; i++) bad |= lib.mapOp(LOOKUP, fd, mem, 0, 16, 0);
  const t0 = process.hrtime.bigint();
  for (let i = 0; i < n; i++) bad |= lib.mapOp(LOOKUP, fd, mem, 0, 16, 0);
  const ns = Number(process.hrtime.bigint() - t0) / n;
  lib.closeFd(fd);
  if (bad) throw new Error('a lookup failed');
  return ns;
}

function ffiLoop(lib: KernelLib, n: number): number {
  const { fd, mem } = setup(lib);
  let bad = 0;
  for (let i = 0; i < n / 10; i++) bad |= lib.mapOp(LOOKUP, fd, mem, 0, 16, 0);
  const t0 = process.hrtime.bigint();
  for (let i = 0; i < n; i++) bad |= lib.mapOp(LOOKUP, fd, mem, 0, 16, 0);
  const ns = Number(process.hrtime.bigint() - t0) / n;
  lib.closeFd(fd);
  if (bad) throw new Error('a lookup failed');
  return ns;
}

/** ns per koffi call of a C function that returns at once (memchr over 0 bytes): the FFI path's floor */
function koffiFloor(n: number): number {
  const memchr = koffi().load('libc.so.6').func('int memchr(uintptr_t s, int c, uintptr_t n)') as (s: number, c: number, len: number) => number;
  const addr = Number(koffi().address(new WebAssembly.Memory({ initial: 1 }).buffer));
  let sink = 0;
  for (let i = 0; i < n / 10; i++) sink |= memchr(addr, 0, 0);
  const t0 = process.hrtime.bigint();
  for (let i = 0; i < n; i++) sink |= memchr(addr, 0, 0);
  const ns = Number(process.hrtime.bigint() - t0) / n;
  if (sink) throw new Error('memchr over 0 bytes found something');
  return ns;
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[s.length >> 1]!;
}

function buildBaseline(): string {
  const out = path.join(os.tmpdir(), `wasm-bpf-ffimap-${process.pid}`);
  execFileSync('gcc', ['-O2', path.join(BENCH, 'src', 'ffimap.c'), '-lbpf', '-o', out], { stdio: 'pipe' });
  return out;
}

function main(): void {
  const rounds = arg('--rounds', 7);
  const n = arg('--n', 300_000);
  const bin = buildBaseline();
  const addon = loadNative();
  const ffi = ffiKernel();
  const res = { native: [] as number[], addon: [] as number[], ffi: [] as number[], floor: [] as number[] };
  try {
    for (let r = 0; r < rounds; r++) {
      // the sides' order alternates: even rounds native, addon, FFI; odd rounds FFI, addon, native
      const sides = [
        () => res.native.push(Number(/lookup_array_ns=([\d.]+)/.exec(execFileSync(bin, [String(n)], { encoding: 'utf8' }))![1])),
        () => res.addon.push(addonLoop(addon, n)),
        () => res.ffi.push(ffiLoop(ffi, n)),
      ];
      for (const side of r % 2 ? sides.reverse() : sides) side();
      res.floor.push(koffiFloor(n));
    }
  } finally {
    fs.rmSync(bin, { force: true });
  }
  const nat = median(res.native);
  const row = (what: string, xs: number[], note: string): string =>
    `| ${what} | ${median(xs).toFixed(0)} [${Math.min(...xs).toFixed(0)} - ${Math.max(...xs).toFixed(0)}] | ${(median(xs) / nat).toFixed(2)}x | ${note} |`;
  const load = os.loadavg().map((l) => l.toFixed(2)).join(' ');
  const pass = median(res.ffi) / nat <= 1.3;
  const md = [
    FFI_SECTION_START,
    '## Map lookup through the FFI libbpf path (bench/ffi-map.ts)',
    '',
    `Run on ${new Date().toISOString()}: ${rounds} rounds of ${n.toLocaleString('en')} lookups of key 7 of an ARRAY u32 -> u64, each side on its own map and its own JS loop, the sides' order reversed every other round (and a koffi call that does nothing, for its floor); ${os.cpus().length} CPUs, load average at the end ${load} (shared with other sessions' builds and tests). ${os.release()}, Node ${process.version}, ${ffi.library}.`,
    '',
    '| path | ns/op median [min - max] | / native | what it is |',
    '|---|---|---|---|',
    row('native C: bpf_map_lookup_elem (bench/src/ffimap.c, gcc -O2)', res.native, 'the syscall + libbpf'),
    row('addon: native.mapOp from a JS loop (Uint8Array)', res.addon, 'a V8 fast call + the raw bpf() syscall'),
    row('FFI: backends/libbpf-ffi mapOp from a JS loop (Uint8Array)', res.ffi, "koffi's call into libbpf.so.1's bpf_map_lookup_elem, the key and value by address (the guest view's address, remembered)"),
    row("koffi alone: a C call that returns at once (memchr over 0 bytes)", res.floor, "not a lookup: what any koffi call costs from a JS loop, the FFI row's floor over native"),
    '',
    `Target (issue 19): FFI <= 1.3x native: **${pass ? 'PASS' : 'MISS'}** (${(median(res.ffi) / nat).toFixed(2)}x; FFI / addon ${(median(res.ffi) / median(res.addon)).toFixed(2)}x).`,
    '',
    "Where the FFI path's extra time goes (measured apart on this machine, best of 5 x 300k, 2026-12-07 16:50 UTC): koffi's call itself, about 100-150 ns over C (an empty `getpid` through koffi: 130-170 ns). A `uint64_t` argument given a JavaScript number costs koffi about 150 ns more, so a lookup without flags calls `bpf_map_lookup_elem` (no flags argument). The JavaScript `mapOp` around the call cost about 100 ns until 2026-12-07 19:35 UTC, most of it the type test and reading the view's `.buffer` on every call; it now remembers the guest's view and the address of its byte 0 (a detached view reads length 0 and fails the bounds check) and adds 15-30 ns (a no-op C function in place of the syscall, min of 21 x 100k: koffi alone 48-90 ns, `mapOp` 70-102 ns; before, 109-190 ns). The addon has neither cost on a guest's path (Wasm calls its C function directly, a V8 fast call); the FFI path serves every guest call through the host's JavaScript, so koffi's call is its floor. Three runs on 2026-12-07 between 19:44 and 19:55 UTC (load average 11-18, a bpf() syscall 2-4x its quiet cost) gave 1.37x, 1.23x and 1.39x: with koffi's floor at 100-150 ns over a 400-600 ns quiet native lookup, the 1.3x target sits at that floor, and one run's verdict is noise; the table above is the last run. Call shapes, measured apart on 2026-12-07 at 20:31 UTC (a C function that returns at once, libc's `abs`, declared with each shape; min of 7-9 rounds of 300k calls, shapes interleaved in every round, load average 5-6): key and value as `uintptr_t` numbers (the shape `mapOp` uses) 52-55 ns a call, as `int64_t` the same, as typed arrays 84 ns even when the whole guest view is passed (no allocation) and 176 ns as `subarray`s; one `int` argument alone 32 ns. `mapOp` around the `uintptr_t` call: 68-72 ns, so 15-17 ns of JavaScript are left (the view's identity test, its length, the bounds, the command dispatch). A hot path for a lookup without flags that holds the koffi function in a variable of its own measured 68-70 ns against 70-71 ns (A/B alternated twice): within the noise, not kept. Why the FFI row stays 250-450 ns over the addon's when koffi's hot call costs 50-90 ns: a koffi call made right after a bpf() syscall costs more than one made in a loop of koffi calls (same no-op `abs`, each call after an addon lookup, 15 rounds of 100k at 20:36 UTC: 104 / 167 / 366 ns over the lookup alone at the quartiles and median, against 49-55 ns hot); presumably the syscall evicts the caches and TLB entries koffi's call path uses, which the addon's fast call does not have. So the FFI path's cost over native is koffi's call as a syscall loop pays it, not JavaScript. Since 20:35 UTC the runner gives each side its own JS loop (one call site seeing both mapOps would be polymorphic: no fast call for the addon, no inlining of the FFI path's JavaScript) and reverses the sides' order every other round. Runs of that version on 2026-12-07: 20:35 UTC 1.15x (FFI / addon 1.33x; load average 5), 20:36 UTC 1.07x (FFI / addon 1.12x; load average 9-12, CI beside), and the table's run; the rounds of one run spread 1.5-2x (min to max), so a verdict near 1.3x remains a matter of the load.",
    FFI_SECTION_END,
  ].join('\n');
  process.stdout.write(`${md}\n`);
  const file = path.join(BENCH, 'RESULTS.md');
  const text = fs.readFileSync(file, 'utf8');
  const a = text.indexOf(FFI_SECTION_START);
  const b = text.indexOf(FFI_SECTION_END);
  const next = a >= 0 && b > a ? `${text.slice(0, a)}${md}${text.slice(b + FFI_SECTION_END.length)}` : `${text.trimEnd()}\n\n${md}\n`;
  fs.writeFileSync(file, next);
}

main();
