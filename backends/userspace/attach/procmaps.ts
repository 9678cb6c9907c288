// Where a resolved uprobe is in a running process: every executable mapping of the probed file in
// /proc/PID/maps, matched by device and inode (not by path), turned into run-time addresses; and a
// re-check after the process maps more (dlopen). The algorithm, meant to be mirrored by the C agent:
//
//   1. once, for the target: stat(binary) -> (dev, ino); the probe's file offset OFF (symbols.ts).
//   2. read /proc/PID/maps (the agent: /proc/self/maps); each line is
//        START-END PERMS PGOFF MAJOR:MINOR INODE [PATH]      (hex, hex, hex, hex:hex, decimal)
//   3. a line is a mapping of the target when MAJOR:MINOR and INODE equal (dev, ino) (the path is not
//      compared: a bind mount, a symlink or another mount namespace name the same inode differently, and
//      a file replaced on disk or deleted is another inode: those lines are "stale", never probed);
//   4. it holds the probe when PERMS has 'x' and PGOFF <= OFF < PGOFF + (END - START);
//      the address is START + (OFF - PGOFF) (PIE or not: the kernel's uprobe arithmetic, too);
//   5. after a dlopen (or whenever), read the maps again; addresses not seen before are new sites to
//      hook, seen ones that are gone were unmapped (dlclose). Key a site by its address.
import fs from 'node:fs';
import { BackendError } from '../../../src/errors.js';
import { ERRNO } from '../../../src/kernel/uapi.js';
import type { ResolvedUprobe } from './symbols.js';

export interface Mapping {
  start: bigint;
  end: bigint;
  perms: string;
  /** the file offset of `start` */
  pgoff: bigint;
  major: number;
  minor: number;
  ino: bigint;
  /** the path column ('' for anonymous memory); a deleted file ends in ' (deleted)' */
  path: string;
}

/** one line of /proc/PID/maps; undefined when it is not of that form */
export function parseMapsLine(line: string): Mapping | undefined {
  const m = /^([0-9a-f]+)-([0-9a-f]+)\s+(\S{4})\s+([0-9a-f]+)\s+([0-9a-f]+):([0-9a-f]+)\s+(\d+)\s*(.*)$/.exec(line);
  if (!m) return undefined;
  return {
    start: BigInt(`0x${m[1]}`),
    end: BigInt(`0x${m[2]}`),
    perms: m[3]!,
    pgoff: BigInt(`0x${m[4]}`),
    major: parseInt(m[5]!, 16),
    minor: parseInt(m[6]!, 16),
    ino: BigInt(m[7]!),
    path: m[8]!,
  };
}

export function parseMaps(text: string): Mapping[] {
  const out: Mapping[] = [];
  for (const line of text.split('\n')) {
    const m = parseMapsLine(line);
    if (m) out.push(m);
  }
  return out;
}

/** major and minor of a dev_t as stat returns it (glibc's gnu_dev_major / gnu_dev_minor) */
export function devParts(dev: bigint): { major: number; minor: number } {
  return {
    major: Number(((dev >> 8n) & 0xfffn) | ((dev >> 32n) & ~0xfffn)),
    minor: Number((dev & 0xffn) | ((dev >> 12n) & ~0xffn)),
  };
}

export interface ProcessSite {
  /** the run-time address of the probe */
  address: bigint;
  /** the executable mapping holding it */
  mapping: Mapping;
}

export interface ProcessSites {
  sites: ProcessSite[];
  /** mappings that carry the binary's path but are another file (replaced on disk, deleted): not probed */
  stale: Mapping[];
}

const DELETED = ' (deleted)';

/** the probe's addresses in a process whose maps are `maps` (steps 3-4 above) */
export function sitesIn(maps: readonly Mapping[], target: Pick<ResolvedUprobe, 'path' | 'dev' | 'ino' | 'fileOffset'>): ProcessSites {
  const { major, minor } = devParts(target.dev);
  const off = BigInt(target.fileOffset);
  const sites: ProcessSite[] = [];
  const stale: Mapping[] = [];
  for (const m of maps) {
    if (m.major === major && m.minor === minor && m.ino === target.ino) {
      if (m.perms[2] === 'x' && off >= m.pgoff && off < m.pgoff + (m.end - m.start)) sites.push({ address: m.start + (off - m.pgoff), mapping: m });
      continue;
    }
    const p = m.path.endsWith(DELETED) ? m.path.slice(0, -DELETED.length) : m.path;
    if (p === target.path && m.ino !== 0n) stale.push(m);
  }
  return { sites, stale };
}

/** /proc/PID/maps of a process ('self' for this one); BackendError ESRCH when it is gone */
export function readMaps(pid: number | 'self'): Mapping[] {
  try {
    return parseMaps(fs.readFileSync(`/proc/${pid}/maps`, 'utf8'));
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ESRCH') throw new BackendError(`no process ${pid}`, ERRNO.ESRCH, '', undefined, { code: 'NOT_FOUND', cause: err });
    throw new BackendError(`/proc/${pid}/maps: ${(err as Error).message}`, code === 'EACCES' ? ERRNO.EACCES : ERRNO.EIO, '', undefined, { cause: err });
  }
}

/** the probe's sites in process `pid` now */
export function processSites(pid: number | 'self', target: ResolvedUprobe): ProcessSites {
  return sitesIn(readMaps(pid), target);
}

/**
 * The probe's sites in one process, followed over time: `refresh()` (after a dlopen, or on any
 * suspicion) reads the maps again and says which sites are new and which are gone (step 5 above).
 */
export class ProcessTracker {
  private known = new Map<bigint, ProcessSite>();
  constructor(
    readonly pid: number | 'self',
    readonly target: ResolvedUprobe,
    private readonly read: (pid: number | 'self') => Mapping[] = readMaps,
  ) {}

  /** the sites known after the last refresh */
  sites(): ProcessSite[] {
    return [...this.known.values()];
  }

  refresh(): { added: ProcessSite[]; removed: ProcessSite[]; stale: Mapping[] } {
    const now = sitesIn(this.read(this.pid), this.target);
    const next = new Map(now.sites.map((s) => [s.address, s]));
    const added = now.sites.filter((s) => !this.known.has(s.address));
    const removed = [...this.known.values()].filter((s) => !next.has(s.address));
    this.known = next;
    return { added, removed, stale: now.stale };
  }
}
