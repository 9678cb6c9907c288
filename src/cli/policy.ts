// The policy options shared by `run` and `check`: --policy FILE, --default-deny and the --allow-* lists.
import { WasmBpfError } from '../errors.js';
import { PolicyError, type Policy, type PolicySpec } from '../policy/policy.js';
import { policyFrom } from '../policy/from-spec.js';

export const POLICY_HELP = `Policy (what the module's eBPF objects may load and attach to). The default is to allow every program
type and helper, any network interface, any binary for uprobes and any cgroup on a cgroup2 mount, and to
serve maps that ask to be pinned with private maps (nothing is pinned, no pinned map is reused).
Each --allow-* option given limits its kind to what the options of that kind name:
  --policy FILE                 read a policy (JSON: {"default": "allow"|"deny", "programTypes": [...],
                                "helpers": [...], "cgroups": [...], "interfaces": [...], "uprobes": [...],
                                "pin": "private"|"refuse"|DIR}); the options below add to it
  --default-deny                every kind not named by an --allow-* option (or the file) is refused,
                                and objects that pin maps are refused
  --allow-prog-type TYPE        a program type (kernel name: kprobe, tracepoint, xdp, ...; uprobe for
                                uprobe/uretprobe/usdt programs)
  --allow-helper NAME           a helper (bpf_ prefix optional) or kfunc programs may call
  --allow-cgroup PATH           a cgroup v2 directory (and its children) cgroup/sockops programs may attach to
  --allow-ifname NAME           a network interface XDP programs and socket filters may attach to
  --allow-uprobe PATH           a binary (or a directory of binaries) uprobes may attach to
  --allow-pin DIR               honour pinning, below DIR (a directory on bpffs) instead of private maps
  --pin private|refuse          what maps that ask to be pinned get (default private)
All --allow-* options and --policy are repeatable. \`wasm-bpf check\` shows what a module needs.
`;

const LISTS = {
  '--allow-cgroup': 'cgroups',
  '--allow-ifname': 'interfaces',
  '--allow-uprobe': 'uprobes',
  '--allow-prog-type': 'programTypes',
  '--allow-helper': 'helpers',
} as const;

/** collects the policy options of a command line, then builds the policy (a bad value is a usage error) */
export class PolicyOptions {
  private readonly files: string[] = [];
  private readonly spec: PolicySpec = {};

  /** consumes `flag` (its value through `value`) when it is a policy option */
  take(flag: string, value: () => string): boolean {
    if (flag in LISTS) {
      (this.spec[LISTS[flag as keyof typeof LISTS]] ??= []).push(value());
    } else if (flag === '--policy') {
      this.files.push(value());
    } else if (flag === '--default-deny') {
      this.spec.base = 'deny';
    } else if (flag === '--allow-pin') {
      this.spec.pin = value();
    } else if (flag === '--pin') {
      const v = value();
      if (v !== 'private' && v !== 'refuse') throw new WasmBpfError('USAGE', '--pin must be private or refuse (to honour pins: --allow-pin DIR)');
      this.spec.pin = v;
    } else {
      return false;
    }
    return true;
  }

  /** nothing was given: the default policy applies */
  get empty(): boolean {
    return this.files.length === 0 && Object.keys(this.spec).length === 0;
  }

  build(): Policy {
    try {
      return policyFrom([...this.files, this.spec]);
    } catch (err) {
      if (err instanceof PolicyError) throw new WasmBpfError('USAGE', err.message);
      throw err;
    }
  }
}
