// The kernel/LLVM eBPF assembly syntax of vm.asm / vm.disasm: every instruction form printed as
// llvm-objdump-16 prints it (golden), read back from that text and from the verifier's and the brief's
// spellings, asm(disasm(b)) == b for any bytes, and line-by-line agreement with llvm-objdump-16 over every
// eBPF object built in the tree (plus an object holding every form, assembled by llvm-mc-16).
import t, { type Test } from 'tap';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { vm } from '../backends/userspace/vm/index.js';
import { disassembleLines } from '../backends/userspace/vm/asm.js';
import { disasmElf, disasmElfSections } from '../backends/userspace/vm/elf-disasm.js';
import { BUILD, FIXTURES, ROOT, buildBpf } from './helpers.js';

const llvm = (b: Uint8Array): string => vm.disasm(b, { syntax: 'llvm' });
const same = (a: Uint8Array, b: Uint8Array): boolean => a.length === b.length && a.every((x, k) => x === b[k]);

// [ubpf text (the bytes), what llvm-objdump-16 / LLVM 17+ / bpftool print]
const FORMS: [string, string][] = [
  ['add %r1, %r2', 'r1 += r2'], ['add32 %r1, -5', 'w1 += -0x5'], ['sub %r0, 7', 'r0 -= 0x7'], ['mul32 %r3, %r4', 'w3 *= w4'],
  ['div %r1, 3', 'r1 /= 0x3'], ['sdiv32 %r1, %r2', 'w1 s/= w2'], ['mod %r1, %r2', 'r1 %= r2'], ['smod %r1, -3', 'r1 s%= -0x3'],
  ['or %r1, 1', 'r1 |= 0x1'], ['and32 %r1, %r9', 'w1 &= w9'], ['lsh %r1, 3', 'r1 <<= 0x3'], ['rsh32 %r1, %r2', 'w1 >>= w2'],
  ['arsh %r1, 63', 'r1 s>>= 0x3f'], ['arsh32 %r1, %r2', 'w1 s>>= w2'], ['xor %r1, %r2', 'r1 ^= r2'], ['neg %r1', 'r1 = -r1'],
  ['neg32 %r2', 'w2 = -w2'], ['mov %r1, %r2', 'r1 = r2'], ['mov32 %r1, -1', 'w1 = -0x1'], ['mov32 %r1, %r2', 'w1 = w2'],
  ['movsx864 %r1, %r2', 'r1 = (s8)r2'], ['movsx1664 %r1, %r2', 'r1 = (s16)r2'], ['movsx3264 %r1, %r2', 'r1 = (s32)r2'],
  ['movsx832 %r1, %r2', 'w1 = (s8)w2'], ['movsx1632 %r1, %r2', 'w1 = (s16)w2'],
  ['le16 %r1', 'r1 = le16 r1'], ['le32 %r1', 'r1 = le32 r1'], ['le64 %r1', 'r1 = le64 r1'], ['be16 %r1', 'r1 = be16 r1'],
  ['be32 %r1', 'r1 = be32 r1'], ['be64 %r1', 'r1 = be64 r1'], ['bswap16 %r1', 'r1 = bswap16 r1'], ['bswap32 %r1', 'r1 = bswap32 r1'],
  ['bswap64 %r1', 'r1 = bswap64 r1'],
  ['lddw %r1, 0x123456789abcdef0', 'r1 = 0x123456789abcdef0 ll'], ['lddw %r1, map_by_fd(3)', 'r1 = map[fd:3] ll'],
  ['lddw %r1, map_val(3)+16', 'r1 = map[fd:3][0]+0x10 ll'], ['lddw %r1, map_by_idx(1)', 'r1 = map[idx:1] ll'],
  ['lddw %r1, map_val_idx(2)-8', 'r1 = map[idx:2][0]-0x8 ll'], ['lddw %r1, var_addr(5)', 'r1 = btf_var[5] ll'],
  ['lddw %r1, code_addr(+1)', 'r1 = code[pc+0x1] ll'],
  ['ldxb %r0, [%r1+0]', 'r0 = *(u8 *)(r1 + 0x0)'], ['ldxh %r0, [%r1-2]', 'r0 = *(u16 *)(r1 - 0x2)'],
  ['ldxw %r0, [%r10-4]', 'r0 = *(u32 *)(r10 - 0x4)'], ['ldxdw %r0, [%r1+8]', 'r0 = *(u64 *)(r1 + 0x8)'],
  ['ldxsb %r0, [%r1+1]', 'r0 = *(s8 *)(r1 + 0x1)'], ['ldxsh %r0, [%r1+2]', 'r0 = *(s16 *)(r1 + 0x2)'],
  ['ldxsw %r0, [%r1+4]', 'r0 = *(s32 *)(r1 + 0x4)'],
  ['stb [%r1+0], 1', '*(u8 *)(r1 + 0x0) = 0x1'], ['sth [%r1+2], -1', '*(u16 *)(r1 + 0x2) = -0x1'],
  ['stw [%r10-8], 7', '*(u32 *)(r10 - 0x8) = 0x7'], ['stdw [%r10-8], -7', '*(u64 *)(r10 - 0x8) = -0x7'],
  ['stxb [%r1+0], %r2', '*(u8 *)(r1 + 0x0) = r2'], ['stxh [%r1+0], %r2', '*(u16 *)(r1 + 0x0) = r2'],
  ['stxw [%r1+0], %r2', '*(u32 *)(r1 + 0x0) = r2'], ['stxdw [%r10-8], %r2', '*(u64 *)(r10 - 0x8) = r2'],
  ['lock add [%r1+0], %r2', 'lock *(u64 *)(r1 + 0x0) += r2'], ['lock add32 [%r1+0], %r2', 'lock *(u32 *)(r1 + 0x0) += r2'],
  ['lock or [%r1+0], %r2', 'lock *(u64 *)(r1 + 0x0) |= r2'], ['lock and32 [%r1+0], %r2', 'lock *(u32 *)(r1 + 0x0) &= w2'],
  ['lock xor [%r1+0], %r2', 'lock *(u64 *)(r1 + 0x0) ^= r2'],
  ['lock fetch add [%r1+0], %r2', 'r2 = atomic_fetch_add((u64 *)(r1 + 0x0), r2)'],
  ['lock fetch or32 [%r1+0], %r2', 'w2 = atomic_fetch_or((u32 *)(r1 + 0x0), w2)'],
  ['lock fetch and [%r1+0], %r2', 'r2 = atomic_fetch_and((u64 *)(r1 + 0x0), r2)'],
  ['lock fetch xor32 [%r1+0], %r2', 'w2 = atomic_fetch_xor((u32 *)(r1 + 0x0), w2)'],
  ['lock xchg [%r1+0], %r2', 'r2 = xchg_64(r1 + 0x0, r2)'], ['lock xchg32 [%r1+0], %r2', 'w2 = xchg32_32(r1 + 0x0, w2)'],
  ['lock cmpxchg [%r1+0], %r2', 'r0 = cmpxchg_64(r1 + 0x0, r0, r2)'], ['lock cmpxchg32 [%r1+0], %r2', 'w0 = cmpxchg32_32(r1 + 0x0, w0, w2)'],
  ['ldabsb 1', 'r0 = *(u8 *)skb[0x1]'], ['ldabsh 2', 'r0 = *(u16 *)skb[0x2]'], ['ldabsw 3', 'r0 = *(u32 *)skb[0x3]'],
  ['ldindb %r1, 0', 'r0 = *(u8 *)skb[r1]'], ['ldindh %r2, -2', 'r0 = *(u16 *)skb[r2 - 0x2]'], ['ldindw %r3, 4', 'r0 = *(u32 *)skb[r3 + 0x4]'],
  ['ja +1', 'goto +0x1'], ['ja -2', 'goto -0x2'], ['ja32 +100000', 'gotol +0x186a0'],
  ['jeq %r1, 0, +3', 'if r1 == 0x0 goto +0x3'], ['jeq %r1, %r2, -1', 'if r1 == r2 goto -0x1'], ['jgt32 %r1, 5, +0', 'if w1 > 0x5 goto +0x0'],
  ['jge %r1, %r2, +1', 'if r1 >= r2 goto +0x1'], ['jset %r1, 8, +1', 'if r1 & 0x8 goto +0x1'], ['jset32 %r1, %r2, +1', 'if w1 & w2 goto +0x1'],
  ['jne %r1, -1, +1', 'if r1 != -0x1 goto +0x1'], ['jsgt %r1, %r2, +1', 'if r1 s> r2 goto +0x1'], ['jsge32 %r1, 3, +1', 'if w1 s>= 0x3 goto +0x1'],
  ['jlt %r1, %r2, +1', 'if r1 < r2 goto +0x1'], ['jle32 %r1, 9, +1', 'if w1 <= 0x9 goto +0x1'], ['jslt %r1, %r2, +1', 'if r1 s< r2 goto +0x1'],
  ['jsle32 %r1, -9, +1', 'if w1 s<= -0x9 goto +0x1'],
  ['call 1', 'call 0x1'], ['call local +2', 'call pc+0x2'], ['call local -3', 'call pc-0x3'], ['call btf 99', 'call kfunc 0x63'],
  ['callx %r3', 'callx r3'], ['exit', 'exit'], ['mov %r0, 2147483647', 'r0 = 0x7fffffff'], ['mov %r0, -2147483648', 'r0 = -0x80000000'],
  ['add %r10, -8', 'r10 += -0x8'], ['and %r1, 65535', 'r1 &= 0xffff'], ['.quad 0x00000000000000ff', '.quad 0x00000000000000ff'],
];

t.test('every instruction form: printed as llvm-objdump prints it, read back to the same bytes', async (t) => {
  for (const [ubpf, text] of FORMS) {
    const b = vm.asm(ubpf);
    t.equal(llvm(b), `${text}\n`, `${ubpf} -> ${text}`);
    t.ok(same(vm.asm(text), b), `asm('${text}') == asm('${ubpf}')`);
    t.ok(same(vm.asm(text, { syntax: 'llvm' }), b), `--syntax llvm reads '${text}'`);
  }
  const all = vm.asm(FORMS.map(([u]) => u).join('\n'));
  t.equal(llvm(all), FORMS.map(([, l]) => l).join('\n') + '\n', 'a whole program');
  t.ok(same(vm.asm(llvm(all)), all), 'asm(disasm(b)) == b for the whole program');
  t.equal(vm.disasm(all), FORMS.map(([u]) => u).join('\n') + '\n', 'the ubpf syntax is still the library default');
});

t.test('the spellings of the brief, the verifier log and LLVM read to the right bytes', async (t) => {
  const cases: [string, string][] = [
    ['w0 = 1', 'mov32 %r0, 1'], ['r0 = *(u64 *)(r1 + 8)', 'ldxdw %r0, [%r1+8]'], ['*(u32 *)(r10 - 4) = w1', 'stxw [%r10-4], %r1'],
    ['*(u32 *)(r10 -4) = r1', 'stxw [%r10-4], %r1'], ['*(u8 *)(r1 + 0) = 7', 'stb [%r1+0], 7'], ['if r1 == 0x0 goto +3', 'jeq %r1, 0, +3'],
    ['if r1 == 0x0 goto pc+3', 'jeq %r1, 0, +3'], ['if w1 s> w2 goto -2', 'jsgt32 %r1, %r2, -2'], ['goto +3', 'ja +3'],
    ['goto +0x3 <LBB0_2>', 'ja +3'], ['gotol +70000', 'ja32 +70000'], ['call 1', 'call 1'], ['call bpf_map_lookup_elem', 'call 1'],
    ['call map_lookup_elem', 'call 1'], ['call bpf_trace_printk#6', 'call 6'], ['call pc+2', 'call local +2'], ['callx r1', 'callx %r1'],
    ['exit', 'exit'], ['r1 = 0x1122334455667788 ll', 'lddw %r1, 0x1122334455667788'], ['r1 = -1 ll', 'lddw %r1, 0xffffffffffffffff'],
    ['r1 = map[id:5]', 'lddw %r1, map_by_fd(5)'], ['r1 = map_fd(5)', 'lddw %r1, map_by_fd(5)'], ['r1 = map[fd:5] ll', 'lddw %r1, map_by_fd(5)'],
    ['r1 = map[id:5][0]+8', 'lddw %r1, map_val(5)+8'], ['r1 = map_value(5)+8 ll', 'lddw %r1, map_val(5)+8'],
    ['r1 = map[idx:0]', 'lddw %r1, map_by_idx(0)'], ['r1 = map[idx:1][0]+4 ll', 'lddw %r1, map_val_idx(1)+4'],
    ['r0 += r1', 'add %r0, %r1'], ['w0 s/= w1', 'sdiv32 %r0, %r1'], ['r0 s%= 3', 'smod %r0, 3'], ['r1 = -r1', 'neg %r1'],
    ['r1 = be16 r1', 'be16 %r1'], ['r1 = le32 r1', 'le32 %r1'], ['r1 = bswap64 r1', 'bswap64 %r1'], ['r0 = (s8)r1', 'movsx864 %r0, %r1'],
    ['r0 = *(s16 *)(r1 + 2)', 'ldxsh %r0, [%r1+2]'], ['lock *(u64 *)(r1 + 0) += r2', 'lock add [%r1+0], %r2'],
    ['lock *(u32 *)(r1 + 0) += w2', 'lock add32 [%r1+0], %r2'], ['r0 = atomic_fetch_add((u64 *)(r1 + 0), r0)', 'lock fetch add [%r1+0], %r0'],
    ['r0 = xchg_64(r1 + 0, r0)', 'lock xchg [%r1+0], %r0'], ['r0 = cmpxchg_64(r1 + 0, r0, r2)', 'lock cmpxchg [%r1+0], %r2'],
    ['r0 = *(u8 *)skb[12]', 'ldabsb 12'], ['r0 = *(u16 *)skb[r1 + 4]', 'ldindh %r1, 4'], ['r1 = 0xffffffff', 'mov %r1, -1'],
    ['call kfunc 7', 'call btf 7'],
  ];
  for (const [text, ubpf] of cases) t.same([...vm.asm(text)], [...vm.asm(ubpf)], text);
});

t.test('labels, comments and both syntaxes mixed in one file', async (t) => {
  const src = [
    '; a verifier-log comment', 'r0 = 0            # count', 'r1 = 10', 'loop:', '  r0 += r1', '  r1 -= 1', '  if r1 != 0 goto loop',
    '  mov %r2, 5', '  r1 = r0', '  call sub', '  gotol done', 'done: exit', 'sub: w0 = w1', 'exit',
  ].join('\n');
  const b = vm.asm(src);
  t.equal(vm.run(b), 55n, 'sum 10..1');
  t.equal(
    llvm(b),
    ['r0 = 0x0', 'r1 = 0xa', 'r0 += r1', 'r1 += -0x1', 'if r1 != 0x0 goto -0x3', 'r2 = 0x5', 'r1 = r0', 'call pc+0x2', 'gotol +0x0', 'exit', 'w0 = w1', 'exit']
      .join('\n')
      .replace('r1 += -0x1', 'r1 -= 0x1') + '\n',
  );
  t.throws(() => vm.asm('mov %r0, 1', { syntax: 'llvm' }), /line 1: not an instruction of the LLVM syntax: 'mov %r0, 1'/, '--syntax llvm refuses ubpf');
  t.throws(() => vm.asm('w0 = 1', { syntax: 'ubpf' }), /line 1: unknown instruction 'w0'/, '--syntax ubpf refuses llvm');
  t.throws(() => vm.asm('w1 += r2'), /both registers must be r or both w/);
  t.throws(() => vm.asm('r1 = 0x100000000'), /immediate out of 32-bit range/, 'a wide constant needs ll');
  t.throws(() => vm.asm('r1 = be16 r2'), /byte swap works in place/);
  t.throws(() => vm.asm('r2 = xchg_64(r1 + 0, r3)'), /returns into its source register/);
  t.throws(() => vm.asm('if r1 == 0 goto nowhere'), /undefined label 'nowhere'/);
  t.throws(() => vm.asm('r1 = *(u64 *)(r11 + 0)'), /bad register 'r11'/);
  t.throws(() => vm.asm('call 1 2'), /line 1:/);
  t.throws(() => vm.asm('exit\nr0 = frob'), { name: 'AsmError', code: 'USAGE', line: 2 }, 'an AsmError with a code and the line');
});

t.test('asm(disasm(b)) == b for any bytes, in the LLVM syntax', async (t) => {
  let seed = 0x1234567;
  const rnd = (): number => {
    seed ^= seed << 13;
    seed ^= seed >>> 17;
    seed ^= seed << 5;
    return seed >>> 0;
  };
  // instructions of every form with fields changed at random (most stay instructions, some become .quad),
  // and now and then plain junk
  const forms = FORMS.map(([u]) => vm.asm(u));
  let insns = 0;
  let raw = 0;
  for (let round = 0; round < 300; round++) {
    const parts: Uint8Array[] = [];
    const n = 1 + (rnd() % 24);
    for (let k = 0; k < n; k++) {
      const b = forms[rnd() % forms.length]!.slice();
      const dv = new DataView(b.buffer);
      const r = rnd() % 8;
      if (r === 0) b[1] = (rnd() % 11) | ((rnd() % 11) << 4);
      else if (r === 1 && dv.getInt16(2, true) !== 0) dv.setInt16(2, rnd() & 0xffff, true);
      else if (r === 2 && dv.getInt32(4, true) !== 0) dv.setInt32(4, rnd() | 0, true);
      else if (r === 3) b[(rnd() % 8)] = rnd() & 0xff;
      else if (r === 4) b.set([...b].map(() => rnd() & 0xff));
      parts.push(b);
    }
    if (round % 7 === 0) parts.push(new Uint8Array([1, 2, 3]));
    const b = new Uint8Array(parts.reduce((x, p) => x + p.length, 0));
    parts.reduce((at, p) => (b.set(p, at), at + p.length), 0);
    const text = llvm(b);
    for (const l of text.split('\n')) if (l.startsWith('.quad')) raw++; else if (l !== '') insns++;
    if (!same(vm.asm(text), b)) t.fail(`round ${round}:\n${text}`);
    if (!same(vm.asm(text, { syntax: 'llvm' }), b)) t.fail(`round ${round} (--syntax llvm):\n${text}`);
    if (llvm(vm.asm(text)) !== text) t.fail(`round ${round}: disasm(asm(x)) != x`);
  }
  t.ok(insns > 1000 && raw > 100, `${insns} instructions and ${raw} raw slots round-tripped`);
});

// ---- llvm-objdump-16 agreement ---------------------------------------------------------------------------

/** llvm-objdump-16 -d, per section, per instruction index; the trailing `<LBB0_2>` dropped */
function objdump(file: string): Map<string, Map<number, string>> {
  const out = new Map<string, Map<number, string>>();
  let sec: Map<number, string> | undefined;
  for (const line of execFileSync('llvm-objdump-16', ['-d', '--no-show-raw-insn', file], { encoding: 'utf8', maxBuffer: 64 << 20 }).split('\n')) {
    const s = /^Disassembly of section (.*):$/.exec(line);
    if (s !== null) out.set(s[1]!, (sec = new Map()));
    const m = /^\s*(\d+):\s+(.*)$/.exec(line);
    if (m !== null && sec !== undefined) sec.set(Number(m[1]), m[2]!.replace(/\s+<[^<>]*>\s*$/, '').replace(/\s+/g, ' ').trim());
  }
  return out;
}

/**
 * The forms README documents as printed differently from llvm-objdump-16: bpf-to-bpf calls (`call pc+N`
 * where LLVM prints `call N`, the same as a helper; `call kfunc N` likewise), the v4 instructions LLVM 16 has none for (LLVM 17+
 * forms), lddw pseudo sources (bpftool's map[...] where LLVM prints `ld_pseudo`), LD_IND's offset.
 */
function documented(ours: string, theirs: string): string | undefined {
  if (ours.startsWith('call pc') && theirs === ours.replace(/^call pc\+?/, 'call ')) return 'call pc';
  if (theirs === '<unknown>' || theirs === '') return 'v4 (LLVM 17+)';
  if (/ s[/%]= /.test(ours) && theirs === ours.replace(' s', ' ')) return 'v4 (LLVM 17+)';
  if (/ = \(s(8|16|32)\)/.test(ours) && theirs === ours.replace(/\(s(8|16|32)\)/, '')) return 'v4 (LLVM 17+)';
  if (ours.startsWith('call kfunc ') && theirs === ours.replace('kfunc ', '')) return 'call kfunc';
  if (theirs.startsWith('ld_pseudo') && / = (map|btf_var|code)\[/.test(ours)) return 'lddw pseudo';
  if (/skb\[r\d+ [+-] /.test(ours) && theirs === ours.replace(/ [+-] 0x[0-9a-f]+\]/, ']')) return 'ld_ind offset';
  return undefined;
}

function agree(t: Test, file: string): { insns: number; differences: Map<string, number> } {
  const ours = disasmElfSections(new Uint8Array(fs.readFileSync(file)));
  const theirs = objdump(file);
  const differences = new Map<string, number>();
  let insns = 0;
  const bad: string[] = [];
  for (const s of ours) {
    const th = theirs.get(s.name);
    if (th === undefined) {
      t.fail(`${file}: llvm-objdump shows no section ${s.name}`);
      continue;
    }
    const missing = [...th.keys()].filter((pc) => !s.lines.some((l) => l.pc === pc));
    if (missing.length > 0) bad.push(`${s.name}: llvm-objdump has instructions at ${missing.join(', ')} that we do not`);
    for (const l of s.lines) {
      insns++;
      const w = th.get(l.pc);
      if (w === l.text) continue;
      const why = w === undefined ? undefined : documented(l.text, w);
      if (why === undefined) bad.push(`${s.name} ${l.pc}: ours '${l.text}', llvm-objdump '${w}'`);
      else differences.set(why, (differences.get(why) ?? 0) + 1);
    }
  }
  t.same(bad, [], `${path.relative(ROOT, file)}: ${insns} instructions agree with llvm-objdump-16`);
  return { insns, differences };
}

t.test('disasm agrees with llvm-objdump-16 on every eBPF object built in the tree', async (t) => {
  fs.mkdirSync(BUILD, { recursive: true });
  // objects of our own, so that the set is never empty: map and data relocations, .text calls, alu32 (-mcpu=v3)
  const own = [
    buildBpf(path.join(FIXTURES, 'vm', 'maps.bpf.c'), path.join(BUILD, 'vm-maps.bpf.o')),
    buildBpf(path.join(FIXTURES, 'vm', 'maps.bpf.c'), path.join(BUILD, 'vm-maps-v3.bpf.o'), ['-mcpu=v3']),
    buildBpf(path.join(FIXTURES, 'vm', 'prog.bpf.c'), path.join(BUILD, 'vm-prog-v3.bpf.o'), ['-mcpu=v3']),
    // the benchmark kernels (bench/vm), plain and alu32
    buildBpf(path.join(ROOT, 'bench', 'vm', 'kernels.c'), path.join(BUILD, 'vm-kernels.bpf.o'), []),
    buildBpf(path.join(ROOT, 'bench', 'vm', 'kernels.c'), path.join(BUILD, 'vm-kernels-v3.bpf.o'), ['-mcpu=v3']),
  ];
  const found: string[] = [];
  const walk = (dir: string): void => {
    if (!fs.existsSync(dir)) return;
    for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
      const p = path.join(dir, e.name);
      if (e.isDirectory()) walk(p);
      else if (e.name.endsWith('.bpf.o')) found.push(p);
    }
  };
  for (const d of ['matrix/build', 'test/build', 'bench']) walk(path.join(ROOT, d));
  const files = [...new Set([...own, ...found])].sort();
  let total = 0;
  let objects = 0;
  for (const f of files) {
    const code = disasmElfSectionsOrNone(f);
    if (!code) continue;
    objects++;
    const r = agree(t, f);
    total += r.insns;
    t.same([...r.differences.keys()].filter((k) => k !== 'call pc'), [], `${path.relative(ROOT, f)}: no difference but bpf-to-bpf calls`);
  }
  t.ok(objects >= 3 && total > 100, `${objects} objects, ${total} instructions`);
});

function disasmElfSectionsOrNone(file: string): boolean {
  try {
    disasmElfSections(new Uint8Array(fs.readFileSync(file)));
    return true;
  } catch (e) {
    if (/no code section/.test((e as Error).message)) return false;
    throw e;
  }
}

t.test('every form against llvm-objdump-16 (an object assembled by llvm-mc-16 from raw bytes)', async (t) => {
  const bytes = vm.asm(FORMS.map(([u]) => u).join('\n'));
  const s = path.join(BUILD, 'vm-forms.s');
  const o = path.join(BUILD, 'vm-forms.o');
  const lines = ['.text'];
  for (let k = 0; k < bytes.length; k += 8) lines.push(`.byte ${[...bytes.subarray(k, k + 8)].map((x) => `0x${x.toString(16)}`).join(', ')}`);
  fs.writeFileSync(s, lines.join('\n') + '\n');
  execFileSync('llvm-mc-16', ['-triple=bpfel', '-filetype=obj', s, '-o', o]);
  const r = agree(t, o);
  t.same(Object.fromEntries(r.differences), { 'v4 (LLVM 17+)': 26, 'lddw pseudo': 6, 'ld_ind offset': 2, 'call pc': 2, 'call kfunc': 1 }, 'only the documented differences');
});

t.test('disasm --elf text: labels and relocation comments, reassembling to the section bytes', async (t) => {
  const obj = buildBpf(path.join(FIXTURES, 'vm', 'maps.bpf.c'), path.join(BUILD, 'vm-maps.bpf.o'));
  const bytes = new Uint8Array(fs.readFileSync(obj));
  const text = disasmElf(bytes);
  t.match(text, /^# section \.text\nscale:\n/m);
  t.match(text, /# section tp\/sched\/sched_switch\non_switch:\n/);
  t.match(text, /\tr1 = 0x0 ll\t# R_BPF_64_64 counts \(map\)\n/);
  t.match(text, /\tr1 = 0x0 ll\t# R_BPF_64_64 factor \(data\)\n/);
  t.match(text, /\tcall pc-0x1\t# R_BPF_64_32 \.text \(function\)\n/);
  const sec = disasmElf(bytes, { section: 'tp/sched/sched_switch' });
  t.notMatch(sec, /scale:/);
  const { parseElf } = await import('../src/object/elf.js');
  const data = parseElf(bytes).section('tp/sched/sched_switch')!.data();
  t.ok(same(vm.asm(sec), data), 'the printed section reassembles to its bytes');
  t.ok(same(vm.asm(disasmElf(bytes, { section: 'tp/sched/sched_switch', syntax: 'ubpf' })), data), 'also in the ubpf syntax');
  t.throws(() => disasmElf(bytes, { section: 'nope' }), /no code section named 'nope' \(code sections: \.text, tp\/sched\/sched_switch\)/);
  t.equal(disassembleLines(vm.asm('r1 = 1 ll\nexit'), { syntax: 'llvm' }).map((l) => l.pc).join(','), '0,2');
});

t.test('llvm-objdump and verifier-log listings assemble back to their bytes', async (t) => {
  const objs = [
    buildBpf(path.join(FIXTURES, 'vm', 'maps.bpf.c'), path.join(BUILD, 'vm-maps.bpf.o')),
    buildBpf(path.join(FIXTURES, 'vm', 'maps.bpf.c'), path.join(BUILD, 'vm-maps-v3.bpf.o'), ['-mcpu=v3']),
    buildBpf(path.join(FIXTURES, 'vm', 'prog.bpf.c'), path.join(BUILD, 'vm-prog-v3.bpf.o'), ['-mcpu=v3']),
  ];
  const { parseElf, SHF } = await import('../src/object/elf.js');
  for (const f of objs) {
    const elf = parseElf(new Uint8Array(fs.readFileSync(f)));
    const secs = elf.sections.filter((s) => (s.flags & SHF.EXECINSTR) !== 0 && s.size > 0);
    const want = new Uint8Array(secs.reduce((n, s) => n + s.size, 0));
    secs.reduce((at, s) => (want.set(s.data(), at), at + s.size), 0);
    const name = path.basename(f);
    for (const flags of [['-d'], ['-dr']]) {
      const text = execFileSync('llvm-objdump-16', [...flags, f], { encoding: 'utf8' });
      t.ok(same(vm.asm(text), want), `${name}: llvm-objdump-16 ${flags.join(' ')} | vm asm gives the code sections' bytes`);
    }
    // without the raw bytes, a bpf-to-bpf call reads as llvm prints it: `call -0x1`, a helper call
    const bare = vm.asm(execFileSync('llvm-objdump-16', ['-d', '--no-show-raw-insn', f], { encoding: 'utf8' }));
    const diff: number[] = [];
    for (let k = 0; k < want.length; k += 8) if (!same(bare.subarray(k, k + 8), want.subarray(k, k + 8))) diff.push(k / 8);
    t.ok(diff.every((k) => want[k * 8] === 0x85 && want[k * 8 + 1]! >> 4 === 1 && bare[k * 8 + 1]! >> 4 === 0), `${name}: --no-show-raw-insn differs only at bpf-to-bpf calls (${diff.join(', ')})`);
    t.ok(same(vm.asm(disasmElf(new Uint8Array(fs.readFileSync(f)))), want), `${name}: vm disasm --elf | vm asm too`);
  }
  const log = '0: (b7) r0 = 1\n; return x + 1;\n1: (07) r0 += 1\n2: (15) if r0 == 0x2 goto pc+1\n3: (b7) r0 = 0\n4: (95) exit\n';
  t.ok(same(vm.asm(log), vm.asm('mov %r0, 1\nadd %r0, 1\njeq %r0, 2, +1\nmov %r0, 0\nexit')), 'a verifier log');
  t.equal(vm.run(vm.asm(log)), 2n);
});
