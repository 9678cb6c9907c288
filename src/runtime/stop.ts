// The stop request shared between the main thread (signal handlers) and the guest's worker: a flag in
// shared memory (wakes sleeps through Atomics) plus an eventfd (wakes blocking polls in native code).
import fs from 'node:fs';

const ONE = Buffer.from([1, 0, 0, 0, 0, 0, 0, 0]);
/** set beside the signal number: polls deliver the records already produced before they end the run */
const DRAIN = 0x100;

export class StopSignal {
  private readonly flag: Int32Array;

  constructor(readonly shared: SharedArrayBuffer = new SharedArrayBuffer(4)) {
    this.flag = new Int32Array(shared);
  }

  /** the signal number that stopped the run, or 0 */
  get stopped(): number {
    return Atomics.load(this.flag, 0) & 0xff;
  }

  /** the stop asks polls to deliver what is already produced first (request's drain) */
  get draining(): boolean {
    return (Atomics.load(this.flag, 0) & DRAIN) !== 0;
  }

  /**
   * main thread: request a stop; wakes a sleeping guest at once, and a polling one through wakeFd. With
   * drain, polls deliver the records already produced before they end the run (a launched command ended).
   */
  request(signal: number, wakeFd: number, drain = false): void {
    if (drain && Atomics.load(this.flag, 0) !== 0) return; // already stopping
    Atomics.store(this.flag, 0, (signal & 0xff || 1) | (drain ? DRAIN : 0));
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
