// Picks the backend that runs each eBPF object a guest loads: the prober's report (cached per boot)
// against what the object's programs and maps need. `--backend` forces a choice.
import type { Backend, BackendName, LoadedObject, LoadOptions } from '../../backends/backend.js';
import { BackendError, WasmBpfError, errorMessage } from '../errors.js';
import type { Report } from '../probe/types.js';
import { planObject, refusal, type ObjectShape, type Plan } from './plan.js';

export type BackendChoice = 'auto' | BackendName;

export const BACKEND_CHOICES: readonly BackendChoice[] = ['auto', 'linux', 'userspace', 'windows'];

const EOPNOTSUPP = 95;

async function linuxBackend(): Promise<Backend> {
  if (process.platform !== 'linux') {
    throw new WasmBpfError('UNSUPPORTED', `the linux backend needs Linux; this is ${process.platform}`);
  }
  const { LinuxBackend } = await import('../../backends/linux/index.js');
  return new LinuxBackend();
}

/** The object's programs and maps as the ELF loader reads them (no kernel involved). */
export async function objectShape(bytes: Uint8Array): Promise<ObjectShape> {
  const { loadObject } = await import('../object/loader.js');
  return loadObject(bytes);
}

/** Routes each load to a backend the plan allows; refuses with every missing capability named. */
export class Selector implements Backend {
  readonly name: BackendName = 'linux';
  constructor(
    private readonly linux: Backend,
    private readonly report: Report | undefined,
    private readonly choice: BackendChoice,
    private readonly shapeOf: (bytes: Uint8Array) => ObjectShape,
  ) {}

  plan(bytes: Uint8Array, log?: (line: string) => void): Plan | undefined {
    if (!this.report) return undefined;
    let shape: ObjectShape;
    try {
      shape = this.shapeOf(bytes);
    } catch (err) {
      // the ELF loader is stricter than libbpf in places: let the backend have its say
      log?.(`wasm-bpf: selector: cannot read the object (${errorMessage(err)}); trying the linux backend`);
      return undefined;
    }
    return planObject(this.report, shape, this.choice);
  }

  load(bytes: Uint8Array, opts: LoadOptions): LoadedObject {
    const plan = this.plan(bytes, opts.verbose ? opts.log : undefined);
    if (plan && opts.verbose) for (const r of plan.reasons) opts.log(`wasm-bpf: selector: ${r}`);
    if (plan && plan.backend === null) {
      throw new BackendError(refusal(plan), EOPNOTSUPP);
    }
    if (plan && plan.backend !== null && plan.backend !== 'linux') {
      throw new BackendError(`the ${plan.backend} backend is not available in this build yet`, EOPNOTSUPP, '', 'use --backend linux');
    }
    return this.linux.load(bytes, opts);
  }

  wakeFd(): number {
    return this.linux.wakeFd();
  }

  dispose(): void {
    this.linux.dispose();
  }
}

export async function createBackend(choice: BackendChoice, log?: (line: string) => void, stop?: SharedArrayBuffer): Promise<Backend> {
  if (choice === 'windows') {
    throw new WasmBpfError('UNSUPPORTED', 'the windows backend is not available in this build yet; use --backend linux');
  }
  if (choice === 'userspace') {
    // the userspace eBPF runtime: loads, maps and buffers work; attaching to live processes does not yet
    const { UserspaceBackend } = await import('../../backends/userspace/index.js');
    return new UserspaceBackend(stop ? { stop } : {});
  }
  const [linux, report, loader] = await Promise.all([
    linuxBackend(),
    choice === 'auto'
      ? import('../probe/fast.js').then((m) => m.hostReport()).catch((err: unknown) => {
          log?.(`wasm-bpf: selector: the probe failed (${errorMessage(err)}); loading without routing`);
          return undefined;
        })
      : Promise.resolve(undefined),
    import('../object/loader.js'),
  ]);
  return new Selector(linux, report, choice, (bytes) => loader.loadObject(bytes));
}
