// The native engine's own load checks (native/agent/vm/ebpf_vm.c, what the uprobe agent relies on without
// vm.load() in front of it) agree with vm.load(): the same programs accepted, and the same refusals (kind,
// instruction and message), on directed malformed programs, random garbage and random valid programs.
// The engine alone, as the agent uses it (host pointers as addresses, helper table, tail call, every fault):
// native/agent/vm/selftest.c, built with the system compiler; and no libc on the run path.
// (Runs on the native engine are held to the other engines by the vm-*.test.ts files through ENGINES.)
import t from 'tap';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { loadNative } from '../backends/linux/native.js';
import { vm, VmError } from '../backends/userspace/vm/index.js';
import { disasmOne } from '../backends/userspace/vm/isa.js';
import { genFreeProgram } from './fixtures/vm/gen.js';
import { fromHex, Rng } from './fixtures/vm/util.js';
import { ROOT } from './helpers.js';

const addon = loadNative();
const vmLoad = addon.vmLoad!.bind(addon);
const OWNER = {};
const noHelpers = (): boolean => false;

/** the C engine's verdict on raw bytes (no helpers, no maps, no tail calls: the default environment's) as vm.load() would word it */
function nativeVerdict(bytes: Uint8Array): string {
  try {
    vmLoad(bytes, OWNER, false, noHelpers);
    return 'ok';
  } catch (e) {
    const x = e as { kind?: 'invalid' | 'unsupported'; pc?: number; message: string };
    if (x.kind === undefined) throw e;
    const pc = x.pc;
    return new VmError(x.kind, x.message, { pc, insn: pc === undefined ? undefined : disasmOne(bytes, pc), program: 'prog' }).message;
  }
}

function tsVerdict(bytes: Uint8Array): string {
  try {
    vm.load(bytes);
    return 'ok';
  } catch (e) {
    if (e instanceof VmError) return e.message;
    throw e;
  }
}

t.test('directed malformed programs: the same refusal, word for word', async (t) => {
  const A = (s: string): Uint8Array => vm.asm(s);
  const cases: Uint8Array[] = [
    new Uint8Array(0),
    new Uint8Array(12),
    A('mov %r0, 0\nja +5\nexit'),
    A('ja -2\nexit'),
    A('ja +1\nlddw %r0, 1\nexit'),
    A('call local +5\nexit'),
    A('lddw %r0, 5').subarray(0, 8),
    fromHex('18000000000000000100000000000000' + '9500000000000000'),
    A('mov %r0, 0'),
    A('exit\nmov %r0, 1\njeq %r0, 0, -1'),
    fromHex('0000000000000000'),
    fromHex('ff00000000000000' + '9500000000000000'),
    fromHex('e700000000000000' + '9500000000000000'),
    fromHex('f500000000000000' + '9500000000000000'),
    fromHex('b70b000000000000' + '9500000000000000'),
    fromHex('bfc0000000000000' + '9500000000000000'),
    A('mov %r10, 1\nexit'),
    A('ldxdw %r10, [%r1+0]\nexit'),
    fromHex('d401000011000000' + '9500000000000000'),
    fromHex('3f12020000000000' + '9500000000000000'),
    fromHex('bc12200000000000' + '9500000000000000'),
    fromHex('b701080000000000' + '9500000000000000'),
    fromHex('db12000002000000' + '9500000000000000'),
    fromHex('db120000fbffffff' + '9500000000000000'),
    fromHex('d312000000000000' + '9500000000000000'),
    fromHex('9900000000000000' + '9500000000000000'),
    fromHex('3800000000000000' + '9500000000000000'),
    A('call 1\nexit'),
    A('call 12\nexit'),
    fromHex('8520000001000000' + '9500000000000000'),
    fromHex('8530000001000000' + '9500000000000000'),
    A('lddw %r1, map_by_fd(3)\nexit'),
    A('lddw %r1, map_val(3)+8\nexit'),
    A('lddw %r1, map_by_idx(0)\nexit'),
    fromHex('18310000000000000000000000000000' + '9500000000000000'),
    fromHex('18710000000000000000000000000000' + '9500000000000000'),
    A('lddw %r1, code_addr(+5)\nexit'),
    fromHex('18410000000000000000000001000000' + '9500000000000000'),
    fromHex('8d00000000000000' + '9500000000000000'),
    fromHex('8d0000000b000000' + '9500000000000000'),
    fromHex('8d02000003000000' + '9500000000000000'),
    fromHex('8600000000000000' + '9500000000000000'),
    fromHex('9600000000000000' + '9500000000000000'),
    fromHex('0d00000000000000' + '9500000000000000'),
    fromHex('8f00000000000000' + '9500000000000000'),
    fromHex('df00000010000000' + '9500000000000000'),
    fromHex('dba1000001000000' + '9500000000000000'),
    fromHex('dba10000f1000000' + '9500000000000000'),
  ];
  for (const b of cases) {
    const want = tsVerdict(b);
    t.equal(nativeVerdict(b), want, want);
  }
});

t.test('random garbage and random programs: the same verdicts', async (t) => {
  const seed = Number(process.env.VM_DIFF_SEED ?? Date.now() % 1_000_000);
  t.comment(`seed ${seed}`);
  let refused = 0;
  let same = 0;
  let n = 0;
  for (let i = 0; i < 6000; i++) {
    const rng = new Rng(seed * 13 + i);
    let b: Uint8Array;
    if (i % 3 === 0) b = genFreeProgram(rng, 4 + rng.int(30));
    else {
      const k = 1 + rng.int(24);
      b = new Uint8Array(k * 8).map(() => rng.int(256));
      if (i % 3 === 1) {
        for (let s = 0; s < k; s++) {
          b[s * 8 + 1] = (rng.int(11) << 4) | rng.int(11);
          if (rng.chance(0.5)) b[s * 8 + 2] = rng.int(3);
          if (rng.chance(0.5)) b[s * 8 + 3] = 0;
          if (rng.chance(0.3)) b[s * 8 + 4] = rng.int(3);
          if (rng.chance(0.5)) b.fill(0, s * 8 + 5, s * 8 + 8);
        }
        b[(k - 1) * 8] = 0x95;
      }
    }
    const want = tsVerdict(b);
    const got = nativeVerdict(b);
    n++;
    if (want !== 'ok') refused++;
    if (got === want) same++;
    else {
      t.fail(`seed ${seed * 13 + i}: vm.load: ${want}\n  native: ${got}\n${vm.disasm(b)}`);
      break;
    }
  }
  t.equal(same, n, `${n} programs (${refused} refused): the same verdict and message from both loaders`);
});

const cc = spawnSync('cc', ['--version']).status === 0;

t.test('the engine alone, as the agent uses it (native/agent/vm/selftest.c)', { skip: cc ? false : 'no C compiler' }, async (t) => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ebpf-vm-'));
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
  const src = path.join(ROOT, 'native/agent/vm');
  const exe = path.join(dir, 'selftest');
  const b = spawnSync('cc', ['-O2', '-Wall', '-Wextra', '-Werror', '-std=gnu11', '-o', exe, path.join(src, 'ebpf_vm.c'), path.join(src, 'selftest.c')], { encoding: 'utf8' });
  t.equal(b.status, 0, `builds without warnings ${b.stderr}`);
  const r = spawnSync(exe, [], { encoding: 'utf8' });
  t.equal(r.stdout, 'ok\n', 'every check passes');
  t.equal(r.status, 0);
  // what the engine needs from libc: allocation and message formatting at load, nothing else
  const o = path.join(dir, 'ebpf_vm.o');
  t.equal(spawnSync('cc', ['-O2', '-std=gnu11', '-c', '-o', o, path.join(src, 'ebpf_vm.c')]).status, 0);
  const nm = spawnSync('nm', ['-u', o], { encoding: 'utf8' });
  if (nm.status === 0) {
    const used = nm.stdout.split('\n').map((l) => l.trim().split(/\s+/).pop()!).filter((s) => s !== '' && s !== undefined);
    const allowed = new Set(['calloc', 'free', 'snprintf', 'vsnprintf', 'memcpy', 'memset', '__stack_chk_fail', '_GLOBAL_OFFSET_TABLE_']);
    t.same(used.filter((s) => !allowed.has(s)), [], `undefined symbols: ${used.join(' ')}`);
  }
});

// The JIT (native/agent/vm/jit.c, jit_x86_64.c): the selftest again with the JIT linked in, then
// native/agent/test/jit_diff_test.c: every program on both engines (WBPF_JIT=0 and on) with identical
// results, faults, budget left and memory: its directed hostile programs, its random ones, and a file of the
// conformance programs (test/fixtures/vm/data) and this file's generators' programs.
t.test('the JIT against the interpreter (native/agent/test/jit_diff_test.c)', { skip: cc && process.arch === 'x64' ? false : 'x86-64 with a C compiler only' }, async (t) => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ebpf-jit-'));
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
  const src = path.join(ROOT, 'native/agent/vm');
  const jit = [path.join(src, 'jit.c'), path.join(src, 'jit_x86_64.c'), path.join(src, 'recproof.c')];
  const st = path.join(dir, 'selftest-jit');
  const b1 = spawnSync('cc', ['-O2', '-Wall', '-Wextra', '-Werror', '-std=gnu11', '-o', st, path.join(src, 'ebpf_vm.c'), ...jit, path.join(src, 'selftest.c')], { encoding: 'utf8' });
  t.equal(b1.status, 0, `the selftest builds with the JIT ${b1.stderr}`);
  const r1 = spawnSync(st, [], { encoding: 'utf8' });
  t.equal(r1.stdout, 'ok\n', 'every selftest check passes on machine code');
  const exe = path.join(dir, 'jit_diff_test');
  const b2 = spawnSync('cc', ['-O2', '-g', '-Wall', '-Wextra', '-Werror', '-std=gnu11', '-o', exe, path.join(ROOT, 'native/agent/test/jit_diff_test.c'), path.join(src, 'ebpf_vm.c'), ...jit], { encoding: 'utf8' });
  t.equal(b2.status, 0, `jit_diff_test builds ${b2.stderr}`);
  const progs: Uint8Array[] = [];
  const data = path.join(ROOT, 'test/fixtures/vm/data');
  for (const f of fs.readdirSync(data).filter((x) => x.endsWith('.data')).sort()) {
    const asm = /-- asm\n([\s\S]*?)(?=\n-- |$)/.exec(fs.readFileSync(path.join(data, f), 'utf8'))?.[1];
    if (asm !== undefined) progs.push(vm.asm(asm));
  }
  const seed = Number(process.env.VM_DIFF_SEED ?? Date.now() % 1_000_000);
  t.comment(`seed ${seed}`);
  const rng = new Rng(seed);
  for (let k = 0; k < 1500; k++) progs.push(genFreeProgram(rng, 8 + (k % 60)));
  const file = path.join(dir, 'programs.bin');
  fs.writeFileSync(file, Buffer.concat(progs.flatMap((p) => {
    const len = Buffer.alloc(4);
    len.writeUInt32LE(p.length);
    return [len, Buffer.from(p)];
  })));
  const r2 = spawnSync(exe, [file, '6000'], { encoding: 'utf8', timeout: 120_000 });
  t.equal(r2.signal, null, 'no crash');
  t.equal(r2.status, 0, 'every check holds', { stdout: r2.stdout.split('\n').filter((l) => !l.startsWith('ok')).join('\n') });
  t.notMatch(r2.stdout, /^not ok/m);
  t.match(r2.stdout, /^ok - jit = interpreter: endless loop$/m);
  t.match(r2.stdout, /^ok - jit = interpreter: wild pointer store$/m);
  t.match(r2.stdout, /^ok - jit = interpreter on 6000 random programs \(6000 compiled/m);
  t.match(r2.stdout, new RegExp(`^ok - jit = interpreter on the ${progs.length} programs of `, 'm'));
  t.match(r2.stdout, /^ok - WBPF_JIT=0: counted as disabled, not compiled$/m);
  t.match(r2.stdout, /^ok - 3000 loads and frees leave no code mapped/m);
  t.match(r2.stdout, /^ok - mprotect\(PROT_EXEC\) refused: the program runs on the interpreter, counted/m);
});

// `wasm-bpf vm run --engine native` runs the addon's engine, machine code by default; WBPF_JIT=0 (the
// CLI's environment) keeps it on the interpreter: the same answers either way, results and faults.
t.test('vm run --engine native: the JIT by default, WBPF_JIT=0 the interpreter, the same answers', async (t) => {
  const cli = path.join(ROOT, 'bin', 'wasm-bpf.js');
  const cases: [string, string, string][] = [
    ['a loop over memory', 'mov %r0, 0\nmov %r2, 0\nldxb %r3, [%r1+0]\nadd %r0, %r3\nadd %r1, 1\nadd %r2, 1\njlt %r2, 8, -5\nexit', '0102030405060708'],
    ['a load past the memory', 'ldxdw %r0, [%r1+4]\nexit', '00112233'],
    ['an endless loop', 'ja -1\nexit', ''],
    ['division by zero', 'mov %r0, 7\nmov %r2, 0\ndiv %r0, %r2\nmod %r2, 0\nadd %r0, 9\nexit', ''],
  ];
  for (const [name, asm, mem] of cases) {
    const bytes = vm.asm(asm);
    const run = (env: NodeJS.ProcessEnv) => spawnSync(process.execPath, [cli, 'vm', 'run', '--engine', 'native', ...(mem ? [mem] : [])], { input: bytes, env, encoding: 'utf8', timeout: 60_000 });
    const on = run({ ...process.env, WBPF_JIT: undefined });
    const off = run({ ...process.env, WBPF_JIT: '0' });
    t.equal(on.stderr, off.stderr, `${name}: the same diagnostics (${on.stderr.trim() || 'none'})`);
    t.equal(on.stdout, off.stdout, `${name}: the same r0 (${on.stdout.trim() || 'none'})`);
    t.equal(on.status, off.status, `${name}: the same exit status`);
  }
});
