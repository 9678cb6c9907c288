// A running example app (Wasm under wasm-bpf, or its native twin): its output collected as it
// streams, waits for lines, and Ctrl-C. Shared by the tap tests and the compatibility matrix, so
// both judge an app by the same lines in the same way.
import type { ChildProcess } from 'node:child_process';

const running = new Set<ChildProcess>();
/** every wait is this many times longer (a qemu guest under software emulation is ~30x slower) */
const SCALE = Math.max(1, Number(process.env['WASM_BPF_TIME_SCALE'] ?? '1') || 1);
// a failed check must not leave an app (and its kernel objects) behind
process.on('exit', () => {
  for (const c of running) c.kill('SIGKILL');
});

export interface Exit {
  code: number | null;
  signal: NodeJS.Signals | null;
}

export class Running {
  stdout = '';
  stderr = '';
  exited: Promise<Exit>;
  constructor(readonly child: ChildProcess) {
    child.stdout?.setEncoding('utf8').on('data', (d: string) => (this.stdout += d));
    child.stderr?.setEncoding('utf8').on('data', (d: string) => (this.stderr += d));
    running.add(child);
    this.exited = new Promise((resolve) => {
      child.on('error', (e) => {
        this.stderr += `${e.message}\n`;
        running.delete(child);
        resolve({ code: 127, signal: null });
      });
      child.on('close', (code, signal) => {
        running.delete(child);
        resolve({ code, signal });
      });
    });
  }
  get done(): boolean {
    return this.child.exitCode !== null || this.child.signalCode !== null;
  }
  /** resolves with the first stdout line matching re; rejects on timeout or exit */
  async waitFor(re: RegExp, ms = 20_000): Promise<string> {
    const deadline = Date.now() + ms * SCALE;
    for (;;) {
      const line = this.stdout.split('\n').find((l) => re.test(l));
      if (line !== undefined) return line;
      if (this.done) {
        throw new Error(`process exited (${this.child.exitCode ?? this.child.signalCode}) before ${re}\nstdout:\n${this.stdout}\nstderr:\n${this.stderr}`);
      }
      if (Date.now() > deadline) throw new Error(`timed out waiting for ${re}\nstdout:\n${this.stdout}\nstderr:\n${this.stderr}`);
      await sleep(20);
    }
  }
  lines(re: RegExp): string[] {
    return this.stdout.split('\n').filter((l) => re.test(l));
  }
  /** a signal (SIGINT: Ctrl-C), then wait for exit */
  async interrupt(signal: NodeJS.Signals = 'SIGINT'): Promise<Exit & { ms: number }> {
    const t0 = Date.now();
    if (!this.done) this.child.kill(signal);
    const r = await this.exited;
    return { ...r, ms: Date.now() - t0 };
  }
}

export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

/** runs fn (which causes events) repeatedly until the app printed a line matching re */
export async function until(run: Running, re: RegExp, fn: () => void | Promise<void>, ms = 15_000): Promise<string> {
  const deadline = Date.now() + ms * SCALE;
  for (;;) {
    const hit = run.lines(re)[0];
    if (hit) return hit;
    if (Date.now() > deadline || run.done) {
      throw new Error(`no line matching ${re}\nstdout:\n${run.stdout.slice(-3000)}\nstderr:\n${run.stderr.slice(-5000)}`);
    }
    await fn();
    await sleep(50);
  }
}
