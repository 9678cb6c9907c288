// The library API's run: one module in its own worker thread (src/runtime/runtime.ts), with its stdout and
// stderr as streams, its exit as a promise, and a handle to pause, resume and terminate it.
import { Readable } from 'node:stream';
import { Runtime, type RunOptions } from '../runtime/runtime.js';

/** RunOptions of the runtime (args, env, preopens, backend, policy, imports, ...), with where output goes */
export interface ModuleOptions extends Omit<RunOptions, 'module' | 'output' | 'pausable' | 'exitWhenStuck'> {
  /** 'pipe' (default): the guest's stdout is the handle's `stdout` stream; 'inherit': this process's fd 1 */
  stdout?: 'pipe' | 'inherit';
  /** 'pipe' (default): the guest's stderr and the runtime's warnings are the handle's `stderr` stream; 'inherit': fd 2 */
  stderr?: 'pipe' | 'inherit';
}

/** A running module. */
export interface RunningModule {
  /** the guest's stdout ('pipe'), ended when the run ends; null with 'inherit' */
  readonly stdout: Readable | null;
  /** the guest's stderr and the runtime's warnings and trap messages ('pipe'); null with 'inherit' */
  readonly stderr: Readable | null;
  /**
   * The guest's exit code: its proc_exit code or main's return, 128 + signal when terminated, 134 when it
   * trapped. Rejects with a WasmBpfError (code and message) when the module cannot run.
   */
  readonly exit: Promise<number>;
  /** stop the guest at its next WASI call (output, sleep, clock, files) or embedder function until resume() */
  pause(): void;
  resume(): void;
  readonly paused: boolean;
  /**
   * Stop the guest as SIGTERM would (signal 15 unless given): it unwinds at once from a ring/perf buffer
   * poll, a sleep, a pause or a wait for an embedder's function; its links and objects are closed. A guest
   * that does not yield has its thread terminated after `graceMs` (default 900 ms). Resolves as `exit`.
   */
  terminate(signal?: number): Promise<number>;
}

/**
 * Runs a module (its bytes, or a path to a .wasm file). The guest's signal handling is off unless
 * `handleSignals: true`: this process's SIGINT and SIGTERM stay the embedder's.
 */
export function runModule(module: Uint8Array | string, options: ModuleOptions = {}): RunningModule {
  const { stdout: out = 'pipe', stderr: err = 'pipe', ...rest } = options;
  const streams = { 1: out === 'pipe' ? new Readable({ read() {} }) : null, 2: err === 'pipe' ? new Readable({ read() {} }) : null };
  const runtime = new Runtime();
  const opts: RunOptions = { ...rest, module, pausable: true, handleSignals: options.handleSignals ?? false };
  if (streams[1] || streams[2]) {
    opts.output = (fd, data) => {
      const s = streams[fd];
      if (s) s.push(data);
      else (fd === 1 ? process.stdout : process.stderr).write(data);
    };
  }
  const exit = runtime.run(opts).then((r) => r.exitCode);
  // the streams end after the last output (the worker's messages arrive in order, the exit last)
  const end = (): void => {
    streams[1]?.push(null);
    streams[2]?.push(null);
  };
  exit.then(end, end);
  return {
    stdout: streams[1],
    stderr: streams[2],
    exit,
    pause: () => runtime.pause(),
    resume: () => runtime.resume(),
    get paused() {
      return runtime.paused;
    },
    terminate: (signal = 15) => {
      runtime.terminate(signal);
      return exit;
    },
  };
}
