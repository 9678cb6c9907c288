// The uprobe agent's helpers and a run's regions (native/agent/lib/helpers.c, regions.c, probe_read.c,
// printk.c): the C test without a launch (native/agent/test/agent_helpers_test.c); the TypeScript list of
// the agent's helpers (backends/userspace/attach/agent-helpers.ts) against helper_of; and in launch mode
// (test/fixtures/agent/helpers-target.c): ringbuf reserve/submit, probe_read_user_str of a string argument,
// get_current_comm and global data (lddw src 2), then hostile programs (a write past a lookup value, a write
// to the ctx: their hooks are disabled; probe_read_user of a wild pointer: -EFAULT) while the target lives on.
import t from 'tap';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { loadNative } from '../backends/linux/native.js';
import { AGENT_HELPERS, agentMissingHelper, checkAgentHelpers } from '../backends/userspace/attach/agent-helpers.js';
import { assemble } from '../backends/userspace/vm/asm.js';
import { BackendError } from '../src/errors.js';
import { AGENT_DIR, LOOKUP, RINGBUF, counterMap, hookRequest, launchUnderAgent, lookupAsm, ringbufOutputAsm } from './agent-common.js';
import { BUILD, FIXTURES, pollUntil as until } from './helpers.js';

// its own build folder: test/agent-launch and test/agent-hook run make in test/build/agent at the same time
const OUT = path.join(BUILD, 'agent-helpers');
const AGENT = path.join(OUT, 'libwbpf_agent.so');
const TARGET = path.join(OUT, 'helpers-target');
const N = 30;

t.test('the agent\'s helper list: helper_of in lib/helpers.c', async (tt) => {
  const src = fs.readFileSync(path.join(AGENT_DIR, 'lib', 'helpers.c'), 'utf8');
  const body = /ebpf_vm_helper_fn helper_of\([^)]*\)\n\{([\s\S]*?)\n\}/.exec(src)?.[1] ?? '';
  const ids = [...body.matchAll(/case (\d+): return h_\w+;/g)].map((m) => Number(m[1]));
  tt.ok(ids.length > 20, `helper_of lists ${ids.length} helpers`);
  tt.same([...AGENT_HELPERS].sort((a, b) => a - b), ids.sort((a, b) => a - b), 'agent-helpers.ts lists exactly those');
  tt.equal(agentMissingHelper(assemble('call 1\ncall 113\nlddw %r1, 0x8500000023\nexit')), undefined, 'helpers it has; an lddw\'s data is no call');
  tt.equal(agentMissingHelper(assemble('call 35\ncall 158\nexit')), undefined, 'get_current_task(_btf) are (the task_struct image)');
  tt.same(agentMissingHelper(assemble('call 14\nmov %r0, 0\ncall 36\nexit')), { id: 36, insn: 2 }, 'probe_write_user is not one');
  tt.throws(() => checkAgentHelpers("program 'p' (uprobe)", assemble('call 14\nmov %r0, 0\ncall 36\nexit')),
    new BackendError("program 'p' (uprobe) calls bpf_probe_write_user (36) at insn 2, which the uprobe agent does not implement", 95),
    'refused, naming the helper');
  tt.doesNotThrow(() => checkAgentHelpers('p', assemble('call 131\ncall 132\nexit')));
});

if (process.arch !== 'x64') {
  t.pass('the agent supports x86-64 only for now');
} else {
  t.setTimeout(180_000);

  t.test('the helpers and regions without a launch (agent_helpers_test.c)', async (tt) => {
    const mk = spawnSync('make', ['-C', AGENT_DIR, `B=${OUT}`, '-j2', 'all', 'agent-tests'], { encoding: 'utf8' });
    tt.equal(mk.status, 0, 'make the agent and its helper test', { stderr: mk.stderr });
    const r = spawnSync(path.join(OUT, 'test', 'agent_helpers_test'), [], { encoding: 'utf8', timeout: 120_000 });
    tt.equal(r.signal, null, 'no crash');
    tt.equal(r.status, 0, 'every check holds', { stdout: r.stdout, stderr: r.stderr });
    tt.notMatch(r.stdout, /^not ok/m);
    tt.match(r.stdout, /^ok - a write just past a lookup value \(value_size 8\) faults at value \+ 8$/m);
    tt.match(r.stdout, /^ok - the record left reserved is discarded at the run's end/m);
    tt.match(r.stdout, /^ok - a string running into a PROT_NONE page: -EFAULT, dst zeroed$/m);
    tt.match(r.stdout, /^# probe_read_user of 8 bytes: \d+ ns/m);
    // the ring-record proof (native/agent/vm/recproof.c): the bench's programs proven, hostile ones refused and
    // stopping where they did, random programs alike on the proven JIT and the regions path
    tt.match(r.stdout, /^ok - proof: bench\/uprobe's entry program proven/m);
    tt.match(r.stdout, /^ok - proof: not proven: two records \(16 and 8 bytes\) merged at a join/m);
    tt.match(r.stdout, /^ok - proof: 3000 random record programs, JIT \(\d+ proven, \d+ not\) and interpreter stop alike \(\d+ ran to exit\): 0 differ$/m);
    tt.comment(/^# (.*)$/m.exec(r.stdout)?.[1] ?? '');
    const nm = spawnSync('nm', ['-D', '--defined-only', AGENT], { encoding: 'utf8' });
    const exported = new Set(nm.stdout.split('\n').map((l) => l.split(' ')[2]).filter((x): x is string => !!x));
    tt.same(['find_map', 'helper_of', 'record_of', 'map_ref', 'ptr_ok', 'safe_read', 'safe_read_str', 'format_printk', 'hit_begin', 'agent_trace'].filter((x) => exported.has(x)), [],
      'the agent\'s internal functions are hidden (none interposes with the target\'s own)');
  });

  t.test('launch: reserve/submit, probe_read_user_str, get_current_comm, global data; hostile programs', async (tt) => {
    const cc = spawnSync('gcc', ['-O2', '-g', path.join(FIXTURES, 'agent', 'helpers-target.c'), '-o', TARGET], { encoding: 'utf8' });
    tt.equal(cc.status, 0, 'build the target', { stderr: cc.stderr });
    const native = loadNative();
    const ncpus = native.numPossibleCpus();
    const arr = counterMap(tt, native, 1, 'data');
    const ring = native.shmMapCreate(RINGBUF, 0, 0, 1 << 16, 0, ncpus, 0, 'events');
    tt.teardown(() => native.shmMapClose(ring.id));
    const { agent, child, stdout, exited } = launchUnderAgent(tt, AGENT, [TARGET, String(N)]);
    agent.sendMap({ id: 1, fd: arr.fd, notifyFd: -1 });
    agent.sendMap({ id: 2, fd: ring.fd, notifyFd: ring.notifyFd });
    const disabled = (): typeof agent.notices => agent.notices.filter((x) => x.kind === 'disabled');

    // greet(name, i): a 64-byte record { comm[16], name[32], probe_read_user_str's result, i }; the global
    // counter (element 0 of map 1 through lddw src 2) += 1
    const greet = assemble(`
      mov %r6, %r1
      lddw %r1, map_val(1)+0
      mov %r2, 1
      lock add [%r1+0], %r2
      lddw %r1, map_by_fd(2)
      mov %r2, 64
      mov %r3, 0
      call 131
      jeq %r0, 0, +15
      mov %r7, %r0
      mov %r1, %r7
      mov %r2, 16
      call 16
      mov %r1, %r7
      add %r1, 16
      mov %r2, 32
      ldxdw %r3, [%r6+112]
      call 114
      stxdw [%r7+48], %r0
      ldxdw %r1, [%r6+104]
      stxdw [%r7+56], %r1
      mov %r1, %r7
      mov %r2, 0
      call 132
      mov %r0, 0
      exit`);
    // wild(p, 42): probe_read_user(&buf, 8, p) with buf = 0x55..., trace_printk("n=%d", 42); a 24-byte
    // record { buf, its result, trace_printk's }
    const wild = assemble(`
      mov %r6, %r1
      lddw %r1, 0x5555555555555555
      stxdw [%r10-24], %r1
      mov %r1, %r10
      add %r1, -24
      mov %r2, 8
      ldxdw %r3, [%r6+112]
      call 112
      stxdw [%r10-16], %r0
      stw [%r10-32], 0x64253d6e
      stw [%r10-28], 0
      mov %r1, %r10
      add %r1, -32
      mov %r2, 5
      ldxdw %r3, [%r6+104]
      call 6
      stxdw [%r10-8], %r0
      ${ringbufOutputAsm(-24, 24)}
      mov %r0, 0
      exit`);
    // past: writes 8 bytes just past the 8-byte value a lookup returned (the map's next bytes)
    const past = assemble(`
      ${lookupAsm(0)}
      mov %r1, -1
      stxdw [%r0+8], %r1
      mov %r0, 0
      exit`);
    // ctxw: overwrites PARM1 in the ctx (pt_regs)
    const ctxw = assemble('mov %r2, 0\nstxdw [%r1+112], %r2\nmov %r0, 0\nexit');
    const progs = [greet, wild, past, ctxw];
    for (const [i, insns] of progs.entries()) tt.equal(agent.sendProgram({ id: i + 1, insns }), `prog ${i + 1}`);
    for (const [i, func] of ['greet', 'wild', 'past', 'ctxw'].entries()) {
      tt.match(agent.sendHook(hookRequest(TARGET, func, i + 1, i + 1)), new RegExp(`^hook ${i + 1} at 0x`), `${func} hooked`);
    }
    agent.start();

    child.stdin?.write('1');
    tt.ok(await until(() => stdout().includes('round 0 done'), 20_000), 'round 0 ran');
    tt.ok(await until(() => (agent.poll(), disabled().length >= 2), 5_000), 'two hooks disabled');
    const out = new Uint8Array((N + 1) * 80 + 64);
    const n = native.shmRingPoll(ring.id, 1000, out, -1);
    tt.equal(n, N + 1, 'N greet records and one wild record');
    const b = Buffer.from(out);
    const cstr = (off: number, len: number): string => {
      const s = b.subarray(off, off + len);
      const z = s.indexOf(0);
      return s.subarray(0, z < 0 ? len : z).toString();
    };
    let off = 0;
    const sizes: number[] = [], names: string[] = [], lens: bigint[] = [], comms = new Set<string>(), idx: bigint[] = [];
    let padded = true;
    for (let i = 0; i < N; i++) {
      sizes.push(b.readUInt32LE(off));
      const r = off + 8;
      comms.add(cstr(r, 16));
      padded &&= b.subarray(r + cstr(r, 16).length, r + 16).every((x) => x === 0);
      names.push(cstr(r + 16, 32));
      lens.push(b.readBigInt64LE(r + 48));
      idx.push(b.readBigInt64LE(r + 56));
      off += 8 + 64;
    }
    tt.same(sizes, Array.from({ length: N }, () => 64), 'every greet record: 64 bytes');
    tt.same([...comms], ['helpers-target'], 'get_current_comm: the thread\'s name');
    tt.ok(padded, 'zero-padded to 16 bytes');
    const want = Array.from({ length: N }, (_, i) => (i % 10 === 9 ? `a-forty-byte-name-for-call-${String(i).padStart(2, '0')}-..........`.slice(0, 31) : `caller-${i}`));
    tt.same(names, want, 'probe_read_user_str: each call\'s name argument (40-byte names cut to 31 + NUL)');
    tt.same(lens, want.map((s) => BigInt(s.length + 1)), 'its result: the length with the NUL');
    tt.same(idx, Array.from({ length: N }, (_, i) => BigInt(i)), 'PARM2 of each call');
    tt.equal(b.readUInt32LE(off), 24, 'the wild record: 24 bytes');
    tt.equal(b.readBigUInt64LE(off + 8), 0n, 'probe_read_user of a wild pointer zeroed its destination');
    tt.equal(b.readBigInt64LE(off + 16), -14n, 'and returned -EFAULT');
    tt.equal(b.readBigInt64LE(off + 24), 4n, 'trace_printk("n=%d", 42) returned 4 (the text\'s length)');

    const mem = new Uint8Array(16);
    tt.equal(native.shmMapOp(LOOKUP, arr.id, mem, 0, 8, 0), 0, 'lookup of the global counter');
    tt.equal(Buffer.from(mem).readBigUInt64LE(8), BigInt(N), 'global data (lddw src 2): N increments');

    const events = [...disabled()].sort((x, y) => x.hookId - y.hookId);
    tt.equal(events.length, 2, 'exactly two hooks disabled');
    tt.match(events[0], { hookId: 3, message: /^hook 3 disabled: program 3 stopped with status 2 at pc 8 / }, 'past: a memory fault at its store');
    tt.match(events[1], { hookId: 4, message: /^hook 4 disabled: program 4 stopped with status 2 at pc 1 / }, 'ctxw: a memory fault at its store');
    tt.same(agent.notices.filter((x) => x.kind === 'trace'), [{ kind: 'trace', hookId: 2, message: 'n=42' }], 'trace_printk\'s text came as a TRACE notice of wild\'s hook');

    child.stdin?.write('2');
    tt.ok(await until(() => stdout().includes('round 1 done'), 20_000), 'round 1 ran: the target lives on');
    tt.equal(native.shmRingPoll(ring.id, 1000, out, -1), N + 1, 'greet and wild still run');
    agent.poll();
    tt.equal(disabled().length, 2, 'no new event');
    agent.close();
    child.stdin?.end();
    tt.equal(await exited, 0, 'the target exits 0');
  });
}
