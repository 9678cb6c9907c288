// Which userspace tier traces a process: the agent inside it (LD_PRELOAD for a launched command, ptrace
// injection for a running one; fast) or the ptrace tier (./ptrace.ts: the host's tracer runs the programs at
// each hit; slow, for processes no agent can enter: a static binary has no loader to preload it and no
// dlopen to inject it with). Forced by WBPF_USERSPACE_TIER or `run --userspace-tier`.
import fs from 'node:fs';
import path from 'node:path';
import { BackendError } from '../../../src/errors.js';
import { ERRNO } from '../../../src/kernel/uapi.js';
import { libcMapped } from './join-checks.js';

export type UserspaceTier = 'agent' | 'ptrace';
export type TierChoice = UserspaceTier | 'auto';
export const TIER_CHOICES: readonly TierChoice[] = ['auto', 'agent', 'ptrace'];

/** what a hit costs in the ptrace tier, for --verbose: CPU time of the target and the tracer, ~8-30 us by entry
 * kind (bench/uprobe/RESULTS.md), more wall-clock time on a loaded machine */
export const PTRACE_HIT_US = 20;

/** the tier asked for: the option, else WBPF_USERSPACE_TIER, else auto */
export function tierChoice(option?: string, env: NodeJS.ProcessEnv = process.env): TierChoice {
  const v = option ?? env['WBPF_USERSPACE_TIER'] ?? 'auto';
  if (!(TIER_CHOICES as readonly string[]).includes(v)) {
    throw new BackendError(`userspace tier '${v}' is not one of ${TIER_CHOICES.join(', ')}`, ERRNO.EINVAL, '', 'give --userspace-tier (or WBPF_USERSPACE_TIER) auto, agent or ptrace');
  }
  return v as TierChoice;
}

/** the file a command names, as execvp finds it (undefined: not found; the launch reports that) */
function commandFile(file: string, env: NodeJS.ProcessEnv): string | undefined {
  if (file.includes('/')) return file;
  for (const dir of (env['PATH'] ?? '/usr/bin:/bin').split(':')) {
    const f = path.join(dir || '.', file);
    try {
      if (fs.statSync(f).isFile()) return f;
    } catch {
      // next
    }
  }
  return undefined;
}

/** an ELF executable without PT_INTERP: statically linked (no loader reads LD_PRELOAD); false for scripts and unreadable files */
export function isStaticElf(file: string): boolean {
  let fd: number | undefined;
  try {
    fd = fs.openSync(file, 'r');
    const h = Buffer.alloc(64);
    if (fs.readSync(fd, h, 0, 64, 0) < 64 || h.readUInt32BE(0) !== 0x7f454c46 || h[4] !== 2) return false;
    const phoff = Number(h.readBigUInt64LE(0x20)), phentsize = h.readUInt16LE(0x36), phnum = h.readUInt16LE(0x38);
    if (phentsize < 4 || phnum === 0 || phnum > 256) return false;
    const ph = Buffer.alloc(phentsize * phnum);
    if (fs.readSync(fd, ph, 0, ph.length, phoff) < ph.length) return false;
    for (let i = 0; i < phnum; i++) if (ph.readUInt32LE(i * phentsize) === 3 /* PT_INTERP */) return false;
    return true;
  } catch {
    return false;
  } finally {
    if (fd !== undefined) fs.closeSync(fd);
  }
}

/** the arches whose agent rewrites libc's syscall sites (native/agent/sys/); elsewhere syscall tracepoints
 * go to the ptrace tier (its seccomp filter stops at the traced numbers) */
export const AGENT_SYSCALL_ARCHES: ReadonlySet<string> = new Set<string>(['x64']);

/**
 * The tier of a launched command, and why. `syscalls`: the app has tracepoint/syscalls (or sched) programs the
 * userspace backend may run; on an arch whose agent cannot run them (arm64) they go to the ptrace tier. `fork`: it
 * has a sched_process_fork program, which only the ptrace tier emits (its fork events), on every arch.
 */
export function launchTier(command: readonly string[], choice: TierChoice, env: NodeJS.ProcessEnv = process.env, syscalls = false, arch: string = process.arch, fork = false): { tier: UserspaceTier; why: string } {
  if (choice !== 'auto') return { tier: choice, why: `forced (--userspace-tier / WBPF_USERSPACE_TIER=${choice})` };
  const file = command[0] === undefined ? undefined : commandFile(command[0], env);
  if (file !== undefined && isStaticElf(file)) return { tier: 'ptrace', why: `${file} is statically linked: no loader to preload the agent` };
  if (syscalls && !AGENT_SYSCALL_ARCHES.has(arch)) {
    return { tier: 'ptrace', why: `the app has syscall tracepoint programs and the agent rewrites no syscall sites on ${arch}: the ptrace tier's seccomp filter stops at the traced syscalls (each traced call costs a stop: tens of microseconds)` };
  }
  if (fork) {
    return { tier: 'ptrace', why: 'the app has a sched_process_fork program: the agent emits no fork events, the ptrace tier does (from its fork stops: each new task costs a stop)' };
  }
  return { tier: 'agent', why: 'the agent is preloaded' };
}

/** the tier of a joined process, and why */
export function joinTier(pid: number, choice: TierChoice): { tier: UserspaceTier; why: string } {
  if (choice !== 'auto') return { tier: choice, why: `forced (--userspace-tier / WBPF_USERSPACE_TIER=${choice})` };
  let maps: string | undefined;
  try {
    maps = fs.readFileSync(`/proc/${pid}/maps`, 'utf8');
  } catch {
    maps = undefined; // the join's own checks say why
  }
  if (maps !== undefined && !libcMapped(maps)) return { tier: 'ptrace', why: `process ${pid} maps no libc.so (statically linked): no dlopen to inject the agent with` };
  return { tier: 'agent', why: 'the agent is injected' };
}
