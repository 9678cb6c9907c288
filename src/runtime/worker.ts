// The guest's thread: compiles and instantiates the module with WASI and the wasm_bpf host, runs
// _start, and closes every kernel object the guest left open, however the run ends.
import './quiet.js';
import { parentPort, workerData } from 'node:worker_threads';
import process from 'node:process';
import fs from 'node:fs';
import { errorMessage, Interrupted, ModuleError, WasmBpfError } from '../errors.js';
import { readModuleShape } from '../wasm/imports.js';
import { WasmBpfHost } from '../abi/host.js';
import { GuestExit, GuestWasi } from './wasi.js';
import { checkWasiImports } from './wasi-signatures.js';
import { StopSignal } from './stop.js';
import type { WorkerData, WorkerInput, WorkerMessage } from './protocol.js';
import { createBackend } from '../select/backend.js';
import { ptregsSettingsFromEnv } from '../../compat/ptregs/index.js';
// static: the kernel backend loads with the rest of this thread's code (one bundle load instead of a
// second, dynamic one after it, from src/select/backend.ts); loading it has no effect until a LinuxBackend is made
import '../../backends/linux/index.js';
import { loadNative } from '../../backends/linux/native.js';
import { AgentGroup, AgentSession } from '../../backends/userspace/attach/session.js';
import { mark } from '../trace.js';
import { PauseGate } from './pause.js';
import { embedderImports } from './hostcall.js';
import tty from 'node:tty';
import { diagLine, painter, useColor, type Diag } from '../style.js';

mark('worker_modules');

const data = workerData as WorkerData;
const input: WorkerInput = 'warm' in data ? await prestarted() : data;
mark('input');

/**
 * a prestarted worker: loads the native addon while the main thread gets the input ready (it reads the
 * prober's report itself), then waits for it
 */
async function prestarted(): Promise<WorkerInput> {
  const next = new Promise<WorkerInput>((resolve) => parentPort!.once('message', (m: WorkerInput) => resolve(m)));
  if (process.platform === 'linux') {
    try {
      loadNative();
      mark('addon_load');
    } catch {
      // the backend meets and reports it when it is made
    }
  }
  return next;
}
const post = (m: WorkerMessage): void => parentPort!.postMessage(m);
const pause = new Int32Array(new SharedArrayBuffer(4));
/** the guest's stdout/stderr for the main thread (library API): the bytes' buffer moves, it is not copied */
const output = (fd: 1 | 2, data: Uint8Array): void => {
  const own = data.byteOffset === 0 && data.byteLength === data.buffer.byteLength ? data : data.slice();
  parentPort!.postMessage({ type: 'output', fd, data: own } satisfies WorkerMessage, [own.buffer as ArrayBuffer]);
};
/** the run's diagnostics styled as every command's (src/style.ts) when stderr is a terminal */
const paint = painter(useColor({ isTTY: tty.isatty(2) }));
const log = (raw: string, kind?: Diag): void => {
  const line = kind && !input.captureOutput && raw.startsWith('wasm-bpf: ') ? diagLine(paint, 'wasm-bpf', raw.slice('wasm-bpf: '.length), kind) : raw;
  if (input.captureOutput) {
    output(2, Buffer.from(line.endsWith('\n') ? line : `${line}\n`));
    return;
  }
  // synchronous: the worker's process.stderr is relayed through the main thread and could lag or be lost.
  // A non-blocking stderr (a pipe the reader drains slowly) answers EAGAIN when full: wait for it (a
  // guest that makes the host log a lot must not end the run with an error), at most 10 s per line.
  const buf = Buffer.from(line.endsWith('\n') ? line : `${line}\n`);
  let off = 0;
  for (let waited = 0; off < buf.length; ) {
    try {
      off += fs.writeSync(2, buf, off);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EAGAIN' || waited >= 10_000) return;
      Atomics.wait(pause, 0, 0, 1);
      waited++;
    }
  }
};

async function run(): Promise<number> {
  // the traced processes' agents: every channel the main thread made is closed however the run ends
  const agent = input.traced?.length ? new AgentGroup(input.traced.map((t) => new AgentSession(t))) : undefined;
  try {
    return await runGuest(agent);
  } finally {
    // a launched command the guest never let start (it ended before its first poll or sleep) never ran a
    // line of its own: it is killed, not left to run untraced
    for (const pid of agent?.end() ?? []) log(`wasm-bpf: the app ended before it let the launched command start: killed it (pid ${pid}) before its main`);
  }
}

async function runGuest(agent: AgentGroup | undefined): Promise<number> {
  const stop = new StopSignal(input.stop);
  const bytes = input.bytes;
  const shape = readModuleShape(bytes);
  const exportNames = new Set(shape.exports.map((e) => e.name));
  if (!exportNames.has('_start')) {
    throw new ModuleError('WASM_EXPORT', 'the module exports no _start function (is it a WASI command module?)');
  }
  if (!exportNames.has('memory')) throw new ModuleError('WASM_EXPORT', 'the module exports no memory');
  const embedder = input.hostImports?.names ?? {};
  for (const imp of shape.imports) {
    if (imp.module !== 'wasi_snapshot_preview1' && imp.module !== 'wasm_bpf' && imp.module !== input.wrapperModule && !(imp.module in embedder)) {
      const more = Object.keys(embedder);
      throw new ModuleError(
        'WASM_IMPORT',
        `the module imports ${imp.module}.${imp.name}; this runtime provides wasi_snapshot_preview1, wasm_bpf${more.length ? `, ${more.join(', ')} (the embedder's)` : ''} and ${input.wrapperModule}`,
      );
    }
  }

  checkWasiImports(shape);

  if (input.btfCustomPath && input.backend !== 'userspace' && input.verbose) log(`wasm-bpf: vmlinux BTF for CO-RE: ${input.btfCustomPath}`);
  // a launched command runs once the guest is set up: at its first poll or sleep
  const release = (): void => agent?.start();
  const backend = await createBackend(input.backend, {
    ...(agent ? { agent } : {}),
    warn: log,
    ...(input.verbose ? { log } : {}),
    stop: input.stop,
    ...(input.report ? { report: input.report } : {}),
    assumeMissing: input.assumeMissing,
    ptregs: ptregsSettingsFromEnv(process.env),
    ...(input.btfCustomPath ? { btfCustomPath: input.btfCustomPath } : {}),
    ...(input.libbpf ? { libbpf: input.libbpf } : {}),
    ...(input.validated ? { validated: input.validated.map((s) => ({ bytes: bytes.subarray(s.offset, s.offset + s.size), facts: s.facts })) } : {}),
  });
  mark('backend');
  const wakeFd = backend.wakeFd();
  post({ type: 'wakefd', fd: wakeFd });

  const host = new WasmBpfHost({
    backend,
    objectName: input.objectName,
    verbose: input.verbose,
    // WASM_BPF_DIRECT_MAP_OPS=0: map_operate through the host's JavaScript (tests compare both paths)
    noDirectMapOps: process.env['WASM_BPF_DIRECT_MAP_OPS'] === '0',
    // WASM_BPF_DIRECT_POLL=0: wasm_bpf_buffer_poll through the host's JavaScript only (the same comparison)
    noDirectPoll: process.env['WASM_BPF_DIRECT_POLL'] === '0',
    policy: input.policy,
    wrapperModule: input.wrapperModule,
    callbackExport: input.callbackExport,
    stop,
    log,
    ...(agent ? { beforeFirstPoll: release } : {}),
  });
  const wasi = new GuestWasi({
    args: input.args,
    env: input.env,
    preopens: input.preopens,
    stop,
    ...(agent ? { beforeSleep: release } : {}),
    ...(input.captureOutput ? { output } : {}),
    ...(input.stdin ? { input: input.stdin } : {}),
  });
  const gate = input.pause ? new PauseGate(input.pause) : undefined;
  const hostCalls = input.hostImports ? embedderImports(shape, input.hostImports.names, input.hostImports.channel, stop, post) : {};
  // the library API's pause: the guest stops at its next WASI or embedder call
  const paused = <F extends (...args: never[]) => unknown>(fns: Record<string, F>): Record<string, F> => (gate ? gate.wrap(fns, stop) : fns);
  const importObject: WebAssembly.Imports = {
    ...Object.fromEntries(Object.entries(hostCalls).map(([m, fns]) => [m, paused(fns)])),
    wasi_snapshot_preview1: paused(wasi.imports),
    ...host.imports(shape),
  };

  let instance: WebAssembly.Instance;
  try {
    const module = input.module ?? (await WebAssembly.compile(bytes as Uint8Array<ArrayBuffer>));
    instance = await WebAssembly.instantiate(module, importObject);
    mark('instantiate');
  } catch (err) {
    host.closeAll();
    // proc_exit or a trap in the module's start function (run by the instantiation)
    const code = guestEnd(err, stop);
    if (code !== undefined) {
      backend.dispose();
      return code;
    }
    throw new ModuleError(err instanceof WebAssembly.LinkError ? 'WASM_IMPORT' : 'WASM_MALFORMED', `cannot instantiate the module: ${errorMessage(err)}`, { cause: err });
  }
  host.bind(instance);
  try {
    return wasi.start(instance);
  } catch (err) {
    const code = guestEnd(err, stop);
    if (code !== undefined) return code;
    throw err;
  } finally {
    const open = host.openObjectCount;
    host.closeAll();
    if (open && input.verbose) log(`wasm-bpf: closed ${open} object(s) the guest left open`);
    backend.dispose();
  }
}

/**
 * The exit code for how the guest's code ended, when it was the guest's doing: proc_exit, a stop
 * request, a trap, or a stack overflow of the guest's own recursion (V8 raises a RangeError for it;
 * one raised by host code, with no Wasm frame on top of the stack, stays a host error).
 */
function guestEnd(err: unknown, stop: StopSignal): number | undefined {
  if (err instanceof GuestExit) return err.code;
  if (err instanceof Interrupted) return 128 + (stop.stopped || 2);
  const overflow = err instanceof RangeError && err.message === 'Maximum call stack size exceeded' && /wasm-function\[/.test(err.stack ?? '');
  if (err instanceof WebAssembly.RuntimeError || overflow) {
    log(`wasm-bpf: the guest trapped: ${overflow ? 'stack overflow (Maximum call stack size exceeded)' : err.message}`);
    if (input.verbose && err.stack) log(err.stack);
    return 134;
  }
  return undefined;
}

run().then(
  (code) => post({ type: 'exit', code }),
  (err: unknown) => {
    const code = err instanceof WasmBpfError ? err.code : 'ERROR';
    post({ type: 'error', code, message: errorMessage(err) });
  },
);
