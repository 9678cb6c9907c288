// libbpf's failures as the errors the kernel backend already understands (backends/linux/errors.ts's
// NativeErrorFields: errno, code, op, log): a negative return or NULL + errno becomes one Error.
import util from 'node:util';
import type { NativeErrorFields } from '../linux/native.js';
import { lastErrno, libcApi } from './libc.js';

const EIO = 5;

/** 'ENOENT' and 'No such file or directory' for a positive errno (libbpf's 4000+ and kernel-only ones by number) */
export function errnoText(errno: number): { name: string; desc: string } {
  if (errno === 524) return { name: 'ENOTSUPP', desc: 'Operation is not supported' };
  const e = util.getSystemErrorMap().get(-errno);
  // the C library's text, as the addon's messages (Node's own is lowercase)
  if (e) return { name: e[0], desc: libcApi().strerror(errno) };
  return { name: `E${errno}`, desc: `error ${errno}` };
}

/** the Error a failed libbpf call becomes (the addon's format: "op: detail: description (NAME)") */
export function ffiError(op: string, err: number, detail: string, log = ''): Error & NativeErrorFields {
  let errno = Math.abs(err);
  if (errno === 0) errno = EIO;
  const { name, desc } = errnoText(errno);
  const e = new Error(`${op}: ${detail ? `${detail}: ` : ''}${desc} (${name})`) as Error & NativeErrorFields;
  e.errno = errno;
  e.code = name;
  e.op = op;
  e.log = log;
  return e;
}

/** a call returning an int: negative = -errno (libbpf 1.x), else the value */
export function checkInt(ret: number, op: string, detail: string, log?: () => string): number {
  if (ret < 0) throw ffiError(op, ret, detail, log?.() ?? '');
  return ret;
}

/** a C library call returning -1 with errno */
export function checkSys(ret: number, op: string, detail = ''): number {
  if (ret < 0) throw ffiError(op, lastErrno() || EIO, detail);
  return ret;
}

/** a call returning a pointer: NULL with errno set (libbpf 1.x's libbpf_get_error contract) */
export function checkPtr<T extends bigint | null>(ret: T, op: string, detail: string, log?: () => string): bigint {
  if (ret === null || ret === 0n) throw ffiError(op, lastErrno() || EIO, detail, log?.() ?? '');
  return ret;
}
