// The plan's compat passes (and its struct_ops choice), applied in front of the backend: each is bytes -> bytes (plus, for what bytes
// cannot carry, edits the backend honours as it opens them: src/object/edits.ts). No kernel, no addon.
import type { BpfObject } from '../object/loader.js';
import type { ObjectEdits } from '../object/edits.js';
import { BackendError } from '../errors.js';
import { ptregsForHost, type PtRegsSettings } from '../../compat/ptregs/index.js';
import { CompatError, ringbufToPerf } from '../../compat/ringbuf/index.js';
import type { Plan } from './plan.js';
import { BPF_F, ERRNO, MAP_TYPE } from '../kernel/uapi.js';
import type { ObjectFacts } from './facts.js';

export interface Prepared {
  bytes: Uint8Array;
  edits?: ObjectEdits;
}

/**
 * `parsed`: the selector's parse of `bytes` when it has one (the first pass reuses it). The ring buffer
 * pass runs on the pt_regs pass's output (its map names are the same: pt_regs remapping only patches
 * instructions).
 */
export function applyCompat(
  bytes: Uint8Array,
  plan: Pick<Plan, 'compat' | 'structOpsLink'>,
  facts: ObjectFacts,
  parsed: BpfObject | undefined,
  log: ((line: string) => void) | undefined,
  ptregs: PtRegsSettings = {},
): Prepared {
  let out: Prepared = { bytes };
  if (plan.structOpsLink) {
    const mapFlags = facts.maps.filter((m) => m.type === MAP_TYPE.STRUCT_OPS).map((m) => ({ name: m.name, flags: BPF_F.LINK }));
    out = { bytes, edits: { mapFlags } };
  }
  for (const step of plan.compat ?? []) {
    if (step === 'ptregs') {
      out = { ...out, bytes: ptregsForHost(out.bytes, log, out.bytes === bytes ? parsed : undefined, ptregs) };
    } else if (step === 'ringbuf->perf') {
      let r: ReturnType<typeof ringbufToPerf>;
      try {
        r = ringbufToPerf(out.bytes, facts.maps);
      } catch (e) {
        if (!(e instanceof CompatError)) throw e;
        throw new BackendError(`the ringbuf -> perf buffer compat pass failed: ${e.message}`, ERRNO.EOPNOTSUPP, '', 'run the object on Linux 5.8 or newer (BPF ring buffers)', { cause: e });
      }
      if (log) for (const n of r.notes) log(`wasm-bpf: compat ringbuf->perf: ${n}`);
      out = { bytes: r.bytes, edits: mergeEdits(out.edits, r.edits) };
    }
    // 'windows': the Windows backend translates the object as it loads it (backends/windows/translate)
  }
  return out;
}

function mergeEdits(a: ObjectEdits | undefined, b: ObjectEdits): ObjectEdits {
  if (!a) return b;
  return {
    retype: [...(a.retype ?? []), ...(b.retype ?? [])],
    hostMaps: [...(a.hostMaps ?? []), ...(b.hostMaps ?? [])],
    mapFlags: [...(a.mapFlags ?? []), ...(b.mapFlags ?? [])],
  };
}
