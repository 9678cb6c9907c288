// The ptrace tier's tracer (native/agent/ptrace/, build/wbpf-ptrace) answers hostile channel requests as the
// agent does: a hook id the tracer keeps for itself (0, and 0xfffffffe/0xffffffff: its loader and entry
// breakpoints, ptrace/loader.c) is refused with EINVAL instead of aliasing them; the command runs on.
import t from 'tap';
import path from 'node:path';
import { AgentChannel, agentSocketpair, type ChannelHook } from '../backends/userspace/attach/channel.js';
import { spawnUnderTracer } from '../backends/userspace/attach/ptrace.js';
import { assemble } from '../backends/userspace/vm/asm.js';
import { AGENT_DIR } from './agent-common.js';

const TRACER = path.join(AGENT_DIR, 'build', 'wbpf-ptrace');
const TRUE = '/bin/true';

t.test('reserved hook ids are refused, the rest of the channel works', async (t) => {
  const pair = agentSocketpair();
  const child = spawnUnderTracer([TRUE], { tracer: TRACER, channelFd: pair.child });
  const agent = new AgentChannel(pair.host);
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  t.teardown(() => {
    agent.close();
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  });
  t.equal(agent.sendProgram({ id: 1, insns: assemble('r0 = 0\nexit') }), 'prog 1', 'the tracer loads a program');
  // where the hook points does not matter: the id is checked first
  const hook = (id: number): ChannelHook => ({ id, progId: 1, dev: 1n, ino: 1n, fileOffset: 0, size: 0, retprobe: false });
  for (const id of [0, 0xfffffffe, 0xffffffff]) {
    t.throws(() => agent.sendHook(hook(id)), /reserved/, `hook id 0x${id.toString(16)} is refused`);
  }
  agent.start();
  agent.close();
  t.equal(await exited, 0, 'the command runs to its end after the refusals');
});
