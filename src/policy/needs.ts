// What an eBPF object asks of the policy, read from the project's own parse of it (no kernel involved):
// the program kinds, the helpers and kfuncs its code calls, the binaries its uprobe sections name, the
// attach targets it will pick at run time and the maps that ask to be pinned. `check` prints it; the
// load gate (enforce.ts) compares it with the policy.
import { insn, OP_CALL, type BpfObject, type BpfProgram } from '../object/loader.js';
import { sectionDef } from '../object/sections.js';
import { sectionBinary } from '../object/uprobe.js';
import { HELPER_NAME, PROG_TYPE } from '../kernel/uapi.js';

/** what kind of target a program of this kind is attached to when the guest names one */
export type TargetKind = 'interface' | 'cgroup' | 'uprobe';

export interface ProgramNeeds {
  name: string;
  section: string;
  /** the kernel's program type name; 'uprobe' for kprobe-type programs on u(ret)probe/usdt sections */
  kind: string;
  /** helpers the program calls (bpf_map_lookup_elem, ...) */
  helpers: string[];
  /** kfuncs the program calls */
  kfuncs: string[];
  /** the binary its section names (uprobe/BINARY:FUNC, usdt/BINARY:...) */
  binary?: string;
  /** the target the guest may name at attach time */
  target?: TargetKind;
}

export interface ObjectNeeds {
  programs: ProgramNeeds[];
  /** maps whose definition asks for pinning (LIBBPF_PIN_BY_NAME) */
  pinnedMaps: string[];
}

const CGROUP_KINDS = new Set(['cgroup_skb', 'cgroup_sock', 'sock_ops', 'cgroup_device', 'cgroup_sock_addr', 'cgroup_sysctl', 'cgroup_sockopt']);
const INTERFACE_KINDS = new Set(['xdp', 'socket_filter', 'sched_cls']);

/** the kernel's program type names by id (BPF_PROG_TYPE_CGROUP_SKB -> 'cgroup_skb'), as the prober names them */
const TYPE_NAMES = new Map<number, string>(Object.entries(PROG_TYPE).filter(([k]) => k !== 'UNSPEC').map(([k, id]) => [id, k.toLowerCase()]));

/** the program kinds a policy may name: every program type, and 'uprobe' */
export const PROGRAM_KINDS: ReadonlySet<string> = new Set([...TYPE_NAMES.values(), 'uprobe']);

function programKind(type: number, section: string): string {
  if (type === PROG_TYPE.KPROBE && sectionDef(section)?.uprobe === true) return 'uprobe';
  return TYPE_NAMES.get(type) ?? `type ${type}`;
}

function targetKind(kind: string): TargetKind | undefined {
  if (CGROUP_KINDS.has(kind)) return 'cgroup';
  if (INTERFACE_KINDS.has(kind)) return 'interface';
  if (kind === 'uprobe') return 'uprobe';
  return undefined;
}

function helperName(id: number): string {
  const n = HELPER_NAME[id];
  return n ? `bpf_${n}` : `helper#${id}`;
}

/** helpers and kfuncs called by a program's linked code */
function calls(p: BpfProgram): { helpers: string[]; kfuncs: string[] } {
  const helpers = new Set<string>();
  const kfuncs = new Set<string>();
  const names = new Map(p.externRelocs.filter((r) => r.via === 'call').map((r) => [r.insn, r.name]));
  const n = p.insns.length >> 3;
  for (let i = 0; i < n; i++) {
    if (insn.code(p.insns, i) !== OP_CALL) continue;
    const src = insn.src(p.insns, i);
    if (src === 0) helpers.add(helperName(insn.imm(p.insns, i)));
    else if (src === 2) kfuncs.add(names.get(i) ?? `kfunc#${insn.imm(p.insns, i)}`);
  }
  return { helpers: [...helpers].sort(), kfuncs: [...kfuncs].sort() };
}

export function objectNeeds(obj: BpfObject): ObjectNeeds {
  return {
    programs: obj.programs.map((p) => {
      const kind = programKind(p.type, p.section);
      const binary = sectionBinary(p.section);
      const target = targetKind(kind);
      return { name: p.name, section: p.section, kind, ...calls(p), ...(binary ? { binary } : {}), ...(target ? { target } : {}) };
    }),
    pinnedMaps: obj.maps.filter((m) => m.pinning !== 0).map((m) => m.name),
  };
}
