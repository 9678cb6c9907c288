// The agent's JIT in a real process (native/agent/vm/jit*.c, in libwbpf_agent.so): a launched target runs a
// computing program (a loop, ctx reads, stack, a map update, ring buffer output) compiled to machine code, and
// again with WBPF_JIT=0 in its environment (the interpreter): the same counters, records and fault reports;
// a hostile program's fault is reported identically; a program the JIT does not compile (a bpf-to-bpf call)
// runs on the interpreter and the hook's reply says so (what --verbose prints); the code is mapped at load
// (read-execute, never writable) and unmapped when the program is dropped.
import t from 'tap';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { loadNative, type NativeAddon } from '../backends/linux/native.js';
import { AgentChannel, agentSocketpair, type ChannelHook } from '../backends/userspace/attach/channel.js';
import { spawnUnderAgent } from '../backends/userspace/attach/launch.js';
import { assemble } from '../backends/userspace/vm/asm.js';
import { AGENT_DIR, PARM1, RINGBUF, counterMap, hookRequest, lookupAsm, peekCounter, ringbufOutputAsm } from './agent-common.js';
import { BUILD, FIXTURES, pollUntil as until } from './helpers.js';

const OUT = path.join(BUILD, 'agent-jit');
const AGENT = path.join(OUT, 'libwbpf_agent.so');
const TARGET = path.join(OUT, 'launch-target');
const N = 200;

// acc = sum over k < 16 of ((PARM1 ^ k) * 7 >> 1) kept on the stack; counter[0] += 1; ringbuf_output(&acc, 8)
const COMPUTE = `
  mov %r6, %r1
  ldxdw %r7, [%r6+${PARM1}]
  stdw [%r10-8], 0
  mov %r8, 0
  mov %r1, %r7
  xor %r1, %r8
  mul %r1, 7
  rsh %r1, 1
  ldxdw %r2, [%r10-8]
  add %r2, %r1
  stxdw [%r10-8], %r2
  add %r8, 1
  jlt %r8, 16, -9
  stw [%r10-12], 0
  lddw %r1, map_by_fd(1)
  mov %r2, %r10
  add %r2, -12
  call 1
  jeq %r0, 0, +2
  mov %r1, 1
  lock add [%r0+0], %r1
  ${ringbufOutputAsm(-8, 8)}
  mov %r0, 0
  exit
`;
// counter[1] += 1 through a bpf-to-bpf call (the JIT leaves it to the interpreter)
const LOCAL = `
  call local count
  mov %r0, 0
  exit
count:
  ${lookupAsm(1)}
  mov %r1, 1
  lock add [%r0+0], %r1
  mov %r0, 0
  exit
`;
// a wild load: the hook is disabled and reported, the target runs on
const WILD = `
  lddw %r1, 0x1000
  ldxdw %r0, [%r1+8]
  exit
`;

const hookOf = (func: string, id: number, progId: number): ChannelHook => hookRequest(TARGET, func, id, progId);

/** bytes of anonymous read-execute mappings of pid (the hook's trampolines, the JIT's code); no anonymous mapping may be writable and executable */
function anonExec(pid: number): { bytes: number; wx: number } {
  let bytes = 0, wx = 0;
  for (const l of fs.readFileSync(`/proc/${pid}/maps`, 'utf8').split('\n')) {
    const m = /^([0-9a-f]+)-([0-9a-f]+) (\S+) \S+ \S+ 0\s*$/.exec(l);
    if (!m) continue;
    if (m[3]!.includes('x') && m[3]!.includes('w')) wx++;
    if (m[3]!.includes('x')) bytes += parseInt(m[2]!, 16) - parseInt(m[1]!, 16);
  }
  return { bytes, wx };
}

interface Outcome { counters: bigint[]; records: bigint[]; notices: string[]; replies: string[]; codeBytes: number; freed: number; wx: number }

async function runOnce(tt: Tap.Test, native: NativeAddon, jit: boolean): Promise<Outcome> {
  const ncpus = native.numPossibleCpus();
  const counter = counterMap(tt, native, 2);
  const ring = native.shmMapCreate(RINGBUF, 0, 0, 1 << 16, 0, ncpus, 0, 'out');
  tt.teardown(() => native.shmMapClose(ring.id));
  const env = { ...process.env };
  if (jit) delete env.WBPF_JIT;
  else env.WBPF_JIT = '0';
  const pair = agentSocketpair();
  const child = spawnUnderAgent([TARGET, String(N)], { agent: AGENT, channelFd: pair.child, env });
  const agent = new AgentChannel(pair.host);
  tt.teardown(() => {
    agent.close();
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  });
  let out = '';
  child.stdout?.on('data', (d: Buffer) => (out += d.toString()));
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  agent.sendMap({ id: 1, fd: counter.fd, notifyFd: -1 });
  agent.sendMap({ id: 2, fd: ring.fd, notifyFd: ring.notifyFd });
  const before = anonExec(child.pid!).bytes;
  agent.sendProgram({ id: 1, insns: assemble(COMPUTE) });
  const codeBytes = anonExec(child.pid!).bytes - before;
  agent.sendProgram({ id: 2, insns: assemble(LOCAL) });
  agent.sendProgram({ id: 3, insns: assemble(WILD) });
  const replies = [agent.sendHook(hookOf('target', 1, 1)), agent.sendHook(hookOf('target', 2, 2)), agent.sendHook(hookOf('first', 3, 3))];
  agent.start();
  child.stdin?.write('1');
  tt.ok(await until(() => out.includes('round 0 done'), 20_000), `${jit ? 'jit' : 'interpreter'}: round 0 ran`);
  const counters = [0, 1].map((k) => peekCounter(native, counter, k));
  const buf = new Uint8Array(N * 16 + 64);
  const n = native.shmRingPoll(ring.id, 1000, buf, -1);
  const b = Buffer.from(buf);
  const records = Array.from({ length: Math.max(0, n) }, (_, i) => b.readBigUInt64LE(i * 16 + 8));
  await until(() => (agent.poll(), agent.notices.length > 0), 5_000);
  const notices = agent.notices.map((x) => JSON.stringify(x));
  // dropping the compiled program unmaps its code
  const wx = anonExec(child.pid!).wx;
  const beforeDrop = anonExec(child.pid!).bytes;
  agent.unhook(1);
  agent.drop('prog', 1);
  const freed = beforeDrop - anonExec(child.pid!).bytes;
  agent.close();
  child.stdin?.end();
  tt.equal(await exited, 0, 'the target exits 0');
  return { counters, records, notices, replies, codeBytes, freed, wx };
}

if (process.arch !== 'x64') {
  t.pass('the JIT is x86-64 only');
} else {
  t.setTimeout(240_000);
  const native = loadNative();

  t.test('the same events on machine code and on the interpreter, in a launched target', async (tt) => {
    const mk = spawnSync('make', ['-C', AGENT_DIR, `B=${OUT}`, '-j2', `${OUT}/libwbpf_agent.so`], { encoding: 'utf8' });
    tt.equal(mk.status, 0, 'make the agent', { stderr: mk.stderr });
    const cc = spawnSync('gcc', ['-O2', '-g', path.join(FIXTURES, 'agent', 'launch-target.c'), '-o', TARGET, '-lpthread'], { encoding: 'utf8' });
    tt.equal(cc.status, 0, 'build the target', { stderr: cc.stderr });

    const on = await runOnce(tt, native, true);
    const off = await runOnce(tt, native, false);
    const expect = Array.from({ length: N }, (_, i) => {
      let acc = 0n;
      for (let k = 0n; k < 16n; k++) acc += ((BigInt(i + 1) ^ k) * 7n) >> 1n;
      return acc;
    });
    tt.same(on.records, expect, 'machine code: each record holds the loop\'s sum for its call');
    tt.same(off.records, expect, 'interpreter: the same records');
    tt.same(on.counters, [BigInt(N), BigInt(N)], 'machine code: both counters read N (the local-call program ran too)');
    tt.same(off.counters, on.counters, 'interpreter: the same counters');
    tt.equal(on.notices.length, 1, 'the wild load disabled its hook, reported once');
    tt.same(off.notices, on.notices, 'the same fault report on both engines');
    tt.match(on.replies[0], /^hook 1 at 0x[0-9a-f]+$/, 'a compiled program\'s hook: no note');
    tt.match(on.replies[1], /^hook 2 at 0x[0-9a-f]+ \(interpreter: the JIT does not compile bpf-to-bpf calls, tail calls or callx\)$/,
      'a program left to the interpreter: its hook says so');
    tt.match(off.replies[1], /^hook 2 at 0x[0-9a-f]+$/, 'WBPF_JIT=0: asked for, no note');
    tt.ok(on.codeBytes >= 4096, `machine code: the load maps executable code (${on.codeBytes} bytes)`);
    tt.equal(off.codeBytes, 0, 'WBPF_JIT=0: no executable code at load');
    tt.ok(on.freed >= 4096, `dropping the program unmaps its code (${on.freed} bytes)`);
    tt.equal(on.wx, 0, 'no mapping is writable and executable');
  });
}
