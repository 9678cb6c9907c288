// struct_ops maps (e.g. a tcp_congestion_ops): registered by wasm_attach_bpf_program only, and tied
// to the run. When the kernel has struct_ops links (Linux 6.4+; the prober's struct_ops_link, the
// selector's plan) the map is created with BPF_F_LINK and registered through a BPF link
// (BPF_LINK_CREATE, attach type BPF_STRUCT_OPS): the link's fd holds the registration, so it ends
// when the object is closed or the process dies, even by SIGKILL. Before 6.4 libbpf's registration is
// undone when the object is closed; a SIGKILL leaves it registered. A guest's map_operate on a
// struct_ops map is refused (mapaccess.ts).
import { parseElf, STT } from '../../src/object/elf.js';
import type { LoadOptions } from '../backend.js';
import type { KernelLib } from './native.js';
import { MAP_TYPE_FD } from './mapaccess.js';
import { BPF_F } from '../../src/kernel/uapi.js';

/** BPF_F_LINK (include/uapi/linux/bpf.h): the map is registered and unregistered by a bpf_link */
const BPF_F_LINK = BPF_F.LINK;

/**
 * After open, before the load: the struct_ops maps of `obj` that register through a link (the selector's
 * plan gave them BPF_F_LINK when the prober's report has struct_ops_link; ObjectEdits.mapFlags). Says
 * which with --verbose.
 */
export function linkedStructOps(native: KernelLib, obj: number, opts: LoadOptions): Set<string> {
  const linked = new Set<string>();
  for (const m of native.maps(obj)) {
    if (m.type !== MAP_TYPE_FD.STRUCT_OPS) continue;
    const link = (m.flags & BPF_F_LINK) !== 0;
    if (link) linked.add(m.name);
    if (opts.verbose) {
      opts.log(
        link
          ? `wasm-bpf: struct_ops map '${m.name}': created with BPF_F_LINK: once attached, its registration is a BPF link that ends with the run, even if the process is killed`
          : `wasm-bpf: struct_ops map '${m.name}': no BPF_F_LINK (the kernel has no struct_ops links, Linux 6.4+): once attached, it is unregistered when the object closes, but a SIGKILL of wasm-bpf leaves it registered`,
      );
    }
  }
  return linked;
}

/**
 * The struct_ops maps of an object by the programs they name: the relocations of `.struct_ops`
 * (the function pointers of each map's variable). Empty when the ELF cannot be read (libbpf opened
 * it, so that does not happen for objects that got this far).
 */
export function structOpsMapsByProgram(bytes: Uint8Array): Map<string, string[]> {
  const out = new Map<string, string[]>();
  try {
    const elf = parseElf(bytes);
    const sec = elf.section('.struct_ops');
    if (!sec) return out;
    const vars = elf.symbols.filter((s) => s.shndx === sec.index && s.type === STT.OBJECT && s.name !== '');
    for (const rel of elf.relocations) {
      if (rel.target !== sec.index) continue;
      for (const r of rel.entries) {
        const v = vars.find((s) => r.offset >= s.value && r.offset < s.value + s.size);
        const prog = elf.symbols[r.sym];
        if (!v || !prog || prog.type !== STT.FUNC) continue;
        const maps = out.get(prog.name) ?? [];
        if (!maps.includes(v.name)) maps.push(v.name);
        out.set(prog.name, maps);
      }
    }
  } catch {
    // an unreadable ELF: no program names a map (attach by the map's name still works)
  }
  return out;
}
