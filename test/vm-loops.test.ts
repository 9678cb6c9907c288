// The compiler's loop versioning (backends/userspace/vm/jit/versioned.ts, structured.ts): counted
// one-block loops and chained loops run without per-access checks once an entry test has proved every
// access of the next iterations in bounds and the budget sufficient. Randomized loops (steps 1, 2, 4, 8, 16, 3 and -1,
// side exits, short blocks compiled as selects, ctx- and stack-based pointers, ranges ending at or past
// a region's edge, outer re-entry, small budgets) must behave exactly as in the interpreter: r0, steps, memory, and the
// fault (kind and instruction) when an iteration would leave its region or the budget runs out.
import t from 'tap';
import { vm, VmError } from '../backends/userspace/vm/index.js';
import { genLoopProgram } from './fixtures/vm/gen.js';
import { both, Rng } from './fixtures/vm/util.js';

const N = Number(process.env['WASM_BPF_VM_LOOPS'] ?? 4000);
const SEED0 = 7;
const failures: string[] = [];
const kinds = new Map<string, number>();
for (let i = 0; i < N; i++) {
  const seed = SEED0 * 100000 + i;
  const rng = new Rng(seed);
  const { text, memSize } = genLoopProgram(rng);
  let prog;
  try { prog = vm.load(vm.asm(text), { name: `s${seed}` }); } catch (e) { if (e instanceof VmError) { kinds.set('load', (kinds.get('load') ?? 0) + 1); continue; } throw e; }
  const mem = new Uint8Array(memSize).map(() => rng.int(256));
  try {
    const o = both(prog, mem, { budget: rng.pick([200, 1000, 5000, 20000]) });
    const k = 'error' in o ? o.kind : 'ok';
    kinds.set(k, (kinds.get(k) ?? 0) + 1);
  } catch (e) {
    failures.push(`seed ${seed}: ${(e as Error).message}\n${text}`);
  }
}

t.test('randomized loops: the compiler agrees with the interpreter', async (t) => {
  t.same(failures.slice(0, 3), [], `${failures.length} of ${N} programs disagree`);
  const ok = kinds.get('ok') ?? 0;
  const faults = [...kinds].filter(([k]) => k !== 'ok' && k !== 'load').reduce((a, [, v]) => a + v, 0);
  t.ok(ok > N / 10, `${ok} programs ran to exit`);
  t.ok(faults > N / 10, `${faults} programs faulted (out of bounds or budget): ${[...kinds].map(([k, v]) => `${k}=${v}`).join(' ')}`);
});

// Directed: counted one-block loops (the memcpy shape) whose last iterations reach, touch or cross the
// end of their region, for every width, step, load or store, ctx or stack. The interpreter faults at
// the first access past the end; the compiled loop must fault at the same instruction, having done the
// same work before it.
t.test('counted loops that end at, just before or past the end of their region', async (t) => {
  let cases = 0;
  const bad: string[] = [];
  for (const w of ['b', 'h', 'w', 'dw'] as const) {
    for (const step of [1, 2, 4, 8]) {
      for (const size of [16, 64, 100]) {
        for (let end = size - 9; end <= size + 9; end++) {
          for (const kind of ['ldx', 'stx', 'st'] as const) {
            for (const stack of [false, true]) {
              const base = stack ? ['mov %r7, %r10', `add %r7, -${size}`] : ['mov %r7, %r1'];
              const access = kind === 'ldx' ? `ldx${w} %r3, [%r2+0]` : kind === 'stx' ? `stx${w} [%r2+0], %r6` : `st${w} [%r2+0], 7`;
              const text = [...base, 'mov %r6, 0', `mov %r8, ${end}`, 'mov %r3, 0', 'mov %r2, %r7', 'add %r2, %r6', access, `add %r6, ${step}`, 'jlt %r6, %r8, -5', 'mov %r0, %r6', 'add %r0, %r3', 'exit'].join('\n');
              const mem = new Uint8Array(stack ? 8 : size).map((_, i) => (i * 37) & 255);
              cases++;
              try {
                both(vm.load(vm.asm(text), { name: 'edge' }), mem, { budget: 100_000 });
              } catch (e) {
                bad.push(`${(e as Error).message}\n${text}`);
              }
            }
          }
        }
      }
    }
  }
  t.same(bad.slice(0, 2), [], `${bad.length} of ${cases} loops disagree`);
});

// Directed: the strcmp shape, a loop with a side exit (a chain of blocks, run in unchecked chunks),
// scanning for a zero byte that sits before, at or past the region's end.
t.test('loops with a side exit that stop at a zero byte, or run off the region', async (t) => {
  let cases = 0;
  const bad: string[] = [];
  for (const w of ['b', 'h', 'w', 'dw'] as const) {
    for (const step of [1, 2, 4, 8]) {
      for (const size of [16, 64, 100]) {
        for (let zero = size - 10; zero <= size + 1; zero++) {
          for (const stack of [false, true]) {
            const base = stack ? ['mov %r7, %r10', `add %r7, -${size}`] : ['mov %r7, %r1'];
            const text = [...base, 'mov %r6, 0', 'mov %r8, 100000', 'mov %r2, %r7', 'add %r2, %r6', `ldx${w} %r3, [%r2+0]`, 'jeq %r3, 0, +2', `add %r6, ${step}`, 'jlt %r6, %r8, -6', 'mov %r0, %r6', 'exit'].join('\n');
            const mem = new Uint8Array(stack ? 8 : size).fill(0x41);
            if (!stack && zero < size) mem.fill(0, zero);
            cases++;
            try {
              both(vm.load(vm.asm(text), { name: 'scan' }), mem, { budget: 1_000_000 });
            } catch (e) {
              bad.push(`${(e as Error).message}\n${text}`);
            }
          }
        }
      }
    }
  }
  t.same(bad.slice(0, 2), [], `${bad.length} of ${cases} loops disagree`);
});

// Directed: the log2 shape (bench/vm/kernels.c as clang builds it): a loop over u64 values whose body
// is a run of short blocks skipped by conditional jumps, two tests at a time the same, the last closed by
// a goto. The compiler runs them as selects and charges a skipped block by refunding it; the step count
// must be exact for every mix of taken and skipped blocks, and a budget of one step less must fault at
// the same instruction on both engines, inside the loop or after it.
t.test('if-converted blocks: exact step counts and budget faults', async (t) => {
  const text = [
    'mov %r0, 0', 'mov %r4, %r1', 'mov %r3, %r2', 'rsh %r3, 3', 'mov %r1, 0', 'lddw %r9, 0xffffffff',
    'ldxdw %r8, [%r4+0]', 'mov %r6, %r8', 'or %r6, 1', 'lddw %r5, 0x100000000', 'jgt %r5, %r8, +2', 'mov %r6, %r8', 'rsh %r6, 32',
    'mov %r7, 1', 'mov %r5, 1', 'jgt %r8, %r9, +1', 'mov %r5, 0', 'lsh %r5, 5', 'mov %r8, 0x10000',
    'jgt %r8, %r6, +1', 'or %r5, 16', 'jgt %r8, %r6, +1', 'rsh %r6, 16',
    'mov %r8, 0x100', 'jgt %r8, %r6, +1', 'or %r5, 8', 'jgt %r8, %r6, +1', 'rsh %r6, 8',
    'jgt %r6, 1, +2', 'mov %r7, 0', 'ja +0',
    'add %r0, %r5', 'add %r0, %r7', 'add %r4, 8', 'add %r1, 1', 'jgt %r3, %r1, -31', 'exit',
  ].join('\n');
  const prog = vm.load(vm.asm(text), { name: 'log2' });
  const rng = new Rng(99);
  let cases = 0;
  const bad: string[] = [];
  for (const n of [1, 2, 3, 9, 40]) {
    for (let trial = 0; trial < 6; trial++) {
      const mem = new Uint8Array(8 * n);
      const dv = new DataView(mem.buffer);
      for (let j = 0; j < n; j++) dv.setBigUint64(8 * j, BigInt.asUintN(64, rng.value() << BigInt(rng.int(48))), true);
      try {
        const o = both(prog, mem);
        if (!('r0' in o)) throw new Error(`faulted: ${JSON.stringify(o)}`);
        for (const budget of [o.steps, o.steps - 1, o.steps - 5, Math.floor(o.steps / 2), 12]) {
          cases++;
          const r = both(prog, mem, { budget });
          if (budget >= o.steps ? !('r0' in r) : !('error' in r && r.kind === 'budget')) bad.push(`n ${n} budget ${budget} of ${o.steps}: ${JSON.stringify(r, (_k, v: unknown) => (typeof v === 'bigint' ? String(v) : v))}`);
        }
      } catch (e) {
        bad.push(`n ${n}: ${(e as Error).message}`);
      }
    }
  }
  t.same(bad.slice(0, 3), [], `${bad.length} of ${cases} runs disagree or miscount`);
});

// Directed: a pointer moved by a block compiled as a select is not an induction register: the loop must
// still check the access through it (here it reads one byte past the region on the last iteration when
// the select kept the pointer, and stays in bounds when it replaced it).
t.test('an access through a register a select may have replaced', async (t) => {
  const bad: string[] = [];
  let cases = 0;
  for (const size of [8, 16, 64, 100]) {
    for (const last of [0x41, 0x42]) {
      const text = ['mov %r7, %r1', 'mov %r9, %r1', 'mov %r6, 0', `mov %r8, ${size}`, 'mov %r0, 0',
        'mov %r2, %r7', 'add %r2, %r6', 'ldxb %r3, [%r2+0]', 'jeq %r3, 0x41, +1', 'mov %r2, %r9', 'ldxb %r4, [%r2+1]', 'add %r0, %r4', 'add %r6, 1', 'jlt %r6, %r8, -9', 'exit'].join('\n');
      const mem = new Uint8Array(size).fill(0x41);
      mem[size - 1] = last;
      cases++;
      try {
        const o = both(vm.load(vm.asm(text), { name: 'moved' }), mem, { budget: 1_000_000 });
        if (last === 0x41 ? !('error' in o && o.kind === 'memory') : !('r0' in o)) bad.push(`size ${size} last ${last}: ${JSON.stringify(o, (_k, v: unknown) => (typeof v === 'bigint' ? String(v) : v))}`);
      } catch (e) {
        bad.push(`size ${size}: ${(e as Error).message}`);
      }
    }
  }
  t.same(bad, [], `${bad.length} of ${cases} loops disagree`);
});
