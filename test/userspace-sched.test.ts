// Process events and bpf_get_current_task in the userspace backend (backends/userspace/SYSCALLS.md, "Process
// events"): matrix's bootstrap (tp/sched/sched_process_exec|exit, task->real_parent->tgid, task->exit_code) and
// execve (sys_enter/exit_execve, real_parent) unchanged, over a launched command that forks, execs (dash runs
// commands by vfork + execve) and exits with codes, field by field against the kernel backend's events for the
// same command, as root and as uid 65534 (routed). Pids differ between runs: each event's pid is replaced by its
// rank among the command's processes, and the launched command's own exec and exit are left out (the kernel
// backend spawns it before it attaches).
import t from 'tap';
import fs from 'node:fs';
import path from 'node:path';
import { spawnSync } from 'node:child_process';
import { CLI, ROOT, pollUntil as until, nobodyEnv } from './helpers.js';
import { loadNative } from '../backends/linux/native.js';
import { syscallTarget } from '../backends/userspace/attach/syscall-target.js';
import { encodeTaskLayout } from '../backends/userspace/attach/task-layout.js';
import { assemble } from '../backends/userspace/vm/asm.js';
import { AGENT_DIR, RINGBUF, launchUnderAgent, ringbufOutputAsm, ringRecords } from './agent-common.js';

const BOOTSTRAP = path.join(ROOT, 'matrix', 'build', 'bootstrap.wasm');
const EXECVE = path.join(ROOT, 'matrix', 'build', 'execve.wasm');
// a builtin-only busy loop first (no exec, ~0.1 s): execve's perf buffer opens after its programs attach, and a
// record sent before that is dropped by either backend (the kernel's too)
const SCRIPT = 'i=0; while [ $i -lt 40000 ]; do i=$((i+1)); done; cat /etc/hostname >/dev/null; sh -c "exit 5"; /nonexistent-wasm-bpf-sched 2>/dev/null; /bin/true x; sh -c "exit 7"';
const NOBODY = ['env', '-u', 'NODE_OPTIONS', 'setpriv', '--reuid=65534', '--regid=65534', '--clear-groups'];

type Ev = Record<string, unknown>;

function events(stdout: string): Ev[] {
  return stdout.split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l) as Ev);
}

/** the command's children's events (ppid: the launched command), durations dropped */
function children(evs: Ev[], root: number): Ev[] {
  return evs.filter((e) => e.event !== 'attached' && Number(e.pid) !== root && Number(e.ppid) === root);
}

/** events as strings, each pid replaced by its rank in this list, the launched command's by 'root' */
function ranked(evs: Ev[]): string[] {
  const rank = new Map<number, string>();
  const name = (p: unknown): string => {
    const n = Number(p);
    if (!rank.has(n)) rank.set(n, `child${rank.size + 1}`);
    return rank.get(n)!;
  };
  return evs.map((e) => {
    const { duration_ns: _d, ...rest } = e;
    return JSON.stringify({ ...rest, pid: name(e.pid), ppid: 'root' });
  });
}

/** the kernel's reference ran as root: as uid 65534, the uid field is 65534 */
function uidAs(uid: number): (line: string) => string {
  return (line) => line.replace(/"uid":0,/, `"uid":${uid},`);
}

/** the launched command's pid (--verbose: "launched pid N"): the kernel backend traces every process */
function rootOf(stderr: string): number {
  return Number(/launched pid (\d+)/.exec(stderr)?.[1] ?? 0);
}

function run(app: string, backend: readonly string[], prefix: readonly string[] = []): { stdout: string; stderr: string } {
  // execve: -x (execsnoop's --fails) so that the script's failed exec is reported too
  const args = [...prefix, process.execPath, CLI, 'run', '--verbose', ...backend, app, '-j', ...(app === EXECVE ? ['-x'] : []), '--', '/bin/sh', '-c', SCRIPT];
  const r = spawnSync(args[0]!, args.slice(1), { encoding: 'utf8', timeout: 90_000, env: prefix.length ? nobodyEnv() : process.env });
  return { stdout: String(r.stdout), stderr: String(r.stderr) };
}

// ---- over the channel: a synthetic task_struct layout, the image's fields, zeros, and wild pointers ----
const LAYOUT = { size: 256, offsets: { pid: 0, tgid: 4, real_parent: 8, parent: 16, comm: 24, exit_code: 40, start_time: 48, start_boottime: 56 } };
/** probe_read_kernel(size bytes at reg+off) into [r10-16] (zeroed first): ring records of the value, then the result */
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
// sched_process_exit: the image's pid, tgid, exit_code, real_parent (kept in r7), the parent's tgid and real_parent
// (NULL: kept in r8), a read through that NULL, an unfilled field, a wild address, and a direct load of pid
const EXIT_PROG = assemble(`
      call 35
      mov %r6, %r0
      ${readK(4, '%r6', 0)}
      ${readK(4, '%r6', 4)}
      ${readK(4, '%r6', 40)}
      ${readK(8, '%r6', 8)}
      ldxdw %r7, [%r10-16]
      ${readK(4, '%r7', 4)}
      ${readK(8, '%r7', 8)}
      ldxdw %r8, [%r10-16]
      ${readK(4, '%r8', 4)}
      ${readK(4, '%r6', 200)}
      lddw %r8, 0x10
      ${readK(4, '%r8', 0)}
      ldxw %r1, [%r6+0]
      stxdw [%r10-16], %r1
      ${ringbufOutputAsm(-16, 8)}
      mov %r0, 0
      exit`);
// sched_process_exec: the first 8 bytes of the filename its __data_loc names, and the pid field
const EXEC_PROG = assemble(`
      mov %r9, %r1
      ldxw %r2, [%r9+8]
      and %r2, 0xffff
      add %r2, %r9
      ldxdw %r1, [%r2+0]
      stxdw [%r10-16], %r1
      ${ringbufOutputAsm(-16, 8)}
      ldxw %r1, [%r9+12]
      stxdw [%r10-16], %r1
      ${ringbufOutputAsm(-16, 8)}
      mov %r0, 0
      exit`);

if (process.arch === 'x64') {
  t.test('over the channel: sched events and the task_struct image', async (tt) => {
    const mk = spawnSync('make', ['-s', '-C', AGENT_DIR], { encoding: 'utf8' });
    if (mk.status !== 0) throw new Error(`make the agent: ${mk.stderr}`);
    const native = loadNative();
    const ring = native.shmMapCreate(RINGBUF, 0, 0, 1 << 16, 0, native.numPossibleCpus(), 0, 'sched');
    tt.teardown(() => native.shmMapClose(ring.id));
    const { agent, child, exited } = launchUnderAgent(tt, path.join(AGENT_DIR, 'build', 'libwbpf_agent.so'), ['/bin/sh', '-c', 'exit 3']);
    agent.sendMap({ id: 2, fd: ring.fd, notifyFd: ring.notifyFd });
    agent.sendProgram({ id: 1, insns: EXIT_PROG });
    agent.sendProgram({ id: 2, insns: EXEC_PROG });
    tt.throws(() => agent.sendTask(encodeTaskLayout({ size: 16, offsets: { comm: 8 } })), { errno: 22, message: /does not fit/ }, 'a layout whose field is past the image: EINVAL');
    tt.throws(() => agent.sendTask(encodeTaskLayout({ size: 1 << 20, offsets: {} })), { errno: 22 }, 'an image past 64 KiB: EINVAL');
    tt.match(agent.sendTask(encodeTaskLayout(LAYOUT)), /256-byte task_struct image/, 'the layout');
    const exit = syscallTarget('tp/sched/sched_process_exit'), exec = syscallTarget('tracepoint/sched/sched_process_exec');
    tt.throws(() => syscallTarget('tp/sched/sched_process_wait'), /emits sched_process_exec, sched_process_exit and sched_process_fork only/, 'another sched event: refused, said so');
    tt.throws(() => agent.sendSyscall({ id: 1, progId: 1, nr: 1, exit: false, table: exec.table, sched: true }), { errno: 22, message: /the table is for event 0, the frame says 1/ }, 'a table of the other event: EINVAL');
    tt.throws(() => agent.sendSyscall({ id: 1, progId: 1, nr: exit.nr, exit: true, table: exit.table, sched: true }), { errno: 22, message: /SCHED goes with no other flag/ }, 'SCHED with EXIT: EINVAL');
    tt.throws(() => agent.sendSyscall({ id: 1, progId: 1, nr: exit.nr, exit: false, raw: true, table: exit.table, sched: true }), { errno: 22, message: /SCHED goes with no other flag/ }, 'SCHED with RAW: EINVAL');
    tt.match(agent.sendSyscall({ id: 1, progId: 1, nr: exit.nr, exit: false, table: exit.table, sched: true }), /^sched hook 1 on sched_process_exit/, 'sched_process_exit set');
    tt.match(agent.sendSyscall({ id: 2, progId: 2, nr: exec.nr, exit: false, table: exec.table, sched: true }), /^sched hook 2 on sched_process_exec/, 'sched_process_exec set');
    agent.start();
    tt.equal(await exited, 3, 'sh exits 3: nothing a program read harmed it');
    const pid = BigInt(child.pid!);
    let recs: bigint[] = [];
    await until(() => (recs.push(...ringRecords(native, ring, 64)), recs.length >= 21), 5_000);
    const EFAULT = BigInt.asUintN(64, -14n);
    tt.equal(recs.length, 21, '2 exec records, 19 exit records');
    tt.equal(Buffer.from(recs[0]!.toString(16).padStart(16, '0'), 'hex').reverse().toString('latin1'), '/bin/sh\0', 'exec: the filename through __data_loc (AT_EXECFN)');
    tt.equal(recs[1], pid, 'exec: pid');
    const x = recs.slice(2);
    tt.same([x[0], x[1]], [pid, 0n], 'task->pid');
    tt.same([x[2], x[3]], [pid, 0n], 'task->tgid');
    tt.same([x[4], x[5]], [3n << 8n, 0n], 'task->exit_code: (status & 0xff) << 8, as the kernel keeps it');
    tt.ok(x[6]! !== 0n && x[7] === 0n, 'task->real_parent: a pointer');
    tt.same([x[8], x[9]], [BigInt(process.pid), 0n], 'task->real_parent->tgid: the parent\'s');
    tt.same([x[10], x[11]], [0n, 0n], 'the parent image\'s real_parent: NULL');
    tt.same([x[12], x[13]], [0n, EFAULT], 'a read through it: zeros, -EFAULT');
    tt.same([x[14], x[15]], [0n, 0n], 'a field the image does not fill: 0');
    tt.same([x[16], x[17]], [0n, EFAULT], 'a wild address: zeros, -EFAULT');
    tt.equal(x[18], pid, 'a direct load from the image (bpf_get_current_task_btf\'s use): pid');
  });
}

if (process.arch === 'x64') {
  // raw_syscalls (flag 2) and the sched events (flag 4) in one agent: each on its own list, neither read as the other
  t.test('over the channel: sched_process_exec beside raw_syscalls/sys_exit', async (tt) => {
    const native = loadNative();
    const ring = native.shmMapCreate(RINGBUF, 0, 0, 1 << 18, 0, native.numPossibleCpus(), 0, 'sched-raw');
    tt.teardown(() => native.shmMapClose(ring.id));
    const { agent, child, exited } = launchUnderAgent(tt, path.join(AGENT_DIR, 'build', 'libwbpf_agent.so'), ['/bin/sh', '-c', 'exit 3']);
    agent.sendMap({ id: 2, fd: ring.fd, notifyFd: ring.notifyFd });
    agent.sendProgram({ id: 2, insns: EXEC_PROG });
    // raw sys_exit: its id (offset 8) with bit 62 set, so that no exec record is taken for it
    agent.sendProgram({ id: 3, insns: assemble(`
      ldxdw %r1, [%r1+8]
      lddw %r2, 0x4000000000000000
      or %r1, %r2
      stxdw [%r10-16], %r1
      ${ringbufOutputAsm(-16, 8)}
      mov %r0, 0
      exit`) });
    const exec = syscallTarget('tp/sched/sched_process_exec'), rawExit = syscallTarget('tp/raw_syscalls/sys_exit');
    tt.match(agent.sendSyscall({ id: 3, progId: 3, nr: rawExit.nr, exit: true, raw: true, table: rawExit.table }), /^syscall hook 3 on raw_syscalls\/sys_exit/, 'raw_syscalls/sys_exit set');
    tt.match(agent.sendSyscall({ id: 2, progId: 2, nr: exec.nr, exit: false, table: exec.table, sched: true }), /^sched hook 2 on sched_process_exec/, 'sched_process_exec set beside it');
    agent.start();
    tt.equal(await exited, 3, 'sh exits 3');
    const RAW = 1n << 62n;
    let recs: bigint[] = [];
    await until(() => (recs.push(...ringRecords(native, ring, 256)), recs.filter((r) => !(r & RAW)).length >= 2), 5_000);
    recs.push(...ringRecords(native, ring, 256));
    const sched = recs.filter((r) => !(r & RAW)), raw = recs.filter((r) => r & RAW).map((r) => r & ~RAW);
    tt.equal(sched.length, 2, 'the exec program ran once: 2 records');
    tt.equal(Buffer.from(sched[0]!.toString(16).padStart(16, '0'), 'hex').reverse().toString('latin1'), '/bin/sh\0', 'exec: its filename');
    tt.equal(sched[1], BigInt(child.pid!), 'exec: its pid');
    tt.ok(raw.length >= 1 && raw[0] === 59n, `raw: execve's exit first (the new image, before main), then the others (${raw.length} in all)`);
    tt.ok(raw.every((id) => id < 512n), 'raw: every record a syscall number');
  });
}

if (process.arch !== 'x64' || process.getuid?.() !== 0 || !fs.existsSync(BOOTSTRAP)) {
  t.pass('x86-64, root and matrix/build (make -C matrix) needed: the kernel backend is the reference');
} else {
  t.test('check: the task_struct fields a program reads, for the userspace backend', async (tt) => {
    const r = spawnSync(process.execPath, [CLI, 'check', '--backend', 'userspace', BOOTSTRAP], { encoding: 'utf8', timeout: 60_000 });
    tt.match(r.stdout, /userspace: handle_exit reads task_struct real_parent, tgid, exit_code: each filled by the userspace backend/, 'bootstrap\'s handle_exit');
    const k = spawnSync(process.execPath, [CLI, 'check', '--backend', 'linux', BOOTSTRAP], { encoding: 'utf8', timeout: 60_000 });
    tt.notMatch(k.stdout, /task_struct/, 'not for the kernel backend');
  });

  for (const [label, app] of [['bootstrap', BOOTSTRAP], ['execve', EXECVE]] as const) {
    t.test(`${label}: userspace (root, uid 65534) gives the kernel's events`, async (tt) => {
      const k = run(app, ['--backend', 'linux']);
      const kev = events(k.stdout);
      const kroot = rootOf(k.stderr);
      const want = children(kev, kroot);
      tt.ok(want.length >= 5, `the kernel's reference: ${want.length} events`, { stderr: k.stderr });
      for (const [how, backend, prefix] of [
        ['root, --backend userspace', ['--backend', 'userspace'], []],
        ['uid 65534, routed', [], NOBODY],
      ] as const) {
        const u = run(app, [...backend], [...prefix]);
        if (!backend.length) tt.match(u.stderr, /userspace: the kernel cannot run the object; the userspace backend runs every program of it, inside the launched command/, `${how}: routed to the userspace backend`);
        const uev = events(u.stdout);
        const got = children(uev, rootOf(u.stderr));
        // should the perf buffer still open after the first exec (see SCRIPT), the shorter list must be the end of the longer
        const n = Math.min(got.length, want.length);
        tt.ok(n >= (label === 'bootstrap' ? 9 : 5), `${how}: ${got.length} events (kernel: ${want.length})`, { stderr: u.stderr, stdout: u.stdout });
        tt.same(ranked(got.slice(got.length - n)), ranked(want.slice(want.length - n)).map(uidAs(prefix.length ? 65534 : 0)), `${how}: the kernel's events, field by field`);
      }
    });
  }
}
