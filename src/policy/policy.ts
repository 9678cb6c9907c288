// The run's policy: what a module may load and where it may attach. Plain data, read from the command
// line and a policy file, handed down as an argument to the code that enforces it (src/policy/enforce.ts).
//
// Each list is either `null` (anything) or the names it allows. The default policy is the runtime's
// behaviour before policies existed: every program type and helper, any interface, any binary for uprobes,
// any cgroup on a cgroup2 mount; pin requests served by private maps (nothing pinned, nothing reused).
import fs from 'node:fs';
import path from 'node:path';
import { WasmBpfError } from '../errors.js';

export type PinRule =
  /** maps that ask to be pinned get private maps: nothing is pinned, no pinned map is reused */
  | { mode: 'private' }
  /** objects whose maps ask to be pinned are refused */
  | { mode: 'refuse' }
  /** pins are honoured below `root` (a directory on bpffs), as libbpf's pin_root_path */
  | { mode: 'allow'; root: string };

export interface Policy {
  /** 'allow': lists not given allow anything; 'deny': lists not given allow nothing */
  readonly base: 'allow' | 'deny';
  /** cgroup v2 directories (absolute, resolved) that cgroup and sockops programs may attach to, with their children */
  readonly cgroups: readonly string[] | null;
  /** network interfaces XDP programs and socket filters may attach to */
  readonly interfaces: readonly string[] | null;
  /** binaries (or directories of binaries; absolute, resolved) uprobes may attach to */
  readonly uprobes: readonly string[] | null;
  /** program kinds an object may hold: the kernel's program type names, with 'uprobe' for kprobe-type programs on u(ret)probe/usdt sections */
  readonly programTypes: readonly string[] | null;
  /** helpers (bpf_ prefix optional) and kfuncs programs may call */
  readonly helpers: readonly string[] | null;
  readonly pin: PinRule;
}

export const DEFAULT_POLICY: Policy = Object.freeze<Policy>({
  base: 'allow',
  cgroups: null,
  interfaces: null,
  uprobes: null,
  programTypes: null,
  helpers: null,
  pin: { mode: 'private' },
});

export class PolicyError extends WasmBpfError {
  constructor(message: string) {
    super('USAGE', message);
    this.name = 'PolicyError';
  }
}

/** what the command line or a file says; unset fields fall back to the base */
export interface PolicySpec {
  base?: 'allow' | 'deny';
  cgroups?: string[];
  interfaces?: string[];
  uprobes?: string[];
  programTypes?: string[];
  helpers?: string[];
  pin?: 'private' | 'refuse' | string;
}

const LIST_KEYS = ['cgroups', 'interfaces', 'uprobes', 'programTypes', 'helpers'] as const;
type ListKey = (typeof LIST_KEYS)[number];

/** a policy file: JSON with the fields of PolicySpec ("default" for base) */
export function readPolicyFile(file: string): PolicySpec {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (err) {
    throw new PolicyError(`cannot read the policy file ${file}: ${(err as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such file' : (err as Error).message}`);
  }
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (err) {
    throw new PolicyError(`the policy file ${file} is not JSON: ${(err as Error).message}`);
  }
  return parsePolicySpec(raw, file);
}

export function parsePolicySpec(raw: unknown, where: string): PolicySpec {
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) throw new PolicyError(`${where}: a policy is a JSON object`);
  const spec: PolicySpec = {};
  for (const [key, value] of Object.entries(raw)) {
    if (key === 'default') {
      if (value !== 'allow' && value !== 'deny') throw new PolicyError(`${where}: "default" must be "allow" or "deny"`);
      spec.base = value;
    } else if ((LIST_KEYS as readonly string[]).includes(key)) {
      if (!Array.isArray(value) || !value.every((v): v is string => typeof v === 'string' && v.length > 0)) {
        throw new PolicyError(`${where}: "${key}" must be a list of non-empty strings`);
      }
      spec[key as ListKey] = value;
    } else if (key === 'pin') {
      if (typeof value !== 'string' || value === '') throw new PolicyError(`${where}: "pin" must be "private", "refuse" or a bpffs directory`);
      spec.pin = value;
    } else {
      throw new PolicyError(`${where}: unknown key "${key}" (known: default, ${LIST_KEYS.join(', ')}, pin)`);
    }
  }
  return spec;
}

/** `over` adds to `under`: lists are joined, a base or pin rule given by `over` wins */
export function mergeSpecs(under: PolicySpec, over: PolicySpec): PolicySpec {
  const out: PolicySpec = { ...under };
  if (over.base) out.base = over.base;
  if (over.pin) out.pin = over.pin;
  for (const k of LIST_KEYS) {
    const o = over[k];
    if (o) out[k] = [...(under[k] ?? []), ...o];
  }
  return out;
}

/**
 * The policy a spec describes, with paths checked and resolved now (a cgroup directory or a binary
 * allowed by name must exist when the run starts; a symlink is allowed as what it points to).
 */
export function buildPolicy(spec: PolicySpec): Policy {
  const base = spec.base ?? 'allow';
  const list = (v: string[] | undefined): readonly string[] | null => (v ? [...new Set(v)] : base === 'deny' ? [] : null);
  const paths = (v: string[] | undefined, what: string, dirOnly: boolean): readonly string[] | null => {
    const l = list(v);
    return l && l.map((p) => resolveExisting(p, what, dirOnly));
  };
  const helpers = list(spec.helpers);
  return Object.freeze({
    base,
    cgroups: paths(spec.cgroups, 'cgroup directory', true),
    interfaces: list(spec.interfaces),
    uprobes: paths(spec.uprobes, 'uprobe binary', false),
    programTypes: list(spec.programTypes),
    helpers: helpers && helpers.map(helperKey),
    pin: pinRule(spec.pin ?? (base === 'deny' ? 'refuse' : 'private')),
  });
}

function pinRule(v: string): PinRule {
  if (v === 'private' || v === 'refuse') return { mode: v };
  return { mode: 'allow', root: resolveExisting(v, 'pin directory', true) };
}

function resolveExisting(p: string, what: string, dirOnly: boolean): string {
  if (!path.isAbsolute(p)) throw new PolicyError(`${what} ${p}: give an absolute path`);
  let real: string;
  try {
    real = fs.realpathSync(p);
  } catch {
    throw new PolicyError(`${what} ${p} does not exist`);
  }
  if (dirOnly && !fs.statSync(real).isDirectory()) throw new PolicyError(`${what} ${p} is not a directory`);
  return real;
}

/** helpers are compared without their bpf_ prefix */
export function helperKey(name: string): string {
  return name.startsWith('bpf_') ? name.slice(4) : name;
}

/** `path` is `root` or lies below it (both resolved) */
export function isWithin(p: string, root: string): boolean {
  return p === root || p.startsWith(root.endsWith('/') ? root : `${root}/`);
}
