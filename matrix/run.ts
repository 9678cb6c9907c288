// `npm run matrix`: the compatibility matrix. Runs every example app, natively and under wasm-bpf, on
// the host (plus its forced fallbacks: no ring buffer, no vmlinux BTF) and in qemu guests booted from
// Debian's kernels (x86_64 and arm64, 6.1 and 5.10), everywhere also on the userspace backend, with an
// object built for the other arch and as an unprivileged user, each cell decided by the app's own
// events; writes matrix/results.json, RESULTS.md and results.svg; with --check, fails when a cell
// that passed in the previous results no longer does.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import readline from 'node:readline';
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { APPS, type App } from './harness/scenarios.js';
import { descendants } from './harness/running.js';
import { cellKey as key, type Cell, type Config } from './harness/cells.js';
import { regressions, renderMarkdown, renderSvg, withSummary, type PlatformRun, type Results } from './report.js';

const here = path.dirname(fileURLToPath(import.meta.url));
const ROOT = [path.resolve(here, '../..'), path.resolve(here, '..')].find((d) => fs.existsSync(path.join(d, 'bin', 'wasm-bpf.js')))!;
const MATRIX = path.join(ROOT, 'matrix');
const CELLS = path.join(ROOT, 'dist', 'matrix', 'harness', 'cells.js');

interface PlatformDef {
  id: string;
  label: string;
  configs: Config[];
  /** slower machines wait longer for the same events */
  timeScale: number;
  /** where it runs: here, in a qemu guest, or nowhere yet */
  kind: 'host' | 'guest' | 'absent';
  absentReason?: string;
}

const PLATFORMS: PlatformDef[] = [
  { id: 'host', label: `host ${os.release().split('-')[0]} ${os.arch() === 'x64' ? 'x86_64' : os.arch()}`, configs: ['default', 'no-ringbuf', 'no-btf', 'userspace', 'cross-arch', 'unprivileged', 'ffi'], timeScale: 1, kind: 'host' },
  { id: 'x86_64-6.1', label: 'x86_64 6.1 (qemu)', configs: ['default', 'cross-arch', 'userspace', 'unprivileged'], timeScale: 6, kind: 'guest' },
  { id: 'x86_64-5.10', label: 'x86_64 5.10 (qemu)', configs: ['default', 'cross-arch', 'userspace', 'unprivileged'], timeScale: 6, kind: 'guest' },
  { id: 'arm64-6.1', label: 'arm64 6.1 (qemu)', configs: ['default', 'cross-arch', 'userspace', 'unprivileged'], timeScale: 12, kind: 'guest' },
  { id: 'arm64-5.10', label: 'arm64 5.10 (qemu)', configs: ['default', 'cross-arch', 'userspace', 'unprivileged'], timeScale: 12, kind: 'guest' },
  { id: 'windows', label: 'Windows (eBPF for Windows)', configs: [], timeScale: 1, kind: 'absent', absentReason: 'no Windows host here; .github/workflows/windows.yml (windows-2022, the eBPF for Windows MSI, never run yet) would run `wasm-bpf check --backend windows` on every app: xdp and sockops translate (program, map and helper numbers), the tracing apps are refused with their reasons; loading through ebpfapi.dll waits for the windows backend' },
];

const USAGE = `Usage: npm run matrix -- [--platforms LIST] [--apps LIST] [--check] [--no-write] [--render] [--out DIR]

Runs each example app natively and under wasm-bpf on each platform and records pass / fail /
unsupported (with the reason) per cell in matrix/results.json, matrix/RESULTS.md and matrix/results.svg.

  --platforms LIST  comma-separated, default all: ${PLATFORMS.filter((p) => p.kind !== 'absent').map((p) => p.id).join(',')}
                    (cells of platforms not run keep their previous results)
  --apps LIST       default all: ${APPS.join(',')}
  --check           exit 1 when a cell that passed in the previous results.json does not pass now
  --no-write        print the summary, write nothing
  --render          only rewrite RESULTS.md and results.svg from results.json
  --out DIR         read the previous and write the new results in DIR (default matrix/)
  --budget SECONDS  stop booting guests when the time is spent (CI passes what is left of its limit);
                    each guest's qemu run is limited to what remains

Guests boot from Debian kernel packages downloaded once into $WASM_BPF_MATRIX_CACHE
(default /var/cache/wasm-bpf/matrix); see matrix/guests/README.md. Needs root.`;

function arg(name: string): string | undefined {
  const i = process.argv.indexOf(name);
  return i > 0 ? process.argv[i + 1] : undefined;
}

function log(msg: string): void {
  process.stderr.write(`matrix: ${msg}\n`);
}

type CellId = Pick<Cell, 'app' | 'config' | 'runner'>;

interface Collected {
  cells: Cell[];
  header?: Record<string, string>;
  status: number;
  stderr: string;
  /** the guest printed nothing for stallMs and was stopped; the cell it was in, if any */
  stalled?: { current?: CellId; seconds: number };
}

/**
 * runs cells.js (on the host, or through a guest's boot.sh) and collects its CELL lines as they
 * stream. A run that does not start the harness within startMs, or whose harness then prints nothing
 * (it says ALIVE every 15 s) for stallMs, is stopped: a guest's qemu, through the `timeout` that
 * wraps it, so boot.sh still reports the console's tail; on the host the harness itself.
 */
async function collect(cmd: string[], env: NodeJS.ProcessEnv, platform: string, startMs = Infinity, stallMs = Infinity): Promise<Collected> {
  const child = spawn(cmd[0]!, cmd.slice(1), { env, stdio: ['ignore', 'pipe', 'pipe'] });
  const cells: Cell[] = [];
  let header: Record<string, string> | undefined;
  let stderr = '';
  let current: CellId | undefined;
  let last = Date.now();
  let stalled: Collected['stalled'];
  let killer: NodeJS.Timeout | undefined;
  child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
  const rl = readline.createInterface({ input: child.stdout });
  rl.on('line', (line) => {
    if (line.startsWith('MATRIX ')) header = Object.fromEntries(line.slice(7).split(' ').map((kv) => kv.split('=') as [string, string]));
    if (/^(MATRIX|BEGIN|CELL|ALIVE)\b/.test(line)) last = Date.now();
    // the guest's own report of a stall (matrix/guests/init): where its processes hang
    if (line.startsWith('WBG_STALL')) log(`${platform}: ${line}`);
    try {
      if (line.startsWith('BEGIN ')) current = JSON.parse(line.slice(6)) as CellId;
      if (!line.startsWith('CELL ')) return;
      const c = JSON.parse(line.slice(5)) as Cell;
      cells.push(c);
      current = undefined;
      if (c.verdict !== 'n/a') log(`${platform}: ${c.app} ${c.runner}${c.config === 'default' ? '' : ` (${c.config})`}: ${c.verdict} (${(c.ms / 1000).toFixed(1)} s)${c.verdict === 'pass' ? '' : `: ${c.reason.split('\n')[0]}`}`);
    } catch {
      /* a line cut by kernel console output */
    }
  });
  const watchdog = Number.isFinite(stallMs) || Number.isFinite(startMs)
    ? setInterval(() => {
        if (stalled || Date.now() - last < (header ? stallMs : startMs)) return;
        stalled = { current, seconds: Math.round((Date.now() - last) / 1000) };
        log(`${platform}: ${header ? `no output for ${stalled.seconds} s${current ? ` during ${current.app} ${current.runner} (${current.config})` : ''}` : `the harness did not start within ${stalled.seconds} s`}: stopping it`);
        const under = descendants(child.pid!).slice(1);
        const comm = (pid: number): string => {
          try {
            return fs.readFileSync(`/proc/${pid}/comm`, 'utf8').trim();
          } catch {
            return '';
          }
        };
        const qemu = under.filter((pid) => comm(pid) === 'timeout' || comm(pid).startsWith('qemu-system'));
        const kill = (pids: number[], sig: NodeJS.Signals): void => {
          for (const pid of pids) {
            try {
              process.kill(pid, sig);
            } catch {
              /* gone */
            }
          }
        };
        // a guest: its qemu (boot.sh then reports the console's tail); the host: the harness and all under it
        kill(qemu.length ? qemu : [child.pid!, ...under], 'SIGTERM');
        // what ignores SIGTERM (a process blocked with a handler it cannot run) gets SIGKILL
        const all = [child.pid!, ...under];
        killer = setTimeout(() => kill([...all, ...descendants(child.pid!)], 'SIGKILL'), 10_000);
      }, 1000)
    : undefined;
  const status = await new Promise<number>((r) => {
    child.on('close', (code) => r(code ?? 1));
    // a stopped run is over when its process is, even if something it started still holds its output
    child.on('exit', (code) => void (stalled && setTimeout(() => r(code ?? 1), 2000)));
  });
  if (watchdog) clearInterval(watchdog);
  clearTimeout(killer);
  return { cells, header, status, stderr, stalled };
}

/** the cells a platform's run must produce: native and wasm as is, wasm in every other configuration */
function planned(p: PlatformDef, apps: App[]): Array<Pick<Cell, 'app' | 'platform' | 'config' | 'runner'>> {
  return apps.flatMap((app) => p.configs.flatMap((config) => (config === 'default' ? (['native', 'wasm'] as const) : (['wasm'] as const)).map((runner) => ({ app, platform: p.id, config, runner }))));
}

function failed(c: Pick<Cell, 'app' | 'platform' | 'config' | 'runner'>, reason: string): Cell {
  return { ...c, verdict: 'fail', reason, ms: 0 };
}

/** seconds without a line from a running harness (ALIVE comes every 15 s) after which it is stopped (WASM_BPF_MATRIX_STALL overrides) */
const stallAfter = (p: PlatformDef): number => Number(process.env['WASM_BPF_MATRIX_STALL'] ?? 0) || Math.max(60, 30 + 10 * p.timeScale);
/** seconds from starting boot.sh (prepared beforehand) to the harness's first line */
const startAfter = (p: PlatformDef): number => 120 + 20 * p.timeScale;
/** boots of one guest at most: the first, and reboots after stalls, while the one before made progress */
const MAX_BOOTS = 8;

/** fetches and builds what a guest needs (cached), so a boot's time is only the boot's */
async function prepare(p: PlatformDef, seconds: number): Promise<string | undefined> {
  const t0 = Date.now();
  const child = spawn('timeout', [String(seconds), 'bash', path.join(MATRIX, 'guests', 'boot.sh'), '--prepare', p.id], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stdout.setEncoding('utf8').on('data', (d: string) => (out += d));
  child.stderr.setEncoding('utf8').on('data', (d: string) => (out += d));
  const code = await new Promise<number>((r) => child.on('close', (c) => r(c ?? 1)));
  const s = Math.round((Date.now() - t0) / 1000);
  if (s > 5) log(`${p.id}: prepared in ${s} s`);
  if (code === 0) return undefined;
  return `preparing the guest failed (exit ${code}${code === 124 ? `, time limit ${seconds} s` : ''}): ${out.trim().split('\n').slice(-3).join(' ').slice(0, 400)}`;
}

async function runPlatform(p: PlatformDef, apps: App[], deadline: number, guestsAfter: number): Promise<{ run: PlatformRun; cells: Cell[] }> {
  const t0 = Date.now();
  const cellArgs = ['--platform', p.id, '--configs', p.configs.join(','), '--apps', apps.join(',')];
  const cells: Cell[] = [];
  const notes: string[] = [];
  let header: Record<string, string> | undefined;
  let r: Collected | undefined;
  if (p.kind === 'host') {
    r = await collect([process.execPath, CELLS, ...cellArgs], process.env, p.id, startAfter(p) * 1000, stallAfter(p) * 1000);
    cells.push(...r.cells);
    header = r.header;
    if (r.stalled?.current) cells.push(failed({ ...r.stalled.current, platform: p.id }, `the harness stopped responding during this cell (no output for ${r.stalled.seconds} s)`));
    if (r.stalled) notes.push(`stalled after ${r.cells.length} cells`);
  } else {
    const unprepared = await prepare(p, Math.max(300, Math.min(1800, Math.floor((deadline - Date.now()) / 1000) - 600 * (guestsAfter + 1))));
    if (unprepared) {
      log(`${p.id}: ${unprepared}`);
      const note = `did not start: ${unprepared}`;
      return { run: { id: p.id, label: p.label, status: 'failed', note, seconds: Math.round((Date.now() - t0) / 1000) }, cells: planned(p, apps).map((c) => failed(c, note)) };
    }
    /** cells a boot hung in, failed unless a later boot decides them */
    const stuck = new Map<string, Cell>();
    for (let boot = 1; boot <= MAX_BOOTS; boot++) {
      const decidedBefore = cells.length;
      const done = cells.map(key);
      const script = path.join(os.tmpdir(), `wasm-bpf-matrix-${p.id}-${process.pid}.sh`);
      const skip = done.length ? ` --skip ${done.join(',')}` : '';
      fs.writeFileSync(script, `cd "$WASM_BPF_ROOT" && exec "$WASM_BPF_NODE" dist/matrix/harness/cells.js ${cellArgs.join(' ')}${skip}\n`);
      const stall = stallAfter(p);
      const env: NodeJS.ProcessEnv = {
        ...process.env,
        WBG_ENV: [
          `WASM_BPF_TIME_SCALE=${p.timeScale}`,
          'WASM_BPF_HEARTBEAT=/tmp/wbg-heartbeat',
          `WBG_STALL=${Math.max(10, stall - 30)}`,
          ...(process.env['WASM_BPF_MATRIX_HANG'] ? [`WASM_BPF_MATRIX_HANG=${process.env['WASM_BPF_MATRIX_HANG']}`] : []),
        ].join('\n'),
      };
      // this guest's share of what is left: the guests after it keep 10 minutes each
      const left = Math.floor((deadline - Date.now()) / 1000) - 600 * guestsAfter;
      if (Number.isFinite(left)) env['TIMEOUT'] = String(Math.max(300, Math.min(Number(process.env['TIMEOUT'] ?? 2400), left)));
      log(`${p.id}: booting (qemu, software emulation)${boot > 1 ? `, boot ${boot} for the ${planned(p, apps).length - done.length} cells left` : ''}`);
      r = await collect(['bash', path.join(MATRIX, 'guests', 'boot.sh'), p.id, script], env, p.id, startAfter(p) * 1000, stall * 1000);
      fs.rmSync(script, { force: true });
      const lines = r.stderr.trim().split('\n').filter(Boolean);
      // the summary line when all went well, and the console's tail when not
      // (a stall's WBG_STALL report was logged as it came)
      for (const l of r.status === 0 ? lines.slice(-1) : lines.filter((x) => !x.includes('WBG_STALL')).slice(-30)) log(l);
      header ??= r.header;
      cells.push(...r.cells);
      for (const c of r.cells) stuck.delete(key(c));
      if (r.stalled?.current) {
        // the cell it hung in gets one more try in the next boot; hanging twice fails it
        const c = r.stalled.current;
        const reason = `the guest stopped responding during this cell (no output for ${r.stalled.seconds} s; boot ${boot}); see the WBG_STALL lines of the run's log`;
        if (stuck.has(key(c))) {
          stuck.delete(key(c));
          cells.push(failed({ ...c, platform: p.id }, `${reason}, as in the boot before`));
        } else {
          stuck.set(key(c), failed({ ...c, platform: p.id }, reason));
        }
      }
      if (r.stalled) notes.push(`boot ${boot} stalled after ${r.cells.length} cells${r.stalled.current ? ` in ${key(r.stalled.current)}` : ''}`);
      // a boot that did not start the harness gets one more try
      if (!r.stalled || (!r.header && boot > 1)) break;
      if (cells.length >= planned(p, apps).length && stuck.size === 0) break;
      if (boot > 1 && cells.length === decidedBefore) {
        notes.push('the reboot made no progress');
        break;
      }
      if (Date.now() > deadline - 180_000 * (guestsAfter + 1)) {
        notes.push('no time left to boot again');
        break;
      }
    }
    cells.push(...stuck.values());
  }
  const seconds = Math.round((Date.now() - t0) / 1000);
  const run: PlatformRun = { id: p.id, label: p.label, kernel: header?.['kernel'], arch: header?.['arch'] === 'x64' ? 'x86_64' : header?.['arch'], node: header?.['node'], status: 'ran', seconds };
  if (!header) {
    run.status = 'failed';
    run.note = `did not start (exit ${r!.status}): ${r!.stderr.trim().split('\n').slice(-3).join(' ').slice(0, 400)}`;
  } else if (r!.status !== 0 || notes.length) {
    notes.push(`last boot ended with exit ${r!.status}${r!.status === 124 ? ' (time limit)' : ''} after ${cells.length} cells`);
    run.note = notes.join('; ');
  }
  // every planned cell that produced no line is a failure of that platform's run
  const have = new Set(cells.map(key));
  const missing = planned(p, apps).filter((c) => !have.has(key(c)));
  cells.push(...missing.map((c) => failed(c, `no result: ${run.note ?? `the ${p.id} run ended early`}`)));
  return { run, cells };
}

async function main(): Promise<number> {
  if (process.argv.includes('--help') || process.argv.includes('-h')) {
    process.stdout.write(`${USAGE}\n`);
    return 0;
  }
  const out = arg('--out') ?? MATRIX;
  const jsonPath = path.join(out, 'results.json');
  const previous = fs.existsSync(jsonPath) ? (JSON.parse(fs.readFileSync(jsonPath, 'utf8')) as Results) : undefined;
  const write = (r: Results): void => {
    fs.mkdirSync(out, { recursive: true });
    fs.writeFileSync(jsonPath, `${JSON.stringify(r, null, 1)}\n`);
    fs.writeFileSync(path.join(out, 'RESULTS.md'), renderMarkdown(r));
    fs.writeFileSync(path.join(out, 'results.svg'), renderSvg(r));
    // README's "What works where" follows the committed results
    const readme = path.join(ROOT, 'README.md');
    if (out === MATRIX && fs.existsSync(readme)) fs.writeFileSync(readme, withSummary(fs.readFileSync(readme, 'utf8'), r));
  };
  if (process.argv.includes('--render')) {
    if (!previous) throw new Error(`${jsonPath}: no results to render; run the matrix first`);
    write(previous);
    return 0;
  }
  if (process.getuid?.() !== 0) {
    log('needs root (it loads eBPF programs and boots qemu guests)');
    return 2;
  }
  const known = PLATFORMS.filter((p) => p.kind !== 'absent').map((p) => p.id);
  const wanted = (arg('--platforms') ?? known.join(',')).split(',').filter(Boolean);
  const bad = wanted.filter((w) => !known.includes(w));
  if (bad.length) {
    log(`unknown platform ${bad.join(', ')} (one of ${known.join(', ')})`);
    return 2;
  }
  const apps = (arg('--apps') ?? APPS.join(',')).split(',').filter(Boolean) as App[];
  const badApps = apps.filter((a) => !(APPS as readonly string[]).includes(a));
  if (badApps.length) {
    log(`unknown app ${badApps.join(', ')} (one of ${APPS.join(', ')})`);
    return 2;
  }

  const t0 = Date.now();
  const budget = Number(arg('--budget') ?? 'Infinity');
  const deadline = t0 + budget * 1000;
  const runs: PlatformRun[] = [];
  let cells: Cell[] = [];
  for (const p of PLATFORMS) {
    if (p.kind === 'absent') {
      runs.push({ id: p.id, label: p.label, status: 'not run', note: p.absentReason });
      continue;
    }
    if (!wanted.includes(p.id)) {
      // not run this time: keep what the previous run found
      const prev = previous?.platforms.find((x) => x.id === p.id);
      if (prev) runs.push(prev);
      cells.push(...(previous?.cells.filter((c) => c.platform === p.id) ?? []));
      continue;
    }
    if (Date.now() > deadline - 120_000) {
      // not enough time left to boot a guest and run it: said, and every cell of it fails
      const note = 'not run: the --budget was spent';
      log(`${p.id}: ${note}`);
      runs.push({ id: p.id, label: p.label, status: 'failed', note });
      cells.push(...planned(p, apps).map((c) => failed(c, note)));
      continue;
    }
    const guestsAfter = PLATFORMS.slice(PLATFORMS.indexOf(p) + 1).filter((q) => q.kind === 'guest' && wanted.includes(q.id)).length;
    const r = await runPlatform(p, apps, deadline, guestsAfter);
    runs.push(r.run);
    // cells of apps not run this time keep their previous results
    cells.push(...(previous?.cells.filter((c) => c.platform === p.id && !apps.includes(c.app)) ?? []), ...r.cells);
  }
  cells = cells.sort((a, b) => APPS.indexOf(a.app) - APPS.indexOf(b.app));
  const results: Results = {
    generated: new Date().toISOString().replace(/\.\d+Z$/, 'Z'),
    host: { kernel: os.release(), arch: os.arch() === 'x64' ? 'x86_64' : os.arch(), node: process.version },
    platforms: runs,
    cells,
  };
  const count = (v: string): number => cells.filter((c) => c.verdict === v).length;
  log(`${cells.length} cells: ${count('pass')} pass, ${count('fail')} fail, ${count('unsupported')} unsupported, ${count('n/a')} n/a (${Math.round((Date.now() - t0) / 1000)} s)`);
  const lost = previous ? regressions(previous, results) : [];
  for (const l of lost) log(`REGRESSION ${l.was.app} on ${l.was.platform} (${l.was.config}, ${l.was.runner}): passed before, now ${l.now?.verdict ?? 'missing'}: ${l.now?.reason.split('\n')[0] ?? ''}`);
  if (!process.argv.includes('--no-write')) write(results);
  process.stdout.write(`matrix: ${count('pass')} passed, ${lost.length} regressed, ${count('fail')} failed, ${count('unsupported')} unsupported\n`);
  return process.argv.includes('--check') && lost.length > 0 ? 1 : 0;
}

main().then(
  (code) => process.exit(code),
  (e: unknown) => {
    log(e instanceof Error ? e.message : String(e));
    process.exit(2);
  },
);
