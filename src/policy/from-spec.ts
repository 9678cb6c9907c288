// A policy from what a user wrote (policy files and allow-lists): merged in order, program types checked
// against the kernel's names, paths resolved. Shared by the CLI's --policy/--allow-* and the library API.
import { PROGRAM_KINDS } from './needs.js';
import { buildPolicy, mergeSpecs, PolicyError, readPolicyFile, type Policy, type PolicySpec } from './policy.js';

/** each item a policy file's path or a spec; later ones add to earlier ones. Throws PolicyError (code USAGE). */
export function policyFrom(items: ReadonlyArray<string | PolicySpec>): Policy {
  const spec = items.map((i) => (typeof i === 'string' ? readPolicyFile(i) : i)).reduce(mergeSpecs, {});
  const bad = spec.programTypes?.find((t) => !PROGRAM_KINDS.has(t));
  if (bad !== undefined) throw new PolicyError(`program type '${bad}' is not one the kernel knows (${[...PROGRAM_KINDS].join(', ')})`);
  return buildPolicy(spec);
}
