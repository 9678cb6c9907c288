// Start-up breakdown of `wasm-bpf run` (run by run.ts, or alone:
//   node dist/bench/startup.js GUEST.wasm [guest args...]
// ). Replays what bin/wasm-bpf.js does (CLI modules in the main thread, read the module, a worker that
// loads the runtime's modules, checks the module, loads the native addon, compiles, instantiates and
// runs the guest) with a timestamp after each step, and times every native addon call the guest's host
// calls make (bpf_object__open_mem, bpf_object__load, attach, ring buffer) through a proxy of the addon.
// The guest should end by itself (bootstrap: `-t 0.2`). Prints one JSON line: {"marks": [[name, ms]...]}
// with ms since the process started (performance.timeOrigin).
import { Worker } from 'node:worker_threads';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export type Mark = [string, number];

/** ms since this process started, comparable across its threads */
export const stamp = (): number => performance.timeOrigin + performance.now();

export interface StartupInput {
  bytes: Uint8Array;
  args: string[];
  origin: number;
}

async function main(): Promise<void> {
  const origin = performance.timeOrigin;
  const marks: Mark[] = [['script_start', stamp() - origin]];
  const [file, ...args] = process.argv.slice(2);
  if (!file) throw new Error('usage: startup.js GUEST.wasm [args...]');
  // what bin/wasm-bpf.js -> dist/src/cli/main.js -> run.js load in the main thread
  await import('../src/cli/run.js');
  marks.push(['cli_modules', stamp() - origin]);
  const bytes = fs.readFileSync(file);
  marks.push(['read_module', stamp() - origin]);
  const here = path.dirname(fileURLToPath(import.meta.url));
  const js = path.join(here, 'startup-worker.js');
  const url = new URL(`file://${fs.existsSync(js) ? js : path.join(here, 'startup-worker.ts')}`);
  const input: StartupInput = { bytes, args: [path.basename(file), ...args], origin };
  marks.push(['worker_spawn', stamp() - origin]);
  const worker = new Worker(url, { workerData: input });
  const workerMarks = await new Promise<Mark[]>((resolve, reject) => {
    worker.on('message', (m: Mark[]) => resolve(m));
    worker.on('error', reject);
    worker.on('exit', (code) => reject(new Error(`startup worker exited (${code}) without reporting`)));
  });
  marks.push(...workerMarks);
  await worker.terminate();
  marks.push(['end', stamp() - origin]);
  process.stdout.write(`${JSON.stringify({ marks })}\n`);
}

const self = fileURLToPath(import.meta.url);
if (process.argv[1] && path.resolve(process.argv[1]) === self) {
  main().catch((err: unknown) => {
    process.stderr.write(`startup: ${err instanceof Error ? err.stack ?? err.message : String(err)}\n`);
    process.exitCode = 1;
  });
}
