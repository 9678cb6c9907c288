// Confinement of the guest's paths to its preopened directories (--dir), symlinks included.
//
// node:wasi (uvwasi) checks a guest path only lexically ("a/../.." is refused) and then hands the host
// path to the kernel, which follows every symlink on the way: a link already in the shared tree
// (`esc -> /etc`, `up -> ..`) led the guest out of it. Before node:wasi runs a path operation, this
// module computes the host path node:wasi will use (its normalization and its own final-symlink loop)
// and walks that path component by component from the preopen's real directory, the way the kernel
// will resolve it: every symlink met on the way (and the last component's, when the operation follows
// it) must lead to a place inside the preopen. A relative link is resolved from its own directory; an
// absolute link only when it names the preopen's directory (as given or its real path) or a path below
// it. Anything else fails with ENOTCAPABLE, as node:wasi's own lexical check does.
//
// The guest has one thread and cannot make a symlink that leaves its tree (path_symlink is checked the
// same way), so nothing the guest does can change a checked path before node:wasi uses it. Another host
// process changing the shared tree at the same moment is not covered (no openat2 in node:wasi).
import fs from 'node:fs';
import path from 'node:path';

const ERRNO_ELOOP = 32;
const ERRNO_ENOTCAPABLE = 76;
const MAX_LINKS = 40;
/** uvwasi follows at most this many final links itself */
const UVWASI_MAX_FOLLOWS = 32;

interface Root {
  /** the host directory as given to node:wasi */
  host: string;
  /** its real path (no symlinks) */
  real: string;
}

/** what node:wasi knows of a guest fd: the path guest paths are checked against, its host path */
interface FdPath {
  norm: string;
  host: string;
  root: Root;
}

/** byte-exact string <-> host path (guest paths are bytes; latin1 keeps every byte) */
const hostBuf = (p: string): Buffer => Buffer.from(p, 'latin1');

/** uvwasi's path normalization: '.' and empty components dropped, '..' applied lexically */
function normalize(p: string): string {
  const abs = p.startsWith('/');
  const out: string[] = [];
  for (const c of p.split('/')) {
    if (c === '' || c === '.') continue;
    if (c === '..') {
      if (out.length > 0 && out[out.length - 1] !== '..') out.pop();
      else if (!abs) out.push('..');
      continue;
    }
    out.push(c);
  }
  if (abs) return `/${out.join('/')}`;
  return out.length ? out.join('/') : '.';
}

function sandboxed(p: string, fdNorm: string): boolean {
  const up = (s: string): boolean => s === '..' || s.startsWith('../');
  if (fdNorm.startsWith('/')) return p.startsWith(fdNorm);
  if (fdNorm === '.') return !up(p);
  if (!p.startsWith(fdNorm)) return false;
  let rest = p.slice(fdNorm.length);
  if (rest.startsWith('/')) rest = rest.slice(1);
  return !up(rest);
}

function toHost(fd: FdPath, norm: string): string {
  const fake = fd.norm === '.' ? 0 : fd.norm.length;
  const stripped = norm.slice(fake);
  if (stripped.length > 1 || (stripped.length === 1 && stripped !== '/')) return `${fd.host}${stripped.startsWith('/') ? '' : '/'}${stripped}`;
  return fd.host;
}

function readlink(p: string): string {
  return (fs.readlinkSync(hostBuf(p), { encoding: 'buffer' }) as Buffer).toString('latin1');
}

export class PathConfinement {
  private readonly fds = new Map<number, FdPath>();

  /** preopens in node:wasi's order (fds 3, 4, ...) */
  constructor(preopens: Record<string, string>) {
    let fd = 3;
    for (const [guest, host] of Object.entries(preopens)) {
      let real = host;
      try {
        real = fs.realpathSync(host);
      } catch {
        // node:wasi fails on it too
      }
      this.fds.set(fd++, { norm: normalize(guest), host, root: { host, real } });
    }
  }

  /** a fd node:wasi opened (path_open) at a host path this module computed */
  opened(fd: number, dirFd: number, host: string): void {
    const root = this.fds.get(dirFd)?.root;
    if (root) this.fds.set(fd, { norm: host, host, root });
  }

  closed(fd: number): void {
    this.fds.delete(fd);
  }

  renumbered(from: number, to: number): void {
    const e = this.fds.get(from);
    this.fds.delete(from);
    if (e) this.fds.set(to, e);
    else this.fds.delete(to);
  }

  knows(fd: number): boolean {
    return this.fds.has(fd);
  }

  /**
   * The host path node:wasi will use for `guestPath` relative to `dirFd`, after checking that the
   * kernel's resolution of it stays in the preopen. A number is a WASI errno to return instead;
   * undefined: leave the call to node:wasi unchanged (it fails by itself: unknown fd, a readlink error).
   */
  check(dirFd: number, guestPath: string, lookupFollow: boolean, kernelFollowsLast: boolean): string | number | undefined {
    const fd = this.fds.get(dirFd);
    if (!fd) return undefined;
    const nul = guestPath.indexOf('\0');
    let input = nul >= 0 ? guestPath.slice(0, nul) : guestPath;
    let host: string;
    for (let follows = 0; ; ) {
      const norm = input.startsWith('/') ? normalize(input) : normalize(`${fd.norm}/${input}`);
      if (!sandboxed(norm, fd.norm)) return ERRNO_ENOTCAPABLE;
      host = toHost(fd, norm);
      if (!lookupFollow) break;
      // node:wasi's own loop over a final symlink (its target taken relative to the fd, then re-checked)
      let target: string;
      try {
        target = readlink(host);
      } catch (err) {
        const code = (err as NodeJS.ErrnoException).code;
        if (code === 'EINVAL' || code === 'ENOENT') break;
        return undefined;
      }
      if (++follows >= UVWASI_MAX_FOLLOWS) return ERRNO_ELOOP;
      input = target;
    }
    const e = this.beneath(fd.root, host, kernelFollowsLast || lookupFollow);
    return e === 0 ? host : e;
  }

  /** a guest's symlink at host path `at` pointing to `target`: only relative targets that stay inside */
  checkNewLink(at: string, dirFd: number, target: string): number {
    const root = this.fds.get(dirFd)?.root;
    if (!root) return ERRNO_ENOTCAPABLE;
    if (target.startsWith('/') || target.includes('\0')) return ERRNO_ENOTCAPABLE;
    const rel = this.relative(root, at);
    if (rel === undefined) return ERRNO_ENOTCAPABLE;
    const joined = normalize(path.posix.join(path.posix.dirname(`/${rel.join('/')}`), target).slice(1) || '.');
    return joined === '..' || joined.startsWith('../') ? ERRNO_ENOTCAPABLE : 0;
  }

  /** components of `host` below the root, or undefined when it is not below it */
  private relative(root: Root, host: string): string[] | undefined {
    let rest: string;
    if (host === root.host) rest = '';
    else if (host.startsWith(root.host.endsWith('/') ? root.host : `${root.host}/`)) rest = host.slice(root.host.length);
    else return undefined;
    return rest.split('/').filter((c) => c !== '' && c !== '.');
  }

  /** 0 when the kernel's resolution of `host` stays under root.real, else ENOTCAPABLE (or ELOOP) */
  private beneath(root: Root, host: string, followLast: boolean): number {
    if (root.real === '/') return 0;
    const parts = this.relative(root, host);
    if (parts === undefined) return ERRNO_ENOTCAPABLE;
    const cur: string[] = [];
    let links = 0;
    while (parts.length > 0) {
      const name = parts.shift()!;
      if (name === '' || name === '.') continue;
      if (name === '..') {
        if (cur.length === 0) return ERRNO_ENOTCAPABLE;
        cur.pop();
        continue;
      }
      const last = parts.length === 0;
      const here = `${root.real}/${[...cur, name].join('/')}`;
      let st: fs.Stats;
      try {
        st = fs.lstatSync(hostBuf(here));
      } catch {
        // missing (the operation creates it or fails) or unreadable: nothing further to follow
        return 0;
      }
      if (st.isSymbolicLink() && (!last || followLast)) {
        if (++links > MAX_LINKS) return ERRNO_ELOOP;
        let target: string;
        try {
          target = readlink(here);
        } catch {
          return 0;
        }
        if (target.startsWith('/')) {
          const inside = this.absoluteInside(root, target);
          if (inside === undefined) return ERRNO_ENOTCAPABLE;
          cur.length = 0;
          parts.unshift(...inside);
        } else {
          parts.unshift(...target.split('/'));
        }
        continue;
      }
      if (!last && !st.isDirectory()) return 0; // the kernel fails with ENOTDIR
      cur.push(name);
    }
    return 0;
  }

  /** an absolute link target's components below the root, when it starts with the root's directory */
  private absoluteInside(root: Root, target: string): string[] | undefined {
    const comps = (p: string): string[] => p.split('/').filter((c) => c !== '' && c !== '.');
    const t = comps(target);
    for (const base of [root.real, root.host]) {
      const b = comps(base);
      if (b.length <= t.length && b.every((c, i) => c === t[i])) return t.slice(b.length);
    }
    return undefined;
  }
}
