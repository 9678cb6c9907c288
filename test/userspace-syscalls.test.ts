// tp/syscalls programs in the userspace backend (issue 18 step 2): the agent rewrites libc's openat sites
// (native/agent/sys/) and runs sys_enter/sys_exit programs there with the tracepoint record as ctx
// (lib/syscalls.c). Over the channel: the record's fields and its pt_regs image, hostile programs (a wild
// pointer, an endless loop) disabled while the target's syscalls still run with their results, and
// detach restoring libc's bytes. Through the CLI: the matrix's opensnoop app, unchanged, under
// `--backend userspace -- CMD` as root and as uid 65534 (also routed there by the selector), and on a
// joined pid, with the kernel backend's events field by field; `check --launch` as uid 65534.
import t from 'tap';
import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { loadNative } from '../backends/linux/native.js';
import { syscallTarget } from '../backends/userspace/attach/syscall-target.js';
import { assemble } from '../backends/userspace/vm/asm.js';
import { AGENT_DIR, RINGBUF, launchUnderAgent, ringRecords, ringbufOutputU64 } from './agent-common.js';
import { BUILD, CLI, FIXTURES, ROOT, pollUntil as until, runCli, startCli, nobodyEnv } from './helpers.js';

const OUT = path.join(BUILD, 'userspace-syscalls');
const AGENT = path.join(AGENT_DIR, 'build', 'libwbpf_agent.so');
const TARGET = path.join(OUT, 'sys-open-target');
const APP = path.join(ROOT, 'matrix', 'build', 'opensnoop.wasm');
const EXISTING = '/etc/hostname';
const MISSING = '/nonexistent-wasm-bpf-sys3';
const NR_OPENAT = 257, AT_FDCWD32 = 0xffffff9cn, O_CLOEXEC = 0x80000n, RSI = 104;

const out = ringbufOutputU64;

// sys_enter_openat: __syscall_nr, args[0..2], then PT_REGS_PARM2 through the pointer in the record's first 8 bytes
const ENTER = assemble(`
      mov %r6, %r1
      ${out('%r6', 8)}
      ${out('%r6', 16)}
      ${out('%r6', 24)}
      ${out('%r6', 32)}
      ldxdw %r7, [%r6+0]
      ${out('%r7', RSI)}
      mov %r0, 0
      exit`);
// sys_exit_openat: __syscall_nr, ret
const EXIT = assemble(`
      mov %r6, %r1
      ${out('%r6', 8)}
      ${out('%r6', 16)}
      mov %r0, 0
      exit`);

/** [how, path, ret] of the target's "open PATH RET" lines */
function opens(stdout: string): Array<[string, string, number]> {
  return stdout.split('\n').flatMap((l) => {
    const m = /^(open|openat|fopen) (\S+) (-?\d+)$/.exec(l);
    return m ? [[m[1]!, m[2]!, Number(m[3])] as [string, string, number]] : [];
  });
}

/** bytes of libc's executable mappings in pid (one, or several once a patch's mprotect split it) that differ from the file's */
function libcDiff(pid: number): number {
  const lines = fs.readFileSync(`/proc/${pid}/maps`, 'utf8').split('\n').filter((l) => / r-xp /.test(l) && /\/libc\.so\.6$/.test(l));
  if (!lines.length) throw new Error(`libc is not mapped executable in ${pid}`);
  let diff = 0;
  for (const line of lines) {
    const [range, , off, , , file] = line.trim().split(/\s+/);
    const [lo, hi] = range!.split('-').map((x) => parseInt(x, 16));
    const n = hi! - lo!;
    const mem = Buffer.alloc(n), disk = Buffer.alloc(n);
    const fm = fs.openSync(`/proc/${pid}/mem`, 'r'), fd = fs.openSync(file!, 'r');
    try {
      const got = fs.readSync(fm, mem, 0, n, lo!);
      const want = fs.readSync(fd, disk, 0, n, parseInt(off!, 16));
      for (let i = 0; i < Math.min(got, want); i++) if (mem[i] !== disk[i]) diff++;
    } finally {
      fs.closeSync(fm);
      fs.closeSync(fd);
    }
  }
  return diff;
}

interface OpenEvent { pid: number; comm: string; ret: number; flags: number; filename: string }

/** opensnoop's -j events of the command (its comm) for the known files */
function openEvents(stdout: string, comm: string): OpenEvent[] {
  return stdout.split('\n').flatMap((l) => {
    if (!l.startsWith('{"event":"open"')) return [];
    const e = JSON.parse(l) as OpenEvent;
    return e.comm === comm && (e.filename === EXISTING || e.filename === MISSING) ? [e] : [];
  });
}

function launchedPid(stderr: string): number {
  return Number(/launched pid (\d+)/.exec(stderr)?.[1] ?? -1);
}

if (process.arch !== 'x64') {
  t.pass('the agent rewrites syscall sites on x86_64 only (arm64 goes to the ptrace tier: test/userspace-syscalls-arm64.test.ts)');
} else {
  t.setTimeout(300_000);
  fs.mkdirSync(OUT, { recursive: true });
  fs.chmodSync(OUT, 0o755);
  const mk = spawnSync('make', ['-s', '-C', AGENT_DIR], { encoding: 'utf8' });
  if (mk.status !== 0) throw new Error(`make the agent: ${mk.stderr}`);
  const cc = spawnSync('gcc', ['-O2', path.join(FIXTURES, 'agent', 'sys-open-target.c'), '-o', TARGET], { encoding: 'utf8' });
  if (cc.status !== 0) throw new Error(`build the target: ${cc.stderr}`);
  const native = loadNative();
  const ncpus = native.numPossibleCpus();

  t.test('over the channel: records, pt_regs, hostile programs, detach', async (tt) => {
    const ring = native.shmMapCreate(RINGBUF, 0, 0, 1 << 16, 0, ncpus, 0, 'sys');
    tt.teardown(() => native.shmMapClose(ring.id));
    const { agent, child, stdout, exited } = launchUnderAgent(tt, AGENT, [TARGET, '-w', EXISTING, MISSING]);
    agent.sendMap({ id: 2, fd: ring.fd, notifyFd: ring.notifyFd });
    agent.sendProgram({ id: 1, insns: ENTER });
    agent.sendProgram({ id: 2, insns: EXIT });
    const enter = syscallTarget('tracepoint/syscalls/sys_enter_openat'), exit = syscallTarget('tp/syscalls/sys_exit_openat');
    tt.equal(enter.nr, NR_OPENAT, 'openat is 257');
    tt.throws(() => agent.sendSyscall({ id: 1, progId: 9, nr: NR_OPENAT, exit: false, table: enter.table }), { errno: 2, message: /no program 9/ }, 'an unknown program: ENOENT');
    tt.throws(() => agent.sendSyscall({ id: 1, progId: 1, nr: NR_OPENAT, exit: true, table: enter.table }), { errno: 22, message: /the field table is for sys_enter, the frame says sys_exit/ },
      'a table of the other kind is refused');
    tt.throws(() => agent.sendSyscall({ id: 1, progId: 1, nr: 1, exit: false, table: new Uint8Array(64) }), { errno: 22, message: /version 0/ }, 'a table of another version is refused');
    tt.equal(libcDiff(child.pid!), 0, 'libc as on disk before');
    tt.match(agent.sendSyscall({ id: 1, progId: 1, nr: NR_OPENAT, exit: false, table: enter.table }), /^syscall hook 1 on sys_enter of syscall 257: \d+ sites? rewritten in \d+ objects; libc's syscall\(\) rewritten/, 'sys_enter_openat set');
    tt.match(agent.sendSyscall({ id: 2, progId: 2, nr: NR_OPENAT, exit: true, table: exit.table }), /^syscall hook 2 on sys_exit of syscall 257$/, 'sys_exit_openat set (the sites are rewritten already)');
    tt.throws(() => agent.sendSyscall({ id: 2, progId: 2, nr: NR_OPENAT, exit: true, table: exit.table }), { errno: 17 }, 'an id in use: EEXIST');
    tt.ok(libcDiff(child.pid!) > 0, 'libc\'s openat sites are rewritten');
    agent.start();

    child.stdin?.write('1');
    tt.ok(await until(() => stdout().includes('round 0 done'), 20_000), 'round 0 ran');
    const calls = opens(stdout());
    tt.same(calls.map(([how, p, ret]) => [how, p, p === MISSING ? ret : ret >= 0]), [
      ['open', EXISTING, true], ['openat', EXISTING, true], ['fopen', EXISTING, true],
      ['open', MISSING, -2], ['openat', MISSING, -2], ['fopen', MISSING, -2]], 'the target\'s opens have their results');
    const recs = ringRecords(native, ring, 100);
    tt.equal(recs.length, calls.length * 7, '5 enter and 2 exit records per call');
    calls.forEach(([how, p, ret], i) => {
      const [nr, a0, a1, a2, rsi, xnr, xret] = recs.slice(i * 7, i * 7 + 7);
      tt.equal(nr, BigInt(NR_OPENAT), `${how} ${p}: __syscall_nr`);
      // glibc loads AT_FDCWD with `mov $-100,%edi` (zero-extended): the register, as the kernel stores it
      tt.equal(a0, AT_FDCWD32, `${how} ${p}: args[0] is the whole rdi, AT_FDCWD in its low half`);
      tt.equal(a2, how === 'openat' ? O_CLOEXEC : 0n, `${how} ${p}: args[2], the flags`);
      tt.equal(rsi, a1, `${how} ${p}: PT_REGS_PARM2 through the record's pt_regs pointer is args[1]`);
      tt.equal(xnr, BigInt(NR_OPENAT), `${how} ${p}: sys_exit's __syscall_nr`);
      tt.equal(BigInt.asIntN(64, xret!), BigInt(ret), `${how} ${p}: ret is the call's result`);
    });

    // hostile programs on the same syscall: a wild pointer at entry, an endless loop at exit
    agent.sendProgram({ id: 3, insns: assemble('lddw %r2, 0x10\nldxdw %r0, [%r2+0]\nexit') });
    agent.sendProgram({ id: 4, insns: assemble('loop:\nja loop\nexit') });
    agent.sendSyscall({ id: 3, progId: 3, nr: NR_OPENAT, exit: false, table: enter.table });
    agent.sendSyscall({ id: 4, progId: 4, nr: NR_OPENAT, exit: true, table: exit.table });
    child.stdin?.write('2');
    tt.ok(await until(() => stdout().includes('round 1 done'), 20_000), 'round 1 ran');
    tt.same(opens(stdout()).slice(6).map(([how, p, ret]) => [how, p, p === MISSING ? ret : ret >= 0]), [
      ['open', EXISTING, true], ['openat', EXISTING, true], ['fopen', EXISTING, true],
      ['open', MISSING, -2], ['openat', MISSING, -2], ['fopen', MISSING, -2]], 'the syscalls still ran with their results');
    tt.ok(await until(() => (agent.poll(), agent.notices.length >= 2), 5_000), 'both hostile hooks reported');
    const why = agent.notices.map((n) => `${n.hookId}: ${n.message}`).sort();
    tt.match(why[0], /^3: syscall hook 3 \(sys_enter of syscall 257\) disabled: program 3 stopped with status \d+ at pc 2 \(addr 0x10\); the syscall itself ran on$/, 'the wild pointer: a fault');
    tt.match(why[1], /^4: syscall hook 4 \(sys_exit of syscall 257\) disabled: program 4 stopped with status \d+/, 'the endless loop: the budget');
    tt.equal(agent.notices.length, 2, 'each once');
    tt.equal(ringRecords(native, ring, 100).length, 6 * 7, 'the good programs ran on beside them');

    for (const id of [1, 2, 3, 4]) agent.unhook(id);
    tt.equal(libcDiff(child.pid!), 0, 'detached: libc\'s bytes are the file\'s again');
    child.stdin?.write('3');
    tt.ok(await until(() => stdout().includes('round 2 done'), 20_000), 'round 2 ran');
    tt.equal(opens(stdout()).length, 18, 'its opens ran');
    tt.equal(ringRecords(native, ring, 100).length, 0, 'no program ran');
    child.stdin?.end();
    tt.equal(await exited, 0, 'the target exits 0');
  });

  if (!fs.existsSync(APP)) throw new Error(`${APP} is not built: make -C matrix`);
  const comm = path.basename(TARGET).slice(0, 15);
  const cmd = ['--', TARGET, EXISTING, MISSING];

  const kernel = runCli(['run', '--backend', 'linux', '--verbose', APP, '-j', ...cmd], { timeout: 90_000 });
  const kernelEvents = openEvents(kernel.stdout, comm);
  // the fd a successful open returns differs between the backends (the agent's channel and the maps' fds are
  // inherited by the launched command: its first free fd is higher): each event's ret is checked against
  // the command's own report, and compared across backends as 'an fd' or the -errno
  const strip = (es: OpenEvent[]): Array<Omit<OpenEvent, 'pid' | 'ret'> & { ret: number | 'fd' }> =>
    es.map(({ pid: _pid, ret, ...rest }) => ({ ...rest, ret: ret >= 0 ? 'fd' : ret }));
  /** each event's ret is the result the command printed for that call */
  const retsMatch = (tt: Tap.Test, es: OpenEvent[], stdout: string): void => {
    const printed = opens(stdout).map(([, p, ret]) => [p, ret]);
    tt.same(es.map((e) => [e.filename, e.ret]), printed, 'each event\'s ret is the call\'s result as the command printed it');
  };

  t.test('opensnoop on the kernel backend: the reference', async (tt) => {
    tt.equal(kernel.code, 0, 'exit status 0', { stderr: kernel.stderr });
    tt.equal(kernelEvents.length, 6, 'six opens of the known files');
    tt.ok(kernelEvents.every((e) => e.pid === launchedPid(kernel.stderr)), 'all by the launched command');
    retsMatch(tt, kernelEvents, kernel.stdout);
  });

  t.test('opensnoop unchanged on the userspace backend as root: the kernel\'s events, field by field', async (tt) => {
    const r = runCli(['run', '--backend', 'userspace', '--verbose', APP, '-j', ...cmd], { timeout: 90_000 });
    tt.equal(r.code, 0, 'exit status 0 (the command\'s)', { stderr: r.stderr });
    tt.match(r.stderr, /traces syscalls\/sys_enter_openat \(syscall 257, layout from tracefs\) in pid \d+: syscall hook \d+ on sys_enter of syscall 257: \d+ sites? rewritten in \d+ objects/, '--verbose says what was rewritten');
    const ours = openEvents(r.stdout, comm);
    tt.ok(ours.every((e) => e.pid === launchedPid(r.stderr)), 'pid: the launched command\'s');
    retsMatch(tt, ours, r.stdout);
    tt.same(strip(ours), strip(kernelEvents), 'comm, ret, flags, filename: the kernel\'s (ret -2 for the missing file)');
  });

  const asNobody = (args: string[]): ReturnType<typeof spawnSync> =>
    spawnSync('env', ['-u', 'NODE_OPTIONS', 'setpriv', '--reuid=65534', '--regid=65534', '--clear-groups', process.execPath, CLI, ...args], { encoding: 'utf8', timeout: 90_000, env: nobodyEnv() });

  for (const backend of [['--backend', 'userspace'], []]) {
    const how = backend.length ? '--backend userspace' : 'no --backend: the selector routes it to the userspace backend';
    t.test(`opensnoop as uid 65534, ${how}`, async (tt) => {
      const r = asNobody(['run', ...backend, '--verbose', APP, '-j', ...cmd]);
      const stderr = String(r.stderr), stdout = String(r.stdout);
      tt.equal(r.status, 0, 'exit status 0', { stderr });
      if (!backend.length) tt.match(stderr, /userspace: the kernel cannot run the object; the userspace backend runs every program of it, inside the launched command/, 'routed to the userspace backend');
      const ours = openEvents(stdout, comm);
      tt.ok(ours.length > 0 && ours.every((e) => e.pid === launchedPid(stderr)), 'pid: the launched command\'s');
      retsMatch(tt, ours, stdout);
      tt.same(strip(ours), strip(kernelEvents), 'the kernel\'s events, field by field');
    });
  }

  t.test('exec\'d descendants (sh -c \'cat ...; TARGET ...\'): their opens, as the kernel reports them', async (tt) => {
    const known = path.join(OUT, 'known-file');
    fs.writeFileSync(known, 'x');
    fs.chmodSync(known, 0o644);
    const script = `cat ${known} ${MISSING} > /dev/null 2>&1; ${TARGET} ${known} ${MISSING}`;
    const pick = (stdout: string): OpenEvent[] => stdout.split('\n').flatMap((l) => {
      if (!l.startsWith('{"event":"open"')) return [];
      const e = JSON.parse(l) as OpenEvent;
      return (e.comm === 'cat' || e.comm === comm) && (e.filename === known || e.filename === MISSING) ? [e] : [];
    });
    const k = runCli(['run', '--backend', 'linux', APP, '-j', '--', '/bin/sh', '-c', script], { timeout: 90_000 });
    tt.equal(k.code, 0, 'the kernel run: exit status 0', { stderr: k.stderr });
    const ref = pick(k.stdout);
    tt.equal(ref.length, 8, 'the kernel: cat\'s 2 opens and the target\'s 6');
    const r = runCli(['run', '--backend', 'userspace', '--verbose', APP, '-j', '--', '/bin/sh', '-c', script], { timeout: 90_000 });
    tt.equal(r.code, 0, 'exit status 0', { stderr: r.stderr });
    const ours = pick(r.stdout);
    tt.same(strip(ours), strip(ref), 'the exec\'d programs\' events, field by field');
    tt.equal(new Set(ours.map((e) => e.pid)).size, 2, 'two processes (cat, the target), neither the launched shell');
    tt.notOk(ours.some((e) => e.pid === launchedPid(r.stderr)), 'the shell opened none of them');
  });

  t.test('a joined process (--pid): the same events; at the run\'s end libc is restored and it runs on', async (tt) => {
    const target = spawn(TARGET, ['-w', EXISTING, MISSING], { stdio: ['pipe', 'pipe', 'inherit'] });
    tt.teardown(() => { if (target.exitCode === null && target.signalCode === null) target.kill('SIGKILL'); });
    let printed = '';
    target.stdout.setEncoding('utf8').on('data', (d: string) => (printed += d));
    const exited = new Promise<number | null>((resolve) => target.on('exit', (code) => resolve(code)));
    tt.ok(await until(() => fs.readFileSync(`/proc/${target.pid}/maps`, 'utf8').includes('libc.so.6'), 5_000), 'the target runs');
    const run = startCli(['run', '--backend', 'userspace', '--verbose', '--pid', String(target.pid), APP, '-j', '-t', '4']);
    await run.attached('opensnoop');
    target.stdin.write('1');
    tt.ok(await until(() => printed.includes('round 0 done'), 20_000), 'round 0 ran');
    const end = await run.exited;
    tt.equal(end.code, 0, 'the app ends after -t 4', { stderr: run.stderr });
    const ours = openEvents(run.stdout, comm);
    tt.ok(ours.length === 6 && ours.every((e) => e.pid === target.pid), 'six events of the joined pid');
    retsMatch(tt, ours, printed);
    tt.same(strip(ours), strip(kernelEvents), 'the kernel\'s events, field by field');
    tt.ok(await until(() => libcDiff(target.pid!) === 0, 5_000), 'libc\'s bytes are the file\'s again');
    target.stdin.write('2');
    tt.ok(await until(() => printed.includes('round 1 done'), 20_000), 'the target runs on');
    target.stdin.end();
    tt.equal(await exited, 0, 'and exits 0');
  });

  t.test('check --launch as uid 65534 plans the userspace backend, and names what it attaches', async (tt) => {
    const r = asNobody(['check', '--launch', APP]);
    tt.match(String(r.stdout), /plan: userspace backend \(.*userspace: the kernel cannot run the object; the userspace backend runs every program of it, inside the launched command\)/, 'opensnoop: the userspace backend');
    const none = asNobody(['check', '--launch', path.join(ROOT, 'matrix', 'build', 'runqlat.wasm')]);
    tt.match(String(none.stdout), /the userspace backend: it cannot run tp_btf programs .*; it attaches: uprobe, uprobe\.s, uretprobe, uretprobe\.s, tracepoint\/syscalls\/sys_enter_\*\|sys_exit_\* \(x86_64, arm64\), tracepoint\/raw_syscalls\/sys_enter\|sys_exit \(x86_64\), tp\/sched\/sched_process_exec\|exit\|fork \(x86_64, arm64\)/, 'a refusal lists the syscall tracepoints and process events, and the arches they are traced on');
  });
}
