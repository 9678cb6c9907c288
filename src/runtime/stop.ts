// The stop request shared between the main thread (signal handlers) and the guest's worker: a flag in
// shared memory (wakes sleeps through Atomics) plus an eventfd (wakes blocking polls in native code).
import fs from 'node:fs';

const ONE = Buffer.from([1, 0, 0, 0, 0, 0, 0, 0]);

export class StopSignal {
  private readonly flag: Int32Array;

  constructor(readonly shared: SharedArrayBuffer = new SharedArrayBuffer(4)) {
    this.flag = new Int32Array(shared);
  }

  /** the signal number that stopped the run, or 0 */
  get stopped(): number {
    return Atomics.load(this.flag, 0);
  }

  /** main thread: request a stop; wakes a sleeping guest at once, and a polling one through wakeFd */
  request(signal: number, wakeFd: number): void {
    Atomics.store(this.flag, 0, signal || 1);
    Atomics.notify(this.flag, 0);
    if (wakeFd >= 0) StopSignal.wake(wakeFd);
  }

  static wake(wakeFd: number): void {
    try {
      fs.writeSync(wakeFd, ONE);
    } catch {
      // the worker already closed it: nothing is blocked on it
    }
  }

  /** worker: sleep up to ms; returns false when woken by a stop request */
  sleep(ms: number): boolean {
    if (ms <= 0) return this.stopped === 0;
    return Atomics.wait(this.flag, 0, 0, ms) === 'timed-out';
  }
}
