// The FFI libbpf path's map lookup beside the addon's and native C's, in one run (issue 19: FFI <= 1.3x
// native): `node --import=tsx bench/ffi-map.ts [--rounds R] [--n N]`. Each round runs the C baseline
// (bench/src/ffimap.c, built here with gcc and -lbpf), then a JS loop through the addon's mapOp, then one
// through backends/libbpf-ffi's mapOp; medians of the rounds. Rewrites its own section of bench/RESULTS.md (between the ffi-map markers; run.ts keeps it).
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

/** ns per lookup of key 7 through `lib`.mapOp from a JS loop, on its own ARRAY map */
function jsLoop(lib: KernelLib, n: number): number {
  const fd = lib.mapCreate(ARRAY, 4, 8, 16, 'ffimap');
  const mem = new Uint8Array(new WebAssembly.Memory({ initial: 1 }).buffer);
  const dv = new DataView(mem.buffer);
  dv.setUint32(0, 7, true);
  dv.setBigUint64(16, 42n, true);
  if (lib.mapOp(UPDATE, fd, mem, 0, 16, 0) !== 0) throw new Error('update failed');
  const op = lib.mapOp;
  let bad = 0;
  for (let i = 0; i < n / 10; i++) bad |= op(LOOKUP, fd, mem, 0, 16, 0);
  const t0 = process.hrtime.bigint();
  for (let i = 0; i < n; i++) bad |= op(LOOKUP, fd, mem, 0, 16, 0);
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
      const line = execFileSync(bin, [String(n)], { encoding: 'utf8' });
      res.native.push(Number(/lookup_array_ns=([\d.]+)/.exec(line)![1]));
      res.addon.push(jsLoop(addon, n));
      res.ffi.push(jsLoop(ffi, n));
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
    `Run on ${new Date().toISOString()}: ${rounds} rounds of ${n.toLocaleString('en')} lookups of key 7 of an ARRAY u32 -> u64, each side on its own map, sides alternating in every round (and a koffi call that does nothing, for its floor); ${os.cpus().length} CPUs, load average at the end ${load} (shared with other sessions' builds and tests). ${os.release()}, Node ${process.version}, ${ffi.library}.`,
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
    "Where the FFI path's extra time goes (measured apart on this machine, best of 5 x 300k, 2026-12-07 16:50 UTC): koffi's call itself, about 100-150 ns over C (an empty `getpid` through koffi: 130-170 ns). A `uint64_t` argument given a JavaScript number costs koffi about 150 ns more, so a lookup without flags calls `bpf_map_lookup_elem` (no flags argument). The JavaScript `mapOp` around the call cost about 100 ns until 2026-12-07 19:35 UTC, most of it the type test and reading the view's `.buffer` on every call; it now remembers the guest's view and the address of its byte 0 (a detached view reads length 0 and fails the bounds check) and adds 15-30 ns (a no-op C function in place of the syscall, min of 21 x 100k: koffi alone 48-90 ns, `mapOp` 70-102 ns; before, 109-190 ns). The addon has neither cost on a guest's path (Wasm calls its C function directly, a V8 fast call); the FFI path serves every guest call through the host's JavaScript, so koffi's call is its floor. Three runs on 2026-12-07 between 19:44 and 19:55 UTC (load average 11-18, a bpf() syscall 2-4x its quiet cost) gave 1.37x, 1.23x and 1.39x: with koffi's floor at 100-150 ns over a 400-600 ns quiet native lookup, the 1.3x target sits at that floor, and one run's verdict is noise; the table above is the last run.",
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
