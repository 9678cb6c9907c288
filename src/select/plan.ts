// The selector's decision for one eBPF object: what its programs and maps need, whether this host
// (the prober's report) has it, which backend runs it, which compat passes make it fit, and which
// filesystems must be mounted first. Pure data in, data out.
import type { BackendName } from '../../backends/backend.js';
import type { Report } from '../probe/types.js';
import { describeNeed, needsForMap, needsForProgram, requirementsMet, type Missing } from '../probe/require.js';
import { userspaceAttaches, userspaceAttachesText } from '../probe/backends.js';
import { mapTypeName } from '../probe/tables.js';
import { MAP_TYPE } from '../kernel/uapi.js';
import { mayNeedPtRegs, type PtRegsSettings } from '../../compat/ptregs/index.js';

/** What the selector reads of an object (the ELF loader's view). */
export interface ObjectShape {
  programs: ReadonlyArray<{ name: string; section: string; type: number }>;
  maps: ReadonlyArray<{ name: string; type: number }>;
  /** the object's pt_regs evidence (compat/ptregs ptRegsEvidence); absent: the pt_regs pass is not considered */
  ptRegs?: { members: readonly string[]; userPtRegs: boolean };
}

export interface Shortfall {
  /** "program 'do_unlinkat' (kprobe/do_unlinkat)" or "map 'rb' (ringbuf)" */
  subject: string;
  missing: Missing;
}

/**
 * A compat pass (compat/) the selector applies to the object's bytes before the backend loads them.
 * 'windows': the Linux -> eBPF for Windows translation (backends/windows/translate): planned here, run by
 * the Windows backend itself as it loads the object (its edits speak Windows' numbers, not the Linux backend's).
 */
export type CompatStep = 'ptregs' | 'ringbuf->perf' | 'windows';

/** A filesystem the object's programs need, mounted by the selector before the load when it is missing then. */
export interface MountStep {
  fs: 'tracefs';
  target: string;
  /** which program needs it (and the report's word when it said it was missing) */
  why: string;
}

// platform: data: a mount step planned for tracepoints on the Linux kernel backend only (mounts.ts runs it on Linux)
const TRACEFS = { fs: 'tracefs', target: '/sys/kernel/tracing' } as const;

/** A backend that cannot run the object at all, and why (for the refusal). */
export interface Unavailable {
  backend: BackendName;
  reason: string;
  fix?: string;
}

export interface Plan {
  /** null: nothing here can run it */
  backend: BackendName | null;
  /** needs answered 'no' (these block) */
  blocking: Shortfall[];
  /** needs answered 'unknown' (tried anyway) */
  uncertain: Shortfall[];
  /** one line per decision, for `check` and --verbose */
  reasons: string[];
  /** compat passes applied before the load, in order (each removes the shortfalls it substitutes) */
  compat?: CompatStep[];
  /** filesystems mounted before the load */
  mounts?: MountStep[];
  /** backends passed over as a whole (not built, not usable here, or unable to run these programs) */
  unavailable?: Unavailable[];
  /** the object's struct_ops maps register through BPF links (the report's struct_ops_link), so the
   *  registration ends with the run even when the process is killed */
  structOpsLink?: boolean;
}

/** the shortfalls a compat pass this build implements can substitute: ringbuf maps, when perf event arrays exist */
function compatFor(s: Shortfall): CompatStep | undefined {
  const { need, fallback } = s.missing;
  if (need.kind === 'map' && (need.type === 'ringbuf' || need.type === MAP_TYPE.RINGBUF) && fallback?.kind === 'map') return 'ringbuf->perf';
  return undefined;
}

/** section heads: 'uprobe//bin/bash:readline' -> 'uprobe' */
const head = (section: string): string => section.split('/')[0] ?? section;

/**
 * Decides where an object runs. `choice` other than 'auto' is obeyed whatever the report says (its
 * shortfalls are still listed). Without a report (the probe failed) the kernel backend is tried as is.
 */
export function planObject(
  report: Report | undefined,
  shape: ObjectShape,
  choice: 'auto' | BackendName = 'auto',
  settings: {
    ptregs?: PtRegsSettings;
    /** the run has processes for the userspace backend to trace (a launched command); without, it can attach nothing */
    userspaceTargets?: boolean;
  } = {},
): Plan {
  const blocking: Shortfall[] = [];
  const uncertain: Shortfall[] = [];
  const reasons: string[] = [];
  const compat: CompatStep[] = [];
  const mounts: MountStep[] = [];
  const onKernel = choice === 'auto' || choice === 'linux';
  if (shape.ptRegs && choice !== 'windows' && mayNeedPtRegs(shape.ptRegs, undefined, settings.ptregs)) {
    compat.push('ptregs');
    reasons.push(`compat ptregs: the object's pt_regs layout is another arch's; its register reads are remapped to this host's`);
  }
  let structOpsLink = false;
  const extras = (): Pick<Plan, 'compat' | 'mounts' | 'structOpsLink'> => ({
    ...(compat.length ? { compat } : {}),
    ...(mounts.length ? { mounts } : {}),
    ...(structOpsLink ? { structOpsLink } : {}),
  });
  if (!report) {
    const backend = choice === 'auto' ? 'linux' : choice;
    const tp = onKernel ? shape.programs.find((p) => needsForProgram(p.section, p.type || undefined).some((n) => n.kind === 'attach' && n.mech === 'tracepoint')) : undefined;
    if (tp) mounts.push({ ...TRACEFS, why: `program '${tp.name}' (${tp.section}) attaches through tracefs` });
    reasons.push(choice === 'auto' ? 'linux: no prober report; loading without routing' : `--backend ${choice}: chosen by the user`);
    return { backend, blocking, uncertain, reasons, ...extras() };
  }
  const collect = (subject: string, needs: ReturnType<typeof needsForMap>): void => {
    for (const missing of requirementsMet(report, needs).missing) {
      const list = missing.state === 'no' ? blocking : uncertain;
      // a program type and its attach mechanism often fail for one reason: say it once
      if (list.some((s) => s.subject === subject && s.missing.reason === missing.reason)) continue;
      list.push({ subject, missing });
    }
  };
  for (const p of shape.programs) {
    const needs = needsForProgram(p.section, p.type || undefined);
    collect(`program '${p.name}' (${p.section})`, needs);
    // tracepoints attach through tracefs: checked (and mounted) right before the load, as the report may be older than the mounts
    if (onKernel && !mounts.length && needs.some((n) => n.kind === 'attach' && n.mech === 'tracepoint')) mounts.push({ ...TRACEFS, why: `program '${p.name}' (${p.section}) attaches through tracefs` });
  }
  for (const m of shape.maps) {
    if (m.name.startsWith('.')) continue; // .rodata/.data/.bss are arrays
    collect(`map '${m.name}' (${mapTypeName(m.type)})`, needsForMap(m.type));
  }
  if (onKernel && shape.maps.some((m) => m.type === MAP_TYPE.STRUCT_OPS)) {
    const f = report.features.struct_ops_link;
    structOpsLink = f?.state === 'yes';
    reasons.push(structOpsLink
      ? 'struct_ops: maps register through BPF links: the registration ends with the run, even if the process is killed'
      : `struct_ops: no BPF links for struct_ops maps (${f?.reason ?? 'not probed'}): a registration ends when the object closes, but a SIGKILL of wasm-bpf leaves it registered`);
  }
  for (const b of [...blocking]) {
    if (!onKernel) break;
    const step = compatFor(b);
    if (step) {
      blocking.splice(blocking.indexOf(b), 1);
      if (!compat.includes(step)) compat.push(step);
      reasons.push(`compat ${step}: ${b.subject}: ${b.missing.reason}; ring buffers become perf event arrays and bpf_ringbuf_* calls bpf_perf_event_output`);
    } else if (b.missing.mount) {
      blocking.splice(blocking.indexOf(b), 1);
      const { fs, target } = b.missing.mount;
      const step = { fs, target, why: `${b.subject}: ${b.missing.reason}` };
      const i = mounts.findIndex((m) => m.fs === fs);
      if (i >= 0) mounts[i] = step;
      else mounts.push(step);
      reasons.push(`mount ${fs} on ${target}: ${b.subject}: ${b.missing.reason}`);
    }
  }
  if (choice !== 'auto') {
    reasons.push(`--backend ${choice}: chosen by the user`);
    return { backend: choice, blocking, uncertain, reasons, ...extras() };
  }
  const unavailable: Unavailable[] = [];
  const linux = report.backends.linux;
  if (linux.state === 'yes' && blocking.length === 0) {
    reasons.push(`linux: this kernel has everything the object needs${uncertain.length ? ` (${uncertain.length} need(s) unknown, tried anyway)` : ''}`);
    return { backend: 'linux', blocking, uncertain, reasons, ...extras() };
  }
  if (linux.state === 'yes') reasons.push(`linux: ${blocking.length} need(s) missing`);
  else {
    reasons.push(`linux: ${linux.reason}`);
    unavailable.push({ backend: 'linux', reason: linux.reason, ...(linux.fix ? { fix: linux.fix } : {}) });
  }
  // eBPF for Windows: the selector plans objects for it by their translation (./windows.ts) on Windows hosts
  const win = report.backends.windows;
  if (win.state === 'yes') reasons.push(`windows: ${win.reason}; objects are planned for it by their translation (the selector on this host, or check --backend windows)`);
  else {
    reasons.push(`windows: ${win.reason}`);
    if (win.host.state === 'yes') unavailable.push({ backend: 'windows', reason: win.reason });
  }
  // the userspace backend: every program must be of a kind it attaches
  const us = report.backends.userspace;
  if (us.state !== 'yes') {
    reasons.push(`userspace: ${us.reason}`);
    unavailable.push({ backend: 'userspace', reason: us.reason });
  } else {
    const cannot = shape.programs.filter((p) => !userspaceAttaches(p.section, report.system.arch.normalized));
    const facts = report.userspace;
    const hostGap = cannot.length > 0 || shape.programs.length === 0 ? undefined : [facts.arch, facts.agent].find((c) => c.state !== 'yes');
    if (hostGap) {
      const why = `it could run every program, but ${hostGap.reason}`;
      reasons.push(`userspace: ${why}`);
      unavailable.push({ backend: 'userspace', reason: why, ...(hostGap.fix ? { fix: hostGap.fix } : {}) });
      return { backend: null, blocking, uncertain, reasons, unavailable };
    }
    if (cannot.length === 0 && shape.programs.length > 0 && !settings.userspaceTargets) {
      const why = 'it could run every program (uprobes and syscall tracepoints, inside the traced process), but this run traces no process: the userspace backend traces the commands it launches';
      reasons.push(`userspace: ${why}`);
      unavailable.push({ backend: 'userspace', reason: why, fix: 'name the command to trace after the app: wasm-bpf run APP.wasm [ARGS] -- COMMAND [ARGS]' });
      return { backend: null, blocking, uncertain, reasons, unavailable };
    }
    if (cannot.length === 0 && shape.programs.length > 0) {
      reasons.push('userspace: the kernel cannot run the object; the userspace backend runs every program of it, inside the launched command');
      return { backend: 'userspace', blocking: [], uncertain: [], reasons, ...(compat.includes('ptregs') ? { compat: ['ptregs'] } : {}) };
    }
    const kinds = [...new Set(cannot.map((p) => head(p.section)))];
    const attaches = userspaceAttachesText();
    const why = `it cannot run ${kinds.map((k) => `${k}`).join(', ')} programs (${cannot.map((p) => `'${p.name}'`).join(', ')}); it attaches: ${attaches}`;
    reasons.push(`userspace: ${why}`);
    unavailable.push({ backend: 'userspace', reason: why });
  }
  return { backend: null, blocking, uncertain, reasons, unavailable };
}

/**
 * One message listing each missing capability once (the programs and maps that need it named before it) and
 * what would fix it, then each backend passed over and why.
 */
export function refusal(plan: Plan): string {
  const groups = new Map<string, string[]>();
  for (const { subject, missing } of plan.blocking) {
    const since = missing.since ? ` (Linux ${missing.since}+)` : '';
    const tail = `${describeNeed(missing.need)}${since}: ${missing.reason}${missing.fix ? `; fix: ${missing.fix}` : ''}`;
    groups.set(tail, [...(groups.get(tail) ?? []), subject]);
  }
  const lines = [...groups].map(([tail, subjects]) => {
    if (subjects.length === 1) return `  - ${subjects[0]} needs ${tail}`;
    const programs = subjects.every((x) => x.startsWith('program '));
    const who = programs ? `programs ${subjects.map((x) => x.slice('program '.length)).join(', ')}` : subjects.join(', ');
    return `  - ${who} need ${tail}`;
  });
  for (const u of plan.unavailable ?? []) lines.push(`  - the ${u.backend} backend: ${u.reason}${u.fix ? `; fix: ${u.fix}` : ''}`);
  return `no backend on this host can run the object:\n${lines.join('\n')}`;
}
