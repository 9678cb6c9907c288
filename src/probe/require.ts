// The routing-facing API: what an object needs (from its programs' sections and its maps' types), whether a
// report meets those needs (src/select/plan.ts decides from these which backend runs an object). Pure
// functions of their inputs.
import type { AttachName, Check, Feature, FeatureName, Report, State } from './types.js';
import { MAP_TYPES, PROG_TYPES } from './tables.js';

export type Need =
  /** a program type, by libbpf name ('kprobe') or enum bpf_prog_type value */
  | { kind: 'prog'; type: string | number }
  /** a map type, by name ('ringbuf') or enum bpf_map_type value */
  | { kind: 'map'; type: string | number }
  | { kind: 'attach'; mech: AttachName }
  | { kind: 'feature'; name: FeatureName }
  /** a helper from a program type (answers only in --full reports; 'unknown' otherwise) */
  | { kind: 'helper'; prog: string | number; helper: string }
  /** a minimum kernel version, e.g. '5.8' */
  | { kind: 'kernel'; min: string };

export interface Missing {
  need: Need;
  /** e.g. 'map type ringbuf' */
  what: string;
  state: Exclude<State, 'yes'>;
  reason: string;
  /** what would make it work */
  fix: string;
  /** the kernel version that introduced it */
  since?: string;
  /** a need the report says this host meets and a compat pass could substitute (e.g. perf_event_array for ringbuf) */
  fallback?: Need;
  /** missing only because a filesystem is not mounted (the selector mounts it) */
  mount?: Check['mount'];
}

export interface Requirements {
  /** every need is met ('yes') */
  ok: boolean;
  /** needs answered 'no' or 'unknown', in the order given */
  missing: Missing[];
}

const FALLBACKS: Array<[Need, Need]> = [
  [{ kind: 'map', type: 'ringbuf' }, { kind: 'map', type: 'perf_event_array' }],
  [{ kind: 'attach', mech: 'fentry' }, { kind: 'attach', mech: 'kprobe' }],
  [{ kind: 'attach', mech: 'fexit' }, { kind: 'attach', mech: 'kprobe' }],
  [{ kind: 'attach', mech: 'kprobe_multi' }, { kind: 'attach', mech: 'kprobe' }],
  [{ kind: 'attach', mech: 'uprobe_multi' }, { kind: 'attach', mech: 'uprobe' }],
  [{ kind: 'attach', mech: 'tp_btf' }, { kind: 'attach', mech: 'raw_tracepoint' }],
  [{ kind: 'attach', mech: 'tcx' }, { kind: 'attach', mech: 'tc' }],
];

function progName(t: string | number): string | undefined {
  return typeof t === 'string' ? t : PROG_TYPES.find((p) => p.id === t)?.name;
}
function mapName(t: string | number): string | undefined {
  return typeof t === 'string' ? t : MAP_TYPES.find((m) => m.id === t)?.name;
}

export function describeNeed(n: Need): string {
  switch (n.kind) {
    case 'prog': return `program type ${progName(n.type) ?? `#${n.type}`}`;
    case 'map': return `map type ${mapName(n.type) ?? `#${n.type}`}`;
    case 'attach': return `attach mechanism ${n.mech}`;
    case 'feature': return `feature ${n.name}`;
    case 'helper': return `helper ${n.helper} from ${progName(n.prog) ?? `#${n.prog}`} programs`;
    case 'kernel': return `Linux ${n.min}+`;
  }
}

function versionCode(v: string): number {
  const m = /^(\d+)\.(\d+)(?:\.(\d+))?/.exec(v);
  return m ? Number(m[1]) * 65536 + Number(m[2]) * 256 + Math.min(Number(m[3] ?? 0), 255) : NaN;
}

/** The report's answer to one need. */
export function answer(report: Report, n: Need): (Check & { since?: string }) {
  const unknownType = (what: string): Check => ({ state: 'unknown', reason: `${what} is not known to this prober`, method: 'none' });
  switch (n.kind) {
    case 'prog': {
      const name = progName(n.type);
      return (name && report.progTypes[name]) || unknownType(describeNeed(n));
    }
    case 'map': {
      const name = mapName(n.type);
      return (name && report.mapTypes[name]) || unknownType(describeNeed(n));
    }
    case 'attach':
      return report.attach[n.mech] ?? unknownType(describeNeed(n));
    case 'feature':
      return report.features[n.name] ?? unknownType(describeNeed(n));
    case 'helper': {
      const name = progName(n.prog);
      if (!report.helpers) return { state: 'unknown', reason: 'helpers were not probed (run `wasm-bpf probe --full`)', method: 'none' };
      return (name && report.helpers[name]?.[n.helper]) || unknownType(describeNeed(n));
    }
    case 'kernel': {
      const have = report.system.kernel.code;
      const want = versionCode(n.min);
      if (!have || Number.isNaN(want)) return { state: 'unknown', reason: 'kernel version unknown', method: 'none' };
      return have >= want
        ? { state: 'yes', reason: `Linux ${report.system.kernel.version}`, method: 'file' }
        : { state: 'no', reason: `this is Linux ${report.system.kernel.version}`, method: 'file', fix: `a Linux ${n.min}+ kernel` };
    }
  }
}

/** prog/map types by name, so that 27 and 'ringbuf' are the same need */
function normalize(n: Need): Need {
  if (n.kind === 'prog') return { kind: 'prog', type: progName(n.type) ?? n.type };
  if (n.kind === 'map') return { kind: 'map', type: mapName(n.type) ?? n.type };
  if (n.kind === 'helper') return { kind: 'helper', prog: progName(n.prog) ?? n.prog, helper: n.helper };
  return n;
}

function sameNeed(a: Need, b: Need): boolean {
  return JSON.stringify(normalize(a)) === JSON.stringify(normalize(b));
}

/** Whether `report` meets every need; for each that it does not: why, what would fix it, and a usable fallback. */
export function requirementsMet(report: Report, needs: readonly Need[]): Requirements {
  const missing: Missing[] = [];
  for (const need of needs) {
    const a = answer(report, need) as Check & Partial<Pick<Feature, 'since'>>;
    if (a.state === 'yes') continue;
    const since = a.since;
    const tooOld = since !== undefined && report.system.kernel.code > 0 && report.system.kernel.code < versionCode(since);
    const fix =
      a.fix ??
      (tooOld
        ? `needs Linux ${since}+ (this is ${report.system.kernel.version ?? report.system.kernel.release})`
        : a.state === 'unknown'
          ? 'run `wasm-bpf probe` on the target host as root to decide'
          : 'run on a kernel that supports it');
    const m: Missing = { need, what: describeNeed(need), state: a.state, reason: a.reason, fix, ...(since ? { since } : {}), ...(a.mount ? { mount: a.mount } : {}) };
    const fb = FALLBACKS.find(([from]) => sameNeed(from, need))?.[1];
    if (fb && answer(report, fb).state === 'yes') m.fallback = fb;
    missing.push(m);
  }
  return { ok: missing.length === 0, missing };
}

/** What a program needs, from its libbpf section name (e.g. 'kprobe/do_unlinkat', 'tp/sched/sched_process_exec'). */
export function needsForProgram(section: string, progType?: number): Need[] {
  const out: Need[] = [];
  if (progType !== undefined && progType > 0) out.push({ kind: 'prog', type: progType });
  const s = section;
  const head = s.split('/')[0]!;
  const add = (...n: Need[]): void => {
    for (const x of n) if (!out.some((o) => sameNeed(o, x))) out.push(x);
  };
  switch (head) {
    case 'kprobe': case 'kretprobe': case 'ksyscall': case 'kretsyscall':
      add({ kind: 'prog', type: 'kprobe' }, { kind: 'attach', mech: 'kprobe' }); break;
    case 'kprobe.multi': case 'kretprobe.multi': case 'kprobe.session':
      add({ kind: 'prog', type: 'kprobe' }, { kind: 'attach', mech: 'kprobe_multi' }); break;
    case 'uprobe': case 'uretprobe': case 'uprobe.s': case 'uretprobe.s': case 'usdt':
      add({ kind: 'prog', type: 'kprobe' }, { kind: 'attach', mech: 'uprobe' }); break;
    case 'uprobe.multi': case 'uretprobe.multi': case 'uprobe.multi.s': case 'uretprobe.multi.s':
      add({ kind: 'prog', type: 'kprobe' }, { kind: 'attach', mech: 'uprobe_multi' }); break;
    case 'tracepoint': case 'tp':
      add({ kind: 'prog', type: 'tracepoint' }, { kind: 'attach', mech: 'tracepoint' }); break;
    case 'raw_tracepoint': case 'raw_tp':
      add({ kind: 'prog', type: 'raw_tracepoint' }, { kind: 'attach', mech: 'raw_tracepoint' }); break;
    case 'raw_tracepoint.w': case 'raw_tp.w':
      add({ kind: 'prog', type: 'raw_tracepoint_writable' }); break;
    case 'tp_btf':
      add({ kind: 'prog', type: 'tracing' }, { kind: 'attach', mech: 'tp_btf' }); break;
    case 'fentry': case 'fentry.s': case 'fmod_ret': case 'fmod_ret.s':
      add({ kind: 'prog', type: 'tracing' }, { kind: 'attach', mech: 'fentry' }); break;
    case 'fexit': case 'fexit.s':
      add({ kind: 'prog', type: 'tracing' }, { kind: 'attach', mech: 'fexit' }); break;
    case 'iter': case 'iter.s':
      add({ kind: 'prog', type: 'tracing' }, { kind: 'feature', name: 'btf_vmlinux' }); break;
    case 'freplace':
      add({ kind: 'prog', type: 'ext' }); break;
    case 'lsm': case 'lsm.s': case 'lsm_cgroup':
      add({ kind: 'prog', type: 'lsm' }, { kind: 'attach', mech: 'lsm' }); break;
    case 'struct_ops': case 'struct_ops.s':
      add({ kind: 'prog', type: 'struct_ops' }, { kind: 'attach', mech: 'struct_ops' }); break;
    case 'xdp': case 'xdp.frags': case 'xdp_devmap': case 'xdp_cpumap':
      add({ kind: 'prog', type: 'xdp' }, { kind: 'attach', mech: 'xdp' }); break;
    case 'tc': case 'classifier':
      add({ kind: 'prog', type: 'sched_cls' }, { kind: 'attach', mech: 'tc' }); break;
    case 'tcx':
      add({ kind: 'prog', type: 'sched_cls' }, { kind: 'attach', mech: 'tcx' }); break;
    case 'action':
      add({ kind: 'prog', type: 'sched_act' }); break;
    case 'socket':
      add({ kind: 'prog', type: 'socket_filter' }, { kind: 'attach', mech: 'socket_filter' }); break;
    case 'perf_event':
      add({ kind: 'prog', type: 'perf_event' }, { kind: 'attach', mech: 'perf_event' }); break;
    case 'cgroup_skb':
      add({ kind: 'prog', type: 'cgroup_skb' }, { kind: 'attach', mech: 'cgroup' }); break;
    case 'sockops':
      add({ kind: 'prog', type: 'sock_ops' }, { kind: 'attach', mech: 'cgroup' }); break;
    case 'cgroup': {
      const sub = s.split('/')[1] ?? '';
      const t = sub === 'skb' ? 'cgroup_skb'
        : sub === 'dev' ? 'cgroup_device'
        : sub === 'sysctl' ? 'cgroup_sysctl'
        : /sockopt/.test(sub) ? 'cgroup_sockopt'
        : /^sock(_create|_release)?$|post_bind/.test(sub) ? 'cgroup_sock'
        : 'cgroup_sock_addr';
      add({ kind: 'prog', type: t }, { kind: 'attach', mech: 'cgroup' });
      break;
    }
    case 'sk_skb': add({ kind: 'prog', type: 'sk_skb' }); break;
    case 'sk_msg': add({ kind: 'prog', type: 'sk_msg' }); break;
    case 'sk_lookup': add({ kind: 'prog', type: 'sk_lookup' }); break;
    case 'sk_reuseport': add({ kind: 'prog', type: 'sk_reuseport' }); break;
    case 'flow_dissector': add({ kind: 'prog', type: 'flow_dissector' }); break;
    case 'lwt_in': case 'lwt_out': case 'lwt_xmit': case 'lwt_seg6local': add({ kind: 'prog', type: head }); break;
    case 'lirc_mode2': add({ kind: 'prog', type: 'lirc_mode2' }); break;
    case 'netfilter': add({ kind: 'prog', type: 'netfilter' }); break;
    case 'syscall': add({ kind: 'prog', type: 'syscall' }); break;
    default: break;
  }
  // BTF-based program kinds also need vmlinux BTF
  if (['tp_btf', 'fentry', 'fentry.s', 'fexit', 'fexit.s', 'fmod_ret', 'lsm', 'lsm.s', 'struct_ops', 'iter'].includes(head)) add({ kind: 'feature', name: 'btf_vmlinux' });
  return out;
}

/** What a map needs (its type). */
export function needsForMap(type: number): Need[] {
  return [{ kind: 'map', type }];
}
