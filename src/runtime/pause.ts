// Pause and resume of a running guest (the library API's handle): a flag in shared memory the main thread
// sets; the guest's thread stops at its next WASI or embedder call until it is cleared or the run is stopped.
import { Interrupted } from '../errors.js';
import type { StopSignal } from './stop.js';

export class PauseGate {
  private readonly flag: Int32Array;

  constructor(readonly shared: SharedArrayBuffer = new SharedArrayBuffer(4)) {
    this.flag = new Int32Array(shared);
  }

  get paused(): boolean {
    return Atomics.load(this.flag, 0) !== 0;
  }

  /** main thread */
  pause(): void {
    Atomics.store(this.flag, 0, 1);
  }

  /** main thread: also called by a stop request, so that a paused guest unwinds */
  resume(): void {
    Atomics.store(this.flag, 0, 0);
    Atomics.notify(this.flag, 0);
  }

  /** guest's thread, on entry to a host call: waits while paused; a stop request unwinds the guest */
  checkpoint(stop: StopSignal): void {
    while (Atomics.load(this.flag, 0) !== 0) {
      if (stop.stopped) throw new Interrupted();
      Atomics.wait(this.flag, 0, 1);
      if (stop.stopped) throw new Interrupted();
    }
  }

  /** wraps each function of an import object with the checkpoint */
  wrap<F extends (...args: never[]) => unknown>(fns: Record<string, F>, stop: StopSignal): Record<string, F> {
    const out: Record<string, F> = {};
    for (const [name, f] of Object.entries(fns)) {
      out[name] = ((...args: never[]) => {
        this.checkpoint(stop);
        return f(...args);
      }) as F;
    }
    return out;
  }
}
