// Error classes shared by every layer. Each carries a stable code; kernel-facing ones carry the errno
// and the libbpf/verifier log behind them.

export type ErrorCode =
  | 'USAGE'
  | 'WASM_MALFORMED'
  | 'WASM_IMPORT'
  | 'WASM_EXPORT'
  | 'GUEST_TRAP'
  | 'BACKEND'
  | 'UNSUPPORTED'
  | 'NOT_FOUND'
  | 'PERMISSION'
  | 'POLICY'
  | 'INTERRUPTED';

export class WasmBpfError extends Error {
  readonly code: ErrorCode;
  constructor(code: ErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'WasmBpfError';
    this.code = code;
  }
}

/** A kernel/libbpf operation failed. */
export class BackendError extends WasmBpfError {
  /** positive errno */
  readonly errno: number;
  /** libbpf's log of the failing call (the verifier log for a load failure) */
  readonly log: string;
  /** a sentence telling the user what would make it work, when we know */
  readonly hint: string | undefined;
  constructor(message: string, errno: number, log = '', hint?: string, options?: { cause?: unknown; code?: ErrorCode }) {
    super(options?.code ?? 'BACKEND', message, options);
    this.name = 'BackendError';
    this.errno = errno;
    this.log = log;
    this.hint = hint;
  }
}

/** The guest module is not something we can run (malformed, wrong imports/exports). */
export class ModuleError extends WasmBpfError {
  constructor(code: 'WASM_MALFORMED' | 'WASM_IMPORT' | 'WASM_EXPORT', message: string, options?: { cause?: unknown }) {
    super(code, message, options);
    this.name = 'ModuleError';
  }
}

/** Thrown through the guest's stack to unwind it when the run is stopped (Ctrl-C, SIGTERM). */
export class Interrupted extends WasmBpfError {
  constructor() {
    super('INTERRUPTED', 'interrupted');
    this.name = 'Interrupted';
  }
}

export function errorMessage(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
