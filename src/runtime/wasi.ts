// WASI preview1 for guests: node:wasi, with two host-side changes that matter for eBPF tools:
// - stdout/stderr are reported as character devices, so the guest's libc line-buffers them and no
//   line is lost when the run is stopped while output goes to a pipe or a file;
// - sleeps (poll_oneoff on clocks only) wait on the stop signal, so Ctrl-C interrupts them at once.
import { createRequire } from 'node:module';
import type { WASI } from 'node:wasi';
import { Interrupted } from '../errors.js';
import type { StopSignal } from './stop.js';

export interface WasiOptions {
  args: string[];
  env: Record<string, string>;
  /** guest path -> host path */
  preopens: Record<string, string>;
  stop: StopSignal;
}

type WasiFn = (...args: number[]) => number;

const FILETYPE_CHARACTER_DEVICE = 2;
const RIGHTS_FD_SEEK = 1n << 2n;
const RIGHTS_FD_TELL = 1n << 5n;
const EVENTTYPE_CLOCK = 0;
const SUBCLOCKFLAG_ABSTIME = 1;
const ERRNO_SUCCESS = 0;

export class GuestWasi {
  readonly wasi: WASI;
  readonly imports: Record<string, WasiFn>;
  private memory: WebAssembly.Memory | undefined;

  constructor(opts: WasiOptions) {
    // loaded here, not by a static import: node:wasi warns that it is experimental when it loads, and
    // the worker silences that warning first (quiet.ts)
    const { WASI: Wasi } = createRequire(import.meta.url)('node:wasi') as typeof import('node:wasi');
    this.wasi = new Wasi({
      version: 'preview1',
      args: opts.args,
      env: opts.env,
      preopens: opts.preopens,
      returnOnExit: true,
    });
    const base = this.wasi.wasiImport as Record<string, WasiFn>;
    const stop = opts.stop;
    const view = (): DataView => {
      if (!this.memory) throw new Error('WASI used before start');
      return new DataView(this.memory.buffer);
    };

    const fdFdstatGet = base['fd_fdstat_get']!;
    const pollOneoff = base['poll_oneoff']!;
    this.imports = {
      ...base,
      fd_fdstat_get: (fd: number, ptr: number): number => {
        const r = fdFdstatGet(fd, ptr);
        if (r === ERRNO_SUCCESS && (fd === 1 || fd === 2)) {
          const dv = view();
          dv.setUint8(ptr, FILETYPE_CHARACTER_DEVICE);
          const rights = dv.getBigUint64(ptr + 8, true);
          dv.setBigUint64(ptr + 8, rights & ~(RIGHTS_FD_SEEK | RIGHTS_FD_TELL), true);
        }
        return r;
      },
      poll_oneoff: (inPtr: number, outPtr: number, nsubs: number, neventsPtr: number): number => {
        const dv = view();
        if (nsubs <= 0 || inPtr + nsubs * 48 > dv.byteLength || outPtr + nsubs * 32 > dv.byteLength) {
          return pollOneoff(inPtr, outPtr, nsubs, neventsPtr);
        }
        const deadlines: bigint[] = [];
        const now = process.hrtime.bigint();
        for (let i = 0; i < nsubs; i++) {
          const s = inPtr + i * 48;
          if (dv.getUint8(s + 8) !== EVENTTYPE_CLOCK) return pollOneoff(inPtr, outPtr, nsubs, neventsPtr);
          const clock = dv.getUint32(s + 16, true);
          let timeout = dv.getBigUint64(s + 24, true);
          if (dv.getUint16(s + 40, true) & SUBCLOCKFLAG_ABSTIME) {
            const clockNow = clock === 0 ? BigInt(Date.now()) * 1_000_000n : now;
            timeout = timeout > clockNow ? timeout - clockNow : 0n;
          }
          deadlines.push(now + timeout);
        }
        const first = deadlines.reduce((a, b) => (b < a ? b : a));
        const waitNs = first - now;
        if (stop.stopped || !stop.sleep(Number(waitNs) / 1e6)) throw new Interrupted();
        const after = process.hrtime.bigint();
        const out = view();
        let n = 0;
        for (let i = 0; i < nsubs; i++) {
          if (deadlines[i]! > after && deadlines[i] !== first) continue;
          const e = outPtr + n * 32;
          out.setBigUint64(e, dv.getBigUint64(inPtr + i * 48, true), true);
          out.setUint16(e + 8, ERRNO_SUCCESS, true);
          out.setUint8(e + 10, EVENTTYPE_CLOCK);
          n++;
        }
        if (neventsPtr + 4 <= out.byteLength) out.setUint32(neventsPtr, n, true);
        return ERRNO_SUCCESS;
      },
    };
  }

  /** runs _start; returns the guest's exit code */
  start(instance: WebAssembly.Instance): number {
    const memory = instance.exports['memory'];
    if (memory instanceof WebAssembly.Memory) this.memory = memory;
    return this.wasi.start(instance) ?? 0;
  }
}
