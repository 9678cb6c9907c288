// The agent channel's host side (backends/userspace/attach/channel.ts) against a scripted agent: this
// process holds both ends of the socketpair and writes the agent's frames ahead of each synchronous
// request. Replies in order, notices between them, a timeout, a late reply skipped, EOF, close; driven
// from a worker thread (no event loop needed).
import t from 'tap';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { Worker } from 'node:worker_threads';
import { loadNative } from '../backends/linux/native.js';
import { AgentChannel, agentSocketpair, type AgentNotice } from '../backends/userspace/attach/channel.js';

import { ROOT } from './helpers.js';

const REPLY = 16, EVENT = 17, TRACE = 18;
const native = loadNative();

function frame(type: number, seq: number, head: number, text: string): Uint8Array {
  const body = Buffer.from(text);
  const b = Buffer.alloc(16 + body.byteLength);
  b.writeUInt32LE(4 + body.byteLength, 0);
  b.writeUInt32LE(type, 4);
  b.writeUInt32LE(seq, 8);
  b.writeInt32LE(head, 12);
  b.set(body, 16);
  return b;
}

/** the requests the channel wrote: [type, seq, payload] */
function requests(fd: number): [number, number, Buffer][] {
  const out: [number, number, Buffer][] = [];
  const chunk = new Uint8Array(1 << 16);
  let buf = Buffer.alloc(0);
  for (let n; (n = native.agentRecv(fd, chunk, 0)) > 0;) buf = Buffer.concat([buf, chunk.subarray(0, n)]);
  while (buf.byteLength >= 12) {
    const len = buf.readUInt32LE(0);
    out.push([buf.readUInt32LE(4), buf.readUInt32LE(8), buf.subarray(12, 12 + len)]);
    buf = buf.subarray(12 + len);
  }
  return out;
}

t.test('requests, replies and notices', (tt) => {
  const pair = agentSocketpair();
  const seen: AgentNotice[] = [];
  const ch = new AgentChannel(pair.host, { timeoutMs: 300, onNotice: (n) => seen.push(n) });
  tt.teardown(() => {
    ch.close();
    native.closeFd(pair.child);
  });
  const agent = (f: Uint8Array): void => native.agentSend(pair.child, f, []);

  agent(frame(EVENT, 0, 4, 'hook 4 disabled: x'));
  agent(frame(TRACE, 0, 5, 'hello'));
  agent(frame(REPLY, 1, 0, 'prog 1'));
  // call 6, call 1, exit
  const insns = Buffer.from('850000000600000085000000010000009500000000000000', 'hex');
  tt.equal(ch.sendProgram({ id: 1, insns }), 'prog 1', 'the reply\'s message');
  const expected = [
    { kind: 'disabled', hookId: 4, message: 'hook 4 disabled: x' },
    { kind: 'trace', hookId: 5, message: 'hello' },
  ];
  tt.same(seen, expected, 'the notices before the reply, dispatched in order');
  tt.same(ch.notices, expected, 'and kept');
  const [[type, seq, p]] = requests(pair.child) as [[number, number, Buffer]];
  tt.same([type, seq], [2, 1], 'a PROG request, seq 1');
  tt.same([p.readUInt32LE(0), p.readUInt32LE(4), p.readUInt32LE(8), p.readUInt32LE(16), p.readUInt32LE(20)], [1, 2, 24, 1, 6],
    'id, helper count, insn bytes, the helper ids sorted');

  tt.throws(() => ch.unhook(3), { errno: 110, message: 'agent channel: unhook 3: no answer from the agent within 300 ms' }, 'a timeout');
  agent(frame(REPLY, 2, 0, 'unhook 3'));
  agent(frame(REPLY, 3, 2, 'unhook 4: no hook 4'));
  tt.throws(() => ch.unhook(4), { errno: 2, message: 'agent: unhook 4: no hook 4' }, 'the late reply is skipped; a refusal carries its status');

  agent(frame(REPLY, 4, 0, 'hook 7 at 0x1000'));
  tt.equal(ch.sendHook({ id: 7, progId: 1, dev: 0x801n, ino: 42n, fileOffset: 0x1130, size: 16, retprobe: true }), 'hook 7 at 0x1000', 'a hook');
  agent(frame(REPLY, 5, 0, 'start'));
  ch.start();
  ch.start();
  const sent = requests(pair.child);
  tt.same(sent.map(([ty, s]) => [ty, s]), [[5, 2], [5, 3], [3, 4], [4, 5]], 'UNHOOK x2, HOOK, one START (start is idempotent)');
  const h = sent[2]![2];
  tt.same([h.byteLength, h.readUInt32LE(0), h.readUInt32LE(4), h.readBigUInt64LE(8), h.readBigUInt64LE(16), h.readBigUInt64LE(24), h.readBigUInt64LE(32), h.readUInt32LE(40)],
    [48, 7, 1, 0x801n, 42n, 0x1130n, 16n, 1], 'the HOOK payload, flags = return');

  agent(frame(TRACE, 0, 7, 'later'));
  ch.poll();
  tt.same(seen.at(-1), { kind: 'trace', hookId: 7, message: 'later' }, 'poll dispatches a notice');
  tt.notOk(ch.closed, 'open');
  tt.end();
});

t.test('EOF and close', (tt) => {
  const pair = agentSocketpair();
  const ch = new AgentChannel(pair.host, { timeoutMs: 5000 });
  native.agentSend(pair.child, frame(REPLY, 1, 0, 'map 1'), []);
  const efd = native.eventFd();
  ch.sendMap({ id: 1, fd: efd, notifyFd: -1 });
  native.closeFd(efd);
  tt.pass('a map goes with its fd');
  native.closeFd(pair.child);
  ch.poll();
  tt.ok(ch.closed, 'the agent\'s end closed: closed');
  tt.throws(() => ch.start(), { errno: 32, message: 'agent channel: start: the launched command exited' }, 'then requests fail with EPIPE');
  ch.close();
  ch.close();
  tt.pass('close is idempotent');

  const p2 = agentSocketpair();
  const ch2 = new AgentChannel(p2.host, { timeoutMs: 5000 });
  native.closeFd(p2.child);
  tt.throws(() => ch2.unhook(1), { errno: 32, message: /unhook 1: the launched command exited/ }, 'EOF while waiting for a reply');
  ch2.close();
  const p3 = agentSocketpair();
  const ch3 = new AgentChannel(p3.host);
  ch3.close();
  native.closeFd(p3.child);
  tt.throws(() => ch3.start(), { errno: 32, message: 'agent channel: start: the channel is closed' }, 'after close(): EPIPE');
  tt.end();
});

t.test('a worker thread drives the channel synchronously', async (tt) => {
  const pair = agentSocketpair();
  tt.teardown(() => native.closeFd(pair.child));
  native.agentSend(pair.child, frame(REPLY, 1, 0, 'start'), []);
  // the built module (npx tsc): a worker evaluates plain JavaScript
  const url = pathToFileURL(path.join(ROOT, 'dist', 'backends', 'userspace', 'attach', 'channel.js')).href;
  const w = new Worker(
    `const { parentPort, workerData } = require('worker_threads');
     import(workerData.url).then(({ AgentChannel }) => {
       const ch = new AgentChannel(workerData.fd, { timeoutMs: 5000 });
       ch.start();
       ch.close();
       parentPort.postMessage('started');
     }, (e) => parentPort.postMessage(String(e)));`,
    { eval: true, workerData: { fd: pair.host, url } },
  );
  const msg = await new Promise((r) => w.once('message', r));
  await new Promise((r) => w.once('exit', r));
  tt.equal(msg, 'started', 'start() answered in the worker');
  tt.same(requests(pair.child).map(([ty, s]) => [ty, s]), [[4, 1]], 'the START frame came');
});
