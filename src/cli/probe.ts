// `wasm-bpf probe [--json] [--full] [--no-cache] [--root DIR] [--btf FILE]`: what eBPF can do on this host.
import fs from 'node:fs';
import { cliAssumedMissing } from '../probe/assume.js';
import type { CompatStep } from '../select/compat.js';
import process from 'node:process';
import { probeHost } from '../api/probe.js';
import { formatJson, jsonFlag } from './json.js';
import { formatReport, useColor } from '../probe/format.js';
import { say } from './say.js';

const USAGE = `Usage: wasm-bpf probe [options]

Reports what eBPF can do on this host: system, privileges, kernel config, BTF, program and map types,
attach mechanisms (decided by trying), features and backends. Every check answers yes / no / unknown
with its reason. The report is cached per boot, keyed by kernel release, boot id, uid, capabilities,
mount namespace and the BTF file's identity (a container never reads or overwrites the host's answer).

Options:
  -j, --json      print the report as JSON, one line (schema: src/probe/README.md; "schemaVersion": 1)
  -p, --pretty    the same, indented
  --full          also probe every helper from every program type (slower)
  --no-cache      probe again instead of using the cached report (the cache is rewritten)
  --root DIR      read /proc, /sys, /boot, /etc under DIR and uname from DIR/uname.json (fixture mode:
                  nothing is tried; answers come from files and the kernel version)
  --btf FILE      use FILE as vmlinux BTF (as libbpf's btf_custom_path)
  --assume-missing FEATURE
                  report FEATURE (e.g. ringbuf) as absent (repeatable; also $WASM_BPF_ASSUME_MISSING)
  -h, --help      show this help

Colours are used when stdout is a terminal and NO_COLOR is not set.
`;

class UsageError extends Error {}

/** --assume-missing values and $WASM_BPF_ASSUME_MISSING, validated (a usage error names the unknown one) */
export function assumeMissing(options: readonly string[]): string[] {
  try {
    return cliAssumedMissing(options, process.env);
  } catch (err) {
    throw new UsageError((err as Error).message);
  }
}

interface ProbeArgs {
  json: boolean;
  pretty: boolean;
  full: boolean;
  noCache: boolean;
  root?: string;
  btf?: string;
  assumeMissing: string[];
}

function parseArgs(argv: string[]): ProbeArgs | 'help' {
  const out: ProbeArgs = { json: false, pretty: false, full: false, noCache: false, assumeMissing: [] };
  const assumed: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    const value = (opt: string): string => {
      const v = argv[++i];
      if (v === undefined) throw new UsageError(`option ${opt} needs a value`);
      return v;
    };
    if (a === '-h' || a === '--help') return 'help';
    else if (jsonFlag(a)) {
      out.json = true;
      out.pretty ||= jsonFlag(a) === 'pretty';
    }
    else if (a === '--full') out.full = true;
    else if (a === '--no-cache') out.noCache = true;
    else if (a === '--root') out.root = value(a);
    else if (a.startsWith('--root=')) out.root = a.slice(7);
    else if (a === '--btf') out.btf = value(a);
    else if (a.startsWith('--btf=')) out.btf = a.slice(6);
    else if (a === '--assume-missing') assumed.push(value(a));
    else throw new UsageError(`unexpected argument '${a}'`);
  }
  out.assumeMissing = assumeMissing(assumed);
  return out;
}

/** the "Compat" section: which compat passes runs on this host would apply, and why */
function formatCompat(steps: CompatStep[]): string {
  const lines = ['', 'Compat (applied by the selector when an object needs it)'];
  for (const c of steps) lines.push(`  ${c.step.padEnd(14)} ${(c.applies ? 'applies' : 'no').padEnd(8)} ${c.why}`);
  return `${lines.join('\n')}\n\n`;
}

export function probeCommand(argv: string[]): number {
  let args: ProbeArgs | 'help';
  try {
    args = parseArgs(argv);
    if (args !== 'help' && args.root !== undefined) {
      if (!fs.existsSync(args.root) || !fs.statSync(args.root).isDirectory()) throw new UsageError(`--root ${args.root}: not a directory`);
      if (!fs.existsSync(`${args.root}/uname.json`)) throw new UsageError(`--root ${args.root}: no uname.json (see src/probe/README.md)`);
    }
  } catch (e) {
    if (!(e instanceof UsageError)) throw e;
    say('wasm-bpf probe', e.message);
    process.stderr.write(`\n${USAGE}`);
    return 2;
  }
  if (args === 'help') {
    process.stdout.write(USAGE);
    return 0;
  }
  const { result, cached: res } = probeHost({
    ...(args.root !== undefined ? { root: args.root } : {}),
    // live: relative to the current directory; with --root: a path inside the tree
    ...(args.btf !== undefined ? { btf: args.btf } : {}),
    full: args.full,
    noCache: args.noCache,
    assumeMissing: args.assumeMissing,
  });
  const compat = result.compat;
  if (args.json) {
    // `compat` is derived from the report (src/select/compat.ts): an addition to schema version 1
    process.stdout.write(formatJson(result, args.pretty));
  } else {
    process.stdout.write(
      formatReport(res.report, {
        color: useColor(process.stdout),
        width: process.stdout.columns ?? 100,
        cached: res.hit,
      }) + formatCompat(compat),
    );
  }
  return 0;
}
