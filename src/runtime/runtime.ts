// Runtime: runs one guest module in a worker thread and owns its lifecycle. SIGINT/SIGTERM stop the
// guest (its blocking polls and sleeps wake at once), every kernel object is closed, and the run
// ends within a second even if the guest spins without calling the host.
import type { Worker } from 'node:worker_threads';
import fs from 'node:fs';
import path from 'node:path';
import os from 'node:os';
import { StopSignal } from './stop.js';
import type { WorkerInput, WorkerMessage } from './protocol.js';
import { startWorker, takePrestarted, type Prestarted } from './prestart.js';
import type { BackendChoice, KernelPathChoice } from '../select/backend.js';
import { WasmBpfError } from '../errors.js';
import { mark } from '../trace.js';
import { DEFAULT_POLICY, type Policy } from '../policy/policy.js';
import { joinProcesses, launchCommand, type Launched, type Tiered } from './launch.js';
import { PTRACE_HIT_US, tierChoice } from '../../backends/userspace/attach/tier.js';
import { loadNative } from '../../backends/linux/native.js';
import { PauseGate } from './pause.js';
import { CALL_BYTES, cancelCall, importNames, serveCall, type HostImports } from './hostcall.js';

export interface RunOptions {
  /** module bytes, or a path to read them from */
  module: Uint8Array | string;
  /** argv[1..] of the guest */
  args?: string[];
  /** argv[0] of the guest (default: the module's file name) */
  argv0?: string;
  env?: Record<string, string>;
  /** guest path -> host path */
  preopens?: Record<string, string>;
  /**
   * the guest's stdin (fd 0): 'inherit' (default) this process's fd 0; 'ignore' nothing (end of file at once);
   * bytes or a string (UTF-8): that input, then end of file
   */
  stdin?: 'inherit' | 'ignore' | Uint8Array | string;
  verbose?: boolean;
  /** what the guest's objects may load and attach to (default DEFAULT_POLICY: see src/policy/policy.ts) */
  policy?: Policy;
  /** features the prober's report should say are absent, so that their fallbacks run (the CLI's --assume-missing) */
  assumeMissing?: readonly string[];
  wrapperModule?: string;
  callbackExport?: string;
  backend?: BackendChoice;
  /** the kernel backend's native part: 'addon', 'ffi' (libbpf through koffi) or 'auto' (default: the addon when built) */
  libbpf?: KernelPathChoice;
  /** vmlinux BTF for libbpf's CO-RE (btf_custom_path); default: the kernel's own, else BTFHub (compat/btfhub) */
  btfCustomPath?: string;
  /**
   * Where BTFHub BTF comes from when the kernel has none: a btfhub-archive mirror URL or a local archive
   * tree (default: $WASM_BPF_BTFHUB_MIRROR / $WASM_BPF_BTFHUB_ARCHIVE, else the public archive). With
   * either set, a failed fetch fails the run; with the default it is only a warning. false: never fetch.
   */
  btfhub?: { mirror?: string; archive?: string } | false;
  /** stop the guest on these signals (default SIGINT and SIGTERM) */
  handleSignals?: boolean;
  /** how long to wait for a stopped guest to unwind before terminating its thread */
  graceMs?: number;
  /**
   * The CLI's choice, off by default: when the guest's thread has not ended STUCK_MS after it was
   * terminated (a guest V8 cannot interrupt, e.g. a loop of memory.grow, or one blocked in a read),
   * say so on stderr and end this whole process at once with 128+signal; its kernel objects close
   * with its descriptors. A library caller's process is never ended by the Runtime: without this
   * option, run() settles only when the thread ends (V8 took minutes for a memory.grow loop).
   */
  exitWhenStuck?: boolean;
  /**
   * A command to run under the app (`wasm-bpf run APP.wasm [ARGS] -- COMMAND [ARGS]`), started with the
   * uprobe agent (./launch.ts): the userspace backend traces it and everything it runs; it waits before its
   * main until the guest is set up (its first poll or sleep). When it exits, the run stops (the records it
   * produced are delivered first) and the run's exit code is the command's. When the run ends first, the
   * command runs on, unhooked; one the guest never let start (it ended before its first poll or sleep) is
   * killed before its main.
   */
  launch?: { command: readonly string[]; env?: NodeJS.ProcessEnv };
  /**
   * Running processes to trace (`--pid`): the uprobe agent is injected into each (ptrace; ./launch.ts
   * joinProcesses), which then runs the app's uprobe programs like a launched command's; at the end of the
   * run every hook is removed and each process runs on as before.
   */
  join?: readonly number[];
  /**
   * The embedder's host functions the guest may import (module -> name -> JavaScript function; see
   * ./hostcall.ts): called on this thread with the guest's i32/i64/f32/f64 values while the guest waits.
   */
  imports?: HostImports;
  /** the guest's stdout and stderr (and the runtime's warnings) go here instead of this process's fds 1 and 2 */
  output?: (fd: 1 | 2, data: Uint8Array) => void;
  /** let pause() stop the guest at its next WASI or embedder call (a check on each such call) */
  pausable?: boolean;
  /**
   * Which userspace tier traces the launched command and the joined processes (`--userspace-tier`, else
   * WBPF_USERSPACE_TIER): 'agent' (inside the process), 'ptrace' (the host's tracer runs the programs at
   * each hit: slow, for static binaries), 'auto' (default: ptrace for static binaries, else the agent).
   */
  userspaceTier?: 'auto' | 'agent' | 'ptrace';
}

export interface RunResult {
  /** the guest's exit code (proc_exit), 128+signal when stopped by a signal */
  exitCode: number;
}

const SIGNALS: Record<'SIGINT' | 'SIGTERM', number> = { SIGINT: 2, SIGTERM: 15 };
/** the stop a launched command's end requests (as SIGTERM would, with the records delivered first) */
const COMMAND_ENDED = 15;
/** after terminate(), how long a guest's thread may take to end before exitWhenStuck ends the process */
const STUCK_MS = 250;

/** ends the process now: process.exit() would wait for the stuck thread */
async function exitNow(code: number): Promise<never> {
  try {
    const { loadNative } = await import('../../backends/linux/native.js');
    loadNative().exitNow(code);
  } catch {
    // no addon here (another platform, not built): the process still ends
  }
  process.kill(process.pid, 'SIGKILL');
  throw new Error('unreachable');
}

export class Runtime {
  private worker: Worker | undefined;
  private readonly stopSignal: StopSignal;
  private readonly prestarted: Prestarted | undefined;
  private wakeFd = -1;
  private readonly gate = new PauseGate();
  private callChannel: SharedArrayBuffer | undefined;
  /** the run's stop with a deadline (as on a signal), while it runs */
  private terminator: ((signal: number) => void) | undefined;
  /** a BTFHub fetch before the guest starts: terminate() aborts it (its files removed) and the run ends with 128 + signal */
  private fetching: { abort: AbortController; signal?: number } | undefined;

  constructor() {
    const w = takePrestarted();
    this.stopSignal = w?.stop ?? new StopSignal();
    this.prestarted = w;
  }

  /** Ask a running guest to stop (as on SIGINT). */
  stop(signal = 2): void {
    this.stopSignal.request(signal, this.wakeFd);
    // a guest paused, or waiting for an embedder's function, unwinds now
    if (this.callChannel) cancelCall(this.callChannel);
    this.gate.resume();
  }

  /**
   * Stop the guest as a signal would: it unwinds at once from a poll, a sleep, a pause or an embedder's
   * function; a guest that does not yield has its thread terminated after graceMs. run() then settles
   * with 128 + signal.
   */
  terminate(signal = 15): void {
    if (this.fetching) {
      this.fetching.signal ??= signal;
      this.fetching.abort.abort();
    }
    if (this.terminator) this.terminator(signal);
    else this.stop(signal);
  }

  /** pausable runs: the guest waits at its next WASI or embedder call until resume() */
  pause(): void {
    this.gate.pause();
  }

  resume(): void {
    this.gate.resume();
  }

  get paused(): boolean {
    return this.gate.paused;
  }

  async run(opts: RunOptions): Promise<RunResult> {
    const bytes = typeof opts.module === 'string' ? readModule(opts.module) : opts.module;
    mark('read_module');
    const name = typeof opts.module === 'string' ? path.basename(opts.module) : 'module.wasm';
    const input: WorkerInput = {
      bytes,
      args: [opts.argv0 ?? name, ...(opts.args ?? [])],
      env: opts.env ?? {},
      preopens: opts.preopens ?? {},
      objectName: name.replace(/\.wasm$/, '').replace(/[^A-Za-z0-9_]/g, '_').slice(0, 15) || 'guest',
      verbose: opts.verbose ?? false,
      policy: opts.policy ?? DEFAULT_POLICY,
      assumeMissing: [...(opts.assumeMissing ?? [])],
      wrapperModule: opts.wrapperModule ?? 'callback-wrapper',
      callbackExport: opts.callbackExport ?? 'go-callback',
      backend: opts.backend ?? 'auto',
      ...(opts.libbpf ? { libbpf: opts.libbpf } : {}),
      stop: this.stopSignal.shared,
    };
    if (opts.output) input.captureOutput = true;
    if (opts.stdin !== undefined && opts.stdin !== 'inherit') {
      if (opts.stdin === 'ignore') input.stdin = new Uint8Array(0);
      else if (typeof opts.stdin === 'string') input.stdin = Buffer.from(opts.stdin, 'utf8');
      else if (opts.stdin instanceof Uint8Array) input.stdin = opts.stdin;
      else throw new WasmBpfError('USAGE', "stdin: 'inherit', 'ignore', a string or a Uint8Array");
    }
    if (opts.pausable) input.pause = this.gate.shared;
    if (opts.imports && Object.keys(opts.imports).length) {
      const reserved = ['wasi_snapshot_preview1', 'wasm_bpf', input.wrapperModule].filter((m) => m in opts.imports!);
      if (reserved.length) throw new WasmBpfError('USAGE', `imports: the module name ${reserved.join(', ')} is the runtime's own; give the embedder's functions another module name`);
      this.callChannel = new SharedArrayBuffer(CALL_BYTES);
      input.hostImports = { names: importNames(opts.imports), channel: this.callChannel };
    }
    const warn = (line: string): void => {
      if (opts.output) opts.output(2, Buffer.from(line));
      else process.stderr.write(line);
    };
    let btf: string | undefined;
    try {
      this.fetching = { abort: new AbortController() };
      btf = opts.btfCustomPath ?? (await hubBtf(opts, warn, this.fetching.abort.signal));
    } catch (err) {
      // Ctrl-C / SIGTERM (or terminate()) during the fetch: nothing kept, the run ends as the signal says
      const signal = err instanceof FetchInterrupted ? (this.fetching?.signal ?? err.signal) : undefined;
      if (signal === undefined) throw err;
      warn(`wasm-bpf: ${err instanceof Error ? err.message : String(err)}\n`);
      return { exitCode: 128 + signal };
    } finally {
      this.fetching = undefined;
    }
    if (btf) input.btfCustomPath = btf;
    let launched: Launched | undefined;
    let commandStatus: number | undefined;
    // joined first: a refusal (no such pid, Yama, ...) ends the run before a command is started
    const tier = tierChoice(opts.userspaceTier);
    const sayTier = (pid: number, t: Tiered, what: string): void => {
      if (!opts.verbose) return;
      const how = t.tier === 'ptrace' ? `ptrace tier: slow (~${PTRACE_HIT_US} us per hit)` : 'agent tier';
      const who = t.tier === 'ptrace' && what === 'launched' ? `pid ${pid} (wbpf-ptrace, the command's tracer and parent)` : `pid ${pid}`;
      process.stderr.write(`wasm-bpf: ${what} ${who}: ${how}: ${t.why}\n`);
    };
    const joined = opts.join?.length ? joinProcesses(opts.join, tier) : [];
    for (const j of joined) sayTier(j.pid, j, 'joined');
    if (joined.length) input.traced = joined.map((j) => ({ fd: j.fd, pid: j.pid, launched: false }));
    if (opts.launch) {
      try {
        const sys = await syscallPrograms(bytes, input.backend);
        launched = await launchCommand(opts.launch.command, opts.launch.env, tier, opts.verbose ?? false, sys.syscalls, sys.fork);
        sayTier(launched.pid, launched, 'launched');
      } catch (err) {
        // the joined processes' agents see their channel close and unhook (nothing was hooked yet)
        for (const j of joined) loadNative().closeFd(j.fd);
        throw err;
      }
      // the guest's thread owns the channel's fd from here (it closes it when the run ends)
      input.traced = [...(input.traced ?? []), { fd: launched.fd, pid: launched.pid, launched: true }];
      void launched.exited.then((status) => {
        commandStatus = status;
        if (opts.verbose) warn(`wasm-bpf: the launched command (pid ${launched!.pid}) exited with status ${status}; stopping the app\n`);
        this.stopSignal.request(COMMAND_ENDED, this.wakeFd, true);
      });
    }
    let worker: Worker;
    if (this.prestarted && !this.prestarted.dead) {
      // the guest's thread is still starting: compile the module, read the prober's report and validate the
      // module's embedded eBPF objects here meanwhile (a failure of any is left for the guest's thread to meet and report)
      const [module, report, validated] = await Promise.all([
        WebAssembly.compile(bytes as Uint8Array<ArrayBuffer>).catch(() => undefined),
        (input.backend === 'auto' || input.backend === 'linux') && process.platform === 'linux' ? import('../probe/fast.js').then((m) => m.hostReport({ assumeMissing: input.assumeMissing })).catch(() => undefined) : undefined,
        import('../select/facts.js').then((m) => m.validatedObjects(bytes)).catch(() => undefined),
      ]);
      if (module) input.module = module;
      if (report) input.report = report;
      if (validated?.length) input.validated = validated;
      worker = this.prestarted.worker;
      worker.ref();
      worker.postMessage(input);
      mark('input_posted');
    } else {
      if (this.prestarted) void this.prestarted.worker.terminate();
      worker = startWorker(input);
    }
    this.worker = worker;
    const graceMs = opts.graceMs ?? 900;
    let forced: NodeJS.Timeout | undefined;
    let stuck: NodeJS.Timeout | undefined;
    const onSignal = (signo: number): void => {
      const sig = signo === 2 ? 'SIGINT' : signo === 15 ? 'SIGTERM' : `signal ${signo}`;
      this.stop(signo);
      forced ??= setTimeout(() => {
        void worker.terminate();
        if (!opts.exitWhenStuck) return;
        stuck = setTimeout(() => {
          process.stderr.write(
            `wasm-bpf: the guest did not yield within ${((graceMs + STUCK_MS) / 1000).toFixed(2)} s of ${sig} (a loop V8 cannot interrupt, such as memory.grow, or a blocking read); ending the process, its kernel objects close with it\n`,
          );
          void exitNow(128 + signo);
        }, STUCK_MS);
      }, graceMs);
    };
    this.terminator = onSignal;
    // terminate() before the guest's thread was started: its deadline starts now
    if (this.stopSignal.stopped) onSignal(this.stopSignal.stopped);
    const onInt = (): void => onSignal(SIGNALS.SIGINT);
    const onTerm = (): void => onSignal(SIGNALS.SIGTERM);
    if (opts.handleSignals !== false) {
      process.on('SIGINT', onInt);
      process.on('SIGTERM', onTerm);
    }
    try {
      return await new Promise<RunResult>((resolve, reject) => {
        let settled = false;
        worker.on('message', (m: WorkerMessage) => {
          if (m.type === 'output') {
            opts.output?.(m.fd, m.data);
          } else if (m.type === 'hostcall') {
            if (this.callChannel && opts.imports) void serveCall(this.callChannel, m, opts.imports);
          } else if (m.type === 'wakefd') {
            this.wakeFd = m.fd;
            if (this.stopSignal.stopped) StopSignal.wake(m.fd);
          } else if (m.type === 'exit') {
            settled = true;
            // ended by the command's end (not by its own doing, nor by a signal): the command's status
            resolve({ exitCode: commandStatus !== undefined && m.code === 128 + COMMAND_ENDED ? commandStatus : m.code });
          } else {
            settled = true;
            reject(new WasmBpfError(m.code as WasmBpfError['code'], m.message));
          }
        });
        worker.on('error', (err) => {
          settled = true;
          reject(err);
        });
        worker.on('exit', () => {
          if (settled) return;
          const sig = this.stopSignal.stopped;
          if (sig) resolve({ exitCode: commandStatus !== undefined && sig === COMMAND_ENDED ? commandStatus : 128 + sig });
          else reject(new WasmBpfError('GUEST_TRAP', 'the guest thread ended unexpectedly'));
        });
      });
    } finally {
      if (forced) clearTimeout(forced);
      if (stuck) clearTimeout(stuck);
      process.off('SIGINT', onInt);
      process.off('SIGTERM', onTerm);
      this.terminator = undefined;
      this.worker = undefined;
      await worker.terminate();
    }
  }
}

/** fast path: the kernel's own vmlinux BTF in sysfs (a regular file with at least a header) */
/**
 * The launch needs to know whether the app's objects have syscall tracepoint or process event programs the
 * userspace backend may run: on an arch whose agent rewrites no syscall sites (arm64) they go to the ptrace tier,
 * and so does a sched_process_fork program everywhere (the agent emits no fork events) (attach/tier.ts's
 * launchTier). Only asked there: elsewhere the agent tier runs them.
 */
async function syscallPrograms(bytes: Uint8Array, backend: BackendChoice): Promise<{ syscalls: boolean; fork: boolean }> {
  const none = { syscalls: false, fork: false };
  if (backend === 'linux') return none;
  // auto: root reaches the kernel (which runs them itself), an ordinary user is routed to the userspace backend
  if (backend === 'auto' && process.geteuid?.() === 0) return none;
  const [{ validatedObjects }, { USERSPACE_SYSCALL_TP }] = await Promise.all([import('../select/facts.js'), import('../probe/backends.js')]);
  const sections = validatedObjects(bytes).flatMap((o) => o.facts.programs.map((p) => p.section));
  return { syscalls: process.arch !== 'x64' && sections.some((s) => USERSPACE_SYSCALL_TP.test(s)), fork: sections.some((s) => /^(tp|tracepoint)\/sched\/sched_process_fork$/.test(s)) };
}

function sysfsBtf(): boolean {
  if (process.platform !== 'linux') return false;
  try {
    const st = fs.statSync('/sys/kernel/btf/vmlinux');
    return st.isFile() && st.size >= 24;
  } catch {
    return false;
  }
}

/** The BTFHub file to use when the kernel carries no vmlinux BTF (see compat/btfhub/README.md). */
/** a BTFHub fetch ended by a signal or terminate(): the run ends with 128 + signal */
class FetchInterrupted extends Error {
  constructor(
    message: string,
    readonly signal: number,
  ) {
    super(message);
  }
}

async function hubBtf(opts: RunOptions, warn: (line: string) => void, abort: AbortSignal): Promise<string | undefined> {
  const backend = opts.backend ?? 'auto';
  if (opts.btfhub === false || process.platform !== 'linux' || backend === 'userspace' || backend === 'windows' || sysfsBtf()) return undefined;
  const { resolveBtf, ttyProgress, ENV_ARCHIVE, ENV_MIRROR } = await import('../../compat/btfhub/index.js');
  const hub = opts.btfhub ?? {};
  const explicit = hub.mirror !== undefined || hub.archive !== undefined || !!process.env[ENV_MIRROR] || !!process.env[ENV_ARCHIVE];
  try {
    // an embedder's process keeps its own signals (handleSignals false): terminate() aborts the fetch instead
    const r = await resolveBtf({ mirror: hub.mirror, archive: hub.archive, progress: ttyProgress(), abort, signals: opts.handleSignals !== false });
    if (r.source === 'kernel') return undefined;
    if (opts.verbose || r.source === 'fetched') {
      warn(`wasm-bpf: this kernel has no vmlinux BTF; using BTFHub's ${r.path}${r.source === 'fetched' ? ` (fetched from ${r.from})` : ''}\n`);
    }
    return r.path;
  } catch (err) {
    const msg = err instanceof Error ? err.message : String(err);
    const sig = (err as { signal?: NodeJS.Signals }).signal;
    if (sig) throw new FetchInterrupted(msg, os.constants.signals[sig]);
    if (abort.aborted) throw new FetchInterrupted(`${msg} (stopped by terminate(); nothing was kept)`, 15);
    if (explicit) throw new WasmBpfError('NOT_FOUND', msg);
    warn(`wasm-bpf: warning: ${msg}; CO-RE objects will not load (set a mirror with --btfhub-mirror URL or --btfhub-archive DIR)\n`);
    return undefined;
  }
}

function readModule(file: string): Uint8Array {
  try {
    return fs.readFileSync(file);
  } catch (err) {
    const e = err as NodeJS.ErrnoException;
    throw new WasmBpfError('NOT_FOUND', `cannot read ${file}: ${e.code === 'ENOENT' ? 'no such file' : e.message}`);
  }
}
