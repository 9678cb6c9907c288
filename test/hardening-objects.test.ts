// Issue 14, point 1: a crafted eBPF object gets a clear error, never a host crash. Each shape is made
// from a real object (matrix/build) by a few bytes' change; loaded through the addon alone (libbpf's
// bpf_object__open_mem, as `run` did before the project's validation came first) the BTF shapes crash
// the process or hang it; through Selector.load (every guest load with --backend auto|linux), the
// userspace backend and the CLI they are refused cleanly with the cause named, and the guest gets handle 0.
import t from 'tap';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { spawnSync } from 'node:child_process';
import { craft, type Shape } from './fuzz/craft.js';
import { BUILD, ROOT, buildGuest, kernelIds, runCli, settledLeaks } from './helpers.js';
import { LinuxBackend } from '../backends/linux/index.js';
import { UserspaceBackend } from '../backends/userspace/index.js';
import { Selector } from '../src/select/backend.js';
import { BackendError } from '../src/errors.js';

const M = path.join(ROOT, 'matrix', 'build');
const ADDON = path.join(ROOT, 'native', 'build', 'Release', 'wasm_bpf_native.node');
const skip = (!fs.existsSync(path.join(M, 'bootstrap.bpf.o')) && 'matrix/build not built (make -C matrix)') || (!fs.existsSync(ADDON) && 'native addon not built') || false;

interface Case {
  shape: Shape;
  from: string;
  /** what the error names */
  cause: RegExp;
  /** what libbpf alone does with it on this host (Debian's libbpf 1.1) */
  raw: 'SIGSEGV' | 'hang' | 'refused';
}

const CASES: Case[] = [
  { shape: 'var-type', from: 'bootstrap.bpf.o', cause: /bad BTF: type \d+ \(VAR\): type refers to missing type \d+ \(\d+ types\)/, raw: 'SIGSEGV' },
  { shape: 'member-types', from: 'bootstrap.bpf.o', cause: /bad BTF: type \d+ \(STRUCT\): member 0 refers to missing type 65536/, raw: 'SIGSEGV' },
  { shape: 'type-loop', from: 'sockfilter.bpf.o', cause: /bad BTF: type \d+ \(TYPEDEF\): its chain of references loops back to itself/, raw: 'hang' },
  // libelf refuses these three before libbpf reads them on this host; they stay refused by the
  // project's own reader whatever libelf/libbpf version is underneath
  { shape: 'entsize', from: 'bootstrap.bpf.o', cause: /symbol table entry size 4294967296 \(expected 24\)/, raw: 'refused' },
  { shape: 'offset', from: 'bootstrap.bpf.o', cause: /section \d+ extends past end of file \(offset 0x7fffffff0/, raw: 'refused' },
  { shape: 'reloc-symbol', from: 'bootstrap.bpf.o', cause: /refers to symbol \d+ \(\d+ symbols\)/, raw: 'refused' },
];

const crafted = (c: Case): Uint8Array => craft(new Uint8Array(fs.readFileSync(path.join(M, c.from))), c.shape);

/** opens and loads `file` through the addon alone, in a child process: what libbpf does without our checks */
function rawLoad(file: string): { signal: NodeJS.Signals | null; status: number | null; out: string } {
  const script = `
    const n = require(${JSON.stringify(ADDON)});
    const bytes = require('node:fs').readFileSync(${JSON.stringify(file)});
    let o;
    try { o = n.open(bytes, 'crafted', { logLevel: 0 }); n.load(o); console.log('loaded'); }
    catch (e) { console.log('refused: ' + e.message); }
    finally { if (o) n.close(o); }`;
  const r = spawnSync(process.execPath, ['-e', script], { encoding: 'utf8', timeout: 10_000, killSignal: 'SIGKILL' });
  return { signal: r.signal, status: r.status, out: r.stdout };
}

const log = (): void => {};
const opts = { objectName: 'crafted', verbose: false, allowCgroup: [], log };

t.test('crafted objects: libbpf alone crashes or hangs on the BTF shapes', { skip }, async (t) => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'wasm-bpf-crafted-'));
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
  for (const c of CASES) {
    const file = path.join(dir, `${c.shape}.bpf.o`);
    fs.writeFileSync(file, crafted(c));
    const r = rawLoad(file);
    if (c.raw === 'SIGSEGV') t.equal(r.signal, 'SIGSEGV', `${c.shape}: bpf_object__open_mem segfaults`);
    else if (c.raw === 'hang') t.equal(r.signal, 'SIGKILL', `${c.shape}: bpf_object__open_mem never returns (killed after 10 s)`);
    else t.match(r.out, /^refused: /, `${c.shape}: libbpf refuses it on this host`);
  }
});

t.test('crafted objects: Selector.load refuses each before libbpf sees it', { skip }, async (t) => {
  const before = kernelIds();
  const linux = new LinuxBackend();
  t.teardown(() => linux.dispose());
  for (const choice of ['linux', 'auto'] as const) {
    // 'auto' with the prober's report absent loads without routing, as createBackend does when the probe fails
    const sel = new Selector({ linux }, undefined, choice);
    for (const c of CASES) {
      const err = t.throws(() => sel.load(crafted(c), opts), `${choice} ${c.shape}: refused`) as unknown;
      t.ok(err instanceof BackendError, `${choice} ${c.shape}: a BackendError`);
      if (!(err instanceof BackendError)) continue;
      t.equal(err.errno, 22, `${c.shape}: EINVAL`);
      t.match(err.message, /^invalid eBPF object: object 'crafted' was refused before loading: /);
      t.match(err.message, c.cause, `${c.shape}: names the cause`);
      t.match(err.hint ?? '', /wasm-bpf check/);
    }
  }
  // and the real objects still load
  const obj = new Selector({ linux }, undefined, 'linux').load(new Uint8Array(fs.readFileSync(path.join(M, 'sockfilter.bpf.o'))), opts);
  t.ok(obj.programs.length > 0, 'an intact object loads');
  obj.close();
  t.same(await settledLeaks(before), { progs: [], maps: [], links: [] }, 'no kernel object left');
});

t.test('crafted objects: the userspace backend refuses the same bytes cleanly', { skip }, async (t) => {
  const us = new UserspaceBackend();
  for (const c of CASES) {
    const err = t.throws(() => us.load(crafted(c), opts)) as unknown;
    t.ok(err instanceof BackendError, `${c.shape}: a BackendError`);
    if (err instanceof BackendError) t.match(err.message, c.cause, `${c.shape}: names the cause`);
  }
  us.dispose();
});

const GUEST_SRC = String.raw`
#include <stdint.h>
#include <stdio.h>
__attribute__((import_module("wasm_bpf"), import_name("wasm_load_bpf_object")))
uint64_t wasm_load_bpf_object(const void *obj_buf, int obj_buf_sz);
static unsigned char buf[1 << 20];
int main(int argc, char **argv) {
  FILE *f = fopen(argv[1], "rb");
  if (!f) return 2;
  size_t n = fread(buf, 1, sizeof buf, f);
  fclose(f);
  uint64_t h = wasm_load_bpf_object(buf, (int)n);
  printf("handle=%llu\n", (unsigned long long)h);
  return h ? 0 : 3;
}
`;

t.test('crafted objects through `wasm-bpf run`: handle 0, the cause on stderr, the host alive', { skip }, async (t) => {
  const src = path.join(BUILD, 'hardening-load.c');
  if (!fs.existsSync(src) || fs.readFileSync(src, 'utf8') !== GUEST_SRC) fs.writeFileSync(src, GUEST_SRC);
  const guest = buildGuest(src, path.join(BUILD, 'hardening-load.wasm'));
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'wasm-bpf-crafted-'));
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
  const before = kernelIds();
  for (const c of CASES) fs.writeFileSync(path.join(dir, `${c.shape}.bpf.o`), crafted(c));
  fs.copyFileSync(path.join(M, 'sockfilter.bpf.o'), path.join(dir, 'intact.bpf.o'));
  const runs: [string, Case | undefined][] = [
    ...CASES.map((c): [string, Case] => ['linux', c]),
    ['auto', CASES[0]],
    ['userspace', CASES[0]],
    ['auto', CASES[2]],
    ['linux', undefined],
  ];
  for (const [backend, c] of runs) {
    const file = c ? `${c.shape}.bpf.o` : 'intact.bpf.o';
    const r = runCli(['run', '--backend', backend, '--dir', `${dir}:/d`, guest, `/d/${file}`]);
    const what = `--backend ${backend} ${c?.shape ?? 'intact'}`;
    t.equal(r.signal, null, `${what}: no signal`);
    if (!c) {
      t.equal(r.code, 0, `${what}: loads (${r.stderr.trim()})`);
      continue;
    }
    t.equal(r.code, 3, `${what}: the guest got handle 0 and went on (${r.stderr.trim().slice(0, 300)})`);
    t.match(r.stdout, /handle=0/);
    t.match(r.stderr, /wasm_load_bpf_object: /, `${what}: the failing call is named`);
    t.match(r.stderr, c.cause, `${what}: the cause is named`);
  }
  t.same(await settledLeaks(before), { progs: [], maps: [], links: [] }, 'no kernel object left');
});

t.test('`wasm-bpf check` names the same cause for the same bytes', { skip }, async (t) => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'wasm-bpf-crafted-'));
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
  for (const c of [CASES[0]!, CASES[2]!, CASES[5]!]) {
    const file = path.join(dir, `${c.shape}.bpf.o`);
    fs.writeFileSync(file, crafted(c));
    const r = runCli(['check', file]);
    t.equal(r.signal, null, `${c.shape}: no signal`);
    t.equal(r.code, 1, `${c.shape}: not runnable`);
    t.match(r.stdout, /cannot read it: /, `${c.shape}: refused`);
    t.match(r.stdout, c.cause, `${c.shape}: names the cause`);
  }
});
