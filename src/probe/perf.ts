// The perf_event_open checks (tracepoint, kprobe PMU, uprobe PMU, CPU clock), started together at the
// beginning of a live probe: the kernel takes 5-50 ms to register a tracepoint/uprobe and an RCU grace period
// to close it, so they run on a background thread while the other probes go on.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { LiveProbes, PerfSpec, SystemView } from './system.js';
import { readText } from './system.js';
import { mountedFs } from './caps.js';
import { PERF_COUNT_SW, PERF_TYPE } from '../kernel/uapi.js';

const { SOFTWARE: PERF_TYPE_SOFTWARE, TRACEPOINT: PERF_TYPE_TRACEPOINT } = PERF_TYPE;
const PERF_COUNT_SW_CPU_CLOCK = PERF_COUNT_SW.CPU_CLOCK;
/** a kernel function kept for BPF self-tests: never hot, present with CONFIG_BPF_SYSCALL + CONFIG_NET */
export const KPROBE_SYMBOL = 'bpf_fentry_test1';

export type PerfKey = 'tracepoint' | 'kprobe' | 'uprobe' | 'cpu_clock';

/** What a perf check found before trying (paths, ids) and, once tried, its errno. */
export interface PerfChecks {
  tracefs: string | undefined;
  /** the tracepoint tried, or why none could be */
  tracepoint: { event: string; id: number } | { error: string };
  kprobePmu: number | undefined;
  uprobePmu: number | undefined;
  /** 0 / -errno of the open, or undefined when not tried */
  result(key: PerfKey): number | undefined;
  /** waits for the opens (if any are pending) and removes the uprobe target file; idempotent */
  finish(): void;
}

function pmuType(sys: SystemView, name: string): number | undefined {
  const r = readText(sys, `/sys/bus/event_source/devices/${name}/type`);
  if ('error' in r) return undefined;
  const n = Number.parseInt(r.text.trim(), 10);
  return Number.isInteger(n) ? n : undefined;
}

/** the tracefs directory: the tracefs mount, or a classic location that holds events */
function tracefsDir(sys: SystemView): string | undefined {
  const m = mountedFs(sys, 'tracefs');
  if (m) return m;
  for (const p of ['/sys/kernel/tracing', '/sys/kernel/debug/tracing']) if (sys.exists(`${p}/events`)) return p;
  return undefined;
}

function tracepointId(sys: SystemView, tfs: string | undefined): PerfChecks['tracepoint'] {
  if (!tfs) return { error: 'tracefs is not mounted' };
  let last = '';
  // sched_process_exec: opening it measured 0.4 ms here, a syscall tracepoint 15-90 ms
  for (const ev of ['sched/sched_process_exec', 'task/task_newtask', 'syscalls/sys_enter_getpid']) {
    const r = readText(sys, `${tfs}/events/${ev}/id`);
    if ('text' in r) {
      const id = Number.parseInt(r.text.trim(), 10);
      if (Number.isInteger(id)) return { event: ev, id };
      last = `${tfs}/events/${ev}/id: not a number`;
    } else last = `${tfs}/events/${ev}/id: ${r.error}`;
  }
  return { error: `cannot read a tracepoint id (${last})` };
}

/** Reads what the checks need and, with live probes, starts them. */
export function startPerfChecks(sys: SystemView, live: LiveProbes | undefined, platform = 'linux'): PerfChecks {
  if (platform !== 'linux') {
    return { tracefs: undefined, tracepoint: { error: `not a Linux host (${platform})` }, kprobePmu: undefined, uprobePmu: undefined, result: () => undefined, finish: () => {} };
  }
  const tracefs = tracefsDir(sys);
  const tracepoint = tracepointId(sys, tracefs);
  const kprobePmu = pmuType(sys, 'kprobe');
  const uprobePmu = pmuType(sys, 'uprobe');
  const keys: PerfKey[] = [];
  const specs: PerfSpec[] = [];
  let cleanup: (() => void) | undefined;
  if (live) {
    // the tracepoint first: a uprobe's close holds tracing locks that a later tracepoint open would wait for
    if ('id' in tracepoint) {
      keys.push('tracepoint');
      specs.push({ type: PERF_TYPE_TRACEPOINT, config: tracepoint.id, pid: 0, cpu: -1 });
    }
    keys.push('cpu_clock');
    specs.push({ type: PERF_TYPE_SOFTWARE, config: PERF_COUNT_SW_CPU_CLOCK, pid: -1, cpu: 0 });
    if (kprobePmu !== undefined) {
      keys.push('kprobe');
      specs.push({ type: kprobePmu, config: 0, name: KPROBE_SYMBOL, offset: 0, pid: -1, cpu: 0 });
    }
    if (uprobePmu !== undefined) {
      // a private file no process has mapped: the uprobe is registered but nothing gets patched
      try {
        const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'wasm-bpf-probe-'));
        const file = path.join(dir, 'target');
        fs.writeFileSync(file, Buffer.alloc(64, 0x90));
        cleanup = () => fs.rmSync(dir, { recursive: true, force: true });
        keys.push('uprobe');
        specs.push({ type: uprobePmu, config: 0, name: file, offset: 0, pid: -1, cpu: 0 });
      } catch {
        // no temp dir: the uprobe check reports it is not tried
      }
    }
  }
  const wait = live && specs.length ? live.perfEvents(specs) : undefined;
  let results: number[] | undefined;
  const finish = (): void => {
    if (wait && !results) results = wait();
    cleanup?.(); // the events hold the inode; the name is not needed any more
    cleanup = undefined;
  };
  return {
    tracefs,
    tracepoint,
    kprobePmu,
    uprobePmu,
    result(key) {
      const i = keys.indexOf(key);
      if (i < 0 || !wait) return undefined;
      finish();
      return results![i];
    },
    finish,
  };
}
