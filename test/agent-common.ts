// What the agent-*.test.ts files share (native/agent/lib driven over its channel, no CLI): the agent's
// folder and the map types they use, the counting program, shared maps made for one test (closed at its
// end), a counter's value, a hook's request, a command launched under the agent with its channel, the
// agent built into a test's own folder, the number of a process's threads.
import { spawnSync, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import type { NativeAddon, NativeShmMap } from '../backends/linux/native.js';
import { AgentChannel, agentSocketpair, type ChannelHook } from '../backends/userspace/attach/channel.js';
import { spawnUnderAgent } from '../backends/userspace/attach/launch.js';
import { resolveUprobe } from '../backends/userspace/attach/symbols.js';
import { assemble } from '../backends/userspace/vm/asm.js';
import { ROOT } from './helpers.js';

export const AGENT_DIR = path.join(ROOT, 'native', 'agent');
export const ARRAY = 2, RINGBUF = 27, LOOKUP = 1;
/** pt_regs offsets of the first argument and of the return value (x86-64) */
export const PARM1 = 112, RC = 80;

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** the threads of process pid */
export function tasks(pid: number): number {
  return fs.readdirSync(`/proc/${pid}/task`).length;
}

/** builds the agent (make -C native/agent) into `out`, a test's own folder */
export function buildAgent(out: string): void {
  const mk = spawnSync('make', ['-C', AGENT_DIR, `B=${out}`, '-j2'], { encoding: 'utf8' });
  if (mk.status !== 0) throw new Error(`make the agent: ${mk.stderr}`);
}

/** the assembly of r0 = map_lookup_elem(map 1, &key) (r1 still the ctx: key 'PARM1' is the call's first
 * argument), then `jeq %r0, 0, +2`: the caller's next 2 instructions use r0 */
export function lookupAsm(key: number | 'PARM1'): string {
  const k = key === 'PARM1' ? `ldxdw %r2, [%r1+${PARM1}]\n      stxw [%r10-4], %r2` : `stw [%r10-4], ${key}`;
  return `${k}
      lddw %r1, map_by_fd(1)
      mov %r2, %r10
      add %r2, -4
      call 1
      jeq %r0, 0, +2`;
}

/** the assembly of ringbuf_output(map 2, r10 + off, size, 0) */
export function ringbufOutputAsm(off: number, size: number): string {
  return `lddw %r1, map_by_fd(2)
      mov %r2, %r10
      add %r2, ${off}
      mov %r3, ${size}
      mov %r4, 0
      call 130`;
}

/** counter[key] += by (array map 1; key 'PARM1': the call's first argument, a key out of range counts
 * nothing); with `reg`, also ringbuf_output(map 2, &ctx[reg], 8, 0) */
export function counting(key: number | 'PARM1', reg?: number, by = 1): Uint8Array {
  const out = reg === undefined ? '' : `
      ldxdw %r1, [%r6+${reg}]
      stxdw [%r10-16], %r1
      ${ringbufOutputAsm(-16, 8)}`;
  return assemble(`
      mov %r6, %r1
      ${lookupAsm(key)}
      mov %r1, ${by}
      lock add [%r0+0], %r1${out}
      mov %r0, 0
      exit`);
}

/** an array map of `entries` u64 values (u32 keys), closed at the end of tt */
export function counterMap(tt: Tap.Test, native: NativeAddon, entries = 1, name = 'hits'): NativeShmMap {
  const m = native.shmMapCreate(ARRAY, 4, 8, entries, 0, native.numPossibleCpus(), 0, name);
  tt.teardown(() => native.shmMapClose(m.id));
  return m;
}

/** map[key] of a u64 array; -1 when the lookup fails */
export function peekCounter(native: NativeAddon, m: NativeShmMap, key = 0): bigint {
  const mem = new Uint8Array(16);
  new DataView(mem.buffer).setUint32(0, key, true);
  return native.shmMapOp(LOOKUP, m.id, mem, 0, 8, 0) === 0 ? Buffer.from(mem).readBigUInt64LE(8) : -1n;
}

/** the request hooking func of binary (its entry, or its return) with program progId as hook id */
export function hookRequest(binary: string, func: string, id: number, progId: number, retprobe = false): ChannelHook {
  const r = resolveUprobe({ binary, func, offset: 0, retprobe, sleepable: false });
  return { id, progId, dev: r.dev, ino: r.ino, fileOffset: r.fileOffset, size: r.func?.size ?? 0, retprobe };
}

export interface Launched {
  agent: AgentChannel;
  child: ChildProcess;
  stdout: () => string;
  exited: Promise<number | null>;
}

/** argv spawned under the agent library `agentSo` (held until START) with its channel; at the end of tt the
 * channel is closed and, unless `keep`, the command killed if still there */
export function launchUnderAgent(tt: Tap.Test, agentSo: string, argv: string[], keep = false): Launched {
  const pair = agentSocketpair();
  const child = spawnUnderAgent(argv, { agent: agentSo, channelFd: pair.child });
  const agent = new AgentChannel(pair.host);
  tt.teardown(() => {
    agent.close();
    if (!keep && child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  });
  let out = '';
  child.stdout?.on('data', (d: Buffer) => (out += d.toString()));
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  return { agent, child, stdout: () => out, exited };
}

/** the u64 records of an agent's shared ring (16 bytes each: an 8-byte header, then the value) */
export function ringRecords(native: NativeAddon, ring: NativeShmMap, max: number, timeoutMs = 200): bigint[] {
  const buf = new Uint8Array(max * 16 + 64);
  const n = native.shmRingPoll(ring.id, timeoutMs, buf, -1);
  const b = Buffer.from(buf);
  return Array.from({ length: Math.max(0, n) }, (_, i) => b.readBigUInt64LE(i * 16 + 8));
}

/** eBPF assembly: ringbuf_output (map 2) of the u64 at [reg+off] */
export function ringbufOutputU64(reg: string, off: number): string {
  return `ldxdw %r1, [${reg}+${off}]
      stxdw [%r10-16], %r1
      ${ringbufOutputAsm(-16, 8)}`;
}
