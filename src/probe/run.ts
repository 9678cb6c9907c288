// The state of one probe run, shared by the checks: host facts, the live probes (if any), vmlinux BTF
// type ids (scanned once, on first use) and memoized results of loads several checks share.
import type { BtfSection, Feature } from './types.js';
import type { LiveProbes, LoadRequest, SystemView } from './system.js';
import type { Ctx } from './features.js';
import { scanBtf, type KernelBtf, type ScanHit, type ScanKind } from './btf.js';
import type { PerfChecks } from './perf.js';

/** The BTF types the live probes attach to. */
export const BTF_QUERIES: ReadonlyArray<{ kind: ScanKind; name: string }> = [
  { kind: 'FUNC', name: 'bpf_fentry_test1' }, // a kernel function kept for BPF self-tests (net/bpf/test_run.c)
  { kind: 'FUNC', name: 'do_unlinkat' },
  { kind: 'FUNC', name: 'bpf_lsm_file_open' },
  { kind: 'TYPEDEF', name: 'btf_trace_sched_switch' },
  { kind: 'STRUCT', name: 'tcp_congestion_ops' },
  { kind: 'ENUM', name: 'bpf_func_id' },
];

export interface Run extends Ctx {
  sys: SystemView;
  live: LiveProbes | undefined;
  /** why nothing is tried when `live` is undefined */
  noProbe: string;
  btf: BtfSection;
  /** the running kernel's own BTF (sysfs), or why there is none */
  kernelBtf: KernelBtf;
  activeLsms: string[] | null;
  memo: Map<string, Feature>;
  /** the perf_event_open checks, started when the run began */
  perf: PerfChecks;
  /** vmlinux BTF hits by `KIND:name`, or the reason there are none */
  btfIds(): Map<string, ScanHit> | { error: string };
}

export function makeRun(base: Omit<Run, 'memo' | 'btfIds'>): Run {
  let ids: Map<string, ScanHit> | { error: string } | undefined;
  return {
    ...base,
    memo: new Map(),
    btfIds() {
      if (!ids) {
        const bytes = base.kernelBtf.bytes;
        if (!bytes) ids = { error: base.kernelBtf.reason };
        else {
          try {
            ids = scanBtf(bytes, BTF_QUERIES);
          } catch (err) {
            ids = { error: `vmlinux BTF unreadable: ${err instanceof Error ? err.message : String(err)}` };
          }
        }
      }
      return ids;
    },
  };
}

export function memo(run: Run, key: string, f: () => Feature): Feature {
  let v = run.memo.get(key);
  if (!v) {
    v = f();
    run.memo.set(key, v);
  }
  return v;
}

/** one load with the kernel version filled in (kprobe programs needed it before 5.0) */
export function load(run: Run, live: LiveProbes, req: LoadRequest): ReturnType<LiveProbes['load']> {
  return live.load({ kernVersion: run.kernel.code, ...req });
}
