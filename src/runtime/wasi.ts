// WASI preview1 for guests: node:wasi, with host-side changes that matter for eBPF tools and for a
// sandbox:
// - stdout/stderr are reported as character devices, so the guest's libc line-buffers them and no
//   line is lost when the run is stopped while output goes to a pipe or a file; fds 0-2 are the
//   host's and are treated as character devices: no seek, no positional I/O, no truncation, no flag,
//   time or number change, and fd_close only hides them from the guest;
// - sleeps (poll_oneoff on clocks only) wait on the stop signal, so Ctrl-C interrupts them at once;
// - a read of stdin or a write to stdout/stderr that would block (a non-blocking pipe) waits instead
//   of failing with EAGAIN, and still ends at once on Ctrl-C;
// - every path operation is checked against symlinks leading out of the preopened directories
//   (wasi-paths.ts);
// - proc_exit unwinds the guest with its code, also from a start function;
// - every pointer our wrappers read or write is an unsigned 32-bit offset checked against the memory
//   (EFAULT to the guest, never a host exception).
import { createRequire } from 'node:module';
import type { WASI } from 'node:wasi';
import { Interrupted } from '../errors.js';
import type { StopSignal } from './stop.js';
import { PathConfinement } from './wasi-paths.js';

export interface WasiOptions {
  args: string[];
  env: Record<string, string>;
  /** guest path -> host path */
  preopens: Record<string, string>;
  stop: StopSignal;
  /** called before the guest's first sleep (a launched command waits until the app is set up) */
  beforeSleep?: () => void;
  /** the guest's writes to fds 1 and 2 go here instead of the host's fds (the library API's streams) */
  output?: (fd: 1 | 2, data: Uint8Array) => void;
  /** the guest's whole stdin instead of the host's fd 0 (the library API's `stdin`): read, then end of file */
  input?: Uint8Array;
}

type WasiFn = (...args: Array<number | bigint>) => number;

/** thrown through the guest's stack by proc_exit */
export class GuestExit extends Error {
  constructor(readonly code: number) {
    super(`the guest exited with code ${code}`);
    this.name = 'GuestExit';
  }
}

const FILETYPE_CHARACTER_DEVICE = 2;
const RIGHTS_FD_SEEK = 1n << 2n;
const RIGHTS_FD_TELL = 1n << 5n;
const EVENTTYPE_CLOCK = 0;
const SUBCLOCKFLAG_ABSTIME = 1;
const LOOKUP_SYMLINK_FOLLOW = 1;
const ERRNO_SUCCESS = 0;
const ERRNO_AGAIN = 6;
const ERRNO_BADF = 8;
const ERRNO_FAULT = 21;
const ERRNO_INVAL = 28;
const ERRNO_SPIPE = 70;
const ERRNO_NOTCAPABLE = 76;
const SUBSCRIPTION_SIZE = 48;
const EVENT_SIZE = 32;
const FDSTAT_SIZE = 24;
const FILESTAT_SIZE = 64;

/** what an fd_* call on one of the host's fds 0-2 gets instead of reaching the host's file */
const STDIO_REFUSED: Record<string, number> = {
  fd_seek: ERRNO_SPIPE,
  fd_tell: ERRNO_SPIPE,
  fd_pread: ERRNO_SPIPE,
  fd_pwrite: ERRNO_SPIPE,
  fd_advise: ERRNO_SPIPE,
  fd_allocate: ERRNO_SPIPE,
  fd_filestat_set_size: ERRNO_INVAL,
  fd_filestat_set_times: ERRNO_NOTCAPABLE,
  fd_fdstat_set_flags: ERRNO_NOTCAPABLE,
  // a socket as stdio (Node's pipe to a child): shutdown would end the stream for the host too
  sock_shutdown: ERRNO_NOTCAPABLE,
};

const isStdio = (fd: number): boolean => fd >= 0 && fd <= 2;

export class GuestWasi {
  readonly wasi: WASI;
  readonly imports: Record<string, WasiFn>;
  private memory: WebAssembly.Memory | undefined;
  /** fds 0-2 the guest closed: hidden from it, still open in the host */
  private readonly stdioClosed = [false, false, false];

  constructor(opts: WasiOptions) {
    // loaded here, not by a static import: node:wasi warns that it is experimental when it loads, and
    // the worker silences that warning first (quiet.ts)
    const { WASI: Wasi } = createRequire(import.meta.url)('node:wasi') as typeof import('node:wasi');
    this.wasi = new Wasi({
      version: 'preview1',
      args: opts.args,
      env: opts.env,
      preopens: opts.preopens,
      returnOnExit: true,
    });
    const base = this.wasi.wasiImport as Record<string, WasiFn>;
    const stop = opts.stop;
    const paths = new PathConfinement(opts.preopens);
    /** the memory, when [ptr, ptr + len) lies in it (both taken as u32, no wrap) */
    const span = (ptr: number, len: number): DataView | undefined => {
      const mem = this.memory;
      if (!mem) return undefined;
      const p = ptr >>> 0;
      const n = len >>> 0;
      return p + n <= mem.buffer.byteLength ? new DataView(mem.buffer) : undefined;
    };
    const str = (ptr: number, len: number): string | undefined => {
      if (!span(ptr, len)) return undefined;
      return Buffer.from(this.memory!.buffer, ptr >>> 0, len >>> 0).toString('latin1');
    };

    const wrapped: Record<string, WasiFn> = {};
    const fn = (name: string): WasiFn => base[name]!;

    // -- fds 0-2 --------------------------------------------------------------------------------
    for (const [name, errno] of Object.entries(STDIO_REFUSED)) {
      const f = fn(name);
      wrapped[name] = (fd, ...rest) => (isStdio(fd as number) ? errno : f(fd, ...rest));
    }
    const fdClose = fn('fd_close');
    wrapped['fd_close'] = (fd) => {
      const n = fd as number;
      if (isStdio(n)) {
        if (this.stdioClosed[n]) return ERRNO_BADF;
        this.stdioClosed[n] = true;
        return ERRNO_SUCCESS;
      }
      const r = fdClose(n);
      if (r === ERRNO_SUCCESS) paths.closed(n);
      return r;
    };
    const fdRenumber = fn('fd_renumber');
    wrapped['fd_renumber'] = (from, to) => {
      if (isStdio(from as number) || isStdio(to as number)) return ERRNO_NOTCAPABLE;
      const r = fdRenumber(from, to);
      if (r === ERRNO_SUCCESS) paths.renumbered(from as number, to as number);
      return r;
    };
    const fdFdstatGet = fn('fd_fdstat_get');
    wrapped['fd_fdstat_get'] = (fd, ptr) => {
      const p = (ptr as number) >>> 0;
      if (this.memory && !span(p, FDSTAT_SIZE)) return ERRNO_FAULT;
      const r = fdFdstatGet(fd, ptr);
      if (r === ERRNO_SUCCESS && (fd === 1 || fd === 2)) {
        const dv = span(p, FDSTAT_SIZE);
        if (!dv) return ERRNO_FAULT;
        dv.setUint8(p, FILETYPE_CHARACTER_DEVICE);
        const rights = dv.getBigUint64(p + 8, true);
        dv.setBigUint64(p + 8, rights & ~(RIGHTS_FD_SEEK | RIGHTS_FD_TELL), true);
      }
      return r;
    };
    // a non-blocking pipe as stdin, stdout or stderr (Node makes its pipes to a child non-blocking, and
    // any process sharing the pipe can): the guest's read or write waits, as on a blocking pipe,
    // instead of failing with EAGAIN (a lost line), in slices that a stop request ends at once
    const waiting = (name: 'fd_read' | 'fd_write', fds: number[]): WasiFn => {
      const f = fn(name);
      return (fd, iovs, iovsLen, done) => {
        let r = f(fd, iovs, iovsLen, done);
        for (let ms = 1; r === ERRNO_AGAIN && fds.includes(fd as number); ms = Math.min(ms * 2, 50)) {
          if (stop.stopped || !stop.sleep(ms)) throw new Interrupted();
          r = f(fd, iovs, iovsLen, done);
        }
        return r;
      };
    };
    wrapped['fd_read'] = waiting('fd_read', [0]);
    wrapped['fd_write'] = waiting('fd_write', [1, 2]);
    const output = opts.output;
    if (output) {
      const write = wrapped['fd_write'];
      wrapped['fd_write'] = (fd, iovs, iovsLen, done) => {
        const n = fd as number;
        if ((n !== 1 && n !== 2) || this.stdioClosed[n]) return write(fd, iovs, iovsLen, done);
        const list = span(iovs as number, ((iovsLen as number) >>> 0) * 8);
        if (!list || !span(done as number, 4)) return ERRNO_FAULT;
        const parts: Uint8Array[] = [];
        for (let i = 0; i < (iovsLen as number) >>> 0; i++) {
          const at = ((iovs as number) >>> 0) + i * 8;
          const ptr = list.getUint32(at, true);
          const len = list.getUint32(at + 4, true);
          if (!span(ptr, len)) return ERRNO_FAULT;
          parts.push(new Uint8Array(this.memory!.buffer, ptr, len));
        }
        const data = Buffer.concat(parts);
        if (data.length) output(n, data);
        new DataView(this.memory!.buffer).setUint32((done as number) >>> 0, data.length, true);
        return ERRNO_SUCCESS;
      };
    }
    const input = opts.input;
    if (input) {
      let at = 0;
      const read = wrapped['fd_read'];
      wrapped['fd_read'] = (fd, iovs, iovsLen, done) => {
        if (fd !== 0 || this.stdioClosed[0]) return read(fd, iovs, iovsLen, done);
        const list = span(iovs as number, ((iovsLen as number) >>> 0) * 8);
        if (!list || !span(done as number, 4)) return ERRNO_FAULT;
        let n = 0;
        for (let i = 0; i < (iovsLen as number) >>> 0 && at < input.length; i++) {
          const entry = ((iovs as number) >>> 0) + i * 8;
          const ptr = list.getUint32(entry, true);
          const len = list.getUint32(entry + 4, true);
          if (!span(ptr, len)) return ERRNO_FAULT;
          const part = input.subarray(at, at + len);
          new Uint8Array(this.memory!.buffer, ptr, part.length).set(part);
          at += part.length;
          n += part.length;
        }
        new DataView(this.memory!.buffer).setUint32((done as number) >>> 0, n, true);
        return ERRNO_SUCCESS;
      };
    }
    const fdFilestatGet = fn('fd_filestat_get');
    wrapped['fd_filestat_get'] = (fd, ptr) => {
      const r = fdFilestatGet(fd, ptr);
      // the filetype, as fd_fdstat_get reports it
      const dv = span(ptr as number, FILESTAT_SIZE);
      if (r === ERRNO_SUCCESS && (fd === 1 || fd === 2) && dv) dv.setUint8(((ptr as number) >>> 0) + 16, FILETYPE_CHARACTER_DEVICE);
      return r;
    };

    // -- paths ----------------------------------------------------------------------------------
    /** the checked host path of (dirFd, path), or a WASI errno */
    const resolve = (dirFd: number | bigint, ptr: number | bigint, len: number | bigint, lookupFlags: number, kernelFollowsLast: boolean): number | string | undefined => {
      const s = str(ptr as number, len as number);
      if (s === undefined) return this.memory ? ERRNO_FAULT : undefined;
      return paths.check(dirFd as number, s, (lookupFlags & LOOKUP_SYMLINK_FOLLOW) !== 0, kernelFollowsLast);
    };
    const denied = (r: number | string | undefined): r is number => typeof r === 'number';

    const pathOpen = fn('path_open');
    wrapped['path_open'] = (dirFd, dirFlags, ptr, len, oflags, base, inheriting, fdflags, fdOut) => {
      // the kernel follows a final symlink here whatever the lookup flags say (no O_NOFOLLOW)
      const host = resolve(dirFd, ptr, len, dirFlags as number, true);
      if (denied(host)) return host;
      const r = pathOpen(dirFd, dirFlags, ptr, len, oflags, base, inheriting, fdflags, fdOut);
      if (r === ERRNO_SUCCESS && typeof host === 'string') {
        const dv = span(fdOut as number, 4);
        if (dv) paths.opened(dv.getUint32((fdOut as number) >>> 0, true), dirFd as number, host);
      }
      return r;
    };
    // operations on one path: [argument index of the fd, of the lookup flags (-1: none), of the path;
    // whether the kernel follows a final symlink]
    const onePath: Record<string, [number, number, number, boolean]> = {
      path_filestat_get: [0, 1, 2, true],
      path_filestat_set_times: [0, 1, 2, true],
      path_create_directory: [0, -1, 1, false],
      path_remove_directory: [0, -1, 1, false],
      path_unlink_file: [0, -1, 1, false],
      path_readlink: [0, -1, 1, false],
    };
    for (const [name, [fdAt, flagsAt, pathAt, follows]] of Object.entries(onePath)) {
      const f = fn(name);
      wrapped[name] = (...a) => {
        const r = resolve(a[fdAt]!, a[pathAt]!, a[pathAt + 1]!, flagsAt >= 0 ? (a[flagsAt] as number) : 0, follows);
        return denied(r) ? r : f(...a);
      };
    }
    const pathRename = fn('path_rename');
    wrapped['path_rename'] = (fd, oldPtr, oldLen, newFd, newPtr, newLen) => {
      const a = resolve(fd, oldPtr, oldLen, 0, false);
      if (denied(a)) return a;
      const b = resolve(newFd, newPtr, newLen, 0, false);
      if (denied(b)) return b;
      return pathRename(fd, oldPtr, oldLen, newFd, newPtr, newLen);
    };
    const pathLink = fn('path_link');
    wrapped['path_link'] = (oldFd, oldFlags, oldPtr, oldLen, newFd, newPtr, newLen) => {
      const a = resolve(oldFd, oldPtr, oldLen, oldFlags as number, false);
      if (denied(a)) return a;
      const b = resolve(newFd, newPtr, newLen, 0, false);
      if (denied(b)) return b;
      return pathLink(oldFd, oldFlags, oldPtr, oldLen, newFd, newPtr, newLen);
    };
    const pathSymlink = fn('path_symlink');
    wrapped['path_symlink'] = (targetPtr, targetLen, fd, newPtr, newLen) => {
      const target = str(targetPtr as number, targetLen as number);
      if (target === undefined && this.memory) return ERRNO_FAULT;
      const at = resolve(fd, newPtr, newLen, 0, false);
      if (denied(at)) return at;
      if (typeof at === 'string' && target !== undefined) {
        const e = paths.checkNewLink(at, fd as number, target);
        if (e) return e;
      }
      return pathSymlink(targetPtr, targetLen, fd, newPtr, newLen);
    };

    // -- sleeps ---------------------------------------------------------------------------------
    const pollOneoff = fn('poll_oneoff');
    wrapped['poll_oneoff'] = (inArg, outArg, nsubsArg, neventsArg) => {
      const inPtr = (inArg as number) >>> 0;
      const outPtr = (outArg as number) >>> 0;
      const nsubs = (nsubsArg as number) >>> 0;
      const neventsPtr = (neventsArg as number) >>> 0;
      if (!this.memory) return pollOneoff(inArg, outArg, nsubsArg, neventsArg);
      if (nsubs === 0) return ERRNO_INVAL;
      const dv = span(inPtr, nsubs * SUBSCRIPTION_SIZE);
      if (!dv || !span(outPtr, nsubs * EVENT_SIZE) || !span(neventsPtr, 4)) return ERRNO_FAULT;
      const deadlines: bigint[] = [];
      const now = process.hrtime.bigint();
      for (let i = 0; i < nsubs; i++) {
        const s = inPtr + i * SUBSCRIPTION_SIZE;
        if (dv.getUint8(s + 8) !== EVENTTYPE_CLOCK) return pollOneoff(inPtr, outPtr, nsubs, neventsPtr);
        const clock = dv.getUint32(s + 16, true);
        let timeout = dv.getBigUint64(s + 24, true);
        if (dv.getUint16(s + 40, true) & SUBCLOCKFLAG_ABSTIME) {
          const clockNow = clock === 0 ? BigInt(Date.now()) * 1_000_000n : now;
          timeout = timeout > clockNow ? timeout - clockNow : 0n;
        }
        deadlines.push(now + timeout);
      }
      opts.beforeSleep?.();
      const first = deadlines.reduce((a, b) => (b < a ? b : a));
      const waitNs = first - now;
      if (stop.stopped || !stop.sleep(Number(waitNs) / 1e6)) throw new Interrupted();
      const after = process.hrtime.bigint();
      // the memory may have been replaced meanwhile (never shrunk): a fresh view, same bounds
      const out = span(outPtr, nsubs * EVENT_SIZE)!;
      let n = 0;
      for (let i = 0; i < nsubs; i++) {
        if (deadlines[i]! > after && deadlines[i] !== first) continue;
        const e = outPtr + n * EVENT_SIZE;
        out.setBigUint64(e, out.getBigUint64(inPtr + i * SUBSCRIPTION_SIZE, true), true);
        out.setUint16(e + 8, ERRNO_SUCCESS, true);
        out.setUint8(e + 10, EVENTTYPE_CLOCK);
        n++;
      }
      out.setUint32(neventsPtr, n, true);
      return ERRNO_SUCCESS;
    };

    // -- exit -----------------------------------------------------------------------------------
    wrapped['proc_exit'] = (code) => {
      throw new GuestExit((code as number) >>> 0);
    };

    // every fd_* or sock_* call on a stdio fd the guest closed: EBADF, as for any closed fd
    const imports: Record<string, WasiFn> = {};
    for (const name of Object.keys(base)) {
      const f = wrapped[name] ?? base[name]!;
      imports[name] =
        (name.startsWith('fd_') || name.startsWith('sock_')) && name !== 'fd_close'
          ? (fd, ...rest) => (isStdio(fd as number) && this.stdioClosed[fd as number] ? ERRNO_BADF : f(fd, ...rest))
          : f;
    }
    this.imports = imports;
  }

  /** runs _start; returns the guest's exit code (u32, as the guest passed it to proc_exit) */
  start(instance: WebAssembly.Instance): number {
    const memory = instance.exports['memory'];
    if (memory instanceof WebAssembly.Memory) this.memory = memory;
    try {
      return this.wasi.start(instance) ?? 0;
    } catch (err) {
      if (err instanceof GuestExit) return err.code;
      throw err;
    }
  }
}
