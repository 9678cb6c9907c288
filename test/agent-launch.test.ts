// The uprobe agent end to end in launch mode (backends/userspace/attach/launch.ts + native/agent/lib):
// a C target launched under libwbpf_agent.so, a program that counts hits in a shared array map and writes
// PARM1 of each to a shared ring buffer hooked on `target`; the host reads both; closing the channel
// unhooks and the target runs on unchanged to exit 0.
import t from 'tap';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { loadNative, type NativeAddon, type NativeShmMap } from '../backends/linux/native.js';
import { launch } from '../backends/userspace/attach/launch.js';
import { resolveUprobe } from '../backends/userspace/attach/symbols.js';
import { assemble } from '../backends/userspace/vm/asm.js';
import { BUILD, FIXTURES, ROOT } from './helpers.js';

const AGENT_DIR = path.join(ROOT, 'native', 'agent');
const OUT = path.join(BUILD, 'agent');
const AGENT = path.join(OUT, 'libwbpf_agent.so');
const TARGET = path.join(OUT, 'launch-target');
const N = 100;
const ARRAY = 2, RINGBUF = 27, LOOKUP = 1;

// counter[0] += 1 (array map 1); ringbuf_output(map 2, &PARM1, 8, 0)
const PROGRAM = `
  mov %r6, %r1
  stw [%r10-4], 0
  lddw %r1, map_by_fd(1)
  mov %r2, %r10
  add %r2, -4
  call 1
  jeq %r0, 0, +2
  mov %r1, 1
  lock add [%r0+0], %r1
  ldxdw %r1, [%r6+112]
  stxdw [%r10-16], %r1
  lddw %r1, map_by_fd(2)
  mov %r2, %r10
  add %r2, -16
  mov %r3, 8
  mov %r4, 0
  call 130
  mov %r0, 0
  exit
`;

function tasks(pid: number): number {
  return fs.readdirSync(`/proc/${pid}/task`).length;
}

async function until(what: () => boolean, ms: number): Promise<boolean> {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    if (what()) return true;
    await new Promise((r) => setTimeout(r, 10));
  }
  return what();
}

/** the target launched under the agent with a counter (array map 1) and, when ringBytes > 0, a ring buffer (map 2); all closed or killed at the end of `tt` */
async function started(
  tt: Tap.Test,
  native: NativeAddon,
  ncpus: number,
  args: string[],
  counterEntries: number,
  ringBytes: number,
): Promise<{ counter: NativeShmMap; ring: NativeShmMap | undefined; agent: Awaited<ReturnType<typeof launch>>; stdout: () => string; exited: Promise<number | null> }> {
  const counter = native.shmMapCreate(ARRAY, 4, 8, counterEntries, 0, ncpus, 0, 'hits');
  const ring = ringBytes > 0 ? native.shmMapCreate(RINGBUF, 0, 0, ringBytes, 0, ncpus, 0, 'args') : undefined;
  tt.teardown(() => {
    native.shmMapClose(counter.id);
    if (ring) native.shmMapClose(ring.id);
  });
  const maps = [{ id: 1, fd: counter.fd, notifyFd: -1 }, ...(ring ? [{ id: 2, fd: ring.fd, notifyFd: ring.notifyFd }] : [])];
  const agent = await launch([TARGET, ...args], { agent: AGENT, maps });
  const child = agent.child;
  tt.teardown(() => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  });
  let out = '';
  child.stdout?.on('data', (d: Buffer) => (out += d.toString()));
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  return { counter, ring, agent, stdout: () => out, exited };
}

if (process.arch !== 'x64') {
  t.pass('the inline hook supports x86-64 only for now');
} else {
  t.setTimeout(120_000);
  const native = loadNative();
  const ncpus = native.numPossibleCpus();

  t.test('launch a target under the agent, hook, count, unhook', async (tt) => {
    const mk = spawnSync('make', ['-C', AGENT_DIR, `B=${OUT}`, '-j2'], { encoding: 'utf8' });
    tt.equal(mk.status, 0, 'make the agent', { stderr: mk.stderr });
    const cc = spawnSync('gcc', ['-O2', '-g', path.join(FIXTURES, 'agent', 'launch-target.c'), '-o', TARGET, '-lpthread'], { encoding: 'utf8' });
    tt.equal(cc.status, 0, 'build the target', { stderr: cc.stderr });

    const target = resolveUprobe({ binary: TARGET, func: 'target', offset: 0, retprobe: false, sleepable: false });
    const run = await started(tt, native, ncpus, [String(N)], 1, 1 << 16);
    const { counter, agent, stdout, exited } = run;
    const ring = run.ring as NativeShmMap;
    const child = agent.child;

    tt.equal(await agent.sendProgram({ id: 7, insns: assemble(PROGRAM) }), 'prog 7', 'the engine loads the program');
    await tt.rejects(agent.sendProgram({ id: 8, insns: assemble('call 35\nexit') }), /helper 35 is not implemented by the agent/,
      'a helper the agent lacks is refused');
    await tt.rejects(agent.sendProgram({ id: 9, insns: assemble('ja +5\nexit') }), /out of range/, 'the engine\'s refusal is answered');
    const hooked = await agent.sendHook({
      id: 3, progId: 7, dev: target.dev, ino: target.ino, fileOffset: target.fileOffset, size: target.func?.size ?? 0,
    });
    tt.match(hooked, /^hook 3 at 0x[0-9a-f]+$/, 'the agent hooks target');

    child.stdin?.write('1');
    tt.ok(await until(() => stdout().includes('round 0 done'), 20_000), 'round 0 ran');
    const mem = new Uint8Array(16);
    tt.equal(native.shmMapOp(LOOKUP, counter.id, mem, 0, 8, 0), 0, 'counter lookup');
    tt.equal(Buffer.from(mem).readBigUInt64LE(8), BigInt(N), 'the counter reads N');
    const out = new Uint8Array(N * 16 + 64);
    const records = native.shmRingPoll(ring.id, 1000, out, -1);
    tt.equal(records, N, 'N ring buffer records');
    const sizes: number[] = [];
    const args: bigint[] = [];
    const b = Buffer.from(out);
    for (let i = 0, off = 0; i < records; i++, off += 16) {
      sizes.push(b.readUInt32LE(off));
      args.push(b.readBigUInt64LE(off + 8));
    }
    tt.same(sizes, Array.from({ length: N }, () => 8), 'every record is 8 bytes');
    tt.same(args, Array.from({ length: N }, (_, i) => BigInt(i + 1)), 'each record holds PARM1 of its call');
    tt.same(agent.events, [], 'no hook was disabled');

    agent.close();
    tt.ok(await until(() => tasks(child.pid!) === 1, 10_000), 'the agent unhooks and its thread ends on EOF');
    child.stdin?.write('2');
    tt.ok(await until(() => stdout().includes('round 1 done'), 20_000), 'round 1 ran unhooked');
    tt.equal(native.shmMapOp(LOOKUP, counter.id, mem, 0, 8, 0), 0, 'counter lookup');
    tt.equal(Buffer.from(mem).readBigUInt64LE(8), BigInt(N), 'the counter still reads N');
    tt.equal(native.shmRingPoll(ring.id, 0, out, -1), 0, 'no more records');
    child.stdin?.end();
    tt.equal(await exited, 0, 'the target exits 0');
  });

  t.test('a program that faults disables its hook, the target runs on', async (tt) => {
    const target = resolveUprobe({ binary: TARGET, func: 'target', offset: 0, retprobe: false, sleepable: false });
    const agent = await launch([TARGET, String(N)], { agent: AGENT, maps: [] });
    const child = agent.child;
    tt.teardown(() => {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    });
    let stdout = '';
    child.stdout?.on('data', (d: Buffer) => (stdout += d.toString()));
    const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
    // reads past the end of ctx (pt_regs is 168 bytes)
    await agent.sendProgram({ id: 1, insns: assemble('ldxdw %r0, [%r1+4096]\nexit') });
    await tt.rejects(agent.sendHook({ id: 2, progId: 5, dev: target.dev, ino: target.ino, fileOffset: target.fileOffset, size: 0 }),
      /hook 2: no program 5/, 'a hook of an unknown program is refused');
    await tt.rejects(agent.sendHook({ id: 2, progId: 1, dev: target.dev, ino: target.ino + 1n, fileOffset: target.fileOffset, size: 0 }),
      /is not mapped executable/, 'a file the process does not map is refused');
    await agent.sendHook({ id: 2, progId: 1, dev: target.dev, ino: target.ino, fileOffset: target.fileOffset, size: target.func?.size ?? 0 });
    child.stdin?.write('1');
    tt.ok(await until(() => stdout.includes('round 0 done'), 20_000), 'round 0 ran');
    tt.ok(await until(() => agent.events.length > 0, 5_000), 'the agent reports the fault');
    tt.equal(agent.events.length, 1, 'once');
    tt.match(agent.events[0], { hookId: 2, message: /^hook 2 disabled: program 1 stopped with status 2 at pc 0/ }, 'a memory fault');
    agent.close();
    child.stdin?.end();
    tt.equal(await exited, 0, 'the target exits 0');
  });

  t.test('a hit inside a hit is skipped (a helper calling a hooked function)', async (tt) => {
    const target = resolveUprobe({ binary: TARGET, func: 'target', offset: 0, retprobe: false, sleepable: false });
    // a function of the agent's own map_lookup_elem helper, which the programs call
    const lookup = resolveUprobe({ binary: AGENT, func: 'wbpf_map_key_size', offset: 0, retprobe: false, sleepable: false });
    const { counter, agent, stdout, exited } = await started(tt, native, ncpus, [String(N)], 2, 0);
    const child = agent.child;
    // counter[KEY] += 1 (the helper calls wbpf_map_key_size)
    const counting = (key: number): Uint8Array => assemble(`
      stw [%r10-4], ${key}
      lddw %r1, map_by_fd(1)
      mov %r2, %r10
      add %r2, -4
      call 1
      jeq %r0, 0, +2
      mov %r1, 1
      lock add [%r0+0], %r1
      mov %r0, 0
      exit`);
    await agent.sendProgram({ id: 1, insns: counting(0) });
    await agent.sendProgram({ id: 2, insns: counting(1) });
    await agent.sendHook({ id: 1, progId: 1, dev: target.dev, ino: target.ino, fileOffset: target.fileOffset, size: target.func?.size ?? 0 });
    await agent.sendHook({ id: 2, progId: 2, dev: lookup.dev, ino: lookup.ino, fileOffset: lookup.fileOffset, size: lookup.func?.size ?? 0 });
    child.stdin?.write('1');
    tt.ok(await until(() => stdout().includes('round 0 done'), 20_000), 'round 0 ran');
    const mem = new Uint8Array(16);
    const read = (key: number): bigint => {
      new DataView(mem.buffer).setUint32(0, key, true);
      tt.equal(native.shmMapOp(LOOKUP, counter.id, mem, 0, 8, 0), 0, `counter[${key}] lookup`);
      return Buffer.from(mem).readBigUInt64LE(8);
    };
    tt.equal(read(0), BigInt(N), 'target: N hits');
    tt.equal(read(1), 0n, 'wbpf_map_key_size, called only by a helper inside a hit: its program never ran');
    tt.same(agent.events, [], 'no hook was disabled');
    agent.close();
    child.stdin?.end();
    tt.equal(await exited, 0, 'the target exits 0');
  });

  t.test('8 threads hit the hook at once', async (tt) => {
    const THREADS = 8, CALLS = 2000;
    const target = resolveUprobe({ binary: TARGET, func: 'target', offset: 0, retprobe: false, sleepable: false });
    const run = await started(tt, native, ncpus, [String(CALLS), String(THREADS)], 1, 1 << 20);
    const { counter, agent, stdout, exited } = run;
    const ring = run.ring as NativeShmMap;
    const child = agent.child;
    await agent.sendProgram({ id: 7, insns: assemble(PROGRAM) });
    await agent.sendHook({ id: 3, progId: 7, dev: target.dev, ino: target.ino, fileOffset: target.fileOffset, size: target.func?.size ?? 0 });
    child.stdin?.write('1');
    tt.ok(await until(() => stdout().includes('round 0 done'), 30_000), 'round 0 ran');
    const mem = new Uint8Array(16);
    tt.equal(native.shmMapOp(LOOKUP, counter.id, mem, 0, 8, 0), 0, 'counter lookup');
    tt.equal(Buffer.from(mem).readBigUInt64LE(8), BigInt(THREADS * CALLS), 'the counter reads THREADS x CALLS');
    const out = new Uint8Array(THREADS * CALLS * 16 + 64);
    const records = native.shmRingPoll(ring.id, 1000, out, -1);
    tt.equal(records, THREADS * CALLS, 'one record per call');
    const seen = new Map<bigint, number>();
    const b = Buffer.from(out);
    for (let i = 0; i < records; i++) {
      const a = b.readBigUInt64LE(i * 16 + 8);
      seen.set(a, (seen.get(a) ?? 0) + 1);
    }
    tt.equal(seen.size, CALLS, 'every argument seen');
    tt.ok([...seen.values()].every((c) => c === THREADS), 'each once per thread');
    tt.same(agent.events, [], 'no hook was disabled');
    agent.close();
    child.stdin?.end();
    tt.equal(await exited, 0, 'the target exits 0');
  });
}
