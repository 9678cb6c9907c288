// raw_syscalls and syscalls made outside libc's wrappers in the userspace backend (issue 18 point 1): the agent
// rewrites every syscall site of every loaded object for tp/raw_syscalls/sys_enter|sys_exit, libc's generic
// syscall() with the number checked at run time, and a `syscall` instruction of the main program's own code
// (test/fixtures/agent/sys-raw-target.c: inline asm) and of a library it dlopen()s (sys-raw-lib.c). Through the CLI, a guest (fixtures/agent/raw-sys-guest.c)
// attaching raw-sys.bpf.c's programs: the target's main-thread events between its two getppid() markers, field
// by field against the kernel backend's, as root and as uid 65534 (--backend userspace and routed there), and
// when a shell execs it; a joined process's (--pid) opens, and it runs on after the run.
// Hostile section names (an unknown syscall, a 4000-character name, raw_syscalls/foo, sched/nonsense, an empty
// name): a clear error, the guest's exit code, the launched command killed before its main, no kernel object left.
import t from 'tap';
import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { AGENT_DIR } from './agent-common.js';
import { BUILD, CLI, FIXTURES, buildBpf, buildGuest, kernelIds, pollUntil as until, runCli, settledLeaks, startCli, nobodyEnv } from './helpers.js';

const OUT = path.join(BUILD, 'userspace-raw-syscalls');
const TARGET = path.join(OUT, 'sys-raw-target');
const FILE = '/etc/hostname';
const AT_FDCWD32 = 4294967196n;
const NR = { close: 3, getpid: 39, getuid: 102, getgid: 104, getppid: 110, openat: 257 } as const;
const LIB = path.join(OUT, 'libsys-raw.so');

interface Rec { kind: number; tid: number; id: number; args: bigint[]; ret: bigint }

function recs(stdout: string): Rec[] {
  return stdout.split('\n').flatMap((l) => {
    const f = l.split(' ');
    if (f[0] !== 'rec' || f.length !== 11) return [];
    return [{ kind: Number(f[1]), tid: Number(f[2]), id: Number(f[3]), args: f.slice(4, 10).map((x) => BigInt(x)), ret: BigInt(f[10]!) }];
  });
}

/** the target's report: the open's result, its pid, uid and gid */
function printed(stdout: string): { open: number; pid: number; uid: number; gid: number } {
  const o = /^open \S+ (-?\d+)$/m.exec(stdout), p = /^pid (\d+) uid (\d+) gid (-?\d+)$/m.exec(stdout);
  return { open: Number(o?.[1] ?? NaN), pid: Number(p?.[1] ?? NaN), uid: Number(p?.[2] ?? NaN), gid: Number(p?.[3] ?? NaN) };
}

/** the events between the first getppid entry and the last getppid exit, each as the fields that do not vary
 * between runs (the registers a syscall does not take hold whatever the caller left there) */
function window(stdout: string): string[] {
  const rs = recs(stdout), me = printed(stdout);
  const first = rs.findIndex((r) => r.kind === 1 && r.id === NR.getppid);
  let last = -1;
  rs.forEach((r, i) => { if (r.kind === 2 && r.id === NR.getppid) last = i; });
  if (first < 0 || last < first) return [`no getppid markers in ${rs.length} records`];
  return rs.slice(first, last + 1).map((r) => {
    const what = r.kind === 1 ? 'raw enter' : r.kind === 2 ? 'raw exit' : 'sys_enter_getuid';
    if (r.tid !== me.pid) return `${what} of another thread ${r.tid}`;
    if (r.kind === 3) return `${what} nr ${r.id}`;
    if (r.kind === 1) {
      const a = r.args;
      switch (r.id) {
        case NR.openat: return `${what} openat dfd ${a[0] === AT_FDCWD32 ? 'AT_FDCWD' : a[0]} flags ${a[2]}`;
        case NR.close: return `${what} close fd ${a[0] === BigInt(me.open) ? 'the open\'s' : a[0]}`;
        default: return `${what} ${r.id}`;
      }
    }
    switch (r.id) {
      case NR.openat: return `${what} openat ret ${r.ret === BigInt(me.open) ? 'as printed' : r.ret}`;
      case NR.getpid: return `${what} getpid ret ${r.ret === BigInt(me.pid) ? 'its pid' : r.ret}`;
      case NR.getuid: return `${what} getuid ret ${r.ret === BigInt(me.uid) ? 'its uid' : r.ret}`;
      case NR.getgid: return `${what} getgid ret ${r.ret === BigInt(me.gid) ? 'its gid' : r.ret}`;
      case NR.getppid: return `${what} getppid ret ${r.ret > 0n ? 'a pid' : r.ret}`;
      default: return `${what} ${r.id} ret ${r.ret}`;
    }
  });
}

const asNobody = (args: string[]): { code: number | null; stdout: string; stderr: string; signal: NodeJS.Signals | null } => {
  const r = spawnSync('env', ['-u', 'NODE_OPTIONS', 'setpriv', '--reuid=65534', '--regid=65534', '--clear-groups', process.execPath, CLI, ...args], { encoding: 'utf8', timeout: 90_000, env: nobodyEnv() });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr, signal: r.signal };
};

if (process.arch !== 'x64') {
  t.pass('the userspace backend traces syscalls on x86_64 only for now');
} else {
  t.setTimeout(300_000);
  fs.mkdirSync(OUT, { recursive: true });
  fs.chmodSync(OUT, 0o755);
  const mk = spawnSync('make', ['-s', '-C', AGENT_DIR], { encoding: 'utf8' });
  if (mk.status !== 0) throw new Error(`make the agent: ${mk.stderr}`);
  const cc = spawnSync('gcc', ['-O2', path.join(FIXTURES, 'agent', 'sys-raw-target.c'), '-o', TARGET], { encoding: 'utf8' });
  if (cc.status !== 0) throw new Error(`build the target: ${cc.stderr}`);
  const so = spawnSync('gcc', ['-O2', '-shared', '-fPIC', path.join(FIXTURES, 'agent', 'sys-raw-lib.c'), '-o', LIB], { encoding: 'utf8' });
  if (so.status !== 0) throw new Error(`build the library: ${so.stderr}`);
  buildBpf(path.join(FIXTURES, 'agent', 'raw-sys.bpf.c'), path.join(OUT, 'raw-sys.bpf.o'));
  buildBpf(path.join(FIXTURES, 'agent', 'hostile-sys.bpf.c'), path.join(OUT, 'hostile-sys.bpf.o'));
  for (const f of ['raw-sys.bpf.o', 'hostile-sys.bpf.o']) fs.chmodSync(path.join(OUT, f), 0o644);
  const guest = buildGuest(path.join(FIXTURES, 'agent', 'raw-sys-guest.c'), path.join(OUT, 'raw-sys-guest.wasm'));
  fs.chmodSync(guest, 0o644);
  const PROGS = ['raw_enter', 'raw_exit', 'enter_getuid'];
  const args = (backend: string[]): string[] => ['run', ...backend, '--verbose', '--dir', `${OUT}:/d`, guest, '/d/raw-sys.bpf.o', ...PROGS, '--', TARGET, FILE, LIB];

  const kernel = runCli(args(['--backend', 'linux']), { timeout: 90_000 });
  const ref = window(kernel.stdout);

  t.test('the kernel backend: the reference', async (tt) => {
    tt.equal(kernel.code, 0, 'exit status 0', { stderr: kernel.stderr });
    tt.same(ref, [
      'raw enter 110', 'raw exit getppid ret a pid',
      'raw enter openat dfd AT_FDCWD flags 0', 'raw exit openat ret as printed',
      'raw enter close fd the open\'s', 'raw exit 3 ret 0',
      'raw enter 39', 'raw exit getpid ret its pid',
      'raw enter 102', 'sys_enter_getuid nr 102', 'raw exit getuid ret its uid',
      'raw enter 104', 'raw exit getgid ret its gid',
      'raw enter 110', 'raw exit getppid ret a pid',
    ], 'wrappers, syscall(SYS_getpid), the main program\'s and the dlopen\'ed library\'s `syscall`: each entry and exit');
  });

  t.test('the userspace backend as root: the kernel\'s events, field by field', async (tt) => {
    const r = runCli(args(['--backend', 'userspace']), { timeout: 90_000 });
    tt.equal(r.code, 0, 'exit status 0 (the command\'s)', { stderr: r.stderr });
    tt.match(r.stderr, /traces raw_syscalls\/sys_enter \(every syscall, layout from tracefs\) in pid \d+: syscall hook \d+ on raw_syscalls\/sys_enter: \d+ sites rewritten in [3-9] objects/, 'every loaded object\'s sites rewritten (main program, libc, ld.so)');
    tt.match(r.stderr, /on raw_syscalls\/sys_enter: \d+ sites rewritten in \d+ objects; missed: \d+ `syscall` instructions loading no constant number, \d+ refused \(the first: site 0x[0-9a-f]+: [^)]+\)/, '--verbose counts what raw cannot see');
    tt.match(r.stderr, /libc's syscall\(\) rewritten/, 'libc\'s syscall() rewritten');
    tt.match(r.stderr, /syscall hook \d+ on sys_enter of syscall 102: 0 sites rewritten in \d+ objects \(and some the raw_syscalls attach holds\)/, 'sys_enter_getuid shares the sites raw holds');
    tt.same(window(r.stdout), ref, 'the same events: libc wrappers, syscall(), the main program\'s and the dlopen\'ed library\'s own `syscall`');
  });

  t.test('an exec\'d descendant (sh -c TARGET): its raw events from the run\'s registry, as the kernel\'s', async (tt) => {
    const r = runCli(['run', '--backend', 'userspace', '--dir', `${OUT}:/d`, guest, '/d/raw-sys.bpf.o', ...PROGS, '--', '/bin/sh', '-c', `${TARGET} ${FILE} ${LIB}`], { timeout: 90_000 });
    tt.equal(r.code, 0, 'exit status 0', { stderr: r.stderr });
    tt.same(window(r.stdout), ref, 'the exec\'d target\'s events, field by field');
    // the kernel ends a successful execve in the new image: raw's sys_exit (id 59, ret 0) runs there, before main
    // (in the agent: agent_sched_exec, lib/syscalls.c); the kernel backend over the same sh -c is the reference
    const execExit = (out: string): Rec[] => recs(out).filter((x) => x.kind === 2 && x.id === 59);
    const k = runCli(['run', '--backend', 'linux', '--dir', `${OUT}:/d`, guest, '/d/raw-sys.bpf.o', ...PROGS, '--', '/bin/sh', '-c', `${TARGET} ${FILE} ${LIB}`], { timeout: 90_000 });
    tt.same(execExit(k.stdout).map((x) => x.ret), [0n], 'the kernel: one raw sys_exit of execve, ret 0', { stderr: k.stderr });
    tt.same(execExit(r.stdout).map((x) => x.ret), [0n], 'the exec\'d target: its raw sys_exit of execve, ret 0, as the kernel\'s');
  });

  t.test('a joined process (--pid): its raw events while the run lasts; then it runs on', async (tt) => {
    // sys-open-target (-w: a round of opens per stdin byte), under the comm the program filters on
    const joined = path.join(OUT, 'join', 'sys-raw-target');
    fs.mkdirSync(path.dirname(joined), { recursive: true });
    const cj = spawnSync('gcc', ['-O2', path.join(FIXTURES, 'agent', 'sys-open-target.c'), '-o', joined], { encoding: 'utf8' });
    tt.equal(cj.status, 0, 'the waiting target builds', { stderr: cj.stderr });
    const target = spawn(joined, ['-w', FILE], { stdio: ['pipe', 'pipe', 'inherit'] });
    tt.teardown(() => { if (target.exitCode === null && target.signalCode === null) target.kill('SIGKILL'); });
    let out = '';
    target.stdout.setEncoding('utf8').on('data', (d: string) => (out += d));
    const exited = new Promise<number | null>((resolve) => target.on('exit', (code) => resolve(code)));
    tt.ok(await until(() => fs.readFileSync(`/proc/${target.pid}/maps`, 'utf8').includes('libc.so.6'), 5_000), 'the target runs');
    const run = startCli(['run', '--backend', 'userspace', '--pid', String(target.pid), '--dir', `${OUT}:/d`, guest, '/d/raw-sys.bpf.o', 'raw_enter', 'raw_exit']);
    await run.waitFor(/^attached$/, 60_000);
    target.stdin.write('1');
    tt.ok(await until(() => out.includes('round 0 done'), 20_000), 'round 0 ran');
    const fds = out.split('\n').flatMap((l) => /^(open|openat|fopen) \S+ (\d+)$/.exec(l)?.[2] ?? []).map(BigInt);
    tt.equal(fds.length, 3, 'three opens printed');
    const mine = (): Rec[] => recs(run.stdout).filter((r) => r.tid === target.pid);
    tt.ok(await until(() => mine().filter((r) => r.kind === 2 && r.id === NR.openat).length >= 3, 10_000), 'their exits came');
    const enters = mine().filter((r) => r.kind === 1 && r.id === NR.openat);
    tt.equal(enters.length, 3, 'three raw openat entries');
    tt.ok(enters.every((r) => r.args[0] === AT_FDCWD32), 'each with dfd AT_FDCWD');
    tt.same(mine().filter((r) => r.kind === 2 && r.id === NR.openat).map((r) => r.ret), fds, 'each exit\'s ret is the fd the target printed');
    tt.same(mine().filter((r) => r.kind === 1 && r.id === NR.close).map((r) => r.args[0]), fds, 'the closes of those fds');
    const end = await run.interrupt();
    tt.equal(end.signal, null, 'the run ends on SIGINT without a signal of its own');
    target.stdin.write('2');
    tt.ok(await until(() => out.includes('round 1 done'), 20_000), 'the target runs on after the run');
    target.stdin.end();
    tt.equal(await exited, 0, 'and exits 0');
  });

  for (const backend of [['--backend', 'userspace'], []]) {
    t.test(`as uid 65534, ${backend.length ? '--backend userspace' : 'routed by the selector'}`, async (tt) => {
      const r = asNobody(args(backend));
      tt.equal(r.code, 0, 'exit status 0', { stderr: r.stderr });
      if (!backend.length) tt.match(r.stderr, /userspace: the kernel cannot run the object; the userspace backend runs every program of it/, 'routed to the userspace backend');
      tt.equal(printed(r.stdout).uid, 65534, 'the target ran as 65534');
      tt.same(window(r.stdout), ref, 'the kernel\'s events, field by field (getuid: its own uid)');
    });
  }

  t.test('hostile syscall section names: a clear error, the exit code, no leftovers', async (tt) => {
    const before = kernelIds();
    const cases: Array<[string, RegExp]> = [
      ['p_unknown', /'tp\/syscalls\/sys_enter_nosuchcall': x86_64 has no syscall 'nosuchcall' with a tracepoint/],
      ['p_huge', /'tp\/syscalls\/sys_enter_a{58}\.\.\. \(4022 characters\)': x86_64 has no syscall 'a{64}' with a tracepoint/],
      ['p_rawfoo', /'tp\/raw_syscalls\/foo' is not a syscall tracepoint \(tracepoint\/syscalls\/sys_enter_NAME or sys_exit_NAME, tracepoint\/raw_syscalls\/sys_enter or sys_exit\)/],
      ['p_sched', /\(tp\/sched\/nonsense\) is not supported by the userspace backend yet/],
      ['p_empty', /'tp\/syscalls\/sys_exit_' is not a syscall tracepoint/],
    ];
    for (const [prog, cause] of cases) {
      const r = runCli(['run', '--backend', 'userspace', '--dir', `${OUT}:/d`, guest, '/d/hostile-sys.bpf.o', prog, '--', TARGET, FILE], { timeout: 60_000 });
      tt.equal(r.signal, null, `${prog}: no signal`);
      tt.equal(r.code, 3, `${prog}: the guest's exit code (its attach failed)`);
      tt.match(r.stdout, new RegExp(`^attach ${prog} -\\d+$`, 'm'), `${prog}: the guest got a negative errno`);
      tt.match(r.stderr, cause, `${prog}: the cause is named`);
      tt.ok(r.stderr.length < 2000, `${prog}: the message stays short (${r.stderr.length} bytes)`);
      const pid = Number(/killed it \(pid (\d+)\) before its main/.exec(r.stderr)?.[1] ?? -1);
      tt.ok(pid > 0, `${prog}: the launched command was killed before its main`);
      tt.notOk(fs.existsSync(`/proc/${pid}`) && !/^Z/m.test(fs.readFileSync(`/proc/${pid}/stat`, 'utf8').split(' ')[2] ?? ''), `${prog}: and is gone`);
    }
    const r = asNobody(['run', '--dir', `${OUT}:/d`, guest, '/d/hostile-sys.bpf.o', 'p_huge', '--', TARGET, FILE]);
    // the selector looks at every program before the load: the names no backend can attach refuse the object
    tt.equal(r.code, 4, 'as uid 65534, routed: the guest\'s load failed (its exit code 4)');
    tt.match(r.stderr, /no backend on this host can run the object:[^]*the userspace backend: it cannot run tp programs \('p_rawfoo', 'p_sched', 'p_empty'\)/, 'the refusal names the programs of unknown events');
    tt.match(r.stderr, /killed it \(pid \d+\) before its main/, 'the launched command killed before its main');
    tt.same(await settledLeaks(before), { progs: [], maps: [], links: [] }, 'no kernel object left');
  });
}
