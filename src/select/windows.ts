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
import type { Report } from '../probe/types.js';

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

/**
 * The object is planned for eBPF for Windows: `--backend windows`, or auto on a Windows host (its report
 * says so: live, or a recorded fixture), where the Windows backend is the only one that loads objects.
 */
export function windowsPlanned(choice: string, report: Report | undefined): boolean {
  return choice === 'windows' || (choice === 'auto' && report?.system.platform === 'win32');
}

/**
 * What this Windows host's probe report (Report.windows) refuses of a translation the tables accept: eBPF
 * for Windows not installed or not running, native-only (no eBPF service: ELF objects do not load, only
 * bpf2c's signed .sys images), a program type no extension registered, a map type the core lacks.
 */
function hostRefusals(report: Report, tr: Translation): Refusal[] {
  const w = report.windows;
  const out: Refusal[] = [];
  const be = report.backends.windows;
  if (be.state !== 'yes') out.push({ subject: 'eBPF for Windows', reason: be.reason });
  if (!w) return out;
  if (w.ebpf.state !== 'yes') out.push({ subject: 'eBPF for Windows', reason: w.ebpf.reason });
  if (w.execution.mode !== 'jit') out.push({ subject: 'eBPF for Windows', reason: w.execution.mode === 'native-only' ? `${w.execution.reason} (wasm-bpf loads the ELF objects the module embeds, through the eBPF service's verifier and JIT)` : w.execution.reason });
  for (const p of tr.programs) {
    const entry = Object.entries(w.progTypes).find(([, c]) => c.id === p.windows.progType);
    if (!entry) out.push({ subject: `program '${p.name}' (${p.section})`, reason: `this host's eBPF for Windows lists no program type ${p.windows.progType} (${lower(WIN_PROG_TYPE, p.windows.progType)})` });
    else if (entry[1].state !== 'yes') out.push({ subject: `program '${p.name}' (${p.section})`, reason: `program type ${entry[0]} (${p.windows.progType}): ${entry[1].reason}` });
  }
  for (const m of tr.maps) {
    const entry = Object.entries(w.mapTypes).find(([, c]) => c.id === m.windowsType);
    if (entry && entry[1].state !== 'yes') out.push({ subject: `map '${m.name}' (${mapTypeName(m.linuxType)})`, reason: `map type ${entry[0]} (${m.windowsType}): ${entry[1].reason}` });
  }
  return out;
}

/**
 * The plan for running `obj` (its bytes `bytes`) on eBPF for Windows, and the translation's summary.
 * `report`: the host's probe report; on a Windows host (or fixture: Report.windows) the plan also checks
 * what that install offers (JIT or native-only, its program and map types). Without one (check on Linux)
 * the plan says what would load on a Windows host with eBPF for Windows.
 */
export function planWindows(bytes: Uint8Array, obj: BpfObject, report?: Report): { plan: Plan; windows: WindowsPlan } {
  const tr = translateForWindows(bytes, obj);
  const windows = windowsSummary(tr);
  const w = report?.windows;
  const reasons = [`windows: translated for eBPF for Windows (tables of ${windows.source})`];
  if (w) reasons.push(`windows: this host: ${w.os.reason}, eBPF for Windows ${w.ebpf.version ?? '(version unknown)'}, ${w.execution.mode ?? 'execution mode unknown'}`);
  else reasons.push(`this host is ${report?.system.platform ?? process.platform}: the plan says what would load on a Windows host with eBPF for Windows`);
  const host = report && report.system.platform === 'win32' ? hostRefusals(report, tr) : [];
  if (tr.accepted && host.length === 0) {
    reasons.push(...tr.steps);
    return { plan: { backend: 'windows', blocking: [], uncertain: [], reasons, compat: ['windows'] }, windows };
  }
  const unavailable = [...tr.refusals, ...host].map((r) => ({ backend: 'windows' as const, reason: `${r.subject}: ${r.reason}` }));
  return { plan: { backend: null, blocking: [], uncertain: [], reasons, unavailable }, windows: { ...windows, accepted: false, refusals: [...tr.refusals, ...host] } };
}
