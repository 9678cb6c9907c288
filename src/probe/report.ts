// Assembles the Report (types.ts) from the sections. Never throws for what it finds on the system: every
// unreadable or malformed input becomes an 'unknown' / 'no' with its reason.
import { SCHEMA_VERSION, type Report, type SystemSection } from './types.js';
import type { SystemView } from './system.js';
import { readDistro } from './osrelease.js';
import { normalizeArch, readKernel } from './kernel.js';
import { readKconfig } from './kconfig.js';
import { readPrivileges } from './caps.js';
import { btfhubPath, readBtf } from './btf.js';
import { makeRun } from './run.js';
import { startPerfChecks } from './perf.js';
import { helpers, mapTypes, progTypes } from './progmap.js';
import { attachMechanisms, features } from './attach.js';
import { backends, USERSPACE_ATTACH } from './backends.js';
import { userspaceFacts } from './userspace.js';
import { readText } from './system.js';
import { probeWindows } from './windows/index.js';

export interface BuildOptions {
  /** probe helpers per program type (slow) */
  full?: boolean;
  /** an explicit vmlinux BTF file */
  btfPath?: string;
  /** cache directory (the BTFHub location is derived from it) */
  cacheDir?: string;
  /** why there are no live probes when sys.live is undefined (default: fixture) */
  noProbeReason?: string;
  /** the agent's build directory checked for the userspace backend (default: this install's native/agent/build) */
  agentDir?: string;
  /** this host, and the kernel backend's addon is not built: why (the backend is reported missing) */
  addonMissing?: string;
  /** this host: the kernel backend's native part (the addon, or libbpf through FFI when the addon is not built) */
  kernelPath?: { path: 'addon' | 'ffi'; reason: string };
}

/** which of the capabilities that bpf() checks this process lacks ('' when none) */
function privNote(p: Report['privileges']): string {
  const lacks = (['CAP_BPF', 'CAP_PERFMON', 'CAP_SYS_ADMIN'] as const).filter((c) => p.capabilities.has[c] === false);
  const has = (['CAP_BPF', 'CAP_PERFMON', 'CAP_SYS_ADMIN'] as const).filter((c) => p.capabilities.has[c] === true);
  if (lacks.length === 0) return '';
  return has.length ? `has ${has.join(', ')}; lacks ${lacks.join(', ')}` : `no ${lacks.join(', ')}`;
}

export function buildReport(sys: SystemView, opts: BuildOptions = {}): Report {
  const t0 = performance.now();
  const u = sys.uname();
  const platform = u.platform;
  const live = platform === 'linux' ? sys.live : undefined;
  // started first: the perf_event_open checks run in the background while the rest is probed
  const perf = startPerfChecks(sys, live, platform);
  const kernel = readKernel(sys, u);
  const arch = normalizeArch(u.machine);
  const distro = readDistro(sys, platform);
  const boot = platform === 'linux' ? readText(sys, '/proc/sys/kernel/random/boot_id') : { error: 'n/a' };
  const system: SystemSection = {
    platform,
    distro,
    arch: { machine: u.machine, normalized: arch },
    kernel,
    bootId: 'text' in boot ? boot.text.trim() : null,
  };
  const kc = readKconfig(sys, u.release, platform);
  const privileges = readPrivileges(sys, kc, kernel, platform);
  const hub = btfhubPath(opts.cacheDir, distro.id, distro.versionId, arch, u.release);
  const btf =
    platform === 'linux'
      ? readBtf(sys, u.release, kc, { hubPath: hub, ...(opts.btfPath ? { customPath: opts.btfPath } : {}) })
      : {
          section: {
            vmlinux: { source: 'none' as const, path: null, malformed: false, searched: [], state: 'no' as const, reason: `not a Linux host (${platform})`, method: 'inferred' as const },
            modules: { count: 0, state: 'no' as const, reason: `not a Linux host (${platform})`, method: 'inferred' as const },
            btfhubPath: null,
          },
          kernel: { bytes: undefined, reason: `not a Linux host (${platform})` },
        };
  const run = makeRun({
    perf,
    sys,
    live,
    noProbe: sys.live ? '' : (opts.noProbeReason ?? 'not probed: fixture'),
    kernel,
    kc,
    arch,
    platform,
    privileged: privileges.privileged,
    fullyPrivileged: privileges.fullyPrivileged,
    privNote: privNote(privileges),
    uid: privileges.uid,
    fixture: sys.mode === 'fixture',
    btf: btf.section,
    kernelBtf: btf.kernel,
    activeLsms: privileges.lsms.active,
  });
  let prog: Report['progTypes'];
  let maps: Report['mapTypes'];
  let attach: Report['attach'];
  let feats: Report['features'];
  try {
    prog = progTypes(run);
    maps = mapTypes(run);
    attach = attachMechanisms(run);
    feats = features(run);
  } finally {
    perf.finish();
  }
  const report: Report = {
    schemaVersion: SCHEMA_VERSION,
    generatedAt: new Date().toISOString(),
    durationMs: 0,
    mode: sys.mode,
    root: sys.root,
    full: opts.full === true,
    system,
    privileges,
    kconfig: kc.section,
    btf: btf.section,
    progTypes: prog,
    mapTypes: maps,
    attach,
    features: feats,
    backends: backends(sys, platform, feats.bpf_syscall, opts.addonMissing, opts.kernelPath),
    userspace: userspaceFacts({ sys, platform, arch, kernel, kc, privileges, attaches: USERSPACE_ATTACH, ...(opts.agentDir ? { agentDir: opts.agentDir } : {}) }),
  };
  if (platform === 'win32') report.windows = probeWindows(sys);
  if (opts.full) report.helpers = helpers(run, prog);
  report.durationMs = Math.round((performance.now() - t0) * 10) / 10;
  return report;
}
