// How a program is attached on Linux: by its section (libbpf auto-attach), or to an explicit target
// the guest named (interface, cgroup directory inside the allow-list, binary:function, perf event).
import fs from 'node:fs';
import os from 'node:os';
import { BackendError } from '../../src/errors.js';
import type { KernelLib } from './native.js';
import { nativeCall } from './errors.js';
import type { Policy } from '../../src/policy/policy.js';
import { allowCgroup, allowInterface, allowUprobe } from '../../src/policy/enforce.js';
import { parseUprobeSpec, sectionBinary } from '../../src/object/uprobe.js';
import { ERRNO, PERF_COUNT_SW, PERF_TYPE, PROG_TYPE, XDP_FLAGS } from '../../src/kernel/uapi.js';

const CGROUP_TYPES = new Set<number>([
  PROG_TYPE.CGROUP_SKB,
  PROG_TYPE.CGROUP_SOCK,
  PROG_TYPE.SOCK_OPS,
  PROG_TYPE.CGROUP_DEVICE,
  PROG_TYPE.CGROUP_SOCK_ADDR,
  PROG_TYPE.CGROUP_SYSCTL,
  PROG_TYPE.CGROUP_SOCKOPT,
]);

const { ENODEV, EOPNOTSUPP, ENOENT } = ERRNO;
const PERF_TYPE_SOFTWARE = PERF_TYPE.SOFTWARE;
const PERF_COUNT_SW_CPU_CLOCK = PERF_COUNT_SW.CPU_CLOCK;

export interface AttachRequest {
  obj: number;
  program: string;
  section: string;
  type: number;
  target: string | undefined;
  policy: Policy;
  /** a note for the run's log (a fallback taken) */
  warn?: (line: string) => void;
}

/** Returns the link ids created (perf_event programs get one per CPU). Throws BackendError. */
export function attachProgram(native: KernelLib, req: AttachRequest): number[] {
  const { obj, program, type, target } = req;
  const what = `program '${program}' (${req.section})`;
  if (type === PROG_TYPE.XDP || type === PROG_TYPE.SCHED_CLS) {
    if (type === PROG_TYPE.SCHED_CLS) {
      throw new BackendError(`${what}: tc programs are not attachable through wasm_bpf yet`, EOPNOTSUPP);
    }
    if (!target) {
      throw new BackendError(`${what} needs a network interface`, EOPNOTSUPP, '', 'call bpf_program__set_attach_target(prog, 0, "IFNAME") before attaching');
    }
    allowInterface(req.policy, target, what);
    return attachXdp(native, req, interfaceIndex(native, target, what), what);
  }
  if (CGROUP_TYPES.has(type)) {
    if (!target) {
      throw new BackendError(`${what} needs a cgroup directory`, EOPNOTSUPP, '', 'call bpf_program__set_attach_target(prog, 0, "/sys/fs/cgroup/...") before attaching');
    }
    const dir = allowCgroup(req.policy, target, what);
    requireCgroup2(dir, what);
    const fd = fs.openSync(dir, fs.constants.O_RDONLY | fs.constants.O_DIRECTORY);
    try {
      return [nativeCall(() => native.attachCgroup(obj, program, fd), what)];
    } finally {
      fs.closeSync(fd);
    }
  }
  if (type === PROG_TYPE.SOCKET_FILTER) {
    allowInterface(req.policy, target, what);
    const ifindex = target ? interfaceIndex(native, target, what) : 0;
    const sock = nativeCall(() => native.openPacketSocket(ifindex), `${what}: opening a packet socket`);
    try {
      return [nativeCall(() => native.attachSocket(obj, program, sock), what)];
    } catch (err) {
      native.closeFd(sock);
      throw err;
    }
  }
  if (type === PROG_TYPE.PERF_EVENT) {
    return attachPerfEvent(native, obj, program, target, what);
  }
  if (type === PROG_TYPE.KPROBE && /^u(ret)?probe/.test(req.section) && (target || (req.policy.uprobes !== null && sectionBinary(req.section)))) {
    // an explicit target, or (under a policy that names binaries) the section's own: the binary that
    // was checked is the one probed
    const spec = target ?? req.section.slice(req.section.indexOf('/') + 1);
    const parsed = parseUprobeSpec(spec);
    if (!parsed) throw new BackendError(`${what}: uprobe target '${spec}' is not BINARY:FUNCTION[+OFFSET]`, ERRNO.EINVAL);
    const binary = allowUprobe(req.policy, parsed.binary, what);
    if (!fs.existsSync(binary)) throw new BackendError(`${what}: uprobe target binary ${binary} does not exist`, ENOENT);
    const retprobe = req.section.startsWith('uretprobe');
    const notFound = (errno: number): string | undefined =>
      errno === ENOENT && !/^(0x[0-9a-f]+|\d+)$/i.test(parsed.func)
        ? `check that ${binary} defines a function '${parsed.func}': \`nm -D --defined-only ${binary}\` lists what a stripped binary exports, \`nm ${binary}\` the rest`
        : undefined;
    return [nativeCall(() => native.attachUprobe(obj, program, retprobe, -1, binary, parsed.func, parsed.offset), what, notFound)];
  }
  const binary = sectionBinary(req.section);
  if (binary !== undefined) allowUprobe(req.policy, binary, what);
  return [nativeCall(() => native.attachAuto(obj, program), what, sectionHint(req.section))];
}

/**
 * XDP in the mode the kernel picks (native when the driver has it); a driver that has native XDP but refuses
 * it on this device (EOPNOTSUPP: virtio_net while the host offloads GRO/checksums, some bonding modes, ...)
 * gets generic (skb) mode instead, said on the run's log: the same packets, seen later and slower.
 */
function attachXdp(native: KernelLib, req: AttachRequest, ifindex: number, what: string): number[] {
  try {
    return [nativeCall(() => native.attachXdp(req.obj, req.program, ifindex, 0), what)];
  } catch (err) {
    if (!(err instanceof BackendError) || err.errno !== EOPNOTSUPP) throw err;
    const generic = nativeCall(
      () => native.attachXdp(req.obj, req.program, ifindex, XDP_FLAGS.SKB_MODE),
      `${what}: the driver of ${req.target} refused native XDP (EOPNOTSUPP) and generic (skb) mode failed too`,
    );
    req.warn?.(`wasm-bpf: ${what}: the driver of ${req.target} refused native XDP (EOPNOTSUPP: e.g. virtio_net while the host offloads GRO/checksums); attached in generic (skb) mode: the same packets, seen later and slower`);
    return [generic];
  }
}

/** cgroup2's statfs magic (include/uapi/linux/magic.h) */
const CGROUP2_SUPER_MAGIC = 0x63677270;

/** a cgroup program attaches to a directory of the cgroup2 hierarchy: anything else is the kernel's EBADF */
function requireCgroup2(dir: string, what: string): void {
  let type: number;
  try {
    type = fs.statfsSync(dir).type;
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code ?? 'EINVAL';
    throw new BackendError(`${what}: cannot use ${dir} as a cgroup: ${code}`, ERRNO[code as keyof typeof ERRNO] ?? ERRNO.EINVAL);
  }
  if (type !== CGROUP2_SUPER_MAGIC) {
    throw new BackendError(
      `${what}: ${dir} is not a cgroup2 directory (its filesystem's magic is 0x${type.toString(16)})`,
      ERRNO.EBADF,
      '',
      'give a directory under the cgroup2 mount, e.g. /sys/fs/cgroup or /sys/fs/cgroup/SLICE (mount -t cgroup2 none /sys/fs/cgroup when it is not mounted)',
    );
  }
}

function interfaceIndex(native: KernelLib, name: string, what: string): number {
  const idx = native.ifIndex(name);
  if (idx <= 0) {
    throw new BackendError(`${what}: no network interface named '${name}' in this network namespace`, ENODEV, '', 'list interfaces with `ip link`');
  }
  return idx;
}

function onlineCpus(): number[] {
  try {
    const spec = fs.readFileSync('/sys/devices/system/cpu/online', 'utf8').trim();
    const cpus: number[] = [];
    for (const part of spec.split(',')) {
      const [a, b] = part.split('-').map(Number);
      for (let c = a!; c <= (b ?? a!); c++) cpus.push(c);
    }
    return cpus;
  } catch {
    return os.cpus().map((_, i) => i);
  }
}

/** target: '' = cpu-clock at 99 Hz on every CPU; 'freq=N' or 'period=N' change the rate */
function attachPerfEvent(native: KernelLib, obj: number, program: string, target: string | undefined, what: string): number[] {
  let freq = true;
  let value = 99;
  if (target) {
    const m = /^(freq|period)=(\d+)$/.exec(target);
    if (!m) throw new BackendError(`${what}: perf_event target '${target}' is not freq=N or period=N`, ERRNO.EINVAL);
    freq = m[1] === 'freq';
    value = Number(m[2]);
  }
  const links: number[] = [];
  try {
    for (const cpu of onlineCpus()) {
      const pfd = nativeCall(() => native.perfEventOpen(PERF_TYPE_SOFTWARE, PERF_COUNT_SW_CPU_CLOCK, freq, value, -1, cpu), `${what}: perf_event_open on CPU ${cpu}`);
      try {
        links.push(nativeCall(() => native.attachPerfEvent(obj, program, pfd), what));
      } finally {
        native.closeFd(pfd);
      }
    }
  } catch (err) {
    for (const l of links) native.detach(l);
    throw err;
  }
  return links;
}

function sectionHint(section: string): (errno: number) => string | undefined {
  return (errno) => {
    if (/^k(ret)?probe/.test(section) && !kprobesAvailable()) {
      return 'kprobe attach needs a kernel built with CONFIG_KPROBES; this one has no kprobe PMU (/sys/bus/event_source/devices/kprobe) and no kprobe_events: run it on a kernel with kprobes, or use a tracepoint';
    }
    if (/^(tp|tracepoint)\//.test(section) && errno === ENOENT && !fs.existsSync('/sys/kernel/tracing/events')) {
      return 'tracefs is not mounted: mount -t tracefs nodev /sys/kernel/tracing';
    }
    if (/^u(ret)?probe/.test(section) && !section.includes(':')) {
      return 'a uprobe section without BINARY:FUNCTION needs a target: bpf_program__set_attach_target(prog, 0, "/path/to/binary:function")';
    }
    return undefined;
  };
}

function kprobesAvailable(): boolean {
  return fs.existsSync('/sys/bus/event_source/devices/kprobe') || fs.existsSync('/sys/kernel/tracing/kprobe_events') || fs.existsSync('/sys/kernel/debug/tracing/kprobe_events');
}
