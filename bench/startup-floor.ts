// The start-up floor of a Node runtime that runs its guest on a worker thread (as wasm-bpf must):
// `node startup-floor.js ADDON BOOTSTRAP_BPF_O` starts Node, a worker thread, loads the native addon
// there and opens, loads and attaches bootstrap.bpf.o with it directly, then prints what the bootstrap
// app prints for exec events. No Wasm, no WASI, no wasm-bpf runtime code: whatever wasm-bpf does, its
// start-up cannot be shorter than this (bench/run.ts reports it beside the native app and wasm-bpf).
import { Worker } from 'node:worker_threads';

const [addon, obj] = process.argv.slice(2);
if (!addon || !obj) {
  process.stderr.write('usage: startup-floor ADDON BOOTSTRAP_BPF_O\n');
  process.exit(2);
}

// CommonJS source for the worker (eval): the quickest worker Node starts
const WORKER = String.raw`
const { parentPort, workerData } = require('node:worker_threads');
const fs = require('node:fs');
const n = require(workerData.addon);
const o = n.open(new Uint8Array(fs.readFileSync(workerData.obj)), 'bootstrap', { logLevel: 0 });
n.load(o);
for (const p of n.programs(o)) n.attachAuto(o, p.name);
parentPort.postMessage('# bootstrap: attached');
const buf = n.ringbufOpen(n.maps(o).find((m) => m.name === 'rb').fd);
const out = new Uint8Array(1 << 16);
const dv = new DataView(out.buffer);
const text = (a, b) => { const s = out.subarray(a, b); const z = s.indexOf(0); return Buffer.from(z < 0 ? s : s.subarray(0, z)).toString(); };
for (;;) {
  const k = n.bufferPoll(buf, 100, -1, out);
  // records as [u32 size][u32 0][struct event, padded to 8]: bootstrap.h's layout (168 bytes)
  for (let i = 0, off = 0; i < k; i++) {
    const size = dv.getUint32(off, true);
    const e = off + 8;
    if (size >= 168 && out[e + 163] === 0) {
      parentPort.postMessage('EXEC pid=' + dv.getInt32(e + 8, true) + ' filename=' + text(e + 36, e + 163));
    }
    off += 8 + ((size + 7) & ~7);
  }
}
`;

const w = new Worker(WORKER, { eval: true, workerData: { addon, obj } });
w.on('message', (line: string) => process.stdout.write(`${line}\n`));
w.on('error', (err) => {
  process.stderr.write(`startup-floor: ${err.message}\n`);
  process.exit(1);
});
process.on('SIGINT', () => process.exit(130));
