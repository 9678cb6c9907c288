// The Linux -> eBPF for Windows translation pass: an object built for Linux in, the same object with
// Windows numbers out (map types in .maps BTF and legacy `maps` definitions, helper ids in `call imm`),
// each program's Windows program and attach type, and every part Windows cannot run refused with its
// reason. Pure: bytes and our object model in, bytes and data out; no syscalls, no ebpfapi.dll.
import { loadObject, type BpfObject } from '../../../src/object/loader.js';
import { parseElf, SHF } from '../../../src/object/elf.js';
import { HELPER, HELPER_NAME, MAP_TYPE } from '../../../src/kernel/uapi.js';
import { mapTypeName } from '../../../src/probe/tables.js';
import type { ObjectEdits } from '../../../src/object/edits.js';
import { ringbufToPerf, CompatError } from '../../../compat/ringbuf/index.js';
import { windowsMapType, WIN_MAP_TYPE } from './maps.js';
import { windowsHelper, windowsTracePrintk } from './helpers.js';
import { windowsProgram } from './programs.js';
import { btfTypeSlots } from './btf-types.js';
import { translateContext } from './context.js';

export interface TranslatedProgram {
  name: string;
  section: string;
  /** the Linux program and attach type (libbpf's section table) */
  linux: { progType: number; attachType: number };
  /** the Windows section, program and attach type */
  windows: { section: string; progType: number; attachType: number };
}

export interface TranslatedMap {
  name: string;
  linuxType: number;
  windowsType: number;
  /** where the number was rewritten: the .maps BTF (an array's nelems), the legacy `maps` section, or unchanged */
  via: 'btf' | 'legacy' | 'same';
}

export interface HelperRewrite {
  /** the function whose call it is (program or subprogram) */
  func: string;
  /** instruction index in its ELF section */
  insn: number;
  linux: number;
  windows: number;
}

export interface Refusal {
  /** "program 'handle_exec' (tp/sched/sched_process_exec)", "map 'counts' (stack_trace)", "helper bpf_probe_read_kernel in 'x'" */
  subject: string;
  reason: string;
}

export interface Translation {
  /** every program and map has a Windows counterpart */
  accepted: boolean;
  /** the rewritten object (the input's bytes when nothing changed or when refused) */
  bytes: Uint8Array;
  programs: TranslatedProgram[];
  maps: TranslatedMap[];
  helpers: HelperRewrite[];
  /** what the backend applies as it opens the bytes, in Windows numbers (the ring buffer step's perf arrays and scratch map) */
  edits?: ObjectEdits;
  /** one line per step taken, for `check` and --verbose */
  steps: string[];
  refusals: Refusal[];
  /** differences the pass leaves (sock_ops op numbers, sock_addr contexts, a context it could not follow): the object may load but behave differently */
  caveats: string[];
}

const RINGBUF_RECORD_HELPERS = new Set<number>([HELPER.ringbuf_reserve, HELPER.ringbuf_submit, HELPER.ringbuf_discard]);

const helperName = (id: number): string => (HELPER_NAME[id] ? `bpf_${HELPER_NAME[id]}` : `helper #${id}`);

/** every helper call (`call imm`, src 0) of the object's executable sections */
function helperCalls(bytes: Uint8Array): Array<{ section: string; fileOff: number; insn: number; id: number; data: Uint8Array }> {
  const elf = parseElf(bytes);
  const out: Array<{ section: string; fileOff: number; insn: number; id: number; data: Uint8Array }> = [];
  for (const s of elf.sections) {
    if ((s.flags & SHF.EXECINSTR) === 0 || s.size === 0) continue;
    const d = s.data();
    const dv = new DataView(d.buffer, d.byteOffset, d.byteLength);
    for (let i = 0; i + 8 <= d.length; i += 8) {
      if (d[i] === 0x85 && d[i + 1]! >> 4 === 0) out.push({ section: s.name, fileOff: s.offset + i + 4, insn: i / 8, id: dv.getInt32(i + 4, true), data: d });
    }
  }
  return out;
}

/** the function of a section's instruction, by the object's function table */
function funcAt(obj: BpfObject, section: string, insn: number): string {
  return obj.functions.find((f) => f.section === section && insn >= f.sectionInsn && insn < f.sectionInsn + f.length)?.name ?? section;
}

/**
 * How many arguments a bpf_trace_printk call passes (2 to 5): the highest of r3..r5 written between the
 * call and the previous call, exit or jump of the straight-line code before it (clang sets a call's
 * arguments right before it). A count too low prints fewer values; never more registers than were set.
 */
export function printkArgs(section: Uint8Array, callInsn: number): number {
  let args = 2;
  for (let j = callInsn - 1; j >= 0; j--) {
    const code = section[j * 8]!;
    const cls = code & 7;
    if (cls === 5 || cls === 6) break; // JMP, JMP32 (call, exit, branches)
    const dst = section[j * 8 + 1]! & 0xf;
    // ALU, ALU64, LD (lddw), LDX write dst
    if ((cls === 4 || cls === 7 || cls === 0 || cls === 1) && dst >= 3 && dst <= 5 && code !== 0) args = Math.max(args, dst);
  }
  return args;
}

/**
 * Translates a Linux eBPF object for eBPF for Windows. `parsed`: our parse of `bytes` (loadObject) when the
 * caller has it.
 */
export function translateForWindows(bytes: Uint8Array, parsed?: BpfObject): Translation {
  const obj = parsed ?? loadObject(bytes);
  const refusals: Refusal[] = [];
  const steps: string[] = [];
  const programs: TranslatedProgram[] = [];
  for (const p of obj.programs) {
    const v = windowsProgram(p.section);
    const subject = `program '${p.name}' (${p.section})`;
    if ('refused' in v) refusals.push({ subject, reason: v.refused });
    else programs.push({ name: p.name, section: p.section, linux: { progType: p.type, attachType: p.expectedAttachType }, windows: { section: v.windows.section, progType: v.windows.progType, attachType: v.windows.attachType } });
  }
  const userMaps = obj.maps.filter((m) => m.kind !== 'data');
  for (const m of userMaps) {
    const v = windowsMapType(m.type, mapTypeName(m.type));
    if ('refused' in v) refusals.push({ subject: `map '${m.name}' (${mapTypeName(m.type)})`, reason: v.refused });
  }
  const calls = helperCalls(bytes);
  const refusedHelpers = new Map<string, Refusal>();
  for (const c of calls) {
    const v = windowsHelper(c.id, helperName(c.id));
    if (!('refused' in v)) continue;
    const func = funcAt(obj, c.section, c.insn);
    const key = `${c.id}:${func}`;
    if (!refusedHelpers.has(key)) refusedHelpers.set(key, { subject: `helper ${helperName(c.id)} called by '${func}'`, reason: v.refused });
  }
  refusals.push(...refusedHelpers.values());
  const caveats: string[] = [];
  const none: Translation = { accepted: false, bytes, programs, maps: [], helpers: [], steps, refusals, caveats };
  if (refusals.length) return none;

  // ring buffer records: Windows has bpf_ringbuf_output only; reserve/submit/discard become a per-CPU scratch
  // value and bpf_perf_event_output (the ringbuf->perf compat pass, in Linux numbers), ring buffers perf event arrays
  let out = bytes;
  let edits: ObjectEdits | undefined;
  let current = obj;
  const perfRings = new Set<string>();
  if (calls.some((c) => RINGBUF_RECORD_HELPERS.has(c.id))) {
    try {
      const r = ringbufToPerf(bytes, userMaps);
      out = r.bytes;
      current = loadObject(out);
      for (const n of r.notes) steps.push(`ringbuf records: ${n}`);
      for (const rt of r.edits.retype ?? []) perfRings.add(rt.name);
      edits = {
        retype: (r.edits.retype ?? []).map((rt) => ({ ...rt, type: WIN_MAP_TYPE.PERF_EVENT_ARRAY })),
        ...(r.edits.hostMaps ? { hostMaps: r.edits.hostMaps.map((h) => ({ ...h, type: h.type === MAP_TYPE.PERCPU_ARRAY ? WIN_MAP_TYPE.PERCPU_ARRAY : h.type })) } : {}),
      };
    } catch (e) {
      if (!(e instanceof CompatError)) throw e;
      refusals.push({ subject: 'ring buffer records', reason: `Windows has bpf_ringbuf_output but no bpf_ringbuf_reserve/submit/discard, and rewriting them failed: ${e.message}` });
      return none;
    }
  }
  out = new Uint8Array(out);

  // helper ids
  const helpers: HelperRewrite[] = [];
  for (const c of helperCalls(out)) {
    const v = windowsHelper(c.id, helperName(c.id));
    let w: number;
    if ('windows' in v) w = v.windows;
    else if (c.id === HELPER.trace_printk) w = windowsTracePrintk(printkArgs(c.data, c.insn));
    else throw new Error(`translate: helper ${c.id} left after the ring buffer step`); // refused above, or rewritten by it
    new DataView(out.buffer, out.byteOffset, out.byteLength).setInt32(c.fileOff, w, true);
    helpers.push({ func: funcAt(current, c.section, c.insn), insn: c.insn, linux: c.id, windows: w });
  }
  // program contexts and return codes
  for (const p of programs) {
    const f = current.functions.find((x) => x.isProgram && x.name === p.name);
    const sec = current.elf.sections.find((x) => x.name === p.section && (x.flags & SHF.EXECINSTR) !== 0);
    if (!f || !sec) continue;
    const r = translateContext(out.subarray(sec.offset, sec.offset + sec.size), f.sectionInsn, f.sectionInsn + f.length, p.windows.progType, `program '${p.name}' (${p.section})`);
    steps.push(...r.steps);
    caveats.push(...r.caveats);
  }
  if (helpers.some((h) => h.linux !== h.windows)) steps.push(`helper ids: ${[...new Set(helpers.filter((h) => h.linux !== h.windows).map((h) => `${helperName(h.linux)} ${h.linux} -> ${h.windows}`))].join(', ')}`);

  // map type numbers
  const maps: TranslatedMap[] = [];
  const slots = btfTypeSlots(current);
  const dv = new DataView(out.buffer, out.byteOffset, out.byteLength);
  for (const m of current.maps.filter((x) => x.kind !== 'data')) {
    const target = perfRings.has(m.name) ? WIN_MAP_TYPE.PERF_EVENT_ARRAY : (windowsMapType(m.type, '') as { windows: number }).windows;
    if (target === m.type) {
      maps.push({ name: m.name, linuxType: m.type, windowsType: target, via: 'same' });
      continue;
    }
    if (m.kind === 'legacy') {
      const sec = current.elf.sections[m.sectionIndex]!;
      dv.setUint32(sec.offset + m.sectionOffset, target, true);
      maps.push({ name: m.name, linuxType: m.type, windowsType: target, via: 'legacy' });
    } else {
      const slot = slots.get(m.name);
      if (!slot || 'shared' in slot) {
        refusals.push({ subject: `map '${m.name}' (${mapTypeName(m.type)})`, reason: `its BTF type number cannot be rewritten in place: ${slot && 'shared' in slot ? slot.shared : 'no `type` field'}` });
        continue;
      }
      dv.setUint32(slot.fileOff, target, true);
      maps.push({ name: m.name, linuxType: m.type, windowsType: target, via: 'btf' });
    }
  }
  if (refusals.length) return { ...none, programs, maps, helpers };
  const renumbered = maps.filter((m) => m.via !== 'same');
  if (renumbered.length) steps.push(`map types: ${renumbered.map((m) => `'${m.name}' ${mapTypeName(m.linuxType)} ${m.linuxType} -> ${m.windowsType}`).join(', ')}`);
  for (const p of programs) steps.push(`program '${p.name}': section '${p.windows.section}', Windows program type ${p.windows.progType}, attach type ${p.windows.attachType}`);
  return { accepted: true, bytes: out, programs, maps, helpers, ...(edits ? { edits } : {}), steps, refusals, caveats };
}
