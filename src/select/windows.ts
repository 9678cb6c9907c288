// The selector's plan for eBPF for Windows (`--backend windows`): the object translated by the Windows
// pass (backends/windows/translate), summarized as data, on any host; nothing is loaded. On Linux this
// says what would load on Windows, which translation it takes and what is refused there and why.
import type { BpfObject } from '../object/loader.js';
import { translateForWindows, type Refusal, type Translation } from '../../backends/windows/translate/index.js';
import { EBPF_FOR_WINDOWS_SOURCE } from '../../backends/windows/translate/source.js';
import { WIN_PROG_TYPE } from '../../backends/windows/translate/programs.js';
import { WIN_MAP_TYPE } from '../../backends/windows/translate/maps.js';
import { HELPER_NAME } from '../kernel/uapi.js';
import { mapTypeName } from '../probe/tables.js';
import type { Plan } from './plan.js';

/** What `check --backend windows` reports of an object beside its plan (`--json`: ObjectPlan.windows). */
export interface WindowsPlan {
  /** every program, map and helper has a Windows counterpart */
  accepted: boolean;
  /** where the tables' numbers come from */
  source: string;
  programs: Array<{ name: string; section: string; windowsSection: string; progType: number; progTypeName: string; attachType: number }>;
  maps: Array<{ name: string; linuxType: number; linuxTypeName: string; windowsType: number; windowsTypeName: string; via: 'btf' | 'legacy' | 'same' }>;
  /** distinct helper renumberings: "bpf_ktime_get_ns 5 -> 9" */
  helpers: Array<{ name: string; linux: number; windows: number; calls: number }>;
  /** the translation's steps, in order */
  steps: string[];
  refusals: Refusal[];
  /** differences the pass leaves (contexts, return codes) */
  caveats: string[];
}

const lower = (o: Record<string, number>, v: number): string => Object.entries(o).find(([, n]) => n === v)?.[0].toLowerCase() ?? `#${v}`;

/** the translation, as check reports it */
export function windowsSummary(tr: Translation): WindowsPlan {
  const helpers = new Map<string, { name: string; linux: number; windows: number; calls: number }>();
  for (const h of tr.helpers) {
    const name = `bpf_${HELPER_NAME[h.linux] ?? `#${h.linux}`}`;
    const k = `${h.linux}:${h.windows}`;
    const e = helpers.get(k) ?? { name, linux: h.linux, windows: h.windows, calls: 0 };
    e.calls++;
    helpers.set(k, e);
  }
  return {
    accepted: tr.accepted,
    source: `${EBPF_FOR_WINDOWS_SOURCE.repository}@${EBPF_FOR_WINDOWS_SOURCE.commit.slice(0, 8)}`,
    programs: tr.programs.map((p) => ({ name: p.name, section: p.section, windowsSection: p.windows.section, progType: p.windows.progType, progTypeName: lower(WIN_PROG_TYPE, p.windows.progType), attachType: p.windows.attachType })),
    maps: tr.maps.map((m) => ({ name: m.name, linuxType: m.linuxType, linuxTypeName: mapTypeName(m.linuxType), windowsType: m.windowsType, windowsTypeName: lower(WIN_MAP_TYPE, m.windowsType), via: m.via })),
    helpers: [...helpers.values()],
    steps: tr.steps,
    refusals: tr.refusals,
    caveats: tr.caveats,
  };
}

/** The plan for running `obj` (its bytes `bytes`) on eBPF for Windows, and the translation's summary. */
export function planWindows(bytes: Uint8Array, obj: BpfObject): { plan: Plan; windows: WindowsPlan } {
  const tr = translateForWindows(bytes, obj);
  const windows = windowsSummary(tr);
  const reasons = [`windows: translated for eBPF for Windows (tables of ${windows.source}); nothing is loaded by check`];
  if (process.platform !== 'win32') reasons.push(`this host is ${process.platform}: the plan says what would load on a Windows host with eBPF for Windows`);
  if (tr.accepted) {
    reasons.push(...tr.steps);
    return { plan: { backend: 'windows', blocking: [], uncertain: [], reasons }, windows };
  }
  const unavailable = tr.refusals.map((r) => ({ backend: 'windows' as const, reason: `${r.subject}: ${r.reason}` }));
  return { plan: { backend: null, blocking: [], uncertain: [], reasons, unavailable }, windows };
}
