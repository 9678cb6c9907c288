// BTFHub: vmlinux BTF for kernels that carry none of their own. When neither /sys/kernel/btf/vmlinux nor
// any of libbpf's on-disk paths holds usable BTF, the runtime looks in the cache
// (<cache dir>/btfhub/<ID>/<VERSION_ID>/<arch>/<release>.btf, the prober's btfhubPath), else fetches
// <base>/<id>/<version>/<arch>/<release>.btf.tar.xz from a btfhub-archive mirror (or reads it from a local
// archive tree), unpacks it (xz + tar), validates it (BTF magic, full parse), caches it atomically and
// hands its path to libbpf as btf_custom_path. See compat/btfhub/README.md.
import fs from 'node:fs';
import path from 'node:path';
import { spawn } from 'node:child_process';
import { isatty } from 'node:tty';
import { hostSystem, type SystemView } from '../../src/probe/system.js';
import { readDistro } from '../../src/probe/osrelease.js';
import { normalizeArch } from '../../src/probe/kernel.js';
import { defaultCacheDir } from '../../src/probe/cache.js';
import { BtfScanError, btfhubPath, elfBtfSection, libbpfDiskPaths, rawBtfHeader, SYSFS_VMLINUX } from '../../src/probe/btf.js';
import { parseBtf } from '../../src/object/btf.js';

const DEFAULT_BTFHUB_MIRROR = 'https://github.com/aquasecurity/btfhub-archive/raw/main';
export const ENV_MIRROR = 'WASM_BPF_BTFHUB_MIRROR';
export const ENV_ARCHIVE = 'WASM_BPF_BTFHUB_ARCHIVE';

export class BtfhubError extends Error {
  /** the signal that interrupted the fetch (its files removed), when one did */
  readonly signal: NodeJS.Signals | undefined;
  constructor(message: string, signal?: NodeJS.Signals) {
    super(message);
    this.name = 'BtfhubError';
    this.signal = signal;
  }
}

/** btfhub-archive's arch directory for a uname -m, or null (the archive holds x86_64 and arm64 only). */
export function hubArch(machine: string): 'x86_64' | 'arm64' | null {
  const a = normalizeArch(machine);
  return a === 'x86_64' || a === 'arm64' ? a : null;
}

/**
 * The archive's directory names for an os-release ID / VERSION_ID. btfhub-archive keeps the distro id as
 * os-release spells it but, for rebuild/point-release distros, only the major version:
 *   centos 7.9.2009 -> centos/7, rhel 8.6 -> rhel/8, ol 7.9 -> ol/7, rocky/almalinux 8.x -> 8,
 *   amzn 2 -> amzn/2, Amazon Linux 1 (2018.03) -> amzn/2018, debian 10.x -> debian/10;
 * ubuntu (20.04), fedora (34), sles (15.3) and opensuse-leap (15.3) keep the full VERSION_ID.
 */
export function hubDistro(id: string, versionId: string): { id: string; version: string } {
  const lid = id.toLowerCase();
  const major = versionId.split('.')[0] ?? versionId;
  switch (lid) {
    case 'centos':
    case 'rhel':
    case 'ol':
    case 'rocky':
    case 'almalinux':
    case 'debian':
    case 'amzn':
      return { id: lid, version: major };
    case 'opensuse':
      return { id: 'opensuse-leap', version: versionId };
    default:
      return { id: lid, version: versionId };
  }
}

export interface HubTarget {
  /** os-release ID and VERSION_ID as read */
  distroId: string;
  versionId: string;
  /** the archive's names */
  hubId: string;
  hubVersion: string;
  arch: string;
  release: string;
  /** `<id>/<version>/<arch>/<release>.btf.tar.xz` relative to a mirror or archive */
  relPath: string;
  /** the cached, unpacked file (the prober's btfhubPath) */
  cachePath: string;
}

/** What to fetch for a system and where it is cached; throws BtfhubError when the host cannot be named. */
export function hubTarget(sys: SystemView = hostSystem(), cacheDir?: string): HubTarget {
  const u = sys.uname();
  const distro = readDistro(sys, u.platform);
  if (!distro.id || !distro.versionId) {
    throw new BtfhubError(`cannot name this system for BTFHub: os-release gives no ${distro.id ? 'VERSION_ID' : 'ID'} (${distro.reason})`);
  }
  const arch = hubArch(u.machine);
  if (!arch) throw new BtfhubError(`BTFHub has no BTF for architecture ${u.machine} (only x86_64 and arm64)`);
  const hub = hubDistro(distro.id, distro.versionId);
  const dir = cacheDir ?? defaultCacheDir(sys.uid());
  const cachePath = btfhubPath(dir, distro.id, distro.versionId, arch, u.release)!;
  return {
    distroId: distro.id,
    versionId: distro.versionId,
    hubId: hub.id,
    hubVersion: hub.version,
    arch,
    release: u.release,
    relPath: `${hub.id}/${hub.version}/${arch}/${u.release}.btf.tar.xz`,
    cachePath,
  };
}

/** Why a BTF file is not usable, or undefined when it is (magic + header checks; `full` also parses every type). */
function checkBtfBytes(bytes: Uint8Array, full: boolean): string | undefined {
  try {
    rawBtfHeader(bytes);
    if (full) parseBtf(bytes);
    return undefined;
  } catch (err) {
    return err instanceof Error ? err.message : String(err);
  }
}

export interface KernelBtfFound {
  source: 'sysfs' | 'disk';
  path: string;
}

/**
 * The kernel's own vmlinux BTF as libbpf would find it (sysfs, then its on-disk paths), or undefined.
 * Cheap: reads 4 bytes of each candidate (an ELF's .BTF section header is checked).
 */
export function findKernelBtf(sys: SystemView = hostSystem()): KernelBtfFound | undefined {
  const release = sys.uname().release;
  const candidates: Array<[KernelBtfFound['source'], string]> = [['sysfs', SYSFS_VMLINUX], ...libbpfDiskPaths(release).map((p): ['disk', string] => ['disk', p])];
  for (const [source, p] of candidates) {
    let head: Buffer;
    try {
      head = sys.readHead(p, 4);
    } catch {
      continue;
    }
    if (head.length < 4) continue;
    if (head.readUInt32BE(0) === 0x7f454c46) {
      try {
        if (elfBtfSection(sys, p)) return { source, path: p };
      } catch (err) {
        if (!(err instanceof BtfScanError)) continue;
      }
      continue;
    }
    if (head.readUInt16LE(0) === 0xeb9f || head.readUInt16BE(0) === 0xeb9f) return { source, path: p };
  }
  return undefined;
}

/** The cached BTFHub file if present and valid (header check only: it was fully parsed before it was cached). */
export function cachedBtf(target: HubTarget): string | undefined {
  try {
    const fd = fs.openSync(target.cachePath, 'r');
    try {
      const st = fs.fstatSync(fd);
      const head = Buffer.alloc(Math.min(st.size, 24));
      fs.readSync(fd, head, 0, head.length, 0);
      if (head.length < 24 || (head.readUInt16LE(0) !== 0xeb9f && head.readUInt16BE(0) !== 0xeb9f)) return undefined;
      return target.cachePath;
    } finally {
      fs.closeSync(fd);
    }
  } catch {
    return undefined;
  }
}

export interface FetchOptions {
  /** base URL of a btfhub-archive mirror (default DEFAULT_BTFHUB_MIRROR) */
  mirror?: string | undefined;
  /** a local btfhub-archive tree (air-gapped): read <dir>/<relPath> instead of downloading */
  archive?: string | undefined;
  /** progress output (a TTY): called with a line to redraw in place; '' at the end */
  progress?: ((line: string) => void) | undefined;
  /** download timeout in ms (no data for that long fails the fetch) */
  timeoutMs?: number;
  /** aborts the download */
  abort?: AbortSignal;
  /**
   * SIGINT, SIGTERM and SIGHUP abort the fetch (the error carries the signal) while it runs (default true);
   * false leaves the process's signals alone (an embedder's own), `abort` being the only way to stop it
   */
  signals?: boolean;
}

/** mirror from the option, else $WASM_BPF_BTFHUB_MIRROR, else the public archive */
export function mirrorUrl(opt?: string): string {
  const m = opt ?? process.env[ENV_MIRROR] ?? DEFAULT_BTFHUB_MIRROR;
  return m.replace(/\/+$/, '');
}

function describeNetError(err: unknown): string {
  const e = err as NodeJS.ErrnoException & { errors?: unknown[] };
  if (e && Array.isArray(e.errors) && e.errors.length) return e.errors.map(describeNetError).join('; ');
  if (e && e.code) return `${e.code}${e.message && !e.message.includes(e.code) ? ` (${e.message})` : e.message ? `: ${e.message.replace(/^.*?: /, '')}` : ''}`;
  return e instanceof Error ? e.message : String(err);
}

/** a compressed vmlinux BTF is 1-5 MB; anything this large is not one */
const MAX_DOWNLOAD = 128 << 20;

/** Downloads `url` into `file` (following redirects). Rejects with BtfhubError naming the URL. */
async function download(url: string, file: string, opts: FetchOptions = {}, redirects = 0): Promise<void> {
  const u = new URL(url);
  if (u.protocol !== 'http:' && u.protocol !== 'https:') throw new BtfhubError(`${url}: only http and https mirrors are supported (use --btfhub-archive DIR for a local tree)`);
  const mod = u.protocol === 'https:' ? await import('node:https') : await import('node:http');
  const timeout = opts.timeoutMs ?? 30_000;
  await new Promise<void>((resolve, reject) => {
    const fail = (msg: string): void => reject(new BtfhubError(msg));
    const req = mod.get(u, { headers: { 'user-agent': 'wasm-bpf' }, timeout }, (res) => {
      const status = res.statusCode ?? 0;
      if (status >= 300 && status < 400 && res.headers.location) {
        res.resume();
        if (redirects >= 5) return fail(`${url}: too many redirects`);
        const next = new URL(res.headers.location, u).toString();
        download(next, file, opts, redirects + 1).then(resolve, reject);
        return;
      }
      if (status !== 200) {
        res.resume();
        return fail(`${url}: HTTP ${status}${res.statusMessage ? ` ${res.statusMessage}` : ''}${status === 404 ? ' (BTFHub has no BTF for this distro/kernel)' : ''}`);
      }
      const total = Number(res.headers['content-length'] ?? 0);
      let got = 0;
      let lastDraw = 0;
      const out = fs.createWriteStream(file, { mode: 0o644 });
      const draw = (force: boolean): void => {
        if (!opts.progress) return;
        const now = Date.now();
        if (!force && now - lastDraw < 100) return;
        lastDraw = now;
        const mb = (n: number): string => (n / 1048576).toFixed(1);
        if (total > 0) {
          const frac = Math.min(1, got / total);
          const width = 30;
          const fill = Math.round(frac * width);
          opts.progress(`btfhub: [${'#'.repeat(fill)}${'.'.repeat(width - fill)}] ${String(Math.round(frac * 100)).padStart(3)}% ${mb(got)}/${mb(total)} MB`);
        } else opts.progress(`btfhub: ${mb(got)} MB`);
      };
      res.on('data', (chunk: Buffer) => {
        got += chunk.length;
        if (got > MAX_DOWNLOAD) {
          res.destroy();
          out.destroy();
          fail(`${url}: larger than ${MAX_DOWNLOAD >> 20} MB (a BTFHub archive is a few MB)`);
          return;
        }
        draw(false);
      });
      res.on('error', (err) => {
        out.destroy();
        fail(`${url}: ${describeNetError(err)}`);
      });
      res.on('aborted', () => fail(`${url}: the connection closed after ${got} bytes`));
      out.on('error', (err) => fail(`writing ${file}: ${describeNetError(err)}`));
      out.on('finish', () => {
        draw(true);
        opts.progress?.('');
        if (total > 0 && got !== total) return fail(`${url}: truncated (${got} of ${total} bytes)`);
        resolve();
      });
      res.pipe(out);
    });
    req.on('timeout', () => req.destroy(new Error(`no answer within ${timeout / 1000} s`)));
    if (opts.abort) {
      if (opts.abort.aborted) req.destroy(new Error('interrupted'));
      else opts.abort.addEventListener('abort', () => req.destroy(new Error('interrupted')), { once: true });
    }
    req.on('error', (err) => fail(`${url}: ${describeNetError(err)}`));
  });
}

function run(cmd: string, args: string[]): Promise<{ code: number | null; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(cmd, args, { stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    child.on('error', (err) => resolve({ code: -1, stderr: describeNetError(err) }));
    child.on('close', (code) => resolve({ code, stderr }));
  });
}

/**
 * Unpacks a .btf.tar.xz into `dir` with the system's tar + xz and returns the member `<release>.btf`.
 * Throws BtfhubError ('cannot unpack ...') for anything else.
 */
async function unpack(archive: string, dir: string, release: string, label = archive): Promise<string> {
  const r = await run('tar', ['-xJf', archive, '-C', dir, '--no-same-owner', '--no-same-permissions']);
  if (r.code !== 0) {
    throw new BtfhubError(`cannot unpack ${label}: ${r.code === -1 ? `tar: ${r.stderr} (install tar and xz-utils)` : r.stderr.trim().split('\n').slice(0, 3).join('; ') || `tar exited ${r.code}`}`);
  }
  const want = `${release}.btf`;
  const found: string[] = [];
  const walk = (d: string, depth: number): void => {
    for (const e of fs.readdirSync(d, { withFileTypes: true })) {
      const p = path.join(d, e.name);
      if (e.isDirectory() && depth < 4) walk(p, depth + 1);
      else if (e.isFile()) found.push(p);
    }
  };
  walk(dir, 0);
  const hit = found.find((f) => path.basename(f) === want);
  if (!hit) {
    throw new BtfhubError(`cannot unpack ${label}: no ${want} inside (members: ${found.map((f) => path.relative(dir, f)).join(', ') || 'none'})`);
  }
  return hit;
}

export interface FetchResult {
  path: string;
  /** the URL or archive file it came from */
  from: string;
  bytes: number;
}

/**
 * Fetches (or reads from a local archive), unpacks, validates and caches the BTF of `target`. Nothing is
 * cached unless the whole file parses as BTF; the cache file appears atomically (temp file + rename).
 */
export async function fetchBtf(target: HubTarget, opts: FetchOptions = {}): Promise<FetchResult> {
  const archiveDir = opts.archive ?? (opts.mirror === undefined ? process.env[ENV_ARCHIVE] : undefined);
  const dir = path.dirname(target.cachePath);
  let created: string | undefined;
  try {
    created = fs.mkdirSync(dir, { recursive: true, mode: 0o755 });
  } catch (err) {
    throw new BtfhubError(`cannot create the BTF cache ${dir}: ${describeNetError(err)}`);
  }
  sweepStale(dir);
  const work = fs.mkdtempSync(path.join(dir, `.fetch-${target.release}-${process.pid}-`));
  let done = false;
  // nothing of a fetch outlives it: not its work directory, nor the cache directories it created
  const undo = (): void => {
    fs.rmSync(work, { recursive: true, force: true });
    if (!done) removeCreated(dir, created);
  };
  // a signal aborts the download; the fetch then rejects with a BtfhubError carrying it (the caller ends as
  // the signal says: `btf fetch` re-raises it, a run stops through its own handler)
  const aborter = new AbortController();
  let interrupted: NodeJS.Signals | undefined;
  const onSignal = (sig: NodeJS.Signals): void => {
    interrupted ??= sig;
    aborter.abort();
  };
  const hook = opts.signals !== false;
  if (hook) process.on('SIGINT', onSignal).on('SIGTERM', onSignal).on('SIGHUP', onSignal);
  if (opts.abort?.aborted) aborter.abort();
  else opts.abort?.addEventListener('abort', () => aborter.abort(), { once: true });
  const fetchOpts: FetchOptions = { ...opts, abort: aborter.signal };
  try {
    let from: string;
    let tarball: string;
    if (archiveDir) {
      from = path.join(path.resolve(archiveDir), ...target.relPath.split('/'));
      if (!fs.existsSync(from)) {
        throw new BtfhubError(`${from}: not in the BTFHub archive (no BTF for ${target.hubId} ${target.hubVersion} ${target.arch} ${target.release})`);
      }
      tarball = from;
    } else {
      from = `${mirrorUrl(opts.mirror)}/${target.relPath}`;
      tarball = path.join(work, path.basename(target.relPath));
      await download(from, tarball, fetchOpts).catch((err: unknown) => {
        throw interrupted ? new BtfhubError(`fetching ${from}: interrupted by ${interrupted}; nothing was kept`, interrupted) : err;
      });
    }
    if (interrupted) throw new BtfhubError(`fetching ${from}: interrupted by ${interrupted}; nothing was kept`, interrupted);
    const out = path.join(work, 'out');
    fs.mkdirSync(out);
    const member = await unpack(tarball, out, target.release, from);
    const bytes = fs.readFileSync(member);
    const bad = checkBtfBytes(bytes, true);
    if (bad !== undefined) throw new BtfhubError(`${from}: ${path.basename(member)} is not BTF (${bad})`);
    const tmp = path.join(dir, `.${path.basename(target.cachePath)}.${process.pid}.tmp`);
    fs.writeFileSync(tmp, bytes, { mode: 0o644 });
    fs.renameSync(tmp, target.cachePath);
    done = true;
    return { path: target.cachePath, from, bytes: bytes.length };
  } finally {
    if (hook) process.removeListener('SIGINT', onSignal).removeListener('SIGTERM', onSignal).removeListener('SIGHUP', onSignal);
    undo();
  }
}

/** the directories from `created` (the first one mkdir made) down to `dir`, deepest first, while empty */
function removeCreated(dir: string, created: string | undefined): void {
  if (!created) return;
  for (let d = dir; ; d = path.dirname(d)) {
    try {
      fs.rmdirSync(d); // only when empty: another fetch may have cached a file there meanwhile
    } catch {
      return;
    }
    if (d === created || path.dirname(d) === d) return;
  }
}

/** work directories and temporary files of fetches whose process is gone (killed with SIGKILL, a power cut) */
function sweepStale(dir: string): void {
  let names: string[];
  try {
    names = fs.readdirSync(dir);
  } catch {
    return;
  }
  for (const name of names) {
    const m = /^\.fetch-.*-(\d+)-[^-]+$/.exec(name) ?? /^\..*\.(\d+)\.tmp$/.exec(name);
    if (!m || alive(Number(m[1]))) continue;
    fs.rmSync(path.join(dir, name), { recursive: true, force: true });
  }
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

export interface ResolveOptions extends FetchOptions {
  cacheDir?: string;
  sys?: SystemView;
  /** also fetch when nothing is cached (default true) */
  fetch?: boolean;
}

export type Resolved =
  | { source: 'kernel'; path: string; kernel: KernelBtfFound }
  | { source: 'cache'; path: string; target: HubTarget }
  | { source: 'fetched'; path: string; target: HubTarget; from: string };

/**
 * Where libbpf's vmlinux BTF comes from on this host: the kernel's own (nothing to do), the BTFHub cache,
 * or a fresh fetch. Throws BtfhubError saying what was tried.
 */
export async function resolveBtf(opts: ResolveOptions = {}): Promise<Resolved> {
  const sys = opts.sys ?? hostSystem();
  const kernel = findKernelBtf(sys);
  if (kernel) return { source: 'kernel', path: kernel.path, kernel };
  const target = hubTarget(sys, opts.cacheDir);
  const cached = cachedBtf(target);
  if (cached) return { source: 'cache', path: cached, target };
  if (opts.fetch === false) throw new BtfhubError(`no vmlinux BTF (not in ${SYSFS_VMLINUX}, libbpf's paths or the cache ${target.cachePath})`);
  try {
    const r = await fetchBtf(target, opts);
    return { source: 'fetched', path: r.path, target, from: r.from };
  } catch (err) {
    const msg = err instanceof Error ? err.message : String(err);
    throw new BtfhubError(
      `this kernel has no vmlinux BTF (not in ${SYSFS_VMLINUX} nor libbpf's paths, not cached at ${target.cachePath}) and fetching it from BTFHub failed: ${msg}`,
      err instanceof BtfhubError ? err.signal : undefined,
    );
  }
}

/** A progress callback for stderr when it is a terminal, else undefined. */
export function ttyProgress(fd = 2): ((line: string) => void) | undefined {
  if (!isatty(fd)) return undefined;
  return (line: string) => {
    fs.writeSync(fd, line ? `\r\x1b[K${line}` : '\r\x1b[K');
  };
}

/** Removes the whole BTFHub cache; returns the directory removed. */
export function clearCache(cacheDir?: string): string {
  const dir = path.join(cacheDir ?? defaultCacheDir(hostSystem().uid()), 'btfhub');
  fs.rmSync(dir, { recursive: true, force: true });
  return dir;
}
