// `wasm-bpf vm` conventions: the kernel/LLVM syntax by default (ubpf on --syntax), r0 as 0x.. and -j/-p
// JSON, -h/--help on every subcommand with aligned rows, disasm --elf on an object that references maps,
// and the helpers that need no map (time, random, pid/tgid, uid/gid, comm, trace_printk) on every engine.
import t from 'tap';
import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { BUILD, FIXTURES, ROOT, buildBpf } from './helpers.js';
import { parseElf } from '../src/object/elf.js';

const MAIN = path.join(ROOT, 'src', 'cli', 'main.ts');
// a dozen CLI starts of ~1 s each, more on a loaded machine
t.setTimeout(600_000);

interface Out {
  code: number | null;
  stdout: string;
  stderr: string;
  raw: Buffer;
  pid: number;
}

function cli(args: string[], input?: Uint8Array | string): Out {
  const r = spawnSync(process.execPath, ['--import', 'tsx', MAIN, 'vm', ...args], { input: input ?? '', timeout: 120_000 });
  return { code: r.status, stdout: r.stdout.toString('utf8'), stderr: r.stderr.toString('utf8'), raw: r.stdout, pid: r.pid ?? 0 };
}

/** as cli(), in parallel with others */
function cliAsync(args: string[], input: Uint8Array | string): Promise<Out> {
  return new Promise((resolve, reject) => {
    const c = spawn(process.execPath, ['--import', 'tsx', MAIN, 'vm', ...args], { timeout: 120_000 });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    c.stdout.on('data', (b: Buffer) => out.push(b));
    c.stderr.on('data', (b: Buffer) => err.push(b));
    c.on('error', reject);
    c.on('close', (code) => {
      const raw = Buffer.concat(out);
      resolve({ code, stdout: raw.toString('utf8'), stderr: Buffer.concat(err).toString('utf8'), raw, pid: c.pid ?? 0 });
    });
    c.stdin.end(input);
  });
}

/** the column where the descriptions of a help's option rows start: one column per help */
function descriptionColumns(help: string): Set<number> {
  const cols = new Set<number>();
  for (const line of help.split('\n')) {
    const m = /^(  (?:-\S.*?|[a-z]+))\s{2,}\S/.exec(line);
    if (m !== null && !/^  wasm-bpf/.test(line)) cols.add(line.length - line.slice(m[1]!.length).trimStart().length);
  }
  return cols;
}

t.test('-h/--help on every vm subcommand, rows aligned', async (t) => {
  const outs = await Promise.all([
    cliAsync(['--help'], ''),
    ...['run', 'asm', 'disasm'].flatMap((sub) => [cliAsync([sub, '-h'], ''), cliAsync([sub, '--help'], '')]),
  ]);
  const [top, ...subs] = outs;
  t.equal(top!.code, 0);
  t.match(top!.stdout, /Run `wasm-bpf vm COMMAND --help`/);
  t.equal(descriptionColumns(top!.stdout).size, 1, 'vm --help: one description column');
  for (const [k, sub] of ['run', 'run', 'asm', 'asm', 'disasm', 'disasm'].entries()) {
    const o = subs[k]!;
    t.equal(o.code, 0, `${sub} help exits 0`);
    t.match(o.stdout, new RegExp(`^Usage: wasm-bpf vm ${sub} `), `${sub}: its own usage`);
    t.equal(o.stderr, '');
    const cols = descriptionColumns(o.stdout);
    t.equal(cols.size, 1, `${sub}: option descriptions start in one column (${[...cols].join(', ')})`);
  }
  t.equal(subs[0]!.stdout, subs[1]!.stdout, '-h and --help print the same');
  const bad = cli(['asm', '--engine', 'jit']);
  t.equal(bad.code, 2);
  t.match(bad.stderr, /unknown option --engine for vm asm/);
  t.match(bad.stderr, /Usage: wasm-bpf vm asm/, 'the usage of that subcommand');
});

t.test('the LLVM syntax by default, the ubpf one on --syntax', async (t) => {
  const llvmText = 'w0 = 1\nr0 = *(u64 *)(r1 + 8)\nif r1 == 0x0 goto +3\ncall bpf_ktime_get_ns\nr2 = 0x1122334455667788 ll\nexit\n';
  const [a, u] = await Promise.all([cliAsync(['asm'], llvmText), cliAsync(['asm', '--syntax', 'ubpf'], 'mov32 %r0, 1\nldxdw %r0, [%r1+8]\njeq %r1, 0, +3\ncall 5\nlddw %r2, 0x1122334455667788\nexit\n')]);
  t.equal(a.code, 0, a.stderr);
  t.same([...a.raw], [...u.raw], 'the same bytes from either syntax');
  const [d, du, forced] = await Promise.all([cliAsync(['disasm'], a.raw), cliAsync(['disasm', '--syntax', 'ubpf'], a.raw), cliAsync(['asm', '--syntax', 'llvm'], 'mov32 %r0, 1\n')]);
  t.equal(d.stdout, 'w0 = 0x1\nr0 = *(u64 *)(r1 + 0x8)\nif r1 == 0x0 goto +0x3\ncall 0x5\nr2 = 0x1122334455667788 ll\nexit\n', 'disasm prints what llvm-objdump prints');
  t.equal(du.stdout, 'mov32 %r0, 1\nldxdw %r0, [%r1+8]\njeq %r1, 0, +3\ncall 5\nlddw %r2, 0x1122334455667788\nexit\n');
  t.equal(forced.code, 1);
  t.match(forced.stderr, /line 1: not an instruction of the LLVM syntax/);
  t.equal(cli(['disasm', '--syntax', 'intel']).code, 2);
});

t.test('run: r0 as 0x.., -j/--json and -p/--pretty with the exact number', async (t) => {
  const prog = 'r0 = 42\nexit\n';
  const big = 'r0 = -1 ll\nexit\n';
  const [a, b] = await Promise.all([cliAsync(['asm'], prog), cliAsync(['asm'], big)]);
  const [plain, j, p, jb] = await Promise.all([
    cliAsync(['run'], a.raw), cliAsync(['run', '-j', '--engine', 'interp'], a.raw), cliAsync(['run', '--pretty'], a.raw), cliAsync(['run', '--json'], b.raw),
  ]);
  t.equal(plain.stdout, '0x2a\n');
  t.same(JSON.parse(j.stdout), { r0: 42, hex: '0x2a', steps: 2, engine: 'interp' });
  t.same(JSON.parse(p.stdout), { r0: 42, hex: '0x2a', steps: 2, engine: 'jit' });
  t.match(p.stdout, /^\{\n  "r0": 42,\n/, 'indented');
  t.match(jb.stdout, /^\{"r0": 18446744073709551615, "hex": "0xffffffffffffffff"/, 'a u64 written exactly');
});

t.test('disasm --elf on an object that references maps and data', async (t) => {
  fs.mkdirSync(BUILD, { recursive: true });
  const obj = buildBpf(path.join(FIXTURES, 'vm', 'maps.bpf.c'), path.join(BUILD, 'vm-maps.bpf.o'));
  const bytes = fs.readFileSync(obj);
  const [d, s, r] = await Promise.all([
    cliAsync(['disasm', '--elf', obj], ''), cliAsync(['disasm', '--elf', '--section', 'tp/sched/sched_switch'], bytes), cliAsync(['run', '--elf'], bytes),
  ]);
  t.equal(d.code, 0, d.stderr);
  t.match(d.stdout, /^# section \.text\nscale:\n/);
  t.match(d.stdout, /\tr1 = 0x0 ll\t# R_BPF_64_64 counts \(map\)\n\tcall 0x1\n/);
  t.match(d.stdout, /\tr2 = 0x0 ll\t# R_BPF_64_64 total \(data\)\n/);
  t.match(d.stdout, /\tcall pc-0x1\t# R_BPF_64_32 \.text \(function\)\n/);
  const elf = parseElf(new Uint8Array(bytes));
  const code = elf.section('tp/sched/sched_switch')!.data();
  const back = cli(['asm'], s.stdout);
  t.same([...back.raw], [...code], 'the printed section reassembles to its bytes');
  const all = cli(['asm'], d.stdout);
  t.same([...all.raw], [...elf.section('.text')!.data(), ...code], 'the whole listing reassembles to .text then the program');
  t.equal(r.code, 1, 'run --elf still refuses it');
  t.match(r.stderr, /references 'counts' \(a map or global data\): run it through the userspace backend/);
});

// trace_printk("t=%llu r=%u c=%s\n", ktime_get_ns(), get_prandom_u32(), comm); r0 = uid_gid
const HELPERS_PROG = `
  call bpf_ktime_get_ns
  r6 = r0
  call bpf_get_prandom_u32
  r7 = r0
  r1 = r10
  r1 += -16
  r2 = 16
  call bpf_get_current_comm
  r1 = 0x3d7220756c6c253d ll   # "=%llu r="
  *(u64 *)(r10 - 40) = r1
  r1 = 0x0a73253d63207525 ll   # "%u c=%s\\n"
  *(u64 *)(r10 - 32) = r1
  r1 = 0
  *(u64 *)(r10 - 24) = r1
  r1 = 0x74                    # "t"
  *(u8 *)(r10 - 41) = w1
  r1 = r10
  r1 += -41
  r2 = 18
  r3 = r6
  r4 = r7
  r5 = r10
  r5 += -16
  call bpf_trace_printk
  call bpf_get_smp_processor_id
  if r0 != 0 goto fail
  call bpf_get_current_pid_tgid
  r0 >>= 32
  r8 = r0
  call bpf_get_current_uid_gid
  r0 ^= r8
  exit
fail:
  r0 = -1
  exit
`;

t.test('vm run programs call the helpers that need no map, on every engine', async (t) => {
  const a = cli(['asm'], HELPERS_PROG);
  t.equal(a.code, 0, a.stderr);
  const engines = ['interp', 'jit', 'native'];
  const before = process.hrtime.bigint();
  const runs = await Promise.all(engines.map((e) => cliAsync(['run', '-j', '--engine', e], a.raw)));
  const after = process.hrtime.bigint();
  const uidgid = (BigInt(process.getgid!()) << 32n) | BigInt(process.getuid!());
  const rands = new Set<string>();
  for (const [k, e] of engines.entries()) {
    const r = runs[k]!;
    t.equal(r.code, 0, `${e}: ${r.stderr}`);
    const json = JSON.parse(r.stdout.replace(/"r0": (\d+)/, '"r0": "$1"')) as { r0: string };
    t.equal(BigInt(json.r0), uidgid ^ BigInt(r.pid), `${e}: uid_gid and the tgid of the vm process`);
    const m = /^t=(\d+) r=(\d+) c=(.+)\n$/.exec(r.stderr);
    t.ok(m, `${e}: trace_printk on stderr: ${JSON.stringify(r.stderr)}`);
    if (m === null) continue;
    const ns = BigInt(m[1]!);
    t.ok(ns > before && ns < after, `${e}: ktime_get_ns is CLOCK_MONOTONIC (${before} < ${ns} < ${after})`);
    rands.add(m[2]!);
    t.match(m[3]!, /^[\x20-\x7e]{1,15}$/, `${e}: the comm of the process`);
  }
  t.equal(rands.size, 3, 'get_prandom_u32 differs from run to run');
});

t.test('a helper that needs a map: refused at load, naming it and what vm run offers', async (t) => {
  const a = cli(['asm'], 'call bpf_map_lookup_elem\nexit\n');
  const r = cli(['run'], a.raw);
  t.equal(r.code, 1);
  t.equal(r.stdout, '');
  t.match(r.stderr, /unknown helper 1 at pc 0 .*: bpf_map_lookup_elem \(1\) is not offered by vm run, which serves only the helpers that need no map \(ktime_get_ns, .*trace_printk\); run a program that uses maps .* through the userspace backend/);
});
