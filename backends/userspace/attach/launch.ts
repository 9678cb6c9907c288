// Launch mode of the uprobe agent: spawn a command with LD_PRELOAD=libwbpf_agent.so and one end of the
// control channel (attach/channel.ts, native/agent/lib/proto.h) as its fd 3. The command's main waits
// until the channel says START (or closes); maps, programs and hooks go over the channel first.
import { spawn, type ChildProcess } from 'node:child_process';
import { loadNative } from '../../linux/native.js';
import { BackendError } from '../../../src/errors.js';

/** the channel's fd number in the child (WBPF_AGENT_FD) */
const CHANNEL_FD = 3;

/** one of the child's stdin, stdout, stderr: as child_process.spawn's stdio entries */
export type LaunchStdio = 'pipe' | 'inherit' | 'ignore' | number;

export interface SpawnUnderAgentOptions {
  /** the agent library (native/agent/build/libwbpf_agent.so) */
  agent: string;
  /** the child's end of agentSocketpair(): it becomes the child's fd 3; spawnUnderAgent closes this
   * process's copy once the child is spawned (so the host's end sees EOF when the command exits) */
  channelFd: number;
  /** the child's environment (default process.env); LD_PRELOAD is prepended to, WBPF_AGENT_FD set */
  env?: NodeJS.ProcessEnv;
  /** the child's stdin, stdout, stderr (default: pipes) */
  stdio?: readonly [LaunchStdio, LaunchStdio, LaunchStdio];
}

/** spawns cmd under the agent; drive its channel (the host end) with AgentChannel, then start() it */
export function spawnUnderAgent(cmd: readonly string[], opts: SpawnUnderAgentOptions): ChildProcess {
  const native = loadNative();
  try {
    const [file, ...args] = cmd;
    if (file === undefined) throw new BackendError('launch: no command given', 22);
    const base = opts.env ?? process.env;
    const preload = base.LD_PRELOAD ? `${opts.agent}:${base.LD_PRELOAD}` : opts.agent;
    const env = { ...base, LD_PRELOAD: preload, WBPF_AGENT_FD: String(CHANNEL_FD) };
    const [i, o, e] = opts.stdio ?? ['pipe', 'pipe', 'pipe'];
    return spawn(file, args, { stdio: [i, o, e, opts.channelFd], env });
  } finally {
    native.closeFd(opts.channelFd);
  }
}
