// Kernel version: what the running kernel calls itself, and comparisons against a feature's `since`.
import type { KernelVersion } from './types.js';
import { readText, type SystemView, type Uname } from './system.js';

function versionCode(major: number, minor: number, patch: number): number {
  return major * 65536 + minor * 256 + Math.min(patch, 255);
}

function triple(s: string): [number, number, number] | undefined {
  const m = /^(\d+)\.(\d+)(?:\.(\d+))?/.exec(s);
  if (!m) return undefined;
  return [Number(m[1]), Number(m[2]), Number(m[3] ?? 0)];
}

/**
 * libbpf's get_kernel_version(), extended: Ubuntu's /proc/version_signature ("Ubuntu 5.4.0-42.46-generic 5.4.44"),
 * then Debian's uname -v ("#1 SMP Debian 5.10.197-1 (2023-09-29)"), then uname -r.
 */
export function readKernel(sys: SystemView, u: Uname): KernelVersion {
  const base = { release: u.release, build: u.version };
  if (u.platform !== 'linux') return { ...base, version: null, code: 0 };
  let t: [number, number, number] | undefined;
  const sig = readText(sys, '/proc/version_signature');
  if ('text' in sig) {
    const last = sig.text.trim().split(/\s+/).pop();
    if (last) t = triple(last);
  }
  if (!t) {
    const deb = /Debian (\d+\.\d+\.\d+)/.exec(u.version);
    if (deb) t = triple(deb[1]!);
  }
  t ??= triple(u.release);
  if (!t) return { ...base, version: null, code: 0 };
  return { ...base, version: `${t[0]}.${t[1]}.${t[2]}`, code: versionCode(...t) };
}

/** 'a.b[.c]' -> KERNEL_VERSION code */
function parseSince(since: string): number {
  const t = triple(since);
  if (!t) throw new Error(`bad kernel version '${since}'`);
  return versionCode(...t);
}

/** true / false, or undefined when the running version is unknown */
export function atLeast(k: KernelVersion, since: string): boolean | undefined {
  if (k.code === 0) return undefined;
  return k.code >= parseSince(since);
}

/** 'x86_64' | 'arm64' | the machine string */
export function normalizeArch(machine: string): string {
  switch (machine) {
    case 'x86_64':
    case 'amd64':
    case 'x64':
      return 'x86_64';
    case 'aarch64':
    case 'arm64':
    case 'aarch64_be':
      return 'arm64';
    default:
      return machine;
  }
}
