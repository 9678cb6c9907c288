// Hostile input: malformed programs are refused at load naming the instruction; programs that loop,
// recurse or poke outside their memory end with a clean VmError naming the instruction, on every
// engine, quickly; nothing reaches the host as anything but a VmError.
import t, { type Test } from 'tap';
import { vm, VmError, DEFAULT_BUDGET } from '../backends/userspace/vm/index.js';
import { ENGINES, fromHex } from './fixtures/vm/util.js';

function loadError(t: Test, bytes: Uint8Array, kind: string, pc: number | undefined, re: RegExp, name: string): void {
  try {
    vm.load(bytes);
    t.fail(`${name}: loaded`);
  } catch (e) {
    t.ok(e instanceof VmError, `${name}: a VmError`);
    if (!(e instanceof VmError)) return;
    t.equal(e.kind, kind, `${name}: kind ${kind}`);
    t.equal(e.pc, pc, `${name}: pc ${String(pc)}`);
    t.match(e.message, re, `${name}: ${e.message}`);
  }
}

const A = (s: string): Uint8Array => vm.asm(s);

t.test('malformed programs are refused at load, naming the instruction', async (t) => {
  loadError(t, new Uint8Array(0), 'invalid', undefined, /empty program/, 'empty');
  loadError(t, new Uint8Array(12), 'invalid', undefined, /not a multiple of 8 \(truncated instruction\)/, 'truncated');
  loadError(t, A('mov %r0, 0\nexit').subarray(0, 15), 'invalid', undefined, /truncated/, 'one byte short');
  loadError(t, A('mov %r0, 0\nja +5\nexit'), 'invalid', 1, /jump target 7 out of range .* at pc 1 \(ja \+5\)/, 'jump past the end');
  loadError(t, A('ja -2\nexit'), 'invalid', 0, /jump target -1 out of range/, 'jump before the start');
  loadError(t, A('ja +1\nlddw %r0, 1\nexit'), 'invalid', 0, /middle of an lddw/, 'jump into an lddw');
  loadError(t, A('call local +5\nexit'), 'invalid', 0, /call target 6 out of range/, 'call out of range');
  loadError(t, A('lddw %r0, 5').subarray(0, 8), 'invalid', 0, /lddw is truncated/, 'lddw without its second slot');
  loadError(t, fromHex('18000000000000000100000000000000' + '9500000000000000'), 'invalid', 0, /second slot must have opcode/, 'lddw second slot with an opcode');
  loadError(t, A('mov %r0, 0'), 'invalid', 0, /fall through past the end/, 'no exit');
  loadError(t, A('exit\nmov %r0, 1\njeq %r0, 0, -1'), 'invalid', 2, /fall through past the end/, 'conditional jump last');
  loadError(t, fromHex('0000000000000000'), 'invalid', 0, /unknown load opcode 0x0/, 'opcode 0');
  loadError(t, fromHex('ff00000000000000' + '9500000000000000'), 'invalid', 0, /unknown/, 'opcode 0xff');
  loadError(t, fromHex('e700000000000000' + '9500000000000000'), 'invalid', 0, /unknown ALU opcode 0xe7/, 'ALU op 0xe0');
  loadError(t, fromHex('f500000000000000' + '9500000000000000'), 'invalid', 0, /unknown jump opcode/, 'JMP op 0xf0');
  loadError(t, fromHex('b70b000000000000' + '9500000000000000'), 'invalid', 0, /bad destination register r11/, 'r11');
  loadError(t, fromHex('bfc0000000000000' + '9500000000000000'), 'invalid', 0, /bad source register r12/, 'r12');
  loadError(t, A('mov %r10, 1\nexit'), 'invalid', 0, /r10 \(the frame pointer\) is read-only/, 'write r10');
  loadError(t, A('ldxdw %r10, [%r1+0]\nexit'), 'invalid', 0, /read-only/, 'load into r10');
  loadError(t, fromHex('d401000011000000' + '9500000000000000'), 'invalid', 0, /byte swap width 17/, 'le17');
  loadError(t, fromHex('3f12020000000000' + '9500000000000000'), 'invalid', 0, /div\/mod offset 2/, 'div with offset 2');
  loadError(t, fromHex('bc12200000000000' + '9500000000000000'), 'invalid', 0, /movsx width 32/, 'movsx32 in ALU32');
  loadError(t, fromHex('b701080000000000' + '9500000000000000'), 'invalid', 0, /movsx needs a register source/, 'movsx K');
  loadError(t, fromHex('db12000002000000' + '9500000000000000'), 'invalid', 0, /unknown atomic operation 0x2/, 'atomic op 2');
  loadError(t, fromHex('d312000000000000' + '9500000000000000'), 'invalid', 0, /unknown store opcode/, 'atomic byte');
  loadError(t, fromHex('9900000000000000' + '9500000000000000'), 'invalid', 0, /unknown load opcode/, 'ldxsdw');
  loadError(t, fromHex('3800000000000000' + '9500000000000000'), 'invalid', 0, /unknown load opcode/, 'ldabsdw');
  loadError(t, A('call btf 7\nexit'), 'unsupported', 0, /kfunc 7/, 'kfunc');
  loadError(t, A('call 1\nexit'), 'unsupported', 0, /unknown helper 1/, 'unknown helper');
  loadError(t, A('lddw %r1, var_addr(3)\nexit'), 'unsupported', 0, /src 3/, 'lddw var_addr');
  loadError(t, A('lddw %r1, map_by_fd(3)\nexit'), 'unsupported', 0, /unknown map fd 3/, 'lddw map fd without maps');
  loadError(t, fromHex('1870000000000000' + '0000000000000000' + '9500000000000000'), 'invalid', 0, /lddw with src_reg 7/, 'lddw src 7');
  loadError(t, fromHex('8d00000011000000' + '9500000000000000'), 'invalid', 0, /callx register/, 'callx r17');
  loadError(t, fromHex('8630000000000000' + '9500000000000000'), 'invalid', 0, /call in the JMP32 class/, 'call32');
  loadError(t, new Uint8Array(8 * 1_000_001), 'invalid', undefined, /limit 1000000/, 'too long');
});

t.test('endless loops stop at the budget, quickly, on every engine', async (t) => {
  const forever = A('mov %r0, 0\nloop:\nadd %r0, 1\nja loop');
  for (const engine of ENGINES) {
    const t0 = performance.now();
    try {
      vm.run(forever, undefined, { engine });
      t.fail('returned');
    } catch (e) {
      const ms = performance.now() - t0;
      t.ok(e instanceof VmError && e.kind === 'budget', `${engine}: budget fault after the default ${DEFAULT_BUDGET} instructions (${ms.toFixed(0)} ms)`);
      t.match((e as Error).message, /instruction budget exhausted at pc 1 \(add %r0, 1\)/);
      t.ok(ms < 20_000, `${engine}: bounded time`);
    }
  }
  // a loop hidden in a callee, and a self-loop with no body
  for (const src of ['call local f\nexit\nf:\nja -1\nexit', 'ja -1\nexit', 'ja32 -1\nexit']) {
    for (const engine of ENGINES) t.throws(() => vm.run(A(src), undefined, { engine, budget: 100_000 }), { kind: 'budget', message: /budget/ }, `${engine}: ${src.split('\n')[0]}`);
  }
  // a budget of 0 runs nothing
  for (const engine of ENGINES) t.throws(() => vm.run(A('mov %r0, 1\nexit'), undefined, { engine, budget: 0 }), { kind: 'budget', pc: 1, message: /budget/ }, `${engine}: a budget of 0: the exit check fails`);
});

t.test('recursion past the stack is a clean fault', async (t) => {
  for (const engine of ENGINES) {
    t.throws(() => vm.run(A('call local f\nexit\nf:\ncall local f\nexit'), undefined, { engine }), { kind: 'stack', pc: 2, message: /call depth exceeds 8 frames at pc 2 \(call local -1\)/ }, `${engine}: direct`);
    t.throws(() => vm.run(A('lddw %r6, code_addr(f)\ncallx %r6\nexit\nf:\nlddw %r6, code_addr(f)\ncallx %r6\nexit'), undefined, { engine }), { kind: 'stack', message: /stack/ }, `${engine}: through callx`);
    t.throws(() => vm.run(A('call local a\nexit\na:\ncall local b\nexit\nb:\ncall local a\nexit'), undefined, { engine }), { kind: 'stack', message: /stack/ }, `${engine}: mutual`);
  }
});

t.test('memory faults: every width, both directions, name the instruction', async (t) => {
  const mem = new Uint8Array(16);
  for (const engine of ENGINES) {
    for (const [w, name] of [[1, 'b'], [2, 'h'], [4, 'w'], [8, 'dw']] as const) {
      t.throws(() => vm.run(A(`ldx${name} %r0, [%r1+${17 - w}]\nexit`), mem, { engine }), { kind: 'memory', pc: 0, message: new RegExp(`load of ${w} bytes at 0x[0-9a-f]+ past the end of input region`) }, `${engine}: ldx${name} one byte past`);
      t.equal(vm.run(A(`ldx${name} %r0, [%r1+${16 - w}]\nmov %r0, 7\nexit`), mem, { engine }), 7n, `${engine}: ldx${name} at the last byte`);
      t.throws(() => vm.run(A(`st${name} [%r1+${17 - w}], 1\nexit`), mem, { engine }), { kind: 'memory', message: new RegExp(`store of ${w} bytes`) }, `${engine}: st${name} one byte past`);
      t.throws(() => vm.run(A(`st${name} [%r10+0], 1\nexit`), mem, { engine }), { kind: 'memory', message: /memory/ }, `${engine}: st${name} above the stack`);
      t.throws(() => vm.run(A(`st${name} [%r10-${512 + w}], 1\nexit`), mem, { engine }), { kind: 'memory', message: /below the current stack frame|out of bounds/ }, `${engine}: st${name} below the frame`);
    }
    t.throws(() => vm.run(A('mov %r1, 0\nldxdw %r0, [%r1+0]\nexit'), undefined, { engine }), { kind: 'memory', message: /NULL page/ }, `${engine}: NULL`);
    t.throws(() => vm.run(A('lddw %r1, 0xffffffffffffffff\nldxb %r0, [%r1+1]\nexit'), undefined, { engine }), { kind: 'memory', message: /memory/ }, `${engine}: wrapping address`);
    t.throws(() => vm.run(A('lddw %r1, 0x7fffffff00000000\nstxdw [%r1-8], %r1\nexit'), undefined, { engine }), { kind: 'memory', message: /memory/ }, `${engine}: huge address`);
    // the callee may not touch a deeper (unused) frame, the caller's frame is fine
    t.throws(() => vm.run(A('mov %r1, %r10\ncall local f\nexit\nf:\nstdw [%r10-520], 1\nexit'), undefined, { engine }), { kind: 'memory', pc: 3, message: /memory/ }, `${engine}: below the callee's frame`);
    // a fault inside a callee after the caller touched memory: the input buffer still comes back
    const m = new Uint8Array(8);
    t.throws(() => vm.run(A('stb [%r1+0], 9\ncall local f\nexit\nf:\nstb [%r1+8], 1\nexit'), m, { engine }), { kind: 'memory', pc: 3, message: /memory/ });
    t.equal(m[0], 9, `${engine}: memory copied back after a fault`);
  }
});

t.test('huge programs still run (the compiler falls back past V8 function limits)', async (t) => {
  const n = 250_000;
  const parts: string[] = ['mov %r0, 0', 'mov %r1, 3'];
  for (let i = 0; i < n; i++) parts.push(`jeq %r1, ${i % 7}, +1`, 'add %r0, 1');
  parts.push('exit');
  const p = vm.load(A(parts.join('\n')));
  const want = BigInt(n - Math.floor((n - 4) / 7) - 1);
  for (const engine of ENGINES) t.equal(vm.run(p, undefined, { engine }), want, `${engine}: ${2 * n + 3} instructions`);
});

t.test('errors never escape as anything but VmError (random bytes through load and run)', async (t) => {
  let seen = 0;
  for (let i = 0; i < 3000; i++) {
    const n = 1 + (i % 9);
    const b = new Uint8Array(n * 8);
    for (let k = 0; k < b.length; k++) b[k] = (Math.imul(i + 1, 2654435761) >>> ((k * 7) % 24)) & 0xff;
    b.set([0x95, 0, 0, 0, 0, 0, 0, 0], (n - 1) * 8);
    for (const engine of ENGINES) {
      try {
        vm.run(b, new Uint8Array(16), { engine, budget: 1000 });
      } catch (e) {
        if (!(e instanceof VmError)) {
          t.fail(`bytes ${Buffer.from(b).toString('hex')}: ${String(e)}`);
          return;
        }
        seen++;
      }
    }
  }
  t.pass(`3000 random programs x ${ENGINES.length} engines: ${seen} VmErrors, nothing else`);
});
