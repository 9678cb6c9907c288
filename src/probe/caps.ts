// Privileges: uid, effective capabilities (CapEff of /proc/self/status), the bpf/perf sysctls, kernel
// lockdown and the active LSMs.
import type { CapName, PrivilegesSection, SysctlValue } from './types.js';
import type { Kconfig } from './kconfig.js';
import { atLeast } from './kernel.js';
import type { KernelVersion } from './types.js';
import { readText, type SystemView } from './system.js';
import { parseStatus } from './procstatus.js';
import { CAP } from '../kernel/uapi.js';

export { parseStatus, type ProcStatus } from './procstatus.js';

const CAP_BITS: Record<CapName, number> = {
  CAP_NET_ADMIN: CAP.NET_ADMIN,
  CAP_SYS_ADMIN: CAP.SYS_ADMIN,
  CAP_PERFMON: CAP.PERFMON,
  CAP_BPF: CAP.BPF,
};

/** LSM_ID_* of include/uapi/linux/lsm.h (lsm_list_modules) */
const LSM_IDS: Record<number, string> = {
  100: 'capability', 101: 'selinux', 102: 'smack', 103: 'tomoyo', 104: 'apparmor', 105: 'yama', 106: 'loadpin',
  107: 'safesetid', 108: 'lockdown', 109: 'bpf', 110: 'landlock', 111: 'ima', 112: 'evm', 113: 'ipe',
};

function hasCap(capEff: bigint | null, cap: CapName): boolean | null {
  if (capEff === null) return null;
  return ((capEff >> BigInt(CAP_BITS[cap])) & 1n) === 1n;
}

function sysctl(sys: SystemView, p: string, meanings: Record<number, string> = {}): SysctlValue {
  const r = readText(sys, p);
  if ('error' in r) return { value: null, meaning: `${p}: ${r.error}` };
  const n = Number.parseInt(r.text.trim(), 10);
  if (!Number.isFinite(n) || !/^-?\d+$/.test(r.text.trim())) return { value: null, meaning: `${p}: not a number` };
  return { value: n, meaning: meanings[n] ?? '' };
}

function cmdlineParam(sys: SystemView, name: string): string | undefined {
  const r = readText(sys, '/proc/cmdline');
  if ('error' in r) return undefined;
  for (const tok of r.text.trim().split(/\s+/)) {
    if (tok === '--') break; // arguments after -- go to init
    if (tok.startsWith(`${name}=`)) return tok.slice(name.length + 1);
  }
  return undefined;
}

function mountedFs(sys: SystemView, type: string): string | undefined {
  const r = readText(sys, '/proc/self/mounts');
  if ('error' in r) return undefined;
  for (const line of r.text.split('\n')) {
    const f = line.split(' ');
    if (f[2] === type) return f[1];
  }
  return undefined;
}

function lockdown(sys: SystemView, kc: Kconfig): PrivilegesSection['lockdown'] {
  const r = readText(sys, '/sys/kernel/security/lockdown');
  if ('text' in r) {
    const m = /\[(\w+)\]/.exec(r.text);
    if (m) return { mode: m[1]!, source: 'securityfs', state: 'yes', reason: '/sys/kernel/security/lockdown', method: 'file' };
  }
  const lsm = kc.on('CONFIG_SECURITY_LOCKDOWN_LSM');
  if (lsm === false) return { mode: 'none', source: 'kconfig', state: 'yes', reason: 'the lockdown LSM is not built (CONFIG_SECURITY_LOCKDOWN_LSM is not set)', method: 'inferred' };
  const why = mountedFs(sys, 'securityfs') ? 'cannot read /sys/kernel/security/lockdown' : 'securityfs is not mounted';
  const cmd = cmdlineParam(sys, 'lockdown');
  if (cmd === 'integrity' || cmd === 'confidentiality') {
    return { mode: cmd, source: 'cmdline', state: 'yes', reason: `inferred from lockdown=${cmd} on the kernel command line (${why})`, method: 'inferred' };
  }
  for (const mode of ['CONFIDENTIALITY', 'INTEGRITY', 'NONE'] as const) {
    if (kc.on(`CONFIG_LOCK_DOWN_KERNEL_FORCE_${mode}`)) {
      return {
        mode: mode.toLowerCase(), source: 'kconfig', state: 'yes',
        reason: `inferred from CONFIG_LOCK_DOWN_KERNEL_FORCE_${mode} (${why})`, method: 'inferred',
      };
    }
  }
  return {
    mode: null, source: null, state: 'unknown', reason: why, method: 'none',
    fix: 'mount -t securityfs securityfs /sys/kernel/security',
  };
}

function lsms(sys: SystemView, kc: Kconfig): PrivilegesSection['lsms'] {
  const r = readText(sys, '/sys/kernel/security/lsm');
  if ('text' in r && r.text.trim() !== '') {
    return { active: r.text.trim().split(','), source: 'securityfs', state: 'yes', reason: '/sys/kernel/security/lsm', method: 'file' };
  }
  if (sys.live) {
    const ids = sys.live.lsmListModules();
    if (Array.isArray(ids)) {
      return { active: ids.map((i) => LSM_IDS[i] ?? `lsm#${i}`), source: 'syscall', state: 'yes', reason: 'lsm_list_modules(2)', method: 'probe' };
    }
  }
  const why = mountedFs(sys, 'securityfs') ? 'cannot read /sys/kernel/security/lsm' : 'securityfs is not mounted';
  const cmd = cmdlineParam(sys, 'lsm');
  if (cmd) return { active: cmd.split(','), source: 'cmdline', state: 'unknown', reason: `configured by lsm= on the command line, not confirmed (${why})`, method: 'inferred', fix: 'mount -t securityfs securityfs /sys/kernel/security' };
  const k = kc.get('CONFIG_LSM');
  if (k && k !== 'n') return { active: k.split(','), source: 'kconfig', state: 'unknown', reason: `CONFIG_LSM default order, not confirmed (${why}; LSMs not built are skipped at boot)`, method: 'inferred', fix: 'mount -t securityfs securityfs /sys/kernel/security' };
  return { active: null, source: null, state: 'unknown', reason: why, method: 'none', fix: 'mount -t securityfs securityfs /sys/kernel/security' };
}

function notLinux(platform: string): PrivilegesSection {
  const na: SysctlValue = { value: null, meaning: `n/a on ${platform}` };
  const why = `not a Linux host (${platform})`;
  return {
    uid: null,
    privileged: false,
    fullyPrivileged: false,
    capabilities: { effective: null, has: { CAP_BPF: null, CAP_PERFMON: null, CAP_SYS_ADMIN: null, CAP_NET_ADMIN: null }, note: why },
    unprivilegedBpfDisabled: na,
    jit: { enable: na, harden: na, kallsyms: na, limit: na },
    perfEventParanoid: na,
    lockdown: { mode: null, source: null, state: 'unknown', reason: why, method: 'none' },
    lsms: { active: null, source: null, state: 'unknown', reason: why, method: 'none' },
  };
}

export function readPrivileges(sys: SystemView, kc: Kconfig, kernel: KernelVersion, platform = 'linux'): PrivilegesSection {
  if (platform !== 'linux') return notLinux(platform);
  const st = readText(sys, '/proc/self/status');
  const status = 'text' in st ? parseStatus(st.text) : { uid: null, capEff: null };
  const uid = status.uid ?? sys.uid();
  const has = Object.fromEntries((Object.keys(CAP_BITS) as CapName[]).map((c) => [c, hasCap(status.capEff, c)])) as Record<CapName, boolean | null>;
  const capsSplit = atLeast(kernel, '5.8');
  const privileged = uid === 0 || has.CAP_SYS_ADMIN === true || (capsSplit !== false && has.CAP_BPF === true);
  const fullyPrivileged =
    status.capEff === null
      ? uid === 0
      : has.CAP_SYS_ADMIN === true && (capsSplit === false || (has.CAP_BPF === true && has.CAP_PERFMON === true));
  return {
    uid,
    privileged,
    fullyPrivileged,
    capabilities: {
      effective: status.capEff === null ? null : status.capEff.toString(16).padStart(16, '0'),
      has,
      note:
        'text' in st
          ? capsSplit === false
            ? 'CAP_BPF and CAP_PERFMON do not exist before Linux 5.8: CAP_SYS_ADMIN governs bpf() here'
            : ''
          : `/proc/self/status: ${st.error}`,
    },
    unprivilegedBpfDisabled: sysctl(sys, '/proc/sys/kernel/unprivileged_bpf_disabled', {
      0: 'unprivileged bpf() allowed',
      1: 'unprivileged bpf() disabled until reboot',
      2: 'unprivileged bpf() disabled (an admin may re-enable it)',
    }),
    jit: {
      enable: sysctl(sys, '/proc/sys/net/core/bpf_jit_enable', { 0: 'interpreter', 1: 'JIT on', 2: 'JIT on with debug output' }),
      harden: sysctl(sys, '/proc/sys/net/core/bpf_jit_harden', { 0: 'off', 1: 'for unprivileged users', 2: 'for everyone' }),
      kallsyms: sysctl(sys, '/proc/sys/net/core/bpf_jit_kallsyms', { 0: 'JIT images hidden from kallsyms', 1: 'JIT images in kallsyms' }),
      limit: sysctl(sys, '/proc/sys/net/core/bpf_jit_limit'),
    },
    perfEventParanoid: sysctl(sys, '/proc/sys/kernel/perf_event_paranoid', {
      [-1]: 'no restrictions',
      0: 'no raw tracepoint access for unprivileged users',
      1: 'no CPU events for unprivileged users',
      2: 'user-space measurements only for unprivileged users',
      3: 'no perf_event_open for unprivileged users',
      4: 'no perf_event_open for unprivileged users',
    }),
    lockdown: lockdown(sys, kc),
    lsms: lsms(sys, kc),
  };
}

export { mountedFs };
