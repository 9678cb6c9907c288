// The userspace backend's facts for attaching uprobes inside live processes: the arch the agent's hook
// supports, the agent's native parts built, ptrace of this user's processes (Yama, CAP_SYS_PTRACE),
// LD_PRELOAD launch and process_vm_readv. Each a tri-state check with its reason and fix.
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Check, Feature, KernelVersion, PrivilegesSection, UserspaceSection } from './types.js';
import type { Kconfig } from './kconfig.js';
import { atLeast } from './kernel.js';
import { errCode, type SystemView } from './system.js';
import { CAP } from '../kernel/uapi.js';

/** the arches the agent's inline hook supports (native/agent/hook/<arch>/) */
export const AGENT_ARCHES: ReadonlySet<string> = new Set(['x86_64', 'arm64']);

/** ELF e_machine of each arch in AGENT_ARCHES: the agent library must be built for this host's */
const ELF_MACHINE: Readonly<Record<string, number>> = { x86_64: 62, arm64: 183 };

/** what the agent needs from native/agent/build/ (`make -C native/agent`): the LD_PRELOADed agent library */
export const AGENT_FILES: readonly string[] = ['libwbpf_agent.so'];

/** what joining a running process needs beside the agent: the injector and the agent's join build */
export const JOIN_FILES: readonly string[] = ['wbpf-inject', 'libwbpf_agent_join.so'];

export const YAMA_SCOPE = '/proc/sys/kernel/yama/ptrace_scope';

/** native/agent/build of this install (src/probe/ and dist/src/probe/ both find it) */
export function defaultAgentDir(): string {
  const here = path.dirname(fileURLToPath(import.meta.url));
  const roots = [path.resolve(here, '../..'), path.resolve(here, '../../..')];
  // a checkout (the Makefile), or a staged copy holding only the built agent (the matrix's arm64 guests)
  const root = roots.find((r) => fs.existsSync(path.join(r, 'native', 'agent', 'Makefile')) || fs.existsSync(path.join(r, 'native', 'agent', 'build', AGENT_FILES[0]!))) ?? roots[0]!;
  return path.join(root, 'native', 'agent', 'build');
}

function archCheck(arch: string): Check {
  if (AGENT_ARCHES.has(arch)) return { state: 'yes', reason: `${arch}: the agent's inline hook supports it (native/agent/hook/${arch})`, method: 'inferred' };
  return {
    state: 'no',
    reason: `the agent's inline hook supports ${[...AGENT_ARCHES].join(', ')} only; this is ${arch}`,
    method: 'inferred',
    fix: `an ${[...AGENT_ARCHES].join(' or ')} host`,
  };
}

/** the ELF e_machine of a file, or null if it is not a readable ELF file */
function elfMachine(file: string): number | null {
  try {
    const fd = fs.openSync(file, 'r');
    try {
      const b = Buffer.alloc(20);
      if (fs.readSync(fd, b, 0, 20, 0) !== 20 || b.readUInt32BE(0) !== 0x7f454c46) return null;
      return b.readUInt16LE(18);
    } finally {
      fs.closeSync(fd);
    }
  } catch {
    return null;
  }
}

function agentCheck(dir: string, arch: string): UserspaceSection['agent'] {
  const missing = AGENT_FILES.filter((f) => !fs.existsSync(path.join(dir, f)));
  const base = { dir, files: [...AGENT_FILES] };
  const want = ELF_MACHINE[arch];
  const lib = path.join(dir, AGENT_FILES[0]!);
  // a whole ELF header naming another machine (a library copied from another host); one too short to
  // tell is left to the loader
  const got = missing.length === 0 && want !== undefined ? elfMachine(lib) : null;
  if (got !== null && got !== want) {
    const other = Object.entries(ELF_MACHINE).find(([, m]) => m === got)?.[0];
    return {
      ...base,
      state: 'no',
      reason: `${lib} is built for ${other ?? `ELF machine ${got}`}, not for this ${arch} host`,
      method: 'file',
      fix: `rebuild it here: make -C ${path.dirname(dir)} clean all`,
    };
  }
  if (missing.length === 0) return { ...base, state: 'yes', reason: `${dir} has ${AGENT_FILES.join(', ')} (the agent: inline hook, eBPF engine, shared maps)`, method: 'file' };
  return {
    ...base,
    state: 'no',
    reason: `the agent is not built: ${dir} has no ${missing.join(', ')}`,
    method: 'file',
    fix: `make -C ${path.dirname(dir)}`,
  };
}

const SCOPES: Record<number, string> = {
  0: 'classic: a process may ptrace any dumpable process of its own uid',
  1: 'restricted: only its descendants, or a process that named it with prctl(PR_SET_PTRACER)',
  2: 'admin-only: only with CAP_SYS_PTRACE',
  3: 'no attach: nobody may ptrace-attach, not even root, until reboot',
};

/** can this user join (ptrace-attach, inject the agent into) a running process of its own uid? */
function ptraceCheck(sys: SystemView, platform: string, capEff: string | null): UserspaceSection['ptrace'] {
  const capSysPtrace = capEff === null ? null : ((BigInt(`0x${capEff}`) >> BigInt(CAP.SYS_PTRACE)) & 1n) === 1n;
  const base = { capSysPtrace };
  if (platform !== 'linux') return { ...base, yamaScope: null, state: 'no', reason: `ptrace is Linux's; this is ${platform}`, method: 'inferred' };
  const withCap = capSysPtrace ? ' (and CAP_SYS_PTRACE: any process)' : '';
  let text: string;
  try {
    text = sys.readFile(YAMA_SCOPE).toString('utf8').trim();
  } catch (err) {
    const code = errCode(err);
    if (code === 'ENOENT') {
      return { ...base, yamaScope: null, state: 'yes', reason: `no Yama (no ${YAMA_SCOPE}): a process may ptrace the dumpable processes of its own uid${withCap}`, method: 'file' };
    }
    return { ...base, yamaScope: null, state: 'unknown', reason: `${YAMA_SCOPE}: ${code}`, method: 'file' };
  }
  const scope = /^\d+$/.test(text) ? Number(text) : NaN;
  const meaning = SCOPES[scope];
  if (meaning === undefined) return { ...base, yamaScope: null, state: 'unknown', reason: `${YAMA_SCOPE}: '${text}' is not a Yama scope (0-3)`, method: 'file' };
  const said = `Yama ptrace_scope ${scope} (${meaning})`;
  if (scope === 0) return { ...base, yamaScope: 0, state: 'yes', reason: `${said}${withCap}`, method: 'file' };
  if (scope === 3) {
    return {
      ...base,
      yamaScope: 3,
      state: 'no',
      reason: `${said}: no running process can be joined; commands launched under wasm-bpf (LD_PRELOAD) are not affected`,
      method: 'file',
      errno: 'EPERM',
      fix: 'scope 3 cannot be lowered until reboot: set kernel.yama.ptrace_scope=0 in /etc/sysctl.d and reboot, or launch the command under wasm-bpf',
    };
  }
  if (capSysPtrace === true) return { ...base, yamaScope: scope, state: 'yes', reason: `${said}, but this process has CAP_SYS_PTRACE: any process`, method: 'file' };
  if (capSysPtrace === null) return { ...base, yamaScope: scope, state: 'unknown', reason: `${said}; whether this process has CAP_SYS_PTRACE is unknown (/proc/self/status unreadable)`, method: 'file' };
  return {
    ...base,
    yamaScope: scope,
    state: 'no',
    reason: `${said}: joining a running process needs CAP_SYS_PTRACE, which this process lacks; commands launched under wasm-bpf (LD_PRELOAD) are not affected`,
    method: 'file',
    errno: 'EPERM',
    fix: `run with CAP_SYS_PTRACE (e.g. as root), or sysctl kernel.yama.ptrace_scope=0 (then wasm-bpf probe --no-cache)`,
  };
}

function preloadCheck(platform: string): Check {
  if (platform !== 'linux') return { state: 'no', reason: `LD_PRELOAD is the Linux dynamic loader's; this is ${platform}`, method: 'inferred' };
  return {
    state: 'yes',
    reason:
      'a command launched under wasm-bpf gets the agent through LD_PRELOAD; except setuid/setgid or file-capability programs ' +
      '(the loader runs them in secure mode and ignores LD_PRELOAD) and statically linked programs (no loader): those need ptrace injection',
    method: 'inferred',
  };
}

function vmReadvCheck(platform: string, kernel: KernelVersion, kc: Kconfig): Feature {
  const since = '3.2';
  const note = 'reads a traced process\'s memory; the same ptrace access check applies (Yama included)';
  if (platform !== 'linux') return { state: 'no', reason: `a Linux system call; this is ${platform}`, method: 'inferred', since };
  if (kernel.code !== 0 && !atLeast(kernel, since)) {
    return { state: 'no', reason: `needs Linux ${since}+ (this is ${kernel.version ?? kernel.release})`, method: 'inferred', since, fix: `a Linux ${since}+ kernel` };
  }
  if (kc.section.status !== 'found') {
    return { state: 'unknown', reason: `no kernel config to read CONFIG_CROSS_MEMORY_ATTACH from (default y since ${since})`, method: 'inferred', since };
  }
  const v = kc.all.get('CONFIG_CROSS_MEMORY_ATTACH');
  if (v === 'y') return { state: 'yes', reason: `CONFIG_CROSS_MEMORY_ATTACH=y: ${note}`, method: 'file', since };
  if (v === 'n') {
    return { state: 'no', reason: 'CONFIG_CROSS_MEMORY_ATTACH is not set', method: 'file', since, errno: 'ENOSYS', fix: 'a kernel built with CONFIG_CROSS_MEMORY_ATTACH=y' };
  }
  return { state: 'unknown', reason: `CONFIG_CROSS_MEMORY_ATTACH is not in ${kc.section.path ?? 'the kernel config'}`, method: 'file', since };
}

/** `run --pid`: the join pieces built, this user may ptrace its processes, and the channel's hand-over (pidfd_getfd) */
function joinCheck(dir: string, ptrace: Check, platform: string, kernel: KernelVersion): Feature {
  const since = '5.6';
  if (platform !== 'linux') return { state: 'no', reason: `ptrace injection is Linux's; this is ${platform}`, method: 'inferred', since };
  const missing = JOIN_FILES.filter((f) => !fs.existsSync(path.join(dir, f)));
  if (missing.length > 0) {
    return { state: 'no', reason: `the injector is not built: ${dir} has no ${missing.join(', ')}`, method: 'file', since, fix: `make -C ${path.dirname(dir)}` };
  }
  if (kernel.code !== 0 && !atLeast(kernel, since)) {
    return { state: 'no', reason: `the agent gets its channel with pidfd_getfd, Linux ${since}+ (this is ${kernel.version ?? kernel.release})`, method: 'inferred', since, fix: `a Linux ${since}+ kernel` };
  }
  if (ptrace.state !== 'yes') {
    return { state: ptrace.state, reason: `joining needs ptrace: ${ptrace.reason}`, method: ptrace.method, since, ...(ptrace.fix ? { fix: ptrace.fix } : {}) };
  }
  return { state: 'yes', reason: `${JOIN_FILES.join(' and ')} built; ptrace of this user's own processes allowed; pidfd_getfd (Linux ${since}+)`, method: 'file', since };
}

export interface UserspaceInputs {
  sys: SystemView;
  platform: string;
  /** system.arch.normalized */
  arch: string;
  kernel: KernelVersion;
  kc: Kconfig;
  privileges: PrivilegesSection;
  /** the program kinds the backend attaches (USERSPACE_ATTACH) */
  attaches: ReadonlySet<string>;
  /** native/agent/build of this install (default: defaultAgentDir()) */
  agentDir?: string;
}

export function userspaceFacts(i: UserspaceInputs): UserspaceSection {
  const dir = i.agentDir ?? defaultAgentDir();
  const ptrace = ptraceCheck(i.sys, i.platform, i.privileges.capabilities.effective);
  return {
    attaches: [...i.attaches],
    arch: archCheck(i.arch),
    agent: agentCheck(dir, i.arch),
    ptrace,
    preload: preloadCheck(i.platform),
    join: joinCheck(dir, ptrace, i.platform, i.kernel),
    processVmReadv: vmReadvCheck(i.platform, i.kernel, i.kc),
  };
}
