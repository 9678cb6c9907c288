// `wasm-bpf btf minimize` (compat/btfhub/minimize.ts): a reduced BTF holding what objects' CO-RE
// relocations need, checked against full vmlinux (every relocation resolves and patches the same),
// against `bpftool gen min_core_btf` (same structs and members), and for real: bootstrap runs in a mount
// namespace whose /sys/kernel/btf/vmlinux is /dev/null with only the minimized BTF, served as a
// btfhub-archive file.
import t, { type Test } from 'tap';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { BUILD, CLI, ROOT, Running, buildBpf, runCli, type AppEvent } from './helpers.js';
import { parseBtf, type Btf } from '../src/object/btf.js';
import { loadObject, type BpfObject } from '../src/object/loader.js';
import { applyCoreRelocations, resolveCoreRelo, CORE_KIND } from '../src/object/core.js';
import { minimizeBtf } from '../compat/btfhub/minimize.js';
import { hubTarget } from '../compat/btfhub/index.js';

const VMLINUX = '/sys/kernel/btf/vmlinux';
const HAVE_BTF = fs.existsSync(VMLINUX);
const MATRIX = path.join(ROOT, 'matrix', 'build');
const OBJS = ['bootstrap', 'runqlat'].map((n) => path.join(MATRIX, `${n}.bpf.o`));
const HAVE_OBJS = OBJS.every((f) => fs.existsSync(f)) && fs.existsSync(path.join(MATRIX, 'vmlinux.h'));
const TMP = fs.mkdtempSync(path.join(os.tmpdir(), 'wasm-bpf-btfmin-'));
t.teardown(() => fs.rmSync(TMP, { recursive: true, force: true }));

const skip = (!HAVE_BTF && 'no /sys/kernel/btf/vmlinux') || (!HAVE_OBJS && 'matrix/build not built (make -C matrix)') || false;

const load = (f: string): BpfObject => loadObject(fs.readFileSync(f));

/** every relocation resolves to the same outcome against both BTFs, and patches the same instructions */
function sameResolution(t: Test, files: string[], full: Btf, min: Btf): void {
  let n = 0;
  for (const f of files) {
    const obj = load(f);
    for (const pr of obj.coreRelocs) {
      const a = resolveCoreRelo(obj.btf!, pr.relo, full);
      const b = resolveCoreRelo(obj.btf!, pr.relo, min);
      const what = `${path.basename(f)} ${obj.btf!.typeString(pr.relo.typeId)} ${pr.relo.access} kind ${pr.relo.kind}`;
      t.equal(b.poison, a.poison, `${what}: poison`);
      if (pr.relo.kind === CORE_KIND.TYPE_ID_TARGET) {
        t.equal(a.newVal === 0n ? '' : min.nameOf(Number(b.newVal)), a.newVal === 0n ? '' : full.nameOf(Number(a.newVal)), `${what}: same target type`);
      } else t.equal(b.newVal, a.newVal, `${what}: value`);
      t.equal(b.newSize, a.newSize, `${what}: size`);
      t.equal(b.failMemszAdjust, a.failMemszAdjust, `${what}: memsz`);
      n++;
    }
    const hasTypeId = obj.coreRelocs.some((pr) => pr.relo.kind === CORE_KIND.TYPE_ID_TARGET);
    if (!hasTypeId) {
      const o1 = load(f);
      const o2 = load(f);
      applyCoreRelocations(o1, full);
      applyCoreRelocations(o2, min);
      for (let i = 0; i < o1.programs.length; i++) {
        t.ok(Buffer.from(o1.programs[i]!.insns).equals(Buffer.from(o2.programs[i]!.insns)), `${path.basename(f)} ${o1.programs[i]!.name}: same patched instructions`);
      }
    }
  }
  t.ok(n > 0, `${n} relocations compared`);
}

/** struct/union name -> sorted member names */
function composites(btf: Btf): Map<string, string> {
  const out = new Map<string, string>();
  for (let id = 1; id < btf.length; id++) {
    const ty = btf.type(id);
    if (ty.kind === 'STRUCT' || ty.kind === 'UNION') out.set(`${ty.kind} ${ty.name}`, ty.members.map((m) => m.name).sort().join(','));
  }
  return out;
}

const full = HAVE_BTF ? parseBtf(fs.readFileSync(VMLINUX)) : undefined;
const MIN = path.join(TMP, 'min.btf');

t.test('bootstrap + runqlat: small, parses, resolves like vmlinux, matches bpftool', { skip }, async (t) => {
  const r = minimizeBtf(full!, OBJS.map(load));
  const vmSize = fs.statSync(VMLINUX).size;
  t.ok(r.bytes.length < vmSize / 100, `${r.bytes.length} bytes < 1% of vmlinux (${vmSize})`);
  t.equal(r.stats.relocations, 14);
  t.equal(r.stats.unmatched, 1, 'task_struct___pre514 has no match on this kernel');
  const min = parseBtf(r.bytes);
  t.equal(new DataView(r.bytes.buffer, r.bytes.byteOffset).getUint16(0, true), 0xeb9f, 'BTF magic');
  t.equal(min.length - 1, r.stats.types);
  const ts = min.find('task_struct', 'STRUCT');
  t.equal(ts?.kind === 'STRUCT' && ts.size, full!.sizeof(full!.findByName('task_struct', 'STRUCT')[0]!), 'task_struct keeps its size');
  t.ok(ts?.kind === 'STRUCT' && ts.members.length < 10, 'task_struct keeps only the accessed members');
  sameResolution(t, OBJS, full!, min);

  // the CLI writes the same bytes
  const c = runCli(['btf', 'minimize', ...OBJS, '-o', MIN]);
  t.equal(c.code, 0, c.stderr);
  t.match(c.stderr, /14 CO-RE relocation\(s\)/);
  t.ok(fs.readFileSync(MIN).equals(Buffer.from(r.bytes)), 'CLI output = minimizeBtf()');

  // bpftool's reference
  const ref = path.join(TMP, 'bpftool.btf');
  const bt = spawnSync('bpftool', ['gen', 'min_core_btf', VMLINUX, ref, ...OBJS], { encoding: 'utf8' });
  if (bt.status !== 0) {
    t.comment(`bpftool gen min_core_btf unavailable: ${bt.stderr || bt.error?.message}`);
    return;
  }
  const refBytes = fs.readFileSync(ref);
  const refBtf = parseBtf(refBytes);
  t.same(composites(min), composites(refBtf), 'same structs/unions with the same members as bpftool');
  t.ok(r.bytes.length <= refBytes.length * 2 && refBytes.length <= r.bytes.length * 2, `size comparable to bpftool's (${r.bytes.length} vs ${refBytes.length})`);
  t.comment(refBytes.equals(Buffer.from(r.bytes)) ? 'byte-identical to bpftool gen min_core_btf' : 'differs from bpftool byte-wise');
  sameResolution(t, OBJS, refBtf, min);
});

// type, enum, bitfield, array and size relocations (the matrix objects only have field offsets/exists)
const FIXTURE_C = `#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>
char LICENSE[] SEC("license") = "GPL";
long out[16];
SEC("tp/sched/sched_process_exec")
int h(void *ctx)
{
	struct task_struct *t = (void *)bpf_get_current_task();
	out[0] = bpf_core_type_exists(struct task_struct);
	out[1] = bpf_core_type_size(struct sk_buff);
	out[2] = bpf_core_enum_value(enum bpf_map_type, BPF_MAP_TYPE_RINGBUF);
	out[3] = bpf_core_enum_value_exists(enum bpf_map_type, BPF_MAP_TYPE_RINGBUF);
	out[4] = bpf_core_type_matches(struct rb_root);
	out[5] = BPF_CORE_READ_BITFIELD_PROBED(t, sched_reset_on_fork);
	out[6] = bpf_core_field_size(t->comm);
	out[7] = __builtin_preserve_field_info(t->comm[3], 0);
	out[8] = __builtin_preserve_field_info(t->pid, 3);
	out[9] = bpf_core_type_matches(struct list_head);
	out[10] = BPF_CORE_READ(t, mm, mmap_base);
	return 0;
}
`;

t.test('type, enum value, bitfield, array and size relocations', { skip }, async (t) => {
  const src = path.join(BUILD, 'btfmin-kinds.bpf.c');
  if (!fs.existsSync(src) || fs.readFileSync(src, 'utf8') !== FIXTURE_C) fs.writeFileSync(src, FIXTURE_C);
  let obj: string;
  try {
    obj = buildBpf(src, path.join(BUILD, 'btfmin-kinds.bpf.o'));
  } catch (e) {
    const why = `cannot build the fixture: ${e instanceof Error ? e.message : String(e)}`;
    t.pass(why, { skip: why });
    return;
  }
  const o = load(obj);
  const kinds = new Set(o.coreRelocs.map((pr) => pr.relo.kind));
  for (const k of [CORE_KIND.TYPE_EXISTS, CORE_KIND.TYPE_SIZE, CORE_KIND.ENUMVAL_VALUE, CORE_KIND.ENUMVAL_EXISTS, CORE_KIND.TYPE_MATCHES, CORE_KIND.FIELD_LSHIFT_U64, CORE_KIND.FIELD_BYTE_SIZE]) {
    t.ok(kinds.has(k), `fixture has a relocation of kind ${k}`);
  }
  const r = minimizeBtf(full!, [o]);
  const min = parseBtf(r.bytes);
  t.equal(r.stats.unmatched, 0);
  sameResolution(t, [obj], full!, min);
  const rb = min.find('rb_root', 'STRUCT');
  t.ok(rb?.kind === 'STRUCT' && rb.members.length === 1, 'a type match keeps every member');
  const node = min.find('rb_node', 'STRUCT');
  t.ok(node?.kind === 'STRUCT' && node.members.length === 0 && node.size === 24, 'behind a pointer: the struct without members');
  const skb = min.find('sk_buff', 'STRUCT');
  t.ok(skb?.kind === 'STRUCT' && skb.members.length === 0, 'type size: no members kept');
  t.ok(r.bytes.length < 8 * 1024, `${r.bytes.length} bytes`);
  const ref = path.join(TMP, 'bpftool-kinds.btf');
  const bt = spawnSync('bpftool', ['gen', 'min_core_btf', VMLINUX, ref, obj], { encoding: 'utf8' });
  if (bt.status !== 0) {
    t.comment(`bpftool gen min_core_btf unavailable: ${bt.stderr || bt.error?.message}`);
    return;
  }
  const refBytes = fs.readFileSync(ref);
  t.same(composites(min), composites(parseBtf(refBytes)), 'same structs/unions with the same members as bpftool');
  t.comment(refBytes.equals(Buffer.from(r.bytes)) ? 'byte-identical to bpftool gen min_core_btf' : 'differs from bpftool byte-wise');
});

t.test('CLI: usage errors exit 2, a non-BPF input exits 1', async (t) => {
  let r = runCli(['btf', 'minimize']);
  t.equal(r.code, 2);
  t.match(r.stderr, /minimize needs at least one BPF object/);
  r = runCli(['btf', 'minimize', 'x.bpf.o', '-o']);
  t.equal(r.code, 2);
  t.match(r.stderr, /-o needs a value/);
  r = runCli(['btf', 'minimize', 'x.bpf.o', '--frob']);
  t.equal(r.code, 2);
  const notBpf = path.join(TMP, 'not-bpf.o');
  fs.writeFileSync(notBpf, 'hello, not an ELF file\n');
  r = runCli(['btf', 'minimize', notBpf, '-o', path.join(TMP, 'out.btf')]);
  t.equal(r.code, 1);
  t.match(r.stderr, `${notBpf}: not a usable BPF object: not a valid ELF object`);
  t.notOk(fs.existsSync(path.join(TMP, 'out.btf')), 'nothing written');
  r = runCli(['btf', 'minimize', OBJS[0]!, '--btf', notBpf, '-o', path.join(TMP, 'out.btf')]);
  t.equal(r.code, 1);
  t.match(r.stderr, /cannot read BTF: /);
});

// ---- the real thing: bootstrap with only the minimized BTF -------------------------------------

const canNs = !skip && process.getuid?.() === 0 && spawnSync('unshare', ['-m', 'true']).status === 0 && fs.existsSync(path.join(MATRIX, 'bootstrap.wasm'));

t.test('bootstrap runs without vmlinux BTF, with the minimized BTF from a btfhub-archive tree', { skip: !canNs && 'needs root, unshare, kernel BTF and matrix/build' }, async (t) => {
  const cacheDir = path.join(TMP, 'cache');
  const archive = path.join(TMP, 'archive');
  const tg = hubTarget(undefined, cacheDir);
  const minBytes = minimizeBtf(full!, [load(OBJS[0]!)]).bytes;
  const pack = path.join(TMP, 'pack');
  fs.mkdirSync(pack);
  fs.writeFileSync(path.join(pack, `${os.release()}.btf`), minBytes);
  const file = path.join(archive, ...tg.relPath.split('/'));
  fs.mkdirSync(path.dirname(file), { recursive: true });
  execFileSync('tar', ['-C', pack, '-cJf', file, `${os.release()}.btf`]);

  const env = { ...process.env, WASM_BPF_CACHE_DIR: cacheDir };
  const argv = [process.execPath, CLI, 'run', '--btfhub-archive', archive, path.join(MATRIX, 'bootstrap.wasm'), '-j'];
  const run = new Running(
    spawn('unshare', ['-m', 'sh', '-c', `mount --make-rprivate / && mount --bind /dev/null ${VMLINUX} && exec ${argv.join(' ')}`], { env, stdio: ['ignore', 'pipe', 'pipe'] }),
  );
  await run.attached('bootstrap');
  t.match(run.stderr, `fetched from ${file}`);
  t.ok(fs.readFileSync(tg.cachePath).equals(Buffer.from(minBytes)), 'the cached BTF is the minimized one');
  let pid = 0;
  const deadline = Date.now() + 15_000;
  const execOf = (p: number): AppEvent | undefined => run.events((e) => e.event === 'exec' && e['pid'] === p)[0];
  while (!execOf(pid)) {
    if (Date.now() > deadline || run.child.exitCode !== null) break;
    pid = spawnSync('/bin/sh', ['-c', 'exit 3']).pid ?? 0;
    await new Promise((r) => setTimeout(r, 100));
  }
  t.equal(execOf(pid)?.['filename'], '/bin/sh', `the exec event of /bin/sh\n${run.stdout.slice(-2000)}\n${run.stderr}`);
  t.equal((await run.interrupt('SIGINT')).code, 130);
});
