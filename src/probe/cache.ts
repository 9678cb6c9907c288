// The per-boot cache of the report. Key: kernel release + boot id (a reboot or another kernel invalidates it),
// plus uid and effective capabilities (answers depend on privileges), the mount namespace and the identity of
// the BTF file the answer read (a container sees other files), the report schema, this build of the prober
// (a new build may answer differently: the newest modification time of the prober's own folder, i.e. the
// prober's sources, its compiled files or the bundle's chunks), --full and --btf, and the native addon and
// agent files (an install that built them later, e.g. `npm rebuild`, probes again). One file per uid, mount
// namespace and --full: a namespace never overwrites another's answer.
// Location: $WASM_BPF_CACHE_DIR if set, else /var/cache/wasm-bpf when root, else $XDG_CACHE_HOME/wasm-bpf
// (~/.cache/wasm-bpf).
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { SCHEMA_VERSION, type Report } from './types.js';
import { readText, type SystemView } from './system.js';
import { parseStatus } from './procstatus.js';
import { addonFile, agentLibraryPath, installStatusFile } from '../../backends/linux/native.js';

export interface CacheKey {
  schemaVersion: number;
  /** this build of the prober: the newest modification time (ms) of the prober's folder (src/probe or dist/src/probe, also from the CLI's bundle) */
  build: number;
  release: string;
  bootId: string;
  uid: number | null;
  capEff: string | null;
  full: boolean;
  btfPath: string | null;
  /** the mount namespace (`mnt:[4026531841]`), null when unreadable */
  mountNs: string | null;
  /** dev:ino:size:mtime of the BTF file probed (--btf, else /sys/kernel/btf/vmlinux), 'absent' when missing */
  btfFile: string;
  /** the native parts the answers depend on (the addon, the uprobe agent, what the install script recorded of
   * their build): path and modification time, or none */
  native: string;
}

interface CacheFile {
  key: CacheKey;
  report: Report;
}

/** The key for this system now, or undefined when the boot id cannot be read (then nothing is cached). */
export function currentKey(sys: SystemView, opts: { full?: boolean; btfPath?: string }): CacheKey | undefined {
  const boot = readText(sys, '/proc/sys/kernel/random/boot_id');
  if ('error' in boot) return undefined;
  const st = readText(sys, '/proc/self/status');
  const status = 'text' in st ? parseStatus(st.text) : { uid: null, capEff: null };
  return {
    schemaVersion: SCHEMA_VERSION,
    build: thisBuild(),
    release: sys.uname().release,
    bootId: boot.text.trim(),
    uid: status.uid ?? sys.uid(),
    capEff: status.capEff === null ? null : status.capEff.toString(16),
    full: opts.full === true,
    btfPath: opts.btfPath ?? null,
    mountNs: mountNamespace(sys),
    btfFile: fileIdentity(sys, opts.btfPath ?? '/sys/kernel/btf/vmlinux'),
    native: nativeIdentity(),
  };
}

/** the mount namespace this process sees files through (only the live host's own; a fixture tree has none) */
function mountNamespace(sys: SystemView): string | null {
  if (sys.mode !== 'live') return null;
  try {
    return fs.readlinkSync('/proc/self/ns/mnt');
  } catch {
    return null;
  }
}

/** what tells one file from another that replaced it: device, inode, size and modification time */
function fileIdentity(sys: SystemView, file: string): string {
  try {
    const st = fs.statSync(sys.mode === 'live' ? file : path.join(sys.root, file));
    return `${st.dev}:${st.ino}:${st.size}:${Math.trunc(st.mtimeMs)}`;
  } catch {
    return 'absent';
  }
}

/** an install whose addon or agent was built (or rebuilt) after the report was cached probes again */
function nativeIdentity(): string {
  const id = (f: string | undefined): string => {
    try {
      return f ? `${f}@${Math.trunc(fs.statSync(f).mtimeMs)}` : 'none';
    } catch {
      return 'none';
    }
  };
  return `${id(addonFile())} ${id(agentLibraryPath())} ${id(installStatusFile())}`;
}

let build: number | undefined;
function thisBuild(): number {
  if (build === undefined) {
    try {
      // the prober's own folder, also when this code runs from the CLI's bundle (dist/src/cli/): the CLI and
      // the library API (dist/src/probe/) must agree on the key, or each probes again and overwrites the other
      const dir = path.join(path.dirname(fileURLToPath(import.meta.url)), '..', 'probe');
      let newest = 0;
      for (const f of fs.readdirSync(dir)) {
        if (!/\.(ts|js|mjs)$/.test(f)) continue;
        newest = Math.max(newest, fs.statSync(path.join(dir, f)).mtimeMs);
      }
      build = Math.trunc(newest);
    } catch {
      build = 0;
    }
  }
  return build;
}

export function defaultCacheDir(uid: number | null): string {
  const forced = process.env['WASM_BPF_CACHE_DIR'];
  if (forced && path.isAbsolute(forced)) return forced;
  if (uid === 0) return '/var/cache/wasm-bpf';
  const xdg = process.env['XDG_CACHE_HOME'];
  if (xdg && path.isAbsolute(xdg)) return path.join(xdg, 'wasm-bpf');
  return path.join(os.homedir(), '.cache', 'wasm-bpf');
}

export function cacheFile(dir: string, key: CacheKey): string {
  const ns = /\[(\d+)\]/.exec(key.mountNs ?? '')?.[1] ?? 'x';
  return path.join(dir, `probe-${key.uid ?? 'x'}-mnt${ns}${key.full ? '-full' : ''}.json`);
}

function sameKey(a: CacheKey, b: CacheKey): boolean {
  return (Object.keys(a) as Array<keyof CacheKey>).every((k) => a[k] === b[k]) && Object.keys(b).length === Object.keys(a).length;
}

/** The cached report if the file exists, parses and carries exactly this key; undefined otherwise. */
export function readCache(file: string, key: CacheKey): Report | undefined {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch {
    return undefined;
  }
  try {
    const parsed = JSON.parse(text) as Partial<CacheFile>;
    if (!parsed || typeof parsed !== 'object' || !parsed.key || !parsed.report) return undefined;
    if (!sameKey(parsed.key, key)) return undefined;
    if (parsed.report.schemaVersion !== SCHEMA_VERSION) return undefined;
    return parsed.report;
  } catch {
    return undefined; // torn or foreign file: probe again and overwrite
  }
}

/** Writes atomically (temp file + rename). Returns an error message instead of throwing. */
export function writeCache(file: string, key: CacheKey, report: Report): string | undefined {
  try {
    fs.mkdirSync(path.dirname(file), { recursive: true, mode: 0o755 });
    const tmp = `${file}.${process.pid}.tmp`;
    fs.writeFileSync(tmp, JSON.stringify({ key, report } satisfies CacheFile), { mode: 0o644 });
    fs.renameSync(tmp, file);
    return undefined;
  } catch (err) {
    return err instanceof Error ? err.message : String(err);
  }
}
