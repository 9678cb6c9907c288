// The command a run launches (`wasm-bpf run APP.wasm [ARGS] -- COMMAND [ARGS]`): started by the main
// thread under the uprobe agent (LD_PRELOAD, backends/userspace/attach/launch.ts) with a control channel
// whose other end the guest's thread drives; the agent holds it before its main until the app is set up.
// A static command (or a forced tier) goes to the ptrace tier instead (backends/userspace/attach/tier.ts).
import { once } from 'node:events';
import os from 'node:os';
import type { ChildProcess } from 'node:child_process';
import { WasmBpfError } from '../errors.js';
import { agentLibraryPath, loadNative } from '../../backends/linux/native.js';
import { agentSocketpair } from '../../backends/userspace/attach/channel.js';
import { spawnUnderAgent } from '../../backends/userspace/attach/launch.js';
import { joinProcess, type Joined } from '../../backends/userspace/attach/join.js';
import { spawnUnderTracer, traceProcess, tracerPath } from '../../backends/userspace/attach/ptrace.js';
import { joinTier, launchTier, type TierChoice, type UserspaceTier } from '../../backends/userspace/attach/tier.js';

/** the tier tracing a process, and why it was chosen (for --verbose) */
export interface Tiered {
  tier: UserspaceTier;
  why: string;
}

export interface Launched extends Tiered {
  child: ChildProcess;
  pid: number;
  /** this process's end of the control channel (the guest's thread uses it) */
  fd: number;
  /** the command's end: its exit status as a shell reports it (128 + signal when killed) */
  exited: Promise<number>;
}

/** the agent library, or a WasmBpfError saying why there is none */
function agentLibrary(what: string): string {
  if (process.platform !== 'linux' || (process.arch !== 'x64' && process.arch !== 'arm64')) {
    throw new WasmBpfError('UNSUPPORTED', `${what} needs Linux on x86_64 or arm64 (this is ${process.platform} on ${process.arch})`);
  }
  const agent = agentLibraryPath();
  if (!agent) {
    throw new WasmBpfError('UNSUPPORTED', `${what} needs the uprobe agent, native/agent/build/libwbpf_agent.so, which is not built: run \`make -C native/agent\` (npm install does)`);
  }
  return agent;
}

/**
 * Injects the agent into each running process (`--pid`); on a refusal or failure, closes the channels
 * already made and throws WasmBpfError naming the pid and the reason.
 */
export function joinProcesses(pids: readonly number[], choice: TierChoice = 'auto'): Array<Joined & Tiered> {
  const agent = agentLibrary('joining a running process with the uprobe agent');
  const done: Array<Joined & Tiered> = [];
  for (const pid of pids) {
    try {
      const t = joinTier(pid, choice);
      const j = t.tier === 'ptrace' ? traceProcess(pid, { tracer: tracerPath(agent) }) : joinProcess(pid, { agent });
      done.push({ ...j, ...t });
    } catch (err) {
      for (const j of done) loadNative().closeFd(j.fd);
      const e = err as { message?: string; hint?: string };
      throw new WasmBpfError('UNSUPPORTED', `cannot join process ${pid}: ${e.message ?? String(err)}${e.hint ? `; ${e.hint}` : ''}`);
    }
  }
  return done;
}

/** Starts `command` under the agent; throws WasmBpfError when the agent is missing or the command cannot start. */
export async function launchCommand(command: readonly string[], env: NodeJS.ProcessEnv = process.env, choice: TierChoice = 'auto', verbose = false, syscalls = false, fork = false): Promise<Launched> {
  if (command.length === 0 || command[0] === '') throw new WasmBpfError('USAGE', 'no command after --');
  const agent = agentLibrary('launching a command under the uprobe agent');
  const tiered = launchTier(command, choice, env, syscalls, process.arch, fork);
  const tracer = tiered.tier === 'ptrace' ? tracerPath(agent) : undefined;
  const native = loadNative();
  const { host, child: childEnd } = agentSocketpair();
  // spawnUnderAgent / spawnUnderTracer close this process's copy of the child's end
  const stdio = ['inherit', 'inherit', 'inherit'] as const;
  const child: ChildProcess =
    tracer !== undefined
      ? // verbose: the tracer says at its end what a hit cost it (WBPF_PTRACE_STATS; not passed on to the command)
        spawnUnderTracer(command, { tracer, channelFd: childEnd, env: verbose ? { ...env, WBPF_PTRACE_STATS: '1' } : env, stdio }) : spawnUnderAgent(command, { agent, channelFd: childEnd, env, stdio });
  const exited = new Promise<number>((resolve) => {
    child.once('exit', (code, signal) => resolve(code ?? 128 + (signal ? signalNumber(signal) : 0)));
  });
  try {
    await Promise.race([once(child, 'spawn'), once(child, 'error').then(([err]) => Promise.reject(err as Error))]);
  } catch (err) {
    native.closeFd(host);
    const e = err as NodeJS.ErrnoException;
    const why = e.code === 'ENOENT' ? 'no such file (or not on PATH)' : e.code === 'EACCES' ? 'permission denied' : e.message;
    throw new WasmBpfError('NOT_FOUND', `cannot run ${command[0]}: ${why}`);
  }
  // the run does not wait for the command: when the app ends first, the command runs on, on its own
  child.unref();
  return { child, pid: child.pid!, fd: host, exited, ...tiered };
}

function signalNumber(name: NodeJS.Signals): number {
  return os.constants.signals[name] ?? 0;
}
