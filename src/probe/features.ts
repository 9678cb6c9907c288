// Building answers: a Feature from a probe's errno, or inferred from the kernel version and config when
// nothing can be tried. Every answer carries its reason and, for a refusal, the version that would do.
import os from 'node:os';
import type { Check, Feature, KernelVersion, State } from './types.js';
import type { Kconfig } from './kconfig.js';
import { atLeast } from './kernel.js';
import { ERRNO } from '../kernel/uapi.js';

const ERRNO_NAMES: Record<number, string> = Object.fromEntries(
  Object.entries(os.constants.errno).map(([name, n]) => [n, name]),
);
ERRNO_NAMES[524] = 'ENOTSUPP'; // kernel-internal, returned by bpf()
ERRNO_NAMES[95] = 'EOPNOTSUPP';

export function errnoName(err: number): string {
  return ERRNO_NAMES[Math.abs(err)] ?? `E${Math.abs(err)}`;
}

export const { EPERM, EBADF, ENODEV, EINVAL, EOPNOTSUPP, ENOTSUPP } = ERRNO;
const { EACCES } = ERRNO;

/** What every decision needs to know about the host. */
export interface Ctx {
  kernel: KernelVersion;
  kc: Kconfig;
  arch: string;
  platform: string;
  /** uid 0 / CAP_SYS_ADMIN / CAP_BPF */
  privileged: boolean;
  /** CAP_SYS_ADMIN (+ CAP_BPF and CAP_PERFMON from 5.8): an EPERM then is the kernel's refusal, not ours */
  fullyPrivileged: boolean;
  /** e.g. 'has CAP_BPF, lacks CAP_SYS_ADMIN' */
  privNote: string;
  uid: number | null;
  /** fixture mode: nothing can be tried */
  fixture: boolean;
}

export function feature(state: State, reason: string, since: string, extra: Partial<Check> = {}): Feature {
  return { state, reason, since, method: extra.method ?? 'probe', ...extra };
}

export function sinceFor(def: { since: string; sinceArch?: Record<string, string> }, arch: string): string {
  return def.sinceArch?.[arch] ?? def.since;
}

/** 'needs Linux 5.8+ (this is 5.4.0)' when the kernel is too old, else undefined */
export function tooOld(ctx: Ctx, since: string): string | undefined {
  if (atLeast(ctx.kernel, since) === false) return `needs Linux ${since}+ (this is ${ctx.kernel.version ?? ctx.kernel.release})`;
  return undefined;
}

/** the first required kconfig option that is off, if the config is known */
export function kconfigOff(ctx: Ctx, options: readonly string[] | undefined): string | undefined {
  for (const o of options ?? []) if (ctx.kc.on(o) === false) return o;
  return undefined;
}

/**
 * No probe possible: decide from the kernel version and config. 'no' when too old or an option is off;
 * otherwise `whenPossible` ('yes' for types whose presence follows from the version; 'unknown' for things only
 * a load can tell).
 */
export function infer(
  ctx: Ctx,
  def: { since: string; sinceArch?: Record<string, string>; kconfig?: readonly string[] },
  whenPossible: State,
  why: string,
): Feature {
  const since = sinceFor(def, ctx.arch);
  const old = tooOld(ctx, since);
  if (old) return feature('no', `${old}; inferred from kernel version`, since, { method: 'inferred', fix: `a Linux ${since}+ kernel` });
  const off = kconfigOff(ctx, def.kconfig);
  if (off) return feature('no', `${off} is not set; inferred from kernel config`, since, { method: 'inferred', fix: `a kernel built with ${off}=y` });
  if (ctx.kernel.code === 0) return feature('unknown', `kernel version unknown; ${why}`, since, { method: 'none' });
  if (whenPossible === 'yes') {
    return feature('yes', `inferred from kernel version ${ctx.kernel.version}${def.kconfig?.length && ctx.kc.section.status === 'found' ? ' and kernel config' : ''} (${why})`, since, { method: 'inferred' });
  }
  return feature(whenPossible, why, since, { method: 'none' });
}

/**
 * A probe's errno as an answer: 0 -> yes; EPERM/EACCES without full privileges -> unknown (this user may not
 * try); EPERM with CAP_SYS_ADMIN+CAP_BPF+CAP_PERFMON -> no (the kernel refuses even root); anything else -> no, naming the errno and,
 * when the kernel is older than `since`, the version that would do.
 */
export function fromErrno(ctx: Ctx, err: number, since: string, yes: string, what: string, extra: { log?: string; fix?: string } = {}): Feature {
  if (err === 0) return feature('yes', yes, since);
  const name = errnoName(err);
  const e = Math.abs(err);
  if ((e === EPERM || e === EACCES) && !ctx.fullyPrivileged) {
    return feature('unknown', `${what} not permitted for uid ${ctx.uid ?? '?'} (${name}${ctx.privNote ? `; ${ctx.privNote}` : ''})`, since, {
      errno: name,
      fix: 'run as root, or grant CAP_BPF and CAP_PERFMON (CAP_SYS_ADMIN before Linux 5.8)',
    });
  }
  const old = tooOld(ctx, since);
  const logLine = extra.log ? firstLogLine(extra.log) : '';
  let reason = `${what} refused with ${name}${e === EPERM ? ' even with full privileges' : ''}`;
  if (logLine) reason += `: ${logLine}`;
  else if (e === EPERM) reason += ' (empty verifier log)';
  if (old) reason += `; ${old}`;
  // a refusal of root on a kernel new enough: the kernel's own policy (lockdown, an LSM, a hardened build)
  const fix = old ? `a Linux ${since}+ kernel` : (extra.fix ?? (e === EPERM ? 'this kernel refuses it even for root (lockdown, an LSM or its build): run on a kernel that allows it' : undefined));
  return feature('no', reason, since, { errno: name, ...(fix ? { fix } : {}) });
}

function firstLogLine(log: string): string {
  return log.split('\n').map((l) => l.trim()).find((l) => l !== '' && !l.startsWith('processed ') && !/^\d+: /.test(l) && !l.startsWith('func#')) ?? '';
}
