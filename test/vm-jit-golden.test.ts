// The compiler's output, pinned: every program of a large fixed corpus must compile to exactly the Wasm
// bytes recorded (as hashes) in test/fixtures/vm/jit-golden.json. Guards refactors of the compiler
// (backends/userspace/vm/jit.ts and jit/): moving code around must not change one byte it generates.
//
// The corpus: random programs from the generators in test/fixtures/vm/gen.ts with fixed seeds (free-form,
// kernel-style, loops), the conformance-style files in test/fixtures/vm/data, a few directed programs, and
// clang-built objects when they can be built here (bench/vm/kernels.c, test/fixtures/vm/prog.bpf.c,
// test/fixtures/userspace/*.bpf.c, matrix/build/*.bpf.o). A built program whose eBPF differs from the
// recorded one (another clang) is skipped, not failed.
//
// After an INTENDED change to the generated code, regenerate the file and commit it with the change:
//   WASM_BPF_JIT_GOLDEN=write npx tap test/vm-jit-golden.test.ts
import t, { type Test } from 'tap';
import { createHash } from 'node:crypto';
import { execFileSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { vm, VmError, type Helper, type VmEnvironment, type VmProgram } from '../backends/userspace/vm/index.js';
import { listElfPrograms, programFromElf } from '../backends/userspace/vm/elf.js';
import { generate } from '../backends/userspace/vm/jit/module.js';
import type { LoadedProgram } from '../backends/userspace/vm/program.js';
import { UserspaceBackend } from '../backends/userspace/index.js';
import { genFreeProgram, genKernelProgram, genLoopProgram } from './fixtures/vm/gen.js';
import { Rng } from './fixtures/vm/util.js';
import { BUILD, FIXTURES, ROOT, buildBpf } from './helpers.js';

const GOLDEN = path.join(FIXTURES, 'vm', 'jit-golden.json');
const REGENERATE = 'WASM_BPF_JIT_GOLDEN=write npx tap test/vm-jit-golden.test.ts';
const WRITE = process.env.WASM_BPF_JIT_GOLDEN === 'write';

const sha = (s: string | Uint8Array, n: number): string => createHash('sha256').update(s).digest('hex').slice(0, n);
const wasmOf = (p: VmProgram): string => sha(generate(p as LoadedProgram).bytes, 16);

interface Golden {
  regenerate: string;
  /** per group of generated programs: their count, a digest of their inputs, each one's Wasm hash in order */
  generated: Record<string, { count: number; inputs: string; wasm: string[] }>;
  /** per built program: "<input hash> <Wasm hash>" */
  built: Record<string, string>;
}

// ---- the corpus ---------------------------------------------------------------------------------------

interface Item {
  name: string;
  p: VmProgram;
}

const helpers: Record<number, Helper> = { 1: () => 0n, 2: () => 0n };

function loadOrSkip(insns: Uint8Array, name: string, env?: VmEnvironment): VmProgram | undefined {
  try {
    return vm.load(insns, { name, env });
  } catch (e) {
    if (e instanceof VmError) return undefined;
    throw e;
  }
}

/** generated programs: the same on every machine */
function generated(): Map<string, Item[]> {
  const groups = new Map<string, Item[]>();
  const add = (group: string, name: string, p: VmProgram | undefined): void => {
    if (p === undefined) return;
    let l = groups.get(group);
    if (l === undefined) groups.set(group, (l = []));
    l.push({ name, p });
  };
  const env = vm.createEnvironment({ helpers });
  for (let i = 0; i < 3000; i++) {
    const seed = 424_200_000 + i;
    const rng = new Rng(seed);
    add('free', `free seed ${seed}`, loadOrSkip(genFreeProgram(rng, 8 + rng.int(40)), `free${seed}`, env));
  }
  for (let i = 0; i < 1000; i++) {
    const seed = 313_100_000 + i;
    const rng = new Rng(seed);
    add('kernel', `kernel seed ${seed}`, loadOrSkip(genKernelProgram(rng, 10 + rng.int(40)), `kernel${seed}`));
  }
  // the seeds test/vm-loops.test.ts runs
  for (let i = 0; i < 4000; i++) {
    const seed = 700_000 + i;
    const { text } = genLoopProgram(new Rng(seed));
    add('loops', `loops seed ${seed}`, loadOrSkip(vm.asm(text), `s${seed}`));
  }
  // counted one-block loops (versioned), as test/vm-loops.test.ts builds them
  for (const w of ['b', 'h', 'w', 'dw']) {
    for (const step of [1, 2, 4, 8]) {
      for (const size of [16, 100]) {
        for (const end of [size - 1, size, size + 1]) {
          for (const access of [`ldx${w} %r3, [%r2+0]`, `stx${w} [%r2+0], %r6`, `st${w} [%r2+0], 7`]) {
            for (const base of [['mov %r7, %r1'], ['mov %r7, %r10', `add %r7, -${size}`]]) {
              const text = [...base, 'mov %r6, 0', `mov %r8, ${end}`, 'mov %r3, 0', 'mov %r2, %r7', 'add %r2, %r6', access, `add %r6, ${step}`, 'jlt %r6, %r8, -5', 'mov %r0, %r6', 'add %r0, %r3', 'exit'].join('\n');
              add('counted', `counted:\n${text}`, loadOrSkip(vm.asm(text), 'edge'));
            }
          }
        }
      }
    }
  }
  const data = path.join(FIXTURES, 'vm', 'data');
  for (const f of readdirSync(data).filter((x) => x.endsWith('.data')).sort()) {
    const asm = /-- asm\n([\s\S]*?)(?=\n-- |$)/.exec(readFileSync(path.join(data, f), 'utf8'))?.[1];
    if (asm !== undefined) add('data', f, loadOrSkip(vm.asm(asm), f));
  }
  // directed: what the random programs do not reach (maps, tail calls, packet loads)
  const memory = vm.createMemory();
  const value = memory.alloc(64, { kind: 'map-value', name: 'v' });
  const denv: VmEnvironment = {
    memory,
    helper: (id) => (id === 1 || id === 5 ? () => 0n : undefined),
    mapByFd: (fd) => (fd === 3 ? 0x5000n : undefined),
    mapValue: (fd) => (fd === 3 ? BigInt(value.addr) : undefined),
    tailCall: () => undefined,
  };
  const directed = [
    'lddw %r1, map_by_fd(3)\nmov %r2, 0\ncall 12\nmov %r0, 1\nexit',
    'lddw %r1, map_val(3)+8\nldxdw %r0, [%r1+0]\nadd %r0, 1\nstxdw [%r1+0], %r0\ncall 5\nexit',
    'mov %r6, %r1\nldabsw 12\nldindh %r6, 4\nldabsb 0\nexit',
    'lddw %r2, code_addr(+3)\ncallx %r2\nadd %r0, 1\nexit\nmov %r0, 41\nexit',
    'mov %r0, 0\nmov %r2, %r1\nldxb %r3, [%r2+0]\njeq %r3, 0, +3\nadd %r0, 1\nadd %r2, 1\nja -5\nexit',
  ];
  directed.forEach((text, i) => add('directed', `directed #${i}`, loadOrSkip(vm.asm(text), `d${i}`, denv)));
  return groups;
}

/** programs built by clang here, when it can (their eBPF may differ from machine to machine) */
function built(t: Test): Item[] {
  const out: Item[] = [];
  const clang = ((): boolean => {
    try {
      execFileSync('clang-16', ['--version'], { stdio: 'ignore' });
      return true;
    } catch {
      return false;
    }
  })();
  if (!clang) t.comment('no clang-16: built programs skipped');
  const elf = (src: string, obj: string): void => {
    if (!clang) return;
    const o = path.join(BUILD, obj);
    execFileSync('clang-16', ['-O2', '-target', 'bpf', '-c', src, '-o', o]);
    const bytes = new Uint8Array(readFileSync(o));
    for (const s of listElfPrograms(bytes)) {
      const p = loadOrSkip(programFromElf(bytes, s).insns, s, vm.createEnvironment());
      if (p !== undefined) out.push({ name: `${path.relative(ROOT, src)}:${s}`, p });
    }
  };
  elf(path.join(ROOT, 'bench', 'vm', 'kernels.c'), 'golden-kernels.bpf.o');
  elf(path.join(FIXTURES, 'vm', 'prog.bpf.c'), 'golden-prog.bpf.o');
  const backend = new UserspaceBackend({ ncpus: 2 });
  const object = (name: string, bytes: () => Uint8Array): void => {
    let b: Uint8Array;
    try {
      b = bytes();
    } catch (e) {
      t.comment(`${name}: not built (${(e as Error).message.split('\n')[0]})`);
      return;
    }
    try {
      const o = backend.load(b, { objectName: name, verbose: false, log: (): void => {} });
      for (const info of o.programs) out.push({ name: `${name}:${info.name}`, p: o.vmProgram(info.name)! });
    } catch {
      // not for the userspace backend (a helper it lacks, a kfunc): nothing to compile
    }
  };
  const us = path.join(FIXTURES, 'userspace');
  for (const f of readdirSync(us).filter((x) => x.endsWith('.bpf.c')).sort()) {
    object(`test/fixtures/userspace/${f}`, () => {
      if (!clang) throw new Error('no clang-16');
      return new Uint8Array(readFileSync(buildBpf(path.join(us, f), path.join(BUILD, `golden-us-${f.replace(/\.c$/, '.o')}`))));
    });
  }
  const matrix = path.join(ROOT, 'matrix', 'build');
  if (existsSync(matrix)) {
    for (const f of readdirSync(matrix).filter((x) => x.endsWith('.bpf.o')).sort()) object(`matrix/build/${f}`, () => new Uint8Array(readFileSync(path.join(matrix, f))));
  } else t.comment('no matrix/build (make -C matrix): its objects skipped');
  backend.dispose();
  return out;
}

// ---- the test -----------------------------------------------------------------------------------------

t.test('the compiler generates the recorded Wasm for every program of the corpus', async (t) => {
  const golden: Golden | undefined = existsSync(GOLDEN) ? (JSON.parse(readFileSync(GOLDEN, 'utf8')) as Golden) : undefined;
  const now: Golden = { regenerate: REGENERATE, generated: {}, built: {} };
  const bad: string[] = [];
  let compared = 0;
  for (const [group, items] of generated()) {
    const inputs = sha(items.map((x) => (x.p as LoadedProgram).jitKey).join('\n'), 16);
    const wasm = items.map((x) => wasmOf(x.p).slice(0, 8));
    now.generated[group] = { count: items.length, inputs, wasm };
    const g = golden?.generated[group];
    if (WRITE) continue;
    if (g === undefined || g.count !== items.length || g.inputs !== inputs) {
      bad.push(`group '${group}': the programs differ from the recorded ones (generators in test/fixtures/vm/gen.ts or the loader changed)`);
      continue;
    }
    wasm.forEach((h, i) => {
      compared++;
      if (h !== g.wasm[i]) bad.push(`${items[i]!.name}:\n${vm.disasm((items[i]!.p as LoadedProgram).insns)}`);
    });
  }
  let skipped = 0;
  for (const { name, p } of built(t)) {
    const entry = `${sha((p as LoadedProgram).jitKey, 16)} ${wasmOf(p)}`;
    now.built[name] = entry;
    if (WRITE) continue;
    const g = golden?.built[name];
    if (g === undefined || g.split(' ')[0] !== entry.split(' ')[0]) {
      skipped++;
      continue;
    }
    compared++;
    if (g !== entry) bad.push(`${name} (built)`);
  }
  if (WRITE) {
    writeFileSync(GOLDEN, serialize(now));
    const n = Object.values(now.generated).reduce((a, g) => a + g.count, 0) + Object.keys(now.built).length;
    t.pass(`wrote ${path.relative(ROOT, GOLDEN)}: ${n} programs`);
    return;
  }
  if (skipped > 0) t.comment(`${skipped} built programs skipped: their eBPF differs from the recorded (another clang?) or was not recorded`);
  t.ok(compared >= 8000, `${compared} programs compared`);
  t.same(bad.slice(0, 3), [], `${bad.length} programs compile to other Wasm than recorded in ${path.relative(ROOT, GOLDEN)}. If the change to the generated code is intended, regenerate it: ${REGENERATE}`);
});

/** JSON with the hash lists wrapped, 8 to a line */
function serialize(g: Golden): string {
  const lines = ['{', `  "regenerate": ${JSON.stringify(g.regenerate)},`, '  "generated": {'];
  const groups = Object.entries(g.generated);
  groups.forEach(([name, x], gi) => {
    lines.push(`    ${JSON.stringify(name)}: {`, `      "count": ${x.count},`, `      "inputs": ${JSON.stringify(x.inputs)},`, '      "wasm": [');
    for (let i = 0; i < x.wasm.length; i += 8) {
      const row = x.wasm.slice(i, i + 8).map((h) => JSON.stringify(h)).join(', ');
      lines.push(`        ${row}${i + 8 < x.wasm.length ? ',' : ''}`);
    }
    lines.push('      ]', `    }${gi + 1 < groups.length ? ',' : ''}`);
  });
  lines.push('  },', '  "built": {');
  const built = Object.entries(g.built);
  built.forEach(([name, v], i) => lines.push(`    ${JSON.stringify(name)}: ${JSON.stringify(v)}${i + 1 < built.length ? ',' : ''}`));
  lines.push('  }', '}', '');
  return lines.join('\n');
}
