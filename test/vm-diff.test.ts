// Randomized differential tests: random valid programs on the interpreter, the compiler and the native
// engine (they must agree on r0, step count, memory and faults), and on the kernel through BPF_PROG_TEST_RUN wherever the
// verifier accepts them (r0's low 32 bits, which is what the kernel reports).
//   VM_DIFF_SEED=n to reproduce one seed; VM_DIFF_N / VM_DIFF_KERNEL_N to change the counts.
import t from 'tap';
import { loadNative, type NativeAddon } from '../backends/linux/native.js';
import { vm, VmError, type Helper } from '../backends/userspace/vm/index.js';
import { genFreeProgram, genKernelProgram } from './fixtures/vm/gen.js';
import { both, outcome, Rng } from './fixtures/vm/util.js';

const baseSeed = Number(process.env.VM_DIFF_SEED ?? Date.now() % 1_000_000);
const N = Number(process.env.VM_DIFF_N ?? 3000);
const KN = Number(process.env.VM_DIFF_KERNEL_N ?? 600);

t.comment(`seed ${baseSeed}`);

const helpers: Record<number, Helper> = {
  // 1: arithmetic on the arguments
  1: (r1, r2, r3) => r1 * 3n + r2 - r3,
  // 2: sum of r2 bytes at r1 (checked), like a helper that reads program memory
  2: (r1, r2, _r3, _r4, _r5, call) => {
    const n = Number(r2 & 0x3fn);
    const b = call.memory.read(r1, n);
    return BigInt(b.reduce((a, x) => a + x, 0));
  },
};

t.test('random programs: interpreter == compiler == native engine', async (t) => {
  const env = vm.createEnvironment({ helpers });
  let loaded = 0;
  let faults = 0;
  let budgets = 0;
  let ok = 0;
  const kinds = new Map<string, number>();
  for (let i = 0; i < N; i++) {
    const seed = baseSeed * 1000 + i;
    const rng = new Rng(seed);
    const insns = genFreeProgram(rng, 8 + rng.int(40));
    const mem = new Uint8Array(64).map(() => rng.int(256));
    let prog;
    try {
      prog = vm.load(insns, { env, name: `seed${seed}` });
    } catch (e) {
      if (!(e instanceof VmError)) throw e;
      kinds.set(`load:${e.kind}`, (kinds.get(`load:${e.kind}`) ?? 0) + 1);
      continue;
    }
    loaded++;
    let o;
    try {
      o = both(prog, mem, { budget: 5000 });
    } catch (e) {
      t.fail(`seed ${seed}: ${(e as Error).message}\n${vm.disasm(insns)}`);
      break;
    }
    if ('error' in o) {
      kinds.set(o.kind, (kinds.get(o.kind) ?? 0) + 1);
      if (o.kind === 'budget') budgets++;
      else faults++;
    } else ok++;
  }
  t.ok(loaded > N * 0.9, `${loaded} of ${N} random programs loaded`);
  t.ok(ok > loaded * 0.2, `${ok} ran to exit, ${faults} faulted, ${budgets} ran out of budget: the same on every engine`);
  t.comment(`outcomes: ${[...kinds].map(([k, v]) => `${k}=${v}`).join(' ')}`);
});

t.test('random garbage: never a host error, engines agree', async (t) => {
  let loaded = 0;
  for (let i = 0; i < 2000; i++) {
    const rng = new Rng(baseSeed * 7 + i);
    const n = 1 + rng.int(24);
    const b = new Uint8Array(n * 8).map(() => rng.int(256));
    // make it a little more plausible: valid classes, registers in range, an exit at the end
    for (let k = 0; k < n; k++) {
      b[k * 8 + 1] = (rng.int(11) << 4) | rng.int(11);
      if (rng.chance(0.5)) b[k * 8 + 2] = rng.int(3);
      if (rng.chance(0.5)) b[k * 8 + 3] = 0;
    }
    b[(n - 1) * 8] = 0x95;
    try {
      const p = vm.load(b);
      loaded++;
      both(p, new Uint8Array(32), { budget: 2000 });
    } catch (e) {
      if (e instanceof VmError) continue;
      t.fail(`seed ${baseSeed * 7 + i}: ${(e as Error).stack}\n${vm.disasm(b)}`);
      break;
    }
  }
  t.pass(`2000 garbage programs: ${loaded} loaded, none crashed the host, engines agreed`);
});

let native: NativeAddon | undefined;
let why = '';
try {
  native = loadNative();
  if (typeof native.progTestRun !== 'function') {
    why = 'the native addon has no progTestRun (rebuild it)';
    native = undefined;
  } else if (process.getuid?.() !== 0) {
    why = 'not root';
    native = undefined;
  }
} catch (e) {
  why = `no native addon: ${(e as Error).message}`;
}

t.test('random programs: kernel == interpreter == compiler == native engine', { skip: native === undefined ? why : false }, async (t) => {
  const SOCKET_FILTER = 1;
  const data = new Uint8Array(64);
  let accepted = 0;
  let rejected = 0;
  let agree = 0;
  const firstRejects: string[] = [];
  for (let i = 0; i < KN; i++) {
    const seed = baseSeed * 31 + i;
    const rng = new Rng(seed);
    const insns = genKernelProgram(rng, 10 + rng.int(40));
    let kernel: number;
    try {
      kernel = native!.progTestRun(insns, SOCKET_FILTER, data, 1).retval;
    } catch (e) {
      rejected++;
      const log = String((e as { log?: string }).log ?? '');
      if (firstRejects.length < 3) firstRejects.push(`${(e as Error).message}: ${log.split('\n').slice(-3).join(' | ')}`);
      continue;
    }
    accepted++;
    const o = both(insns, undefined, {});
    if (!('r0' in o)) {
      t.fail(`seed ${seed}: the kernel ran it (retval ${kernel}) but the VM faulted: ${o.error}\n${vm.disasm(insns)}`);
      break;
    }
    const low = Number(o.r0 & 0xffffffffn);
    if (low !== kernel >>> 0) {
      t.fail(`seed ${seed}: kernel 0x${(kernel >>> 0).toString(16)} vs VM 0x${low.toString(16)}\n${vm.disasm(insns)}`);
      break;
    }
    agree++;
  }
  t.ok(accepted >= KN * 0.8, `the verifier accepted ${accepted} of ${KN} (${rejected} rejected)${firstRejects.length ? `; e.g. ${firstRejects.join(' ;; ')}` : ''}`);
  t.equal(agree, accepted, `all ${accepted} accepted programs agree on kernel, interpreter, compiler and native engine`);
});

t.test('a kernel-style program with a hand-checked result on all four', { skip: native === undefined ? why : false }, async (t) => {
  const insns = vm.asm(`
    lddw %r1, 0x8000000000000000
    mov %r2, -1
    sdiv %r1, %r2
    lddw %r3, 0xfedcba9876543210
    movsx3264 %r4, %r3
    bswap64 %r3
    jeq32 %r2, -1, +1
    mov %r1, 0
    xor %r1, %r3
    xor %r1, %r4
    mov %r0, %r1
    rsh %r1, 32
    xor %r0, %r1
    exit`);
  const k = native!.progTestRun(insns, 1, new Uint8Array(64), 1).retval >>> 0;
  const r = outcome(insns, undefined, { engine: 'interp' });
  const j = outcome(insns, undefined, { engine: 'jit' });
  const n = outcome(insns, undefined, { engine: 'native' });
  t.ok('r0' in r && 'r0' in j && 'r0' in n);
  if ('r0' in r && 'r0' in j && 'r0' in n) {
    t.equal(Number(r.r0 & 0xffffffffn), k, 'interpreter == kernel');
    t.equal(Number(j.r0 & 0xffffffffn), k, 'compiler == kernel');
    t.equal(Number(n.r0 & 0xffffffffn), k, 'native engine == kernel');
  }
});
