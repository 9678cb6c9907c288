// `wasm-bpf run [options] <module.wasm> [args...]`
import fs from 'node:fs';
import path from 'node:path';
import { Runtime } from '../runtime/runtime.js';
import { BACKEND_CHOICES, KERNEL_PATH_CHOICES, type BackendChoice, type KernelPathChoice } from '../select/backend.js';
import { errorMessage, WasmBpfError } from '../errors.js';
import { cliAssumedMissing } from '../probe/assume.js';
import { DEFAULT_POLICY, type Policy } from '../policy/policy.js';
import { POLICY_HELP, PolicyOptions } from './policy.js';
import { TIER_CHOICES, type TierChoice } from '../../backends/userspace/attach/tier.js';
import { say } from './say.js';

const RUN_USAGE = `Usage: wasm-bpf run [options] <module.wasm> [args...] [-- COMMAND [ARGS...]]
       wasm-bpf [options] <module.wasm> [args...] [-- COMMAND [ARGS...]]

Runs a Wasm+WASI module that loads eBPF programs through the wasm_bpf host functions.
Arguments after the module go to the guest as argv[1..]. Ctrl-C (or SIGTERM) detaches every
program, closes every map and exits with 130 (143). Otherwise the exit code is the guest's
(1 when the guest's code is above 255).

-- COMMAND [ARGS...] launches COMMAND under the app (x86_64): the userspace backend runs the app's
uprobe/uretprobe programs inside it, at the hooked functions (no root needed; chosen automatically
when the kernel cannot run them, or with --backend userspace). COMMAND starts once the app is set up
(its first poll or sleep), so hooks see it from its first instruction; with the kernel backend it
starts the same way. When COMMAND exits, the app is stopped (records already produced are
delivered) and the exit code is COMMAND's; when the app ends first, COMMAND runs on, unhooked (if the
app ended before its first poll or sleep, COMMAND never started: it is killed before its main).
The first -- after the module starts the command: the guest's own arguments cannot contain --.

Options:
  --env K=V                     set an environment variable for the guest (repeatable; none by default)
  --dir HOST[:GUEST]            give the guest a host directory (repeatable; none by default)
  --pid PID                     trace this running process too (repeatable; x86_64): the userspace backend
                                injects the uprobe agent (ptrace; your own processes, Yama permitting) and
                                runs the app's uprobe/uretprobe programs in it; at the end of the run every
                                hook is removed and the process runs on as before
  --userspace-tier auto|agent|ptrace
                                how the userspace backend traces COMMAND and --pid processes (default
                                $WBPF_USERSPACE_TIER, else auto): agent, inside the process (fast); ptrace,
                                the tracer wbpf-ptrace runs the programs at int3 breakpoints (slow, ~20 us
                                a hit; --verbose says so); auto: ptrace for statically linked programs
                                (no loader to preload the agent, no dlopen to inject it), else the agent
  --backend auto|linux|userspace|windows
                                force a backend (default auto)
  --libbpf auto|addon|ffi       the kernel backend's libbpf: through the native addon, or the system's
                                libbpf.so.1 through FFI (koffi; needs no compiler at install); default
                                auto: the addon when it is built, else FFI (\`wasm-bpf probe\` says which)
  --btfhub-mirror URL           when the kernel has no vmlinux BTF, fetch it from this btfhub-archive
                                mirror (default $WASM_BPF_BTFHUB_MIRROR, else the public archive)
  --btfhub-archive DIR          ... or read it from this local btfhub-archive tree (air-gapped)
  -m, --wrapper-module-name N   TinyGo callback import module (default callback-wrapper)
  -c, --callback-export-name N  TinyGo callback export (default go-callback)
  --assume-missing FEATURE      make the prober report FEATURE (e.g. ringbuf) as absent, so that its
                                fallback (compat pass) runs (repeatable; also $WASM_BPF_ASSUME_MISSING)
  -v, --verbose                 show libbpf output and verifier logs
  -h, --help                    show this help

${POLICY_HELP}`;

interface Parsed {
  module: string;
  args: string[];
  env: Record<string, string>;
  preopens: Record<string, string>;
  policy: Policy;
  /** --assume-missing and $WASM_BPF_ASSUME_MISSING */
  assumeMissing: string[];
  backend: BackendChoice;
  libbpf?: KernelPathChoice;
  verbose: boolean;
  wrapperModule: string;
  callbackExport: string;
  btfhubMirror?: string;
  btfhubArchive?: string;
  /** the command after `--` that follows the module */
  command?: string[];
  /** --pid: running processes to trace */
  pids: number[];
  /** --userspace-tier */
  userspaceTier?: TierChoice;
}

function usageError(msg: string): never {
  throw new WasmBpfError('USAGE', msg);
}

function parseRunArgs(argv: string[]): Parsed | 'help' {
  const p: Parsed = {
    module: '',
    args: [],
    env: {},
    preopens: {},
    policy: DEFAULT_POLICY,
    assumeMissing: [],
    backend: 'auto',
    verbose: false,
    wrapperModule: 'callback-wrapper',
    callbackExport: 'go-callback',
    pids: [],
  };
  const policy = new PolicyOptions();
  const assumed: string[] = [];
  let i = 0;
  const value = (flag: string): string => {
    const v = argv[++i];
    if (v === undefined) usageError(`${flag} needs a value`);
    return v;
  };
  for (; i < argv.length; i++) {
    const a = argv[i]!;
    if (a === '--') {
      i++;
      break;
    }
    if (!a.startsWith('-') || a === '-') break;
    const eq = a.indexOf('=');
    const [flag, inline] = a.startsWith('--') && eq > 0 ? [a.slice(0, eq), a.slice(eq + 1)] : [a, undefined];
    const val = (): string => inline ?? value(flag);
    switch (flag) {
      case '-h':
      case '--help':
        return 'help';
      case '-v':
      case '--verbose':
        p.verbose = true;
        break;
      case '--env': {
        const kv = val();
        const k = kv.indexOf('=');
        if (k <= 0) usageError(`--env expects K=V, got '${kv}'`);
        p.env[kv.slice(0, k)] = kv.slice(k + 1);
        break;
      }
      case '--dir': {
        const spec = val();
        const c = spec.indexOf(':');
        const host = c >= 0 ? spec.slice(0, c) : spec;
        const guest = c >= 0 ? spec.slice(c + 1) : spec;
        if (!fs.existsSync(host) || !fs.statSync(host).isDirectory()) usageError(`--dir ${spec}: ${host} is not a directory`);
        p.preopens[guest] = path.resolve(host);
        break;
      }
      case '--backend': {
        const b = val();
        if (!BACKEND_CHOICES.includes(b as BackendChoice)) usageError(`--backend must be one of ${BACKEND_CHOICES.join(', ')}`);
        p.backend = b as BackendChoice;
        break;
      }
      case '--libbpf': {
        const l = val();
        if (!KERNEL_PATH_CHOICES.includes(l as KernelPathChoice)) usageError(`--libbpf must be one of ${KERNEL_PATH_CHOICES.join(', ')}`);
        p.libbpf = l as KernelPathChoice;
        break;
      }
      case '--btfhub-mirror': {
        const u = val();
        if (!/^https?:\/\//.test(u)) usageError(`--btfhub-mirror expects an http(s) URL, got '${u}'`);
        p.btfhubMirror = u;
        break;
      }
      case '--btfhub-archive': {
        const dir = val();
        if (!fs.existsSync(dir) || !fs.statSync(dir).isDirectory()) usageError(`--btfhub-archive ${dir}: not a directory`);
        p.btfhubArchive = path.resolve(dir);
        break;
      }
      case '--pid': {
        const v = val();
        const pid = Number(v);
        if (!/^\d+$/.test(v) || !Number.isSafeInteger(pid) || pid <= 0) usageError(`--pid expects a process id, got '${v}'`);
        if (!p.pids.includes(pid)) p.pids.push(pid);
        break;
      }
      case '--userspace-tier': {
        const v = val();
        if (!(TIER_CHOICES as readonly string[]).includes(v)) usageError(`--userspace-tier must be one of ${TIER_CHOICES.join(', ')}`);
        p.userspaceTier = v as TierChoice;
        break;
      }
      case '--assume-missing':
        assumed.push(val());
        break;
      case '-m':
      case '--wrapper-module-name':
        p.wrapperModule = val();
        break;
      case '-c':
      case '--callback-export-name':
        p.callbackExport = val();
        break;
      default:
        if (!policy.take(flag, val)) usageError(`unknown option ${a} (see wasm-bpf run --help)`);
    }
  }
  const module = argv[i];
  if (module === undefined) usageError('no module given (see wasm-bpf run --help)');
  p.module = module;
  const rest = argv.slice(i + 1);
  const sep = rest.indexOf('--');
  p.args = sep < 0 ? rest : rest.slice(0, sep);
  if (sep >= 0) {
    p.command = rest.slice(sep + 1);
    if (p.command.length === 0) usageError('no command after -- (see wasm-bpf run --help)');
  }
  p.policy = policy.build();
  try {
    p.assumeMissing = cliAssumedMissing(assumed, process.env);
  } catch (err) {
    usageError((err as Error).message);
  }
  return p;
}

export async function runCommand(argv: string[]): Promise<number> {
  let parsed: Parsed | 'help';
  try {
    parsed = parseRunArgs(argv);
  } catch (err) {
    say('wasm-bpf', `${errorMessage(err)}`);
    return 2;
  }
  if (parsed === 'help') {
    process.stdout.write(RUN_USAGE);
    return 0;
  }
  const runtime = new Runtime();
  try {
    const { exitCode } = await runtime.run({
      module: parsed.module,
      args: parsed.args,
      env: parsed.env,
      preopens: parsed.preopens,
      verbose: parsed.verbose,
      policy: parsed.policy,
      assumeMissing: parsed.assumeMissing,
      wrapperModule: parsed.wrapperModule,
      callbackExport: parsed.callbackExport,
      backend: parsed.backend,
      ...(parsed.libbpf ? { libbpf: parsed.libbpf } : {}),
      exitWhenStuck: true,
      ...(parsed.command ? { launch: { command: parsed.command } } : {}),
      ...(parsed.pids.length ? { join: parsed.pids } : {}),
      ...(parsed.userspaceTier !== undefined ? { userspaceTier: parsed.userspaceTier } : {}),
      ...(parsed.btfhubMirror !== undefined || parsed.btfhubArchive !== undefined
        ? { btfhub: { ...(parsed.btfhubMirror !== undefined ? { mirror: parsed.btfhubMirror } : {}), ...(parsed.btfhubArchive !== undefined ? { archive: parsed.btfhubArchive } : {}) } }
        : {}),
    });
    if (exitCode > 255) {
      // the process's status keeps only the low 8 bits: 256 would read as success
      say('wasm-bpf', `the guest exited with code ${exitCode}, which is not an exit status (0-255); exiting with 1`);
      return 1;
    }
    return exitCode;
  } catch (err) {
    say('wasm-bpf', `${errorMessage(err)}`);
    return 1;
  }
}
