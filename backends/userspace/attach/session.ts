// The userspace backend's link to the agents of one run: one AgentSession per traced process (the launched
// command's agent, or one injected into a joined process), each over its control channel (./channel.ts),
// and the AgentGroup the backend talks to. Shared maps are sent once per process, programs loaded once per
// process, hooks set and removed in every process. Ids are the run's own, so several objects share them.
import { BackendError } from '../../../src/errors.js';
import { ERRNO } from '../../../src/kernel/uapi.js';
import { AgentChannel, type AgentNotice } from './channel.js';
import type { ResolvedUprobe } from './symbols.js';
import type { SyscallTarget } from './syscall-target.js';

export interface SharedMapRef {
  id: number;
  fd: number;
  notifyFd: number;
}

export interface AgentSessionOptions {
  /** this process's end of the agent's control channel (./channel.ts) */
  fd: number;
  /** the traced process */
  pid: number;
  /** launched by this run (its agent holds it before main until start()); false: joined while running */
  launched?: boolean;
}

/** a hook in one process as its agent set it, or why it waits */
export interface ProcessHook {
  pid: number;
  /** the agent's answer ('hook 3 at 0x...'), or why the hook is pending (the file is not mapped there yet) */
  message: string;
  pending: boolean;
}

export interface HookResult {
  id: number;
  /** one per traced process still running */
  processes: ProcessHook[];
}

/** a reply that leaves the hook waiting for the file to be mapped (a dlopen later) */
const PENDING = /^hook \d+ pending\b/;

/** one traced process's agent */
export class AgentSession {
  readonly channel: AgentChannel;
  readonly pid: number;
  readonly launched: boolean;
  /** start() was sent: a launched command runs its own code */
  started = false;
  private readonly sentMaps = new Set<number>();
  private readonly loaded = new Set<number>();
  private readonly listeners: Array<(n: AgentNotice) => void> = [];

  constructor(opts: AgentSessionOptions) {
    this.channel = new AgentChannel(opts.fd, { onNotice: (n) => this.listeners.forEach((l) => l(n)) });
    this.pid = opts.pid;
    this.launched = opts.launched ?? true;
  }

  get open(): boolean {
    return !this.channel.closed;
  }

  onNotice(listener: (n: AgentNotice) => void): void {
    this.listeners.push(listener);
  }

  /** lets a launched command run (its agent holds it before main until then); idempotent */
  start(): void {
    if (this.started || !this.launched) return;
    this.started = true;
    if (this.open) this.channel.start();
  }

  /** the agent maps each shared map once (its memfd and eventfd travel with the frame) */
  shareMaps(maps: readonly SharedMapRef[]): void {
    for (const m of maps) {
      if (this.sentMaps.has(m.id)) continue;
      this.channel.sendMap({ id: m.id, fd: m.fd, notifyFd: m.notifyFd });
      this.sentMaps.add(m.id);
    }
  }

  /** loads program `id` into the agent's engine once; its refusal is a BackendError with the engine's reason */
  loadProgram(id: number, name: string, insns: Uint8Array): void {
    if (this.loaded.has(id)) return;
    try {
      this.channel.sendProgram({ id, insns });
    } catch (e) {
      if (e instanceof BackendError) throw new BackendError(`program '${name}' was refused by the agent in pid ${this.pid}: ${e.message}`, e.errno, '', undefined, { cause: e });
      throw e;
    }
    this.loaded.add(id);
  }

  /** hooks the function; a file the process has not mapped (yet) leaves the hook pending */
  hook(id: number, progId: number, target: ResolvedUprobe): ProcessHook {
    // the agent answers a file not mapped (yet) with status 0 and 'hook N pending: ...'; an ENOENT is a refusal
    const message = this.channel.sendHook({
      id,
      progId,
      dev: target.dev,
      ino: target.ino,
      fileOffset: target.fileOffset,
      size: target.func?.size ?? 0,
      retprobe: target.retprobe,
    });
    return { pid: this.pid, message, pending: PENDING.test(message) };
  }

  /** a tp/syscalls (or tp/raw_syscalls) program on its number's (every number's) rewritten sites in this process */
  syscall(id: number, progId: number, target: SyscallTarget): ProcessHook {
    const message = this.channel.sendSyscall({ id, progId, nr: target.nr, exit: target.exit, raw: target.raw, table: target.table, sched: target.sched });
    return { pid: this.pid, message, pending: false };
  }

  /** the task_struct image's layout (sent once per distinct payload) */
  task(payload: Uint8Array): void {
    const key = Buffer.from(payload).toString('hex');
    if (!this.open || this.taskSent === key) return;
    this.channel.sendTask(payload);
    this.taskSent = key;
  }
  private taskSent = '';

  unhook(id: number): void {
    if (this.open) this.channel.unhook(id);
  }

  /** frees a closed object's programs, then its maps, in this agent (only what was sent here) */
  drop(progIds: readonly number[], mapIds: readonly number[]): void {
    for (const id of progIds) {
      if (!this.loaded.delete(id)) continue;
      if (this.open) this.channel.drop('prog', id);
    }
    for (const id of mapIds) {
      if (!this.sentMaps.delete(id)) continue;
      if (this.open) this.channel.drop('map', id);
    }
  }

  /** notices the agent sent since the last read (hooks disabled by a fault, bpf_trace_printk text) */
  poll(): void {
    if (this.open) this.channel.poll();
  }

  /** the agent unhooks everything and the process runs on */
  close(): void {
    if (!this.channel.closed) this.channel.close();
  }
}

/** the run's agents: what the userspace backend attaches through */
export class AgentGroup {
  private nextProg = 1;
  private nextHook = 1;

  constructor(readonly sessions: readonly AgentSession[]) {}

  /** a process is still traced */
  get open(): boolean {
    return this.sessions.some((s) => s.open);
  }

  /** the traced processes, for messages */
  get pids(): string {
    return this.sessions.map((s) => s.pid).join(', ');
  }

  /** notices of every agent, with the pid they came from */
  onNotice(listener: (n: AgentNotice, pid: number) => void): void {
    for (const s of this.sessions) s.onNotice((n) => listener(n, s.pid));
  }

  /** launched commands run from here on */
  start(): void {
    for (const s of this.sessions) {
      try {
        s.start();
      } catch (e) {
        // the command already ended: nothing to start
        if (!(e instanceof BackendError)) throw e;
      }
    }
  }

  /** an id for a program of the run (each process loads it on its first hook) */
  programId(): number {
    return this.nextProg++;
  }

  /**
   * Hooks the function in every traced process still running: the maps and the program go first where
   * they have not been. A refusal by one agent (the engine, the hook's relocator) is thrown; a process
   * that has exited meanwhile is skipped.
   */
  hook(maps: readonly SharedMapRef[], prog: { id: number; name: string; insns: Uint8Array }, target: ResolvedUprobe): HookResult {
    return this.each(maps, prog, (s, id) => s.hook(id, prog.id, target));
  }

  /** the task_struct image's layout in every traced process still running */
  task(payload: Uint8Array): void {
    for (const s of this.sessions) {
      try {
        s.task(payload);
      } catch (e) {
        if (!(e instanceof BackendError) || s.open) throw e;
      }
    }
  }

  /** a tp/syscalls program in every traced process still running, as hook() */
  syscall(maps: readonly SharedMapRef[], prog: { id: number; name: string; insns: Uint8Array }, target: SyscallTarget): HookResult {
    return this.each(maps, prog, (s, id) => s.syscall(id, prog.id, target));
  }

  private each(maps: readonly SharedMapRef[], prog: { id: number; name: string; insns: Uint8Array }, set: (s: AgentSession, id: number) => ProcessHook): HookResult {
    const id = this.nextHook++;
    const processes: ProcessHook[] = [];
    for (const s of this.sessions) {
      if (!s.open) continue;
      try {
        s.shareMaps(maps);
        s.loadProgram(prog.id, prog.name, prog.insns);
        processes.push(set(s, id));
      } catch (e) {
        if (e instanceof BackendError && !s.open) continue; // it exited while we talked
        throw e;
      }
    }
    if (processes.length === 0) throw new BackendError(`no traced process is running any more (pids ${this.pids})`, ERRNO.ESRCH);
    return { id, processes };
  }

  unhook(id: number): void {
    for (const s of this.sessions) {
      try {
        s.unhook(id);
      } catch (e) {
        if (!(e instanceof BackendError) || s.open) throw e;
      }
    }
  }

  /** a closed object's programs and maps leave every agent (after its hooks); an agent gone meanwhile is skipped */
  drop(progIds: readonly number[], mapIds: readonly number[]): void {
    for (const s of this.sessions) {
      try {
        s.drop(progIds, mapIds);
      } catch (e) {
        if (!(e instanceof BackendError) || s.open) throw e;
      }
    }
  }

  poll(): void {
    for (const s of this.sessions) s.poll();
  }

  close(): void {
    for (const s of this.sessions) s.close();
  }

  /**
   * The end of the run: launched commands that were never started are killed (they are still held before
   * their main: none of their own code ran), then every channel closes (each agent unhooks what is left
   * and its process runs on). Returns the pids killed.
   */
  end(): number[] {
    const killed: number[] = [];
    for (const s of this.sessions) {
      if (!s.launched || s.started || !s.open) continue;
      try {
        process.kill(s.pid, 'SIGKILL');
        killed.push(s.pid);
      } catch {
        // already gone
      }
    }
    this.close();
    return killed;
  }
}

export type { AgentNotice };
