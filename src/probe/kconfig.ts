// Kernel config: /boot/config-$(uname -r), else /proc/config.gz (libbpf's order). "not found" (no file
// anywhere: options null) is distinct from "off" (file found, option not set: 'n').
import zlib from 'node:zlib';
import type { KconfigSection, KconfigValue } from './types.js';
import { errCode, type SystemView } from './system.js';

/** The options `bpftool feature probe` reports, plus the ones the prober's decisions use. */
const KCONFIG_OPTIONS = [
  'CONFIG_BPF', 'CONFIG_BPF_SYSCALL', 'CONFIG_HAVE_EBPF_JIT', 'CONFIG_BPF_JIT', 'CONFIG_BPF_JIT_ALWAYS_ON',
  'CONFIG_DEBUG_INFO_BTF', 'CONFIG_DEBUG_INFO_BTF_MODULES', 'CONFIG_CGROUPS', 'CONFIG_CGROUP_BPF',
  'CONFIG_CGROUP_NET_CLASSID', 'CONFIG_SOCK_CGROUP_DATA', 'CONFIG_BPF_EVENTS', 'CONFIG_KPROBE_EVENTS',
  'CONFIG_UPROBE_EVENTS', 'CONFIG_TRACING', 'CONFIG_FTRACE_SYSCALLS', 'CONFIG_FUNCTION_ERROR_INJECTION',
  'CONFIG_BPF_KPROBE_OVERRIDE', 'CONFIG_NET', 'CONFIG_XDP_SOCKETS', 'CONFIG_LWTUNNEL_BPF', 'CONFIG_NET_ACT_BPF',
  'CONFIG_NET_CLS_BPF', 'CONFIG_NET_CLS_ACT', 'CONFIG_NET_SCH_INGRESS', 'CONFIG_XFRM', 'CONFIG_IP_ROUTE_CLASSID',
  'CONFIG_IPV6_SEG6_BPF', 'CONFIG_BPF_LIRC_MODE2', 'CONFIG_BPF_STREAM_PARSER', 'CONFIG_NETFILTER_XT_MATCH_BPF',
  'CONFIG_BPFILTER', 'CONFIG_BPFILTER_UMH', 'CONFIG_TEST_BPF', 'CONFIG_HZ',
  // beyond bpftool's list
  'CONFIG_KPROBES', 'CONFIG_UPROBES', 'CONFIG_FPROBE', 'CONFIG_FUNCTION_TRACER', 'CONFIG_DYNAMIC_FTRACE_WITH_DIRECT_CALLS',
  'CONFIG_BPF_LSM', 'CONFIG_LSM', 'CONFIG_SECURITY_LOCKDOWN_LSM', 'CONFIG_LOCK_DOWN_KERNEL_FORCE_NONE',
  'CONFIG_LOCK_DOWN_KERNEL_FORCE_INTEGRITY', 'CONFIG_LOCK_DOWN_KERNEL_FORCE_CONFIDENTIALITY', 'CONFIG_PERF_EVENTS',
  'CONFIG_NETFILTER_BPF_LINK', 'CONFIG_MODULES',
] as const;

const SET = /^(CONFIG_[A-Za-z0-9_]+)=(.*)$/;
const UNSET = /^# (CONFIG_[A-Za-z0-9_]+) is not set$/;

/** All options of a config file: 'y' | 'm' | value (quotes removed) | 'n' for "is not set". */
export function parseKconfig(text: string): Map<string, string> {
  const out = new Map<string, string>();
  for (const line of text.split('\n')) {
    let m = SET.exec(line);
    if (m) {
      let v = m[2]!;
      if (v.length >= 2 && v.startsWith('"') && v.endsWith('"')) v = v.slice(1, -1);
      out.set(m[1]!, v);
      continue;
    }
    m = UNSET.exec(line);
    if (m) out.set(m[1]!, 'n');
  }
  return out;
}

export interface Kconfig {
  section: KconfigSection;
  /** every option of the file (empty when not found) */
  all: Map<string, string>;
  /** 'y' | 'm' | 'n' | value, or null when there is no usable config */
  get(name: string): KconfigValue;
  /** true: y/m; false: n / absent; undefined: no config */
  on(name: string): boolean | undefined;
}

function make(section: KconfigSection, all: Map<string, string>): Kconfig {
  const found = section.status === 'found';
  const get = (name: string): KconfigValue => (found ? all.get(name) ?? 'n' : null);
  return {
    section,
    all,
    get,
    on: (name) => {
      const v = get(name);
      return v === null ? undefined : v !== 'n';
    },
  };
}

function options(all: Map<string, string>, found: boolean): Record<string, KconfigValue> {
  return Object.fromEntries(KCONFIG_OPTIONS.map((o) => [o, found ? all.get(o) ?? 'n' : null]));
}

export function readKconfig(sys: SystemView, release: string, platform = 'linux'): Kconfig {
  if (platform !== 'linux') {
    const empty = new Map<string, string>();
    return make({ status: 'not-found', path: null, state: 'unknown', reason: `not a Linux host (${platform})`, method: 'none', options: options(empty, false) }, empty);
  }
  const candidates = [`/boot/config-${release}`, '/proc/config.gz'];
  const problems: string[] = [];
  let firstBad: { status: 'unreadable' | 'malformed'; path: string; reason: string } | undefined;
  for (const p of candidates) {
    let bytes: Buffer;
    try {
      bytes = sys.readFile(p);
    } catch (err) {
      const code = errCode(err);
      if (code === 'ENOENT' || code === 'ENOTDIR') continue;
      problems.push(`cannot read ${p}: ${code}`);
      firstBad ??= { status: 'unreadable', path: p, reason: `cannot read ${p}: ${code}` };
      continue;
    }
    let text: string;
    if (p.endsWith('.gz')) {
      try {
        text = zlib.gunzipSync(bytes).toString('utf8');
      } catch (err) {
        const why = err instanceof Error ? err.message : String(err);
        problems.push(`${p} is not valid gzip (${why})`);
        firstBad ??= { status: 'malformed', path: p, reason: `${p} is not valid gzip (${why})` };
        continue;
      }
    } else {
      text = bytes.toString('utf8');
    }
    const all = parseKconfig(text);
    if (!all.has('CONFIG_BPF') && all.size < 10) {
      problems.push(`${p} holds no kernel config options`);
      firstBad ??= { status: 'malformed', path: p, reason: `${p} holds no kernel config options` };
      continue;
    }
    return make({ status: 'found', path: p, state: 'yes', reason: p, method: 'file', options: options(all, true) }, all);
  }
  const empty = new Map<string, string>();
  if (firstBad) {
    return make(
      { status: firstBad.status, path: firstBad.path, state: 'unknown', reason: problems.join('; '), method: 'file', options: options(empty, false) },
      empty,
    );
  }
  return make(
    {
      status: 'not-found',
      path: null,
      state: 'unknown',
      reason: `no kernel config (looked for ${candidates.join(', ')})`,
      method: 'file',
      fix: 'install the kernel config as /boot/config-$(uname -r) or enable CONFIG_IKCONFIG_PROC',
      options: options(empty, false),
    },
    empty,
  );
}
