// wasm-bpf as a library: run eBPF applications packaged as WebAssembly modules from your own program,
// ask what this host can do (probe) and what a module needs (check). The CLI (src/cli/) is built on the same calls.
import fs from 'node:fs';
import { runModule, type ModuleOptions, type RunningModule } from './api/run.js';
import { probeHost, type ProbeRequest, type ProbeResult } from './api/probe.js';
import { checkBytes, type CheckRequest, type CheckResult } from './api/check.js';
import { policyFrom } from './policy/from-spec.js';
import type { Policy, PolicySpec } from './policy/policy.js';
import { WasmBpfError } from './errors.js';

export type { ModuleOptions, RunningModule } from './api/run.js';
export type { ProbeRequest, ProbeResult } from './api/probe.js';
export type { CheckRequest, CheckResult, ObjectPlan } from './api/check.js';
export type { HostFunction, HostImports } from './runtime/hostcall.js';
export type { Policy, PolicySpec } from './policy/policy.js';
export type { BackendChoice } from './select/backend.js';
export type { Report } from './probe/types.js';
export { WasmBpfError, BackendError, ModuleError, type ErrorCode } from './errors.js';
export { DEFAULT_POLICY } from './policy/policy.js';

/**
 * Runs a module (its bytes or a .wasm path) in a worker thread. Its stdout/stderr are streams (unless
 * 'inherit'), `exit` resolves with its exit code; pause(), resume() and terminate() act on it. Options:
 * args, env, preopens (guest path -> host path), backend, policy (see policy()), imports (the
 * embedder's host functions), and the rest of the CLI's run options.
 * @example
 *   const app = run('bootstrap.wasm', { args: ['-d', '100'] });
 *   app.stdout!.pipe(process.stdout);
 *   setTimeout(() => app.terminate(), 5000);
 *   console.log('exit', await app.exit);
 */
export function run(module: Uint8Array | string, options: ModuleOptions = {}): RunningModule {
  return runModule(module, options);
}

/** What eBPF can do on this host: the object `wasm-bpf probe --json` prints (cached per boot, as the CLI). */
export function probe(request: ProbeRequest = {}): ProbeResult {
  return probeHost(request).result;
}

/**
 * The plan for every eBPF object of a module or a .bpf.o (bytes or a path), nothing loaded: the object
 * `wasm-bpf check --json` prints (`runnable`: every object has a backend here). Rejects with a
 * WasmBpfError (code USAGE) when the input holds no eBPF object, NOT_FOUND when the file cannot be read.
 */
export async function check(input: Uint8Array | string, request: CheckRequest = {}): Promise<CheckResult> {
  let bytes: Uint8Array;
  if (typeof input === 'string') {
    try {
      bytes = fs.readFileSync(input);
    } catch (err) {
      throw new WasmBpfError('NOT_FOUND', `cannot read ${input}: ${(err as Error).message}`);
    }
  } else bytes = input;
  return (await checkBytes(bytes, typeof input === 'string' ? input : 'module', request)).result;
}

/**
 * A policy for run() and check(): what a module's objects may load and attach to, from policy files
 * (paths) and specs ({ base: 'deny', programTypes: ['tracepoint'], helpers: [...], cgroups, interfaces,
 * uprobes, pin }), later ones adding to earlier ones, as --policy and the --allow-* options do.
 * Throws a WasmBpfError (code USAGE) naming what is wrong.
 */
export function policy(...items: Array<string | PolicySpec>): Policy {
  return policyFrom(items);
}
