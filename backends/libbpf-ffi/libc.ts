// The C library calls the FFI kernel path needs beside libbpf (Linux): eventfd, close, poll, sockets,
// interface names, perf_event_open and _exit, declared with koffi on libc.so.6.
import { koffi } from './library.js';
import { declare } from './api.js';

export interface Libc {
  eventfd(initval: number, flags: number): number;
  close(fd: number): number;
  poll(fds: Uint8Array, nfds: number, timeoutMs: number): number;
  read(fd: number, buf: Uint8Array, n: number): number;
  socket(domain: number, type: number, protocol: number): number;
  setsockopt(fd: number, level: number, name: number, value: Uint8Array, len: number): number;
  bind(fd: number, addr: Uint8Array, len: number): number;
  if_nametoindex(name: string): number;
  /** syscall(SYS_perf_event_open, attr, pid, cpu, group_fd, flags) */
  perf_event_open(attr: Uint8Array, pid: number, cpu: number, groupFd: number, flags: number): number;
  _exit(code: number): void;
  vsnprintf(buf: Uint8Array, n: number, fmt: bigint, ap: bigint): number;
  strerror(errno: number): string;
}

let libc: Libc | undefined;

/** The C library's calls (once per thread). */
export function libcApi(): Libc {
  if (libc) return libc;
  const k = koffi();
  const lib = k.load('libc.so.6');
  const out = declare(lib, 'libc.so.6', [
    'int eventfd(unsigned int initval, int flags)',
    'int close(int fd)',
    'int poll(void *fds, unsigned long nfds, int timeout)',
    'long read(int fd, void *buf, size_t n)',
    'int socket(int domain, int type, int protocol)',
    'int setsockopt(int fd, int level, int name, void *value, uint32_t len)',
    'int bind(int fd, void *addr, uint32_t len)',
    'unsigned int if_nametoindex(const char *name)',
    'void _exit(int code)',
    'int vsnprintf(void *buf, size_t n, void *fmt, void *ap)',
    'const char *strerror(int errnum)',
  ]);
  // perf_event_open has no libc wrapper: syscall(2) with the architecture's number
  const nr = process.arch === 'arm64' ? 241 : 298;
  const syscall = lib.func('long syscall(long nr, ...)') as (...args: unknown[]) => number;
  out.perf_event_open = (attr: Uint8Array, pid: number, cpu: number, groupFd: number, flags: number): number =>
    Number(syscall(nr, 'void *', attr, 'int', pid, 'int', cpu, 'int', groupFd, 'unsigned long', flags));
  libc = out as unknown as Libc;
  return libc;
}

/** errno of the last failed call on this thread */
export function lastErrno(): number {
  return koffi().errno();
}
