// tp/syscalls programs in statically linked commands (issue 18, the ptrace tier: native/agent/ptrace/sys.c).
// The target (test/fixtures/agent/sys-static-target.c, gcc -static) opens files through glibc's wrapper and
// through a raw `syscall` instruction of its own, forks, and the child execs the target again. Over the channel:
// the record's fields and its pt_regs image, hostile programs disabled while the opens keep their results. Through
// the CLI: matrix's opensnoop, unchanged, gives the kernel backend's events field by field, launched (a seccomp
// filter the command installs at its start) as root and as uid 65534, and on a joined pid (every syscall stops);
// kill -9 and Ctrl-C of the host leave the command running with its syscalls' results, and nothing behind (a
// joined process: detached). Also: raw_syscalls (the frame's RAW flag), a number attached after START (the
// stops), 8 threads exact under both mechanisms, a child that outlives the launched command.
import t from 'tap';
import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { loadNative } from '../backends/linux/native.js';
import { AgentChannel, agentSocketpair } from '../backends/userspace/attach/channel.js';
import { spawnUnderTracer } from '../backends/userspace/attach/ptrace.js';
import { syscallTarget } from '../backends/userspace/attach/syscall-target.js';
import { encodeFieldTable, sysFieldTable } from '../backends/userspace/syscalls/fieldtable.js';
import { eventLayout } from '../backends/userspace/syscalls/layout.js';
import { isStaticElf } from '../backends/userspace/attach/tier.js';
import { assemble } from '../backends/userspace/vm/asm.js';
import { Running } from '../matrix/harness/running.js';
import { AGENT_DIR, RINGBUF, ringRecords, ringbufOutputU64 } from './agent-common.js';
import { BUILD, CLI, FIXTURES, ROOT, pollUntil as until, runCli, startCli, nobodyEnv } from './helpers.js';

const OUT = path.join(BUILD, 'userspace-static-syscalls');
const TRACER = path.join(AGENT_DIR, 'build', 'wbpf-ptrace');
const TARGET = path.join(OUT, 'sys-static-target');
const APP = path.join(ROOT, 'matrix', 'build', 'opensnoop.wasm');
const EXISTING = '/etc/hostname';
const MISSING = '/nonexistent-wasm-bpf-static';
const NR_OPENAT = 257, AT_FDCWD = 0xffffffffffffff9cn, AT_FDCWD32 = 0xffffff9cn, O_CLOEXEC = 0x80000n, RSI = 104, RAX = 80, ORIG_RAX = 120;
const comm = path.basename(TARGET).slice(0, 15);

const out = ringbufOutputU64;
// sys_enter_openat: __syscall_nr, args[0..2], then through the record's pt_regs pointer: rsi, orig_rax, rax
const ENTER = assemble(`
      mov %r6, %r1
      ${out('%r6', 8)}
      ${out('%r6', 16)}
      ${out('%r6', 24)}
      ${out('%r6', 32)}
      ldxdw %r7, [%r6+0]
      ${out('%r7', RSI)}
      ${out('%r7', ORIG_RAX)}
      ${out('%r7', RAX)}
      mov %r0, 0
      exit`);
// sys_exit_openat: __syscall_nr, ret
const EXIT = assemble(`
      mov %r6, %r1
      ${out('%r6', 8)}
      ${out('%r6', 16)}
      mov %r0, 0
      exit`);

/** [how, path, ret] of the target's "HOW PATH RET" lines */
function opens(stdout: string): Array<[string, string, number]> {
  return stdout.split('\n').flatMap((l) => {
    const m = /^(open|raw|child|exec|orphan) (\S+) (-?\d+)$/.exec(l);
    return m ? [[m[1]!, m[2]!, Number(m[3])] as [string, string, number]] : [];
  });
}

interface OpenEvent { pid: number; comm: string; ret: number; flags: number; filename: string }
function openEvents(stdout: string): OpenEvent[] {
  return stdout.split('\n').flatMap((l) => {
    if (!l.startsWith('{"event":"open"')) return [];
    const e = JSON.parse(l) as OpenEvent;
    return e.comm === comm && (e.filename === EXISTING || e.filename === MISSING) ? [e] : [];
  });
}
/** an event without its pid, a successful open's fd as 'fd' (checked against the command's own report instead) */
const strip = (es: OpenEvent[]): Array<Omit<OpenEvent, 'pid' | 'ret'> & { ret: number | 'fd' }> =>
  es.map(({ pid: _pid, ret, ...rest }) => ({ ...rest, ret: ret >= 0 ? 'fd' : ret }));
/** each event's ret is the result the command printed for that call, in order */
function retsMatch(tt: Tap.Test, es: OpenEvent[], stdout: string): void {
  tt.same(es.map((e) => [e.filename, e.ret]), opens(stdout).map(([, p, ret]) => [p, ret]), 'each event\'s ret is the call\'s result as the command printed it');
}
/** what the target prints for a round, the fds as 'fd' */
const ROUND = [['open', EXISTING, 'fd'], ['raw', EXISTING, 'fd'], ['open', MISSING, -2], ['raw', MISSING, -2],
  ['child', EXISTING, 'fd'], ['child', MISSING, -2], ['exec', EXISTING, -20], ['exec', MISSING, -2]];
const printed = (stdout: string): Array<[string, string, number | 'fd']> => opens(stdout).map(([h, p, r]) => [h, p, r >= 0 ? 'fd' : r]);

function status(pid: number, name: string): string {
  try {
    return new RegExp(`^${name}:\\s*(.*)$`, 'm').exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1] ?? '';
  } catch {
    return '';
  }
}
const alive = (pid: number): boolean => fs.existsSync(`/proc/${pid}`) && !/^Z/.test(status(pid, 'State'));
/** processes running the tracer on this test's target */
function tracers(): number[] {
  return fs.readdirSync('/proc').filter((p) => /^\d+$/.test(p)).flatMap((p) => {
    try {
      const cmd = fs.readFileSync(`/proc/${p}/cmdline`, 'latin1');
      return cmd.startsWith(TRACER) && cmd.includes(TARGET) ? [Number(p)] : [];
    } catch {
      return [];
    }
  });
}

const NOBODY = ['env', '-u', 'NODE_OPTIONS', 'setpriv', '--reuid=65534', '--regid=65534', '--clear-groups'];

if (process.arch !== 'x64') {
  t.pass('these host tests run on x86_64 (arm64: test/userspace-syscalls-arm64.test.ts in the qemu guest)');
} else {
  t.setTimeout(300_000);
  fs.mkdirSync(OUT, { recursive: true });
  fs.chmodSync(OUT, 0o755);
  const mk = spawnSync('make', ['-s', '-C', AGENT_DIR], { encoding: 'utf8' });
  if (mk.status !== 0) throw new Error(`make the agent: ${mk.stderr}`);
  const cc = spawnSync('gcc', ['-O2', '-static', path.join(FIXTURES, 'agent', 'sys-static-target.c'), '-o', TARGET], { encoding: 'utf8' });
  if (cc.status !== 0) throw new Error(`build the target: ${cc.stderr}`);
  if (!fs.existsSync(APP)) throw new Error(`${APP} is not built: make -C matrix`);
  const native = loadNative();
  const ncpus = native.numPossibleCpus();

  /** the static target launched under the tracer with a channel and a shared ring: all closed at the test's end */
  function underTracer(tt: Tap.Test, args: string[], ringBytes: number, name: string) {
    const ring = native.shmMapCreate(RINGBUF, 0, 0, ringBytes, 0, ncpus, 0, name);
    tt.teardown(() => native.shmMapClose(ring.id));
    const pair = agentSocketpair();
    const child = spawnUnderTracer(args, { tracer: TRACER, channelFd: pair.child, stdio: ['pipe', 'pipe', 'inherit'] });
    const agent = new AgentChannel(pair.host);
    tt.teardown(() => {
      agent.close();
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    });
    const out = { text: '' };
    child.stdout!.on('data', (d: Buffer) => (out.text += d.toString()));
    const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
    return { ring, agent, child, exited, out };
  }

  t.test('the target is static and makes a raw syscall instruction', async (tt) => {
    tt.ok(isStaticElf(TARGET), 'no PT_INTERP');
    const r = spawnSync(TARGET, [EXISTING, MISSING], { encoding: 'utf8' });
    tt.same(printed(r.stdout), ROUND, 'its round untraced');
  });

  t.test('over the channel: records, pt_regs, hostile programs, unhook', async (tt) => {
    const { ring, agent, child, exited, out } = underTracer(tt, [TARGET, '-w', EXISTING, MISSING], 1 << 16, 'sys');
    agent.sendMap({ id: 2, fd: ring.fd, notifyFd: ring.notifyFd });
    agent.sendProgram({ id: 1, insns: ENTER });
    agent.sendProgram({ id: 2, insns: EXIT });
    const enter = syscallTarget('tracepoint/syscalls/sys_enter_openat'), exit = syscallTarget('tp/syscalls/sys_exit_openat');
    tt.throws(() => agent.sendSyscall({ id: 1, progId: 9, nr: NR_OPENAT, exit: false, table: enter.table }), { errno: 2, message: /no program 9/ }, 'an unknown program: ENOENT');
    tt.throws(() => agent.sendSyscall({ id: 1, progId: 1, nr: NR_OPENAT, exit: true, table: enter.table }), { errno: 22, message: /the field table is for sys_enter, the frame says sys_exit/ }, 'a table of the other kind');
    tt.throws(() => agent.sendSyscall({ id: 1, progId: 1, nr: 1, exit: false, table: new Uint8Array(64) }), { errno: 22, message: /version 0/ }, 'a table of another version');
    tt.throws(() => agent.sendSyscall({ id: 1, progId: 1, nr: 4096, exit: false, table: enter.table }), { errno: 22, message: /out of 0\.\.511/ }, 'a number out of range');
    const schedExit = syscallTarget('tp/sched/sched_process_exit');
    tt.throws(() => agent.sendSyscall({ id: 1, progId: 1, nr: schedExit.nr, exit: true, table: schedExit.table, sched: true }), { errno: 22, message: /SCHED goes with no other flag/ }, 'a sched frame with EXIT: EINVAL (not read as a syscall; the sched events: userspace-static-sched)');
    tt.throws(() => agent.sendTask(new Uint8Array(44)), { errno: 22, message: /task layout: a 0-byte task_struct/ }, 'a TASK frame of a 0-byte image: EINVAL');
    tt.match(agent.sendSyscall({ id: 1, progId: 1, nr: NR_OPENAT, exit: false, table: enter.table }), /^syscall hook 1 on sys_enter of syscall 257 \(ptrace tier: a seccomp filter the command installs at its start/, 'sys_enter_openat set');
    tt.match(agent.sendSyscall({ id: 2, progId: 2, nr: NR_OPENAT, exit: true, table: exit.table }), /^syscall hook 2 on sys_exit of syscall 257/, 'sys_exit_openat set');
    tt.throws(() => agent.sendSyscall({ id: 2, progId: 2, nr: NR_OPENAT, exit: true, table: exit.table }), { errno: 17 }, 'an id in use: EEXIST');
    agent.start();

    child.stdin!.write('1');
    tt.ok(await until(() => out.text.includes('round 0 done'), 20_000), 'round 0 ran');
    tt.same(printed(out.text), ROUND, 'the opens have their results');
    const cmdPid = Number(fs.readFileSync(`/proc/${child.pid}/task/${child.pid}/children`, 'utf8').trim().split(/\s+/)[0]);
    tt.match(status(cmdPid, 'Seccomp'), /^2$/, 'the command runs with a seccomp filter (mode 2)');
    const recs = ringRecords(native, ring, 200);
    const calls = opens(out.text);
    tt.equal(recs.length, calls.length * 9, '7 enter and 2 exit records per call (the fork child\'s and the exec\'d program\'s too)');
    const FLAGS: Record<string, bigint> = { open: 0n, raw: O_CLOEXEC, child: 0x800n, exec: 0x10000n };
    calls.forEach(([how, p, ret], i) => {
      const [nr, a0, a1, a2, rsi, orig, rax, xnr, xret] = recs.slice(i * 9, i * 9 + 9);
      tt.equal(nr, BigInt(NR_OPENAT), `${how} ${p}: __syscall_nr`);
      // glibc's wrapper loads AT_FDCWD with `mov $-100,%edi`; the raw instruction's is the sign-extended long
      tt.equal(a0, how === 'raw' ? AT_FDCWD : AT_FDCWD32, `${how} ${p}: args[0] is the whole rdi`);
      tt.equal(a2, FLAGS[how], `${how} ${p}: args[2], the flags`);
      tt.equal(rsi, a1, `${how} ${p}: PT_REGS_PARM2 through the record's pt_regs pointer is args[1]`);
      tt.equal(orig, BigInt(NR_OPENAT), `${how} ${p}: pt_regs orig_rax`);
      tt.equal(BigInt.asIntN(64, rax!), -38n, `${how} ${p}: pt_regs rax is -ENOSYS at entry (the kernel's)`);
      tt.equal(xnr, BigInt(NR_OPENAT), `${how} ${p}: sys_exit's __syscall_nr`);
      tt.equal(BigInt.asIntN(64, xret!), BigInt(ret), `${how} ${p}: ret is the call's result`);
    });

    // hostile programs on the same number: a wild pointer at entry, an endless loop at exit
    agent.sendProgram({ id: 3, insns: assemble('lddw %r2, 0x10\nldxdw %r0, [%r2+0]\nexit') });
    agent.sendProgram({ id: 4, insns: assemble('loop:\nja loop\nexit') });
    agent.sendSyscall({ id: 3, progId: 3, nr: NR_OPENAT, exit: false, table: enter.table });
    agent.sendSyscall({ id: 4, progId: 4, nr: NR_OPENAT, exit: true, table: exit.table });
    child.stdin!.write('2');
    tt.ok(await until(() => out.text.includes('round 1 done'), 30_000), 'round 1 ran');
    tt.same(printed(out.text).slice(ROUND.length), ROUND, 'the syscalls still ran with their results');
    tt.ok(await until(() => (agent.poll(), agent.notices.length >= 2), 5_000), 'both hostile hooks reported');
    const why = agent.notices.map((n) => `${n.hookId}: ${n.message}`).sort();
    tt.match(why[0], /^3: syscall hook 3 \(sys_enter of syscall 257\) disabled: program 3 stopped with status \d+ at pc 2 \(addr 0x10\); the syscall itself ran on$/, 'the wild pointer: a fault');
    tt.match(why[1], /^4: syscall hook 4 \(sys_exit of syscall 257\) disabled: program 4 stopped with status \d+/, 'the endless loop: the budget');
    tt.equal(agent.notices.length, 2, 'each once');
    tt.equal(ringRecords(native, ring, 200).length, ROUND.length * 9, 'the good programs ran on beside them');
    tt.throws(() => agent.drop('prog', 1), { errno: 16 }, 'a program a syscall hook runs cannot be dropped');

    for (const id of [1, 2, 3, 4]) agent.unhook(id);
    child.stdin!.write('3');
    tt.ok(await until(() => out.text.includes('round 2 done'), 20_000), 'round 2 ran');
    tt.same(printed(out.text).slice(2 * ROUND.length), ROUND, 'its opens ran');
    tt.equal(ringRecords(native, ring, 200).length, 0, 'no program ran');
    child.stdin!.end();
    tt.equal(await exited, 0, 'the command exits 0 (the tracer\'s status is its own)');
  });

  t.test('a number attached after START (not in the filter): every syscall stops while it lives', async (tt) => {
    const { ring, agent, child, exited, out } = underTracer(tt, [TARGET, '-w', EXISTING, MISSING], 1 << 16, 'sys2');
    agent.sendMap({ id: 2, fd: ring.fd, notifyFd: ring.notifyFd });
    agent.sendProgram({ id: 1, insns: EXIT });
    const exit = syscallTarget('tp/syscalls/sys_exit_openat'), close = syscallTarget('tp/syscalls/sys_enter_close');
    agent.sendSyscall({ id: 1, progId: 1, nr: NR_OPENAT, exit: true, table: exit.table });
    agent.start();
    child.stdin!.write('1');
    tt.ok(await until(() => out.text.includes('round 0 done'), 20_000), 'round 0 ran');
    tt.equal(ringRecords(native, ring, 200).length, ROUND.length * 2, 'sys_exit_openat through the filter: 2 records per open');
    // sys_enter_close's record: __syscall_nr at 8, fd at 16
    agent.sendProgram({ id: 2, insns: EXIT });
    tt.match(agent.sendSyscall({ id: 2, progId: 2, nr: close.nr, exit: false, table: close.table }),
      /^syscall hook 2 on sys_enter of syscall 3 \(ptrace tier: attached after the start, not in the command's seccomp filter: every syscall of the traced processes stops/, 'close: the stops, said so');
    child.stdin!.write('2');
    tt.ok(await until(() => out.text.includes('round 1 done'), 20_000), 'round 1 ran');
    tt.same(printed(out.text).slice(ROUND.length), ROUND, 'with its results');
    const recs = ringRecords(native, ring, 400);
    const closes = recs.filter((_, i) => i % 2 === 0 && recs[i] === 3n).length;
    const fds = opens(out.text).slice(ROUND.length).filter(([, , r]) => r >= 0).length;
    tt.ok(closes >= fds, `a close record per fd the round closed (${closes} >= ${fds}; the libc start-up's own closes may add)`);
    tt.equal(recs.filter((_, i) => i % 2 === 0 && recs[i] === BigInt(NR_OPENAT)).length, ROUND.length, 'and the openat exits still');
    agent.unhook(2);
    child.stdin!.write('3');
    tt.ok(await until(() => out.text.includes('round 2 done'), 20_000), 'round 2 ran');
    tt.equal(ringRecords(native, ring, 400).length, ROUND.length * 2, 'close unhooked: only the filter\'s openat exits');
    child.stdin!.end();
    tt.equal(await exited, 0, 'the command exits 0');
  });

  t.test('raw_syscalls/sys_enter and sys_exit (the RAW flag): every number stops through the filter', async (tt) => {
    const { ring, agent, child, exited, out } = underTracer(tt, [TARGET, '-w', EXISTING, MISSING], 1 << 20, 'sys3');
    agent.sendMap({ id: 2, fd: ring.fd, notifyFd: ring.notifyFd });
    // raw_syscalls/sys_enter: id at 8, args[0] at 16; sys_exit: id at 8, ret at 16 (the same program reads both)
    agent.sendProgram({ id: 1, insns: EXIT });
    const table = (exit: boolean): Uint8Array => encodeFieldTable(sysFieldTable(eventLayout(`raw_syscalls/sys_${exit ? 'exit' : 'enter'}`, 'x86_64')!));
    const send = (id: number, exit: boolean): string => agent.sendSyscall({ id, progId: 1, nr: 0, exit, raw: true, table: table(exit) });
    tt.match(send(1, false), /^syscall hook 1 on raw_syscalls\/sys_enter, every number \(ptrace tier: a seccomp filter/, 'raw enter');
    tt.match(send(2, true), /^syscall hook 2 on raw_syscalls\/sys_exit, every number/, 'raw exit');
    agent.start();
    child.stdin!.write('1');
    tt.ok(await until(() => out.text.includes('round 0 done'), 20_000), 'round 0 ran');
    tt.same(printed(out.text), ROUND, 'the opens have their results');
    const recs = ringRecords(native, ring, 4000);
    const pairs = Array.from({ length: recs.length / 2 }, (_, i) => [Number(recs[2 * i]!), BigInt.asIntN(64, recs[2 * i + 1]!)] as const);
    const ids = new Set(pairs.map(([id]) => id));
    tt.ok([0, 1, 3, 56, 59, 61, 257].every((n) => ids.has(n)), `read, write, close, clone, execve, wait4, openat all seen (${[...ids].sort((a, b) => a - b).join(',')})`);
    const openats = pairs.filter(([id]) => id === NR_OPENAT);
    tt.equal(openats.length, ROUND.length * 2, 'each open: an enter and an exit record');
    tt.same(openats.filter((_, i) => i % 2 === 1).map(([, v]) => Number(v)), opens(out.text).map(([, , r]) => r), 'the exits\' ret: the calls\' results');
    tt.ok(openats.filter((_, i) => i % 2 === 0).every(([, a0]) => BigInt.asUintN(32, a0) === AT_FDCWD32), 'the enters\' args[0]: AT_FDCWD');
    for (const id of [1, 2]) agent.unhook(id);
    child.stdin!.end();
    tt.equal(await exited, 0, 'the command exits 0');
  });

  for (const mode of ['filter', 'stops'] as const) {
    t.test(`8 threads opening at once (${mode === 'filter' ? 'the launched command\'s filter' : 'attached after START: every syscall stops'}): every call, exact`, async (tt) => {
      const { ring, agent, child, exited, out } = underTracer(tt, [TARGET, '--threads', '8', '200', EXISTING], 1 << 20, `sys-${mode}`);
      agent.sendMap({ id: 2, fd: ring.fd, notifyFd: ring.notifyFd });
      agent.sendProgram({ id: 1, insns: EXIT });
      const enter = syscallTarget('tp/syscalls/sys_enter_openat'), exit = syscallTarget('tp/syscalls/sys_exit_openat');
      const attach = (): void => {
        agent.sendSyscall({ id: 1, progId: 1, nr: NR_OPENAT, exit: false, table: enter.table });
        agent.sendSyscall({ id: 2, progId: 1, nr: NR_OPENAT, exit: true, table: exit.table });
      };
      if (mode === 'filter') attach();
      agent.start();
      if (mode === 'stops') attach();
      let recs: bigint[] = [];
      const drain = (): void => void (recs = recs.concat(ringRecords(native, ring, 4000)));
      child.stdin!.end('g');
      tt.ok(await until(() => (drain(), out.text.includes('threads:')), 60_000), 'the threads ran');
      tt.equal(out.text.trim(), 'threads: 1600 opened', 'every open succeeded');
      tt.equal(await exited, 0, 'the command exits 0');
      drain();
      const pairs = Array.from({ length: recs.length / 2 }, (_, i) => [recs[2 * i]!, BigInt.asIntN(64, recs[2 * i + 1]!)] as const);
      const mine = pairs.filter(([, v]) => v >= 0n && v < 1024n);
      tt.equal(mine.length, 1600, `1600 exit records with an fd (of ${pairs.length} records)`);
      tt.equal(pairs.filter(([, v]) => v === AT_FDCWD32).length, 1600, '1600 enter records with AT_FDCWD');
    });
  }

  const cmd = ['--', TARGET, EXISTING, MISSING];
  const kernel = runCli(['run', '--backend', 'linux', APP, '-j', ...cmd], { timeout: 90_000 });
  const kernelEvents = openEvents(kernel.stdout);

  t.test('opensnoop on the kernel backend: the reference', async (tt) => {
    tt.equal(kernel.code, 0, 'exit status 0', { stderr: kernel.stderr });
    tt.equal(kernelEvents.length, 8, 'eight opens: libc\'s, the raw instruction\'s, the fork child\'s, the exec\'d program\'s');
    tt.equal(new Set(kernelEvents.map((e) => e.pid)).size, 2, 'two processes');
    retsMatch(tt, kernelEvents, kernel.stdout);
  });

  t.test('opensnoop unchanged on a launched static command as root: the kernel\'s events, field by field', async (tt) => {
    const r = runCli(['run', '--backend', 'userspace', '--verbose', APP, '-j', ...cmd], { timeout: 90_000 });
    tt.equal(r.code, 0, 'exit status 0 (the command\'s)', { stderr: r.stderr });
    tt.match(r.stderr, /ptrace tier: .*statically linked/, 'the ptrace tier');
    tt.match(r.stderr, /traces syscalls\/sys_enter_openat \(syscall 257, layout from tracefs\) in pid \d+: syscall hook \d+ on sys_enter of syscall 257 \(ptrace tier: a seccomp filter the command installs at its start stops at the traced numbers only\)/, '--verbose names the mechanism');
    tt.match(r.stderr, /wbpf-ptrace: 16 traced syscalls \(seccomp filter\), \d+ ns of the tracer's CPU per traced syscall/, 'the tracer\'s count: 8 enters and 8 exits');
    const ours = openEvents(r.stdout);
    retsMatch(tt, ours, r.stdout);
    tt.same(strip(ours), strip(kernelEvents), 'comm, ret, flags, filename: the kernel\'s');
    tt.equal(new Set(ours.map((e) => e.pid)).size, 2, 'two processes, as in the kernel');
  });

  for (const backend of [['--backend', 'userspace'], []]) {
    const how = backend.length ? '--backend userspace' : 'routed there by the selector';
    t.test(`opensnoop on a launched static command as uid 65534, ${how}`, async (tt) => {
      const r = spawnSync(NOBODY[0]!, [...NOBODY.slice(1), process.execPath, CLI, 'run', ...backend, '--verbose', APP, '-j', ...cmd], { encoding: 'utf8', timeout: 90_000, env: nobodyEnv() });
      tt.equal(r.status, 0, 'exit status 0', { stderr: r.stderr });
      tt.match(r.stderr, /as an ordinary user it sets no_new_privs first: set-uid and file-capability programs it execs run without their privileges/, '--verbose says no_new_privs');
      tt.match(r.stderr, /traced syscalls \(seccomp filter \(no_new_privs\)\)/, 'the filter went in with no_new_privs');
      const ours = openEvents(r.stdout);
      retsMatch(tt, ours, r.stdout);
      tt.same(strip(ours), strip(kernelEvents), 'the kernel\'s events, field by field');
    });
  }

  const joined = async (tt: Tap.Test, wrap: string[]): Promise<void> => {
    const env = wrap.length ? nobodyEnv() : process.env;
    const argv = [...wrap, TARGET, '-w', EXISTING, MISSING];
    const target = spawn(argv[0]!, argv.slice(1), { stdio: ['pipe', 'pipe', 'inherit'] });
    tt.teardown(() => { if (target.exitCode === null && target.signalCode === null) target.kill('SIGKILL'); });
    let said = '';
    target.stdout!.setEncoding('utf8').on('data', (d: string) => (said += d));
    const exited = new Promise<number | null>((resolve) => target.on('exit', (code) => resolve(code)));
    // the target itself (setpriv execs it: the same pid)
    tt.ok(await until(() => fs.readFileSync(`/proc/${target.pid}/cmdline`, 'latin1').startsWith(TARGET), 5_000), 'the target runs');
    const run = startCli(['run', '--backend', 'userspace', '--verbose', '--pid', String(target.pid), APP, '-j', '-t', '5'], { wrap, env });
    await run.attached('opensnoop');
    tt.match(run.stderr, /ptrace tier: a joined process: every syscall of it stops \(PTRACE_SYSCALL, ~10 us each; no filter can be added from outside\)/, '--verbose: every syscall stops');
    target.stdin!.write('1');
    tt.ok(await until(() => said.includes('round 0 done'), 20_000), 'round 0 ran');
    const end = await run.exited;
    tt.equal(end.code, 0, 'the app ends after -t 5', { stderr: run.stderr });
    const ours = openEvents(run.stdout);
    retsMatch(tt, ours, said);
    tt.same(strip(ours), strip(kernelEvents), 'the kernel\'s events, field by field');
    tt.ok(ours.slice(0, 4).every((e) => e.pid === target.pid), 'the joined pid\'s four, then its child\'s');
    tt.ok(await until(() => status(target.pid!, 'TracerPid') === '0', 5_000), 'detached at the run\'s end');
    tt.equal(status(target.pid!, 'Seccomp'), '0', 'no filter left in it');
    target.stdin!.write('2');
    tt.ok(await until(() => said.includes('round 1 done'), 20_000), 'it runs on');
    tt.same(printed(said).slice(ROUND.length), ROUND, 'with its results');
    target.stdin!.end();
    tt.equal(await exited, 0, 'and exits 0');
  };
  t.test('a joined static process (--pid) as root: the kernel\'s events; detached at the end, it runs on', (tt) => joined(tt, []));
  t.test('a joined static process of uid 65534, by uid 65534', (tt) => joined(tt, NOBODY));

  t.test('a child that outlives the launched command: traced until it ends (the filter needs its tracer), the command\'s status kept', async (tt) => {
    const r = runCli(['run', '--backend', 'userspace', APP, '-j', '--', TARGET, '--orphan', EXISTING], { timeout: 90_000 });
    tt.equal(r.code, 7, 'the command\'s exit status');
    tt.match(r.stdout, /^orphan \/etc\/hostname \d+$/m, 'the child\'s open ran, with an fd (not ENOSYS)');
    const es = openEvents(r.stdout);
    tt.equal(es.length, 1, 'its one open reported');
    retsMatch(tt, es, r.stdout);
    tt.ok(await until(() => tracers().length === 0, 5_000), 'no tracer left');
  });

  t.test('kill -9 of the host during a joined run (every syscall stopping): detached, the process runs on with its results', async (tt) => {
    const target = spawn(TARGET, ['-w', EXISTING, MISSING], { stdio: ['pipe', 'pipe', 'inherit'] });
    tt.teardown(() => { if (target.exitCode === null && target.signalCode === null) target.kill('SIGKILL'); });
    let said = '';
    target.stdout!.setEncoding('utf8').on('data', (d: string) => (said += d));
    const exited = new Promise<number | null>((resolve) => target.on('exit', (code) => resolve(code)));
    const run = startCli(['run', '--backend', 'userspace', '--pid', String(target.pid), APP, '-j']);
    await run.attached('opensnoop');
    target.stdin!.write('1');
    tt.ok(await until(() => said.includes('round 0 done'), 20_000), 'round 0 ran');
    tt.ok(await until(() => openEvents(run.stdout).length === 8, 5_000), 'its 8 events came');
    run.child.kill('SIGKILL');
    tt.ok(await until(() => status(target.pid!, 'TracerPid') === '0', 5_000), 'the tracer detached');
    tt.ok(await until(() => tracers().length === 0 && !fs.readdirSync('/proc').some((p) => {
      try {
        return fs.readFileSync(`/proc/${p}/cmdline`, 'latin1').startsWith(`${TRACER}\0--pid\0${target.pid}`);
      } catch {
        return false;
      }
    }), 5_000), 'and ended');
    target.stdin!.write('2');
    tt.ok(await until(() => said.includes('round 1 done'), 20_000), 'round 1 ran');
    tt.same(printed(said).slice(ROUND.length), ROUND, 'with its results');
    target.stdin!.end();
    tt.equal(await exited, 0, 'and it exits 0');
  });

  for (const sig of ['SIGKILL', 'SIGINT'] as const) {
    t.test(`${sig} of the host during a launched run: the command runs on with its results; nothing stays behind`, async (tt) => {
      // the command's stdin: a FIFO this test writes (node closes a child's stdin pipe when the child, the host, exits)
      const fifo = path.join(OUT, `stdin-${sig}`);
      fs.rmSync(fifo, { force: true });
      spawnSync('mkfifo', [fifo]);
      const hold = fs.openSync(fifo, 'r+');
      const w = fs.openSync(fifo, 'w'), r = fs.openSync(fifo, 'r');
      fs.closeSync(hold);
      let wOpen = true;
      const write = (s: string): void => void fs.writeSync(w, s);
      const child = spawn(process.execPath, [CLI, 'run', '--backend', 'userspace', APP, '-j', '--', TARGET, '-w', EXISTING, MISSING], { stdio: [r, 'pipe', 'pipe'] });
      fs.closeSync(r);
      const run = new Running(child);
      tt.teardown(() => {
        if (!run.done) child.kill('SIGKILL');
        if (wOpen) fs.closeSync(w);
      });
      const hostExit = new Promise<NodeJS.Signals | number | null>((resolve) => child.on('exit', (code, signal) => resolve(signal ?? code)));
      await run.attached('opensnoop');
      write('1');
      tt.ok(await until(() => run.stdout.includes('round 0 done'), 20_000), 'round 0 ran');
      tt.ok(await until(() => openEvents(run.stdout).length === 8, 5_000), 'its 8 events came');
      const tracer = tracers();
      tt.equal(tracer.length, 1, 'one tracer');
      const cmdPid = Number(fs.readFileSync(`/proc/${tracer[0]}/task/${tracer[0]}/children`, 'utf8').trim().split(/\s+/)[0]);
      child.kill(sig);
      await hostExit;
      tt.ok(alive(cmdPid), 'the command is still running');
      write('2');
      tt.ok(await until(() => run.stdout.includes('round 1 done'), 20_000), 'round 1 ran');
      tt.same(printed(run.stdout).slice(ROUND.length), ROUND, 'its syscalls have their results (the filter\'s stops passed through, no ENOSYS)');
      tt.equal(openEvents(run.stdout).length, 8, 'no program ran after the host\'s end');
      fs.closeSync(w);
      wOpen = false;
      tt.ok(await until(() => !alive(cmdPid), 10_000), 'the command ended at its stdin\'s EOF');
      tt.ok(await until(() => tracers().length === 0, 10_000), 'and its tracer with it: no process left');
    });
  }
}
