// Program types, map types and (with --full) helpers per program type. Live: one tiny load / map create each
// (raw bpf(), errno kept); tracing/ext/lsm/struct_ops by real loads against BTF (trampoline.ts). Without live
// probes: inferred from the kernel version and config.
import type { Check, Feature, HelperTable } from './types.js';
import { MAP_TYPES, PROG_TYPES, type ProgTypeDef } from './tables.js';
import { RETURN_0, callHelper } from './insns.js';
import { EPERM, feature, fromErrno, infer } from './features.js';
import { load, memo, type Run } from './run.js';
import { ext, fentry, lsm, structOps, tpBtf } from './trampoline.js';
import { ATTACH_TYPE as ATTACH, HELPER_NAME } from '../kernel/uapi.js';
import { readText } from './system.js';

type Typed = Feature & { id: number };

function notLinux(run: Run, since: string): Feature | undefined {
  if (run.platform === 'linux') return undefined;
  return feature('no', `not a Linux host (${run.platform})`, since, { method: 'inferred' });
}

/** socket_filter: the first load, deciding whether bpf() works at all for this process */
export function socketFilter(run: Run): Feature {
  return memo(run, 'prog:socket_filter', () => {
    const def = PROG_TYPES[0]!;
    const nl = notLinux(run, def.since);
    if (nl) return nl;
    if (!run.live) return infer(run, def, 'yes', run.noProbe);
    const r = load(run, run.live, { progType: def.id, insns: RETURN_0 });
    const f = fromErrno(run, r.err, def.since, 'loaded', 'BPF_PROG_LOAD');
    if (f.state === 'unknown' && f.errno) {
      const u = readText(run.sys, '/proc/sys/kernel/unprivileged_bpf_disabled');
      const sysctl = 'text' in u ? `, unprivileged_bpf_disabled=${u.text.trim()}` : '';
      return { ...f, reason: `bpf() not permitted for uid ${run.uid ?? '?'} (${f.errno}${run.privNote ? `; ${run.privNote}` : ''}${sysctl})` };
    }
    return f;
  });
}

/** bpf() refused for this user: every later load would be refused the same way */
function bpfBlocked(run: Run): Feature | undefined {
  const sf = socketFilter(run);
  return sf.state === 'unknown' && sf.errno !== undefined ? sf : undefined;
}

export function progType(run: Run, def: ProgTypeDef): Typed {
  const nl = notLinux(run, def.since);
  if (nl) return { ...nl, id: def.id };
  if (def.id === 1) return { ...socketFilter(run), id: def.id };
  if (!run.live) {
    const base = infer(run, def, 'yes', run.noProbe);
    if (def.special && base.state !== 'no') {
      const s = special(run, def);
      return { ...s, since: def.since, id: def.id };
    }
    return { ...base, id: def.id };
  }
  const blocked = bpfBlocked(run);
  if (blocked) return { ...blocked, since: def.since, id: def.id };
  if (def.special) return { ...special(run, def), since: def.since, id: def.id };
  const r = load(run, run.live, {
    progType: def.id,
    insns: RETURN_0,
    ...(def.expectedAttachType !== undefined ? { expectedAttachType: def.expectedAttachType } : {}),
    ...(def.progFlags !== undefined ? { progFlags: def.progFlags } : {}),
    logLevel: 1,
  });
  const f = fromErrno(run, r.err, def.since, 'loaded', 'BPF_PROG_LOAD', { log: r.log });
  const off = def.kconfig?.find((o) => run.kc.on(o) === false);
  if (f.state === 'no' && off) return { ...f, reason: `${f.reason} (${off} is not set)`, fix: `a kernel built with ${off}=y`, id: def.id };
  return { ...f, id: def.id };
}

function special(run: Run, def: ProgTypeDef): Feature {
  switch (def.special) {
    case 'tracing': {
      const fe = fentry(run);
      const tp = tpBtf(run);
      if (fe.state === 'yes' || tp.state === 'yes') {
        const parts = [`tp_btf ${tp.state === 'yes' ? 'loads' : 'refused'}`, `fentry ${fe.state === 'yes' ? 'loads' : 'refused'}`];
        return feature('yes', parts.join(', '), def.since, { method: fe.method });
      }
      return { ...fe, since: def.since };
    }
    case 'lsm':
      return lsm(run);
    case 'ext':
      return ext(run);
    case 'struct_ops':
      return structOps(run);
    default:
      throw new Error(`no special check for ${def.name}`);
  }
}

export function progTypes(run: Run): Record<string, Typed> {
  return Object.fromEntries(PROG_TYPES.map((d) => [d.name, progType(run, d)]));
}

export function mapType(run: Run, name: string): Feature {
  const def = MAP_TYPES.find((m) => m.name === name);
  if (!def) throw new Error(`unknown map type ${name}`);
  return memo(run, `map:${name}`, () => {
    const nl = notLinux(run, def.since);
    if (nl) return nl;
    if (!run.live) return infer(run, def, 'yes', run.noProbe);
    const blocked = bpfBlocked(run);
    if (blocked) return { ...blocked, since: def.since };
    const err = run.live.mapType(def.id);
    if (def.okErrno !== undefined && err === -def.okErrno) return feature('yes', 'the kernel knows the type (expected refusal of a dummy value type)', def.since);
    return fromErrno(run, err, def.since, 'created', 'BPF_MAP_CREATE');
  });
}

export function mapTypes(run: Run): Record<string, Typed> {
  return Object.fromEntries(MAP_TYPES.map((d) => [d.name, { ...mapType(run, d.name), id: d.id }]));
}

/** helper names by id: this kernel's enum bpf_func_id if its BTF has it, else the built-in list */
function helperNames(run: Run): string[] {
  const ids = run.btfIds();
  if (!('error' in ids)) {
    const e = ids.get('ENUM:bpf_func_id');
    if (e?.values) {
      const names: string[] = [];
      for (const [n, v] of e.values) if (n.startsWith('BPF_FUNC_') && v >= 0 && v < 4096) names[v] = n.slice('BPF_FUNC_'.length);
      return names;
    }
  }
  return [...HELPER_NAME];
}

function tracingTarget(run: Run): { expectedAttachType: number; attachBtfId: number } | undefined {
  if (tpBtf(run).state !== 'yes') return undefined;
  const ids = run.btfIds();
  const hit = 'error' in ids ? undefined : ids.get('TYPEDEF:btf_trace_sched_switch');
  return hit ? { expectedAttachType: ATTACH.TRACE_RAW_TP, attachBtfId: hit.id } : undefined;
}

const NO_HELPER = /invalid func |unknown func |program of this type (?:does not support|cannot use) helper|helper call might sleep in a non-sleepable prog/;

/** --full: every helper from every program type that loads here */
export function helpers(run: Run, types: Record<string, Typed>): Record<string, HelperTable> {
  const names = helperNames(run);
  const out: Record<string, HelperTable> = {};
  for (const def of PROG_TYPES) {
    const t = types[def.name]!;
    const table: HelperTable = {};
    let skip: Check | undefined;
    // tracing programs are probed as tp_btf on sched_switch (no trampoline needed)
    const tpTarget = def.special === 'tracing' ? tracingTarget(run) : undefined;
    if (t.state !== 'yes') skip = { state: 'unknown', reason: `program type ${def.name}: ${t.state} (${t.reason})`, method: 'none' };
    else if (def.special && !tpTarget) skip = { state: 'unknown', reason: 'not probed: this program type needs an attach target', method: 'none' };
    else if (!run.live) skip = { state: 'unknown', reason: run.noProbe, method: 'none' };
    for (let id = 1; id < names.length; id++) {
      const name = names[id];
      if (!name) continue;
      if (skip || !run.live) {
        table[name] = skip ?? { state: 'unknown', reason: run.noProbe, method: 'none' };
        continue;
      }
      const r = load(run, run.live, {
        progType: def.id,
        insns: callHelper(id),
        ...(def.expectedAttachType !== undefined ? { expectedAttachType: def.expectedAttachType } : {}),
        ...(def.progFlags !== undefined ? { progFlags: def.progFlags } : {}),
        ...(tpTarget ?? {}),
        logLevel: 1,
      });
      if (r.err === 0) table[name] = { state: 'yes', reason: 'loaded', method: 'probe' };
      else {
        const m = NO_HELPER.exec(r.log);
        if (m) table[name] = { state: 'no', reason: m[0].trim(), method: 'probe' };
        else if (Math.abs(r.err) === EPERM && !run.privileged) table[name] = { state: 'unknown', reason: 'EPERM', method: 'probe', errno: 'EPERM' };
        else table[name] = { state: 'yes', reason: 'allowed (call rejected only for its arguments)', method: 'probe' };
      }
    }
    out[def.name] = table;
  }
  return out;
}
