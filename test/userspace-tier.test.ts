// Which tier a launched command goes to (backends/userspace/attach/tier.ts's launchTier): static commands to
// the ptrace tier; on an arch whose agent rewrites no syscall sites (arm64), an app with syscall tracepoint
// programs too (the ptrace tier's seccomp filter stops at the traced numbers); a forced tier wins. The arm64
// guest runs the real thing (test/userspace-syscalls-arm64.test.ts).
import t from 'tap';
import { launchTier, AGENT_SYSCALL_ARCHES } from '../backends/userspace/attach/tier.js';
import { userspaceAttaches } from '../src/probe/backends.js';

const SH = ['/bin/sh', '-c', 'true'];

t.test('a dynamic command: the agent, unless syscall programs meet an arch without the rewriter', async (tt) => {
  tt.equal(launchTier(SH, 'auto', process.env, false, 'x64').tier, 'agent', 'x64, uprobes only');
  tt.equal(launchTier(SH, 'auto', process.env, true, 'x64').tier, 'agent', 'x64, syscall programs: the agent rewrites libc');
  tt.equal(launchTier(SH, 'auto', process.env, false, 'arm64').tier, 'agent', 'arm64, uprobes only');
  const a = launchTier(SH, 'auto', process.env, true, 'arm64');
  tt.equal(a.tier, 'ptrace', 'arm64, syscall programs: the ptrace tier');
  tt.match(a.why, /syscall tracepoint programs.*no syscall sites on arm64.*seccomp filter/, '--verbose says why');
  tt.same([...AGENT_SYSCALL_ARCHES], ['x64']);
});

t.test('forced and static commands are unchanged', async (tt) => {
  tt.equal(launchTier(SH, 'agent', process.env, true, 'arm64').tier, 'agent', '--userspace-tier agent wins');
  tt.equal(launchTier(SH, 'ptrace', process.env, false, 'x64').tier, 'ptrace', '--userspace-tier ptrace wins');
  tt.equal(launchTier(['/no/such/cmd'], 'auto', process.env, true, 'x64').tier, 'agent', 'an unknown command: the launch reports it');
});

t.test('the userspace backend attaches syscall tracepoints on x86_64 and arm64', async (tt) => {
  for (const arch of ['x86_64', 'arm64']) {
    tt.ok(userspaceAttaches('tracepoint/syscalls/sys_enter_openat', arch), `sys_enter_openat on ${arch}`);
    tt.ok(userspaceAttaches('tp/syscalls/sys_exit_openat', arch), `sys_exit_openat on ${arch}`);
  }
  tt.notOk(userspaceAttaches('tracepoint/syscalls/sys_enter_openat', 'riscv64'), 'not on riscv64');
  tt.notOk(userspaceAttaches('tracepoint/sched/sched_switch', 'arm64'), 'not other tracepoints');
});

t.test('process events: sched_process_fork goes to the ptrace tier on every arch; exec|exit|fork attach on arm64 too', async (tt) => {
  const f = launchTier(SH, 'auto', process.env, false, 'x64', true);
  tt.equal(f.tier, 'ptrace', 'x64, a sched_process_fork program: the ptrace tier');
  tt.match(f.why, /sched_process_fork program: the agent emits no fork events, the ptrace tier does/, '--verbose says why');
  tt.equal(launchTier(SH, 'agent', process.env, false, 'x64', true).tier, 'agent', '--userspace-tier agent wins (the agent then refuses the program, said so)');
  for (const arch of ['x86_64', 'arm64']) {
    for (const ev of ['exec', 'exit', 'fork']) tt.ok(userspaceAttaches(`tp/sched/sched_process_${ev}`, arch), `sched_process_${ev} on ${arch}`);
  }
  tt.notOk(userspaceAttaches('tp/sched/sched_process_wait', 'x86_64'), 'not sched_process_wait');
});
