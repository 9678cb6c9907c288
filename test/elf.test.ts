// Tests for src/object/elf.ts: parsing clang-built eBPF objects (checked against llvm-readelf),
// big-endian objects, malformed input (only ElfError may escape) and findElfObjects.
import t, { type Test } from 'tap';
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { EM_BPF, ElfError, findElfObjects, parseElf, SHT, STB, STT } from '../src/object/elf.js';

const dir = mkdtempSync(join(tmpdir(), 'wasm-bpf-elf-'));
t.teardown(() => rmSync(dir, { recursive: true, force: true }));

/** -I for <asm/types.h> (Debian keeps it under the multiarch include directory). */
function multiarchInclude(): string[] {
  const d = readdirSync('/usr/include').find((e) => e.endsWith('-linux-gnu') && existsSync(`/usr/include/${e}/asm/types.h`));
  return d ? [`-I/usr/include/${d}`] : [];
}

function compileBpf(name: string, src: string, target = 'bpf'): Uint8Array {
  const c = join(dir, `${name}.bpf.c`);
  const o = join(dir, `${name}.bpf.o`);
  writeFileSync(c, src);
  execFileSync('clang-16', ['-g', '-O2', '-target', target, ...multiarchInclude(), '-c', c, '-o', o]);
  return new Uint8Array(readFileSync(o));
}

const SRC = `
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 64);
	__type(key, __u32);
	__type(value, __u64);
} counts SEC(".maps");
struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 4096);
} rb SEC(".maps");
const volatile int level = 1;
int counter = 2;
__u64 hits;
SEC("tp/sched/sched_process_exec")
int handle_exec(void *ctx)
{
	__u32 k = 0;
	__u64 v = level + counter;
	bpf_map_update_elem(&counts, &k, &v, BPF_ANY);
	hits++;
	return 0;
}
SEC("tp/sched/sched_process_exit")
int handle_exit(void *ctx)
{
	void *e = bpf_ringbuf_reserve(&rb, 8, 0);
	if (e)
		bpf_ringbuf_submit(e, 0);
	return 0;
}
char LICENSE[] SEC("license") = "GPL";
`;

const obj = compileBpf('simple', SRC);
const objPath = join(dir, 'simple.bpf.o');

/** Section index, name, offset and size as printed by llvm-readelf -S. */
function readelfSections(path: string): { index: number; name: string; offset: number; size: number }[] {
  const out = execFileSync('llvm-readelf-16', ['-S', '--wide', path], { encoding: 'utf8' });
  const rows: { index: number; name: string; offset: number; size: number }[] = [];
  for (const line of out.split('\n')) {
    const m = /^\s*\[\s*(\d+)\]\s+(\S+)\s+(\S+)\s+([0-9a-f]{16})\s+([0-9a-f]+)\s+([0-9a-f]+)/.exec(line);
    if (m && m[1] !== '0') rows.push({ index: Number(m[1]), name: m[2]!, offset: parseInt(m[5]!, 16), size: parseInt(m[6]!, 16) });
  }
  return rows;
}

t.test('sections match llvm-readelf -S', async (t) => {
  const elf = parseElf(obj);
  t.equal(elf.machine, EM_BPF);
  t.equal(elf.littleEndian, true);
  t.equal(elf.type, 1, 'ET_REL');
  const expected = readelfSections(objPath);
  t.ok(expected.length > 10, 'readelf listed the sections');
  t.equal(elf.sections.length, expected.length + 1);
  for (const row of expected) {
    const s = elf.sections[row.index]!;
    t.same({ name: s.name, offset: s.offset, size: s.size }, { name: row.name, offset: row.offset, size: row.size }, `section ${row.index}`);
  }
  const rodata = elf.section('.rodata')!;
  t.equal(rodata.data().length, rodata.size);
  t.equal(elf.section('.bss')!.type, SHT.NOBITS);
  t.equal(elf.section('.bss')!.data().length, 0, 'NOBITS has no file bytes');
  t.equal(elf.section('nope'), undefined);
});

t.test('symbols and relocations', async (t) => {
  const elf = parseElf(obj);
  const sym = (n: string) => elf.symbols.find((s) => s.name === n)!;
  const exec = sym('handle_exec');
  t.equal(exec.type, STT.FUNC);
  t.equal(exec.bind, STB.GLOBAL);
  t.equal(elf.sections[exec.shndx]!.name, 'tp/sched/sched_process_exec');
  t.equal(elf.sections[sym('level').shndx]!.name, '.rodata');
  t.equal(sym('counts').type, STT.OBJECT);
  t.equal(elf.sections[sym('rb').shndx]!.name, '.maps');

  const readelf = execFileSync('llvm-readelf-16', ['-s', '--wide', objPath], { encoding: 'utf8' });
  const count = Number(/contains (\d+) entries/.exec(readelf)![1]);
  t.equal(elf.symbols.length, count, 'symbol count matches llvm-readelf -s');

  const exitRel = elf.relocations.find((r) => elf.sections[r.target]!.name === 'tp/sched/sched_process_exit')!;
  t.ok(exitRel, 'relocations for handle_exit');
  t.equal(exitRel.section.name, '.reltp/sched/sched_process_exit');
  t.ok(exitRel.entries.some((e) => elf.symbols[e.sym]!.name === 'rb'), 'relocation against map rb');
  const execRel = elf.relocations.find((r) => elf.sections[r.target]!.name === 'tp/sched/sched_process_exec')!;
  const targets = execRel.entries.map((e) => elf.symbols[e.sym]!.name);
  t.ok(targets.includes('counts'), 'relocation against map counts');
  t.ok(execRel.entries.every((e) => e.type === 1 && e.addend === 0n), 'R_BPF_64_64, no addend');
});

t.test('big-endian objects', async (t) => {
  const be = compileBpf('simple_be', SRC, 'bpfeb');
  const elf = parseElf(be);
  t.equal(elf.littleEndian, false);
  t.equal(elf.machine, EM_BPF);
  const le = parseElf(obj);
  t.same(elf.sections.map((s) => s.name), le.sections.map((s) => s.name));
  const expected = readelfSections(join(dir, 'simple_be.bpf.o'));
  for (const row of expected) t.equal(elf.sections[row.index]!.offset, row.offset, `section ${row.index} offset`);
  // Same symbols (the STT_FILE one names the source file, which differs).
  const syms = (e: typeof elf) => e.symbols.filter((s) => s.type !== STT.FILE).map((s) => [s.name, s.value, s.type, s.bind, s.shndx]);
  t.same(syms(elf), syms(le));
  t.equal(elf.relocations.length, le.relocations.length);
});

/** Runs fn and fails unless it returns normally or throws ElfError. */
function onlyElfError(t: Tap, fn: () => void, what: string): boolean {
  try {
    fn();
    return true;
  } catch (e) {
    if (!(e instanceof ElfError)) {
      t.fail(`${what}: ${e instanceof Error ? `${e.name}: ${e.message}` : String(e)}`);
      return false;
    }
    if (e.code !== 'ELF_MALFORMED' || !e.message) t.fail(`${what}: bad ElfError`);
    return false;
  }
}
type Tap = Test;

/** Little-endian patch of a copy. */
function patched(src: Uint8Array, at: number, bytes: number, value: number | bigint): Uint8Array {
  const b = new Uint8Array(src);
  const dv = new DataView(b.buffer);
  if (bytes === 2) dv.setUint16(at, Number(value), true);
  else if (bytes === 4) dv.setUint32(at, Number(value), true);
  else dv.setBigUint64(at, BigInt(value), true);
  return b;
}

t.test('malformed input throws ElfError with a useful message', async (t) => {
  const elf = parseElf(obj);
  const shoff = Number(new DataView(obj.buffer, obj.byteOffset).getBigUint64(40, true));
  const sh = (i: number) => shoff + i * 64;
  const cases: [string, Uint8Array, RegExp][] = [
    ['empty', new Uint8Array(0), /too short/],
    ['garbage', new TextEncoder().encode('hello world, this is not an ELF file at all.....................'), /bad magic/],
    ['ELF32', (() => { const b = new Uint8Array(obj); b[4] = 1; return b; })(), /class/],
    ['bad data encoding', (() => { const b = new Uint8Array(obj); b[5] = 7; return b; })(), /encoding/],
    ['header only', obj.subarray(0, 64), /section header table/],
    ['section past end', patched(obj, sh(5) + 24, 8, 0xfffff), /section 5 extends past end of file \(offset 0xfffff, size \d+/],
    ['huge size', patched(obj, sh(5) + 32, 8, 0xffffffffffffffffn), /too large/],
    ['bad shentsize', patched(obj, 58, 2, 40), /e_shentsize/],
    ['too many sections', patched(obj, 60, 2, 0xfff0), /section header table extends past end/],
    ['bad shstrndx', patched(obj, 62, 2, 0xfe00), /e_shstrndx/],
    ['name outside strtab', patched(obj, sh(3), 4, 0xffffff), /outside the string table/],
    [
      'symtab entsize',
      patched(obj, sh(elf.sections.findIndex((s) => s.type === SHT.SYMTAB)) + 56, 8, 7),
      /symbol table entry size/,
    ],
    [
      'relocation symbol out of range',
      (() => {
        const rel = elf.relocations[0]!.section;
        return patched(obj, rel.offset + 12, 4, 0xffff);
      })(),
      /refers to symbol 65535/,
    ],
  ];
  for (const [what, bytes, re] of cases) {
    t.throws(() => parseElf(bytes), { name: 'ElfError', code: 'ELF_MALFORMED', message: re }, what);
  }
});

t.test('fuzz: truncation and byte flips only ever throw ElfError', async (t) => {
  let ok = 0;
  let failed = 0;
  for (let len = 0; len < obj.length; len += len < 256 ? 1 : 37) {
    if (onlyElfError(t, () => parseElf(obj.subarray(0, len)), `truncated to ${len}`)) ok++;
    else failed++;
  }
  t.equal(ok, 0, 'every truncation is rejected (section headers sit at the end)');
  // xorshift PRNG: deterministic runs.
  let seed = 0x2545f491;
  const rand = (n: number) => {
    seed ^= seed << 13;
    seed ^= seed >>> 17;
    seed ^= seed << 5;
    return (seed >>> 0) % n;
  };
  const hot = [...Array(64).keys()];
  const shoff = Number(new DataView(obj.buffer, obj.byteOffset).getBigUint64(40, true));
  for (let i = shoff; i < obj.length; i++) hot.push(i);
  for (let iter = 0; iter < 3000; iter++) {
    const b = new Uint8Array(obj);
    const flips = 1 + rand(4);
    for (let k = 0; k < flips; k++) {
      // Mostly hit the headers, where the structure lives.
      const at = rand(3) === 0 ? rand(b.length) : hot[rand(hot.length)]!;
      b[at] = rand(256);
    }
    const parsedOk = onlyElfError(t, () => {
      const e = parseElf(b);
      for (const s of e.sections) s.data();
      findElfObjects(b);
    }, `flip iteration ${iter}`);
    if (parsedOk) ok++;
    else failed++;
  }
  for (let iter = 0; iter < 200; iter++) {
    const b = new Uint8Array(64 + rand(512));
    for (let i = 0; i < b.length; i++) b[i] = rand(256);
    b.set([0x7f, 0x45, 0x4c, 0x46, 2, 1 + rand(2), 1], 0);
    if (onlyElfError(t, () => parseElf(b), `random ${iter}`)) ok++;
    else failed++;
  }
  t.comment(`fuzz: ${ok} parsed, ${failed} rejected with ElfError`);
  t.ok(failed > 0 && ok > 0, 'both outcomes happen');
});

t.test('findElfObjects', async (t) => {
  const host = join(dir, 'host.o');
  writeFileSync(join(dir, 'host.c'), 'int f(int x) { return x + 1; }\n');
  execFileSync('clang-16', ['-O2', '-c', join(dir, 'host.c'), '-o', host]);
  const hostObj = new Uint8Array(readFileSync(host));
  t.not(parseElf(hostObj).machine, EM_BPF, 'host object is not eBPF');

  const junk = (n: number) => Uint8Array.from({ length: n }, (_, i) => (i * 131 + 7) & 0xff);
  const parts = [junk(13), obj, junk(100), hostObj, new Uint8Array([0x7f, 0x45, 0x4c, 0x46]), junk(5), obj, junk(3)];
  const blob = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let pos = 0;
  const offsets: number[] = [];
  for (const p of parts) {
    offsets.push(pos);
    blob.set(p, pos);
    pos += p.length;
  }
  const found = findElfObjects(blob);
  t.same(found, [
    { offset: offsets[1], size: obj.length },
    { offset: offsets[6], size: obj.length },
  ]);
  t.same(findElfObjects(obj), [{ offset: 0, size: obj.length }]);
  t.same(findElfObjects(obj.subarray(0, obj.length - 1)), [], 'a truncated object is not reported');
  t.same(findElfObjects(new Uint8Array(0)), []);
});
