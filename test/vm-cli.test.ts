// `wasm-bpf vm run|asm|disasm`: the conformance-plugin convention (program on stdin, memory as a hex
// argument, r0 in hex (0x...) on stdout, errors on stderr with a non-zero exit), on every engine, driven by the
// .data files in test/fixtures/vm/data (the bpf_conformance layout: -- asm / -- mem / -- result|error).
import t from 'tap';
import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { BUILD, FIXTURES, ROOT } from './helpers.js';
import { execFileSync } from 'node:child_process';

const MAIN = path.join(ROOT, 'src', 'cli', 'main.ts');
const DATA = path.join(FIXTURES, 'vm', 'data');

function cli(args: string[], input?: Uint8Array | string): { code: number | null; stdout: string; stderr: string; raw: Buffer } {
  const r = spawnSync(process.execPath, ['--import', 'tsx', MAIN, 'vm', ...args], { input: input ?? '', timeout: 60_000 });
  return { code: r.status, stdout: r.stdout.toString('utf8'), stderr: r.stderr.toString('utf8'), raw: r.stdout };
}

/** as cli(), without blocking: the engines' runs of one file go in parallel (each start costs ~1 s of tsx) */
function cliAsync(args: string[], input: Uint8Array): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const c = spawn(process.execPath, ['--import', 'tsx', MAIN, 'vm', ...args], { timeout: 60_000 });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    c.stdout.on('data', (b: Buffer) => out.push(b));
    c.stderr.on('data', (b: Buffer) => err.push(b));
    c.on('error', reject);
    c.on('close', (code) => resolve({ code, stdout: Buffer.concat(out).toString('utf8'), stderr: Buffer.concat(err).toString('utf8') }));
    c.stdin.end(input);
  });
}

function sections(text: string): Map<string, string> {
  const out = new Map<string, string>();
  let cur = '';
  for (const line of text.split('\n')) {
    const m = /^-- (\w+)/.exec(line);
    if (m) {
      cur = m[1]!;
      out.set(cur, '');
    } else if (cur !== '') out.set(cur, out.get(cur)! + line + '\n');
  }
  return out;
}

t.test('help and usage errors', async (t) => {
  const h = cli(['--help']);
  t.equal(h.code, 0);
  t.match(h.stdout, /wasm-bpf vm run \[--engine interp\|jit\|native\] \[--elf/);
  t.equal(cli([]).code, 2);
  const u = cli(['run', '--frob']);
  t.equal(u.code, 2);
  t.match(u.stderr, /unknown option --frob/);
  t.equal(cli(['run', '--engine', 'fast']).code, 2);
  const m = cli(['run', 'xyz'], new Uint8Array(8));
  t.equal(m.code, 2);
  t.match(m.stderr, /MEMHEX is not an even-length hex string/);
  t.equal(cli(['frob']).code, 2);
});

t.test('conformance-style .data files through asm | run, every engine', async (t) => {
  const files = fs.readdirSync(DATA).filter((f) => f.endsWith('.data')).sort();
  t.ok(files.length >= 15, `${files.length} files`);
  for (const f of files) {
    const s = sections(fs.readFileSync(path.join(DATA, f), 'utf8'));
    const a = cli(['asm'], s.get('asm')!);
    t.equal(a.code, 0, `${f}: assembles`);
    const mem = (s.get('mem') ?? '').replace(/\s+/g, '');
    const engines = ['interp', 'jit', 'native'];
    const runs = await Promise.all(engines.map((engine) => cliAsync(['run', '--engine', engine, ...(mem ? [mem] : [])], a.raw)));
    for (const [k, engine] of engines.entries()) {
      const r = runs[k]!;
      if (s.has('result')) {
        t.equal(r.code, 0, `${f} (${engine}): exit 0 ${r.stderr}`);
        t.equal(BigInt(r.stdout.trim()), BigInt(s.get('result')!.trim()), `${f} (${engine}): r0`);
        t.match(r.stdout, /^0x[0-9a-f]+\n$/, 'printed like %#lx');
      } else {
        t.equal(r.code, 1, `${f} (${engine}): exit 1`);
        t.equal(r.stdout, '', 'nothing on stdout');
        t.match(r.stderr, new RegExp(s.get('error')!.trim()), `${f} (${engine}): ${r.stderr.trim()}`);
      }
    }
  }
});

t.test('disasm prints what asm reads', async (t) => {
  const src = 'mov32 %r0, 1\nldxdw %r0, [%r1+8]\njeq %r1, 0, +3\nlddw %r2, 0x1122334455667788\nlock fetch add32 [%r10-8], %r2\ncall local -2\nexit\n';
  const a = cli(['asm'], src);
  t.equal(a.raw.length, 8 * 8);
  const d = cli(['disasm', '--syntax', 'ubpf'], a.raw);
  t.equal(d.code, 0);
  t.equal(d.stdout, src);
  const file = path.join(BUILD, 'vm-cli.bin');
  fs.writeFileSync(file, a.raw);
  t.equal(cli(['disasm', '--syntax', 'ubpf', file]).stdout, src, 'from a file');
  const bad = cli(['asm'], 'mov %r0, 1\nfrob\n');
  t.equal(bad.code, 1);
  t.match(bad.stderr, /line 2: unknown instruction 'frob'/);
});

t.test('--elf: a clang-built object, .text subprograms linked', async (t) => {
  const src = path.join(FIXTURES, 'vm', 'prog.bpf.c');
  const obj = path.join(BUILD, 'vm-prog.bpf.o');
  execFileSync('clang-16', ['-O2', '-target', 'bpf', '-c', src, '-o', obj]);
  const bytes = fs.readFileSync(obj);
  let want = 7n;
  for (const b of [1, 2, 3, 250]) want = BigInt.asUintN(64, want * 31n + BigInt(b));
  for (const engine of ['interp', 'jit', 'native']) {
    const r = cli(['run', '--elf', '--engine', engine, '010203fa'], bytes);
    t.equal(r.code, 0, r.stderr);
    t.equal(BigInt(r.stdout.trim()), want, `${engine}: first program (vm/hash) with its .text callee`);
    const s = cli(['run', '--elf', '--section', 'vm/answer', '--engine', engine], bytes);
    t.equal(s.stdout, '0x2a\n', `${engine}: --section`);
  }
  const d = cli(['disasm', '--elf', '--linked', '--syntax', 'ubpf'], bytes);
  t.match(d.stdout, /call local /, 'the linked call shows in the disassembly');
  const miss = cli(['run', '--elf', '--section', 'nope'], bytes);
  t.equal(miss.code, 1);
  t.match(miss.stderr, /no section or function named 'nope' \(programs: vm\/hash, vm\/answer\)/);
  const notElf = cli(['run', '--elf'], 'hello');
  t.equal(notElf.code, 1);
  t.match(notElf.stderr, /not a usable ELF object/);
});

t.test('--budget', async (t) => {
  const a = cli(['asm'], 'mov %r0, 0\nadd %r0, 1\njlt %r0, 1000, -2\nexit\n');
  t.equal(cli(['run'], a.raw).stdout, '0x3e8\n');
  const r = cli(['run', '--budget', '100'], a.raw);
  t.equal(r.code, 1);
  t.match(r.stderr, /budget: instruction budget exhausted/);
});

t.test('a truncated program on stdin', async (t) => {
  const r = cli(['run'], new Uint8Array(13));
  t.equal(r.code, 1);
  t.match(r.stderr, /not a multiple of 8 \(truncated instruction\)/);
});
