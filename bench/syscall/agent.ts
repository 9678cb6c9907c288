// The syscall bench's "ours" row: the agent's real path (native/agent/lib/syscalls.c: a rewritten libc site, the
// record built from the field table, the program in the agent's VM, a 24-byte ringbuf record), not a prototype.
// build/sysbench runs its untraced loop (`none`) launched under libwbpf_agent.so; before START the host sends a
// ring map, the program (the kernel row's: bpf_get_current_pid_tgid, reserve 24 bytes, nr + args[0..1], submit)
// and the syscall attachment of the workload's traced number; a timer drains the ring every 10 ms as the kernel
// row's consumer does.
import path from 'node:path';
import { loadNative } from '../../backends/linux/native.js';
import { AgentChannel, agentSocketpair } from '../../backends/userspace/attach/channel.js';
import { spawnUnderAgent } from '../../backends/userspace/attach/launch.js';
import { syscallTarget } from '../../backends/userspace/attach/syscall-target.js';
import { assemble } from '../../backends/userspace/vm/asm.js';
import type { Run, Workload } from './report.js';

const RINGBUF = 27;

/** the kernel row's program (tp.bpf.c) without its tgid filter (the agent runs in the traced process only) */
const PROGRAM = `
      mov %r6, %r1
      call 14
      lddw %r1, map_by_fd(2)
      mov %r2, 24
      mov %r3, 0
      call 131
      jeq %r0, 0, +9
      ldxw %r1, [%r6+8]
      stxdw [%r0+0], %r1
      ldxdw %r1, [%r6+16]
      stxdw [%r0+8], %r1
      ldxdw %r1, [%r6+24]
      stxdw [%r0+16], %r1
      mov %r1, %r0
      mov %r2, 0
      call 132
      mov %r0, 0
      exit`;

const EVENT: Record<Workload, string> = {
  getppid: 'tp/syscalls/sys_enter_getppid',
  openat: 'tp/syscalls/sys_enter_openat',
  getpid: 'tp/syscalls/sys_enter_getppid',
  'raw-getppid': 'tp/syscalls/sys_enter_getppid',
  'asm-getppid': 'tp/syscalls/sys_enter_getppid',
  'raw-getpid': 'tp/syscalls/sys_enter_getppid',
};

/** one run of `sysbench none W CALLS` under the agent with the workload's syscall traced */
export async function runAgent(bin: string, agentSo: string, w: Workload, calls: number, onStart?: (pid: number) => Promise<void>): Promise<Run> {
  const native = loadNative();
  // 64 MiB: a run's every record fits even when the host's timer is late (a loaded machine): drops would be the consumer's, not the path's
  const ring = native.shmMapCreate(RINGBUF, 0, 0, 1 << 26, 0, native.numPossibleCpus(), 0, 'sysbench');
  const pair = agentSocketpair();
  const child = spawnUnderAgent([bin, 'none', w, String(calls)], { agent: agentSo, channelFd: pair.child, stdio: ['ignore', 'pipe', 'pipe'] });
  const agent = new AgentChannel(pair.host);
  let out = '', err = '', records = 0;
  child.stdout?.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr?.on('data', (d: Buffer) => (err += d.toString()));
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  const buf = new Uint8Array(1 << 20);
  const drain = (): void => {
    for (;;) {
      const n = native.shmRingPoll(ring.id, 0, buf, -1);
      if (n <= 0) return;
      records += n;
    }
  };
  const timer = setInterval(drain, 10);
  try {
    agent.sendMap({ id: 2, fd: ring.fd, notifyFd: ring.notifyFd });
    agent.sendProgram({ id: 1, insns: assemble(PROGRAM) });
    const t = syscallTarget(EVENT[w]);
    agent.sendSyscall({ id: 1, progId: 1, nr: t.nr, exit: false, table: t.table });
    if (onStart) await onStart(child.pid!);
    agent.start();
    const code = await exited;
    if (code !== 0) throw new Error(`sysbench under the agent: exit ${code}: ${err.trim()}`);
  } finally {
    clearInterval(timer);
    drain();
    agent.close();
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    native.shmMapClose(ring.id);
  }
  const kv = Object.fromEntries(out.trim().split(/\s+/).map((p) => p.split('=') as [string, string]));
  return { mechanism: 'agent', workload: w, calls: Number(kv.calls), threadCpuNs: Number(kv.thread_cpu_ns), wallNs: Number(kv.wall_ns), tracerCpuNs: 0, records };
}

export const AGENT_SO = path.join('native', 'agent', 'build', 'libwbpf_agent.so');
