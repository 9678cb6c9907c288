// Which compat passes (compat/) a plan would apply on a host, and why: for `wasm-bpf probe`.
// Per-object decisions are made by planObject; this is the host-wide view of the same rules.
import type { Report } from '../probe/types.js';

export interface CompatStep {
  step: 'ringbuf->perf' | 'btfhub' | 'ptregs';
  /** true: applied to every object that needs it on this host */
  applies: boolean;
  why: string;
}

export function compatSteps(r: Report): CompatStep[] {
  const ring = r.mapTypes['ringbuf'];
  const perf = r.mapTypes['perf_event_array'];
  const ringbuf: CompatStep =
    ring?.state === 'no' && perf?.state === 'yes'
      ? { step: 'ringbuf->perf', applies: true, why: `ring buffers are missing (${ring.reason}): objects using them are rewritten onto perf event arrays before load` }
      : { step: 'ringbuf->perf', applies: false, why: ring?.state === 'yes' ? 'not needed: the kernel has BPF ring buffers' : `not possible: ${perf?.reason ?? 'no perf event arrays either'}` };
  const v = r.btf.vmlinux;
  const btfhub: CompatStep =
    v.source === 'btfhub'
      ? { step: 'btfhub', applies: true, why: `vmlinux BTF comes from the BTFHub cache (${v.path ?? r.btf.btfhubPath})` }
      : v.state === 'yes'
        ? { step: 'btfhub', applies: false, why: `not needed: vmlinux BTF from ${v.source}${v.path ? ` (${v.path})` : ''}` }
        : { step: 'btfhub', applies: true, why: `no vmlinux BTF here: CO-RE objects get it from BTFHub at run time (cached at ${r.btf.btfhubPath})` };
  const ptregs: CompatStep = {
    step: 'ptregs',
    applies: true,
    why: `kprobe/uprobe objects built for another arch have their pt_regs reads remapped to ${r.system.arch.normalized} registers`,
  };
  return [ringbuf, btfhub, ptregs];
}
