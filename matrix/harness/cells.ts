// The cells of the compatibility matrix that one machine can decide: run on the host by
// matrix/run.ts, and inside every qemu guest (where the guest's own Node runs it from the staged
// checkout). For each app and configuration it starts the app, causes its events and checks them
// (scenarios.ts), and prints one `CELL {json}` line per cell.
//
//   node dist/matrix/harness/cells.js [--platform ID] [--configs default,no-ringbuf,no-btf,userspace,cross-arch,unprivileged]
//                                     [--apps a,b] [--runners native,wasm] [--skip app:config:runner,...]
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import http from 'node:http';
import { spawn, spawnSync, type SpawnOptions } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import type { AddressInfo } from 'node:net';
import { Running, TIME_SCALE, abortAll, describePid, descendants, exec, livePids } from './running.js';
import { cgroup2Mounts } from '../../src/policy/enforce.js';
import { APPS, SCENARIOS, type App, type Launcher, type Place } from './scenarios.js';

export const CONFIGS = ['default', 'no-ringbuf', 'no-btf', 'userspace', 'cross-arch', 'unprivileged', 'ffi'] as const;
export type Config = (typeof CONFIGS)[number];
export type Runner = 'native' | 'wasm';
export type Verdict = 'pass' | 'fail' | 'unsupported' | 'n/a';

export interface Cell {
  app: App;
  platform: string;
  config: Config;
  runner: Runner;
  verdict: Verdict;
  /** why (the failed check, the missing kernel feature), or what was run for a pass */
  reason: string;
  /** the event line that proved a pass */
  evidence?: string;
  ms: number;
}

/** apps whose records go through a ring buffer (the no-ringbuf fallback applies to them) */
const RINGBUF_APPS: readonly App[] = ['bootstrap', 'opensnoop', 'sockfilter', 'sockops', 'uprobe', 'lsm', 'kprobe', 'fentry'];
/** apps whose object reads pt_regs, so an object built for one arch is wrong on the other without relocation */
export const PTREGS_APPS: readonly App[] = ['uprobe', 'kprobe'];
/** program types the userspace backend is meant for: uprobes, syscall tracing and process events */
const USERSPACE_APPS: readonly App[] = ['uprobe', 'opensnoop', 'execve', 'bootstrap'];

const here = path.dirname(fileURLToPath(import.meta.url));
/** the checkout: $WASM_BPF_ROOT in a guest, else three levels up from dist/matrix/harness (or two from matrix/harness) */
export const ROOT = process.env['WASM_BPF_ROOT'] ?? [path.resolve(here, '../../..'), path.resolve(here, '../..')].find((d) => fs.existsSync(path.join(d, 'bin', 'wasm-bpf.js')))!;
const CLI = path.join(ROOT, 'bin', 'wasm-bpf.js');
const BUILD = path.join(ROOT, 'matrix', 'build');
const ARM64 = os.arch() === 'arm64';

/** the Wasm module of an app for this machine's arch, or (cross) the one built for the other arch */
export function wasmFile(app: App, cross = false): string {
  const arm = ARM64 !== cross;
  return path.join(BUILD, `${app}${arm && PTREGS_APPS.includes(app) ? '-arm64' : ''}.wasm`);
}

/** an ordinary user the unprivileged configuration runs the app as: its ids and a home it owns (HOME, the probe cache) */
interface User {
  uid: number;
  gid: number;
  home: string;
}

/** the unprivileged configuration's user: nobody (65534), the id an ordinary user without any privilege has */
const NOBODY = 65534;

/**
 * An app that runs as `user` in a network namespace: `ip netns exec` needs root, so it starts this
 * forwarder there (as root), which runs the app as the user (setgroups([]), setgid, setuid: libuv's
 * spawn), passes Ctrl-C and SIGTERM on and ends as the app did. Node is the only tool every guest has
 * (the arm64 guests' busybox setpriv cannot change ids).
 */
const AS_USER = `const [u, g, home, file, ...args] = process.argv.slice(1);
const c = require('node:child_process').spawn(file, args, { stdio: 'inherit', uid: +u, gid: +g, cwd: home });
for (const s of ['SIGINT', 'SIGTERM']) process.on(s, () => c.kill(s));
c.on('exit', (code, sig) => { if (sig) { process.removeAllListeners(sig); process.kill(process.pid, sig); } else process.exit(code); });`;

function spawnIn(netns: string | undefined, argv: string[], env: NodeJS.ProcessEnv, wrap?: string, user?: User): Running {
  let cmd = argv;
  if (wrap) cmd = ['unshare', '-m', 'sh', '-c', `${wrap} && exec "$@"`, 'sh', ...argv];
  if (user && netns) cmd = [process.execPath, '-e', AS_USER, String(user.uid), String(user.gid), user.home, ...cmd];
  if (netns) cmd = ['ip', 'netns', 'exec', netns, ...cmd];
  const opts: SpawnOptions = { env, stdio: ['ignore', 'pipe', 'pipe'], ...(user && !netns ? { uid: user.uid, gid: user.gid, cwd: user.home } : {}) };
  return new Running(spawn(cmd[0]!, cmd.slice(1), opts));
}

function wasmLauncher(label: string, flags: string[], opts: { cross?: boolean; env?: NodeJS.ProcessEnv; wrap?: string; netnsFlags?: string[]; launches?: boolean; user?: User } = {}): Launcher {
  return {
    label,
    interruptStatus: 130,
    ...(opts.launches ? { launches: true } : {}),
    start: (app, args, o) =>
      spawnIn(o?.netns, [process.execPath, CLI, 'run', ...(o?.netns && opts.netnsFlags ? opts.netnsFlags : flags), wasmFile(app, opts.cross), ...args], { ...(opts.user ? userEnv(opts.user) : process.env), ...opts.env }, opts.wrap, opts.user),
  };
}

/**
 * The environment of a run as `user`: the harness's, with HOME the user's own directory, so the probe
 * cache goes where an ordinary user's does ($HOME/.cache/wasm-bpf: no WASM_BPF_CACHE_DIR or
 * XDG_CACHE_HOME of root's)
 */
function userEnv(user: User): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env, HOME: user.home };
  delete env['WASM_BPF_CACHE_DIR'];
  delete env['XDG_CACHE_HOME'];
  return env;
}

/**
 * a home directory owned by the user inside the harness's scratch directory, which others may then
 * pass through (0711) but not list; it goes with the scratch directory
 */
function makeUser(id: number, tmp: string): User {
  fs.chmodSync(tmp, 0o711);
  const home = path.join(tmp, `home-uid${id}`);
  fs.mkdirSync(home, { mode: 0o700 });
  fs.chownSync(home, id, id);
  return { uid: id, gid: id, home };
}

const nativeLauncher: Launcher = {
  label: 'native',
  interruptStatus: 0,
  start: (app, args, o) => spawnIn(o?.netns, [path.join(BUILD, 'native', app), ...args], process.env),
};

/** a loopback btfhub-archive mirror holding this kernel's own BTF, as BTFHub names it */
async function btfhubMirror(tmp: string): Promise<{ url: string; archive: string; close: () => void; requests: string[] }> {
  const { hubTarget } = (await import(path.join(ROOT, 'dist', 'compat', 'btfhub', 'index.js'))) as typeof import('../../compat/btfhub/index.js');
  const target = hubTarget(undefined, path.join(tmp, 'unused'));
  const archive = path.join(tmp, 'archive');
  const file = path.join(archive, ...target.relPath.split('/'));
  fs.mkdirSync(path.dirname(file), { recursive: true });
  const stage = fs.mkdtempSync(path.join(tmp, 'pack-'));
  const member = `${target.release}.btf`;
  fs.copyFileSync('/sys/kernel/btf/vmlinux', path.join(stage, member));
  // xz of the BTF takes seconds, tens on a loaded or emulated machine: not blocking the event loop meanwhile
  const tar = await exec('tar', ['-cJf', file, '-C', stage, member], 600_000);
  if (tar.status !== 0) throw new Error(`tar -cJf failed (${tar.status}): ${tar.stderr}`);
  const requests: string[] = [];
  const server = http.createServer((req, res) => {
    requests.push(req.url ?? '');
    const p = path.join(archive, path.normalize(decodeURIComponent(req.url ?? '/')));
    if (!p.startsWith(archive) || !fs.existsSync(p) || !fs.statSync(p).isFile()) {
      res.writeHead(404).end();
      return;
    }
    res.writeHead(200, { 'content-length': fs.statSync(p).size });
    fs.createReadStream(p).pipe(res);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, archive, close: () => server.close(), requests };
}

/** `wasm-bpf check --json`: why the runtime's own plan refuses a module here, if it does */
async function refusal(wasm: string, flags: string[]): Promise<string | undefined> {
  const r = await exec(process.execPath, [CLI, 'check', '--json', ...flags, wasm], 60_000);
  try {
    const j = JSON.parse(r.stdout) as { runnable: boolean; objects: Array<{ plan: { blocking: Array<{ subject: string; missing: { what: string; reason: string; since?: string; fix?: string } }> } }> };
    if (j.runnable) return undefined;
    const b = j.objects.flatMap((o) => o.plan.blocking)[0];
    return b ? `${b.missing.what}${b.missing.since ? ` (Linux ${b.missing.since}+)` : ''}: ${b.missing.reason}${b.missing.fix ? `; fix: ${b.missing.fix}` : ''}` : 'refused by the selector';
  } catch {
    return undefined;
  }
}

/** the first line of a failure that says what went wrong */
function firstError(e: unknown): string {
  const msg = e instanceof Error ? e.message : String(e);
  const lines = msg.split('\n');
  const err = lines.find((l) => /^(wasm-bpf: |[a-z]+: .*: )/.test(l) && !/^wasm-bpf: (hint|selector)/.test(l));
  return err ? `${lines[0]} (${err.trim()})` : lines[0]!;
}

/** tracefs, and a cgroup2 mount for the sockops app (the first there is, else one it mounts); returns that */
function ensureMounts(): string {
  if (!fs.existsSync('/sys/kernel/tracing/events')) spawnSync('mount', ['-t', 'tracefs', 'nodev', '/sys/kernel/tracing']);
  const mounted = cgroup2Mounts()[0];
  if (mounted) return mounted;
  const cg = '/sys/fs/cgroup/unified';
  fs.mkdirSync(cg, { recursive: true });
  spawnSync('mount', ['-t', 'cgroup2', 'none', cg]);
  return cg;
}

interface Plan {
  config: Config;
  runner: Runner;
  launcher: Launcher;
  /** decided without running */
  fixed?: { verdict: Verdict; reason: string };
  /** extra proof a pass needs in the app's stderr */
  proof?: RegExp;
  checkFlags: string[];
  cross?: boolean;
}

/** how long one try of a cell may take before its processes are killed and it fails (WASM_BPF_CELL_LIMIT seconds overrides) */
export const CELL_LIMIT_MS = Number(process.env['WASM_BPF_CELL_LIMIT'] ?? 0) * 1000 || Math.max(60_000, 20_000 * TIME_SCALE);

/** a cell's key, as --skip takes it: app:config:runner */
export const cellKey = (c: Pick<Cell, 'app' | 'config' | 'runner'>): string => `${c.app}:${c.config}:${c.runner}`;

/**
 * WASM_BPF_MATRIX_HANG=app:config:runner (for testing the matrix's stall handling): that cell blocks
 * this process for good, as a harness stuck in the kernel would, where its own time limit cannot help
 */
function hang(): never {
  for (;;) Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 3_600_000);
}

let doing = 'starting';
/** touches $WASM_BPF_HEARTBEAT (a qemu guest's init watches it to report a stall) with what runs now */
function heartbeat(what = doing): void {
  doing = what;
  const f = process.env['WASM_BPF_HEARTBEAT'];
  if (f) fs.writeFileSync(f, `${what}\n`);
}

export async function runCells(opts: {
  platform: string;
  configs: Config[];
  apps: App[];
  runners: Runner[];
  /** cells already decided elsewhere (a run before a guest's reboot): app:config:runner */
  skip?: ReadonlySet<string>;
  /** a cell starts (the caller can say which one hangs) */
  begin?: (c: Pick<Cell, 'app' | 'config' | 'runner'>) => void;
  emit?: (c: Cell) => void;
  /** called every second while the harness prepares something slow between cells (the BTFHub mirror) */
  alive?: () => void;
}): Promise<Cell[]> {
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'wasm-bpf-matrix-'));
  const place: Place = { build: BUILD, tmp, node: process.execPath, cgroup: ensureMounts() };
  const cells: Cell[] = [];
  let mirror: Awaited<ReturnType<typeof btfhubMirror>> | undefined;
  /** the unprivileged configuration's user, made when it is first needed */
  let user: User | undefined;
  try {
    for (const app of opts.apps) {
      const plans: Plan[] = [];
      for (const config of opts.configs) {
        if (config === 'default') {
          if (opts.runners.includes('native')) plans.push({ config, runner: 'native', launcher: nativeLauncher, checkFlags: [] });
          if (opts.runners.includes('wasm')) plans.push({ config, runner: 'wasm', launcher: wasmLauncher('wasm', []), checkFlags: [] });
        } else if (config === 'no-ringbuf') {
          const fixed = RINGBUF_APPS.includes(app) ? undefined : { verdict: 'n/a' as const, reason: 'the app uses no ring buffer' };
          plans.push({ config, runner: 'wasm', launcher: wasmLauncher('wasm, ring buffer assumed missing', ['--verbose', '--assume-missing', 'ringbuf']), fixed, proof: /ringbuf -> perf_event_array/, checkFlags: ['--assume-missing', 'ringbuf'] });
        } else if (config === 'no-btf') {
          if (!fs.existsSync('/sys/kernel/btf/vmlinux')) {
            plans.push({ config, runner: 'wasm', launcher: nativeLauncher, fixed: { verdict: 'n/a', reason: 'needs this kernel\'s BTF to build the loopback mirror' }, checkFlags: [] });
            continue;
          }
          if (!mirror) {
            // said every second, so that the matrix does not take the silence for a stalled harness
            const tick = opts.alive && setInterval(opts.alive, 1000);
            mirror = await btfhubMirror(tmp).finally(() => tick && clearInterval(tick));
          }
          const cache = path.join(tmp, `btf-cache-${app}`);
          const wrap = 'mount --make-rprivate / && mount --bind /dev/null /sys/kernel/btf/vmlinux';
          // an app inside a network namespace cannot reach the loopback mirror: it reads the same archive from disk
          const launcher = wasmLauncher('wasm, no vmlinux BTF, BTFHub mirror on loopback', ['--btfhub-mirror', mirror.url], { env: { WASM_BPF_CACHE_DIR: cache }, wrap, netnsFlags: ['--btfhub-archive', mirror.archive] });
          plans.push({ config, runner: 'wasm', launcher, proof: /using BTFHub's/, checkFlags: [] });
        } else if (config === 'userspace') {
          const fixed = USERSPACE_APPS.includes(app) ? undefined : { verdict: 'n/a' as const, reason: 'program type has no userspace equivalent (kernel only)' };
          plans.push({ config, runner: 'wasm', launcher: wasmLauncher('wasm, userspace backend', ['--backend', 'userspace'], { launches: true }), fixed, checkFlags: ['--backend', 'userspace'] });
        } else if (config === 'cross-arch') {
          const fixed = PTREGS_APPS.includes(app) ? undefined : { verdict: 'n/a' as const, reason: 'arch-neutral object (no pt_regs access)' };
          const other = ARM64 ? 'x86_64' : 'arm64';
          plans.push({ config, runner: 'wasm', launcher: wasmLauncher(`wasm, object built for ${other}`, ['--verbose'], { cross: true }), fixed, proof: /pt_regs/, checkFlags: [], cross: true });
        } else if (config === 'unprivileged') {
          // auto routing as an ordinary user: the kernel refuses bpf(), so a uprobe app goes to the
          // userspace backend (its target launched under the app) and every other app is refused
          user ??= makeUser(NOBODY, tmp);
          const launcher = wasmLauncher(`wasm, uid ${NOBODY}, auto routing`, ['--verbose'], { user, launches: true });
          plans.push({ config, runner: 'wasm', launcher, proof: /selector: userspace: the kernel cannot run the object/, checkFlags: [] });
        } else if (config === 'ffi') {
          // the kernel backend on the system's libbpf through FFI, as an install without the addon runs it
          const launcher = wasmLauncher('wasm, kernel via FFI (no addon)', ['--verbose'], { env: { WASM_BPF_NO_ADDON: '1' } });
          plans.push({ config, runner: 'wasm', launcher, proof: /the kernel backend runs on libbpf through FFI/, checkFlags: [] });
        }
      }
      for (const plan of plans) {
        if (opts.skip?.has(cellKey({ app, ...plan }))) continue;
        const t0 = Date.now();
        let cell: Cell;
        if (plan.fixed) {
          cell = { app, platform: opts.platform, config: plan.config, runner: plan.runner, ...plan.fixed, ms: 0 };
        } else {
          opts.begin?.({ app, config: plan.config, runner: plan.runner });
          heartbeat(`${cellKey({ app, ...plan })} (first try)`);
          if (process.env['WASM_BPF_MATRIX_HANG'] === cellKey({ app, ...plan })) hang();
          cell = await bounded(app, plan, place, opts.platform);
          if (cell.verdict === 'fail') {
            // one more try, so that one slow moment of a loaded machine is not a regression; a pass on
            // the second try says so in its reason
            heartbeat(`${cellKey({ app, ...plan })} (second try)`);
            const again = await bounded(app, plan, place, opts.platform);
            cell = again.verdict === 'pass' ? { ...again, reason: `${again.reason} (second try; the first failed: ${cell.reason.split('\n')[0]})` } : cell;
          }
        }
        cell.ms = Date.now() - t0;
        heartbeat(`${cellKey({ app, ...plan })} (done)`);
        cells.push(cell);
        opts.emit?.(cell);
      }
    }
  } finally {
    mirror?.close();
    fs.rmSync(tmp, { recursive: true, force: true });
  }
  return cells;
}

/**
 * decide() within CELL_LIMIT_MS: past it, every process the cell started is described (state, wchan,
 * kernel stack: where it hangs) and killed, and the cell fails with that description
 */
async function bounded(app: App, plan: Plan, place: Place, platform: string): Promise<Cell> {
  const token = { abandoned: false };
  let timer: NodeJS.Timeout | undefined;
  const limit = new Promise<Cell>((resolve) => {
    timer = setTimeout(() => {
      token.abandoned = true;
      const pids = [...new Set(livePids().flatMap(descendants))];
      const where = pids.map(describePid).join('; ') || 'no process of the cell was running';
      abortAll(`the cell's time limit (${CELL_LIMIT_MS / 1000} s) passed`);
      resolve({ app, platform, config: plan.config, runner: plan.runner, ms: 0, verdict: 'fail', reason: `timed out after ${CELL_LIMIT_MS / 1000} s: ${where}` });
    }, CELL_LIMIT_MS);
  });
  try {
    return await Promise.race([decide(app, plan, place, platform, token), limit]);
  } finally {
    clearTimeout(timer);
  }
}

async function decide(app: App, plan: Plan, place: Place, platform: string, token: { abandoned: boolean }): Promise<Cell> {
  const base = { app, platform, config: plan.config, runner: plan.runner, ms: 0 };
  let started: Running | undefined;
  const launcher: Launcher = {
    ...plan.launcher,
    label: plan.launcher.label,
    interruptStatus: plan.launcher.interruptStatus,
    ...(plan.launcher.launches ? { launches: true } : {}),
    start: (a, args, o) => (started = plan.launcher.start(a, args, o)),
  };
  try {
    const evidence = await SCENARIOS[app](launcher, place);
    if (plan.proof && started && !plan.proof.test(started.stderr)) {
      return { ...base, verdict: 'fail', reason: `events arrived, but the run shows no sign of the ${plan.config} path (${plan.proof})` };
    }
    return { ...base, verdict: 'pass', reason: plan.launcher.label, evidence };
  } catch (e) {
    if (token.abandoned) return { ...base, verdict: 'fail', reason: 'abandoned at the time limit' };
    if (started) await started.interrupt('SIGKILL');
    const text = `${e instanceof Error ? e.message : String(e)}\n${started?.stderr ?? ''}`;
    const noAgent = /launching a command under the uprobe agent needs [^\n]*/.exec(text);
    if (noAgent) return { ...base, verdict: 'unsupported', reason: `userspace backend: ${noAgent[0]}` };
    // a system-wide scenario (it watches every process) on a backend that traces only the processes it launches
    const noProcess = /needs a process to trace: [^\n]*/.exec(text);
    if (noProcess) return { ...base, verdict: 'unsupported', reason: `userspace backend: this scenario watches every process; it ${noProcess[0].replace(/^needs a process to trace: the userspace backend /, '')}` };
    const unsupportedBackend = /is not supported by the userspace backend yet[^\n]*/.exec(text);
    if (unsupportedBackend) return { ...base, verdict: 'unsupported', reason: `userspace backend: attach ${unsupportedBackend[0].replace(/^.*is not supported by the userspace backend yet: /, 'not implemented yet: ')}` };
    // the run's own refusal (the selector names every missing capability), else the plan `check` makes
    const selector = /no backend on this host can run the object:\n\s+- [^\n]*? needs? ([^\n]*)/.exec(text);
    if (selector) return { ...base, verdict: 'unsupported', reason: selector[1]!.replace(/^(.*?): /, '$1: ') };
    // no capability missing, every backend passed over (an ordinary user: the kernel refuses bpf()): each backend's reason
    const backends = /no backend on this host can run the object:\n((?:\s+- the \w+ backend: [^\n]*\n?)+)/.exec(text);
    if (backends) return { ...base, verdict: 'unsupported', reason: backends[1]!.trim().split('\n').map((l) => l.trim().replace(/^- /, '')).join('; ') };
    // (without the addon the prober infers instead of trying loads: the FFI cell asks `check`, which has them)
    const refused = (plan.runner === 'native' || plan.config === 'ffi') && !token.abandoned ? await refusal(wasmFile(app, plan.cross), plan.checkFlags) : undefined;
    if (refused) return { ...base, verdict: 'unsupported', reason: refused };
    return { ...base, verdict: 'fail', reason: firstError(e) };
  }
}

function arg(name: string): string | undefined {
  const i = process.argv.indexOf(name);
  return i > 0 ? process.argv[i + 1] : undefined;
}

function list<T extends string>(name: string, all: readonly T[], dflt: readonly T[]): T[] {
  const v = arg(name);
  if (!v) return [...dflt];
  const out = v.split(',').filter(Boolean) as T[];
  const bad = out.filter((x) => !all.includes(x));
  if (bad.length) throw new Error(`${name}: unknown ${bad.join(', ')} (one of ${all.join(', ')})`);
  return out;
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  if (process.argv.includes('--help')) {
    process.stdout.write('Usage: node dist/matrix/harness/cells.js [--platform ID] [--configs LIST] [--apps LIST] [--runners native,wasm] [--skip APP:CONFIG:RUNNER,...]\nPrints `BEGIN {json}` when a cell starts, one `CELL {json}` line per cell of the compatibility matrix this machine can decide, and `ALIVE` every 15 s.\n');
    process.exit(0);
  }
  const platform = arg('--platform') ?? process.env['WASM_BPF_PLATFORM'] ?? 'host';
  const configs = list('--configs', CONFIGS, ['default']);
  const apps = list('--apps', APPS, APPS);
  const runners = list<Runner>('--runners', ['native', 'wasm'], ['native', 'wasm']);
  process.stdout.write(`MATRIX platform=${platform} kernel=${os.release()} arch=${os.arch()} node=${process.version}\n`);
  const skip = new Set((arg('--skip') ?? '').split(',').filter(Boolean));
  // a line every 15 s while the harness's event loop runs: the matrix stops a guest whose harness is stuck
  setInterval(() => {
    process.stdout.write('ALIVE\n');
    heartbeat();
  }, 15_000).unref();
  await runCells({
    platform,
    configs,
    apps,
    runners,
    skip,
    begin: (c) => process.stdout.write(`BEGIN ${JSON.stringify(c)}\n`),
    emit: (c) => process.stdout.write(`CELL ${JSON.stringify(c)}\n`),
    alive: () => process.stdout.write('ALIVE\n'),
  });
  process.exit(0);
}
