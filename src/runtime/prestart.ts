// The guest's thread, started before the run's options are known: the CLI starts it first thing (this
// module imports next to nothing), so that the worker's own start-up (Node's worker bootstrap, the
// runtime's modules, the native addon) runs while the main thread loads the CLI and reads the module.
// The next Runtime adopts it and sends it the input.
import { SHARE_ENV, Worker } from 'node:worker_threads';
import v8 from 'node:v8';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { StopSignal } from './stop.js';
import { mark, traceOrigin } from '../trace.js';
import type { WorkerData } from './protocol.js';

export interface Prestarted {
  worker: Worker;
  stop: StopSignal;
  /** it failed or ended before it was adopted: start a fresh one (which meets and reports the same failure) */
  dead: boolean;
}

let warm: Prestarted | undefined;

/**
 * The guest thread's script: in dist/, the bundle `npm run build` makes of worker.js and everything it
 * imports (one file to load instead of ~60 modules: about 20 ms less start-up), unless worker.js is newer
 * (a plain `tsc` after the last bundle); worker.ts when running from the sources.
 */
export function workerUrl(): URL {
  // this module's directory, or (bundled into the CLI's bundle, dist/src/cli/) its sibling runtime/
  let here = path.dirname(fileURLToPath(import.meta.url));
  if (path.basename(here) !== 'runtime') here = path.join(here, '..', 'runtime');
  const js = path.join(here, 'worker.js');
  const mtime = (f: string): number => {
    try {
      return fs.statSync(f).mtimeMs;
    } catch {
      return -1;
    }
  };
  const plain = mtime(js);
  if (plain < 0) return new URL(`file://${path.join(here, 'worker.ts')}`);
  const bundle = path.join(here, 'worker.bundle.js');
  return new URL(`file://${!process.env['WASM_BPF_NO_BUNDLE'] && mtime(bundle) >= plain ? bundle : js}`);
}

let gcFlagsSet = false;
/**
 * Node 20's node:wasi serves the guest's WASI imports as V8 fast calls, and some of them report
 * memory to V8 (AdjustAmountOfExternalAllocatedMemory), which can start a garbage collection inside
 * the fast call, where V8 does not expect one (nodejs/node#46777). After a guest grew its memory by
 * tens of MiB, that crashed the guest thread now and then (a segfault in node:wasi's start(), in 2-9
 * of 16 runs of test/abi.test.ts's `grow` scenario, also with plain node:wasi and no wasm-bpf code
 * involved). Without concurrent marking it did not happen once in 100 runs. The flag is V8's,
 * process-wide, and is read when an isolate's heap is made: set before the guest's thread starts.
 */
function avoidGcInWasiFastCalls(): void {
  if (gcFlagsSet) return;
  gcFlagsSet = true;
  v8.setFlagsFromString('--no-concurrent-marking');
}

/** the guest's thread shares the process environment (SHARE_ENV) */
export function startWorker(data: WorkerData): Worker {
  avoidGcInWasiFastCalls();
  mark('worker_spawn');
  return new Worker(workerUrl(), { workerData: { ...data, origin: traceOrigin }, stdout: false, stderr: false, env: SHARE_ENV });
}

export function prestartWorker(): void {
  if (warm) return;
  const stop = new StopSignal();
  const w: Prestarted = { worker: startWorker({ warm: true, stop: stop.shared }), stop, dead: false };
  // not adopted yet: it must not keep the process alive
  w.worker.unref();
  w.worker.on('error', () => (w.dead = true));
  w.worker.on('exit', () => (w.dead = true));
  warm = w;
}

/** the prestarted worker, once (the Runtime that takes it owns it) */
export function takePrestarted(): Prestarted | undefined {
  const w = warm;
  warm = undefined;
  return w;
}
