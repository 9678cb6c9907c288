// Process events and bpf_get_current_task in the ptrace tier (native/agent/ptrace/sched.c; issue 18 point 2 for
// static commands, arm64 and a forced tier). Over the channel: sched_process_fork (every new task, threads too, in
// the parent's context, before the child runs), sched_process_exec (filename, pid, old_pid) and sched_process_exit
// (pid, group_dead, the task image's exit_code and real_parent) against what the commands themselves report, on a
// static target (test/fixtures/agent/sched-static-target.c, gcc -static) and a dynamic command under the forced
// tier; hostile reads -EFAULT. Through the CLI: matrix's bootstrap and execve unchanged over the static target, as
// root and as uid 65534 (routed), field by field against the kernel backend's events (each child's pid replaced by
// its rank: the target prints its children's pids).
import t from 'tap';
import fs from 'node:fs';
import path from 'node:path';
import { spawnSync } from 'node:child_process';
import { BUILD, CLI, FIXTURES, ROOT } from './helpers.js';
import { loadNative, type NativeAddon, type NativeShmMap } from '../backends/linux/native.js';
import { AgentChannel, agentSocketpair } from '../backends/userspace/attach/channel.js';
import { spawnUnderTracer } from '../backends/userspace/attach/ptrace.js';
import { syscallTarget } from '../backends/userspace/attach/syscall-target.js';
import { encodeTaskLayout } from '../backends/userspace/attach/task-layout.js';
import { isStaticElf } from '../backends/userspace/attach/tier.js';
import { assemble } from '../backends/userspace/vm/asm.js';
import { AGENT_DIR, RINGBUF, launchUnderAgent, ringbufOutputAsm } from './agent-common.js';

const OUT = path.join(BUILD, 'userspace-static-sched');
const TRACER = path.join(AGENT_DIR, 'build', 'wbpf-ptrace');
const TARGET = path.join(OUT, 'sched-static-target');
const BOOTSTRAP = path.join(ROOT, 'matrix', 'build', 'bootstrap.wasm');
const EXECVE = path.join(ROOT, 'matrix', 'build', 'execve.wasm');
const NOBODY = ['env', '-u', 'NODE_OPTIONS', 'setpriv', '--reuid=65534', '--regid=65534', '--clear-groups'];
const LAYOUT = { size: 256, offsets: { pid: 0, tgid: 4, real_parent: 8, parent: 16, comm: 24, exit_code: 40, start_time: 48, start_boottime: 56 } };

/** ring record of the u64 in r1 */
const put = `stxdw [%r10-16], %r1
      ${ringbufOutputAsm(-16, 8)}`;
const tag = (n: number): string => `mov %r1, ${n}
      ${put}`;
/** probe_read_kernel(size bytes at reg+off) into [r10-16] (zeroed first), recorded, then its result recorded */
function readK(size: number, reg: string, off: number): string {
  return `mov %r1, 0
      stxdw [%r10-16], %r1
      mov %r1, %r10
      add %r1, -16
      mov %r2, ${size}
      mov %r3, ${reg}
      add %r3, ${off}
      call 113
      stxdw [%r10-24], %r0
      ${ringbufOutputAsm(-16, 8)}
      ${ringbufOutputAsm(-24, 8)}`;
}
/** the first 8 bytes of the __data_loc string whose u32 is at ctx+off (r6 = ctx) */
const dataLoc = (off: number): string => `ldxw %r2, [%r6+${off}]
      and %r2, 0xffff
      add %r2, %r6
      ldxdw %r1, [%r2+0]
      ${put}`;

// sched_process_fork (6.18: parent_comm loc 8, parent_pid 12, child_comm loc 16, child_pid 20): tag 1, parent_pid,
// child_pid, pid_tgid, child_comm's first 8 bytes
const FORK_PROG = assemble(`
      mov %r6, %r1
      ${tag(1)}
      ldxw %r1, [%r6+12]
      ${put}
      ldxw %r1, [%r6+20]
      ${put}
      call 14
      mov %r1, %r0
      ${put}
      ${dataLoc(16)}
      mov %r0, 0
      exit`);
// sched_process_exec (filename loc 8, pid 12, old_pid 16): tag 2, pid, old_pid, pid_tgid, filename's first 8 bytes
const EXEC_PROG = assemble(`
      mov %r6, %r1
      ${tag(2)}
      ldxw %r1, [%r6+12]
      ${put}
      ldxw %r1, [%r6+16]
      ${put}
      call 14
      mov %r1, %r0
      ${put}
      ${dataLoc(8)}
      mov %r0, 0
      exit`);
// sched_process_exit (comm 8, pid 24, prio 28, group_dead 32): tag 3, pid, group_dead, prio, then the task image's
// exit_code (+ result), the parent's tgid (+ result), a wild kernel read's result
const EXIT_PROG = assemble(`
      mov %r6, %r1
      ${tag(3)}
      ldxw %r1, [%r6+24]
      ${put}
      ldxb %r1, [%r6+32]
      ${put}
      ldxw %r1, [%r6+28]
      ${put}
      call 35
      mov %r7, %r0
      ${readK(4, '%r7', 40)}
      ${readK(8, '%r7', 8)}
      ldxdw %r8, [%r10-16]
      ${readK(4, '%r8', 4)}
      lddw %r8, 0x10
      ${readK(4, '%r8', 0)}
      mov %r0, 0
      exit`);

function records(native: NativeAddon, ring: NativeShmMap, max: number): bigint[] {
  const buf = new Uint8Array(max * 16 + 64);
  const n = native.shmRingPoll(ring.id, 200, buf, -1);
  const b = Buffer.from(buf);
  return Array.from({ length: Math.max(0, n) }, (_, i) => b.readBigUInt64LE(i * 16 + 8));
}
const LEN: Record<number, number> = { 1: 5, 2: 5, 3: 12 };
/** the ring's records cut into events by their tags */
function split(recs: bigint[]): Array<{ kind: number; v: bigint[] }> {
  const out: Array<{ kind: number; v: bigint[] }> = [];
  for (let i = 0; i < recs.length;) {
    const kind = Number(recs[i]);
    const n = LEN[kind];
    if (!n) throw new Error(`record ${i}: tag ${recs[i]}`);
    out.push({ kind, v: recs.slice(i + 1, i + n) });
    i += n;
  }
  return out;
}
const text8 = (v: bigint): string => Buffer.from(new BigUint64Array([v]).buffer).toString('latin1').replace(/\0.*$/s, '');

type Traced = { evs: Array<{ kind: number; v: bigint[] }>; stdout: string; status: number | null; pid: number };
/** cmd under the tracer over the channel, the three programs attached: its events and output */
async function traced(tt: Tap.Test, native: NativeAddon, cmd: string[]): Promise<Traced> {
  const ring = native.shmMapCreate(RINGBUF, 0, 0, 1 << 16, 0, native.numPossibleCpus(), 0, 'sched');
  tt.teardown(() => native.shmMapClose(ring.id));
  const pair = agentSocketpair();
  const child = spawnUnderTracer(cmd, { tracer: TRACER, channelFd: pair.child, stdio: ['ignore', 'pipe', 'inherit'] });
  const agent = new AgentChannel(pair.host);
  tt.teardown(() => {
    agent.close();
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  });
  let stdout = '';
  child.stdout!.on('data', (d: Buffer) => (stdout += d.toString()));
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  agent.sendMap({ id: 2, fd: ring.fd, notifyFd: ring.notifyFd });
  agent.sendProgram({ id: 1, insns: FORK_PROG });
  agent.sendProgram({ id: 2, insns: EXEC_PROG });
  agent.sendProgram({ id: 3, insns: EXIT_PROG });
  const fork = syscallTarget('tp/sched/sched_process_fork'), exec = syscallTarget('tp/sched/sched_process_exec'), exit = syscallTarget('tp/sched/sched_process_exit');
  tt.throws(() => agent.sendTask(encodeTaskLayout({ size: 16, offsets: { comm: 8 } })), { errno: 22, message: /does not fit/ }, 'a layout whose field is past the image: EINVAL');
  tt.match(agent.sendTask(encodeTaskLayout(LAYOUT)), /256-byte task_struct image \(ptrace tier/, 'the task layout');
  tt.throws(() => agent.sendSyscall({ id: 1, progId: 1, nr: exec.nr, exit: false, table: fork.table, sched: true }), { errno: 22, message: /the table is for event 2, the frame says 0/ }, 'a table of another event: EINVAL');
  tt.throws(() => agent.sendSyscall({ id: 1, progId: 1, nr: fork.nr, exit: true, table: fork.table, sched: true }), { errno: 22, message: /SCHED goes with no other flag/ }, 'SCHED with EXIT: EINVAL');
  tt.throws(() => agent.sendSyscall({ id: 1, progId: 9, nr: fork.nr, exit: false, table: fork.table, sched: true }), { errno: 2, message: /no program 9/ }, 'an unknown program: ENOENT');
  tt.match(agent.sendSyscall({ id: 1, progId: 1, nr: fork.nr, exit: false, table: fork.table, sched: true }), /^sched hook 1 on sched_process_fork \(ptrace tier/, 'fork set');
  tt.match(agent.sendSyscall({ id: 2, progId: 2, nr: exec.nr, exit: false, table: exec.table, sched: true }), /^sched hook 2 on sched_process_exec/, 'exec set');
  tt.match(agent.sendSyscall({ id: 3, progId: 3, nr: exit.nr, exit: false, table: exit.table, sched: true }), /^sched hook 3 on sched_process_exit/, 'exit set');
  tt.throws(() => agent.sendSyscall({ id: 3, progId: 3, nr: exit.nr, exit: false, table: exit.table, sched: true }), { errno: 17 }, 'an id in use: EEXIST');
  agent.start();
  const status = await exited;
  const recs: bigint[] = [];
  for (let i = 0; i < 5; i++) recs.push(...records(native, ring, 256)); // shmRingPoll waits up to 200 ms each
  return { evs: split(recs), stdout, status, pid: child.pid! };
}

if (process.arch !== 'x64') {
  t.pass('these host tests run on x86_64 (arm64: test/userspace-syscalls-arm64.test.ts in the qemu guest)');
} else {
  t.setTimeout(300_000);
  fs.mkdirSync(OUT, { recursive: true });
  fs.chmodSync(OUT, 0o755);
  const mk = spawnSync('make', ['-s', '-C', AGENT_DIR], { encoding: 'utf8' });
  if (mk.status !== 0) throw new Error(`make the agent: ${mk.stderr}`);
  const cc = spawnSync('gcc', ['-O2', '-static', '-pthread', path.join(FIXTURES, 'agent', 'sched-static-target.c'), '-o', TARGET], { encoding: 'utf8' });
  if (cc.status !== 0) throw new Error(`build the target: ${cc.stderr}`);
  const native = loadNative();

  t.test('the target is static', async (tt) => {
    tt.ok(isStaticElf(TARGET), 'no PT_INTERP');
    const r = spawnSync(TARGET, [], { encoding: 'utf8' });
    tt.equal(r.status, 3, 'exits 3 untraced');
    tt.equal(r.stdout.split('\n').filter((l) => l.startsWith('child ')).length, 5, 'five children');
  });

  t.test('over the channel, a static command: fork, exec and exit with the kernel\'s semantics', async (tt) => {
    const r = await traced(tt, native, [TARGET]);
    tt.equal(r.status, 3, 'the command exits 3: nothing a program read harmed it');
    const kids = r.stdout.split('\n').flatMap((l) => (l.startsWith('child ') ? [BigInt(l.slice(6))] : []));
    tt.equal(kids.length, 5, 'five children');
    const forks = r.evs.filter((e) => e.kind === 1), execs = r.evs.filter((e) => e.kind === 2), exits = r.evs.filter((e) => e.kind === 3);
    // the command itself: its pid is the tracer's child (launched pid r.pid is the tracer)
    const cmd = execs[0]?.v[0];
    tt.ok(cmd !== undefined && cmd !== BigInt(r.pid), 'the command\'s own exec, at START');
    tt.same(forks.map((e) => e.v[1]), kids, 'one fork per child, its child_pid');
    tt.ok(forks.every((e) => e.v[0] === cmd && e.v[2] === ((cmd! << 32n) | cmd!)), 'fork runs in the parent: parent_pid and pid_tgid the command\'s');
    tt.ok(forks.every((e) => text8(e.v[3]!) === 'sched-st'), 'child_comm: the parent\'s name (copied at the fork)');
    // every fork before anything its child does
    const at = (kind: number, pid: bigint): number => r.evs.findIndex((e) => e.kind === kind && e.v[0] === pid);
    tt.ok(kids.every((k) => r.evs.findIndex((e) => e.kind === 1 && e.v[1] === k) < Math.min(...[at(2, k), at(3, k)].filter((i) => i >= 0))), 'each fork precedes its child\'s exec and exit');
    tt.same(execs.slice(1).map((e) => [e.v[0], e.v[1], e.v[2], text8(e.v[3]!)]),
      [[kids[0], kids[0], (kids[0]! << 32n) | kids[0]!, '/bin/cat'], [kids[3], kids[3], (kids[3]! << 32n) | kids[3]!, '/bin/tru'], [kids[4], kids[4], (kids[4]! << 32n) | kids[4]!, '/proc/se']],
      'exec: pid, old_pid, pid_tgid of the new image, filename as given to execve (the failed one: none)');
    const ex = new Map(exits.map((e) => [e.v[0], e.v]));
    const want: Array<[bigint, number]> = [[kids[0]!, 0], [kids[1]!, 5], [kids[2]!, 127], [kids[3]!, 0], [kids[4]!, 7], [cmd!, 3]];
    for (const [pid, code] of want) {
      const v = ex.get(pid);
      tt.ok(v, `an exit of ${pid}`);
      if (!v) continue;
      tt.same([v[1], v[3], v[4]], [1n, BigInt(code << 8), 0n], `${pid}: group_dead, task->exit_code ${code} << 8 (read 0)`);
      tt.equal(v[2], 120n, `${pid}: prio 120 (nice 0)`);
      tt.same([v[6], v[7], v[8]], [0n, pid === cmd ? BigInt(r.pid) : cmd, 0n], `${pid}: task->real_parent->tgid`);
      tt.equal(BigInt.asIntN(64, v[10]!), -14n, `${pid}: a wild kernel read: -EFAULT`);
    }
    tt.equal(exits.length, want.length, 'one exit per process');
  });

  t.test('over the channel, threads: a fork event per thread, its exit with group_dead 0', async (tt) => {
    const r = await traced(tt, native, [TARGET, 'threads']);
    tt.equal(r.status, 0, 'exits 0');
    const tids = r.stdout.split('\n').flatMap((l) => (l.startsWith('thread ') ? [BigInt(l.slice(7))] : []));
    tt.equal(tids.length, 2, 'two threads');
    const cmd = r.evs.find((e) => e.kind === 2)?.v[0];
    tt.same(r.evs.filter((e) => e.kind === 1).map((e) => [e.v[0], e.v[1]]), tids.map((tid) => [cmd, tid]), 'fork: the creating thread, each new tid (CLONE_THREAD too, as the kernel)');
    const exits = r.evs.filter((e) => e.kind === 3).map((e) => [e.v[0], e.v[1]]);
    tt.same(exits, [...tids.map((tid) => [tid, 0n]), [cmd, 1n]], 'exit: each thread with group_dead 0, the process last with 1');
  });

  t.test('over the channel, a dynamic command under the forced tier (dash: vfork + execve)', async (tt) => {
    const r = await traced(tt, native, ['/bin/sh', '-c', '/bin/true; exit 4']);
    tt.equal(r.status, 4, 'sh exits 4');
    const sh = r.evs.find((e) => e.kind === 2)?.v[0];
    const forks = r.evs.filter((e) => e.kind === 1);
    tt.equal(forks.length, 1, 'one fork (sh runs /bin/true in a child)');
    const kid = forks[0]?.v[1];
    tt.same([forks[0]?.v[0], text8(forks[0]?.v[3] ?? 0n)], [sh, 'sh'], 'in the parent sh, the child named sh');
    tt.same(r.evs.filter((e) => e.kind === 2).map((e) => [e.v[0], text8(e.v[3]!)]), [[sh, '/bin/sh'], [kid, '/bin/tru']], 'the execs: sh at START, then its child\'s /bin/true');
    tt.same(r.evs.filter((e) => e.kind === 3).map((e) => [e.v[0], e.v[3]]), [[kid, 0n], [sh, BigInt(4 << 8)]], 'the exits with their codes (task->exit_code)');
  });

  t.test('the agent refuses sched_process_fork, said so', async (tt) => {
    const { agent, exited } = launchUnderAgent(tt, path.join(AGENT_DIR, 'build', 'libwbpf_agent.so'), ['/bin/sh', '-c', 'exit 0']);
    agent.sendProgram({ id: 1, insns: assemble('mov %r0, 0\n      exit') });
    const fork = syscallTarget('tp/sched/sched_process_fork');
    tt.throws(() => agent.sendSyscall({ id: 1, progId: 1, nr: fork.nr, exit: false, table: fork.table, sched: true }), { errno: 95, message: /the agent emits no sched_process_fork.*the ptrace tier does/ }, 'EOPNOTSUPP, the tier that does named');
    agent.start();
    tt.equal(await exited, 0, 'the command ran on');
  });

  // ---- through the CLI: matrix's apps unchanged, against the kernel backend ----
  type Ev = Record<string, unknown>;
  function nobodyEnv(): NodeJS.ProcessEnv {
    const env: NodeJS.ProcessEnv = { ...process.env, HOME: '/tmp' };
    delete env['NODE_OPTIONS'];
    return env;
  }
  /** the children's events (their pids: printed by the target), each pid replaced by its rank, ppid by 'cmd' */
  function run(tt: Tap.Test, app: string, backend: readonly string[], prefix: readonly string[] = []): string[] {
    const args = [...prefix, process.execPath, CLI, 'run', '--verbose', ...backend, app, '-j', ...(app === EXECVE ? ['-x'] : []), '--', TARGET];
    const r = spawnSync(args[0]!, args.slice(1), { encoding: 'utf8', timeout: 90_000, env: prefix.length ? nobodyEnv() : process.env });
    const out = String(r.stdout);
    const kids = out.split('\n').flatMap((l) => (l.startsWith('child ') ? [Number(l.slice(6))] : []));
    tt.equal(kids.length, 5, `${backend.join(' ') || 'routed'}: the target's 5 children`, { stderr: r.stderr });
    const evs = out.split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l) as Ev).filter((e) => kids.includes(Number(e.pid)));
    const ppids = new Set(evs.map((e) => Number(e.ppid)));
    tt.equal(ppids.size, 1, 'every child\'s ppid is the command\'s');
    if (prefix.length && !backend.length) tt.match(r.stderr, /the userspace backend runs every program of it/, 'uid 65534: routed to the userspace backend');
    return evs.map((e) => {
      const { duration_ns: _d, ...rest } = e;
      return JSON.stringify({ ...rest, pid: `child${kids.indexOf(Number(e.pid)) + 1}`, ppid: 'cmd' });
    });
  }
  for (const [label, app] of [['bootstrap', BOOTSTRAP], ['execve', EXECVE]] as const) {
    t.test(`${label} over a static command: userspace (root, uid 65534) gives the kernel's events`, async (tt) => {
      const want = run(tt, app, ['--backend', 'linux']);
      tt.ok(want.length >= (label === 'bootstrap' ? 8 : 4), `the kernel's reference: ${want.length} events`);
      tt.same(run(tt, app, ['--backend', 'userspace']), want, 'root, --backend userspace: the kernel\'s events, field by field');
      tt.same(run(tt, app, [], NOBODY), want.map((l) => l.replace(/"uid":0,/, '"uid":65534,')), 'uid 65534, routed: the kernel\'s events, field by field');
    });
  }
}
