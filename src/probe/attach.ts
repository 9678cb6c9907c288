// Attach mechanisms and features, decided by trying on this host (perf_event_open on the kprobe/uprobe PMU,
// a tracepoint and the CPU clock; loads; BPF_LINK_CREATE shapes), or from files and versions when nothing
// can be tried (fixture mode).
import type { AttachName, Feature, FeatureName } from './types.js';
import { ATTACH_DEFS, FEATURE_DEFS, PROG_TYPES, type MechDef } from './tables.js';
import { ATTACH_TYPE as ATTACH, HELPER, PROG_TYPE } from '../kernel/uapi.js';
import { BOUNDED_LOOP, ISA_V2, ISA_V3, ISA_V4, RETURN_0, callHelper } from './insns.js';
import { EBADF, EINVAL, ENODEV, EOPNOTSUPP, errnoName, feature, fromErrno, infer, kconfigOff, sinceFor, tooOld } from './features.js';
import { load, memo, type Run } from './run.js';
import { mapType, progType, socketFilter } from './progmap.js';
import { fentry, fexit, lsm, structOps, tpBtf } from './trampoline.js';
import { readText } from './system.js';
import { KPROBE_SYMBOL } from './perf.js';
import { mountedFs } from './caps.js';

const prog = (run: Run, name: string): Feature => progType(run, PROG_TYPES.find((p) => p.name === name)!);

/** 'no' when the platform is not Linux, the kernel too old or a required option off; undefined otherwise */
function precheck(run: Run, def: MechDef): Feature | undefined {
  const since = sinceFor(def, run.arch);
  if (run.platform !== 'linux') return feature('no', `not a Linux host (${run.platform})`, since, { method: 'inferred' });
  const old = tooOld(run, since);
  if (old) return feature('no', old, since, { method: 'inferred', fix: `a Linux ${since}+ kernel` });
  const off = kconfigOff(run, def.kconfig);
  if (off) return feature('no', `${off} is not set`, since, { method: 'file', fix: `a kernel built with ${off}=y` });
  return undefined;
}

/** a program type's answer, reworded for a mechanism */
function viaProg(run: Run, def: MechDef, progName: string, extra?: () => Feature | undefined): Feature {
  const since = sinceFor(def, run.arch);
  const pre = precheck(run, def);
  if (pre) return pre;
  const p = prog(run, progName);
  if (p.state !== 'yes') return { ...p, since, reason: `${progName} programs: ${p.reason}` };
  const more = extra?.();
  if (more) return more;
  return { ...p, since, reason: p.method === 'probe' ? `${progName} programs load` : p.reason };
}

function kprobe(run: Run): Feature {
  const def = ATTACH_DEFS.kprobe;
  const since = def.since;
  if (run.platform !== 'linux') return precheck(run, def)!;
  const pc = run.perf;
  const legacy = pc.tracefs !== undefined && run.sys.exists(`${pc.tracefs}/kprobe_events`);
  if (pc.kprobePmu === undefined && !legacy) {
    const why = run.kc.on('CONFIG_KPROBES') === false ? 'CONFIG_KPROBES is not set: ' : '';
    return feature('no', `${why}no kprobe PMU (/sys/bus/event_source/devices/kprobe) and no kprobe_events in tracefs`, since, {
      method: 'file',
      fix: 'a kernel built with CONFIG_KPROBES=y and CONFIG_KPROBE_EVENTS=y',
    });
  }
  const pre = precheck(run, def);
  if (pre) return pre;
  if (!run.live) return feature('yes', `${pc.kprobePmu !== undefined ? 'kprobe PMU' : 'kprobe_events'} present (${run.noProbe})`, since, { method: 'file' });
  const p = prog(run, 'kprobe');
  if (p.state !== 'yes') return { ...p, since, reason: `kprobe programs: ${p.reason}` };
  const err = pc.result('kprobe');
  if (err === undefined) return feature('yes', `kprobe programs load; attach through ${pc.tracefs}/kprobe_events (no kprobe PMU)`, since);
  return fromErrno(run, err, since, `kprobe PMU: perf_event_open on ${KPROBE_SYMBOL} works`, `perf_event_open(kprobe ${KPROBE_SYMBOL})`);
}

function uprobe(run: Run): Feature {
  const def = ATTACH_DEFS.uprobe;
  const since = def.since;
  const pre = precheck(run, def);
  if (pre) return pre;
  const pc = run.perf;
  const legacy = pc.tracefs !== undefined && run.sys.exists(`${pc.tracefs}/uprobe_events`);
  if (pc.uprobePmu === undefined && !legacy) {
    return feature('no', 'no uprobe PMU (/sys/bus/event_source/devices/uprobe) and no uprobe_events in tracefs', since, {
      method: 'file',
      fix: 'a kernel built with CONFIG_UPROBE_EVENTS=y',
    });
  }
  if (!run.live) return feature('yes', `${pc.uprobePmu !== undefined ? 'uprobe PMU' : 'uprobe_events'} present (${run.noProbe})`, since, { method: 'file' });
  const p = prog(run, 'kprobe');
  if (p.state !== 'yes') return { ...p, since, reason: `kprobe-type programs: ${p.reason}` };
  if (pc.uprobePmu === undefined) return feature('yes', `kprobe-type programs load; attach through ${pc.tracefs}/uprobe_events (no uprobe PMU)`, since);
  const err = pc.result('uprobe');
  if (err === undefined) return feature('unknown', 'uprobe PMU present but not tried (no temporary file for a target)', since, { method: 'file' });
  return fromErrno(run, err, since, 'uprobe PMU: perf_event_open works', 'perf_event_open(uprobe)');
}

function tracepoint(run: Run): Feature {
  const def = ATTACH_DEFS.tracepoint;
  const since = def.since;
  const pre = precheck(run, def);
  if (pre) return pre;
  const pc = run.perf;
  if (!pc.tracefs) {
    return feature('no', 'tracefs is not mounted (neither /sys/kernel/tracing nor /sys/kernel/debug/tracing has events)', since, {
      method: 'file',
      fix: 'mount -t tracefs nodev /sys/kernel/tracing',
      mount: { fs: 'tracefs', target: '/sys/kernel/tracing' },
    });
  }
  if (!run.live) return feature('yes', `tracefs at ${pc.tracefs} (${run.noProbe})`, since, { method: 'file' });
  const p = prog(run, 'tracepoint');
  if (p.state !== 'yes') return { ...p, since, reason: `tracepoint programs: ${p.reason}` };
  if ('error' in pc.tracepoint) {
    const denied = /EACCES|EPERM/.test(pc.tracepoint.error);
    return feature(denied && !run.fullyPrivileged ? 'unknown' : 'no', pc.tracepoint.error, since, {
      method: 'file',
      ...(denied ? { errno: 'EACCES', fix: 'run as root, or make tracefs event ids readable' } : {}),
    });
  }
  const err = pc.result('tracepoint') ?? -EINVAL;
  return fromErrno(run, err, since, `tracefs at ${pc.tracefs}; perf_event_open on ${pc.tracepoint.event} works`, `perf_event_open(tracepoint ${pc.tracepoint.event})`);
}

function cgroup(run: Run): Feature {
  const def = ATTACH_DEFS.cgroup;
  const since = def.since;
  const pre = precheck(run, def);
  if (pre) return pre;
  const mnt = mountedFs(run.sys, 'cgroup2');
  if (!mnt) {
    const known = 'text' in readText(run.sys, '/proc/self/mounts');
    return feature(known ? 'no' : 'unknown', known ? 'no cgroup2 mount' : 'cannot read /proc/self/mounts', since, {
      method: 'file',
      fix: 'mkdir -p /sys/fs/cgroup/unified && mount -t cgroup2 none /sys/fs/cgroup/unified',
    });
  }
  const p = prog(run, 'cgroup_skb');
  if (p.state !== 'yes') return { ...p, since, reason: `cgroup_skb programs: ${p.reason}` };
  return { ...p, since, reason: `cgroup2 at ${mnt}${p.method === 'probe' ? '; cgroup_skb programs load' : `; ${p.reason}`}` };
}

function perfEvent(run: Run): Feature {
  return viaProg(run, ATTACH_DEFS.perf_event, 'perf_event', () => {
    const err = run.live ? run.perf.result('cpu_clock') : undefined;
    if (err === undefined) return undefined;
    return fromErrno(run, err, ATTACH_DEFS.perf_event.since, 'perf_event programs load; perf_event_open(cpu-clock, cpu 0) works', 'perf_event_open(cpu-clock)');
  });
}

function tc(run: Run): Feature {
  const def = ATTACH_DEFS.tc;
  return viaProg(run, def, 'sched_cls', () => {
    const off = kconfigOff(run, ['CONFIG_NET_SCH_INGRESS']);
    if (off) return feature('no', `${off} is not set (no clsact qdisc)`, def.since, { method: 'file', fix: `a kernel built with ${off}=y` });
    return undefined;
  });
}

/** a link-create shape: loads `progName`'s type, then BPF_LINK_CREATE whose errno tells whether the kernel knows it */
function linkProbe(
  run: Run,
  def: MechDef,
  key: string,
  req: { progType: number; expectedAttachType?: number; link: { attachType: number; target: number; kind?: 0 | 1 | 2 } },
  okErr: number,
  yes: string,
  what: string,
  explain: (err: number) => string | undefined = () => undefined,
): Feature {
  return memo(run, `link:${key}`, () => {
    const since = sinceFor(def, run.arch);
    const pre = precheck(run, def);
    if (pre) return pre;
    if (!run.live) return infer(run, def, 'yes', run.noProbe);
    const sf = socketFilter(run);
    if (sf.state === 'unknown') return { ...sf, since };
    const r = load(run, run.live, { insns: RETURN_0, ...req });
    if (r.err !== 0) return fromErrno(run, r.err, since, '', `loading the ${what} probe program`);
    if (r.linkErr === -okErr) return feature('yes', yes, since);
    if (r.linkErr === 0) return feature('yes', yes, since);
    const ex = explain(r.linkErr);
    if (ex) return feature('no', ex, since, { errno: errnoName(r.linkErr) });
    return fromErrno(run, r.linkErr, since, yes, `BPF_LINK_CREATE (${what})`);
  });
}

function loadFeature(run: Run, name: FeatureName, insns: Uint8Array, yes: string, what: string): Feature {
  const def = FEATURE_DEFS[name] as MechDef;
  const since = def.since;
  return memo(run, `feature:${name}`, () => {
    const pre = precheck(run, def);
    if (pre) return pre;
    if (!run.live) return infer(run, def, 'yes', run.noProbe);
    const sf = socketFilter(run);
    if (sf.state === 'unknown') return { ...sf, since };
    const r = load(run, run.live, { progType: PROG_TYPE.SOCKET_FILTER, insns, logLevel: 1 });
    return fromErrno(run, r.err, since, yes, what, { log: r.log });
  });
}

export function attachMechanisms(run: Run): Record<AttachName, Feature> {
  const A = ATTACH_DEFS;
  return {
    kprobe: kprobe(run),
    kprobe_multi: linkProbe(
      run, A.kprobe_multi, 'kprobe_multi',
      { progType: PROG_TYPE.KPROBE, expectedAttachType: ATTACH.TRACE_KPROBE_MULTI, link: { attachType: ATTACH.TRACE_KPROBE_MULTI, target: -1, kind: 1 } },
      EINVAL, 'the kernel accepts kprobe.multi links', 'kprobe.multi',
      (e) => (Math.abs(e) === EOPNOTSUPP ? 'kprobe.multi links refused with EOPNOTSUPP (CONFIG_FPROBE is not set)' : undefined),
    ),
    uprobe: uprobe(run),
    uprobe_multi: linkProbe(
      run, A.uprobe_multi, 'uprobe_multi',
      { progType: PROG_TYPE.KPROBE, expectedAttachType: ATTACH.TRACE_UPROBE_MULTI, link: { attachType: ATTACH.TRACE_UPROBE_MULTI, target: -1, kind: 2 } },
      EBADF, 'the kernel accepts uprobe.multi links', 'uprobe.multi',
    ),
    tracepoint: tracepoint(run),
    raw_tracepoint: viaProg(run, A.raw_tracepoint, 'raw_tracepoint'),
    tp_btf: precheck(run, A.tp_btf) ?? tpBtf(run),
    fentry: precheck(run, A.fentry) ?? fentry(run),
    fexit: precheck(run, A.fexit) ?? fexit(run),
    lsm: precheck(run, A.lsm) ?? lsm(run),
    cgroup: cgroup(run),
    xdp: viaProg(run, A.xdp, 'xdp'),
    tc: tc(run),
    tcx: linkProbe(
      run, A.tcx, 'tcx',
      { progType: PROG_TYPE.SCHED_CLS, link: { attachType: ATTACH.TCX_INGRESS, target: 0 } },
      ENODEV, 'the kernel accepts tcx links', 'tcx',
    ),
    perf_event: perfEvent(run),
    socket_filter: viaProg(run, A.socket_filter, 'socket_filter'),
    struct_ops: precheck(run, A.struct_ops) ?? structOps(run),
  };
}

export function features(run: Run): Record<FeatureName, Feature> {
  const F = FEATURE_DEFS;
  const sf = socketFilter(run);
  const ringbuf = mapType(run, 'ringbuf');
  const btf = run.btf.vmlinux;
  return {
    bpf_syscall:
      run.platform !== 'linux'
        ? feature('no', `not a Linux host (${run.platform})`, F.bpf_syscall.since, { method: 'inferred' })
        : run.live
          ? {
              ...sf,
              since: F.bpf_syscall.since,
              // this process cannot use bpf(): decided, even though the kernel's abilities stay unknown
              state: sf.state === 'unknown' && sf.errno ? 'no' : sf.state,
              reason: sf.state === 'yes' ? `bpf() works for uid ${run.uid ?? '?'}` : sf.reason,
            }
          : bpfInferred(run),
    bpf_link: linkProbe(
      run, F.bpf_link, 'bpf_link',
      { progType: PROG_TYPE.CGROUP_SKB, expectedAttachType: ATTACH.CGROUP_INET_INGRESS, link: { attachType: ATTACH.CGROUP_INET_INGRESS, target: -1 } },
      EBADF, 'BPF_LINK_CREATE works (cgroup link)', 'cgroup',
    ),
    perf_link: linkProbe(
      run, F.perf_link, 'perf_link',
      { progType: PROG_TYPE.TRACEPOINT, link: { attachType: ATTACH.PERF_EVENT, target: -1 } },
      EBADF, 'BPF_LINK_CREATE works for perf events', 'perf event',
    ),
    ringbuf: { ...ringbuf, since: F.ringbuf.since },
    bpf_cookie: memo(run, 'feature:bpf_cookie', () => {
      const pre = precheck(run, F.bpf_cookie);
      if (pre) return pre;
      if (!run.live) return infer(run, F.bpf_cookie, 'yes', run.noProbe);
      if (sf.state === 'unknown') return { ...sf, since: F.bpf_cookie.since };
      const r = load(run, run.live, { progType: PROG_TYPE.TRACEPOINT, insns: callHelper(HELPER.get_attach_cookie), logLevel: 1 });
      if (r.err === 0) return feature('yes', 'bpf_get_attach_cookie() is available to tracepoint programs', F.bpf_cookie.since);
      return fromErrno(run, r.err, F.bpf_cookie.since, '', 'a tracepoint program calling bpf_get_attach_cookie()', { log: r.log });
    }),
    bounded_loops: loadFeature(run, 'bounded_loops', BOUNDED_LOOP, 'a program with a bounded loop loads', 'a program with a loop'),
    isa_v2: loadFeature(run, 'isa_v2', ISA_V2, 'BPF_JLT accepted', 'a program using BPF_JLT'),
    isa_v3: loadFeature(run, 'isa_v3', ISA_V3, 'BPF_JMP32 accepted', 'a program using BPF_JMP32'),
    isa_v4: loadFeature(run, 'isa_v4', ISA_V4, 'BPF_MOVSX accepted', 'a program using BPF_MOVSX'),
    // a link's fd holds the registration (it ends with the process, even on SIGKILL); no probe short of
    // registering a struct_ops map says more than the version
    struct_ops_link: precheck(run, F.struct_ops_link) ?? infer(run, F.struct_ops_link, 'yes', 'BPF_F_LINK for struct_ops maps'),
    btf_vmlinux:
      btf.state === 'yes'
        ? feature('yes', btf.reason, F.btf_vmlinux.since, { method: 'file' })
        : feature(btf.state, btf.reason, F.btf_vmlinux.since, { method: 'file', ...(btf.fix ? { fix: btf.fix } : {}) }),
  };
}

/** fixture mode: can this process use bpf()? from the uid/capabilities and unprivileged_bpf_disabled */
function bpfInferred(run: Run): Feature {
  const since = FEATURE_DEFS.bpf_syscall.since;
  const off = kconfigOff(run, FEATURE_DEFS.bpf_syscall.kconfig);
  if (off) return feature('no', `${off} is not set`, since, { method: 'inferred' });
  if (run.privileged) return feature('yes', `inferred: uid ${run.uid ?? '?'} with CAP_BPF/CAP_SYS_ADMIN (${run.noProbe})`, since, { method: 'inferred' });
  const u = readText(run.sys, '/proc/sys/kernel/unprivileged_bpf_disabled');
  const v = 'text' in u ? u.text.trim() : undefined;
  if (v && v !== '0') {
    return feature('no', `inferred: unprivileged user and unprivileged_bpf_disabled=${v}`, since, {
      method: 'inferred',
      fix: 'run as root, or grant CAP_BPF and CAP_PERFMON',
    });
  }
  return feature('unknown', `unprivileged user (${run.noProbe})`, since, { method: 'none' });
}

