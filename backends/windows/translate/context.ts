// Program contexts and return codes that differ between Linux and eBPF for Windows (include/ebpf_nethooks.h
// of microsoft/ebpf-for-windows @ 64be483d, ./source.ts): this pass does not rewrite them yet, so `check`
// says so for every program whose context or results differ (the object loads; it would read wrong fields).
import type { TranslatedProgram } from './index.js';
import { WIN_PROG_TYPE } from './programs.js';

/** per Windows program type: what differs from the Linux program type of the same name */
export const CONTEXT_DIFFERENCES: ReadonlyMap<number, string> = new Map([
  [WIN_PROG_TYPE.XDP, "Linux's struct xdp_md (u32 data, data_end at offsets 0, 4) is Windows' xdp_md_t (pointers at 0, 8; ingress_ifindex at 24), and the XDP actions differ (Linux XDP_DROP 1, XDP_PASS 2; Windows XDP_PASS 1, XDP_DROP 2)"],
  [WIN_PROG_TYPE.SOCK_OPS, "Linux's struct bpf_sock_ops (family at 20, remote_ip4 24, local_ip4 28, remote_ip6 32, local_ip6 48, remote_port 64, local_port 68) is Windows' bpf_sock_ops_t (family 4, local_ip 8, local_port 24, remote_ip 28, remote_port 44), and the ops differ (Linux ACTIVE_ESTABLISHED_CB 4, PASSIVE 5; Windows 0, 1)"],
  [WIN_PROG_TYPE.CGROUP_SOCK_ADDR, "Linux's struct bpf_sock_addr and Windows' bpf_sock_addr_t differ in layout, and the verdicts differ (Linux 1 allows; Windows BPF_SOCK_ADDR_VERDICT_PROCEED/REJECT)"],
]);

/** one caveat per program whose context or return codes the pass leaves as Linux laid them out */
export function contextNotes(programs: readonly TranslatedProgram[]): string[] {
  const out: string[] = [];
  for (const p of programs) {
    const d = CONTEXT_DIFFERENCES.get(p.windows.progType);
    if (d) out.push(`program '${p.name}' (${p.section}): context not rewritten yet: ${d}`);
  }
  return out;
}
