// `wasm-bpf vm`: run, assemble and disassemble raw eBPF programs on the userspace VM.
//   wasm-bpf vm run [--engine interp|jit|native] [--elf [--section NAME]] [--budget N] [-j] [MEMHEX] < program
//   wasm-bpf vm asm [--syntax llvm|ubpf] [FILE] > program          (text from FILE or stdin)
//   wasm-bpf vm disasm [--syntax llvm|ubpf] [--elf [--section NAME] [--linked]] [FILE] > text
// `run` follows the bpf_conformance plugin convention: program bytes on stdin, memory as a hex
// argument (r1 = its address, r2 = its length, r10 = the stack top), r0 printed in hex (0x...) on stdout.
// Errors go to stderr; exit codes: 0 ok, 1 the program failed to load or faulted, 2 usage.
import fs from 'node:fs';
import process from 'node:process';
import { AsmError, vm, VmError, type Engine } from '../../backends/userspace/vm/index.js';
import { programFromElf } from '../../backends/userspace/vm/elf.js';
import { disasmElf } from '../../backends/userspace/vm/elf-disasm.js';
import { say } from './say.js';

const SYNTAXES = `Syntax (--syntax): llvm, the kernel/LLVM form that llvm-objdump, bpftool and the verifier log
print (w0 = 1, r0 = *(u64 *)(r1 + 8), if r1 == 0x0 goto +3, call bpf_ktime_get_ns, exit), the default;
ubpf, the ubpf/bpf_conformance form (mov32 %r0, 1, ldxdw %r0, [%r1+8], jeq %r1, 0, +3). asm reads
both, line by line, unless --syntax forces one.`;

const HELP: Record<string, string> = {
  run: `Usage: wasm-bpf vm run [options] [MEMHEX] < program

Execute raw eBPF instructions (or an ELF object's program with --elf) read from stdin. MEMHEX
(e.g. "00112233") is copied to VM memory: r1 = its address, r2 = its length. Prints r0 in hex.
Programs may call the helpers that need no map: ktime_get_ns, ktime_get_boot_ns, ktime_get_coarse_ns,
get_prandom_u32, get_smp_processor_id, get_numa_node_id, get_current_pid_tgid, get_current_uid_gid,
get_current_comm (of this process), trace_printk (to stderr), on every engine.

Options:
  --engine interp|jit|native  jit (default), the reference interpreter, or the uprobe agent's C
                              engine through the addon
  --elf                       stdin is an eBPF ELF object: run its first program
  --section NAME              with --elf: the program section or function to run
  --budget N                  instruction limit (default 100000000)
  -j, --json                  print {"r0": <number>, "hex": "0x..", "steps": N, "engine": ".."}
  -p, --pretty                as --json, indented
  -h, --help                  show this help
`,
  asm: `Usage: wasm-bpf vm asm [--syntax llvm|ubpf] [FILE] > program.bin

Assemble text (FILE or stdin) to raw instruction bytes on stdout. Labels ("loop:"), comments
(#, //, ;), ".quad 0x<16 hex>" (one raw slot) and ".bytes 0x.. 0x.." (a raw tail) are read in both
syntaxes, and so are llvm-objdump -d listings and verifier-log lines ("3: (b7) r0 = 1").

${SYNTAXES}

Options:
  --syntax llvm|ubpf  read every line in that syntax (default: decided per line)
  -h, --help          show this help
`,
  disasm: `Usage: wasm-bpf vm disasm [--syntax llvm|ubpf] [--elf [--section NAME] [--linked]] [FILE]

Print one instruction per line (bytes from FILE or stdin); vm asm reads the text back to the same
bytes. With --elf: every code section of an eBPF object as llvm-objdump -dr shows it, function
symbols as labels and each relocation (map, data, function) as a comment after its instruction.

${SYNTAXES}

Options:
  --syntax llvm|ubpf  the syntax printed (default llvm)
  --elf               the input is an eBPF ELF object
  --section NAME      with --elf: only this code section
  --linked            with --elf: the program as vm run --elf runs it (.text callees linked in)
  -h, --help          show this help
`,
};

const USAGE = `Usage:
  wasm-bpf vm run [--engine interp|jit|native] [--elf [--section NAME]] [--budget N] [-j] [MEMHEX] < program
  wasm-bpf vm asm [--syntax llvm|ubpf] [FILE] > program.bin
  wasm-bpf vm disasm [--syntax llvm|ubpf] [--elf [--section NAME] [--linked]] [FILE]

  run     execute raw eBPF instructions (or an ELF object's program) read from stdin; prints r0 (0x..)
  asm     assemble text to instruction bytes
  disasm  print one instruction per line

${SYNTAXES}

Run \`wasm-bpf vm COMMAND --help\` for a command's options.
`;

async function readAll(file: string | undefined): Promise<Uint8Array> {
  if (file !== undefined && file !== '-') return new Uint8Array(fs.readFileSync(file));
  const chunks: Buffer[] = [];
  for await (const c of process.stdin) chunks.push(typeof c === 'string' ? Buffer.from(c) : (c as Buffer));
  return new Uint8Array(Buffer.concat(chunks));
}

function parseHex(s: string): Uint8Array | undefined {
  const t = s.replace(/\s+/g, '').replace(/^0x/i, '');
  if (t.length % 2 !== 0 || !/^[0-9a-fA-F]*$/.test(t)) return undefined;
  const out = new Uint8Array(t.length / 2);
  for (let i = 0; i < out.length; i++) out[i] = parseInt(t.slice(i * 2, i * 2 + 2), 16);
  return out;
}

function fail(msg: string, code = 1): number {
  say('wasm-bpf vm', msg);
  return code;
}

interface Parsed {
  engine: Engine;
  elf: boolean;
  linked: boolean;
  section: string | undefined;
  budget: number | undefined;
  syntax: 'llvm' | 'ubpf' | undefined;
  json: boolean;
  pretty: boolean;
  help: boolean;
  positional: string[];
}

/** the options each subcommand takes */
const ALLOWED: Record<string, readonly string[]> = {
  run: ['--engine', '--elf', '--section', '--budget', '--json', '--pretty'],
  asm: ['--syntax'],
  disasm: ['--syntax', '--elf', '--section', '--linked'],
};

function parse(sub: string, args: string[]): Parsed | string {
  const p: Parsed = {
    engine: 'jit', elf: false, linked: false, section: undefined, budget: undefined, syntax: undefined,
    json: false, pretty: false, help: false, positional: [],
  };
  const allowed = ALLOWED[sub] ?? [];
  for (let i = 0; i < args.length; i++) {
    const a = args[i]!;
    const value = (): string | undefined => {
      const eq = a.indexOf('=');
      if (eq >= 0) return a.slice(eq + 1);
      i++;
      return args[i];
    };
    let name = a.includes('=') && a.startsWith('--') ? a.slice(0, a.indexOf('=')) : a;
    if (name === '-j') name = '--json';
    if (name === '-p') name = '--pretty';
    if (name === '-h' || name === '--help') {
      p.help = true;
      continue;
    }
    if (a === '--') {
      p.positional.push(...args.slice(i + 1));
      break;
    }
    if (a.startsWith('-') && a !== '-') {
      if (!allowed.includes(name)) return `unknown option ${a} for vm ${sub}`;
    } else {
      p.positional.push(a);
      continue;
    }
    if (name === '--engine') {
      const v = value();
      if (v !== 'interp' && v !== 'jit' && v !== 'native') return `--engine expects interp, jit or native`;
      p.engine = v;
    } else if (name === '--elf') p.elf = true;
    else if (name === '--linked') p.linked = true;
    else if (name === '--json') p.json = true;
    else if (name === '--pretty') p.json = p.pretty = true;
    else if (name === '--section') {
      const v = value();
      if (v === undefined) return '--section expects a name';
      p.section = v;
    } else if (name === '--syntax') {
      const v = value();
      if (v !== 'llvm' && v !== 'ubpf') return `--syntax expects llvm or ubpf`;
      p.syntax = v;
    } else if (name === '--budget') {
      const v = Number(value());
      if (!Number.isSafeInteger(v) || v < 0) return '--budget expects a non-negative integer';
      p.budget = v;
    }
  }
  return p;
}

function describe(e: unknown): string {
  if (e instanceof VmError || e instanceof AsmError) return e.message;
  return e instanceof Error ? e.message : String(e);
}

async function run(p: Parsed): Promise<number> {
  if (p.positional.length > 1) return fail(`run takes at most one MEMHEX argument\n\n${HELP.run}`, 2);
  let mem: Uint8Array | undefined;
  if (p.positional.length === 1) {
    mem = parseHex(p.positional[0]!);
    if (mem === undefined) return fail(`MEMHEX is not an even-length hex string: '${p.positional[0]}'`, 2);
  }
  if (!p.elf && p.section !== undefined) return fail('--section needs --elf', 2);
  const bytes = await readAll(undefined);
  let name = 'stdin';
  let insns = bytes;
  if (p.elf) {
    const prog = programFromElf(bytes, p.section);
    insns = prog.insns;
    name = prog.name;
  }
  const { helperName, vmRunHelperNames, vmRunHelpers } = await import('./vm-helpers.js');
  const helpers = vmRunHelpers((text) => process.stderr.write(text));
  let prog;
  try {
    prog = vm.load(insns, { name, env: vm.createEnvironment({ helpers }) });
  } catch (e) {
    const m = e instanceof VmError ? /unknown helper (\d+)/.exec(e.message) : null;
    if (m === null) throw e;
    return fail(
      `${describe(e)}: ${helperName(Number(m[1]))} is not offered by vm run, which serves only the helpers that need no map ` +
        `(${vmRunHelperNames()}); run a program that uses maps in its object through the userspace backend (wasm-bpf run --backend userspace)`,
    );
  }
  const { r0, steps } = vm.execute(prog, mem, { engine: p.engine, ...(p.budget !== undefined ? { budget: p.budget } : {}) });
  const hex = `0x${r0.toString(16)}`;
  if (p.json) {
    // r0 is a u64: written as an exact JSON integer (parsers without big integers may round past 2^53)
    const body = [`"r0": ${r0.toString()}`, `"hex": "${hex}"`, `"steps": ${steps}`, `"engine": "${p.engine}"`];
    process.stdout.write(p.pretty ? `{\n  ${body.join(',\n  ')}\n}\n` : `{${body.join(', ')}}\n`);
  } else process.stdout.write(`${hex}\n`);
  return 0;
}

export async function vmCommand(argv: string[]): Promise<number> {
  const [sub, ...rest] = argv;
  if (sub === undefined || sub === '-h' || sub === '--help' || sub === 'help') {
    process.stdout.write(USAGE);
    return sub === undefined ? 2 : 0;
  }
  if (HELP[sub] === undefined) return fail(`unknown vm command '${sub}'\n\n${USAGE}`, 2);
  const p = parse(sub, rest);
  if (typeof p === 'string') return fail(`${p}\n\n${HELP[sub]}`, 2);
  if (p.help) {
    process.stdout.write(HELP[sub]!);
    return 0;
  }
  try {
    switch (sub) {
      case 'run':
        return await run(p);
      case 'asm': {
        if (p.positional.length > 1) return fail(`asm takes at most one FILE\n\n${HELP.asm}`, 2);
        const text = new TextDecoder().decode(await readAll(p.positional[0]));
        process.stdout.write(vm.asm(text, { syntax: p.syntax ?? 'auto' }));
        return 0;
      }
      default: {
        if (p.positional.length > 1) return fail(`disasm takes at most one FILE\n\n${HELP.disasm}`, 2);
        if (!p.elf && (p.section !== undefined || p.linked)) return fail(`${p.linked ? '--linked' : '--section'} needs --elf`, 2);
        const bytes = await readAll(p.positional[0]);
        const syntax = p.syntax ?? 'llvm';
        if (p.elf && !p.linked) process.stdout.write(disasmElf(bytes, { syntax, ...(p.section !== undefined ? { section: p.section } : {}) }));
        else process.stdout.write(vm.disasm(p.elf ? programFromElf(bytes, p.section).insns : bytes, { syntax }));
        return 0;
      }
    }
  } catch (e) {
    if (e instanceof VmError || e instanceof AsmError) return fail(describe(e));
    if (e instanceof Error && 'code' in e && (e as NodeJS.ErrnoException).code === 'ENOENT') return fail(e.message);
    throw e;
  }
}
