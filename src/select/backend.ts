// The selector: the door every eBPF object a guest loads goes through. It reads the object once
// (src/object), applies the policy's load gate, plans it against the prober's report (./plan.ts), mounts
// what the plan says is missing (./mounts.ts), applies the plan's compat passes to the bytes
// (./passes.ts), and hands the result to the backend the plan names. Backends never call back.
import type { Backend, BackendName, LoadedObject, LoadOptions, ObjectLoader } from '../../backends/backend.js';
import { hasFastPaths, type DirectMapOps, type FastPaths } from '../../backends/fastpath.js';
import { BackendError, WasmBpfError, errorMessage } from '../errors.js';
import type { Report } from '../probe/types.js';
import type { BpfObject } from '../object/loader.js';
import { validateObject } from '../object/validate.js';
import { planObject, refusal, type Plan } from './plan.js';
import { objectFacts, type ObjectFacts } from './facts.js';
import { applyCompat } from './passes.js';
import { mountFor } from './mounts.js';
import { planWindows, windowsPlanned } from './windows.js';
import { loadObject } from '../object/loader.js';
import type { EbpfBinding } from '../../backends/windows/ebpfapi.js';
import { enforceLoad, restrictsObjects } from '../policy/enforce.js';
import { DEFAULT_POLICY } from '../policy/policy.js';
import { ERRNO } from '../kernel/uapi.js';
import type { PtRegsSettings } from '../../compat/ptregs/index.js';
import { mark } from '../trace.js';
import type { AgentGroup } from '../../backends/userspace/attach/session.js';
import type { KernelPathChoice } from '../../backends/linux/kernellib.js';

export type BackendChoice = 'auto' | BackendName;
export type { KernelPathChoice } from '../../backends/linux/kernellib.js';
export { KERNEL_PATH_CHOICES } from '../../backends/linux/kernellib.js';

export const BACKEND_CHOICES: readonly BackendChoice[] = ['auto', 'linux', 'userspace', 'windows'];

const { EOPNOTSUPP } = ERRNO;

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
  /** the kernel backend's native part (--libbpf): the addon, libbpf through FFI, or auto (the addon when built) */
  libbpf?: KernelPathChoice;
  /** objects already validated, with their facts (./facts.ts validatedObjects, on the main thread): a load of exactly these bytes is not parsed again */
  validated?: ReadonlyArray<{ bytes: Uint8Array; facts: ObjectFacts }>;
  /** the pt_regs pass's settings (off, or the arch objects were built for) */
  ptregs?: PtRegsSettings;
  /** the agents of the processes the run traces (launched, joined): the userspace backend attaches uprobes in them */
  agent?: AgentGroup;
  /** what the user must see whatever --verbose says (a hook disabled by a fault, ring buffer drops) */
  warn?: (line: string) => void;
  /** the platform the backends are made for (default process.platform; tests give 'win32') */
  platform?: NodeJS.Platform;
  /** the Windows backend's binding (default: backends/windows/binding.ts over ebpfapi.dll; tests give a recording fake) */
  windowsBinding?: () => EbpfBinding;
}

/** The backends a selector can route to (the ones this run made). */
export type Backends = Partial<Record<BackendName, Backend>>;

export class Selector implements ObjectLoader, FastPaths {
  constructor(
    private readonly backends: Backends,
    private readonly report: Report | undefined,
    private readonly choice: BackendChoice,
    private readonly validated: ReadonlyArray<{ bytes: Uint8Array; facts: ObjectFacts }> = [],
    private readonly ptregs: PtRegsSettings = {},
    /** the run launched a command the userspace backend can trace */
    private readonly userspaceTargets = false,
  ) {}



  /** the plan for these bytes: read once (or the main thread's reading of equal bytes), gated by the policy */
  private read(bytes: Uint8Array, opts: LoadOptions): { parsed: BpfObject | undefined; facts: ObjectFacts } {
    // the project's own checks first: no backend (and so no libbpf) may parse bytes that could make it read
    // out of bounds; then the policy's load gate (program types, helpers, pinning)
    const policy = opts.policy ?? DEFAULT_POLICY;
    const known = this.validated.find((v) => v.bytes.length === bytes.length && Buffer.compare(v.bytes, bytes) === 0);
    const parsed = known && !restrictsObjects(policy) ? undefined : validateObject(bytes, opts.objectName);
    if (parsed) enforceLoad(policy, parsed);
    return { parsed, facts: known?.facts ?? objectFacts(parsed!) };
  }

  plan(bytes: Uint8Array, opts: LoadOptions): { plan: Plan; parsed: BpfObject | undefined; facts: ObjectFacts } {
    const { parsed, facts } = this.read(bytes, opts);
    if (windowsPlanned(this.choice, this.report)) {
      const { plan } = planWindows(bytes, parsed ?? loadObject(bytes), this.report);
      if (opts.verbose) for (const r of plan.reasons) opts.log(`wasm-bpf: selector: ${r}`);
      return { plan, parsed, facts };
    }
    const plan = planObject(this.report, facts, this.choice, { ptregs: this.ptregs, userspaceTargets: this.userspaceTargets });
    if (opts.verbose) for (const r of plan.reasons) opts.log(`wasm-bpf: selector: ${r}`);
    return { plan, parsed, facts };
  }

  load(bytes: Uint8Array, opts: LoadOptions): LoadedObject {
    mark('select:start');
    const { plan, parsed, facts } = this.plan(bytes, opts);
    if (plan.backend === null) throw new BackendError(refusal(plan), EOPNOTSUPP);
    const backend = this.backends[plan.backend];
    if (!backend) {
      throw new BackendError(`the ${plan.backend} backend was not made for this run`, EOPNOTSUPP, '', plan.backend === 'windows' ? 'it runs on Windows (auto or --backend windows)' : `use --backend ${plan.backend}`);
    }
    const log = opts.verbose ? opts.log : undefined;
    for (const m of plan.mounts ?? []) mountFor(m, log);
    const prepared = applyCompat(bytes, plan, facts, parsed, log, this.ptregs);
    mark('select:end');
    return backend.load(prepared.bytes, {
      ...opts,
      ...(prepared.edits ? { edits: prepared.edits } : {}),
      ...(parsed && prepared.bytes === bytes ? { parsed } : {}),
    });
  }

  /** the backend objects load into unless the plan says otherwise: the one whose wake fd and fast paths the guest gets */
  private get main(): Backend | undefined {
    return this.choice === 'auto' ? (this.backends.linux ?? this.backends.userspace ?? this.backends.windows) : this.backends[this.choice];
  }

  wakeFd(): number {
    return this.main?.wakeFd() ?? -1;
  }

  directMapOps(): DirectMapOps | undefined {
    const main = this.main;
    return main && hasFastPaths(main) ? main.directMapOps() : undefined;
  }

  dispose(): void {
    for (const b of Object.values(this.backends)) b?.dispose();
  }
}

async function linuxBackend(btfCustomPath: string | undefined, libbpf: KernelPathChoice | undefined, log?: (line: string) => void): Promise<Backend> {
  if (process.platform !== 'linux') {
    throw new WasmBpfError('UNSUPPORTED', `the linux backend needs Linux; this is ${process.platform}`);
  }
  const { LinuxBackend } = await import('../../backends/linux/index.js');
  const b = new LinuxBackend(undefined, { ...(btfCustomPath ? { btfCustomPath } : {}), ...(libbpf ? { libbpf } : {}) });
  log?.(`wasm-bpf: selector: the kernel backend runs on ${b.kernelPath === 'ffi' ? 'libbpf through FFI' : 'the native addon'} (${b.kernelPathWhy})`);
  return b;
}

/**
 * The selector for a run: makes the backends `choice` may route to and reads the prober's report (cached
 * per boot) unless the caller has it. On Windows (auto or --backend windows) that is the Windows backend
 * alone. The userspace backend is made only when it is chosen: in this build it attaches no program kind,
 * so the plan never routes there on its own (src/probe/backends.ts).
 */
export async function createBackend(choice: BackendChoice, opts: BackendOptions = {}): Promise<Selector> {
  const { log, stop, report, agent, warn } = opts;
  const platform = opts.platform ?? process.platform;
  if (choice === 'windows' || (choice === 'auto' && platform === 'win32')) {
    return windowsSelector(choice, platform, opts);
  }
  const validated = opts.validated ?? [];
  // the userspace eBPF runtime: uprobes run inside the launched command (its agent); maps, buffers and `vm` runs here
  const userspace = async (stopFd?: number): Promise<Backend> => {
    const { UserspaceBackend } = await import('../../backends/userspace/index.js');
    return new UserspaceBackend({ ...(stop ? { stop } : {}), ...(agent ? { agent } : {}), ...(stopFd !== undefined ? { stopFd } : {}), ...(warn ? { warn } : {}), ...(log ? { log } : {}) });
  };
  if (choice === 'userspace') {
    return new Selector({ userspace: await userspace() }, report, choice, validated, opts.ptregs, agent !== undefined);
  }
  const [linux, hostReport] = await Promise.all([
    linuxBackend(opts.btfCustomPath, opts.libbpf, log),
    report ??
      import('../probe/fast.js').then((m) => m.hostReport({ assumeMissing: opts.assumeMissing ?? [] })).catch((err: unknown) => {
        log?.(`wasm-bpf: selector: the probe failed (${errorMessage(err)}); loading without routing`);
        return undefined;
      }),
  ]);
  // auto with a launched command: the userspace backend too, for uprobe objects the kernel cannot run
  // (its shared rings' polls wait on the kernel backend's wake fd, the one the run's stop writes)
  const backends: Backends = { linux, ...(choice === 'auto' && agent ? { userspace: await userspace(linux.wakeFd()) } : {}) };
  return new Selector(backends, hostReport, choice, validated, opts.ptregs, choice === 'auto' && agent !== undefined);
}

/**
 * On Windows (auto or --backend windows): the Windows backend over eBPF for Windows' ebpfapi.dll, each object
 * planned by its translation against the host's report (src/select/windows.ts). Elsewhere a refusal: eBPF
 * for Windows exists on Windows only, and `check --backend windows` shows what would load there.
 */
async function windowsSelector(choice: BackendChoice, platform: NodeJS.Platform, opts: BackendOptions): Promise<Selector> {
  if (platform !== 'win32') {
    throw new WasmBpfError(
      'UNSUPPORTED',
      `the windows backend runs on Windows with eBPF for Windows (ebpfapi.dll); this is ${platform}. \`wasm-bpf check --backend windows APP.wasm\` shows what would load there and what is refused; here use --backend linux or auto`,
    );
  }
  const { log } = opts;
  const [{ WindowsBackend }, binding, hostReport] = await Promise.all([
    import('../../backends/windows/index.js'),
    (async () => (opts.windowsBinding ? opts.windowsBinding() : (await import('../../backends/windows/binding.js')).ffiBinding()))().catch((err: unknown) => {
      throw new WasmBpfError('UNSUPPORTED', `the windows backend cannot open eBPF for Windows' library: ${errorMessage(err)}; install eBPF for Windows (\`wasm-bpf probe\` shows what it found)`, { cause: err });
    }),
    opts.report ??
      import('../probe/fast.js').then((m) => m.hostReport({ assumeMissing: opts.assumeMissing ?? [] })).catch((err: unknown) => {
        log?.(`wasm-bpf: selector: the probe failed (${errorMessage(err)}); objects are planned by their translation alone`);
        return undefined;
      }),
  ]);
  log?.(`wasm-bpf: selector: the windows backend runs on ${binding.library}`);
  const windows = new WindowsBackend(binding, opts.stop ? { stop: opts.stop } : {});
  return new Selector({ windows }, hostReport, choice, opts.validated ?? []);
}
