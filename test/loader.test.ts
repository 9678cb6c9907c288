// Tests for src/object/loader.ts and src/object/core.ts: the project's example objects and the
// fixtures in test/fixtures/userspace/ checked against libbpf itself (programs, maps, CO-RE results
// from libbpf's own log, through the native addon), against the target BTF directly, and hostile input.
import t, { type Test } from 'tap';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { BUILD, FIXTURES, ROOT, buildBpf } from './helpers.js';
import { type Btf, parseBtf } from '../src/object/btf.js';
import { parseElf, SHT } from '../src/object/elf.js';
import { type BpfObject, CORE_POISON_HELPER, insn, loadObject, ObjectError, OP_CALL, OP_LDDW, PSEUDO } from '../src/object/loader.js';
import { sectionDef } from '../src/object/sections.js';
import { applyCoreRelocations, CORE_KIND, CoreError, essentialName, resolveCoreRelo } from '../src/object/core.js';

const MATRIX = path.join(ROOT, 'matrix', 'build');
const VMLINUX = '/sys/kernel/btf/vmlinux';
const US = path.join(FIXTURES, 'userspace');

const matrixObjects = existsSync(MATRIX) ? readdirSync(MATRIX).filter((f) => f.endsWith('.bpf.o')).sort() : [];
const read = (p: string): Uint8Array => new Uint8Array(readFileSync(p));

function fixture(name: string, defines: string[] = []): string {
  const suffix = defines.length ? `-${defines.map((d) => d.replace(/\W/g, '')).join('')}` : '';
  return buildBpf(path.join(US, `${name}.bpf.c`), path.join(BUILD, `us-${name}${suffix}.bpf.o`), ['-D__TARGET_ARCH_x86', ...defines]);
}

let vmlinux: Btf | undefined;
const hostBtf = (): Btf | undefined => (vmlinux ??= existsSync(VMLINUX) ? parseBtf(read(VMLINUX)) : undefined);

interface NativeLike {
  open(bytes: Uint8Array, name: string, opts: { logLevel: number }): number;
  programs(obj: number): { name: string; section: string; type: number; expectedAttachType?: number }[];
  maps(obj: number): { name: string; type: number; keySize: number; valueSize: number; maxEntries: number }[];
  load(obj: number): void;
  takeLog(): string;
  close(obj: number): void;
}
async function native(): Promise<NativeLike | undefined> {
  try {
    const mod = await import('../backends/linux/native.js');
    return mod.loadNative() as unknown as NativeLike;
  } catch {
    return undefined;
  }
}

t.test('section table: libbpf program types', async (t) => {
  const cases: [string, number, number][] = [
    ['tp/sched/sched_switch', 5, 0],
    ['tracepoint/syscalls/sys_enter_openat', 5, 0],
    ['kprobe/do_unlinkat', 2, 0],
    ['kretprobe/x', 2, 0],
    ['uprobe', 2, 0],
    ['uprobe//bin/sh:main', 2, 0],
    ['tp_btf/sched_wakeup', 26, 23],
    ['fentry/do_unlinkat', 26, 24],
    ['lsm/bprm_check_security', 29, 27],
    ['xdp', 6, 37],
    ['socket', 1, 0],
    ['sockops', 13, 3],
    ['cgroup_skb/ingress', 8, 0],
    ['raw_tp/sys_enter', 17, 0],
    ['perf_event', 7, 0],
  ];
  for (const [sec, type, attach] of cases) {
    const d = sectionDef(sec);
    t.equal(d?.type, type, `${sec} type`);
    t.equal(d?.attach, attach, `${sec} attach type`);
  }
  t.equal(sectionDef('kprobeX'), undefined, '"kprobe+" needs a / after the prefix');
  t.equal(sectionDef('socketfoo'), undefined, 'exact sections match exactly');
  t.equal(sectionDef('whatever/else'), undefined);
});

t.test('matrix objects load, and agree with libbpf on programs and maps', { skip: matrixObjects.length === 0 && 'no matrix/build/*.bpf.o (make -C matrix)' }, async (t) => {
  const n = await native();
  for (const f of matrixObjects) {
    const bytes = read(path.join(MATRIX, f));
    const obj = loadObject(bytes);
    t.ok(obj.programs.length > 0, `${f}: ${obj.programs.length} programs`);
    t.match(obj.license, /GPL/, `${f}: license`);
    for (const p of obj.programs) {
      t.equal(p.insns.length % 8, 0);
      t.ok(p.type > 0, `${f}/${p.name}: type from '${p.section}'`);
      // every map reference became MAP_IDX / MAP_IDX_VALUE with the map index
      for (const r of p.mapRelocs) {
        t.equal(insn.src(p.insns, r.insn), r.kind === 'fd' ? PSEUDO.MAP_IDX : PSEUDO.MAP_IDX_VALUE);
        t.equal(insn.imm(p.insns, r.insn), r.map);
        if (r.kind === 'value') t.equal(insn.imm(p.insns, r.insn + 1), r.offset);
      }
    }
    if (!n) continue;
    const h = n.open(bytes, f.replace('.bpf.o', ''), { logLevel: 0 });
    try {
      const lp = n.programs(h);
      t.same(
        obj.programs.map((p) => ({ name: p.name, section: p.section, type: p.type, expectedAttachType: p.expectedAttachType })),
        lp.map((p) => ({ name: p.name, section: p.section, type: p.type, expectedAttachType: p.expectedAttachType })),
        `${f}: programs as libbpf`,
      );
      const lm = n.maps(h);
      t.equal(obj.maps.length, lm.length, `${f}: map count`);
      obj.maps.forEach((m, i) => {
        const l = lm[i]!;
        // libbpf prefixes internal maps with the object name ("bootstra.rodata")
        t.ok(l.name === m.name || (m.kind === 'data' && l.name.endsWith(m.name)), `${f}: map ${i} ${m.name} ~ ${l.name}`);
        t.same([m.type, m.keySize, m.valueSize, m.maxEntries], [l.type, l.keySize, l.valueSize, l.maxEntries], `${f}: map ${m.name} definition`);
      });
    } finally {
      n.close(h);
      n.takeLog();
    }
  }
});

t.test('linking: subprograms appended depth first, calls and data relocated', async (t) => {
  const obj = loadObject(read(fixture('link')));
  t.same(
    obj.maps.map((m) => [m.name, m.kind, m.type, m.keySize, m.valueSize, m.maxEntries, m.flags]),
    [
      ['legacy', 'legacy', 2, 4, 8, 16, 0],
      ['jumps', 'btf', 3, 4, 4, 4, 0],
      ['btfmap', 'btf', 1, 4, 8, 8, 1],
      ['.rodata', 'data', 2, 4, 16, 1, 0x80],
      ['.data', 'data', 2, 4, 12, 1, 0],
      ['.data.custom', 'data', 2, 4, 8, 1, 0],
      ['.bss', 'data', 2, 4, 16, 1, 0],
    ],
    'maps in libbpf order: legacy, BTF, data sections',
  );
  t.same(obj.map('jumps')!.initSlots, [{ slot: 2, target: 'tail_target', kind: 'program' }], 'prog_array initializer from .rel.maps');
  const dv = (m: string): DataView => new DataView(obj.map(m)!.initial!.buffer);
  t.equal(dv('.rodata').getUint32(0, true), 5, '.rodata initial bytes');
  t.equal(dv('.rodata').getBigUint64(8, true), 6n);
  t.equal(dv('.data').getBigUint64(0, true), 7n);
  t.equal(dv('.data.custom').getBigUint64(0, true), 9n);
  t.same([...obj.map('.bss')!.initial!], new Array(16).fill(0), '.bss is zeros');
  t.ok(obj.map('.rodata')!.readonly);

  t.same(obj.programs.map((p) => p.name), ['tail_target', 'first', 'second', 'third'], 'programs by section');
  const first = obj.program('first')!;
  t.same(first.pieces.map((p) => p.name), ['first', 'global_sub', 'middle', 'leaf'], 'first: callees appended once, depth first');
  const second = obj.program('second')!;
  t.same(second.pieces.map((p) => p.name), ['second', 'loop_cb', 'leaf'], 'second: callback and callee, its own copies');
  for (const p of obj.programs) {
    const at = new Map(p.pieces.map((x) => [x.name, x.at]));
    for (const c of p.callRelocs) {
      t.equal(c.target, at.get(c.callee), `${p.name}: ${c.kind} at ${c.insn} reaches ${c.callee}`);
      t.equal(insn.imm(p.insns, c.insn), c.target - c.insn - 1, 'pc-relative immediate');
      if (c.kind === 'func-addr') {
        t.equal(insn.code(p.insns, c.insn), OP_LDDW);
        t.equal(insn.src(p.insns, c.insn), PSEUDO.FUNC);
      } else {
        t.equal(insn.code(p.insns, c.insn), OP_CALL);
        t.equal(insn.src(p.insns, c.insn), PSEUDO.CALL);
      }
    }
    // every bpf-to-bpf call in the linked program lands on a piece start
    for (let i = 0; i < p.insns.length / 8; i++) {
      if (insn.code(p.insns, i) === OP_CALL && insn.src(p.insns, i) === PSEUDO.CALL) {
        const target = i + insn.imm(p.insns, i) + 1;
        t.ok(p.pieces.some((x) => x.at === target), `${p.name}: call at ${i} -> ${target}`);
      }
      if (insn.code(p.insns, i) === OP_LDDW) i++;
    }
    t.equal(p.funcInfo.length, p.pieces.length, `${p.name}: one func_info per piece`);
    t.ok(p.lineInfo.length > 0, `${p.name}: line info`);
  }
  // data relocations: offsets are the symbols' offsets in their sections
  const elf = obj.elf;
  const symOff = (name: string): number => elf.symbols.find((s) => s.name === name)!.value;
  for (const p of obj.programs) {
    for (const r of p.mapRelocs) {
      if (r.kind === 'value') t.equal(r.offset, symOff(r.symbol), `${p.name}: ${r.symbol} at ${r.offset} of ${obj.maps[r.map]!.name}`);
      else t.equal(obj.maps[r.map]!.name, r.symbol);
    }
  }
  t.same(
    first.mapRelocs.map((r) => [r.symbol, r.kind]),
    [['legacy', 'fd'], ['ro_a', 'value'], ['data_b', 'value'], ['bss_b', 'value'], ['custom', 'value'], ['data_b', 'value'], ['bss_a', 'value'], ['ro_b', 'value']],
    'first: relocations of the program and its subprograms',
  );
});

t.test('linking agrees with libbpf on programs and maps (fixture without the legacy map)', async (t) => {
  const n = await native();
  if (!n) {
    t.comment('skipped: native addon not built');
    return;
  }
  const bytes = read(fixture('link', ['-DNO_LEGACY']));
  const obj = loadObject(bytes);
  const h = n.open(bytes, 'link', { logLevel: 0 });
  try {
    t.same(obj.programs.map((p) => [p.name, p.section, p.type, p.expectedAttachType]), n.programs(h).map((p) => [p.name, p.section, p.type, p.expectedAttachType]));
    t.same(obj.maps.map((m) => [m.type, m.keySize, m.valueSize, m.maxEntries]), n.maps(h).map((m) => [m.type, m.keySize, m.valueSize, m.maxEntries]));
  } finally {
    n.close(h);
    n.takeLog();
  }
});

// ---- CO-RE ---------------------------------------------------------------------------------------------

function memberOffset(btf: Btf, struct: string, member: string): number {
  const s = btf.find(struct, 'STRUCT');
  if (!s || s.kind !== 'STRUCT') throw new Error(`no struct ${struct}`);
  const m = s.members.find((x) => x.name === member);
  if (!m) throw new Error(`no ${struct}.${member}`);
  return m.bitOffset / 8;
}

t.test('CO-RE against vmlinux: values computed from the target BTF directly', { skip: !existsSync(VMLINUX) && `no ${VMLINUX}` }, async (t) => {
  const target = hostBtf()!;
  const obj = loadObject(read(fixture('core')));
  const applied = applyCoreRelocations(obj, target);
  t.equal(applied.length, obj.coreRelocs.length, 'every relocation applied');
  const byAccess = (kind: number, type: string, access: string): bigint[] =>
    applied.filter((a) => a.relo.kind === kind && obj.btf!.nameOf(a.relo.typeId) === type && a.relo.access === access).map((a) => a.result.newVal);
  const pid = memberOffset(target, 'task_struct', 'pid');
  const tgid = memberOffset(target, 'task_struct', 'tgid');
  const comm = memberOffset(target, 'task_struct', 'comm');
  t.same(byAccess(CORE_KIND.FIELD_BYTE_OFFSET, 'task_struct', '0:2'), [BigInt(pid)], `task_struct.pid at ${pid}`);
  t.same(byAccess(CORE_KIND.FIELD_BYTE_OFFSET, 'task_struct', '0:3'), [BigInt(tgid)], `task_struct.tgid at ${tgid}`);
  t.same(byAccess(CORE_KIND.FIELD_BYTE_OFFSET, 'task_struct', '0:4'), [BigInt(memberOffset(target, 'task_struct', 'real_parent'))], 'real_parent');
  t.same(byAccess(CORE_KIND.FIELD_BYTE_OFFSET, 'task_struct', '0:5'), [BigInt(comm)], 'comm');
  t.same(byAccess(CORE_KIND.FIELD_BYTE_OFFSET, 'task_struct', '0:5:3'), [BigInt(comm + 3)], 'comm[3]');
  t.same(byAccess(CORE_KIND.FIELD_BYTE_SIZE, 'task_struct', '0:5'), [16n], 'sizeof comm');
  t.same(byAccess(CORE_KIND.FIELD_EXISTS, 'task_struct', '0:1'), [1n], 'prio exists');
  t.same(byAccess(CORE_KIND.FIELD_EXISTS, 'task_struct___old', '0:1'), [0n], 'no_such_field does not');
  t.same(byAccess(CORE_KIND.FIELD_SIGNED, 'task_struct', '0:2'), [1n], 'pid_t is signed');
  t.same(byAccess(CORE_KIND.TYPE_SIZE, 'task_struct', '0'), [BigInt(target.sizeof(target.find('task_struct', 'STRUCT')!.id))], 'sizeof(struct task_struct)');
  t.same(byAccess(CORE_KIND.TYPE_EXISTS, 'no_such_type___x', '0'), [0n]);
  t.same(byAccess(CORE_KIND.TYPE_EXISTS, 'sk_buff', '0'), [1n]);
  t.same(byAccess(CORE_KIND.TYPE_ID_TARGET, 'task_struct', '0'), [BigInt(target.find('task_struct', 'STRUCT')!.id)], 'target type id');
  const pidType = target.find('pid_type', 'ENUM');
  if (pidType?.kind === 'ENUM') {
    t.same(byAccess(CORE_KIND.ENUMVAL_VALUE, 'pid_type', '0'), [BigInt(pidType.values.find((v) => v.name === 'PIDTYPE_SID')!.value)], 'PIDTYPE_SID value');
  }
  t.same(byAccess(CORE_KIND.ENUMVAL_EXISTS, 'pid_type', '2'), [0n], 'PIDTYPE_NOPE does not exist');
  // sk_buff.next lives inside anonymous unions/structs: the target path goes through them
  const next = applied.find((a) => obj.btf!.nameOf(a.relo.typeId) === 'sk_buff' && a.relo.kind === CORE_KIND.FIELD_BYTE_OFFSET)!;
  t.ok(next.result.targetAccess.split(':').length > 2, `sk_buff.next found through anonymous members (${next.result.targetAccess})`);
  // bitfields: lshift/rshift as libbpf computes them
  const ts = target.find('task_struct', 'STRUCT');
  const bf = ts?.kind === 'STRUCT' ? ts.members.find((m) => m.name === 'sched_contributes_to_load') : undefined;
  if (bf) {
    const off = applied.find((a) => a.relo.access === '0:7' && a.relo.kind === CORE_KIND.FIELD_BYTE_OFFSET)!.result.newVal;
    const size = applied.find((a) => a.relo.access === '0:7' && a.relo.kind === CORE_KIND.FIELD_BYTE_SIZE)!.result.newVal;
    const lshift = applied.find((a) => a.relo.access === '0:7' && a.relo.kind === CORE_KIND.FIELD_LSHIFT_U64)!.result.newVal;
    const rshift = applied.find((a) => a.relo.access === '0:7' && a.relo.kind === CORE_KIND.FIELD_RSHIFT_U64)!.result.newVal;
    t.ok(Number(off) * 8 <= bf.bitOffset && bf.bitOffset + bf.bitfieldSize <= (Number(off) + Number(size)) * 8, 'the load covers the bitfield');
    t.equal(Number(lshift), 64 - (bf.bitOffset + bf.bitfieldSize - Number(off) * 8), 'lshift');
    t.equal(Number(rshift), 64 - bf.bitfieldSize, 'rshift');
  }
});

t.test('CO-RE against vmlinux: identical to libbpf (its own log, through the native addon)', { skip: !existsSync(VMLINUX) && `no ${VMLINUX}` }, async (t) => {
  const n = await native();
  if (!n) {
    t.comment('skipped: native addon not built');
    return;
  }
  if (process.getuid?.() !== 0) {
    t.comment('skipped: libbpf relocates at load, which needs root');
    return;
  }
  const files = [fixture('core'), ...matrixObjects.map((f) => path.join(MATRIX, f))];
  for (const file of files) {
    const bytes = read(file);
    const obj = loadObject(bytes);
    if (obj.coreRelocs.length === 0) continue;
    const applied = applyCoreRelocations(obj, hostBtf()!);
    const h = n.open(bytes, 'core', { logLevel: 2 });
    let log = '';
    try {
      try {
        n.load(h); // the CO-RE lines come before the kernel sees the program; a verifier refusal is fine
      } catch {
        /* ignore */
      }
    } finally {
      log = n.takeLog();
      n.close(h);
      n.takeLog();
    }
    // prog 'x': relo #k: patched insn #N (KIND) imm|off|imm64 A -> B   /  substituting insn #N w/ invalid insn
    const libbpf = new Map<string, string>();
    for (const m of log.matchAll(/prog '([^']+)': relo #\d+: patched insn #(\d+) \(([^)]+)\) (?:imm64|imm|off) (\d+) -> (\d+)/g)) libbpf.set(`${m[1]}#${m[2]}`, `${m[4]}->${m[5]}`);
    for (const m of log.matchAll(/prog '([^']+)': relo #\d+: substituting insn #(\d+) w\/ invalid insn/g)) libbpf.set(`${m[1]}#${m[2]}`, 'poison');
    const ours = new Map<string, string>();
    for (const a of applied) {
      // libbpf numbers instructions within the function that holds them
      const p = obj.program(a.program)!;
      const piece = p.pieces.find((x) => a.insn >= x.at && a.insn < x.at + x.length)!;
      if (piece.at !== 0) continue;
      ours.set(`${a.program}#${a.insn}`, a.outcome === 'poisoned' ? 'poison' : `${BigInt.asUintN(32, a.before)}->${BigInt.asUintN(32, a.result.newVal)}`);
    }
    // libbpf logs imm64 in full and 32-bit fields as u32
    for (const [k, v] of libbpf) if (v !== 'poison') libbpf.set(k, v.split('->').map((x) => BigInt.asUintN(32, BigInt(x)).toString()).join('->'));
    t.ok(libbpf.size > 0, `${path.basename(file)}: libbpf logged ${libbpf.size} relocations`);
    t.same(Object.fromEntries(ours), Object.fromEntries(libbpf), `${path.basename(file)}: every CO-RE relocation as libbpf`);
  }
});

t.test('CO-RE against the object itself: nothing moves, nothing is poisoned', async (t) => {
  const obj = loadObject(read(fixture('core')));
  const applied = applyCoreRelocations(obj, obj.btf!);
  t.ok(applied.length > 20);
  for (const a of applied) {
    t.equal(a.outcome, 'patched');
    if (a.relo.kind === CORE_KIND.TYPE_ID_TARGET) continue;
    t.equal(a.result.newVal, a.result.origVal, `${a.relo.access} kind ${a.relo.kind} keeps its value`);
    // bitfield loads are the exception, as in libbpf: clang's guess of the load size is not checked
    if (a.result.validate) t.equal(a.before, a.result.newVal, 'the instruction already held it');
  }
});

t.test('CO-RE: poisoned instructions, essential names, errors', async (t) => {
  t.equal(essentialName('task_struct___pre514'), 'task_struct');
  t.equal(essentialName('a___b___c'), 'a___b');
  t.equal(essentialName('__x___'), '__x___');
  t.equal(essentialName('plain'), 'plain');
  if (matrixObjects.includes('runqlat.bpf.o') && hostBtf()) {
    const obj = loadObject(read(path.join(MATRIX, 'runqlat.bpf.o')));
    const applied = applyCoreRelocations(obj, hostBtf()!);
    const poisoned = applied.filter((a) => a.outcome === 'poisoned');
    t.ok(poisoned.length > 0, 'task_struct___pre514.state has no target on this kernel');
    for (const a of poisoned) {
      const p = obj.program(a.program)!;
      t.equal(insn.code(p.insns, a.insn), OP_CALL);
      t.equal(insn.imm(p.insns, a.insn) >>> 0, CORE_POISON_HELPER, 'call of helper 0xbad2310');
    }
  }
  const obj = loadObject(read(fixture('core')));
  const relo = obj.coreRelocs[0]!.relo;
  t.throws(() => resolveCoreRelo(obj.btf!, { ...relo, access: '0:999' }, obj.btf!), CoreError, 'member index past the struct');
  t.throws(() => resolveCoreRelo(obj.btf!, { ...relo, access: '' }, obj.btf!), CoreError, 'empty access string');
  t.throws(() => resolveCoreRelo(obj.btf!, { ...relo, typeId: 99999 }, obj.btf!), CoreError, 'type id outside the BTF');
  t.throws(() => resolveCoreRelo(obj.btf!, { ...relo, kind: 99 }, obj.btf!), CoreError, 'unknown kind');
  // an instruction that does not hold the expected value is refused, naming program and instruction
  const p = obj.programs[0]!;
  const at = obj.coreRelocs[0]!.insn;
  insn.setImm(p.insns, at, 12345);
  t.throws(() => applyCoreRelocations(obj, obj.btf!), /program 'core_all': CO-RE relocation at insn \d+ .*holds 12345/);
});

// ---- hostile input ------------------------------------------------------------------------------------

function onlyObjectErrors(t: Test, bytes: Uint8Array, what: string): 'ok' | 'error' {
  try {
    loadObject(bytes);
    return 'ok';
  } catch (e) {
    if (!(e instanceof ObjectError)) {
      t.fail(`${what}: ${(e as Error).name}: ${(e as Error).message}`);
      throw e;
    }
    return 'error';
  }
}

t.test('hostile input: truncated, garbage, flipped bytes only ever give ObjectError', async (t) => {
  const base = read(fixture('link'));
  for (const n of [0, 1, 4, 16, 63, 64, 100, 512, base.length >> 1, base.length - 1]) {
    t.throws(() => loadObject(base.subarray(0, n)), ObjectError, `truncated to ${n} bytes`);
  }
  t.throws(() => loadObject(new TextEncoder().encode('not an elf file at all, just some text.........................')), ObjectError);
  const x86 = path.join(BUILD, 'x86.o');
  if (existsSync(x86)) t.throws(() => loadObject(read(x86)), /not an eBPF object/);
  // seeded byte flips over the whole file
  let seed = 12345;
  const rnd = (n: number): number => {
    seed = (Math.imul(seed, 1103515245) + 12345) >>> 0;
    return seed % n;
  };
  let errors = 0;
  for (let i = 0; i < 600; i++) {
    const b = base.slice();
    const flips = 1 + rnd(4);
    for (let k = 0; k < flips; k++) b[rnd(b.length)] = rnd(256);
    if (onlyObjectErrors(t, b, `flip round ${i}`) === 'error') errors++;
  }
  t.ok(errors > 0, `${errors}/600 mutated objects refused (the rest still load)`);
});

/** byte offset in the file of entry k of the relocation section for `target` */
function relEntry(bytes: Uint8Array, target: string, k: number): number {
  const elf = parseElf(bytes);
  const rs = elf.relocations.find((r) => elf.sections[r.target]!.name === target)!;
  return rs.section.offset + k * (rs.section.type === SHT.RELA ? 24 : 16);
}

t.test('hostile input: relocations and records pointing outside their sections', async (t) => {
  const base = read(fixture('link'));
  {
    const b = base.slice();
    new DataView(b.buffer).setBigUint64(relEntry(b, 'tp/sched/sched_switch', 0), 0x100000n, true);
    t.throws(() => loadObject(b), /relocation 0 of \.reltp\/sched\/sched_switch: offset 1048576 is outside section tp\/sched\/sched_switch/);
  }
  {
    const b = base.slice();
    new DataView(b.buffer).setBigUint64(relEntry(b, 'tp/sched/sched_switch', 0), 3n, true);
    t.throws(() => loadObject(b), /not on an instruction/, 'unaligned relocation');
  }
  {
    const b = base.slice();
    const o = relEntry(b, 'tp/sched/sched_switch', 0);
    new DataView(b.buffer).setUint32(o + 12, 0xffff, true); // symbol index
    t.throws(() => loadObject(b), ObjectError, 'symbol index out of range');
  }
  {
    // a relocation aimed at an instruction that is neither lddw nor call
    const b = base.slice();
    const o = relEntry(b, 'tp/sched/sched_switch', 0);
    const dv = new DataView(b.buffer);
    dv.setBigUint64(o, dv.getBigUint64(o, true) + 16n, true);
    t.throws(() => loadObject(b), /neither lddw nor call|second relocation|relocation on a helper call/);
  }
  {
    // data relocation whose offset points past .data
    const b = base.slice();
    const obj = loadObject(b);
    const first = obj.program('first')!;
    const r = first.mapRelocs.find((x) => x.symbol === 'data_b')!;
    const sec = obj.elf.section('tp/sched/sched_switch')!;
    new DataView(b.buffer).setInt32(sec.offset + r.insn * 8 + 4, 4096, true);
    t.throws(() => loadObject(b), /offset 4104 is outside \.data \(12 bytes\)/);
  }
  {
    // .BTF.ext CO-RE record for an instruction past its section
    const b = read(fixture('core'));
    const obj = loadObject(b);
    const ext = obj.elf.section('.BTF.ext')!;
    const dv = new DataView(b.buffer, b.byteOffset);
    const hdrLen = dv.getUint32(ext.offset + 4, true);
    const coreOff = dv.getUint32(ext.offset + 24, true);
    const first = ext.offset + hdrLen + coreOff + 4 + 8; // record size, then section name + count
    dv.setUint32(first, 0x7ffff8, true);
    t.throws(() => loadObject(b), /core_relo: instruction offset 8388600 is outside section/);
  }
  {
    // .BTF.ext header claiming more than the section holds
    const b = read(fixture('core'));
    const ext = loadObject(b).elf.section('.BTF.ext')!;
    new DataView(b.buffer, b.byteOffset).setUint32(ext.offset + 28, 0xfffffff, true);
    t.throws(() => loadObject(b), /\.BTF\.ext: subsection .* extends past the end/);
  }
  {
    // a function symbol extending past its section
    const b = base.slice();
    const elf = parseElf(b);
    const symtab = elf.sections.find((s) => s.type === SHT.SYMTAB)!;
    const idx = elf.symbols.findIndex((s) => s.name === 'third');
    new DataView(b.buffer).setBigUint64(symtab.offset + idx * 24 + 16, 0x10000n, true);
    t.throws(() => loadObject(b), /function 'third' in section xdp: \[0, \+65536\) is outside the section/);
  }
});

t.test('hostile input: BTF map definitions', async (t) => {
  const obj: BpfObject = loadObject(read(fixture('link')));
  t.ok(obj.btf, 'fixture has BTF');
  const b = read(fixture('link'));
  const maps = parseElf(b).section('.maps')!;
  // shrink .maps: the definitions' symbols now point past its end
  const shdr = (() => {
    const dv = new DataView(b.buffer);
    const shoff = Number(dv.getBigUint64(40, true));
    return shoff + maps.index * 64;
  })();
  new DataView(b.buffer).setBigUint64(shdr + 32, 8n, true);
  t.throws(() => loadObject(b), /is outside section \.maps \(8 bytes\)/);
});
