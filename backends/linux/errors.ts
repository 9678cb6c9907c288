// Turns the native addon's errors (Error + errno/code/op/log) into BackendError with a hint.
import { BackendError } from '../../src/errors.js';
import type { NativeErrorFields } from './native.js';
import { ERRNO } from '../../src/kernel/uapi.js';

export function isNativeError(err: unknown): err is Error & NativeErrorFields {
  return err instanceof Error && typeof (err as Partial<NativeErrorFields>).errno === 'number';
}

// libbpf's own error numbers (LIBBPF_ERRNO__*), which strerror does not know
const LIBBPF_ERRORS: Record<number, string> = {
  4000: 'something wrong in libelf',
  4001: 'not a valid eBPF ELF object',
  4002: "the 'version' section is invalid",
  4003: 'the object was built for the other byte order',
  4004: 'internal libbpf error',
  4005: 'relocation failed',
  4006: 'load failed',
  4007: 'the kernel verifier blocked the program',
  4008: 'the program is too big',
  4009: 'incorrect kernel version',
  4010: 'the kernel does not support this program type',
};

/** the kernel-internal ENOTSUPP (include/linux/errno.h), which bpf() returns but no userspace libc knows */
const KERNEL_ENOTSUPP = ERRNO.ENOTSUPP;
const { EOPNOTSUPP } = ERRNO;

/** errno as a guest may see it: kernel-internal ENOTSUPP becomes EOPNOTSUPP (native/src/guesterrno.h) */
export function guestErrno(errno: number): number {
  return errno === KERNEL_ENOTSUPP ? EOPNOTSUPP : errno;
}

/** words of a libbpf line that gives a failure's cause */
const CAUSE = /fail|error|invalid|cannot|can't|not found|unknown|no such|refus|unsupported|missing|not supported|mismatch/i;

/**
 * The line of libbpf's log (captured during the failed call) that says why, without its "libbpf: " prefix:
 * the most specific one (a symbol not found, a section missing), not a restatement of the errno.
 */
export function logCause(log: string | undefined, errnoText: string): string | undefined {
  if (!log) return undefined;
  const lines = log.split('\n').map((l) => l.trim()).filter((l) => l.startsWith('libbpf: ') && CAUSE.test(l)).map((l) => l.slice('libbpf: '.length));
  // "prog 'x': failed to attach to cgroup: Bad file descriptor" adds nothing to the errno already said
  const useful = lines.filter((l) => !l.endsWith(errnoText));
  return useful.length ? useful[useful.length - 1] : undefined;
}

export function toBackendError(err: unknown, what: string, hint?: (errno: number) => string | undefined): BackendError {
  if (err instanceof BackendError) return err;
  if (isNativeError(err)) {
    const libbpf = LIBBPF_ERRORS[err.errno];
    let message = libbpf ? `${err.op}: ${libbpf}` : err.message;
    const cause = logCause(err.log, message.replace(/ \([A-Z0-9]+\)$/, '').split(': ').pop() ?? '');
    if (cause && !message.includes(cause)) message += `: ${cause}`;
    // guests get a kernel errno: libbpf's private numbers become EINVAL
    return new BackendError(`${what}: ${message}`, libbpf ? 22 : guestErrno(err.errno), err.log ?? '', hint?.(err.errno), { cause: err });
  }
  return new BackendError(`${what}: ${err instanceof Error ? err.message : String(err)}`, ERRNO.EINVAL, '', undefined, { cause: err });
}

/** runs a native call, converting its failure */
export function nativeCall<T>(fn: () => T, what: string, hint?: (errno: number) => string | undefined): T {
  try {
    return fn();
  } catch (err) {
    throw toBackendError(err, what, hint);
  }
}
