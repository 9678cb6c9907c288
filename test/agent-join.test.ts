// Join mode of the uprobe agent (backends/userspace/attach/join.ts, native/agent/inject/wbpf-inject.c,
// native/agent/lib/join.c): a target running before anyone joins it is injected by ptrace and driven over
// the channel like a launched one: hooks count its calls (one thread sleeping between calls, or 9 busy
// threads, or threads it starts after the join), closing unhooks and it runs on to its normal end, its own
// checks of its registers and errno passing. A second join while the first is served gets its own session
// (the same ids, its own maps and programs), up to 8 hosts at once; a host killed leaves it unhooked; return probes count (and are refused where an
// exception could unwind through them: a dlopen'ed agent cannot interpose the unwinder); a failed injection
// leaves it as it was; an ordinary user joins its own process; each refusal (no such pid, another user, a
// tracer already there, a static program, another arch, Yama) says why.
import t from 'tap';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { loadNative, type NativeAddon, type NativeShmMap } from '../backends/linux/native.js';
import { AgentChannel } from '../backends/userspace/attach/channel.js';
import { joinLibrary, joinProcess } from '../backends/userspace/attach/join.js';
import { joinRefusal, readSelf, readTarget, type JoinerView, type TargetView } from '../backends/userspace/attach/join-checks.js';
import { buildAgent, counterMap, counting, hookRequest, peekCounter, sleep, tasks } from './agent-common.js';
import { BUILD, FIXTURES, ROOT, pollUntil as until } from './helpers.js';

const OUT = path.join(BUILD, 'agent');
const AGENT = path.join(OUT, 'libwbpf_agent.so');
const TARGET = path.join(OUT, 'join-target');
const STATIC_TARGET = path.join(OUT, 'join-target-static');
const CXX_TARGET = path.join(OUT, 'join-target-cxx');
const HANG_LIB = path.join(OUT, 'join-hang.so');
const FAULT_LIB = path.join(OUT, 'join-fault.so');

/** counter[0] += 1 (array map 1) */
const COUNTING = counting(0);

interface Running {
  child: ChildProcess;
  pid: number;
  stdout: () => string;
  exited: Promise<number | null>;
}

/** the target, running (it printed 'running'); killed at the end of tt if still there */
async function running(tt: Tap.Test, cmd: string[]): Promise<Running> {
  const child = spawn(cmd[0]!, cmd.slice(1), { stdio: ['ignore', 'pipe', 'inherit'] });
  tt.teardown(() => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  });
  let out = '';
  child.stdout?.on('data', (d: Buffer) => (out += d.toString()));
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  tt.ok(await until(() => out.includes('join-target: running'), 10_000), 'the target runs');
  await sleep(100);
  return { child, pid: child.pid!, stdout: () => out, exited };
}

const count = (native: NativeAddon, m: NativeShmMap): bigint => peekCounter(native, m);

/** joins pid (and closes the channel at the end of tt) with the program COUNTING into `m` loaded */
function joined(tt: Tap.Test, pid: number, m: NativeShmMap): AgentChannel {
  const ch = new AgentChannel(joinProcess(pid, { agent: AGENT }).fd);
  tt.teardown(() => ch.close());
  ch.sendMap({ id: 1, fd: m.fd, notifyFd: -1 });
  ch.sendProgram({ id: 1, insns: COUNTING });
  return ch;
}

/** hooks `func` of `binary` (its entry, or its return) with program 1 */
function hook(ch: AgentChannel, retprobe = false, binary = TARGET, func = 'uprobe_target_add'): string {
  return ch.sendHook(hookRequest(binary, func, 1, 1, retprobe));
}

/** joins pid and hooks uprobe_target_add's entry with COUNTING into `m` */
function joinAndHook(tt: Tap.Test, pid: number, m: NativeShmMap): AgentChannel {
  const ch = joined(tt, pid, m);
  hook(ch);
  return ch;
}

if (process.arch !== 'x64') {
  t.pass('joining is implemented for x86-64 only');
} else {
  t.setTimeout(180_000);
  const native = loadNative();

  t.before(() => {
    buildAgent(OUT);
    const src = path.join(FIXTURES, 'agent', 'join-target.c');
    for (const [out, extra] of [[TARGET, []], [STATIC_TARGET, ['-static']]] as const) {
      const cc = spawnSync('gcc', ['-O2', '-g', ...extra, src, '-o', out, '-lpthread'], { encoding: 'utf8' });
      if (cc.status !== 0) throw new Error(`build ${out}: ${cc.stderr}`);
    }
    const hang = spawnSync('gcc', ['-O2', '-shared', '-fPIC', path.join(FIXTURES, 'agent', 'join-hang.c'), '-o', HANG_LIB], { encoding: 'utf8' });
    if (hang.status !== 0) throw new Error(`build ${HANG_LIB}: ${hang.stderr}`);
    const fault = spawnSync('gcc', ['-O2', '-shared', '-fPIC', path.join(FIXTURES, 'agent', 'join-fault.c'), '-o', FAULT_LIB], { encoding: 'utf8' });
    if (fault.status !== 0) throw new Error(`build ${FAULT_LIB}: ${fault.stderr}`);
    const cxx = spawnSync('g++', ['-O2', '-g', '-x', 'c++', src, '-o', CXX_TARGET, '-lpthread'], { encoding: 'utf8' });
    if (cxx.status !== 0) throw new Error(`build ${CXX_TARGET}: ${cxx.stderr}`);
  });

  t.test('join a running target: hook, count, unhook, close; it runs on to its normal end', async (tt) => {
    const m = counterMap(tt, native);
    const target = await running(tt, [TARGET, '3000', '0']);
    const before = tasks(target.pid);
    const ch = joinAndHook(tt, target.pid, m);
    tt.ok(await until(() => count(native, m) >= 20n, 10_000), 'the hook counts the calls of the joined process');
    ch.unhook(1);
    const c1 = count(native, m);
    await sleep(200);
    tt.equal(count(native, m), c1, 'unhooked: the count stops');
    ch.close();
    tt.ok(await until(() => tasks(target.pid) === before, 10_000), 'closing the channel ends the agent\'s thread');
    tt.equal(await target.exited, 0, 'the target exits 0');
    tt.match(target.stdout(), /join-target: ok, \d+ calls\n$/, 'its normal output: its own checks of errno across the join passed');
  });

  t.test('8 threads busy calling the function while joining (and the main thread: none waits in a syscall); their registers unharmed', async (tt) => {
    const m = counterMap(tt, native);
    const target = await running(tt, [TARGET, '4000', '8', 'busy']);
    const ch = joinAndHook(tt, target.pid, m);
    tt.ok(await until(() => count(native, m) >= 100_000n, 10_000), 'the hook counts calls of the 8 threads');
    ch.close();
    tt.equal(await target.exited, 0, 'the target exits 0');
    tt.match(target.stdout(), /join-target: ok, \d+ calls\n$/, 'every thread\'s check of its registers passed');
  });

  t.test('threads the process creates after the join hit the hook too', async (tt) => {
    const m = counterMap(tt, native);
    const target = await running(tt, [TARGET, '3000', '4', 'late']);
    const ch = joinAndHook(tt, target.pid, m);
    tt.equal(tasks(target.pid), 2, 'joined before the threads start: main and the agent\'s thread');
    tt.ok(await until(() => tasks(target.pid) === 6, 5_000), 'the 4 threads start');
    tt.ok(await until(() => count(native, m) >= 100_000n, 10_000), 'their busy calls are counted');
    ch.close();
    tt.equal(await target.exited, 0, 'the target exits 0');
    tt.match(target.stdout(), /join-target: ok, \d+ calls\n$/, 'its own checks passed');
  });

  t.test('a second join while the first is served gets its own session: the same ids, its own map; after the first left, another join works', async (tt) => {
    const m1 = counterMap(tt, native), m2 = counterMap(tt, native), m3 = counterMap(tt, native);
    // busy: the only thread waiting in a syscall, so the one the second join borrows, is the agent's serve
    // thread, which blocks every signal (a trap there would have reset SIGTRAP and the next patch killed it)
    const target = await running(tt, [TARGET, '4000', '0', 'busy']);
    const ch = joinAndHook(tt, target.pid, m1);
    tt.ok(await until(() => count(native, m1) >= 10n, 10_000), 'the first join counts');
    const ch2 = joinAndHook(tt, target.pid, m2); // map 1, program 1, hook 1: the first host's ids too
    tt.ok(await until(() => count(native, m2) >= 10n, 10_000), 'the second join counts in its own map (the same ids)');
    const a = count(native, m1);
    tt.ok(await until(() => count(native, m1) > a, 10_000), 'the first join still counts');
    tt.equal(tasks(target.pid), 3, 'one serve thread per host');
    ch.close();
    tt.ok(await until(() => tasks(target.pid) === 2, 10_000), 'the first host left (its thread ended)');
    const c1 = count(native, m1), c2 = count(native, m2);
    tt.ok(await until(() => count(native, m2) > c2 + 10n, 10_000), 'the second still counts after the first left');
    tt.equal(count(native, m1), c1, 'the first host\'s map no longer counts');
    const ch3 = joinAndHook(tt, target.pid, m3);
    tt.ok(await until(() => count(native, m3) >= 10n, 10_000), 'a third join, after the first left, counts in its own map');
    ch2.close();
    ch3.close();
    tt.equal(await target.exited, 0, 'the target exits 0');
    tt.match(target.stdout(), /join-target: ok/, 'its normal output');
  });

  t.test('two hosts with different programs on one function: each runs its own, into its own map (the same map ids)', async (tt) => {
    /** counter[0] += 1000 (array map 1): another app's program, same ids as COUNTING's */
    const THOUSANDS = counting(0, undefined, 1000);
    const m1 = counterMap(tt, native), m2 = counterMap(tt, native);
    const target = await running(tt, [TARGET, '4000', '0']);
    const ch = joinAndHook(tt, target.pid, m1);
    const ch2 = new AgentChannel(joinProcess(target.pid, { agent: AGENT }).fd);
    tt.teardown(() => ch2.close());
    ch2.sendMap({ id: 1, fd: m2.fd, notifyFd: -1 });
    ch2.sendProgram({ id: 1, insns: THOUSANDS });
    hook(ch2);
    tt.ok(await until(() => count(native, m2) >= 10_000n, 10_000), 'the second host\'s program counts in thousands in its map');
    tt.equal(count(native, m2) % 1000n, 0n, 'only the second host\'s program writes its map');
    tt.ok(count(native, m1) > 0n && count(native, m1) < 1000n * count(native, m2), 'the first host\'s map counts in ones');
    ch2.unhook(1);
    tt.doesNotThrow(() => ch.unhook(1), 'each host unhooks its own hook 1 (the second\'s is gone, the first\'s still there)');
    tt.throws(() => ch.unhook(1), { errno: 2 }, 'and only once');
    ch.close();
    ch2.close();
    tt.equal(await target.exited, 0, 'the target exits 0');
  });

  t.test('at most 8 hosts at once: a ninth join is refused with EBUSY, why and the cap', async (tt) => {
    const target = await running(tt, [TARGET, '6000', '0']);
    const chans: AgentChannel[] = [];
    tt.teardown(() => chans.forEach((c) => c.close()));
    const maps = Array.from({ length: 8 }, () => counterMap(tt, native));
    for (const m of maps) chans.push(joinAndHook(tt, target.pid, m));
    tt.ok(await until(() => maps.every((m) => count(native, m) >= 5n), 15_000), '8 hosts count, each in its own map');
    tt.throws(() => joinProcess(target.pid, { agent: AGENT }), { errno: 16, message: /is served by 8 wasm-bpf hosts already .*at most 8 at once/ },
      'a ninth host: EBUSY');
    chans.pop()!.close();
    tt.ok(await until(() => tasks(target.pid) === 8, 10_000), 'one host left');
    const m9 = counterMap(tt, native);
    chans.push(joinAndHook(tt, target.pid, m9));
    tt.ok(await until(() => count(native, m9) >= 5n, 10_000), 'its session is free again: another host joins and counts');
    chans.forEach((c) => c.close());
    tt.equal(await target.exited, 0, 'the target exits 0');
  });

  t.test('return probes: in a joined C program they count; where an exception may unwind (libstdc++) refused', async (tt) => {
    const m = counterMap(tt, native);
    const target = await running(tt, [TARGET, '3000', '0']);
    const ch = joined(tt, target.pid, m);
    tt.match(hook(ch, true), /^hook 1 at 0x[0-9a-f]+$/, 'a return hook in a C program');
    tt.ok(await until(() => count(native, m) >= 20n, 10_000), 'it counts the returns');
    ch.close();
    tt.equal(await target.exited, 0, 'the target exits 0');
    tt.match(target.stdout(), /join-target: ok/, 'its normal output');

    const m2 = counterMap(tt, native);
    const cxx = await running(tt, [CXX_TARGET, '3000', '0']);
    const ch2 = joined(tt, cxx.pid, m2);
    tt.throws(() => hook(ch2, true, CXX_TARGET, '_Z17uprobe_target_addii'), {
      errno: 95,
      message: 'agent: hook 1: a return probe in a joined process that maps libgcc_s or libstdc++ is refused: an exception unwinding through an armed call would end the process (a dlopen\'ed agent cannot interpose the unwinder); launch the command under wasm-bpf instead',
    }, 'a return hook in a C++ program: EOPNOTSUPP, why and what to do');
    tt.match(hook(ch2, false, CXX_TARGET, '_Z17uprobe_target_addii'), /^hook 1 at 0x[0-9a-f]+$/, 'an entry hook there is fine');
    tt.ok(await until(() => count(native, m2) >= 20n, 10_000), 'and counts');
    ch2.close();
    tt.equal(await cxx.exited, 0, 'the C++ target exits 0');
  });

  t.test('the host killed (SIGKILL) while hooked: the agent unhooks, the target runs on', async (tt) => {
    // long enough for a node + tsx host to start on a loaded machine (it took over 3 s in CI)
    const target = await running(tt, [TARGET, '12000', '2']);
    const host = spawn(process.execPath, ['--import=tsx', path.join(FIXTURES, 'agent', 'join-as-user.ts'), AGENT, TARGET, String(target.pid), '1', 'hold'], {
      cwd: ROOT,
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    tt.teardown(() => host.kill('SIGKILL'));
    let out = '';
    host.stdout?.on('data', (d: Buffer) => (out += d.toString()));
    tt.ok(await until(() => out.includes('"counted"'), 30_000), 'the host joined and its hook counts');
    tt.equal(tasks(target.pid), 4, 'the agent\'s thread is there');
    host.kill('SIGKILL');
    tt.ok(await until(() => tasks(target.pid) === 3, 5_000), 'the agent saw EOF, unhooked and ended its thread');
    tt.equal(await target.exited, 0, 'the target exits 0');
    tt.match(target.stdout(), /join-target: ok/, 'its own checks passed');
  });

  t.test('an ordinary user (uid 65534) joins its own process; not another user\'s', async (tt) => {
    const user = ['--reuid=65534', '--regid=65534', '--clear-groups'];
    const target = await running(tt, ['setpriv', ...user, TARGET, '12000', '0']);
    const r = spawnSync('env', ['-u', 'NODE_OPTIONS', 'setpriv', ...user, process.execPath, '--import=tsx', path.join(FIXTURES, 'agent', 'join-as-user.ts'), AGENT, TARGET, String(target.pid), '1'], {
      encoding: 'utf8',
      cwd: ROOT,
      timeout: 60_000,
    });
    tt.equal(r.status, 0, 'the user\'s run ends 0', { stderr: r.stderr });
    const got = JSON.parse(r.stdout.trim().split('\n').pop() ?? '{}') as { counted: number; closedTasks: number; refusal?: { errno: number; message: string } };
    tt.ok(got.counted >= 10, `it counted the calls (${got.counted})`);
    tt.equal(got.closedTasks, 1, 'closing ended the agent\'s thread');
    tt.equal(got.refusal?.errno, 1, 'pid 1 (root\'s): EPERM');
    tt.match(got.refusal?.message ?? '', /^join: process 1 \(\S+\) belongs to uid 0\/0\/0 gid 0\/0\/0 \(real\/effective\/saved\) and this process runs as uid 65534 gid 65534: only a process of the same user may be joined without CAP_SYS_PTRACE$/,
      'the reason');
    tt.equal(await target.exited, 0, 'the target exits 0');
    tt.match(target.stdout(), /join-target: ok/, 'its normal output');
  });

  t.test('a failed injection (not a library, no wbpf_agent_join, a constructor that faults, a dlopen that never returns) leaves the target as it was', async (tt) => {
    const target = await running(tt, [TARGET, '3000', '2']);
    const notElf = path.join(OUT, 'not-a-library.so');
    fs.writeFileSync(notElf, 'not an ELF file\n');
    tt.throws(() => joinProcess(target.pid, { agent: notElf }), { errno: 79, message: new RegExp(`^join: dlopen of the agent in process ${target.pid} failed: ${notElf}: (invalid ELF header|file too short)$`) },
      'dlopen fails: ELIBACC with the loader\'s message');
    const libm = path.join(OUT, 'no-entry.so');
    fs.copyFileSync('/lib/x86_64-linux-gnu/libm.so.6', libm);
    tt.throws(() => joinProcess(target.pid, { agent: libm }), { errno: 80, message: `join: ${libm} has no wbpf_agent_join (an agent built before join mode?)` },
      'a library without the entry: ELIBBAD');
    tt.equal(fs.readFileSync(`/proc/${target.pid}/status`, 'utf8').match(/^TracerPid:\s*(\d+)/m)?.[1], '0', 'no tracer left');
    tt.equal(await target.exited, 0, 'the target exits 0');
    tt.match(target.stdout(), /join-target: ok/, 'its own checks passed');

    // one thread: the borrowed one is main, which alone may take the loader's lock an abandoned dlopen left held
    const lone = await running(tt, [TARGET, '2000', '0']);
    tt.throws(() => joinProcess(lone.pid, { agent: FAULT_LIB }),
      { errno: 14, message: new RegExp(`^join: the call injected into thread ${lone.pid} of process ${lone.pid} faulted \\(signal 11 at 0x[0-9a-f]+, address 0x10\\)$`) },
      'a library whose constructor faults: EFAULT, the SIGSEGV not delivered, the registers put back');
    const t0 = Date.now();
    tt.throws(() => joinProcess(lone.pid, { agent: HANG_LIB, timeoutMs: 500 }),
      { errno: 110, message: new RegExp(`^join: the call injected into thread ${lone.pid} of process ${lone.pid} did not return within the timeout$`) },
      'a library whose constructor never returns: ETIMEDOUT, the thread interrupted and its registers put back');
    tt.ok(Date.now() - t0 < 5000, 'within the timeout and the clean-up\'s time');
    tt.match(fs.readFileSync(`/proc/${lone.pid}/status`, 'utf8'), /^TracerPid:\s*0$/m, 'no tracer left');
    tt.equal(await lone.exited, 0, 'the target exits 0');
    tt.match(lone.stdout(), /join-target: ok/, 'its own checks passed');
  });

  t.test('refusals: no such pid, a tracer already there, a static program', async (tt) => {
    tt.throws(() => joinProcess(4_000_000, { agent: AGENT }), { errno: 3, message: 'join: there is no process 4000000', hint: 'check the pid (ps -p PID)' }, 'no such pid: ESRCH');
    tt.throws(() => joinProcess(process.pid, { agent: AGENT }), { errno: 22, message: `join: process ${process.pid} is this wasm-bpf process itself` }, 'itself: EINVAL');

    const traced = spawn('strace', ['-o', '/dev/null', TARGET, '3000', '0'], { stdio: 'ignore' });
    tt.teardown(() => traced.kill('SIGKILL'));
    let pid = 0;
    tt.ok(await until(() => {
      pid = Number(fs.readFileSync(`/proc/${traced.pid}/task/${traced.pid}/children`, 'utf8').trim().split(' ')[0] ?? 0);
      return pid > 0 && fs.readFileSync(`/proc/${pid}/status`, 'utf8').includes('Name:\tjoin-target');
    }, 10_000), 'a target under strace');
    tt.throws(() => joinProcess(pid, { agent: AGENT }),
      { errno: 16, message: `join: process ${pid} (join-target) is already traced by process ${traced.pid} (a debugger, strace, ...): a process has one tracer at a time` }, 'traced already: EBUSY');
    traced.kill('SIGKILL');

    const stat = await running(tt, [STATIC_TARGET, '3000', '0']);
    tt.throws(() => joinProcess(stat.pid, { agent: AGENT }), {
      errno: 8,
      message: `join: process ${stat.pid} (join-target-sta) maps no libc.so: a statically linked program has no dlopen to load the agent with`,
      hint: 'a static program is traced by the ptrace tier: leave --userspace-tier at auto (or set it to ptrace)',
    }, 'a static program: ENOEXEC, the ptrace tier named');
    tt.equal(await stat.exited, 0, 'the static target was not touched');
  });

  t.test('refusals decided from /proc: another arch, Yama, another user, stopped; the library chosen', (tt) => {
    const self: JoinerView = { pid: 10, uid: 1000, gid: 1000, capSysPtrace: false, arch: 'x64', yama: undefined };
    const status = (uid: number, state = 'S (sleeping)', tracer = 0): string =>
      `Name:\tapp\nState:\t${state}\nTracerPid:\t${tracer}\nUid:\t${uid}\t${uid}\t${uid}\t${uid}\nGid:\t${uid}\t${uid}\t${uid}\t${uid}\n`;
    const elf = (cls: number, machine: number): Uint8Array => {
      const h = new Uint8Array(64);
      h.set([0x7f, 0x45, 0x4c, 0x46, cls, 1, 1], 0);
      h[18] = machine & 0xff;
      h[19] = machine >> 8;
      return h;
    };
    const libc = '7f00-7f01 r-xp 00000000 08:01 12 /usr/lib/x86_64-linux-gnu/libc.so.6\n';
    const ok: TargetView = { status: status(1000), exeHeader: elf(2, 62), maps: libc };
    tt.equal(joinRefusal(42, ok, self), undefined, 'a process of the same user: nothing stands in the way');
    tt.match(joinRefusal(42, { ...ok, exeHeader: elf(2, 183) }, self)?.message, 'join: process 42 (app) runs a 64-bit arm64 (aarch64) program; the agent is a 64-bit x86-64 library', 'another arch');
    tt.match(joinRefusal(42, { ...ok, exeHeader: elf(1, 3) }, self)?.message, 'runs a 32-bit i386 program', 'a 32-bit program');
    tt.equal(joinRefusal(42, { ...ok, exeHeader: elf(1, 3) }, self)?.errno, 8, 'ENOEXEC');
    const yama = joinRefusal(42, ok, { ...self, yama: '1\n' });
    tt.equal(yama?.errno, 1, 'Yama 1 without CAP_SYS_PTRACE: EPERM');
    tt.match(yama?.message, /Yama ptrace_scope 1 .* joining process 42 \(app\) needs CAP_SYS_PTRACE/, 'the reason');
    tt.match((yama as { hint?: string } | undefined)?.hint, /kernel\.yama\.ptrace_scope=0/, 'the fix');
    tt.equal(joinRefusal(42, ok, { ...self, yama: '1', capSysPtrace: true }), undefined, 'Yama 1 with CAP_SYS_PTRACE: allowed');
    tt.match(joinRefusal(42, ok, { ...self, yama: '3', capSysPtrace: true })?.message, /Yama ptrace_scope 3 .*not even root/, 'Yama 3: refused even with the capability');
    tt.match(joinRefusal(42, { ...ok, status: status(0) }, self)?.message, /belongs to uid 0\/0\/0/, 'another user');
    tt.equal(joinRefusal(42, { ...ok, status: status(0) }, { ...self, capSysPtrace: true }), undefined, 'another user, with CAP_SYS_PTRACE: allowed');
    tt.match(joinRefusal(42, { ...ok, status: status(1000, 'T (stopped)') }, self)?.message, 'join: process 42 (app) is stopped (T (stopped))', 'stopped');
    tt.match(joinRefusal(42, { ...ok, status: status(1000, 'Z (zombie)') }, self)?.message, 'has exited', 'a zombie');
    tt.match(joinRefusal(42, { ...ok, maps: '' }, self)?.message, 'maps no libc.so', 'static');
    tt.equal(joinRefusal(42, ok, { ...self, arch: 'riscv64' })?.errno, 95, 'a host of another arch than x86-64 and arm64: EOPNOTSUPP');
    tt.equal(joinRefusal(42, { ...ok, exeHeader: elf(2, 183) }, { ...self, arch: 'arm64' }), undefined, 'an arm64 host joins an arm64 program');
    tt.match(joinRefusal(42, ok, { ...self, arch: 'arm64' })?.message, 'join: process 42 (app) runs a 64-bit x86-64 program; the agent is a 64-bit arm64 library', 'an arm64 host: an x86-64 program refused');
    const agentLine = (file: string, deleted = false): string => `7f10-7f20 r-xp 00000000 08:01 99 ${file}${deleted ? ' (deleted)' : ''}\n`;
    tt.equal(joinLibrary(AGENT, libc), path.join(OUT, 'libwbpf_agent_join.so'), 'a fresh process gets the join build');
    tt.equal(joinLibrary(AGENT, libc + agentLine('/opt/w/libwbpf_agent.so')), '/opt/w/libwbpf_agent.so', 'one holding an agent (launched under it) gets that one');
    tt.throws(() => joinLibrary(AGENT, libc + agentLine('/opt/w/libwbpf_agent_join.so', true), 42),
      { errno: 16, message: 'join: process 42 holds an agent whose file was replaced since it was loaded (/opt/w/libwbpf_agent_join.so, rebuilt?): loading the new one beside it would make two agents' },
      'one holding a rebuilt agent: EBUSY');
    tt.ok(readTarget(process.pid).status?.includes(`Pid:\t${process.pid}`), 'readTarget reads /proc');
    tt.equal(readSelf().pid, process.pid, 'readSelf');
    tt.end();
  });
}
