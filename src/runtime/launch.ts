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

export interface Launched {
  child: ChildProcess;
  pid: number;
  /** this process's end of the control channel (the guest's thread uses it) */
  fd: number;
  /** the command's end: its exit status as a shell reports it (128 + signal when killed) */
  exited: Promise<number>;
}

/** Starts `command` under the agent; throws WasmBpfError when the agent is missing or the command cannot start. */
export async function launchCommand(command: readonly string[], env: NodeJS.ProcessEnv = process.env): Promise<Launched> {
  if (command.length === 0 || command[0] === '') throw new WasmBpfError('USAGE', 'no command after --');
  if (process.platform !== 'linux' || process.arch !== 'x64') {
    throw new WasmBpfError('UNSUPPORTED', `launching a command under the uprobe agent needs Linux on x86_64 (this is ${process.platform} on ${process.arch}); arm64 comes later`);
  }
  const agent = agentLibraryPath();
  if (!agent) {
    throw new WasmBpfError('UNSUPPORTED', 'launching a command needs the uprobe agent, native/agent/build/libwbpf_agent.so, which is not built: run `make -C native/agent` (npm install does)');
  }
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
