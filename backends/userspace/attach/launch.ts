// Launch mode of the uprobe agent: spawn a command with LD_PRELOAD=libwbpf_agent.so and the control
// channel (native/agent/lib/proto.h) on an inherited socketpair, then send it maps, programs and hooks.
// The shared maps' fds are inherited too (spawn slots), so nothing crosses the channel by SCM_RIGHTS here.
import { spawn, type ChildProcess, type StdioOptions } from 'node:child_process';
import type { Socket } from 'node:net';
import { BackendError } from '../../../src/errors.js';

/** frame types of native/agent/lib/proto.h */
const MAP = 1, PROG = 2, HOOK = 3, REPLY = 16, EVENT = 17;
const HEADER = 12;
/** the channel's fd number in the child; the maps' memfds and eventfds follow it */
const CHANNEL_FD = 3;

export interface AgentMap {
  /** the id programs name (`lddw rX, map_by_fd(id)`) */
  id: number;
  /** the host's memfd and eventfd (-1: none) of a shared-memory map (the addon's shmMapCreate) */
  fd: number;
  notifyFd: number;
}

export interface AgentProgram {
  id: number;
  /** instructions with map references resolved to map ids (lddw src 1, imm = AgentMap.id) */
  insns: Uint8Array;
}

export interface AgentHook {
  id: number;
  progId: number;
  /** the probed file's identity and the entry's file offset (attach/symbols.ts's ResolvedUprobe) */
  dev: bigint;
  ino: bigint;
  fileOffset: number;
  /** the symbol's st_size, 0 unknown */
  size: number;
}

/** a hook the agent disabled after a fault at a hit */
export interface AgentEvent {
  hookId: number;
  message: string;
}

export interface LaunchOptions {
  /** the agent library (native/agent/build/libwbpf_agent.so) */
  agent: string;
  maps: readonly AgentMap[];
  env?: NodeJS.ProcessEnv;
  /** the child's stdin, stdout, stderr (default: pipes) */
  stdio?: readonly ['pipe' | 'inherit' | 'ignore', 'pipe' | 'inherit' | 'ignore', 'pipe' | 'inherit' | 'ignore'];
}

/** the helper ids a program calls (`call imm`, src 0) */
function helperIds(insns: Uint8Array): number[] {
  const ids = new Set<number>();
  const dv = new DataView(insns.buffer, insns.byteOffset, insns.byteLength);
  for (let off = 0; off + 8 <= insns.byteLength; off += 8) {
    const op = insns[off]!;
    if (op === 0x18) off += 8; // lddw: the second slot is data
    else if (op === 0x85 && (insns[off + 1]! >> 4) === 0) ids.add(dv.getInt32(off + 4, true) >>> 0);
  }
  return [...ids].sort((a, b) => a - b);
}

interface Pending {
  resolve: (message: string) => void;
  reject: (err: BackendError) => void;
}

/** a launched command and its agent's channel; requests are answered in order */
export class AgentLaunch {
  readonly child: ChildProcess;
  readonly events: AgentEvent[] = [];
  private readonly channel: Socket;
  private readonly pending = new Map<number, Pending>();
  private seq = 0;
  private buf = Buffer.alloc(0);
  private closed = false;

  constructor(cmd: readonly string[], private readonly opts: LaunchOptions) {
    const [file, ...args] = cmd;
    if (file === undefined) throw new BackendError('launch: no command given', 22);
    const [i, o, e] = opts.stdio ?? ['pipe', 'pipe', 'pipe'];
    const stdio: StdioOptions = [i, o, e, 'pipe'];
    for (const m of opts.maps) stdio.push(m.fd, m.notifyFd >= 0 ? m.notifyFd : 'ignore');
    const env = { ...(opts.env ?? process.env), LD_PRELOAD: opts.agent, WBPF_AGENT_FD: String(CHANNEL_FD) };
    this.child = spawn(file, args, { stdio, env });
    const ch = this.child.stdio[CHANNEL_FD];
    if (ch === null || ch === undefined || !('write' in ch)) throw new BackendError('launch: no control channel', 5);
    this.channel = ch as Socket;
    this.channel.on('data', (d: Buffer) => this.onData(d));
    this.channel.on('close', () => this.fail('the agent closed its channel'));
    this.channel.on('error', () => this.fail('the agent closed its channel'));
  }

  /** send the maps (fd numbers as the child holds them), then resolve when the agent has mapped them all */
  async sendMaps(): Promise<void> {
    let fd = CHANNEL_FD + 1;
    for (const m of this.opts.maps) {
      const p = Buffer.alloc(16);
      p.writeUInt32LE(m.id, 0);
      p.writeInt32LE(fd, 4);
      p.writeInt32LE(m.notifyFd >= 0 ? fd + 1 : -1, 8);
      fd += 2;
      await this.request(MAP, p);
    }
  }

  /** load a program; the engine's refusal rejects with its message */
  async sendProgram(p: AgentProgram): Promise<string> {
    const helpers = helperIds(p.insns);
    const b = Buffer.alloc(16 + 4 * helpers.length + p.insns.byteLength);
    b.writeUInt32LE(p.id, 0);
    b.writeUInt32LE(helpers.length, 4);
    b.writeUInt32LE(p.insns.byteLength, 8);
    helpers.forEach((h, i) => b.writeUInt32LE(h, 16 + 4 * i));
    b.set(p.insns, 16 + 4 * helpers.length);
    return this.request(PROG, b);
  }

  async sendHook(h: AgentHook): Promise<string> {
    const b = Buffer.alloc(40);
    b.writeUInt32LE(h.id, 0);
    b.writeUInt32LE(h.progId, 4);
    b.writeBigUInt64LE(h.dev, 8);
    b.writeBigUInt64LE(h.ino, 16);
    b.writeBigUInt64LE(BigInt(h.fileOffset), 24);
    b.writeBigUInt64LE(BigInt(h.size), 32);
    return this.request(HOOK, b);
  }

  /** close the channel: the agent unhooks everything and the command runs on */
  close(): void {
    this.closed = true;
    this.channel.destroy();
  }

  private request(type: number, payload: Buffer): Promise<string> {
    if (this.closed) return Promise.reject(new BackendError('launch: the agent channel is closed', 32));
    const seq = ++this.seq;
    const h = Buffer.alloc(HEADER);
    h.writeUInt32LE(payload.byteLength, 0);
    h.writeUInt32LE(type, 4);
    h.writeUInt32LE(seq, 8);
    return new Promise((resolve, reject) => {
      this.pending.set(seq, { resolve, reject });
      this.channel.write(Buffer.concat([h, payload]));
    });
  }

  private onData(d: Buffer): void {
    this.buf = Buffer.concat([this.buf, d]);
    while (this.buf.byteLength >= HEADER) {
      const len = this.buf.readUInt32LE(0);
      if (this.buf.byteLength < HEADER + len) return;
      const type = this.buf.readUInt32LE(4);
      const seq = this.buf.readUInt32LE(8);
      const body = this.buf.subarray(HEADER, HEADER + len);
      this.buf = this.buf.subarray(HEADER + len);
      if (type === EVENT && len >= 4) {
        this.events.push({ hookId: body.readUInt32LE(0), message: body.subarray(4).toString() });
      } else if (type === REPLY && len >= 4) {
        const p = this.pending.get(seq);
        this.pending.delete(seq);
        const status = body.readInt32LE(0);
        const message = body.subarray(4).toString();
        if (status === 0) p?.resolve(message);
        else p?.reject(new BackendError(`agent: ${message}`, status));
      }
    }
  }

  private fail(why: string): void {
    this.closed = true;
    for (const p of this.pending.values()) p.reject(new BackendError(`launch: ${why}`, 32));
    this.pending.clear();
  }
}

/** spawn cmd under the agent and send it the maps; programs and hooks follow through the returned object */
export async function launch(cmd: readonly string[], opts: LaunchOptions): Promise<AgentLaunch> {
  const l = new AgentLaunch(cmd, opts);
  await l.sendMaps();
  return l;
}
