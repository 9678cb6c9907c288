// The library API as the userspace backend uses it: environments, memory regions, helpers, lddw map
// references, tail calls through a prog array, the JIT cache, step counts. Every run on every engine (interpreter, compiler, native).
import t from 'tap';
import { vm, VmError, MAX_TAIL_CALLS, type Helper, type Region, type VmEnvironment, type VmProgram } from '../backends/userspace/vm/index.js';
import { both, ENGINES } from './fixtures/vm/util.js';

t.test('run(bytes) -> r0 as bigint; execute -> steps', async (t) => {
  const p = vm.asm('mov %r0, -1\nexit');
  t.equal(vm.run(p), 0xffffffffffffffffn, 'u64, default engine (jit)');
  t.equal(vm.run(p, undefined, { engine: 'interp' }), 0xffffffffffffffffn);
  t.same(vm.execute(p), { r0: 0xffffffffffffffffn, steps: 2 });
  t.throws(() => vm.run(p, undefined, { engine: 'nope' as 'jit' }), /unknown engine/);
});

t.test('args override r1..r5', async (t) => {
  const p = vm.load(vm.asm('mov %r0, %r1\nadd %r0, %r2\nadd %r0, %r5\nexit'));
  for (const engine of ENGINES) t.equal(vm.run(p, undefined, { engine, args: [1n, 2n, 0n, 0n, -4n] }), 0xffffffffffffffffn, engine);
});

/** a tiny stand-in for the userspace backend's loader: one array map with 4 u64 slots, its fd 7 */
function arrayMapEnv(extra: Record<number, Helper> = {}): { env: VmEnvironment; values: Region } {
  const memory = vm.createMemory();
  const values = memory.alloc(4 * 8, { kind: 'map-value', name: 'counts' });
  const MAP = 0xffff000000000007n; // an opaque handle: helpers recognise it
  const helpers = new Map<number, Helper>([
    // bpf_map_lookup_elem(map, key*) -> value* or NULL
    [1, (map, key, _3, _4, _5, call) => {
      if (map !== MAP) return 0n;
      const k = call.memory.view().getUint32(call.memory.check(key, 4, false), true);
      return k < 4 ? BigInt(values.addr + k * 8) : 0n;
    }],
    ...Object.entries(extra).map(([k, v]) => [Number(k), v] as [number, Helper]),
  ]);
  const env: VmEnvironment = {
    memory,
    helper: (id) => helpers.get(id),
    mapByFd: (fd) => (fd === 7 ? MAP : undefined),
    mapValue: (fd) => (fd === 7 ? BigInt(values.addr) : undefined),
  };
  return { env, values };
}

t.test('lddw map_by_fd + a lookup helper + a store into the map value', async (t) => {
  const { env, values } = arrayMapEnv();
  const p = vm.load(
    vm.asm(`
      stw [%r10-4], 2
      lddw %r1, map_by_fd(7)
      mov %r2, %r10
      add %r2, -4
      call 1
      jeq %r0, 0, +4
      ldxdw %r1, [%r0+0]
      add %r1, 1
      stxdw [%r0+0], %r1
      mov %r0, %r1
      exit`),
    { env, name: 'counter' },
  );
  for (const engine of ENGINES) t.equal(vm.run(p, undefined, { engine }), BigInt(ENGINES.indexOf(engine) + 1), `${engine} increments slot 2`);
  t.equal(env.memory.view().getBigUint64(values.addr + 16, true), BigInt(ENGINES.length), `the map value holds ${ENGINES.length}`);
});

t.test('lddw map_val(fd)+off reads global data directly', async (t) => {
  const { env, values } = arrayMapEnv();
  env.memory.view().setBigUint64(values.addr + 8, 0x1234n, true);
  const p = vm.load(vm.asm('lddw %r1, map_val(7)+8\nldxdw %r0, [%r1+0]\nexit'), { env });
  for (const engine of ENGINES) t.equal(vm.run(p, undefined, { engine }), 0x1234n, engine);
  t.throws(() => vm.load(vm.asm('lddw %r1, map_by_fd(8)\nexit'), { env }), { kind: 'unsupported', pc: 0, message: /unknown map fd 8 at pc 0/ });
  t.throws(() => vm.load(vm.asm('lddw %r1, map_val(9)+0\nexit'), { env }), { kind: 'unsupported', message: /no direct value for map fd 9/ });
  t.throws(() => vm.load(vm.asm('lddw %r1, map_by_fd(7)\nexit')), { kind: 'unsupported', message: /unknown map fd 7/ }, 'the default environment has no maps');
});

t.test('map_by_idx / map_val_idx through the environment', async (t) => {
  const memory = vm.createMemory();
  const v = memory.alloc(8, { kind: 'map-value' });
  memory.view().setBigUint64(v.addr, 77n, true);
  const env: VmEnvironment = { memory, helper: () => undefined, mapByIndex: (i) => (i === 0 ? 5n : undefined), mapValueByIndex: (i) => (i === 0 ? BigInt(v.addr) : undefined) };
  const p = vm.load(vm.asm('lddw %r1, map_by_idx(0)\nlddw %r2, map_val_idx(0)+0\nldxdw %r0, [%r2+0]\nadd %r0, %r1\nexit'), { env });
  const o = both(p);
  t.ok('r0' in o && o.r0 === 82n, 'map handle 5 + value 77');
});

t.test('read-only regions refuse stores; freed regions fault', async (t) => {
  const memory = vm.createMemory();
  const ro = memory.alloc(16, { kind: 'map-value', name: '.rodata', writable: false });
  memory.view().setUint32(ro.addr, 99, true);
  const env = vm.createEnvironment({ memory });
  const read = vm.load(vm.asm(`lddw %r1, ${ro.addr}\nldxw %r0, [%r1+0]\nexit`), { env });
  const write = vm.load(vm.asm(`lddw %r1, ${ro.addr}\nstw [%r1+0], 1\nexit`), { env });
  for (const engine of ENGINES) {
    t.equal(vm.run(read, undefined, { engine }), 99n, `${engine}: reads`);
    t.throws(() => vm.run(write, undefined, { engine }), { kind: 'memory', pc: 2, message: /store of 4 bytes .* into read-only map-value region '.rodata'/ }, `${engine}: store refused`);
  }
  memory.free(ro);
  for (const engine of ENGINES) t.throws(() => vm.run(read, undefined, { engine }), { kind: 'memory', message: /out of bounds/ }, `${engine}: freed region faults`);
});

t.test('the region cache is dropped after helper calls (a helper may free what the program used)', async (t) => {
  const memory = vm.createMemory();
  let r = memory.alloc(16, { kind: 'map-value' });
  const env = vm.createEnvironment({
    memory,
    helpers: {
      1: () => {
        memory.free(r);
        r = memory.alloc(4096, { kind: 'other' }); // a different address; the old one is gone
        return 0n;
      },
    },
  });
  const p = vm.load(vm.asm(`lddw %r6, ${r.addr}\nldxdw %r0, [%r6+0]\ncall 1\nldxdw %r0, [%r6+8]\nexit`), { env });
  for (const engine of ENGINES) {
    t.throws(() => vm.run(p, undefined, { engine }), { kind: 'memory', pc: 4, message: /out of bounds/ }, `${engine}: stale pointer faults after the helper`);
    r = memory.alloc(16, { kind: 'map-value' });
  }
});

t.test('helpers: args, r0, r6-r9 preserved, errors wrapped with the instruction', async (t) => {
  const seen: bigint[][] = [];
  const env = vm.createEnvironment({
    helpers: {
      3: (a, b, c, d, e) => {
        seen.push([a, b, c, d, e]);
        return a + b + c + d + e;
      },
      4: () => {
        throw new Error('boom');
      },
      5: () => 5 as unknown as bigint,
      6: (_a, _b, _c, _d, _e, call) => BigInt(call.pc) + (call.data as bigint),
    },
  });
  const p = vm.load(vm.asm('mov %r1, 1\nmov %r2, 2\nmov %r3, 3\nmov %r4, 4\nmov %r5, -1\nmov %r6, 6\ncall 3\nadd %r0, %r6\nexit'), { env });
  for (const engine of ENGINES) t.equal(vm.run(p, undefined, { engine }), 15n, engine);
  t.same(seen[0], [1n, 2n, 3n, 4n, 0xffffffffffffffffn], 'arguments arrive as u64');
  const boom = vm.load(vm.asm('mov %r0, 0\ncall 4\nexit'), { env });
  for (const engine of ENGINES) {
    try {
      vm.run(boom, undefined, { engine });
      t.fail('no throw');
    } catch (e) {
      t.ok(e instanceof VmError && e.kind === 'helper' && e.pc === 1 && /helper 4 failed: boom at pc 1 \(call 4\)/.test(e.message), `${engine}: ${String(e)}`);
      t.equal((e as Error).cause instanceof Error && ((e as Error).cause as Error).message, 'boom', 'cause kept');
    }
  }
  const bad = vm.load(vm.asm('call 5\nexit'), { env });
  for (const engine of ENGINES) t.throws(() => vm.run(bad, undefined, { engine }), { kind: 'helper', message: /returned number/ });
  const pc = vm.load(vm.asm('mov %r0, 0\nmov %r0, 0\ncall 6\nexit'), { env });
  for (const engine of ENGINES) t.equal(vm.run(pc, undefined, { engine, data: 100n }), 102n, `${engine}: HelperCall.pc and data`);
  t.throws(() => vm.load(vm.asm('call 99\nexit'), { env }), { kind: 'unsupported', pc: 0, message: /unknown helper 99/ });
  t.throws(() => vm.load(vm.asm('call btf 1234\nexit'), { env }), { kind: 'unsupported', message: /kfunc 1234/ });
});

t.test('helpers reach program memory through checked accessors', async (t) => {
  const env = vm.createEnvironment({
    helpers: {
      // memset(r1, r2 = byte, r3 = len)
      7: (dst, b, len, _4, _5, call) => {
        call.memory.write(dst, new Uint8Array(Number(len)).fill(Number(b & 0xffn)));
        return 0n;
      },
    },
  });
  const ok = vm.load(vm.asm('mov %r6, %r1\nmov %r2, 0xab\nmov %r3, 4\ncall 7\nldxw %r0, [%r6+0]\nexit'), { env });
  const bad = vm.load(vm.asm('mov %r2, 0xab\nmov %r3, 9\ncall 7\nexit'), { env });
  for (const engine of ENGINES) {
    t.equal(vm.run(ok, new Uint8Array(8), { engine }), 0xababababn, engine);
    t.throws(() => vm.run(bad, new Uint8Array(8), { engine }), { kind: 'memory', message: /helper write of 9 bytes/ }, `${engine}: helper overrun faults`);
  }
});

t.test('tail calls through a prog array', async (t) => {
  const memory = vm.createMemory();
  const slots: (VmProgram | undefined)[] = [];
  const PROG_ARRAY = 0xabcn;
  const env: VmEnvironment = {
    memory,
    helper: () => undefined,
    mapByFd: (fd) => (fd === 3 ? PROG_ARRAY : undefined),
    tailCall: (map, index) => (map === PROG_ARRAY ? slots[index] : undefined),
  };
  // slot 0: returns ctx's first u32 + 100; slot 1: tail-calls slot 0 after bumping the ctx
  slots[0] = vm.load(vm.asm('ldxw %r0, [%r1+0]\nadd %r0, 100\nexit'), { env, name: 'leaf' });
  slots[1] = vm.load(vm.asm('ldxw %r2, [%r1+0]\nadd %r2, 1\nstxw [%r1+0], %r2\nlddw %r2, map_by_fd(3)\nmov %r3, 0\ncall 12\nmov %r0, 999\nexit'), { env, name: 'mid' });
  const entry = vm.load(vm.asm('lddw %r2, map_by_fd(3)\nmov %r3, 1\ncall 12\nmov %r0, 7\nexit'), { env, name: 'entry' });
  const miss = vm.load(vm.asm('lddw %r2, map_by_fd(3)\nmov %r3, 5\ncall 12\nexit'), { env, name: 'miss' });
  for (const engine of ENGINES) {
    const ctx = new Uint8Array([1, 0, 0, 0]);
    t.equal(vm.run(entry, ctx, { engine }), 102n, `${engine}: entry -> mid -> leaf; the rest of each caller is skipped`);
    t.equal(ctx[0], 2, `${engine}: ctx shared along the chain`);
    t.equal(vm.run(miss, new Uint8Array(4), { engine }), BigInt.asUintN(64, -2n), `${engine}: an empty slot falls through with r0 = -ENOENT`);
  }
  // a program that tail-calls itself forever stops after MAX_TAIL_CALLS and falls through
  slots[2] = vm.load(vm.asm('ldxw %r2, [%r1+0]\nadd %r2, 1\nstxw [%r1+0], %r2\nlddw %r2, map_by_fd(3)\nmov %r3, 2\ncall 12\nldxw %r0, [%r1+0]\nexit'), { env, name: 'self' });
  for (const engine of ENGINES) {
    const ctx = new Uint8Array(4);
    t.equal(vm.run(slots[2]!, ctx, { engine }), BigInt(MAX_TAIL_CALLS + 1), `${engine}: ${MAX_TAIL_CALLS} tail calls then fall through`);
  }
  // a tail call from a subprogram returns to the subprogram's caller with the target's r0
  const sub = vm.load(vm.asm('mov %r6, %r1\ncall local f\nadd %r0, 1000\nexit\nf:\nlddw %r2, map_by_fd(3)\nmov %r3, 0\ncall 12\nmov %r0, 5\nexit'), { env, name: 'sub' });
  for (const engine of ENGINES) t.equal(vm.run(sub, new Uint8Array([3, 0, 0, 0]), { engine }), 1103n, `${engine}: tail call from a subprogram`);
  // budget covers the whole chain
  // entry's block (5) + mid's (8) + leaf's (3): blocks are charged whole on entry, tail call or not
  for (const engine of ENGINES) t.same(vm.execute(entry, new Uint8Array(4), { engine }).steps, 16, `${engine}: steps count every program of the chain`);
});

t.test('JIT: compiled once per program, cached by content', async (t) => {
  const bytes = vm.asm('mov %r0, 42\nadd %r0, %r1\nexit\n');
  const p1 = vm.load(bytes);
  const first = vm.compile(p1);
  t.ok(first > 0, `compiled in ${first.toFixed(2)} ms`);
  t.equal(vm.compile(p1), 0, 'a second compile is free');
  const p2 = vm.load(bytes);
  const t0 = performance.now();
  vm.compile(p2);
  t.ok(performance.now() - t0 < first + 5, 'same bytes, another environment: the module is reused (only instantiated)');
  t.equal(vm.run(p2, undefined, { args: [8n] }), 50n);
});

t.test('budget: exact step counts, identical on every engine', async (t) => {
  const loop = vm.asm('mov %r0, 0\nmov %r1, 10\nadd %r0, 1\nsub %r1, 1\njne %r1, 0, -3\nexit');
  const steps = 2 + 10 * 3 + 1;
  for (const engine of ENGINES) {
    t.equal(vm.execute(loop, undefined, { engine }).steps, steps, `${engine}: ${steps} steps`);
    t.equal(vm.execute(loop, undefined, { engine, budget: steps }).r0, 10n, `${engine}: a budget of exactly ${steps} is enough`);
    t.throws(() => vm.execute(loop, undefined, { engine, budget: steps - 1 }), { kind: 'budget', message: /budget exhausted/ }, `${engine}: one less is not`);
  }
});

t.test('asm/disasm round trip over every instruction form', async (t) => {
  const text = [
    'add %r1, %r2', 'add32 %r1, -5', 'sub %r0, 7', 'mul32 %r3, %r4', 'div %r1, 3', 'sdiv32 %r1, %r2', 'mod %r1, %r2', 'smod %r1, -3',
    'or %r1, 1', 'and32 %r1, %r9', 'lsh %r1, 3', 'rsh32 %r1, %r2', 'arsh %r1, 63', 'xor %r1, %r2', 'neg %r1', 'neg32 %r2',
    'mov %r1, %r2', 'mov32 %r1, -1', 'movsx864 %r1, %r2', 'movsx1664 %r1, %r2', 'movsx3264 %r1, %r2', 'movsx832 %r1, %r2', 'movsx1632 %r1, %r2',
    'le16 %r1', 'le32 %r1', 'le64 %r1', 'be16 %r1', 'be32 %r1', 'be64 %r1', 'bswap16 %r1', 'bswap32 %r1', 'bswap64 %r1',
    'lddw %r1, 0x123456789abcdef0', 'lddw %r1, map_by_fd(3)', 'lddw %r1, map_val(3)+16', 'lddw %r1, map_by_idx(1)', 'lddw %r1, map_val_idx(2)-8', 'lddw %r1, var_addr(5)', 'lddw %r1, code_addr(+1)',
    'ldxb %r0, [%r1+0]', 'ldxh %r0, [%r1-2]', 'ldxw %r0, [%r10-4]', 'ldxdw %r0, [%r1+8]', 'ldxsb %r0, [%r1+1]', 'ldxsh %r0, [%r1+2]', 'ldxsw %r0, [%r1+4]',
    'stb [%r1+0], 1', 'sth [%r1+2], -1', 'stw [%r10-8], 7', 'stdw [%r10-8], -7', 'stxb [%r1+0], %r2', 'stxh [%r1+0], %r2', 'stxw [%r1+0], %r2', 'stxdw [%r10-8], %r2',
    'lock add [%r1+0], %r2', 'lock add32 [%r1+0], %r2', 'lock or [%r1+0], %r2', 'lock and32 [%r1+0], %r2', 'lock xor [%r1+0], %r2',
    'lock fetch add [%r1+0], %r2', 'lock fetch or32 [%r1+0], %r2', 'lock fetch and [%r1+0], %r2', 'lock fetch xor32 [%r1+0], %r2',
    'lock xchg [%r1+0], %r2', 'lock xchg32 [%r1+0], %r2', 'lock cmpxchg [%r1+0], %r2', 'lock cmpxchg32 [%r1+0], %r2',
    'ldabsb 1', 'ldabsh 2', 'ldabsw 3', 'ldindb %r1, 1', 'ldindh %r2, -2', 'ldindw %r3, 4',
    'ja +1', 'ja -2', 'ja32 +100000', 'jeq %r1, 0, +3', 'jeq %r1, %r2, -1', 'jgt32 %r1, 5, +0', 'jge %r1, %r2, +1', 'jset32 %r1, %r2, +1', 'jne %r1, -1, +1',
    'jsgt %r1, %r2, +1', 'jsge32 %r1, 3, +1', 'jlt %r1, %r2, +1', 'jle32 %r1, 9, +1', 'jslt %r1, %r2, +1', 'jsle32 %r1, -9, +1',
    'call 1', 'call local +2', 'call btf 99', 'callx %r3', 'exit', '.quad 0x00000000000000ff',
  ].join('\n') + '\n';
  const bytes = vm.asm(text);
  t.equal(vm.disasm(bytes), text, 'disasm(asm(x)) == x');
  t.same([...vm.asm(vm.disasm(bytes))], [...bytes], 'asm(disasm(b)) == b');
  // any bytes at all disassemble and reassemble to themselves
  const junk = new Uint8Array(8 * 64).map((_, i) => (i * 37 + 11) & 0xff);
  t.same([...vm.asm(vm.disasm(junk))], [...junk], 'arbitrary bytes round-trip');
  const tail = new Uint8Array([0x95, 0, 0, 0, 0, 0, 0, 0, 1, 2, 3]);
  t.same([...vm.asm(vm.disasm(tail))], [...tail], 'a truncated tail round-trips');
  t.throws(() => vm.asm('frob %r1'), /line 1: unknown instruction 'frob'/);
  t.throws(() => vm.asm('mov %r11, 1'), /bad register/);
  t.throws(() => vm.asm('ja nowhere'), /undefined label 'nowhere'/);
  t.throws(() => vm.asm('add %r1, 0x100000000'), /out of 32-bit range/);
});

t.test('runs do not nest on one memory', async (t) => {
  const env = vm.createEnvironment();
  const inner = vm.load(vm.asm('mov %r0, 1\nexit'), { env });
  const env2: VmEnvironment = { memory: env.memory, helper: (id) => (id === 1 ? () => vm.run(inner) : undefined) };
  const outer = vm.load(vm.asm('call 1\nexit'), { env: env2 });
  for (const engine of ENGINES) t.throws(() => vm.run(outer, undefined, { engine }), { kind: 'call', message: /already using this VmMemory/ }, engine);
  t.equal(vm.run(inner), 1n, 'the memory is usable again afterwards');
});
