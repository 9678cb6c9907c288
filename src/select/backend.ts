// Picks the backend that runs each eBPF object a guest loads: the prober's report (cached per boot)
// against what the object's programs and maps need. `--backend` forces a choice.
import type { Backend, BackendName, LoadedObject, LoadOptions } from '../../backends/backend.js';
import { hasFastPaths, type DirectMapOps, type FastPaths } from '../../backends/fastpath.js';
import { BackendError, WasmBpfError, errorMessage } from '../errors.js';
import type { Report } from '../probe/types.js';
import { validateObject } from '../object/validate.js';
import { planObject, refusal, type ObjectShape } from './plan.js';
import { enforceLoad, restrictsObjects } from '../policy/enforce.js';
import { DEFAULT_POLICY } from '../policy/policy.js';
import { ERRNO } from '../kernel/uapi.js';

export type BackendChoice = 'auto' | BackendName;

export const BACKEND_CHOICES: readonly BackendChoice[] = ['auto', 'linux', 'userspace', 'windows'];

const { EOPNOTSUPP } = ERRNO;

async function linuxBackend(btfCustomPath: string | undefined): Promise<Backend> {
  if (process.platform !== 'linux') {
    throw new WasmBpfError('UNSUPPORTED', `the linux backend needs Linux; this is ${process.platform}`);
  }
  const { LinuxBackend } = await import('../../backends/linux/index.js');
  return new LinuxBackend(undefined, btfCustomPath ? { btfCustomPath } : {});
}

export interface BackendOptions {
  /** diagnostics of the selector */
  log?: (line: string) => void;
  /** the run's stop flag (StopSignal's shared memory), for backends that block */
  stop?: SharedArrayBuffer;
  /** the prober's report when the caller already has it (the main thread reads it while the guest's thread starts) */
  report?: Report;
  /** features the report should say are absent (--assume-missing), when this reads the report itself */
  assumeMissing?: readonly string[];
  /** vmlinux BTF for libbpf's CO-RE when the kernel has none (BTFHub) */
  btfCustomPath?: string;
  /** objects already validated (src/object/validate.ts validatedSpans, on the main thread): a load of exactly these bytes is not parsed again */
  validated?: readonly Uint8Array[];
}


/** Routes each load to a backend the plan allows; refuses with every missing capability named.
 * The plan is made from libbpf's own parse of the object (after open, before load): no second parse. */
export class Selector implements Backend, FastPaths {
  readonly name: BackendName;
  constructor(
    private readonly linux: Backend,
    private readonly report: Report | undefined,
    private readonly choice: BackendChoice,
    private readonly validated: readonly Uint8Array[] = [],
  ) {
    this.name = linux.name;
  }

  load(bytes: Uint8Array, opts: LoadOptions): LoadedObject {
    // the project's own checks first: libbpf must never parse bytes that could make it read out of bounds
    // (bytes equal to an object validated before need no second parse); then the policy's load gate
    // (program types, helpers, pinning), before any backend sees the object
    const policy = opts.policy ?? DEFAULT_POLICY;
    const known = this.validated.some((v) => v.length === bytes.length && Buffer.compare(v, bytes) === 0);
    if (!known || restrictsObjects(policy)) enforceLoad(policy, validateObject(bytes, opts.objectName));
    const report = this.report;
    if (!report) return this.linux.load(bytes, opts);
    return this.linux.load(bytes, {
      ...opts,
      beforeLoad: (shape: ObjectShape) => {
        const plan = planObject(report, shape, this.choice);
        if (opts.verbose) for (const r of plan.reasons) opts.log(`wasm-bpf: selector: ${r}`);
        if (plan.backend === null) throw new BackendError(refusal(plan), EOPNOTSUPP);
        if (plan.backend !== 'linux') {
          throw new BackendError(`the ${plan.backend} backend is not available in this build yet`, EOPNOTSUPP, '', 'use --backend linux');
        }
        return plan.compat?.length ? { compat: plan.compat } : undefined;
      },
    });
  }

  wakeFd(): number {
    return this.linux.wakeFd();
  }

  directMapOps(): DirectMapOps | undefined {
    return hasFastPaths(this.linux) ? this.linux.directMapOps() : undefined;
  }

  dispose(): void {
    this.linux.dispose();
  }
}

export async function createBackend(choice: BackendChoice, opts: BackendOptions = {}): Promise<Backend> {
  const { log, stop, report } = opts;
  if (choice === 'windows') {
    throw new WasmBpfError('UNSUPPORTED', 'the windows backend is not available in this build yet; use --backend linux');
  }
  if (choice === 'userspace') {
    // the userspace eBPF runtime: loads, maps and buffers work; attaching to live processes does not yet
    const { UserspaceBackend } = await import('../../backends/userspace/index.js');
    return new Selector(new UserspaceBackend(stop ? { stop } : {}), undefined, choice, opts.validated);
  }
  const [linux, hostReport] = await Promise.all([
    linuxBackend(opts.btfCustomPath),
    choice !== 'auto'
      ? undefined
      : (report ??
        import('../probe/fast.js').then((m) => m.hostReport({ assumeMissing: opts.assumeMissing ?? [] })).catch((err: unknown) => {
          log?.(`wasm-bpf: selector: the probe failed (${errorMessage(err)}); loading without routing`);
          return undefined;
        })),
  ]);
  return new Selector(linux, hostReport, choice, opts.validated);
}
