// The one way the prober sees a system: files under a root (/proc, /sys, /boot, /etc), uname, the
// process's uid, and, on a live host only, the syscall probes. Tests substitute a fixture tree.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { NativeProbeLoad } from '../../backends/linux/native.js';

export interface Uname {
  /** 'Linux', 'Windows_NT', ... */
  sysname: string;
  /** uname -r */
  release: string;
  /** uname -v */
  version: string;
  /** uname -m */
  machine: string;
  /** process.platform of that host */
  platform: string;
}

/** What one BPF_PROG_LOAD (+ optional BPF_LINK_CREATE) attempt returned. */
export interface LoadResult {
  /** 0 or -errno of BPF_PROG_LOAD */
  err: number;
  /** 0 or -errno of BPF_LINK_CREATE (0 when not tried) */
  linkErr: number;
  /** verifier log (when logLevel > 0) */
  log: string;
}

/** a raw BPF_PROG_LOAD the prober tries (the addon's probeLoad argument) */
export type LoadRequest = NativeProbeLoad;

/** One perf event to try: type/config as perf_event_attr; name+offset for a kprobe/uprobe PMU target. */
export interface PerfSpec {
  type: number;
  config: number;
  name?: string;
  offset?: number;
  retprobe?: boolean;
  pid: number;
  cpu: number;
}

/** The live syscall probes (absent in fixture mode). Every call closes what it opens. */
export interface LiveProbes {
  load(req: LoadRequest): LoadResult;
  /** BPF_MAP_CREATE for that type: 0 or -errno */
  mapType(type: number): number;
  /**
   * Starts perf_event_open of each event in the background (they are closed afterwards, which is slow);
   * the returned function waits for the opens and gives 0 or -errno per event.
   */
  perfEvents(specs: PerfSpec[]): () => number[];
  /** lsm_list_modules(2): LSM ids, or -errno */
  lsmListModules(): number[] | number;
}

export interface SystemView {
  readonly mode: 'live' | 'fixture';
  /** '/' for the live host */
  readonly root: string;
  /** reads an absolute path of the viewed system; throws the fs error (ENOENT, EACCES, ...) */
  readFile(p: string): Buffer;
  /** reads up to `length` bytes at `offset` (for headers of large files) */
  readHead(p: string, length: number, offset?: number): Buffer;
  exists(p: string): boolean;
  readdir(p: string): string[];
  uname(): Uname;
  uid(): number | null;
  /** environment of the viewed system (cache locations) */
  env(name: string): string | undefined;
  readonly live?: LiveProbes;
  /** why `live` is absent on a live host (e.g. the native addon is not built) */
  readonly liveError?: string;
}

function readHeadAt(file: string, length: number, offset: number): Buffer {
  const fd = fs.openSync(file, 'r');
  try {
    const buf = Buffer.alloc(length);
    const n = fs.readSync(fd, buf, 0, length, offset);
    return buf.subarray(0, n);
  } finally {
    fs.closeSync(fd);
  }
}

/** This host. `live` is attached by the caller (see live.ts) so that this file never loads the addon. */
export function hostSystem(live?: LiveProbes): SystemView {
  // On Windows '/Windows/System32/x' means the system drive's folder.
  const map = (p: string): string =>
    process.platform === 'win32' ? path.join(process.env['SystemDrive'] ?? 'C:', ...p.split('/')) : p;
  return {
    mode: 'live',
    root: '/',
    readFile: (p) => fs.readFileSync(map(p)),
    readHead: (p, length, offset = 0) => readHeadAt(map(p), length, offset),
    exists: (p) => fs.existsSync(map(p)),
    readdir: (p) => fs.readdirSync(map(p)),
    uname: () => ({
      sysname: os.type(),
      release: os.release(),
      version: os.version(),
      machine: os.machine(),
      platform: process.platform,
    }),
    uid: () => (typeof process.getuid === 'function' ? process.getuid() : null),
    env: (name) => process.env[name],
    ...(live ? { live } : {}),
  };
}

function isUname(x: unknown): x is Uname {
  if (typeof x !== 'object' || x === null) return false;
  const o = x as Record<string, unknown>;
  return ['sysname', 'release', 'version', 'machine', 'platform'].every((k) => typeof o[k] === 'string');
}

/**
 * A system described by files under `root` (a fixture tree, or a mounted image): `root/uname.json`
 * gives uname ({sysname, release, version, machine, platform}); `root/uid` (optional) the uid; `root/env.json`
 * (optional) environment variables. Nothing is tried against a kernel.
 */
export function fixtureSystem(root: string): SystemView {
  const abs = path.resolve(root);
  const at = (p: string): string => {
    const full = path.join(abs, p);
    // keep every read inside the tree
    if (full !== abs && !full.startsWith(abs + path.sep)) throw Object.assign(new Error(`path escapes the fixture root: ${p}`), { code: 'EACCES' });
    return full;
  };
  let unameCache: Uname | undefined;
  let envCache: Record<string, string> | undefined;
  return {
    mode: 'fixture',
    root: abs,
    readFile: (p) => fs.readFileSync(at(p)),
    readHead: (p, length, offset = 0) => readHeadAt(at(p), length, offset),
    exists: (p) => fs.existsSync(at(p)),
    readdir: (p) => fs.readdirSync(at(p)),
    uname: () => {
      if (!unameCache) {
        let parsed: unknown;
        try {
          parsed = JSON.parse(fs.readFileSync(path.join(abs, 'uname.json'), 'utf8'));
        } catch (err) {
          throw new Error(`fixture ${abs}: cannot read uname.json`, { cause: err });
        }
        if (!isUname(parsed)) throw new Error(`fixture ${abs}: uname.json needs string fields sysname, release, version, machine, platform`);
        unameCache = parsed;
      }
      return unameCache;
    },
    uid: () => {
      try {
        const n = Number.parseInt(fs.readFileSync(path.join(abs, 'uid'), 'utf8').trim(), 10);
        return Number.isInteger(n) ? n : null;
      } catch {
        // no uid file: the owner of /proc/self/status if the tree has one
        return null;
      }
    },
    env: (name) => {
      if (!envCache) {
        try {
          const e: unknown = JSON.parse(fs.readFileSync(path.join(abs, 'env.json'), 'utf8'));
          envCache = typeof e === 'object' && e !== null ? Object.fromEntries(Object.entries(e).filter((kv): kv is [string, string] => typeof kv[1] === 'string')) : {};
        } catch {
          envCache = {};
        }
      }
      return envCache[name];
    },
  };
}

/** Reads a text file of the system, or undefined (with the error code) if it cannot be read. */
export function readText(sys: SystemView, p: string): { text: string } | { error: string } {
  try {
    return { text: sys.readFile(p).toString('utf8') };
  } catch (err) {
    return { error: errCode(err) };
  }
}

export function errCode(err: unknown): string {
  if (typeof err === 'object' && err !== null && 'code' in err && typeof (err as { code: unknown }).code === 'string') {
    return (err as { code: string }).code;
  }
  return err instanceof Error ? err.message : String(err);
}
