// Explains a failed bpf_object__load: which program, which errno, and what would make it work.
import fs from 'node:fs';
import os from 'node:os';
import zlib from 'node:zlib';
import { BackendError } from '../../src/errors.js';
import type { ProgramInfo } from '../backend.js';
import { isNativeError } from './errors.js';
import { PROG_TYPE } from './attach.js';

const EPERM = 1;
const EACCES = 13;
const EINVAL = 22;

/** the active LSMs: securityfs when mounted, else the boot command line's lsm=, else CONFIG_LSM */
function activeLsms(): string | undefined {
  try {
    return `active: ${fs.readFileSync('/sys/kernel/security/lsm', 'utf8').trim()}`;
  } catch {
    // securityfs not mounted
  }
  try {
    const m = /(?:^|\s)lsm=(\S+)/.exec(fs.readFileSync('/proc/cmdline', 'utf8'));
    if (m) return `lsm= on the kernel command line: ${m[1]}`;
    const boot = `/boot/config-${os.release()}`;
    const config = fs.existsSync(boot) ? fs.readFileSync(boot, 'utf8') : zlib.gunzipSync(fs.readFileSync('/proc/config.gz')).toString('utf8');
    const c = /^CONFIG_LSM="([^"]*)"/m.exec(config);
    if (c) return `CONFIG_LSM: ${c[1]}`;
  } catch {
    // no config either
  }
  return undefined;
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
    const lsms = activeLsms();
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
  return new BackendError(`the kernel refused to load ${who}: ${reason}`, err.errno, log, hint, { cause: err });
}
