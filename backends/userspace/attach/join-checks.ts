// Whether this process may join a running one (attach/join.ts), decided from /proc before any ptrace: the
// pid, its state, its owner, a tracer already there, Yama, a static or foreign-arch program. Data in, data
// out: each refusal is a BackendError with its errno, the reason and the fix.
import fs from 'node:fs';
import { BackendError } from '../../../src/errors.js';
import { CAP, ERRNO } from '../../../src/kernel/uapi.js';
import { YAMA_SCOPE } from '../../../src/probe/userspace.js';

/** what /proc says about the target (undefined: unreadable) */
export interface TargetView {
  /** /proc/PID/status */
  status: string | undefined;
  /** the first 64 bytes of /proc/PID/exe */
  exeHeader: Uint8Array | undefined;
  /** /proc/PID/maps */
  maps: string | undefined;
}

/** the joining process */
export interface JoinerView {
  pid: number;
  uid: number;
  gid: number;
  /** CAP_SYS_PTRACE in the effective set */
  capSysPtrace: boolean;
  /** process.arch */
  arch: string;
  /** /proc/sys/kernel/yama/ptrace_scope's text; undefined: no Yama */
  yama: string | undefined;
}

const MACHINES: Record<number, string> = { 3: 'i386', 8: 'MIPS', 20: 'PowerPC', 21: 'PowerPC64', 22: 's390', 40: 'ARM', 62: 'x86-64', 183: 'arm64 (aarch64)', 243: 'RISC-V' };
const EM_X86_64 = 62;
/** the arches the injector joins (native/agent/inject/<arch>.c): process.arch -> ELF e_machine and name */
const JOIN_ARCHES: Record<string, { machine: number; name: string }> = { x64: { machine: EM_X86_64, name: 'x86-64' }, arm64: { machine: 183, name: 'arm64' } };

function field(status: string, name: string): string | undefined {
  const m = new RegExp(`^${name}:\\s*(.*)$`, 'm').exec(status);
  return m?.[1]?.trim();
}

/** the target's libc mapping (what the injector calls dlopen from), or undefined */
export function libcMapped(maps: string): boolean {
  return /\/libc(\.so[.\d]*|-[\d.]+\.so)$/m.test(maps);
}

/** a running agent library of ours already in the target (a launched command, or joined before); deleted:
 * its file was replaced since (a rebuild), so a dlopen of the path would load a second agent */
export function agentMapped(maps: string): { path: string; deleted: boolean } | undefined {
  const m = /\s(\/\S*\/libwbpf_agent(?:_join)?\.so)( \(deleted\))?$/m.exec(maps);
  return m ? { path: m[1]!, deleted: m[2] !== undefined } : undefined;
}

function refuse(errno: number, message: string, fix: string): BackendError {
  return new BackendError(message, errno, '', fix);
}

/** why this process cannot join pid, or undefined when nothing known stands in the way */
export function joinRefusal(pid: number, target: TargetView, self: JoinerView): BackendError | undefined {
  if (!Number.isInteger(pid) || pid <= 0) return refuse(ERRNO.EINVAL, `join: '${pid}' is not a process id`, 'give the pid of a running process (a positive integer)');
  const arch = JOIN_ARCHES[self.arch];
  if (arch === undefined) return refuse(ERRNO.EOPNOTSUPP, `join: joining a running process is implemented for x86-64 and arm64 only; this is ${self.arch}`, 'launch the command under wasm-bpf instead (-- COMMAND ARGS)');
  if (target.status === undefined) return refuse(ERRNO.ESRCH, `join: there is no process ${pid}`, 'check the pid (ps -p PID)');
  if (pid === self.pid) return refuse(ERRNO.EINVAL, `join: process ${pid} is this wasm-bpf process itself`, 'give the pid of another process');
  const name = field(target.status, 'Name') ?? '?';
  const who = `process ${pid} (${name})`;
  const state = field(target.status, 'State') ?? '';
  if (/^[ZX]/.test(state)) return refuse(ERRNO.ESRCH, `join: ${who} has exited (${state})`, 'give the pid of a running process');
  const tracer = Number(field(target.status, 'TracerPid') ?? '0');
  if (tracer !== 0) {
    return refuse(ERRNO.EBUSY, `join: ${who} is already traced by process ${tracer} (a debugger, strace, ...): a process has one tracer at a time`, `detach that tracer first (e.g. quit the debugger attached to ${pid})`);
  }
  if (/^[Tt]/.test(state)) return refuse(ERRNO.EAGAIN, `join: ${who} is stopped (${state})`, `let it run first (kill -CONT ${pid})`);
  if (!self.capSysPtrace) {
    const uids = (field(target.status, 'Uid') ?? '').split(/\s+/).slice(0, 3).map(Number);
    const gids = (field(target.status, 'Gid') ?? '').split(/\s+/).slice(0, 3).map(Number);
    if (uids.some((u) => u !== self.uid) || gids.some((g) => g !== self.gid)) {
      return refuse(
        ERRNO.EPERM,
        `join: ${who} belongs to uid ${uids.join('/')} gid ${gids.join('/')} (real/effective/saved) and this process runs as uid ${self.uid} gid ${self.gid}: only a process of the same user may be joined without CAP_SYS_PTRACE`,
        'run wasm-bpf as the process\'s user, or with CAP_SYS_PTRACE (e.g. as root)',
      );
    }
    const scope = self.yama === undefined ? 0 : Number(self.yama.trim());
    if (scope === 1 || scope === 2) {
      return refuse(
        ERRNO.EPERM,
        `join: Yama ptrace_scope ${scope} (${YAMA_SCOPE}) lets ${scope === 1 ? 'a process ptrace only its descendants' : 'only CAP_SYS_PTRACE ptrace'}: joining ${who} needs CAP_SYS_PTRACE, which this process lacks`,
        'run with CAP_SYS_PTRACE (e.g. as root), or sysctl kernel.yama.ptrace_scope=0, or launch the command under wasm-bpf (-- COMMAND ARGS), which needs no ptrace',
      );
    }
  }
  if (self.yama !== undefined && Number(self.yama.trim()) === 3) {
    return refuse(ERRNO.EPERM, `join: Yama ptrace_scope 3 (${YAMA_SCOPE}): nobody may ptrace-attach, not even root, until reboot`, 'launch the command under wasm-bpf (-- COMMAND ARGS), which needs no ptrace; or set kernel.yama.ptrace_scope=0 in /etc/sysctl.d and reboot');
  }
  const h = target.exeHeader;
  if (h !== undefined && h.byteLength >= 20 && h[0] === 0x7f && h[1] === 0x45 && h[2] === 0x4c && h[3] === 0x46) {
    const machine = h[18]! | (h[19]! << 8);
    if (machine !== arch.machine || h[4] !== 2) {
      const what = machine === EM_X86_64 && h[4] === 1 ? 'a 32-bit x86-64 (x32)' : `${h[4] === 1 ? 'a 32-bit' : 'a 64-bit'} ${MACHINES[machine] ?? `machine ${machine}`}`;
      return refuse(ERRNO.ENOEXEC, `join: ${who} runs ${what} program; the agent is a 64-bit ${arch.name} library`, 'the agent can only join programs of its own arch');
    }
  }
  if (target.maps !== undefined && !libcMapped(target.maps)) {
    return refuse(
      ERRNO.ENOEXEC,
      `join: ${who} maps no libc.so: a statically linked program has no dlopen to load the agent with`,
      'a static program is traced by the ptrace tier: leave --userspace-tier at auto (or set it to ptrace)',
    );
  }
  return undefined;
}

function read(file: string, max?: number): Buffer | undefined {
  try {
    if (max === undefined) return fs.readFileSync(file);
    const fd = fs.openSync(file, 'r');
    try {
      const b = Buffer.alloc(max);
      return b.subarray(0, fs.readSync(fd, b, 0, max, 0));
    } finally {
      fs.closeSync(fd);
    }
  } catch {
    return undefined;
  }
}

/** the target's /proc files */
export function readTarget(pid: number): TargetView {
  return {
    status: read(`/proc/${pid}/status`)?.toString('utf8'),
    exeHeader: read(`/proc/${pid}/exe`, 64),
    maps: read(`/proc/${pid}/maps`)?.toString('utf8'),
  };
}

/** this process */
export function readSelf(): JoinerView {
  const status = read('/proc/self/status')?.toString('utf8') ?? '';
  const capEff = field(status, 'CapEff');
  const capSysPtrace = capEff !== undefined && ((BigInt(`0x${capEff}`) >> BigInt(CAP.SYS_PTRACE)) & 1n) === 1n;
  return {
    pid: process.pid,
    uid: process.getuid?.() ?? -1,
    gid: process.getgid?.() ?? -1,
    capSysPtrace,
    arch: process.arch,
    yama: read(YAMA_SCOPE)?.toString('utf8'),
  };
}
