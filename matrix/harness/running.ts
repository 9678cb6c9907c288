// A running example app (Wasm under wasm-bpf, or its native twin): its output collected as it
// streams, waits for lines or for the JSON events of its machine format (`-j`), and Ctrl-C. Shared
// by the tap tests and the compatibility matrix, so both judge an app by the same events in the same way.
import fs from 'node:fs';
import { spawn, type ChildProcess } from 'node:child_process';

const running = new Set<ChildProcess>();
/** every Running not yet exited, so a cell's deadline can stop them all (abortAll) */
const live = new Set<Running>();
/** every wait is this many times longer (a qemu guest under software emulation is ~30x slower) */
const SCALE = Math.max(1, Number(process.env['WASM_BPF_TIME_SCALE'] ?? '1') || 1);
export const TIME_SCALE = SCALE;
// a failed check must not leave an app (and its kernel objects) behind
process.on('exit', () => {
  for (const c of running) c.kill('SIGKILL');
});

export interface Exit {
  code: number | null;
  signal: NodeJS.Signals | null;
}

/**
 * one line of an app's `-j` output: a JSON object whose "event" names its kind (see
 * matrix/apps/common/json.h); the fields are numbers, strings or arrays of numbers
 */
export interface AppEvent {
  readonly event: string;
  readonly [field: string]: string | number | number[] | undefined;
}

/** the JSON events among stdout's lines (other lines, such as a launched target's own, are skipped) */
export function parseEvents(stdout: string): AppEvent[] {
  const out: AppEvent[] = [];
  for (const l of stdout.split('\n')) {
    if (!l.startsWith('{') || !l.endsWith('}')) continue;
    try {
      const v = JSON.parse(l) as unknown;
      if (v && typeof v === 'object' && typeof (v as { event?: unknown }).event === 'string') out.push(v as AppEvent);
    } catch {
      /* a line cut by the kill, or not ours */
    }
  }
  return out;
}

export class Running {
  stdout = '';
  stderr = '';
  exited: Promise<Exit>;
  /** set by abortAll: every wait on this run throws at once */
  aborted?: string;
  constructor(readonly child: ChildProcess) {
    child.stdout?.setEncoding('utf8').on('data', (d: string) => (this.stdout += d));
    child.stderr?.setEncoding('utf8').on('data', (d: string) => (this.stderr += d));
    running.add(child);
    live.add(this);
    this.exited = new Promise((resolve) => {
      child.on('error', (e) => {
        this.stderr += `${e.message}\n`;
        running.delete(child);
        live.delete(this);
        resolve({ code: 127, signal: null });
      });
      child.on('close', (code, signal) => {
        running.delete(child);
        live.delete(this);
        resolve({ code, signal });
      });
    });
  }
  get done(): boolean {
    return this.child.exitCode !== null || this.child.signalCode !== null;
  }
  /** resolves with the first stdout line matching re; rejects on timeout or exit */
  async waitFor(re: RegExp, ms = 20_000): Promise<string> {
    const deadline = Date.now() + ms * SCALE;
    for (;;) {
      const line = this.stdout.split('\n').find((l) => re.test(l));
      if (line !== undefined) return line;
      if (this.aborted) throw new Error(`${this.aborted} (waiting for ${re})`);
      if (this.done) {
        throw new Error(`process exited (${this.child.exitCode ?? this.child.signalCode}) before ${re}\nstdout:\n${this.stdout}\nstderr:\n${this.stderr}`);
      }
      if (Date.now() > deadline) throw new Error(`timed out waiting for ${re}\nstdout:\n${this.stdout}\nstderr:\n${this.stderr}`);
      await sleep(20);
    }
  }
  lines(re: RegExp): string[] {
    return this.stdout.split('\n').filter((l) => re.test(l));
  }
  /** the `-j` events of stdout's complete lines up to parsedTo (parsed once each: a busy app prints many) */
  private parsed: AppEvent[] = [];
  private parsedTo = 0;
  /** the app's `-j` events so far that match */
  events(match: (e: AppEvent) => boolean = () => true): AppEvent[] {
    const end = this.stdout.lastIndexOf('\n') + 1;
    if (end > this.parsedTo) {
      this.parsed.push(...parseEvents(this.stdout.slice(this.parsedTo, end)));
      this.parsedTo = end;
    }
    return this.parsed.filter(match);
  }
  /** resolves with the first `-j` event that matches; rejects on timeout or exit */
  async waitEvent(match: (e: AppEvent) => boolean, what: string, ms = 20_000): Promise<AppEvent> {
    const deadline = Date.now() + ms * SCALE;
    for (;;) {
      const hit = this.events(match)[0];
      if (hit) return hit;
      if (this.aborted) throw new Error(`${this.aborted} (waiting for ${what})`);
      if (this.done) {
        throw new Error(`process exited (${this.child.exitCode ?? this.child.signalCode}) before ${what}\nstdout:\n${this.stdout}\nstderr:\n${this.stderr}`);
      }
      if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}\nstdout:\n${this.stdout}\nstderr:\n${this.stderr}`);
      await sleep(20);
    }
  }
  /** waits for the app's {"event":"attached"} line (it prints it once its programs are attached) */
  attached(app: string, ms = 60_000): Promise<AppEvent> {
    return this.waitEvent((e) => e.event === 'attached' && e['app'] === app, `${app} attached`, ms);
  }
  /** a signal (SIGINT: Ctrl-C), then wait for exit */
  async interrupt(signal: NodeJS.Signals = 'SIGINT'): Promise<Exit & { ms: number }> {
    const t0 = Date.now();
    if (!this.done) this.child.kill(signal);
    const r = await (this.aborted ? Promise.race([this.exited, sleep(2000).then(() => ({ code: null, signal: null }))]) : this.exited);
    return { ...r, ms: Date.now() - t0 };
  }
}

/** the processes still running (pids), for a report of where a stuck cell hangs */
export function livePids(): number[] {
  return [...live].map((r) => r.child.pid).filter((p): p is number => p !== undefined);
}

/** stops every run still going (SIGKILL) and makes each of their waits throw `reason` */
export function abortAll(reason: string): void {
  for (const r of live) {
    r.aborted = reason;
    r.child.kill('SIGKILL');
  }
}

/**
 * runs a short command to cause an event, without blocking the event loop (so a cell's deadline
 * still fires if it hangs): resolves with its pid and exit status; SIGKILL after ms (scaled)
 */
export function exec(file: string, args: string[], ms = 10_000): Promise<{ pid: number; status: number | null; stdout: string; stderr: string }> {
  const r = new Running(spawn(file, args, { stdio: ['ignore', 'pipe', 'pipe'] }));
  const timer = setTimeout(() => r.child.kill('SIGKILL'), ms * SCALE);
  return r.exited.then((e) => {
    clearTimeout(timer);
    return { pid: r.child.pid ?? 0, status: e.code, stdout: r.stdout, stderr: r.stderr };
  });
}

/** a process's state for a report: comm, state, wchan and the head of its kernel stack */
export function describePid(pid: number): string {
  const read = (f: string): string => {
    try {
      return fs.readFileSync(`/proc/${pid}/${f}`, 'utf8').trim();
    } catch {
      return '';
    }
  };
  const stat = read('stat');
  if (!stat) return `pid ${pid}: gone`;
  const comm = stat.slice(stat.indexOf('(') + 1, stat.lastIndexOf(')'));
  const state = stat.slice(stat.lastIndexOf(')') + 2).split(' ')[0];
  const stack = read('stack').split('\n').slice(0, 6).map((l) => l.replace(/^\[<[0-9a-f]+>\] /, '')).join(' < ');
  return `pid ${pid} (${comm}) state ${state} wchan ${read('wchan') || '?'}${stack ? ` stack ${stack}` : ''}`;
}

/** pid and every descendant of it (from /proc) */
export function descendants(pid: number): number[] {
  const parent = new Map<number, number>();
  for (const d of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    try {
      const st = fs.readFileSync(`/proc/${d}/stat`, 'utf8');
      parent.set(Number(d), Number(st.slice(st.lastIndexOf(')') + 2).split(' ')[1]));
    } catch {
      /* gone */
    }
  }
  const out = [pid];
  for (let i = 0; i < out.length; i++) for (const [c, p] of parent) if (p === out[i]) out.push(c);
  return out;
}

export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

/** runs fn (which causes events) repeatedly until the app printed a `-j` event that matches */
export async function untilEvent(run: Running, match: (e: AppEvent) => boolean, what: string, fn: () => void | Promise<void>, ms = 15_000): Promise<AppEvent> {
  const deadline = Date.now() + ms * SCALE;
  for (;;) {
    const hit = run.events(match)[0];
    if (hit) return hit;
    if (run.aborted) throw new Error(`${run.aborted} (waiting for ${what})`);
    if (Date.now() > deadline || run.done) {
      throw new Error(`no event: ${what}\nstdout:\n${run.stdout.slice(-3000)}\nstderr:\n${run.stderr.slice(-5000)}`);
    }
    await fn();
    await sleep(50);
  }
}

/** runs fn (which causes events) repeatedly until the app printed a line matching re */
export async function until(run: Running, re: RegExp, fn: () => void | Promise<void>, ms = 15_000): Promise<string> {
  const deadline = Date.now() + ms * SCALE;
  for (;;) {
    const hit = run.lines(re)[0];
    if (hit) return hit;
    if (run.aborted) throw new Error(`${run.aborted} (waiting for ${re})`);
    if (Date.now() > deadline || run.done) {
      throw new Error(`no line matching ${re}\nstdout:\n${run.stdout.slice(-3000)}\nstderr:\n${run.stderr.slice(-5000)}`);
    }
    await fn();
    await sleep(50);
  }
}
