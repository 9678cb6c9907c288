// The userspace backend's link to the agents of one run (today: the agent of the launched command, over
// its control channel, ./channel.ts): shared maps sent once each, programs loaded once each, hooks
// set and removed. Ids are the run's own, so several objects share one channel.
import { BackendError } from '../../../src/errors.js';
import { AgentChannel, type AgentNotice } from './channel.js';
import type { ResolvedUprobe } from './symbols.js';

export interface SharedMapRef {
  id: number;
  fd: number;
  notifyFd: number;
}

export interface AgentSessionOptions {
  /** this process's end of the launched command's control channel (./channel.ts) */
  fd: number;
  /** the launched command's pid */
  pid: number;
}

/** a hook as the agent set it, or why it waits */
export interface HookResult {
  id: number;
  /** the agent's answer ('hook 3 at 0x...'), or why the hook is pending (the file is not mapped yet) */
  message: string;
  pending: boolean;
}

export class AgentSession {
  readonly channel: AgentChannel;
  readonly pid: number;
  private readonly sentMaps = new Set<number>();
  private nextProg = 1;
  private nextHook = 1;
  private readonly listeners: Array<(n: AgentNotice) => void> = [];

  constructor(opts: AgentSessionOptions) {
    this.channel = new AgentChannel(opts.fd, { onNotice: (n) => this.listeners.forEach((l) => l(n)) });
    this.pid = opts.pid;
  }

  /** hooks disabled by a fault, bpf_trace_printk text: delivered whenever the channel is read */
  onNotice(listener: (n: AgentNotice) => void): void {
    this.listeners.push(listener);
  }

  /** lets the launched command run (its agent holds it before main until then); idempotent */
  start(): void {
    if (this.open) this.channel.start();
  }

  /** the agent unhooks everything and the command runs on */
  close(): void {
    if (!this.channel.closed) this.channel.close();
  }

  get open(): boolean {
    return !this.channel.closed;
  }

  /** the agent maps each shared map once (its memfd and eventfd travel with the frame) */
  shareMaps(maps: readonly SharedMapRef[]): void {
    for (const m of maps) {
      if (this.sentMaps.has(m.id)) continue;
      this.channel.sendMap({ id: m.id, fd: m.fd, notifyFd: m.notifyFd });
      this.sentMaps.add(m.id);
    }
  }

  /** loads a program into the agent's engine; its refusal is a BackendError with the engine's reason */
  loadProgram(name: string, insns: Uint8Array): number {
    const id = this.nextProg++;
    try {
      this.channel.sendProgram({ id, insns });
    } catch (e) {
      if (e instanceof BackendError) throw new BackendError(`program '${name}' was refused by the agent in pid ${this.pid}: ${e.message}`, e.errno, '', undefined, { cause: e });
      throw e;
    }
    return id;
  }

  /** hooks the function in the launched process; a file it has not mapped (yet) leaves the hook pending */
  hook(progId: number, target: ResolvedUprobe): HookResult {
    const id = this.nextHook++;
    const message = this.channel.sendHook({
      id,
      progId,
      dev: target.dev,
      ino: target.ino,
      fileOffset: target.fileOffset,
      size: target.func?.size ?? 0,
      retprobe: target.retprobe,
    });
    // the agent accepts a hook on a file it has not mapped yet and sets it when a dlopen maps it
    return { id, message, pending: message.startsWith(`hook ${id} pending`) };
  }

  unhook(id: number): void {
    if (this.open) this.channel.unhook(id);
  }

  /** notices the agent sent since the last read (hooks disabled by a fault, bpf_trace_printk text) */
  poll(): void {
    if (this.open) this.channel.poll();
  }
}

export type { AgentNotice };
