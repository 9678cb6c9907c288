// The selector's decision for one eBPF object: what its programs and maps need, whether this host
// (the prober's report) has it, and which backend runs it. Pure data in, data out.
import type { BackendName, CompatStep } from '../../backends/backend.js';
import type { Report } from '../probe/types.js';
import { describeNeed, needsForMap, needsForProgram, requirementsMet, type Missing } from '../probe/require.js';
import { mapTypeName } from '../probe/tables.js';
import { MAP_TYPE } from '../kernel/uapi.js';

/** What the selector reads of an object (the ELF loader's view and libbpf's view both fit). */
export interface ObjectShape {
  programs: ReadonlyArray<{ name: string; section: string; type: number }>;
  maps: ReadonlyArray<{ name: string; type: number }>;
}

export interface Shortfall {
  /** "program 'do_unlinkat' (kprobe/do_unlinkat)" or "map 'rb' (ringbuf)" */
  subject: string;
  missing: Missing;
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
  /** compat passes the backend applies before the load (each removes the shortfalls it substitutes) */
  compat?: CompatStep[];
}

export type { CompatStep };

/** the shortfalls a compat pass this build implements can substitute: ringbuf maps, when perf event arrays exist */
function compatFor(s: Shortfall): CompatStep | undefined {
  const { need, fallback } = s.missing;
  if (need.kind === 'map' && (need.type === 'ringbuf' || need.type === MAP_TYPE.RINGBUF) && fallback?.kind === 'map') return 'ringbuf->perf';
  return undefined;
}

/** Decides where an object runs. `choice` other than 'auto' is obeyed whatever the report says. */
export function planObject(report: Report, shape: ObjectShape, choice: 'auto' | BackendName = 'auto'): Plan {
  const blocking: Shortfall[] = [];
  const uncertain: Shortfall[] = [];
  const collect = (subject: string, needs: ReturnType<typeof needsForMap>): void => {
    for (const missing of requirementsMet(report, needs).missing) {
      const list = missing.state === 'no' ? blocking : uncertain;
      // a program type and its attach mechanism often fail for one reason: say it once
      if (list.some((s) => s.subject === subject && s.missing.reason === missing.reason)) continue;
      list.push({ subject, missing });
    }
  };
  for (const p of shape.programs) collect(`program '${p.name}' (${p.section})`, needsForProgram(p.section, p.type || undefined));
  for (const m of shape.maps) {
    if (m.name.startsWith('.')) continue; // .rodata/.data/.bss are arrays
    collect(`map '${m.name}' (${mapTypeName(m.type)})`, needsForMap(m.type));
  }
  const reasons: string[] = [];
  const compat: CompatStep[] = [];
  for (const b of [...blocking]) {
    const step = compatFor(b);
    if (!step || (choice !== 'auto' && choice !== 'linux')) continue;
    blocking.splice(blocking.indexOf(b), 1);
    if (!compat.includes(step)) compat.push(step);
    reasons.push(`compat ${step}: ${b.subject}: ${b.missing.reason}; ring buffers become perf event arrays and bpf_ringbuf_* calls bpf_perf_event_output`);
  }
  const withCompat = compat.length ? { compat } : {};
  if (choice !== 'auto') {
    reasons.push(`--backend ${choice}: chosen by the user`);
    return { backend: choice, blocking, uncertain, reasons, ...withCompat };
  }
  if (report.backends.linux.state !== 'yes') {
    reasons.push(`linux: ${report.backends.linux.reason}`);
    return { backend: null, blocking, uncertain, reasons };
  }
  if (blocking.length === 0) {
    reasons.push(`linux: this kernel has everything the object needs${uncertain.length ? ` (${uncertain.length} need(s) unknown, tried anyway)` : ''}`);
    return { backend: 'linux', blocking, uncertain, reasons, ...withCompat };
  }
  reasons.push(`linux: ${blocking.length} need(s) missing`);
  if (report.backends.userspace.state !== 'yes') reasons.push(`userspace: ${report.backends.userspace.reason}`);
  return { backend: null, blocking, uncertain, reasons };
}

/** One message listing each missing capability and what would fix it. */
export function refusal(plan: Plan): string {
  const lines = plan.blocking.map(({ subject, missing }) => {
    const since = missing.since ? ` (Linux ${missing.since}+)` : '';
    return `  - ${subject} needs ${describeNeed(missing.need)}${since}: ${missing.reason}${missing.fix ? `; fix: ${missing.fix}` : ''}`;
  });
  return `no backend on this host can run the object:\n${lines.join('\n')}`;
}
