// Loads that need a vmlinux BTF id: fentry/fexit (a kernel function), tp_btf (a btf_trace_* typedef), lsm
// (an LSM hook), struct_ops (tcp_congestion_ops) and ext. libbpf 1.1's libbpf_probe_bpf_prog_type answers
// these wrongly, so each is a real BPF_PROG_LOAD against this kernel's BTF. Results are memoized per run.
import type { Feature } from './types.js';
import { ATTACH_DEFS, PROG_TYPES } from './tables.js';
import { ATTACH_TYPE as ATTACH, PROG_TYPE } from '../kernel/uapi.js';
import { RETURN_0 } from './insns.js';
import { EINVAL, ENOTSUPP, EPERM, feature, fromErrno, infer, sinceFor } from './features.js';
import { load, memo, type Run } from './run.js';

const { TRACING, STRUCT_OPS, EXT, LSM } = PROG_TYPE;

function btfTarget(run: Run, keys: string[]): { id: number; name: string; members?: string[] } | { error: string } {
  const ids = run.btfIds();
  if ('error' in ids) return { error: ids.error };
  for (const k of keys) {
    const hit = ids.get(k);
    if (hit) return { id: hit.id, name: k.slice(k.indexOf(':') + 1), ...(hit.members ? { members: hit.members } : {}) };
  }
  return { error: `vmlinux BTF has none of ${keys.map((k) => k.slice(k.indexOf(':') + 1)).join(', ')}` };
}

/** no live probe: version/kconfig/BTF say 'no', or 'unknown' (only a load can tell) */
function noLive(run: Run, def: { since: string; sinceArch?: Record<string, string>; kconfig?: string[] }): Feature {
  const since = sinceFor(def, run.arch);
  if (!run.kernelBtf.bytes) {
    const f = infer(run, def, 'unknown', run.noProbe);
    if (f.state === 'no') return f;
    return feature('no', `needs the kernel's own BTF: ${run.kernelBtf.reason}`, since, { method: 'file', fix: 'a kernel built with CONFIG_DEBUG_INFO_BTF=y' });
  }
  return infer(run, def, 'unknown', run.noProbe);
}

function trampolineLoad(run: Run, key: 'fentry' | 'fexit' | 'tp_btf', attachType: number): Feature {
  return memo(run, `load:${key}`, () => {
    const def = ATTACH_DEFS[key];
    const since = sinceFor(def, run.arch);
    if (!run.live) return noLive(run, def);
    const target =
      key === 'tp_btf'
        ? btfTarget(run, ['TYPEDEF:btf_trace_sched_switch'])
        : btfTarget(run, ['FUNC:bpf_fentry_test1', 'FUNC:do_unlinkat']);
    if ('error' in target) return feature('no', target.error, since, { method: 'file', ...(run.kernelBtf.bytes ? {} : { fix: 'a kernel built with CONFIG_DEBUG_INFO_BTF=y' }) });
    // fentry/fexit: attached too (and detached at once), since a kernel can load a trampoline program
    // it cannot attach on this arch (arm64 6.1: ENOTSUPP)
    const link = key === 'tp_btf' ? {} : { link: { attachType, target: 0, kind: 3 as const } };
    const r = load(run, run.live, { progType: TRACING, expectedAttachType: attachType, attachBtfId: target.id, insns: RETURN_0, logLevel: 1, ...link });
    const what = `loading a ${key} program on ${target.name} (BTF id ${target.id})`;
    if (r.err === 0 && key !== 'tp_btf') return attached(run, r.linkErr, since, `loaded and attached on ${target.name}`, `a ${key} program on ${target.name}`);
    return fromErrno(run, r.err, since, `loaded on ${target.name}`, what, { log: r.log, ...trampolineFix(r.err) });
  });
}

/** EPERM for root on a trampoline program: this kernel refuses BPF trampolines outright */
function trampolineFix(err: number, lsm = false): { fix?: string } {
  return Math.abs(err) === EPERM
    ? { fix: `this kernel refuses BPF trampoline programs (fentry/fexit/fmod_ret/lsm) with EPERM even for root: run on a kernel with BPF trampolines enabled${lsm ? " and 'bpf' in the active LSM list" : ''}` }
    : {};
}

export function fentry(run: Run): Feature {
  return trampolineLoad(run, 'fentry', ATTACH.TRACE_FENTRY);
}
export function fexit(run: Run): Feature {
  return trampolineLoad(run, 'fexit', ATTACH.TRACE_FEXIT);
}
export function tpBtf(run: Run): Feature {
  return trampolineLoad(run, 'tp_btf', ATTACH.TRACE_RAW_TP);
}

/** the attach half of a trampoline probe: the program loaded; can the kernel attach it? */
function attached(run: Run, linkErr: number, since: string, yes: string, what: string): Feature {
  if (linkErr === 0) return feature('yes', yes, since);
  if (linkErr === -ENOTSUPP) {
    return feature('no', `${what} loads, but attaching it fails with ENOTSUPP: this kernel cannot build BPF trampolines on ${run.arch}`, since, {
      errno: 'ENOTSUPP',
      fix: 'a kernel with BPF trampoline support for this arch (x86_64: Linux 5.5+)',
    });
  }
  return fromErrno(run, linkErr, since, yes, `attaching ${what}`);
}

/** lsm: a load on bpf_lsm_file_open, and 'bpf' among the active LSMs */
export function lsm(run: Run): Feature {
  return memo(run, 'load:lsm', () => {
    const def = ATTACH_DEFS.lsm;
    const since = sinceFor(def, run.arch);
    const lsmNote =
      run.activeLsms === null ? 'active LSM list unknown' : run.activeLsms.includes('bpf') ? 'bpf is an active LSM' : `bpf is not an active LSM (${run.activeLsms.join(',')})`;
    const notActive = run.activeLsms !== null && !run.activeLsms.includes('bpf');
    if (!run.live) {
      const f = noLive(run, def);
      if (f.state === 'no') return f;
      if (notActive) return feature('no', lsmNote, since, { method: 'file', fix: 'boot with lsm=...,bpf on the kernel command line' });
      return feature(f.state, `${f.reason}; ${lsmNote}`, since, { method: f.method });
    }
    const target = btfTarget(run, ['FUNC:bpf_lsm_file_open']);
    if ('error' in target) return feature('no', target.error, since, { method: 'file' });
    // attached (and detached at once) only where its hooks would run; it allows everything meanwhile
    const r = load(run, run.live, { progType: LSM, expectedAttachType: ATTACH.LSM_MAC, attachBtfId: target.id, insns: RETURN_0, logLevel: 1, ...(notActive ? {} : { link: { attachType: ATTACH.LSM_MAC, target: 0, kind: 3 as const } }) });
    let f = fromErrno(run, r.err, since, `loaded on bpf_lsm_file_open; ${lsmNote}`, 'loading an lsm program on bpf_lsm_file_open', { log: r.log, ...trampolineFix(r.err, true) });
    if (f.state === 'yes' && !notActive) f = attached(run, r.linkErr, since, `loaded and attached on bpf_lsm_file_open; ${lsmNote}`, 'an lsm program on bpf_lsm_file_open');
    if (f.state === 'yes' && notActive) return feature('no', `loads, but ${lsmNote}: hooks never run`, since, { fix: 'boot with lsm=...,bpf on the kernel command line' });
    if (f.state !== 'yes') return { ...f, reason: `${f.reason}; ${lsmNote}` };
    return f;
  });
}

/** struct_ops: a load of tcp_congestion_ops.ssthresh; without that type in BTF, the ENOTSUPP shape */
export function structOps(run: Run): Feature {
  return memo(run, 'load:struct_ops', () => {
    const def = ATTACH_DEFS.struct_ops;
    const since = sinceFor(def, run.arch);
    if (!run.live) return noLive(run, def);
    const target = btfTarget(run, ['STRUCT:tcp_congestion_ops']);
    if ('error' in target || !target.members?.includes('ssthresh')) {
      // the type exists if loading without a struct type fails with ENOTSUPP (libbpf's probe)
      const r = load(run, run.live, { progType: STRUCT_OPS, insns: RETURN_0 });
      if (r.err === -ENOTSUPP) return feature('yes', 'the kernel knows struct_ops programs (no tcp_congestion_ops in BTF to load against)', since);
      return fromErrno(run, r.err, since, 'loaded', 'loading a struct_ops program');
    }
    const member = target.members.indexOf('ssthresh');
    const r = load(run, run.live, { progType: STRUCT_OPS, expectedAttachType: member, attachBtfId: target.id, insns: RETURN_0, logLevel: 1 });
    return fromErrno(run, r.err, since, 'loaded as tcp_congestion_ops.ssthresh', 'loading a struct_ops program (tcp_congestion_ops.ssthresh)', { log: r.log });
  });
}

/** ext (freplace): a load without a target fails with EINVAL and a btf_id complaint when the type exists */
export function ext(run: Run): Feature {
  return memo(run, 'load:ext', () => {
    const def = PROG_TYPES.find((p) => p.id === EXT)!;
    if (!run.live) return noLive(run, def);
    const r = load(run, run.live, { progType: EXT, insns: RETURN_0, logLevel: 1 });
    if (r.err === -EINVAL && /btf_id|attach_prog_fd|target/i.test(r.log)) {
      return feature('yes', 'the kernel accepts ext programs (a load without a target program fails as expected); not attached', def.since);
    }
    if (r.err === 0) return feature('yes', 'loaded', def.since);
    return fromErrno(run, r.err, def.since, 'loaded', 'loading an ext program', { log: r.log });
  });
}
