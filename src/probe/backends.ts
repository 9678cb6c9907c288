// Which backends can run here, and why not: linux (bpf() usable with the current privileges), userspace
// (this process runs the objects: needs no kernel support; attaches only the program kinds of
// USERSPACE_ATTACH), windows (eBPF for Windows' ebpfapi.dll on a Windows host).
import type { BackendCheck, BackendName, Check, Feature } from './types.js';
import type { SystemView } from './system.js';

/** Backends this build implements (src/select/backend.ts creates them). */
export const BUILT_BACKENDS: ReadonlySet<BackendName> = new Set<BackendName>(['linux', 'userspace', 'windows']);

/**
 * The program kinds (section heads, as libbpf names them) the userspace backend attaches in this build:
 * uprobes and uretprobes, run by the agent inside the commands a run launches (the report's
 * userspace.arch and userspace.agent say whether this host can). It loads any object it can run (maps,
 * ring and perf buffers, `wasm-bpf vm`); the selector routes an object to it only when every program is
 * of one of these kinds.
 */
export const USERSPACE_ATTACH: ReadonlySet<string> = new Set<string>(['uprobe', 'uprobe.s', 'uretprobe', 'uretprobe.s']);

/**
 * Tracepoints it attaches too, each kind on its arches: on x86_64 the agent rewrites the syscall sites of the
 * traced numbers in the launched command and emits exec and exit; on arm64 (and for static commands and
 * sched_process_fork everywhere) the ptrace tier's seccomp filter stops at the traced numbers, and its ptrace
 * events give exec, exit and fork (backends/userspace/SYSCALLS.md). raw_syscalls through the ptrace tier is
 * tested on x86_64 only.
 */
const USERSPACE_TRACEPOINTS: ReadonlyArray<{ re: RegExp; text: string; arches: ReadonlySet<string> }> = [
  { re: /^(tp|tracepoint)\/syscalls\/sys_(enter|exit)_[a-z0-9_]+$/, text: 'tracepoint/syscalls/sys_enter_*|sys_exit_*', arches: new Set(['x86_64', 'arm64']) },
  { re: /^(tp|tracepoint)\/raw_syscalls\/sys_(enter|exit)$/, text: 'tracepoint/raw_syscalls/sys_enter|sys_exit', arches: new Set(['x86_64']) },
  { re: /^(tp|tracepoint)\/sched\/sched_process_(exec|exit|fork)$/, text: 'tp/sched/sched_process_exec|exit|fork', arches: new Set(['x86_64', 'arm64']) },
];
/** any of them, on any arch */
export const USERSPACE_SYSCALL_TP = /^(tp|tracepoint)\/(syscalls\/sys_(enter|exit)_[a-z0-9_]+|raw_syscalls\/sys_(enter|exit)|sched\/sched_process_(exec|exit|fork))$/;
/** the arches where some of them attach */
export const USERSPACE_SYSCALL_ARCHES: ReadonlySet<string> = new Set<string>(USERSPACE_TRACEPOINTS.flatMap((k) => [...k.arches]));
const SYSCALL_TP_TEXT = USERSPACE_TRACEPOINTS.map((k) => `${k.text} (${[...k.arches].join(', ')})`).join(', ');

/** the userspace backend attaches a program of this section on this arch (system.arch.normalized) */
export function userspaceAttaches(section: string, arch: string): boolean {
  return USERSPACE_ATTACH.has(section.split('/')[0] ?? section) || USERSPACE_TRACEPOINTS.some((k) => k.arches.has(arch) && k.re.test(section));
}

/** what it attaches, for messages */
export function userspaceAttachesText(): string {
  return USERSPACE_ATTACH.size ? `${[...USERSPACE_ATTACH].join(', ')}, ${SYSCALL_TP_TEXT}` : SYSCALL_TP_TEXT;
}

/** Where eBPF for Windows installs ebpfapi.dll (paths of the viewed system; '/X' = the system drive's X). */
export const EBPFAPI_PATHS = ['/Windows/System32/ebpfapi.dll', '/Program Files/ebpf-for-windows/ebpfapi.dll'];

/** `missing`: why this install lacks the backend's native part (the kernel backend's addon not built) */
function combine(name: BackendName, host: Check, missing?: string): BackendCheck {
  if (missing !== undefined) {
    return {
      state: 'no',
      reason: missing,
      method: 'inferred',
      fix: 'install libbpf1 (Debian 12: the FFI path needs no compiler), or g++, cmake, make, pkg-config, libbpf-dev, libelf-dev and zlib1g-dev, then `npm rebuild wasm-bpf` (in a checkout: `npm install`)',
      host,
      built: false,
    };
  }
  const built = BUILT_BACKENDS.has(name);
  if (!built) {
    return {
      state: 'no',
      reason: `not implemented in this build${host.state === 'yes' ? ` (the host would support it: ${host.reason})` : ` (host: ${host.reason})`}`,
      method: host.method,
      host,
      built,
    };
  }
  return { ...host, host, built };
}

/**
 * `addonMissing`: why the kernel backend has no native part (no addon built, no libbpf for the FFI path; live
 * mode only); `kernelPath`: which native part it runs on (live mode only)
 */
export function backends(
  sys: SystemView,
  platform: string,
  bpfSyscall: Feature,
  addonMissing?: string,
  kernelPath?: { path: 'addon' | 'ffi'; reason: string },
): Record<BackendName, BackendCheck> {
  const linuxHost: Check =
    platform !== 'linux'
      ? { state: 'no', reason: `needs Linux; this is ${platform}`, method: 'inferred' }
      : {
          state: bpfSyscall.state,
          reason: bpfSyscall.reason,
          method: bpfSyscall.method,
          ...(bpfSyscall.fix ? { fix: bpfSyscall.fix } : {}),
          ...(bpfSyscall.errno ? { errno: bpfSyscall.errno } : {}),
        };
  let winHost: Check;
  if (platform !== 'win32') winHost = { state: 'no', reason: `needs Windows with eBPF for Windows; this is ${platform}`, method: 'inferred' };
  else {
    const dll = EBPFAPI_PATHS.find((p) => sys.exists(p));
    winHost = dll
      ? { state: 'yes', reason: `eBPF for Windows: ${dll}`, method: 'file' }
      : { state: 'no', reason: `eBPF for Windows is not installed (no ebpfapi.dll in ${EBPFAPI_PATHS.join(', ')})`, method: 'file', fix: 'install eBPF for Windows' };
  }
  return {
    linux: {
      ...combine('linux', linuxHost, platform === 'linux' ? addonMissing : undefined),
      ...(platform === 'linux' && kernelPath && addonMissing === undefined ? { kernelPath } : {}),
    },
    userspace: combine('userspace', {
      state: 'yes',
      reason: `needs no kernel support; attaches ${userspaceAttachesText()}`,
      method: 'inferred',
    }),
    windows: combine('windows', winHost),
  };
}
