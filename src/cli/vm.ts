// `wasm-bpf vm`: run, assemble and disassemble raw eBPF programs on the userspace VM.
//   wasm-bpf vm run [--engine interp|jit|native] [--elf [--section NAME]] [--budget N] [MEMHEX] < program
//   wasm-bpf vm asm [FILE] > program          (text from FILE or stdin)
//   wasm-bpf vm disasm [--elf [--section NAME]] [FILE] > text   (bytes from FILE or stdin)
// `run` follows the bpf_conformance plugin convention: program bytes on stdin, memory as a hex
// argument (r1 = its address, r2 = its length, r10 = the stack top), r0 printed in hex on stdout.
// Errors go to stderr; exit codes: 0 ok, 1 the program failed to load or faulted, 2 usage.
import fs from 'node:fs';
import process from 'node:process';
import { AsmError, vm, VmError, type Engine } from '../../backends/userspace/vm/index.js';
import { programFromElf } from '../../backends/userspace/vm/elf.js';

const USAGE = `Usage:
  wasm-bpf vm run [--engine interp|jit|native] [--elf [--section NAME]] [--budget N] [MEMHEX] < program
  wasm-bpf vm asm [FILE] > program.bin
  wasm-bpf vm disasm [--elf [--section NAME]] [FILE]

run     execute raw eBPF instructions (or an ELF object's program with --elf) read from stdin;
        MEMHEX (e.g. "00112233") is copied to VM memory, r1 = its address, r2 = its length;
        prints r0 in hex. Default engine: jit (native: the uprobe agent's C engine, through the
        addon). --budget: instruction limit (default 100000000).
asm     assemble "mov32 %r0, 1" / "ldxdw %r0, [%r1+8]" / "jeq %r1, 0, +3" syntax to bytes
disasm  print one instruction per line in the same syntax
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
  process.stderr.write(`wasm-bpf vm: ${msg}\n`);
  return code;
}

interface Parsed {
  engine: Engine;
  elf: boolean;
  section: string | undefined;
  budget: number | undefined;
  positional: string[];
}

function parse(args: string[]): Parsed | string {
  const p: Parsed = { engine: 'jit', elf: false, section: undefined, budget: undefined, positional: [] };
  for (let i = 0; i < args.length; i++) {
    const a = args[i]!;
    const value = (): string | undefined => {
      const eq = a.indexOf('=');
      if (eq >= 0) return a.slice(eq + 1);
      i++;
      return args[i];
    };
    const name = a.includes('=') ? a.slice(0, a.indexOf('=')) : a;
    if (name === '--engine') {
      const v = value();
      if (v !== 'interp' && v !== 'jit' && v !== 'native') return `--engine expects interp, jit or native`;
      p.engine = v;
    } else if (name === '--elf') p.elf = true;
    else if (name === '--section') {
      const v = value();
      if (v === undefined) return '--section expects a name';
      p.section = v;
    } else if (name === '--budget') {
      const v = Number(value());
      if (!Number.isSafeInteger(v) || v < 0) return '--budget expects a non-negative integer';
      p.budget = v;
    } else if (a === '--') {
      p.positional.push(...args.slice(i + 1));
      break;
    } else if (a.startsWith('--')) return `unknown option ${a}`;
    else p.positional.push(a);
  }
  return p;
}

function describe(e: unknown): string {
  if (e instanceof VmError || e instanceof AsmError) return e.message;
  return e instanceof Error ? e.message : String(e);
}

export async function vmCommand(argv: string[]): Promise<number> {
  const [sub, ...rest] = argv;
  if (sub === undefined || sub === '-h' || sub === '--help' || sub === 'help') {
    process.stdout.write(USAGE);
    return sub === undefined ? 2 : 0;
  }
  const p = parse(rest);
  if (typeof p === 'string') return fail(`${p}\n\n${USAGE}`, 2);
  try {
    switch (sub) {
      case 'run': {
        if (p.positional.length > 1) return fail(`run takes at most one MEMHEX argument\n\n${USAGE}`, 2);
        let mem: Uint8Array | undefined;
        if (p.positional.length === 1) {
          mem = parseHex(p.positional[0]!);
          if (mem === undefined) return fail(`MEMHEX is not an even-length hex string: '${p.positional[0]}'`, 2);
        }
        const bytes = await readAll(undefined);
        let name = 'stdin';
        let insns = bytes;
        if (p.elf) {
          const prog = programFromElf(bytes, p.section);
          insns = prog.insns;
          name = prog.name;
        } else if (p.section !== undefined) return fail('--section needs --elf', 2);
        const prog = vm.load(insns, { name });
        const r0 = vm.run(prog, mem, { engine: p.engine, ...(p.budget !== undefined ? { budget: p.budget } : {}) });
        process.stdout.write(`${r0.toString(16)}\n`);
        return 0;
      }
      case 'asm': {
        if (p.positional.length > 1) return fail(`asm takes at most one FILE\n\n${USAGE}`, 2);
        const text = new TextDecoder().decode(await readAll(p.positional[0]));
        process.stdout.write(vm.asm(text));
        return 0;
      }
      case 'disasm': {
        if (p.positional.length > 1) return fail(`disasm takes at most one FILE\n\n${USAGE}`, 2);
        let bytes = await readAll(p.positional[0]);
        if (p.elf) bytes = programFromElf(bytes, p.section).insns;
        process.stdout.write(vm.disasm(bytes));
        return 0;
      }
      default:
        return fail(`unknown vm command '${sub}'\n\n${USAGE}`, 2);
    }
  } catch (e) {
    if (e instanceof VmError || e instanceof AsmError) return fail(describe(e));
    if (e instanceof Error && 'code' in e && (e as NodeJS.ErrnoException).code === 'ENOENT') return fail(e.message);
    throw e;
  }
}
