// The system calls of the kernel backend's contract that are not libbpf (Linux): eventfds, packet
// sockets, perf events, interface names, closing fds and ending the process, through the C library.
import { libcApi } from './libc.js';
import { libbpfApi } from './api.js';
import { checkSys, checkInt, ffiError } from './errors.js';
import { lastErrno } from './libc.js';
import { ERRNO } from '../../src/kernel/uapi.js';

const { EINTR } = ERRNO;

const EFD_CLOEXEC = 0o2000000;
const EFD_NONBLOCK = 0o4000;
const AF_PACKET = 17;
const SOCK_RAW = 3;
const SOCK_NONBLOCK = 0o4000;
const SOCK_CLOEXEC = 0o2000000;
/** htons(ETH_P_ALL) */
const ETH_P_ALL_BE = 0x0300;
const PERF_FLAG_FD_CLOEXEC = 8;
/** PERF_ATTR_SIZE_VER7: every field this builds is inside it */
const PERF_ATTR_SIZE = 128;
/** perf_event_attr's bit for sample_freq instead of sample_period */
const PERF_ATTR_FREQ = 1n << 10n;

export function eventFd(): number {
  return checkSys(libcApi().eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK), 'eventfd');
}

export function closeFd(fd: number): void {
  if (libcApi().close(fd) < 0) {
    const err = lastErrno();
    if (err !== EINTR) throw ffiError('close', err, `fd ${fd}`);
  }
}

export function exitNow(code: number): never {
  libcApi()._exit(code & 0xff);
  throw new Error('unreachable');
}

export function numPossibleCpus(): number {
  return checkInt(libbpfApi().api.libbpf_num_possible_cpus(), 'libbpf_num_possible_cpus', '');
}

export function ifIndex(name: string): number {
  return libcApi().if_nametoindex(name);
}

export function perfEventOpen(type: number, config: number, freq: boolean, periodOrFreq: number, pid: number, cpu: number): number {
  const attr = new Uint8Array(PERF_ATTR_SIZE);
  const dv = new DataView(attr.buffer);
  dv.setUint32(0, type >>> 0, true);
  dv.setUint32(4, PERF_ATTR_SIZE, true);
  dv.setBigUint64(8, BigInt(config), true);
  dv.setBigUint64(16, BigInt(periodOrFreq), true);
  if (freq) dv.setBigUint64(40, PERF_ATTR_FREQ, true);
  const fd = libcApi().perf_event_open(attr, pid, cpu, -1, PERF_FLAG_FD_CLOEXEC);
  return checkSys(fd, 'perf_event_open');
}

export function openPacketSocket(ifindex: number): number {
  const libc = libcApi();
  const fd = checkSys(libc.socket(AF_PACKET, SOCK_RAW | SOCK_NONBLOCK | SOCK_CLOEXEC, ETH_P_ALL_BE), 'socket(AF_PACKET)');
  if (ifindex > 0) {
    // struct sockaddr_ll: family, protocol (big-endian), ifindex, then zeros
    const sll = new Uint8Array(20);
    const dv = new DataView(sll.buffer);
    dv.setUint16(0, AF_PACKET, true);
    dv.setUint16(2, ETH_P_ALL_BE, true);
    dv.setInt32(4, ifindex, true);
    if (libc.bind(fd, sll, sll.length) < 0) {
      const err = lastErrno();
      libc.close(fd);
      throw ffiError('bind(AF_PACKET)', err, `ifindex ${ifindex}`);
    }
  }
  return fd;
}
