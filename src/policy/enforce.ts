// Enforcing the policy: the load gate (an object's needs against the policy, before any backend sees
// it) and the attach checks every backend calls before it touches a target. A refusal is a
// PolicyDenied: EACCES, naming what is refused and the option that would allow it. Targets outside
// the policy are refused before anything is looked up, so a refusal never tells whether a host path exists.
import fs from 'node:fs';
import path from 'node:path';
import { BackendError } from '../errors.js';
import type { BpfObject } from '../object/loader.js';
import { objectNeeds, type ObjectNeeds } from './needs.js';
import { helperKey, isWithin, type Policy } from './policy.js';
import { ERRNO } from '../kernel/uapi.js';

const { EACCES, ENOENT, ENOTDIR } = ERRNO;

export class PolicyDenied extends BackendError {
  constructor(message: string, hint: string) {
    super(message, EACCES, '', hint, { code: 'POLICY' });
    this.name = 'PolicyDenied';
  }
}

/** the policy restricts what an object may hold (the load gate must parse the object) */
export function restrictsObjects(p: Policy): boolean {
  return p.programTypes !== null || p.helpers !== null || p.pin.mode === 'refuse';
}

/** every way `needs` breaks the policy, one line each with the option that would allow it */
export function violations(p: Policy, needs: ObjectNeeds): string[] {
  const out: string[] = [];
  const types = p.programTypes;
  const helpers = p.helpers && new Set(p.helpers);
  for (const prog of needs.programs) {
    const what = `program '${prog.name}' (${prog.section})`;
    if (types && !types.includes(prog.kind)) out.push(`${what} is of type ${prog.kind}, which the policy does not allow (--allow-prog-type ${prog.kind})`);
    if (helpers) {
      const denied = [...prog.helpers, ...prog.kfuncs].filter((h) => !helpers.has(helperKey(h)));
      if (denied.length) out.push(`${what} calls ${denied.join(', ')}, which the policy does not allow (--allow-helper NAME)`);
    }
  }
  if (p.pin.mode === 'refuse' && needs.pinnedMaps.length) {
    out.push(`map(s) ${needs.pinnedMaps.join(', ')} ask to be pinned, which the policy does not allow (--allow-pin DIR, or --pin private)`);
  }
  return out;
}

/** The load gate: refuses an object (already parsed and validated) the policy does not allow. */
export function enforceLoad(p: Policy, obj: BpfObject): void {
  if (!restrictsObjects(p)) return;
  const v = violations(p, objectNeeds(obj));
  if (v.length) throw new PolicyDenied(`the policy refuses the object:\n  - ${v.join('\n  - ')}`, 'change the policy (--policy FILE or the --allow-* options; see wasm-bpf run --help)');
}

export function allowInterface(p: Policy, name: string | undefined, what: string): void {
  if (p.interfaces === null) return;
  if (name === undefined) {
    throw new PolicyDenied(`${what}: attaching to every interface is not allowed by the policy (allowed: ${p.interfaces.join(', ') || 'none'})`, 'name an allowed interface as the attach target');
  }
  if (!p.interfaces.includes(name)) {
    throw new PolicyDenied(`${what}: interface '${name}' is not allowed by the policy (allowed: ${p.interfaces.join(', ') || 'none'})`, `allow it with --allow-ifname ${name}`);
  }
}

/** every cgroup2 mount point of this mount namespace */
export function cgroup2Mounts(): string[] {
  if (process.platform !== 'linux') return [];
  try {
    return fs
      .readFileSync('/proc/self/mounts', 'utf8')
      .split('\n')
      .map((l) => l.split(' '))
      .filter((f) => f[2] === 'cgroup2' && f[1])
      .map((f) => f[1]!.replace(/\\040/g, ' '));
  } catch {
    return [];
  }
}

/**
 * A path the guest named, resolved, when it lies inside one of `roots`; EACCES when it does not,
 * whether or not it exists; ENOENT only for a missing path inside the roots.
 */
function confine(target: string, roots: readonly string[], what: string, noun: string, plural: string, hint: string): string {
  if (!path.isAbsolute(target)) throw new PolicyDenied(`${what}: ${noun} '${target}' must be an absolute path`, hint);
  let real: string | undefined;
  try {
    real = fs.realpathSync(target);
  } catch {
    real = undefined;
  }
  const inside = (p: string): boolean => roots.some((r) => isWithin(p, r));
  if (real === undefined ? !inside(path.resolve(target)) : !inside(real)) {
    throw new PolicyDenied(`${what}: ${noun} ${target} is outside the allowed ${plural} (${roots.join(', ') || 'none'})`, hint);
  }
  if (real === undefined) throw new BackendError(`${what}: ${noun} ${target} does not exist`, ENOENT);
  return real;
}

/** the cgroup directory to attach to: inside an allowed one (default: any cgroup2 mount) */
export function allowCgroup(p: Policy, target: string, what: string): string {
  const roots = p.cgroups ?? cgroup2Mounts();
  const dir = confine(target, roots, what, 'cgroup path', 'cgroup directories', 'allow it with --allow-cgroup PATH');
  if (!fs.statSync(dir).isDirectory()) throw new BackendError(`${what}: cgroup path ${target} is not a directory`, ENOTDIR);
  return dir;
}

/**
 * The binary a uprobe may attach to, resolved (attach to the returned path: what was checked is what
 * is probed). With no restriction, the name is returned as given (libbpf resolves library names itself).
 */
export function allowUprobe(p: Policy, binary: string, what: string): string {
  if (p.uprobes === null) return binary;
  return confine(binary, p.uprobes, what, 'uprobe binary', 'uprobe binaries', `allow it with --allow-uprobe ${path.isAbsolute(binary) ? binary : '/ABSOLUTE/PATH'}`);
}
