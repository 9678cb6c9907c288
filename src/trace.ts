// Start-up trace, for bench/startup.ts: with WASM_BPF_TRACE_STARTUP=1 every thread of a run writes
// `# startup NAME MS` lines to stderr, MS counted from the main thread's performance.timeOrigin (the
// process's start), so the real path's phases can be measured. Off (the default): one boolean test
// per mark.
import fs from 'node:fs';
import { isMainThread, workerData } from 'node:worker_threads';

const on = process.env['WASM_BPF_TRACE_STARTUP'] === '1';

/** the main thread's time origin (epoch ms); the guest's thread gets it in its workerData */
export const traceOrigin: number = isMainThread
  ? performance.timeOrigin
  : (((workerData as { origin?: unknown } | undefined)?.origin as number | undefined) ?? performance.timeOrigin);

/** `note`: anything else worth knowing at that point (e.g. which file the thread runs) */
export function mark(name: string, note?: () => string): void {
  if (!on) return;
  const ms = performance.timeOrigin + performance.now() - traceOrigin;
  fs.writeSync(2, `# startup ${name} ${ms.toFixed(2)}${note ? ` ${note()}` : ''}\n`);
}

/** the file name of a module URL (for marks: which file runs, a bundle or the plain modules) */
export function fileOf(url: string): string {
  return url.slice(url.lastIndexOf('/') + 1);
}
