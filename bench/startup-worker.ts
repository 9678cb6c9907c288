// The worker half of bench/startup.ts: src/runtime/worker.ts step by step, with timestamps, and the
// native addon behind a proxy that records when each of its calls starts and ends.
import { parentPort, workerData } from 'node:worker_threads';
import type { Mark, StartupInput } from './startup.js';

const stamp = (): number => performance.timeOrigin + performance.now();
const input = workerData as StartupInput;
const marks: Mark[] = [['worker_start', stamp() - input.origin]];
const mark = (name: string): void => {
  marks.push([name, stamp() - input.origin]);
};

async function run(): Promise<void> {
  await import('../src/runtime/quiet.js');
  const { readModuleShape } = await import('../src/wasm/imports.js');
  const { WasmBpfHost } = await import('../src/abi/host.js');
  const { GuestWasi } = await import('../src/runtime/wasi.js');
  const { StopSignal } = await import('../src/runtime/stop.js');
  const { Selector } = await import('../src/select/backend.js');
  await import('../src/errors.js');
  mark('worker_modules');
  // src/select/backend.ts createBackend('auto'), step by step: the linux backend's modules, the prober's
  // report (cached per boot; a miss probes the kernel)
  const { LinuxBackend } = await import('../backends/linux/index.js');
  const { loadNative } = await import('../backends/linux/native.js');
  mark('backend_modules');
  const native = loadNative();
  mark('addon_load');
  const { hostReport } = await import('../src/probe/fast.js');
  const report = await hostReport();
  mark('probe_report');
  const shape = readModuleShape(input.bytes);
  mark('module_shape');

  // every addon function: `<name>:start` when first called, `<name>:end` when its last call so far ended
  const seen = new Set<string>();
  const endAt = new Map<string, number>();
  const timed = new Proxy(native, {
    get(target, prop, receiver): unknown {
      const v: unknown = Reflect.get(target, prop, receiver);
      if (typeof v !== 'function' || typeof prop !== 'string') return v;
      const f = v as (...a: unknown[]) => unknown;
      return (...a: unknown[]): unknown => {
        const first = !seen.has(prop);
        seen.add(prop);
        if (first) mark(`${prop}:start`);
        try {
          return f.apply(target, a);
        } finally {
          const i = endAt.get(prop);
          if (i === undefined) {
            endAt.set(prop, marks.length);
            mark(`${prop}:end`);
          } else {
            marks[i] = [`${prop}:end`, stamp() - input.origin];
          }
        }
      };
    },
  });
  const linux = new LinuxBackend(timed);
  // the selector plans from libbpf's own parse (beforeLoad), so it adds no parse of its own
  const backend = new Selector(linux, report, 'auto');
  const stop = new StopSignal();
  backend.wakeFd();
  const host = new WasmBpfHost({
    backend,
    objectName: 'bootstrap',
    verbose: false,
    allowCgroup: [],
    wrapperModule: 'callback-wrapper',
    callbackExport: 'go-callback',
    stop,
    log: (l) => process.stderr.write(`${l}\n`),
  });
  const wasi = new GuestWasi({ args: input.args, env: {}, preopens: {}, stop });
  const importObject: WebAssembly.Imports = { wasi_snapshot_preview1: wasi.imports, ...host.imports(shape) };
  mark('host_setup');
  const module = await WebAssembly.compile(input.bytes as Uint8Array<ArrayBuffer>);
  mark('compile');
  const instance = await WebAssembly.instantiate(module, importObject);
  mark('instantiate');
  host.bind(instance);
  try {
    wasi.start(instance);
  } finally {
    mark('guest_end');
    host.closeAll();
    backend.dispose();
  }
}

run().then(
  () => parentPort!.postMessage(marks),
  (err: unknown) => {
    process.stderr.write(`startup-worker: ${err instanceof Error ? err.stack ?? err.message : String(err)}\n`);
    parentPort!.postMessage(marks);
  },
);
