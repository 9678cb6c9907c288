// Program contexts and return codes, Linux -> eBPF for Windows (include/ebpf_nethooks.h of
// microsoft/ebpf-for-windows @ 64be483d, ./source.ts): each context load found by ./ctxflow.ts moved to
// the Windows field (xdp_md's u32 data/data_end become pointer loads), XDP return codes renumbered; what
// cannot be rewritten stays a caveat that `check` prints (the object would load but read wrong fields).
import { ctxFlow, CtxFlowError } from './ctxflow.js';
import { WIN_PROG_TYPE } from './programs.js';

interface Field {
  name: string;
  off: number;
  size: number;
}

/** Linux struct xdp_md offset (u32 loads) -> Windows xdp_md_t field */
const XDP_FIELDS: ReadonlyMap<number, Field> = new Map([
  [0, { name: 'data', off: 0, size: 8 }],
  [4, { name: 'data_end', off: 8, size: 8 }],
  [8, { name: 'data_meta', off: 16, size: 8 }],
  [12, { name: 'ingress_ifindex', off: 24, size: 4 }],
]);

/** Linux XDP action -> Windows xdp_action_t (XDP_ABORTED drops, as on Linux) */
const XDP_ACTIONS: ReadonlyMap<number, number> = new Map([
  [0, 2],
  [1, 2],
  [2, 1],
  [3, 3],
]);

/** Linux struct bpf_sock_ops offset (u32 loads) -> Windows bpf_sock_ops_t field */
const SOCK_OPS_FIELDS: ReadonlyMap<number, Field> = new Map([
  [0, { name: 'op', off: 0, size: 4 }],
  [20, { name: 'family', off: 4, size: 4 }],
  [24, { name: 'remote_ip4', off: 28, size: 4 }],
  [28, { name: 'local_ip4', off: 8, size: 4 }],
  ...[0, 1, 2, 3].map((k): [number, Field] => [32 + 4 * k, { name: `remote_ip6[${k}]`, off: 28 + 4 * k, size: 4 }]),
  ...[0, 1, 2, 3].map((k): [number, Field] => [48 + 4 * k, { name: `local_ip6[${k}]`, off: 8 + 4 * k, size: 4 }]),
  [64, { name: 'remote_port', off: 44, size: 4 }],
  [68, { name: 'local_port', off: 24, size: 4 }],
]);

/** what stays different after the rewrite, per Windows program type */
const REMAINING: ReadonlyMap<number, string> = new Map([
  [WIN_PROG_TYPE.SOCK_OPS, 'the op numbers differ (Linux BPF_SOCK_OPS_ACTIVE_ESTABLISHED_CB 4, PASSIVE_ESTABLISHED_CB 5; Windows 0, 1) and are compared as constants the pass does not rewrite; ports are in network byte order on Windows (Linux: local_port in host order)'],
  [WIN_PROG_TYPE.CGROUP_SOCK_ADDR, "Linux's struct bpf_sock_addr and Windows' bpf_sock_addr_t differ in layout, and the verdicts differ (Linux 1 allows; Windows BPF_SOCK_ADDR_VERDICT_PROCEED/REJECT); not rewritten"],
]);

const TABLES: ReadonlyMap<number, { struct: string; fields: ReadonlyMap<number, Field> }> = new Map([
  [WIN_PROG_TYPE.XDP, { struct: 'xdp_md', fields: XDP_FIELDS }],
  [WIN_PROG_TYPE.SOCK_OPS, { struct: 'bpf_sock_ops', fields: SOCK_OPS_FIELDS }],
]);

export interface ContextResult {
  steps: string[];
  caveats: string[];
}

/**
 * Rewrites, in `code` (the program's ELF section, modified in place), the context loads and (XDP) return
 * codes of the program at slots [start, end). Nothing is modified when any of it cannot be followed.
 */
export function translateContext(code: Uint8Array, start: number, end: number, progType: number, subject: string): ContextResult {
  const table = TABLES.get(progType);
  const remaining = REMAINING.get(progType);
  const caveats = remaining ? [`${subject}: ${remaining}`] : [];
  if (!table) return { steps: [], caveats };
  let flow;
  try {
    flow = ctxFlow(code, start, end);
  } catch (e) {
    if (!(e instanceof CtxFlowError)) throw e;
    return { steps: [], caveats: [`${subject}: context not rewritten (${e.message}): Linux's ${table.struct} layout differs from Windows'`, ...caveats] };
  }
  const edits: Array<{ insn: number; code?: number; off?: number; imm?: number }> = [];
  const moved: string[] = [];
  for (const l of flow.loads) {
    const f = table.fields.get(l.off);
    if (!f || l.size !== 4) {
      return { steps: [], caveats: [`${subject}: context not rewritten: a ${l.size}-byte load of ${table.struct} at offset ${l.off} (instruction ${l.insn}) has no Windows counterpart`, ...caveats] };
    }
    edits.push({ insn: l.insn, ...(f.size === 8 ? { code: 0x79 } : {}), off: f.off });
    moved.push(`${f.name} ${l.off} -> ${f.off}${f.size === 8 ? ' (pointer)' : ''}`);
  }
  let returns = '';
  if (progType === WIN_PROG_TYPE.XDP) {
    if (flow.returnsUnknown) return { steps: [], caveats: [`${subject}: XDP actions not renumbered (${flow.returnsUnknown}): Linux XDP_PASS 2, XDP_DROP 1; Windows XDP_PASS 1, XDP_DROP 2`, ...caveats] };
    const dv = new DataView(code.buffer, code.byteOffset, code.byteLength);
    const actions: string[] = [];
    for (const i of flow.returns) {
      const v = dv.getInt32(i * 8 + 4, true);
      const w = XDP_ACTIONS.get(v);
      if (w === undefined) return { steps: [], caveats: [`${subject}: returns XDP action ${v} (instruction ${i}), which Windows lacks (no XDP_REDIRECT)`, ...caveats] };
      edits.push({ insn: i, imm: w });
      actions.push(`${v} -> ${w}`);
    }
    returns = `; XDP actions ${[...new Set(actions)].join(', ') || 'none'}`;
  }
  const dv = new DataView(code.buffer, code.byteOffset, code.byteLength);
  for (const e of edits) {
    if (e.code !== undefined) code[e.insn * 8] = e.code;
    if (e.off !== undefined) dv.setInt16(e.insn * 8 + 2, e.off, true);
    if (e.imm !== undefined) dv.setInt32(e.insn * 8 + 4, e.imm, true);
  }
  return { steps: [`${subject}: context ${table.struct} loads ${[...new Set(moved)].join(', ') || 'none'}${returns}`], caveats };
}
