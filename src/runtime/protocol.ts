// Messages between the main thread (Runtime) and the guest's worker.
import type { BackendChoice } from '../select/backend.js';

export interface WorkerInput {
  bytes: Uint8Array;
  args: string[];
  env: Record<string, string>;
  preopens: Record<string, string>;
  objectName: string;
  verbose: boolean;
  allowCgroup: string[];
  wrapperModule: string;
  callbackExport: string;
  backend: BackendChoice;
  /** vmlinux BTF for libbpf's CO-RE (btf_custom_path) when the kernel has none (BTFHub) */
  btfCustomPath?: string;
  /** StopSignal's shared flag */
  stop: SharedArrayBuffer;
}

export type WorkerMessage =
  | { type: 'wakefd'; fd: number }
  | { type: 'exit'; code: number }
  | { type: 'error'; code: string; message: string };
