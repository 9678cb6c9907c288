// The probe report: the data `wasm-bpf probe --json` prints and the selector reads. This file is the
// schema (documented field by field in src/probe/README.md). Changing the meaning of a field, or removing
// one, bumps SCHEMA_VERSION; adding a field does not.

import type { WindowsReport } from './windows/types.js';

export const SCHEMA_VERSION = 1;

/** Every check answers one of these. 'unknown' = could not be decided here (not permitted, not probed). */
export type State = 'yes' | 'no' | 'unknown';

/** How an answer was reached. */
export type Method =
  /** tried against this kernel (a load, a map create, a perf_event_open, a link create) */
  | 'probe'
  /** read from files (/proc, /sys, /boot, /etc) */
  | 'file'
  /** deduced from the kernel version and the kernel config, without trying (fixture mode, or no live probes) */
  | 'inferred'
  /** not decided */
  | 'none';

export interface Check {
  state: State;
  /** one line saying why (for 'yes' a short note of what was seen or tried) */
  reason: string;
  method: Method;
  /** what would make it work, when we know ('no' and 'unknown' only) */
  fix?: string;
  /** errno name of the refusal that decided a 'no' / 'unknown' (e.g. 'EPERM') */
  errno?: string;
  /** 'no' only because this filesystem is not mounted: mounting it on `target` (as root) makes it work */
  mount?: { fs: 'tracefs'; target: string };
}

/** A kernel feature (program type, map type, attach mechanism, ...). */
export interface Feature extends Check {
  /** the mainline Linux version that introduced it, e.g. '5.8' (arch-specific when it differs) */
  since: string;
}

export interface DistroInfo extends Check {
  /** os-release ID, e.g. 'debian', 'ubuntu'; null when unknown */
  id: string | null;
  /** os-release VERSION_ID, e.g. '12', '20.04' */
  versionId: string | null;
  /** os-release VERSION_CODENAME (or UBUNTU_CODENAME), e.g. 'bookworm' */
  codename: string | null;
  prettyName: string | null;
}

export interface KernelVersion {
  /** uname -r, e.g. '6.18.44-fc-v669' */
  release: string;
  /** uname -v */
  build: string;
  /** 'major.minor.patch' as the kernel knows itself (Ubuntu: /proc/version_signature; Debian: uname -v) */
  version: string | null;
  /** KERNEL_VERSION(major, minor, min(patch, 255)), LINUX_VERSION_CODE; 0 when unknown */
  code: number;
}

export interface SystemSection {
  /** process.platform of the host: 'linux', 'win32', 'darwin' */
  platform: string;
  distro: DistroInfo;
  arch: {
    /** uname -m, e.g. 'x86_64', 'aarch64' */
    machine: string;
    /** 'x86_64' | 'arm64' | the machine string for others */
    normalized: string;
  };
  kernel: KernelVersion;
  /** /proc/sys/kernel/random/boot_id (null when unreadable) */
  bootId: string | null;
}

export type CapName = 'CAP_BPF' | 'CAP_PERFMON' | 'CAP_SYS_ADMIN' | 'CAP_NET_ADMIN';

export interface SysctlValue {
  /** the number read, null when unreadable / absent */
  value: number | null;
  /** what the value means, or why it is null */
  meaning: string;
}

export interface PrivilegesSection {
  uid: number | null;
  /** whether this process may use bpf() at all: uid 0, CAP_SYS_ADMIN or CAP_BPF */
  privileged: boolean;
  /** CAP_SYS_ADMIN, plus CAP_BPF and CAP_PERFMON from Linux 5.8: a refusal (EPERM) is then the kernel's, not a missing privilege */
  fullyPrivileged: boolean;
  capabilities: {
    /** CapEff from /proc/self/status as hex, null when unreadable */
    effective: string | null;
    /** each capability the prober cares about: present in CapEff? (null when unknown) */
    has: Record<CapName, boolean | null>;
    /** a note (e.g. CAP_BPF/CAP_PERFMON do not exist before 5.8) */
    note: string;
  };
  unprivilegedBpfDisabled: SysctlValue;
  jit: {
    enable: SysctlValue;
    harden: SysctlValue;
    kallsyms: SysctlValue;
    limit: SysctlValue;
  };
  perfEventParanoid: SysctlValue;
  lockdown: Check & {
    /** 'none' | 'integrity' | 'confidentiality'; null when unknown */
    mode: string | null;
    /** where it was read: 'securityfs', 'cmdline', 'kconfig' or null */
    source: string | null;
  };
  lsms: Check & {
    /** active LSMs in order, null when unknown */
    active: string[] | null;
    /** 'securityfs' (/sys/kernel/security/lsm), 'syscall' (lsm_list_modules, 6.8+), 'cmdline'/'kconfig' (configured, not confirmed) */
    source: string | null;
  };
}

/** Value of one kernel config option: 'y', 'm', 'n' (not set or absent), a string/number value, or null (config not found). */
export type KconfigValue = string | null;

export interface KconfigSection extends Check {
  /** 'found' | 'not-found' (no config file anywhere) | 'unreadable' | 'malformed' */
  status: 'found' | 'not-found' | 'unreadable' | 'malformed';
  /** the file read, e.g. '/proc/config.gz' */
  path: string | null;
  options: Record<string, KconfigValue>;
}

export type BtfSourceKind = 'custom' | 'sysfs' | 'disk' | 'btfhub' | 'none';

export interface BtfCandidate {
  path: string;
  /** 'absent' | 'raw' (raw BTF, magic 0xeB9F) | 'elf' (ELF with a .BTF section) | 'elf-no-btf' | 'malformed' | 'unreadable' */
  status: 'absent' | 'raw' | 'elf' | 'elf-no-btf' | 'malformed' | 'unreadable';
  detail?: string;
}

export interface BtfSection {
  vmlinux: Check & {
    /** where vmlinux BTF comes from: a custom path, sysfs, one of libbpf's on-disk paths, the BTFHub cache, or none */
    source: BtfSourceKind;
    path: string | null;
    /** true when the chosen file exists but is not usable BTF */
    malformed: boolean;
    /** every place looked at, in libbpf's order */
    searched: BtfCandidate[];
  };
  modules: Check & {
    /** number of kernel modules with BTF under /sys/kernel/btf */
    count: number;
  };
  /** where a BTFHub-style file for this kernel would live (see src/probe/README.md) */
  btfhubPath: string | null;
}

export type AttachName =
  | 'kprobe'
  | 'kprobe_multi'
  | 'uprobe'
  | 'uprobe_multi'
  | 'tracepoint'
  | 'raw_tracepoint'
  | 'tp_btf'
  | 'fentry'
  | 'fexit'
  | 'lsm'
  | 'cgroup'
  | 'xdp'
  | 'tc'
  | 'tcx'
  | 'perf_event'
  | 'socket_filter'
  | 'struct_ops';

export type FeatureName =
  | 'bpf_syscall'
  | 'bpf_link'
  | 'perf_link'
  | 'ringbuf'
  | 'bpf_cookie'
  | 'bounded_loops'
  | 'isa_v2'
  | 'isa_v3'
  | 'isa_v4'
  | 'btf_vmlinux'
  | 'struct_ops_link';

export type BackendName = 'linux' | 'userspace' | 'windows';

export interface BackendCheck extends Check {
  /** does this host provide what the backend needs (bpf() here / ebpfapi.dll / nothing)? */
  host: Check;
  /** is the backend implemented in this build of wasm-bpf? */
  built: boolean;
  /** linux on this host: which native part runs it, the addon or libbpf through FFI (koffi), and why */
  kernelPath?: { path: 'addon' | 'ffi'; reason: string };
}

/** The userspace backend's facts for attaching uprobes inside live processes (src/probe/userspace.ts). */
export interface UserspaceSection {
  /** the program kinds it attaches in this build (USERSPACE_ATTACH of src/probe/backends.ts) */
  attaches: string[];
  /** the arch is one the agent's inline hook supports (x86_64, arm64) */
  arch: Check;
  /** the agent's native parts are built in this install: `dir` holds every one of `files` */
  agent: Check & { dir: string; files: string[] };
  /** joining a running process of this user (ptrace, agent injection): Yama's scope and CAP_SYS_PTRACE */
  ptrace: Check & {
    /** /proc/sys/kernel/yama/ptrace_scope (0-3); null without Yama or when unreadable */
    yamaScope: number | null;
    /** CAP_SYS_PTRACE in CapEff; null when unknown */
    capSysPtrace: boolean | null;
  };
  /** launching a command with the agent in LD_PRELOAD (not for setuid/setgid/file-capability or static programs) */
  preload: Check;
  /** joining a running process (`run --pid`): the injector and the agent's join build built, ptrace allowed, pidfd_getfd (Linux 5.6+) */
  join: Feature;
  /** process_vm_readv(2): Linux 3.2+, CONFIG_CROSS_MEMORY_ATTACH */
  processVmReadv: Feature;
}

export interface HelperTable {
  /** helper name -> availability from this program type */
  [helper: string]: Check;
}

export interface Report {
  schemaVersion: typeof SCHEMA_VERSION;
  /** ISO time the probe ran */
  generatedAt: string;
  /** wall time the probe took, ms */
  durationMs: number;
  /** 'live' = this host; 'fixture' = files under `root`, nothing tried */
  mode: 'live' | 'fixture';
  /** where system files were read ('/' live) */
  root: string;
  /** helpers were probed (--full) */
  full: boolean;
  system: SystemSection;
  privileges: PrivilegesSection;
  kconfig: KconfigSection;
  btf: BtfSection;
  /** program types by libbpf/bpftool name ('socket_filter', 'kprobe', ...) */
  progTypes: Record<string, Feature & { id: number }>;
  /** map types by name ('hash', 'ringbuf', ...) */
  mapTypes: Record<string, Feature & { id: number }>;
  /** --full only: program type -> helper -> availability */
  helpers?: Record<string, HelperTable>;
  attach: Record<AttachName, Feature>;
  features: Record<FeatureName, Feature>;
  backends: Record<BackendName, BackendCheck>;
  /** the userspace backend's facts for attaching in live processes */
  userspace: UserspaceSection;
  /** Windows hosts (and Windows fixtures) only: the OS build, eBPF for Windows' install, JIT or native-only, its program and map types */
  windows?: WindowsReport;
}
