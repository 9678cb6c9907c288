// The ptrace tier (native/agent/ptrace/, build/wbpf-ptrace): a tracer process speaks the agent's channel
// protocol, so an AgentSession drives it unchanged, and runs the programs itself at breakpoints it puts in the
// traced processes. Launch: the tracer runs the command (its exit status is the command's). Join: the
// tracer seizes a running process and runs on, detached from this call, until the channel closes.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { agentSocketpair } from './channel.js';
import { joinRefusal, readSelf, readTarget } from './join-checks.js';
import type { LaunchStdio } from './launch.js';
import type { Joined } from './join.js';
import { loadNative } from '../../linux/native.js';
import { BackendError } from '../../../src/errors.js';
import { ERRNO } from '../../../src/kernel/uapi.js';

/** why this host cannot run the ptrace tier (the tracer, native/agent/ptrace/, has x86-64 and arm64 parts), or undefined */
export function ptraceTierRefusal(arch: string = process.arch): BackendError | undefined {
  if (arch === 'x64' || arch === 'arm64') return undefined;
  return new BackendError(
    `the ptrace tier (a static program, or --userspace-tier ptrace) is implemented for x86-64 and arm64 only; this is ${arch}`,
    ERRNO.EOPNOTSUPP,
    '',
    'use the kernel backend on this machine',
  );
}

/** the tracer beside the agent library (native/agent/build/) */
export function tracerPath(agent: string): string {
  const refusal = ptraceTierRefusal();
  if (refusal) throw refusal;
  const tracer = path.join(path.dirname(agent), 'wbpf-ptrace');
  if (!fs.existsSync(tracer)) throw new BackendError(`the ptrace tier's tracer ${tracer} is not built`, ERRNO.ENOENT, '', `make -C ${path.resolve(path.dirname(agent), '..')}`);
  return tracer;
}

export interface SpawnUnderTracerOptions {
  tracer: string;
  /** the tracer's end of agentSocketpair(), its fd 3; closed here once spawned */
  channelFd: number;
  env?: NodeJS.ProcessEnv;
  stdio?: readonly [LaunchStdio, LaunchStdio, LaunchStdio];
}

/** runs cmd under the tracer, held before its first instruction until the channel's start() */
export function spawnUnderTracer(cmd: readonly string[], opts: SpawnUnderTracerOptions): ChildProcess {
  const native = loadNative();
  try {
    if (cmd[0] === undefined) throw new BackendError('launch: no command given', ERRNO.EINVAL);
    const [i, o, e] = opts.stdio ?? ['pipe', 'pipe', 'pipe'];
    return spawn(opts.tracer, ['--launch', ...cmd], { stdio: [i, o, e, opts.channelFd], env: opts.env ?? process.env });
  } finally {
    native.closeFd(opts.channelFd);
  }
}

/** seizes every thread of process `pid` with the tracer and returns the channel to it; synchronous.
 * Refusals (from /proc, as a join's, and the kernel's EPERM) throw BackendError with the errno and the fix */
export function traceProcess(pid: number, opts: { tracer: string; timeoutMs?: number }): Joined {
  const target = readTarget(pid);
  // the agent's checks, less its own needs (libc to dlopen from): the tracer needs none of them
  const refusal = joinRefusal(pid, { ...target, maps: undefined }, readSelf());
  if (refusal) throw new BackendError(refusal.message.replace(/^join:/, 'ptrace tier:'), refusal.errno, '', refusal.hint);
  const native = loadNative();
  const { host, child } = agentSocketpair();
  let ok = false;
  try {
    const r = spawnSync(opts.tracer, ['--pid', String(pid)], {
      stdio: ['ignore', 'ignore', 'pipe', child],
      timeout: opts.timeoutMs ?? 15_000,
      killSignal: 'SIGKILL',
      encoding: 'utf8',
    });
    if (r.error) throw new BackendError(`ptrace tier: running ${opts.tracer}: ${r.error.message}`, ERRNO.EIO, '', undefined, { cause: r.error });
    if (r.status !== 0) {
      const m = /^(\d+) (.*)$/m.exec(r.stderr ?? '');
      const errno = m ? Number(m[1]) : ERRNO.EIO;
      const why = m ? m[2]! : `the tracer ended with ${r.signal ?? `status ${r.status}`}: ${(r.stderr ?? '').trim()}`;
      throw new BackendError(
        `ptrace tier: ${why}`,
        errno,
        '',
        errno === ERRNO.EPERM ? 'trace processes of your own user (or run with CAP_SYS_PTRACE), and not one a debugger traces already' : undefined,
      );
    }
    ok = true;
    return { pid, fd: host };
  } finally {
    native.closeFd(child);
    if (!ok) native.closeFd(host);
  }
}
