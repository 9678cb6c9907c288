// The host side of the uprobe agent's control channel (native/agent/lib/proto.h): synchronous requests,
// each waiting for its reply within a timeout (no event loop: any thread holding the fd may drive it), and
// the agent's notices (a hook disabled, bpf_trace_printk text) dispatched as they arrive.
import { loadNative, type NativeAddon } from '../../linux/native.js';
import { BackendError, errorMessage } from '../../../src/errors.js';

/** frame types of native/agent/lib/proto.h */
const MAP = 1, PROG = 2, HOOK = 3, START = 4, UNHOOK = 5, DROP = 6, SYSCALL = 7, TASK = 8, REPLY = 16, EVENT = 17, TRACE = 18;
/** what DROP frees (proto.h WBPF_AGENT_DROP_*) */
const DROP_PROG = 1, DROP_MAP = 2;
const HEADER = 12;
const MAX_PAYLOAD = 64 << 20;
const HOOK_RETURN = 1;
/** the SYSCALL frame's flags (native/agent/lib/proto.h: WBPF_AGENT_SYSCALL_EXIT, _RAW, _SCHED) */
const SYSCALL_EXIT = 1, SYSCALL_RAW = 2, SYSCALL_SCHED = 4;
const EPIPE = 32, EPROTO = 71, ETIMEDOUT = 110;
/** notices kept in AgentChannel.notices (the oldest go first) */
const KEEP_NOTICES = 256;

/** a shared-memory map: this process's memfd and eventfd (-1: none), sent to the agent by SCM_RIGHTS */
export interface ChannelMap {
  id: number;
  fd: number;
  notifyFd: number;
}

/** instructions with map references resolved: lddw src 1, imm = a map id; src 2, imm = a map id (+ the next
 * imm, an offset) = the address of the map's value (array element 0) */
export interface ChannelProgram {
  id: number;
  insns: Uint8Array;
}

/** a uprobe (retprobe: a uretprobe) on the function at fileOffset of the file (dev, ino); size: its st_size, 0 unknown */
export interface ChannelHook {
  id: number;
  progId: number;
  dev: bigint;
  ino: bigint;
  fileOffset: number;
  size: number;
  retprobe: boolean;
}

/** a tp/syscalls program at one syscall number's entry or exit (the agent rewrites the sites of it), a
 * tp/raw_syscalls one (every number), or a tp/sched/sched_process_exec|exit one; table: the event's 64-byte
 * field table (../syscalls/fieldtable.ts), a sched table for sched */
export interface ChannelSyscall {
  id: number;
  progId: number;
  /** the syscall number (ignored when raw) */
  nr: number;
  exit: boolean;
  /** raw_syscalls/sys_enter|sys_exit: every number */
  raw?: boolean;
  table: Uint8Array;
  /** a sched_process_* program (nr: the event, table: its sched table) */
  sched?: boolean;
}

/** EVENT frames ('disabled': a program faulted, its hook runs nothing from then on) and TRACE frames
 * ('trace': bpf_trace_printk text of a program run at hookId) */
export interface AgentNotice {
  kind: 'disabled' | 'trace';
  hookId: number;
  message: string;
}

export interface AgentChannelOptions {
  /** how long a request waits for its reply (default 10000 ms) */
  timeoutMs?: number;
  /** called for each notice as it is read (during a request or poll()); it must not throw */
  onNotice?: (n: AgentNotice) => void;
}

/** the helper ids a program calls (`call imm`, src 0) */
export function helperIds(insns: Uint8Array): number[] {
  const ids = new Set<number>();
  const dv = new DataView(insns.buffer, insns.byteOffset, insns.byteLength);
  for (let off = 0; off + 8 <= insns.byteLength; off += 8) {
    const op = insns[off]!;
    if (op === 0x18) off += 8; // lddw: the second slot is data
    else if (op === 0x85 && (insns[off + 1]! >> 4) === 0) ids.add(dv.getInt32(off + 4, true) >>> 0);
  }
  return [...ids].sort((a, b) => a - b);
}

/** a connected pair for a launch: `host` is the channel's end, `child` goes to the command (spawnUnderAgent) */
export function agentSocketpair(): { host: number; child: number } {
  const [host, child] = loadNative().agentSocketpair();
  return { host, child };
}

/** the channel to one agent; requests are answered in order, notices may come between replies */
export class AgentChannel {
  /** the last notices read (at most 256), for tests and diagnostics */
  readonly notices: AgentNotice[] = [];
  private readonly native: NativeAddon = loadNative();
  private readonly timeoutMs: number;
  private readonly onNotice: ((n: AgentNotice) => void) | undefined;
  private readonly chunk = new Uint8Array(64 << 10);
  private buf: Buffer = Buffer.alloc(0);
  private seq = 0;
  private fdOpen = true;
  private isClosed = false;
  private started = false;
  /** why the channel ended, when the agent's side did */
  private ended = '';

  constructor(private readonly fd: number, opts: AgentChannelOptions = {}) {
    this.timeoutMs = opts.timeoutMs ?? 10_000;
    this.onNotice = opts.onNotice;
  }

  /** the agent closed its end (the command exited), or close() was called */
  get closed(): boolean {
    return this.isClosed;
  }

  /** the agent maps the map (its fds travel with the frame); a refusal throws BackendError(errno) with the agent's message */
  sendMap(m: ChannelMap): void {
    const p = Buffer.alloc(16);
    p.writeUInt32LE(m.id, 0);
    p.writeInt32LE(-1, 4);
    p.writeInt32LE(-1, 8);
    this.request(MAP, p, m.notifyFd >= 0 ? [m.fd, m.notifyFd] : [m.fd], `map ${m.id}`);
  }

  /** loads a program into the agent's engine: 'prog N'; the engine's refusal throws (EINVAL / EOPNOTSUPP + its message) */
  sendProgram(p: ChannelProgram): string {
    const helpers = helperIds(p.insns);
    const b = Buffer.alloc(16 + 4 * helpers.length + p.insns.byteLength);
    b.writeUInt32LE(p.id, 0);
    b.writeUInt32LE(helpers.length, 4);
    b.writeUInt32LE(p.insns.byteLength, 8);
    helpers.forEach((h, i) => b.writeUInt32LE(h, 16 + 4 * i));
    b.set(p.insns, 16 + 4 * helpers.length);
    return this.request(PROG, b, [], `program ${p.id}`);
  }

  /** hooks a function: 'hook N at 0x...'; a refusal throws with the hook's reason */
  sendHook(h: ChannelHook): string {
    const b = Buffer.alloc(48);
    b.writeUInt32LE(h.id, 0);
    b.writeUInt32LE(h.progId, 4);
    b.writeBigUInt64LE(h.dev, 8);
    b.writeBigUInt64LE(h.ino, 16);
    b.writeBigUInt64LE(BigInt(h.fileOffset), 24);
    b.writeBigUInt64LE(BigInt(h.size), 32);
    b.writeUInt32LE(h.retprobe ? HOOK_RETURN : 0, 40);
    return this.request(HOOK, b, [], `hook ${h.id}`);
  }

  /** a syscall program: 'syscall hook N on sys_enter of syscall M: K libc sites rewritten'; a refusal throws
   * (no site of that number in libc, the table refused); UNHOOK removes it */
  sendSyscall(h: ChannelSyscall): string {
    const b = Buffer.alloc(16 + h.table.byteLength);
    b.writeUInt32LE(h.id, 0);
    b.writeUInt32LE(h.progId, 4);
    b.writeUInt32LE(h.raw ? 0 : h.nr, 8);
    b.writeUInt32LE((h.exit ? SYSCALL_EXIT : 0) | (h.raw ? SYSCALL_RAW : 0) | (h.sched ? SYSCALL_SCHED : 0), 12);
    b.set(h.table, 16);
    return this.request(SYSCALL, b, [], `syscall hook ${h.id}`);
  }

  /** the task_struct image's layout (attach/task-layout.ts's encodeTaskLayout) for bpf_get_current_task */
  sendTask(payload: Uint8Array): string {
    return this.request(TASK, Buffer.from(payload), [], 'task layout');
  }

  /** removes one hook; once it returns no hit runs its program. The function runs unhooked once its last hook goes */
  unhook(id: number): void {
    const b = Buffer.alloc(4);
    b.writeUInt32LE(id, 0);
    this.request(UNHOOK, b, [], `unhook ${id}`);
  }

  /**
   * Frees what a closed object had in the agent: a program once no hook runs it, then a map once no program
   * names it (the agent answers EBUSY otherwise). Unhook first.
   */
  drop(kind: 'prog' | 'map', id: number): void {
    const b = Buffer.alloc(8);
    b.writeUInt32LE(kind === 'prog' ? DROP_PROG : DROP_MAP, 0);
    b.writeUInt32LE(id, 4);
    this.request(DROP, b, [], `drop ${kind} ${id}`);
  }

  /** lets the launched command run (its main waits for this); idempotent */
  start(): void {
    if (this.started) return;
    this.request(START, Buffer.alloc(0), [], 'start');
    this.started = true;
  }

  /** reads and dispatches pending notices without blocking (and notices the agent's end closing) */
  poll(): void {
    this.parse(0);
    while (!this.isClosed && this.fill(0)) this.parse(0);
  }

  /** closes the channel: the agent unhooks everything and the command runs on; idempotent */
  close(): void {
    this.isClosed = true;
    if (this.fdOpen) {
      this.fdOpen = false;
      this.native.closeFd(this.fd);
    }
  }

  private request(type: number, payload: Uint8Array, fds: readonly number[], what: string): string {
    if (this.isClosed) throw new BackendError(`agent channel: ${what}: ${this.ended || 'the channel is closed'}`, EPIPE);
    const seq = (this.seq = (this.seq + 1) >>> 0 || 1);
    const frame = new Uint8Array(HEADER + payload.byteLength);
    const dv = new DataView(frame.buffer);
    dv.setUint32(0, payload.byteLength, true);
    dv.setUint32(4, type, true);
    dv.setUint32(8, seq, true);
    frame.set(payload, HEADER);
    try {
      this.native.agentSend(this.fd, frame, fds);
    } catch (e) {
      const errno = (e as { errno?: number }).errno ?? EPIPE;
      if (errno === EPIPE || errno === 104) {
        this.end('the launched command exited');
        throw new BackendError(`agent channel: ${what}: the launched command exited`, EPIPE, '', undefined, { cause: e });
      }
      throw new BackendError(`agent channel: ${what}: ${errorMessage(e)}`, errno, '', undefined, { cause: e });
    }
    const deadline = Date.now() + this.timeoutMs;
    for (;;) {
      const reply = this.parse(seq);
      if (reply !== undefined) {
        if (reply.status === 0) return reply.message;
        throw new BackendError(`agent: ${reply.message}`, reply.status);
      }
      if (this.isClosed) throw new BackendError(`agent channel: ${what}: ${this.ended || 'the channel is closed'} before the agent answered`, EPIPE);
      const left = deadline - Date.now();
      if (left <= 0) throw new BackendError(`agent channel: ${what}: no answer from the agent within ${this.timeoutMs} ms`, ETIMEDOUT);
      this.fill(left);
    }
  }

  /** one receive of up to timeoutMs: true when bytes came */
  private fill(timeoutMs: number): boolean {
    const n = this.native.agentRecv(this.fd, this.chunk, Math.max(0, Math.ceil(timeoutMs)));
    if (n > 0) {
      this.buf = this.buf.byteLength === 0 ? Buffer.from(this.chunk.slice(0, n)) : Buffer.concat([this.buf, this.chunk.subarray(0, n)]);
      return true;
    }
    if (n === 0) this.end('the launched command exited');
    else if (n !== -ETIMEDOUT) this.end(`receiving failed (errno ${-n})`);
    return false;
  }

  /** the whole frames buffered: notices dispatched, replies before `seq` dropped (a request that timed
   * out), the reply to `seq` returned */
  private parse(seq: number): { status: number; message: string } | undefined {
    while (this.buf.byteLength >= HEADER) {
      const len = this.buf.readUInt32LE(0);
      if (len > MAX_PAYLOAD) {
        this.end(`the agent sent a frame of ${len} bytes`);
        throw new BackendError(`agent channel: the agent sent a frame of ${len} bytes (protocol error)`, EPROTO);
      }
      if (this.buf.byteLength < HEADER + len) return undefined;
      const type = this.buf.readUInt32LE(4);
      const got = this.buf.readUInt32LE(8);
      const body = this.buf.subarray(HEADER, HEADER + len);
      this.buf = this.buf.subarray(HEADER + len);
      if ((type === EVENT || type === TRACE) && len >= 4) {
        this.notice({ kind: type === EVENT ? 'disabled' : 'trace', hookId: body.readUInt32LE(0), message: body.subarray(4).toString() });
      } else if (type === REPLY && len >= 4 && got === seq && seq !== 0) {
        return { status: body.readInt32LE(0), message: body.subarray(4).toString() };
      }
    }
    return undefined;
  }

  private notice(n: AgentNotice): void {
    this.notices.push(n);
    if (this.notices.length > KEEP_NOTICES) this.notices.shift();
    this.onNotice?.(n);
  }

  private end(why: string): void {
    if (!this.ended) this.ended = why;
    this.close();
  }
}
