// `wasm-bpf gen skeleton <file.bpf.o> [-n NAME] [-o FILE]`: writes a C guest skeleton header;
// `wasm-bpf gen header [-o FILE]`: writes libbpf-wasm.h, the header guests and skeletons build on.
import { readFileSync, writeFileSync } from 'node:fs';
import process from 'node:process';
import { BtfError } from '../object/btf.js';
import { ElfError } from '../object/elf.js';
import { checkSkeletonName, generateSkeleton, SkeletonError, skeletonName } from '../guest/skeleton.js';
import { say } from './say.js';

const USAGE = `Usage: wasm-bpf gen skeleton <file.bpf.o> [-n|--name NAME] [-o|--output FILE]
       wasm-bpf gen header [-o|--output FILE]

skeleton  writes a C header for Wasm guests (built on libbpf-wasm.h) with a bpftool-compatible skeleton
          API: NAME__open(), NAME__load(), NAME__attach(), NAME__destroy(), skel->maps.X, skel->rodata->X, ...
header    writes libbpf-wasm.h, the guest's libbpf subset (skeletons include it): put it beside your app.c

Options:
  -n, --name NAME     skeleton name (default: from the file name, "x.bpf.o" -> "x_bpf")
  -o, --output FILE   write to FILE instead of stdout
  -h, --help          show this help
`;

class UsageError extends Error {}

interface GenArgs {
  sub: 'skeleton' | 'header';
  file: string;
  name?: string;
  output?: string;
}

function parseArgs(argv: string[]): GenArgs | 'help' {
  const [sub, ...rest] = argv;
  if (sub === '-h' || sub === '--help' || sub === 'help') return 'help';
  if (sub === undefined) throw new UsageError('missing subcommand (expected "skeleton" or "header")');
  if (sub !== 'skeleton' && sub !== 'header') throw new UsageError(`unknown subcommand '${sub}' (expected "skeleton" or "header")`);
  const out: Partial<GenArgs> = {};
  for (let i = 0; i < rest.length; i++) {
    const a = rest[i]!;
    const value = (opt: string): string => {
      const v = rest[++i];
      if (v === undefined) throw new UsageError(`option ${opt} needs a value`);
      return v;
    };
    if (a === '-h' || a === '--help') return 'help';
    else if (a === '-n' || a === '--name') out.name = value(a);
    else if (a.startsWith('--name=')) out.name = a.slice(7);
    else if (a === '-o' || a === '--output') out.output = value(a);
    else if (a.startsWith('--output=')) out.output = a.slice(9);
    else if (a.startsWith('-') && a !== '-') throw new UsageError(`unknown option '${a}'`);
    else if (out.file === undefined && sub === 'skeleton') out.file = a;
    else throw new UsageError(`unexpected argument '${a}'`);
  }
  if (sub === 'header') {
    if (out.name !== undefined) throw new UsageError('gen header takes no --name');
    return { sub, file: '', output: out.output };
  }
  if (out.file === undefined) throw new UsageError('missing object file');
  return { sub, file: out.file, name: out.name, output: out.output };
}

export function genCommand(argv: string[]): number {
  let args: GenArgs | 'help';
  try {
    args = parseArgs(argv);
    if (args !== 'help' && args.name !== undefined) {
      const problem = checkSkeletonName(args.name);
      if (problem) throw new UsageError(problem);
    }
  } catch (e) {
    if (!(e instanceof UsageError)) throw e;
    say('wasm-bpf gen', e.message);
    process.stderr.write(`\n${USAGE}`);
    return 2;
  }
  if (args === 'help') {
    process.stdout.write(USAGE);
    return 0;
  }
  if (args.sub === 'header') {
    const header = readFileSync(new URL('../../../src/guest/libbpf-wasm.h', import.meta.url), 'utf8');
    if (args.output !== undefined && args.output !== '-') writeFileSync(args.output, header);
    else process.stdout.write(header);
    return 0;
  }
  try {
    let bytes: Uint8Array;
    try {
      bytes = readFileSync(args.file);
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      throw new Error(`cannot read '${args.file}': ${code === 'ENOENT' ? 'no such file' : e instanceof Error ? e.message : String(e)}`);
    }
    const header = generateSkeleton(bytes, args.name ?? skeletonName(args.file));
    if (args.output !== undefined && args.output !== '-') writeFileSync(args.output, header);
    else process.stdout.write(header);
    return 0;
  } catch (e) {
    const prefix = e instanceof ElfError || e instanceof BtfError || e instanceof SkeletonError ? `${args.file}: ` : '';
    say('wasm-bpf gen', `${prefix}${e instanceof Error ? e.message : String(e)}`);
    return 1;
  }
}
