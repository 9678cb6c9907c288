// struct_ops maps (e.g. a tcp_congestion_ops): registered by wasm_attach_bpf_program only, and tied
// to the run. On Linux 6.4+ the map is created with BPF_F_LINK and registered through a BPF link
// (BPF_LINK_CREATE, attach type BPF_STRUCT_OPS): the link's fd holds the registration, so it ends
// when the object is closed or the process dies, even by SIGKILL. Before 6.4 libbpf's registration is
// undone when the object is closed; a SIGKILL leaves it registered. A guest's map_operate on a
// struct_ops map is refused (mapaccess.ts).
import os from 'node:os';
import { parseElf, STT } from '../../src/object/elf.js';
import type { LoadOptions } from '../backend.js';
import type { NativeAddon } from './native.js';
import { MAP_TYPE_FD } from './mapaccess.js';
import { BPF_F } from '../../src/kernel/uapi.js';

/** BPF_F_LINK (include/uapi/linux/bpf.h): the map is registered and unregistered by a bpf_link */
const BPF_F_LINK = BPF_F.LINK;

/** whether struct_ops maps can be registered through a link (BPF_F_LINK: Linux 6.4) */
export function structOpsLinks(release = os.release()): boolean {
  const m = /^(\d+)\.(\d+)/.exec(release);
  if (!m) return false;
  const [a, b] = [Number(m[1]), Number(m[2])];
  return a > 6 || (a === 6 && b >= 4);
}

/** before the load: every struct_ops map of `obj` gets BPF_F_LINK when the kernel has it; returns whether */
export function prepareStructOps(native: NativeAddon, obj: number, opts: LoadOptions): boolean {
  const link = structOpsLinks();
  for (const m of native.maps(obj)) {
    if (m.type !== MAP_TYPE_FD.STRUCT_OPS) continue;
    if (link) native.setMapFlags(obj, m.name, (m.flags | BPF_F_LINK) >>> 0);
    if (opts.verbose) {
      opts.log(
        link
          ? `wasm-bpf: struct_ops map '${m.name}': created with BPF_F_LINK: once attached, its registration is a BPF link that ends with the run, even if the process is killed`
          : `wasm-bpf: struct_ops map '${m.name}': this kernel (${os.release()}) has no BPF_F_LINK for struct_ops (6.4+): once attached, it is unregistered when the object closes, but a SIGKILL of wasm-bpf leaves it registered`,
      );
    }
  }
  return link;
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
