// Messages between the main thread (Runtime) and the guest's worker.
import type { BackendChoice, KernelPathChoice } from '../select/backend.js';
import type { ValidatedObject } from '../select/facts.js';
import type { Report } from '../probe/types.js';
import type { Policy } from '../policy/policy.js';
import type { HostCallRequest } from './hostcall.js';

export interface WorkerInput {
  bytes: Uint8Array;
  args: string[];
  env: Record<string, string>;
  preopens: Record<string, string>;
  objectName: string;
  verbose: boolean;
  /** the run's policy (plain data: it crosses to the worker by structured clone) */
  policy: Policy;
  /** features the prober's report should say are absent (--assume-missing) */
  assumeMissing: string[];
  wrapperModule: string;
  callbackExport: string;
  backend: BackendChoice;
  /** the kernel backend's native part: the addon, libbpf through FFI, or auto (the addon when built) */
  libbpf?: KernelPathChoice;
  /** vmlinux BTF for libbpf's CO-RE (btf_custom_path) when the kernel has none (BTFHub) */
  btfCustomPath?: string;
  /** the module, compiled by the main thread while this thread started (absent: compile `bytes` here) */
  module?: WebAssembly.Module;
  /** eBPF objects embedded in `bytes` that the main thread validated while this thread started, with their facts */
  validated?: ValidatedObject[];
  /** the prober's report, read by the main thread while this thread started (absent: read it here) */
  report?: Report;
  /** StopSignal's shared flag */
  stop: SharedArrayBuffer;
  /**
   * The processes the run traces with the uprobe agent: a command it launched (./launch.ts; it waits
   * before its main until the guest first polls or sleeps, or ends, so that every attach is in place from
   * its first instruction) and processes it joined (--pid). Each: this process's end of the agent's control
   * channel (an fd both threads share; the guest's thread closes it) and the pid.
   */
  traced?: Array<{ fd: number; pid: number; launched: boolean }>;
  /** the main thread's time origin, for the start-up trace (trace.ts) */
  origin?: number;
  /** the guest's whole stdin (fd 0), then end of file; absent: the host process's fd 0 */
  stdin?: Uint8Array;
  /** the guest's stdout and stderr (and the host's warnings) go to the main thread as 'output' messages instead of fds 1 and 2 */
  captureOutput?: boolean;
  /** PauseGate's shared flag (library API): the guest's WASI and embedder calls wait while it is set */
  pause?: SharedArrayBuffer;
  /** the embedder's host functions (module -> names) and their call channel (hostcall.ts) */
  hostImports?: { names: Record<string, string[]>; channel: SharedArrayBuffer };
}

/** the worker's workerData: the whole input, or (a prestarted worker) only the stop flag, the input following as a message */
export type WorkerData = WorkerInput | { warm: true; stop: SharedArrayBuffer; origin?: number };

export type WorkerMessage =
  | { type: 'wakefd'; fd: number }
  | { type: 'exit'; code: number }
  | { type: 'error'; code: string; message: string }
  | { type: 'output'; fd: 1 | 2; data: Uint8Array }
  | HostCallRequest;
