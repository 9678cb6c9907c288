// Explains a failed bpf_object__load: which program, which errno, and what would make it work.
import { readCachedReport } from '../../src/probe/fast.js';
import { BackendError } from '../../src/errors.js';
import type { ProgramInfo } from '../backend.js';
import { guestErrno, isNativeError } from './errors.js';
import { ERRNO, PROG_TYPE } from '../../src/kernel/uapi.js';

const { EPERM, EACCES, EINVAL } = ERRNO;

/** the active LSMs as the prober's cached report has them (no probing, no new modules on this path) */
function activeLsmList(): string | undefined {
  try {
    const l = readCachedReport()?.privileges.lsms;
    if (!l?.active) return undefined;
    return l.state === 'yes' ? `active: ${l.active.join(',')}` : `${l.source === 'cmdline' ? 'lsm= on the kernel command line' : 'CONFIG_LSM'}: ${l.active.join(',')}`;
  } catch {
    return undefined;
  }
}

/**
 * libbpf's lines when it finds no usable vmlinux BTF for the object's CO-RE relocations (it then fails the
 * load with ESRCH before the kernel sees a program): "loading kernel BTF '/sys/kernel/btf/vmlinux': -5",
 * "failed to find valid kernel BTF", "Error loading vmlinux BTF: -3".
 */
const NO_KERNEL_BTF = /failed to find valid kernel BTF|Error loading vmlinux BTF/;

/** the object needs vmlinux BTF that libbpf could not load: what was tried and how to give it one */
function noKernelBtf(err: Error & { errno: number; log?: string }, log: string): BackendError {
  const tried = /loading kernel BTF '([^']+)': (-?\d+)/.exec(log);
  const reason = err.message.split(': ').pop() ?? err.message;
  const message =
    `loading the object failed: ${reason}: its CO-RE relocations need this kernel's vmlinux BTF, which libbpf could not load` +
    (tried ? ` (${tried[1]}: error ${tried[2]})` : ' (libbpf: failed to find valid kernel BTF)');
  const hint =
    'this kernel has no usable vmlinux BTF: give wasm-bpf one from BTFHub with --btfhub-mirror URL (a reachable btfhub-archive mirror) ' +
    'or --btfhub-archive DIR (a local copy), or `wasm-bpf btf fetch` ahead of time; or run on a kernel built with CONFIG_DEBUG_INFO_BTF=y';
  return new BackendError(message, guestErrno(err.errno), log, hint, { cause: err });
}

/** words of a libbpf line that gives a failure's cause (as backends/linux/errors.ts's logCause) */
const CAUSE = /fail|error|invalid|cannot|can't|not found|unknown|no such|refus|unsupported|missing|not supported|mismatch/i;

/** the first line of libbpf's log that says why an object failed to load (not its closing "failed to load object") */
function objectCause(log: string): string | undefined {
  return log
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l.startsWith('libbpf: ') && CAUSE.test(l) && !/failed to load object/.test(l))
    .map((l) => l.slice('libbpf: '.length))[0];
}

export function explainLoadFailure(err: unknown, programs: readonly ProgramInfo[]): BackendError {
  if (!isNativeError(err)) return new BackendError(`loading the object failed: ${String(err)}`, EINVAL, '', undefined, { cause: err });
  const log = err.log ?? '';
  if (NO_KERNEL_BTF.test(log)) return noKernelBtf(err, log);
  // libbpf: "libbpf: prog 'handle_exec': BPF program load failed: Permission denied"
  const m = /prog '([^']+)': (?:BPF program load failed|failed to load)/.exec(log) ?? /prog '([^']+)'/.exec(log);
  const prog = m ? programs.find((p) => p.name === m[1]) : undefined;
  const who = prog ? `program '${prog.name}' (${prog.section})` : 'the object';
  // the native message is "op: detail: Strerror (CODE)": keep the reason
  const reason = err.message.split(': ').pop() ?? err.message;
  let hint: string | undefined;
  if (prog && (prog.type === PROG_TYPE.TRACING || prog.type === PROG_TYPE.LSM || prog.type === PROG_TYPE.EXT) && err.errno === EPERM) {
    const lsms = activeLsmList();
    hint =
      'this kernel refuses BPF trampoline programs (fentry/fexit/fmod_ret/lsm) with EPERM even for root, so no such program can load here; ' +
      'run it on a kernel with BPF trampolines enabled' +
      (prog.type === PROG_TYPE.LSM ? ` and 'bpf' in the active LSM list (${lsms ?? 'LSM list unknown'})` : '');
  } else if (err.errno === EPERM || err.errno === EACCES) {
    hint = err.errno === EPERM && process.getuid?.() !== 0
      ? 'loading eBPF needs root or CAP_BPF + CAP_PERFMON (and CAP_SYS_ADMIN for some program types)'
      : 'the verifier rejected the program: run with --verbose to see its log';
  } else if (/relocat|CO-RE/i.test(log)) {
    hint = 'a CO-RE relocation failed: the program reads a kernel type or field this kernel lacks (run with --verbose)';
  }
  // no program named: the failure is libbpf's (a relocation, a map, BTF), and its log says which
  const cause = prog ? undefined : objectCause(log);
  return new BackendError(`${prog ? 'the kernel refused to load' : 'loading'} ${who}${prog ? '' : ' failed'}: ${reason}${cause ? `: ${cause}` : ''}`, guestErrno(err.errno), log, hint, { cause: err });
}
