// `wasm-bpf btf fetch|path|clear`: the BTFHub cache (compat/btfhub).
import fs from 'node:fs';
import path from 'node:path';
import process from 'node:process';
import {
  cachedBtf,
  clearCache,
  fetchBtf,
  findKernelBtf,
  hubTarget,
  mirrorUrl,
  ttyProgress,
  BtfhubError,
  ENV_ARCHIVE,
} from '../../compat/btfhub/index.js';
import { minimizeBtf } from '../../compat/btfhub/minimize.js';
import { parseBtf } from '../object/btf.js';
import { formatJson, jsonFlag } from './json.js';
import { loadObject } from '../object/loader.js';
import { say } from './say.js';

const USAGE = `Usage: wasm-bpf btf path [-j|--json|-p|--pretty] [--btfhub-mirror URL | --btfhub-archive DIR]
       wasm-bpf btf fetch [--force] [--btfhub-mirror URL | --btfhub-archive DIR]
       wasm-bpf btf clear
       wasm-bpf btf minimize OBJ.bpf.o... [-o OUT] [--btf VMLINUX]

Where libbpf's vmlinux BTF comes from on this host, and the BTFHub cache used when the kernel has none.

  path    print the vmlinux BTF the runtime would use (the kernel's own, or the BTFHub cache) and, when
          the kernel has none, the cache file and the URL (or archive file) it is fetched from
  fetch   fetch this kernel's BTF from BTFHub into the cache (even if the kernel has its own: --force
          refetches an already cached file), validate it and print its path
  clear   remove the BTFHub cache
  minimize
          write a reduced BTF holding only what the objects' CO-RE relocations resolve to in VMLINUX (as
          bpftool gen min_core_btf does), e.g. to ship with a package or as a btfhub-archive file; to
          OUT, else stdout

Options:
  --btfhub-mirror URL   a btfhub-archive mirror (default $WASM_BPF_BTFHUB_MIRROR, else the public archive
                        https://github.com/aquasecurity/btfhub-archive/raw/main)
  --btfhub-archive DIR  a local btfhub-archive tree (default $WASM_BPF_BTFHUB_ARCHIVE)
  -j, --json            (path) machine-readable output, one line; -p, --pretty: indented
  -o, --output OUT      (minimize) output file
  --btf VMLINUX         (minimize) source BTF (default /sys/kernel/btf/vmlinux)
  -h, --help            show this help

The cache is <cache dir>/btfhub/<ID>/<VERSION_ID>/<arch>/<release>.btf; <cache dir> is $WASM_BPF_CACHE_DIR,
else /var/cache/wasm-bpf for root, else $XDG_CACHE_HOME/wasm-bpf.
`;

class UsageError extends Error {}

interface Args {
  sub: 'path' | 'fetch' | 'clear' | 'minimize';
  json: boolean;
  pretty: boolean;
  force: boolean;
  mirror?: string;
  archive?: string;
  inputs: string[];
  output?: string;
  btf?: string;
}

function parse(argv: string[]): Args | 'help' {
  const [sub, ...rest] = argv;
  if (sub === undefined || sub === '-h' || sub === '--help' || sub === 'help') return 'help';
  if (sub !== 'path' && sub !== 'fetch' && sub !== 'clear' && sub !== 'minimize') throw new UsageError(`unknown btf command '${sub}'`);
  const out: Args = { sub, json: false, pretty: false, force: false, inputs: [] };
  for (let i = 0; i < rest.length; i++) {
    const a = rest[i]!;
    const eq = a.indexOf('=');
    const [flag, inline] = a.startsWith('--') && eq > 0 ? [a.slice(0, eq), a.slice(eq + 1)] : [a, undefined];
    const val = (): string => {
      if (inline !== undefined) return inline;
      const v = rest[++i];
      if (v === undefined) throw new UsageError(`${flag} needs a value`);
      return v;
    };
    if (flag === '-h' || flag === '--help') return 'help';
    else if (jsonFlag(flag) && sub === 'path') {
      out.json = true;
      out.pretty ||= jsonFlag(flag) === 'pretty';
    }
    else if (flag === '--force' && sub === 'fetch') out.force = true;
    else if ((flag === '-o' || flag === '--output') && sub === 'minimize') out.output = val();
    else if (flag === '--btf' && sub === 'minimize') out.btf = val();
    else if (sub === 'minimize' && !a.startsWith('-')) out.inputs.push(a);
    else if (flag === '--btfhub-mirror' && sub !== 'clear' && sub !== 'minimize') {
      const u = val();
      if (!/^https?:\/\//.test(u)) throw new UsageError(`--btfhub-mirror expects an http(s) URL, got '${u}'`);
      out.mirror = u;
    } else if (flag === '--btfhub-archive' && sub !== 'clear' && sub !== 'minimize') {
      const d = val();
      if (!fs.existsSync(d) || !fs.statSync(d).isDirectory()) throw new UsageError(`--btfhub-archive ${d}: not a directory`);
      out.archive = path.resolve(d);
    } else throw new UsageError(`unexpected argument '${a}'`);
  }
  if (sub === 'minimize' && out.inputs.length === 0) throw new UsageError('minimize needs at least one BPF object');
  if (sub === 'minimize' && out.output === undefined && process.stdout.isTTY) throw new UsageError('minimize writes binary BTF: give -o OUT (or redirect stdout)');
  if (out.mirror !== undefined && out.archive !== undefined) throw new UsageError('give --btfhub-mirror or --btfhub-archive, not both');
  return out;
}

export async function btfCommand(argv: string[]): Promise<number> {
  let args: Args | 'help';
  try {
    args = parse(argv);
  } catch (err) {
    if (err instanceof UsageError) {
      say('wasm-bpf btf', err.message);
      process.stderr.write(`\n${USAGE}`);
      return 2;
    }
    throw err;
  }
  if (args === 'help') {
    process.stdout.write(USAGE);
    return 0;
  }
  try {
    if (args.sub === 'clear') {
      const dir = clearCache();
      process.stdout.write(`removed ${dir}\n`);
      return 0;
    }
    if (args.sub === 'minimize') return minimize(args);
    if (args.sub === 'fetch') {
      const target = hubTarget();
      if (!args.force && cachedBtf(target)) {
        process.stdout.write(`${target.cachePath}\n`);
        return 0;
      }
      const r = await fetchBtf(target, { mirror: args.mirror, archive: args.archive, progress: ttyProgress() });
      say('wasm-bpf', `fetched ${r.from} (${r.bytes} bytes of BTF)`, 'note');
      process.stdout.write(`${r.path}\n`);
      return 0;
    }
    // path
    const kernel = findKernelBtf();
    let target: ReturnType<typeof hubTarget> | undefined;
    let targetError: string | undefined;
    try {
      target = hubTarget();
    } catch (err) {
      targetError = err instanceof Error ? err.message : String(err);
    }
    const cached = target ? cachedBtf(target) : undefined;
    const archive = args.archive ?? (args.mirror === undefined ? process.env[ENV_ARCHIVE] : undefined);
    const fetchFrom = target ? (archive ? path.join(path.resolve(archive), ...target.relPath.split('/')) : `${mirrorUrl(args.mirror)}/${target.relPath}`) : null;
    const source = kernel ? kernel.source : cached ? 'btfhub' : 'none';
    const used = kernel ? kernel.path : (cached ?? null);
    if (args.json) {
      process.stdout.write(formatJson({ source, path: used, btfhubPath: target?.cachePath ?? null, cached: !!cached, fetchFrom, error: targetError ?? null }, args.pretty));
    } else {
      const lines = [
        `source   ${source}${kernel ? ' (the kernel\'s own BTF)' : cached ? ' (cache)' : ''}`,
        `path     ${used ?? '-'}`,
        `btfhub   ${target ? `${target.cachePath}${cached ? '' : ' (not cached)'}` : `- (${targetError})`}`,
      ];
      if (fetchFrom) lines.push(`fetch    ${fetchFrom}`);
      process.stdout.write(`${lines.join('\n')}\n`);
    }
    return source === 'none' ? 1 : 0;
  } catch (err) {
    say(`wasm-bpf btf ${args.sub}`, `${err instanceof Error ? err.message : String(err)}`);
    // interrupted (its files removed): end as the signal says, like any command stopped by Ctrl-C
    if (err instanceof BtfhubError && err.signal) process.kill(process.pid, err.signal);
    return 1;
  }
}

function minimize(args: Args): number {
  // the kernel's own BTF by default, on Linux; elsewhere --btf FILE names it
  const src = args.btf ?? (process.platform === 'linux' ? '/sys/kernel/btf/vmlinux' : undefined);
  if (src === undefined) throw new Error('no kernel BTF on this platform: name a vmlinux BTF file with --btf FILE');
  let source;
  try {
    source = parseBtf(fs.readFileSync(src));
  } catch (err) {
    throw new Error(`${src}: cannot read BTF: ${err instanceof Error ? err.message : String(err)}`);
  }
  const objects = args.inputs.map((f) => {
    try {
      return loadObject(fs.readFileSync(f));
    } catch (err) {
      throw new Error(`${f}: not a usable BPF object: ${err instanceof Error ? err.message : String(err)}`);
    }
  });
  const { bytes, stats } = minimizeBtf(source, objects);
  if (args.output !== undefined) {
    const tmp = `${args.output}.tmp-${process.pid}`;
    fs.writeFileSync(tmp, bytes);
    fs.renameSync(tmp, args.output);
  } else process.stdout.write(bytes);
  process.stderr.write(
    `wasm-bpf: ${stats.relocations} CO-RE relocation(s) (${stats.unmatched} without a match in ${src}): ${stats.types} types, ${stats.bytes} bytes${args.output !== undefined ? ` -> ${args.output}` : ''}\n`,
  );
  return 0;
}
