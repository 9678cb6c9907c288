// Turns the native addon's errors (Error + errno/code/op/log) into BackendError with a hint.
import { BackendError } from '../../src/errors.js';
import type { NativeErrorFields } from './native.js';

export function isNativeError(err: unknown): err is Error & NativeErrorFields {
  return err instanceof Error && typeof (err as Partial<NativeErrorFields>).errno === 'number';
}

export function toBackendError(err: unknown, what: string, hint?: (errno: number) => string | undefined): BackendError {
  if (err instanceof BackendError) return err;
  if (isNativeError(err)) {
    return new BackendError(`${what}: ${err.message}`, err.errno, err.log ?? '', hint?.(err.errno), { cause: err });
  }
  return new BackendError(`${what}: ${err instanceof Error ? err.message : String(err)}`, 22, '', undefined, { cause: err });
}

/** runs a native call, converting its failure */
export function nativeCall<T>(fn: () => T, what: string, hint?: (errno: number) => string | undefined): T {
  try {
    return fn();
  } catch (err) {
    throw toBackendError(err, what, hint);
  }
}
