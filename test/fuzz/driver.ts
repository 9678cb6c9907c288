// The fuzz driver: a child process that runs many mutants through the real load path, one after the
// other, and reports on fd 3 (stdout is left to the guests): `begin I` before mutant I, then
// `end I OUTCOME MESSAGE` (OUTCOME: ok | error | unclean). The supervisor (./supervisor.ts) restarts it
// after a crash (exit by signal) or a hang and saves that mutant as a regression case.
//
//   objects: validation (Selector.load) -> libbpf open -> kernel load -> attach every program by its
//            section -> map operations -> records -> close
//   modules: the Runtime's path (worker thread, WASI, the six host functions), stopped after --run-ms
//
// Arguments: --kind objects|modules, then either --seed S --from I --to J --inputs a,b,c (mutant I is
// generated from seed S and input inputs[k]) or --files a,b,c (saved cases, run as they are).
// --raw loads objects through the addon without the project's validation (to show a crash shape).
import fs from 'node:fs';
import { generate, type Kind } from './jobs.js';
import { WasmBpfError, errorMessage } from '../../src/errors.js';

export type Outcome = 'ok' | 'error' | 'unclean';

export interface DriverArgs {
  kind: Kind;
  seed: number;
  from: number;
  to: number;
  inputs: string[];
  files: string[];
  raw: boolean;
  runMs: number;
}

export function parseDriverArgs(argv: string[]): DriverArgs {
  const get = (k: string): string | undefined => {
    const i = argv.indexOf(k);
    return i >= 0 ? argv[i + 1] : undefined;
  };
  const list = (k: string): string[] => (get(k) ?? '').split(',').filter(Boolean);
  return {
    kind: get('--kind') === 'modules' ? 'modules' : 'objects',
    seed: Number(get('--seed') ?? 1),
    from: Number(get('--from') ?? 0),
    to: Number(get('--to') ?? 0),
    inputs: list('--inputs'),
    files: list('--files'),
    raw: argv.includes('--raw'),
    runMs: Number(get('--run-ms') ?? 150),
  };
}

function report(line: string): void {
  fs.writeSync(3, `${line.replace(/\n/g, ' ')}\n`);
}

const PRODUCT_ERRORS = new Set(['WasmBpfError', 'BackendError', 'ModuleError', 'Interrupted']);

/**
 * an error the product meant to give (a class of src/errors.ts) rather than a JavaScript accident; by
 * name, as the module path's classes come from dist/ (a second copy of src/errors.ts)
 */
function classify(err: unknown): [Outcome, string] {
  const clean = err instanceof WasmBpfError || (err instanceof Error && PRODUCT_ERRORS.has(err.name) && typeof (err as { code?: unknown }).code === 'string');
  return [clean ? 'error' : 'unclean', `${err instanceof Error ? err.name : typeof err}: ${errorMessage(err)}`];
}

async function main(): Promise<void> {
  const a = parseDriverArgs(process.argv.slice(2));
  const inputs = a.inputs.map((f) => new Uint8Array(fs.readFileSync(f)));
  const jobs: { i: number; bytes: () => Uint8Array }[] = a.files.length
    ? a.files.map((f, i) => ({ i, bytes: () => new Uint8Array(fs.readFileSync(f)) }))
    : Array.from({ length: Math.max(0, a.to - a.from) }, (_, k) => ({ i: a.from + k, bytes: () => generate(a.kind, a.seed, a.from + k, inputs, a.inputs).bytes }));
  const run = a.kind === 'objects' ? await objectRunner(a.raw) : await moduleRunner(a.runMs);
  for (const job of jobs) {
    const bytes = job.bytes();
    report(`begin ${job.i}`);
    const t0 = performance.now();
    let outcome: Outcome = 'ok';
    let message = '';
    try {
      message = await run(bytes);
    } catch (err) {
      [outcome, message] = classify(err);
    }
    report(`end ${job.i} ${outcome} ${message.slice(0, 300)}`);
    if (process.env['FUZZ_TIMING']) process.stderr.write(`${job.i} ${(performance.now() - t0).toFixed(0)} ms ${outcome} ${message.slice(0, 80)}\n`);
  }
  report('done');
}

type Runner = (bytes: Uint8Array) => Promise<string>;

async function objectRunner(raw: boolean): Promise<Runner> {
  const { LinuxBackend } = await import('../../backends/linux/index.js');
  const { Selector } = await import('../../src/select/backend.js');
  const linux = new LinuxBackend();
  const backend = raw ? linux : new Selector({ linux }, undefined, 'linux');
  const mem = new Uint8Array(1 << 16);
  const log = (): void => {};
  return async (bytes) => {
    const obj = backend.load(bytes, { objectName: 'fuzz', verbose: false, allowCgroup: [], log });
    try {
      let attached = 0;
      for (const p of obj.programs) {
        try {
          obj.attach(p.name, undefined);
          attached++;
        } catch (err) {
          if (!(err instanceof WasmBpfError)) throw err;
        }
      }
      for (const m of obj.maps) {
        if (m.fd < 0) continue;
        mem.fill(0);
        // lookup, update, next key, delete: 0 or -errno, never a throw
        for (const cmd of [1, 2, 4, 3, 1]) {
          const r = obj.mapOperate(cmd, m.fd, mem, 0, 4096, 0);
          if (!Number.isInteger(r) || r > 0) throw new Error(`map_operate(${cmd}) on '${m.name}' returned ${r}`);
        }
        if (m.type === 27 || m.type === 4) {
          try {
            const src = obj.openRecords(m.fd);
            src.poll(0, mem);
            src.close();
          } catch (err) {
            if (!(err instanceof WasmBpfError)) throw err;
          }
        }
      }
      return `${obj.programs.length} programs (${attached} attached), ${obj.maps.length} maps`;
    } finally {
      obj.close();
    }
  };
}

// the built runtime (dist/, as the CLI runs it): its worker thread loads the bundle, which needs no TypeScript loader
const RUNTIME = new URL('../../dist/src/runtime/runtime.js', import.meta.url).href;
const PRESTART = new URL('../../dist/src/runtime/prestart.js', import.meta.url).href;

async function moduleRunner(runMs: number): Promise<Runner> {
  const { Runtime } = (await import(RUNTIME)) as typeof import('../../src/runtime/runtime.js');
  const { prestartWorker } = (await import(PRESTART)) as typeof import('../../src/runtime/prestart.js');
  prestartWorker();
  return async (bytes) => {
    const rt = new Runtime();
    // the next mutant's thread starts while this one runs (as the CLI starts it while it reads the module)
    prestartWorker();
    const timer = setTimeout(() => rt.stop(2), runMs);
    try {
      const r = await rt.run({ module: bytes, backend: 'linux', handleSignals: false, graceMs: 500, args: [] });
      return `exit ${r.exitCode}`;
    } finally {
      clearTimeout(timer);
    }
  };
}

await main();
