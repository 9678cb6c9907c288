// The command a run launches (`wasm-bpf run APP.wasm [ARGS] -- COMMAND [ARGS]`): started by the main
// thread under the uprobe agent (LD_PRELOAD, backends/userspace/attach/launch.ts) with a control channel
// whose other end the guest's thread drives; the agent holds it before its main until the app is set up.
import { once } from 'node:events';
import os from 'node:os';
import type { ChildProcess } from 'node:child_process';
import { WasmBpfError } from '../errors.js';
import { agentLibraryPath, loadNative } from '../../backends/linux/native.js';
import { agentSocketpair } from '../../backends/userspace/attach/channel.js';
import { spawnUnderAgent } from '../../backends/userspace/attach/launch.js';
import { joinProcess, type Joined } from '../../backends/userspace/attach/join.js';

export interface Launched {
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
export function joinProcesses(pids: readonly number[]): Joined[] {
  const agent = agentLibrary('joining a running process with the uprobe agent');
  const done: Joined[] = [];
  for (const pid of pids) {
    try {
      done.push(joinProcess(pid, { agent }));
    } catch (err) {
      for (const j of done) loadNative().closeFd(j.fd);
      const e = err as { message?: string; hint?: string };
      throw new WasmBpfError('UNSUPPORTED', `cannot join process ${pid}: ${e.message ?? String(err)}${e.hint ? `; ${e.hint}` : ''}`);
    }
  }
  return done;
}

/** Starts `command` under the agent; throws WasmBpfError when the agent is missing or the command cannot start. */
export async function launchCommand(command: readonly string[], env: NodeJS.ProcessEnv = process.env): Promise<Launched> {
  if (command.length === 0 || command[0] === '') throw new WasmBpfError('USAGE', 'no command after --');
  const agent = agentLibrary('launching a command under the uprobe agent');
  const native = loadNative();
  const { host, child: childEnd } = agentSocketpair();
  // spawnUnderAgent closes this process's copy of the child's end
  const child: ChildProcess = spawnUnderAgent(command, { agent, channelFd: childEnd, env, stdio: ['inherit', 'inherit', 'inherit'] });
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
  return { child, pid: child.pid!, fd: host, exited };
}

function signalNumber(name: NodeJS.Signals): number {
  return os.constants.signals[name] ?? 0;
}
