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

export function explainLoadFailure(err: unknown, programs: readonly ProgramInfo[]): BackendError {
  if (!isNativeError(err)) return new BackendError(`loading the object failed: ${String(err)}`, EINVAL, '', undefined, { cause: err });
  const log = err.log ?? '';
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
  return new BackendError(`the kernel refused to load ${who}: ${reason}`, guestErrno(err.errno), log, hint, { cause: err });
}
