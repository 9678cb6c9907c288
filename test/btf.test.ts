// Tests for src/object/btf.ts: vmlinux BTF (speed, lookups, sizeof), every kind in a clang-built
// object (checked against bpftool's raw dump), big-endian BTF, and malformed input.
import t, { type Test } from 'tap';
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type Btf, BtfError, parseBtf } from '../src/object/btf.js';
import { parseElf } from '../src/object/elf.js';

const VMLINUX = '/sys/kernel/btf/vmlinux';
const dir = mkdtempSync(join(tmpdir(), 'wasm-bpf-btf-'));
t.teardown(() => rmSync(dir, { recursive: true, force: true }));

function multiarchInclude(): string[] {
  const d = readdirSync('/usr/include').find((e) => e.endsWith('-linux-gnu') && existsSync(`/usr/include/${e}/asm/types.h`));
  return d ? [`-I/usr/include/${d}`] : [];
}

function compileBpf(name: string, src: string, target = 'bpf'): string {
  const c = join(dir, `${name}.bpf.c`);
  const o = join(dir, `${name}.bpf.o`);
  writeFileSync(c, src);
  execFileSync('clang-16', ['-g', '-O2', '-target', target, ...multiarchInclude(), '-c', c, '-o', o]);
  return o;
}

function btfOf(path: string): Uint8Array {
  return parseElf(new Uint8Array(readFileSync(path))).section('.BTF')!.data();
}

/** Every kind of BTF type clang-16 emits. */
const KINDS_SRC = `
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>
#define __user __attribute__((btf_type_tag("user")))
enum big { BIG_A = 1, BIG_B = 0x100000000ULL };
enum neg { NEG_A = -1, NEG_B = 2 };
struct fwd_only;
union u { int i; float f; };
struct bits { unsigned int a:3, b:5; int c; };
struct node { struct node *next; struct fwd_only *f; union u v; struct bits b; double d; int __user *up; } __attribute__((btf_decl_tag("mytag")));
typedef struct node node_t;
volatile node_t gnode SEC(".data.custom");
enum big gbig = BIG_B;
enum neg gneg = NEG_A;
float gf = 1.5f;
int arr2[2][3] SEC(".data.custom");
char *const cptr = 0;
static __noinline int sub(int * restrict p) { return *p; }
SEC("kprobe/do_nanosleep")
int probe(struct pt_regs *ctx) { int x = 1; return sub(&x) + gnode.b.c + gbig + arr2[1][2]; }
char LICENSE[] SEC("license") = "GPL";
`;

interface DumpType {
  id: number;
  kind: string;
  name: string;
  size?: number;
  members: { name: string; type: number; bitOffset: number; bitfieldSize: number }[];
}

/** bpftool's raw BTF dump: kind, name, struct size and members of every type. */
function bpftoolDump(file: string): DumpType[] {
  const out = execFileSync('bpftool', ['btf', 'dump', 'file', file], { encoding: 'utf8', maxBuffer: 1 << 28 });
  const types: DumpType[] = [];
  for (const line of out.split('\n')) {
    const m = /^\[(\d+)\] (\w+) '([^']*)'(?:.* size=(\d+))?/.exec(line);
    if (m) {
      types.push({ id: Number(m[1]), kind: m[2]!, name: m[3] === '(anon)' ? '' : m[3]!, size: m[4] === undefined ? undefined : Number(m[4]), members: [] });
      continue;
    }
    const mm = /^\t'([^']*)' type_id=(\d+) bits_offset=(\d+)(?: bitfield_size=(\d+))?/.exec(line);
    if (mm && types.length > 0) {
      types[types.length - 1]!.members.push({ name: mm[1] === '(anon)' ? '' : mm[1]!, type: Number(mm[2]), bitOffset: Number(mm[3]), bitfieldSize: Number(mm[4] ?? 0) });
    }
  }
  return types;
}

function checkAgainstBpftool(t: Tap, btf: Btf, file: string, withMembers: boolean): void {
  const dump = bpftoolDump(file);
  t.equal(btf.length, dump.length + 1, 'same number of types');
  let bad = 0;
  for (const d of dump) {
    const ty = btf.type(d.id);
    let same = ty.kind === d.kind && ty.name === d.name;
    if (same && d.size !== undefined && (ty.kind === 'STRUCT' || ty.kind === 'UNION' || ty.kind === 'INT' || ty.kind === 'ENUM' || ty.kind === 'ENUM64' || ty.kind === 'FLOAT')) {
      same = ty.size === d.size;
    }
    if (same && withMembers && (ty.kind === 'STRUCT' || ty.kind === 'UNION')) same = JSON.stringify(ty.members) === JSON.stringify(d.members);
    if (!same && bad++ < 5) t.fail(`type ${d.id}: ${JSON.stringify(ty)} vs bpftool ${JSON.stringify(d)}`);
  }
  t.equal(bad, 0, `all ${dump.length} types agree with bpftool`);
}
type Tap = Test;

t.test('vmlinux BTF', { skip: !existsSync(VMLINUX) && 'no /sys/kernel/btf/vmlinux' }, async (t) => {
  const bytes = new Uint8Array(readFileSync(VMLINUX));
  const t0 = performance.now();
  const btf = parseBtf(bytes);
  const parseMs = performance.now() - t0;
  const t1 = performance.now();
  const ids = btf.findByName('task_struct', 'STRUCT');
  const indexMs = performance.now() - t1;
  t.comment(`parsed ${btf.length} types in ${parseMs.toFixed(1)} ms; name index ${indexMs.toFixed(1)} ms`);
  t.ok(btf.length > 10000, 'many types');
  t.ok(parseMs < 1000, `parse time ${parseMs.toFixed(1)} ms (target < 150 ms on an idle machine)`);

  t.equal(ids.length, 1, 'one struct task_struct');
  const task = btf.type(ids[0]!);
  t.equal(task.kind, 'STRUCT');
  if (task.kind !== 'STRUCT') return;
  const pid = task.members.find((m) => m.name === 'pid');
  t.ok(pid, 'task_struct has member pid');
  const pidType = btf.resolveType(pid!.type);
  t.match(pidType, { kind: 'INT', size: 4, signed: true }, 'pid_t resolves to a 4-byte signed int');
  t.equal(btf.sizeof(pid!.type), 4);
  t.equal(btf.type(pid!.type).name, 'pid_t');
  t.equal(pid!.bitOffset % 8, 0);
  t.equal(btf.sizeof(task.id), task.size);

  if (process.arch === 'x64') t.equal(btf.sizeof(btf.find('pt_regs', 'STRUCT')!.id), 168, 'sizeof(struct pt_regs) on x86_64');
  const u64 = btf.find('u64', 'TYPEDEF')!;
  t.equal(btf.sizeof(u64.id), 8);
  t.equal(btf.resolveType(u64.id).kind, 'INT');
  t.same(btf.findByName('definitely_not_a_kernel_type_name'), []);
  t.ok(btf.findByName('task_struct').length >= 1);
  t.equal(btf.nameOf(task.id), 'task_struct');
  t.equal(btf.kindOf(task.id), 'STRUCT');
  t.equal(btf.type(task.id), task, 'type objects are cached');
  t.throws(() => btf.type(btf.length), { name: 'BtfError', code: 'BTF_NOT_FOUND' });
  t.throws(() => btf.sizeof(0), { name: 'BtfError', code: 'BTF_NO_SIZE' }, 'void has no size');
  t.match(btf.typeString(btf.find('task_struct', 'STRUCT')!.id), 'struct task_struct');

  checkAgainstBpftool(t, btf, VMLINUX, false);
});

t.test('all kinds in a clang-built object match bpftool', async (t) => {
  const o = compileBpf('kinds', KINDS_SRC);
  const btf = parseBtf(btfOf(o));
  checkAgainstBpftool(t, btf, o, true);
  const kinds = new Set(btf.types.map((x) => x.kind));
  for (const k of ['INT', 'PTR', 'ARRAY', 'STRUCT', 'UNION', 'ENUM', 'FWD', 'TYPEDEF', 'VOLATILE', 'CONST', 'RESTRICT', 'FUNC', 'FUNC_PROTO', 'VAR', 'DATASEC', 'FLOAT', 'DECL_TAG', 'TYPE_TAG', 'ENUM64']) {
    t.ok(kinds.has(k as never), `has ${k}`);
  }
  const big = btf.find('big', 'ENUM64');
  t.match(big, { kind: 'ENUM64', size: 8, values: [{ name: 'BIG_A', value: 1n }, { name: 'BIG_B', value: 0x100000000n }] });
  t.match(btf.find('neg', 'ENUM'), { signed: true, values: [{ name: 'NEG_A', value: -1 }, { name: 'NEG_B', value: 2 }] });
  const bits = btf.find('bits', 'STRUCT');
  t.match(bits, { members: [{ name: 'a', bitOffset: 0, bitfieldSize: 3 }, { name: 'b', bitOffset: 3, bitfieldSize: 5 }, { name: 'c', bitOffset: 32, bitfieldSize: 0 }] });
  t.match(btf.find('mytag', 'DECL_TAG'), { componentIdx: -1 });
  t.match(btf.find('fwd_only', 'FWD'), { union: false });
  const arr = btf.find('arr2', 'VAR');
  const gnode = btf.find('gnode', 'VAR');
  if (arr?.kind !== 'VAR' || gnode?.kind !== 'VAR') throw new Error('vars not found');
  t.equal(btf.sizeof(arr.id), 24, 'sizeof(int[2][3])');
  t.equal(btf.typeString(arr.type), 'int[2][3]');
  t.equal(btf.sizeof(gnode.id), 48, 'sizeof through volatile typedef');
  t.equal(btf.resolveType(gnode.type).name, 'node');
  t.equal(btf.typeString(gnode.type), 'volatile node_t');
  const ds = btf.find('.data.custom', 'DATASEC');
  t.match(ds, { kind: 'DATASEC', size: 0 }, 'clang leaves DATASEC sizes 0 in .bpf.o');
  t.match(btf.find('sub', 'FUNC'), { linkage: 0 });
  t.match(btf.find('probe', 'FUNC'), { linkage: 1 });
  t.throws(() => btf.sizeof(btf.find('probe', 'FUNC')!.id), { code: 'BTF_NO_SIZE' });
});

t.test('big-endian BTF', async (t) => {
  const le = parseBtf(btfOf(compileBpf('kinds_le', KINDS_SRC)));
  const o = compileBpf('kinds_be', KINDS_SRC, 'bpfeb');
  const be = parseBtf(btfOf(o));
  t.equal(be.littleEndian, false);
  t.same(be.types, le.types, 'same types as the little-endian build');
  checkAgainstBpftool(t, be, o, true);
});

/** Runs fn; fails the test if it throws anything but BtfError. Returns whether it succeeded. */
function onlyBtfError(t: Tap, fn: () => void, what: string): boolean {
  try {
    fn();
    return true;
  } catch (e) {
    if (!(e instanceof BtfError)) t.fail(`${what}: ${e instanceof Error ? `${e.name}: ${e.message}` : String(e)}`);
    return false;
  }
}

/** Exercises everything a consumer might call on a parsed BTF. */
function useAll(btf: Btf): void {
  for (let id = 0; id < btf.length; id++) {
    btf.type(id);
    btf.typeString(id);
    btf.resolve(id);
    try {
      btf.sizeof(id);
    } catch (e) {
      if (!(e instanceof BtfError && e.code === 'BTF_NO_SIZE')) throw e;
    }
  }
  btf.findByName('node');
  btf.findByName('');
}

t.test('malformed BTF throws BtfError', async (t) => {
  const good = btfOf(compileBpf('kinds_m', KINDS_SRC));
  const hdrLen = new DataView(good.buffer, good.byteOffset).getUint32(4, true);
  const set32 = (at: number, v: number) => {
    const b = new Uint8Array(good);
    new DataView(b.buffer).setUint32(at, v, true);
    return b;
  };
  const cases: [string, Uint8Array, RegExp][] = [
    ['empty', new Uint8Array(0), /too short/],
    ['bad magic', new Uint8Array(32), /magic/],
    ['bad version', (() => { const b = new Uint8Array(good); b[2] = 9; return b; })(), /version/],
    ['header length', set32(4, 0xffffff), /header length/],
    ['type section past end', set32(12, 0xfffffff), /type section/],
    ['string section past end', set32(20, 0xfffffff), /string section/],
    ['unaligned type section', set32(8, 2), /aligned/],
    ['unknown kind', set32(hdrLen + 4, 31 << 24), /unknown BTF kind 31/],
    ['missing type', set32(hdrLen + 8, 0xfffff), /missing type 1048575/],
    ['name offset', set32(hdrLen, 0xfffffff), /name offset/],
    ['string section not terminated', (() => { const b = new Uint8Array(good); b[b.length - 1] = 0x41; return b; })(), /NUL-terminated/],
  ];
  for (const [what, bytes, re] of cases) t.throws(() => parseBtf(bytes), { name: 'BtfError', code: 'BTF_MALFORMED', message: re }, what);

  // A typedef loop parses, but resolve()/sizeof() refuse it.
  const loop = new Uint8Array(24 + 24 + 1);
  const dv = new DataView(loop.buffer);
  dv.setUint16(0, 0xeb9f, true);
  loop[2] = 1;
  dv.setUint32(4, 24, true);
  dv.setUint32(12, 24, true); // two TYPEDEFs: 1 -> 2, 2 -> 1
  dv.setUint32(16, 24, true);
  dv.setUint32(20, 1, true);
  dv.setUint32(24 + 4, 8 << 24, true);
  dv.setUint32(24 + 8, 2, true);
  dv.setUint32(36 + 4, 8 << 24, true);
  dv.setUint32(36 + 8, 1, true);
  const btf = parseBtf(loop);
  t.throws(() => btf.resolve(1), { name: 'BtfError', message: /too deep/ });
  t.throws(() => btf.sizeof(2), { name: 'BtfError', message: /too deep/ });
});

t.test('fuzz: truncation and byte flips only ever throw BtfError', async (t) => {
  const good = btfOf(compileBpf('kinds_f', KINDS_SRC));
  let ok = 0;
  let rejected = 0;
  for (let len = 0; len < good.length; len++) {
    if (onlyBtfError(t, () => useAll(parseBtf(good.subarray(0, len))), `truncated to ${len}`)) ok++;
    else rejected++;
  }
  let seed = 0x9e3779b9;
  const rand = (n: number) => {
    seed ^= seed << 13;
    seed ^= seed >>> 17;
    seed ^= seed << 5;
    return (seed >>> 0) % n;
  };
  const strOff = new DataView(good.buffer, good.byteOffset).getUint32(16, true) + 24;
  for (let iter = 0; iter < 3000; iter++) {
    const b = new Uint8Array(good);
    const flips = 1 + rand(4);
    // Mostly the header and the type section, where the structure lives.
    for (let k = 0; k < flips; k++) b[rand(4) === 0 ? rand(b.length) : rand(strOff)] = rand(256);
    if (onlyBtfError(t, () => useAll(parseBtf(b)), `flip iteration ${iter}`)) ok++;
    else rejected++;
  }
  t.comment(`fuzz: ${ok} parsed, ${rejected} rejected with BtfError`);
  t.ok(ok > 0 && rejected > 0, 'both outcomes happen');
});
