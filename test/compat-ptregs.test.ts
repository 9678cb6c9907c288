// compat/ptregs: pt_regs reads of a kprobe/uprobe object built for another arch, remapped to the host's.
//   - real: the matrix uprobe app built with -D__TARGET_ARCH_arm64 runs on this (x86_64) host and reads
//     the probed function's arguments and return value; without the pass it fails (CO-RE) or misreads
//     (no CO-RE); the x86 build is left byte-for-byte unchanged;
//   - synthetic: both directions (arm64 -> x86, x86 -> arm64) of the mapping on compiled objects, and
//     every refusal (PTREGS_UNSUPPORTED naming program, instruction and member).
import t from 'tap';
import fs from 'node:fs';
import path from 'node:path';
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { BUILD, CLI, GUEST_INCLUDE, ROOT, Running, ensureMounts } from './helpers.js';
import {
  ARM64_LAYOUT, X86_LAYOUT, PtRegsError, layoutFromBtf, mapRegister, mayNeedPtRegs, ptRegsEvidence, ptregsSettingsFromEnv, relocatePtRegs, type PtRegsResult,
} from '../compat/ptregs/index.js';
import { loadNative } from '../backends/linux/native.js';
import { loadObject } from '../src/object/loader.js';
import { parseBtf } from '../src/object/btf.js';
import { generateSkeleton } from '../src/guest/skeleton.js';

const MATRIX = path.join(ROOT, 'matrix');
const APP = path.join(MATRIX, 'apps', 'uprobe');
const SHIM = path.join(ROOT, 'compat', 'ptregs', 'include', 'arm64-user-pt-regs.h');
const OUT = path.join(BUILD, 'ptregs');
fs.mkdirSync(OUT, { recursive: true });
const X86 = process.arch === 'x64';

function clangBpf(src: string, out: string, defines: string[]): string {
  execFileSync('clang-16', [
    '-g', '-O2', '-target', 'bpf', ...defines, '-I', path.join(MATRIX, 'build'), '-I', APP, '-c', src, '-o', out,
  ]);
  return out;
}
const arm64 = (noCore = false): string[] => ['-D__TARGET_ARCH_arm64', '-include', SHIM, ...(noCore ? ['-DPTREGS_NO_CORE'] : [])];

/** a BPF C source in test/build/ptregs, compiled */
function fixture(name: string, body: string, defines: string[]): Uint8Array {
  const src = path.join(OUT, `${name}.bpf.c`);
  fs.writeFileSync(src, `#include "vmlinux.h"\n#include <bpf/bpf_helpers.h>\n#include <bpf/bpf_tracing.h>\n#include <bpf/bpf_core_read.h>\nchar LICENSE[] SEC("license") = "GPL";\n${body}\n`);
  return new Uint8Array(fs.readFileSync(clangBpf(src, path.join(OUT, `${name}.bpf.o`), defines)));
}

const uprobeObj = (name: string, defines: string[]): string =>
  clangBpf(path.join(APP, 'uprobe.bpf.c'), path.join(OUT, `${name}.bpf.o`), defines);

const summary = (r: PtRegsResult): string[] => r.patches.map((p) => `${p.program}#${p.insn} ${p.via} ${p.from}->${p.to} ${p.oldValue}->${p.newValue}`);

function refusal(t: Tap.Test, fn: () => unknown, program: string, insn: number, member: RegExp | string): void {
  try {
    fn();
    t.fail('expected PTREGS_UNSUPPORTED');
  } catch (e) {
    t.ok(e instanceof PtRegsError, `PtRegsError: ${(e as Error).message}`);
    const err = e as PtRegsError;
    t.equal(err.code, 'PTREGS_UNSUPPORTED');
    t.equal(err.program, program);
    t.equal(err.insn, insn);
    t.match(err.member, member);
    t.match(err.message, new RegExp(`program '${program}' instruction ${insn}`));
  }
}

// ---- the mapping ------------------------------------------------------------------------------------

t.test('register mapping, both ways', async (t) => {
  const a2x = (r: string, k: 'entry' | 'return' | 'unknown' = 'entry'): string => mapRegister('arm64', 'x86', r, k);
  t.same([0, 1, 2, 3, 4, 5].map((i) => a2x(`regs[${i}]`)), ['di', 'si', 'dx', 'cx', 'r8', 'r9']);
  t.equal(a2x('regs[0]', 'return'), 'ax', 'regs[0] in a return probe is the return value');
  t.same(['sp', 'pc', 'regs[29]', 'orig_x0'].map((r) => a2x(r)), ['sp', 'ip', 'bp', 'di']);
  for (const r of ['regs[6]', 'regs[7]', 'regs[30]', 'regs[12]', 'pstate']) t.match(a2x(r), /^!/, `${r} refused`);
  t.match(a2x('regs[0]', 'unknown'), /^!.*both the first argument and the return value/);
  const x2a = (r: string): string => mapRegister('x86', 'arm64', r, 'entry');
  t.same(['di', 'si', 'dx', 'cx', 'r8', 'r9', 'ax', 'sp', 'ip', 'bp', 'r10'].map(x2a),
    ['regs[0]', 'regs[1]', 'regs[2]', 'regs[3]', 'regs[4]', 'regs[5]', 'regs[0]', 'sp', 'pc', 'regs[29]', 'regs[3]']);
  for (const r of ['bx', 'r11', 'r15', 'orig_ax', 'flags', 'cs']) t.match(x2a(r), /^!/, `${r} refused`);
  t.equal(mapRegister('x86', 'x86', 'bx', 'entry'), 'bx', 'same arch: identity');
});

t.test('the host layout comes from the kernel BTF', { skip: !X86 || !fs.existsSync('/sys/kernel/btf/vmlinux') }, async (t) => {
  const l = layoutFromBtf(parseBtf(new Uint8Array(fs.readFileSync('/sys/kernel/btf/vmlinux'))), 'x86');
  t.ok(l);
  for (const r of ['di', 'si', 'dx', 'cx', 'r8', 'r9', 'ax', 'sp', 'ip', 'bp', 'r10']) t.equal(l![r], X86_LAYOUT[r], r);
});

// ---- arm64 objects on an x86 host ---------------------------------------------------------------------

const toX86 = { hostArch: 'x86', hostLayout: X86_LAYOUT } as const;
const toArm64 = { hostArch: 'arm64', hostLayout: ARM64_LAYOUT } as const;

t.test('arm64 uprobe (CO-RE) -> x86: loads patched, CO-RE records dropped', async (t) => {
  const bytes = new Uint8Array(fs.readFileSync(uprobeObj('uprobe-arm64', arm64())));
  const r = relocatePtRegs(bytes, toX86);
  t.equal(r.sourceArch, 'arm64', 'inferred from the CO-RE records on user_pt_regs');
  t.same(summary(r), [
    'uprobe_add#0 core regs[1]->si 8->104',
    'uprobe_add#1 core regs[0]->di 0->112',
    'uretprobe_add#0 core regs[0]->ax 0->80',
  ]);
  t.equal(r.removedCoreRecords, 3);
  t.equal(r.bytes.length, bytes.length, 'same size');
  const after = loadObject(r.bytes);
  t.equal(after.coreRelocs.length, 0, 'no CO-RE record left for libbpf to fail on');
  t.equal(loadObject(bytes).coreRelocs.length, 3, 'the input is not modified');
});

t.test('arm64 uprobe without CO-RE -> x86: ctx loads tracked and patched', async (t) => {
  const bytes = new Uint8Array(fs.readFileSync(uprobeObj('uprobe-arm64-noco', arm64(true))));
  t.equal(loadObject(bytes).coreRelocs.length, 0);
  const r = relocatePtRegs(bytes, { ...toX86, sourceArch: 'arm64' });
  t.same(summary(r), [
    'uprobe_add#0 ctx regs[1]->si 8->104',
    'uprobe_add#1 ctx regs[0]->di 0->112',
    'uretprobe_add#0 ctx regs[0]->ax 0->80',
  ]);
  // nothing in this object says arm64: its only pt_regs in BTF is the x86 one from vmlinux.h
  t.equal(relocatePtRegs(bytes, toX86).patches.length, 0, 'without a source arch: left alone');
});

t.test('arm64 sp, pc, fp and the syscall orig_x0 -> x86', async (t) => {
  const bytes = fixture('regs-arm64', `
SEC("kprobe/do_nanosleep") int k(struct pt_regs *ctx) {
  return (PT_REGS_SP(ctx) + PT_REGS_IP(ctx) + PT_REGS_FP(ctx)) & 0xff;
}
SEC("ksyscall/kill") int sys(struct pt_regs *ctx) {
  struct pt_regs *regs = (struct pt_regs *)PT_REGS_PARM1(ctx);
  return PT_REGS_PARM1_CORE_SYSCALL(regs) & 0xff;
}`, arm64());
  const r = relocatePtRegs(bytes, toX86);
  const s = summary(r);
  t.ok(s.some((x) => /^k#\d+ core sp->sp 248->152$/.test(x)), s.join('\n'));
  t.ok(s.some((x) => /^k#\d+ core pc->ip 256->128$/.test(x)));
  t.ok(s.some((x) => /^k#\d+ core regs\[29\]->bp 232->32$/.test(x)));
  t.ok(s.some((x) => /^sys#\d+ core regs\[0\]->di 0->112$/.test(x)), 'PARM1 of the wrapper');
  t.ok(s.some((x) => /^sys#\d+ core orig_x0->di 0->112$/.test(x)), 'BPF_CORE_READ(regs, orig_x0) (pt_regs___arm64: local offset 0): the probe-read offset');
  t.equal(loadObject(r.bytes).coreRelocs.length, 0);
});

t.test('arm64 PT_REGS_PARMn_CORE (bpf_probe_read of ctx + a CO-RE offset) -> x86', async (t) => {
  const bytes = fixture('parm-core-arm64', `
SEC("kprobe/do_nanosleep") int kc(struct pt_regs *ctx) { return (PT_REGS_PARM1_CORE(ctx) + PT_REGS_PARM2_CORE(ctx)) & 0xff; }`, arm64());
  const r = relocatePtRegs(bytes, toX86);
  t.same(r.patches.map((p) => `${p.from}->${p.to} ${p.oldValue}->${p.newValue}`), ['regs[0]->di 0->112', 'regs[1]->si 8->104'],
    'the CO-RE-set offsets are patched; the ctx pointer reaching the read helper is accepted');
  t.equal(loadObject(r.bytes).coreRelocs.length, 0);
});

t.test('refusals: arm64 registers x86 has no counterpart for', async (t) => {
  const lr = fixture('lr-arm64', `SEC("kprobe/do_nanosleep") int lr(struct pt_regs *ctx) { return PT_REGS_RET(ctx) & 1; }`, arm64());
  refusal(t, () => relocatePtRegs(lr, toX86), 'lr', 0, 'regs[30]');
  const p7 = fixture('p7-arm64', `SEC("uprobe") int p7(struct pt_regs *ctx) { return ((struct user_pt_regs *)ctx)->regs[6] & 1; }`, arm64());
  refusal(t, () => relocatePtRegs(p7, toX86), 'p7', 0, 'regs[6]');
  // a subprogram reading regs[0] called from an entry and a return probe: argument or return value?
  const both = fixture('both-arm64', `
__noinline int first(struct pt_regs *ctx) { return PT_REGS_PARM1(ctx) & 0xff; }
SEC("uprobe") int in(struct pt_regs *ctx) { return first(ctx); }
SEC("uretprobe") int out(struct pt_regs *ctx) { return first(ctx); }`, arm64());
  refusal(t, () => relocatePtRegs(both, toX86), 'in', 2, 'regs[0]'); // 2: the subprogram, appended after call + exit
  // no CO-RE: a ctx load straddling two registers
  const cross = fixture('cross-arm64', `SEC("uprobe") int cross(struct pt_regs *ctx) { return *(unsigned long *)((char *)ctx + 12) & 1; }`, arm64(true));
  refusal(t, () => relocatePtRegs(cross, { ...toX86, sourceArch: 'arm64' }), 'cross', 0, '+12');
  // ... while half of one is fine: the high half of regs[1] is the high half of si
  const half = fixture('half-arm64', `SEC("uprobe") int half(struct pt_regs *ctx) { return *((unsigned int *)ctx + 3); }`, arm64(true));
  t.same(summary(relocatePtRegs(half, { ...toX86, sourceArch: 'arm64' })), ['half#0 ctx regs[1]->si 12->108']);
});

t.test('refusals: a ctx pointer the dataflow cannot follow (no CO-RE)', async (t) => {
  const bytes = new Uint8Array(fs.readFileSync(uprobeObj('uprobe-arm64-noco', arm64(true))));
  const obj = loadObject(bytes);
  const sec = obj.elf.section('uprobe')!;
  // insn 2 (r7 = 0) -> *(u64 *)(r10 - 8) = r1: the ctx pointer spilled to the stack
  const spilled = new Uint8Array(bytes);
  spilled.set([0x7b, 0x1a, 0xf8, 0xff, 0, 0, 0, 0], sec.offset + 2 * 8);
  refusal(t, () => relocatePtRegs(spilled, { ...toX86, sourceArch: 'arm64' }), 'uprobe_add', 2, 'ctx');
  // ctx kept in r6 (insn 2), then handed to bpf_probe_read_kernel as the source (insns 6, 7)
  const helper = new Uint8Array(bytes);
  helper.set([0xbf, 0x16, 0, 0, 0, 0, 0, 0], sec.offset + 2 * 8); // r6 = r1
  helper.set([0xbf, 0x63, 0, 0, 0, 0, 0, 0], sec.offset + 6 * 8); // r3 = r6
  helper.set([0x85, 0, 0, 0, 113, 0, 0, 0], sec.offset + 7 * 8); // call bpf_probe_read_kernel
  refusal(t, () => relocatePtRegs(helper, { ...toX86, sourceArch: 'arm64' }), 'uprobe_add', 7, 'ctx');
});

// ---- x86 objects ----------------------------------------------------------------------------------------

t.test('x86 uprobe -> arm64 host (synthetic layout)', async (t) => {
  const bytes = new Uint8Array(fs.readFileSync(uprobeObj('uprobe-x86', ['-D__TARGET_ARCH_x86'])));
  const r = relocatePtRegs(bytes, toArm64);
  t.equal(r.sourceArch, 'x86');
  t.same(summary(r), [
    'uprobe_add#0 core si->regs[1] 104->8',
    'uprobe_add#1 core di->regs[0] 112->0',
    'uretprobe_add#0 core ax->regs[0] 80->0',
  ]);
  t.equal(loadObject(r.bytes).coreRelocs.length, 0);
  const regs = fixture('regs-x86', `
SEC("kprobe/do_nanosleep") int k(struct pt_regs *ctx) { return (PT_REGS_SP(ctx) + PT_REGS_IP(ctx) + PT_REGS_FP(ctx)) & 0xff; }
SEC("ksyscall/kill") int sys(struct pt_regs *ctx) { return ctx->r10 & 0xff; }
SEC("kprobe/do_nanosleep") int bx(struct pt_regs *ctx) { return ctx->bx & 0xff; }`, ['-D__TARGET_ARCH_x86']);
  refusal(t, () => relocatePtRegs(regs, toArm64), 'bx', 0, 'bx');
  const ok = fixture('regs-x86-ok', `
SEC("kprobe/do_nanosleep") int k(struct pt_regs *ctx) { return (PT_REGS_SP(ctx) + PT_REGS_IP(ctx) + PT_REGS_FP(ctx)) & 0xff; }
SEC("ksyscall/kill") int sys(struct pt_regs *ctx) { return ctx->r10 & 0xff; }`, ['-D__TARGET_ARCH_x86']);
  const s = summary(relocatePtRegs(ok, toArm64));
  t.ok(s.some((x) => /^k#\d+ core sp->sp 152->248$/.test(x)), s.join('\n'));
  t.ok(s.some((x) => /^k#\d+ core ip->pc 128->256$/.test(x)));
  t.ok(s.some((x) => /^k#\d+ core bp->regs\[29\] 32->232$/.test(x)));
  t.ok(s.some((x) => /^sys#\d+ core r10->regs\[3\] 56->24$/.test(x)));
});

t.test('the x86 build on an x86 host: unchanged', { skip: !X86 }, async (t) => {
  const bytes = new Uint8Array(fs.readFileSync(uprobeObj('uprobe-x86', ['-D__TARGET_ARCH_x86'])));
  const r = relocatePtRegs(bytes);
  t.equal(r.bytes, bytes, 'the same buffer');
  t.equal(r.patches.length, 0);
  t.match(r.skipped, /host arch/);
});

// ---- real: the arm64 build of the uprobe app on this host -------------------------------------------------

function guest(name: string, obj: string): string {
  const dir = path.join(OUT, name);
  fs.mkdirSync(dir, { recursive: true });
  fs.writeFileSync(path.join(dir, 'uprobe.skel.h'), generateSkeleton(new Uint8Array(fs.readFileSync(obj)), 'uprobe_bpf'));
  const out = path.join(OUT, `${name}.wasm`);
  execFileSync('clang-16', [
    '--target=wasm32-wasi', '--sysroot=/usr', '-O2', '-I', dir, '-I', GUEST_INCLUDE, '-I', path.join(MATRIX, 'apps', 'common'),
    '-I', APP, path.join(APP, 'uprobe.c'), '-o', out, '-Wl,--allow-undefined,--export-table', '-Wl,--strip-debug',
  ]);
  return out;
}

function target(): string {
  const built = path.join(MATRIX, 'build', 'uprobe-target');
  if (fs.existsSync(built)) return built;
  const out = path.join(OUT, 'uprobe-target');
  execFileSync('gcc', ['-O2', '-g', path.join(APP, 'target.c'), '-o', out]);
  return out;
}

/** runs the guest against uprobe-target 3 4 (2 calls); the UPROBE/URETPROBE lines of that pid, or the failure */
async function traced(wasm: string, env: NodeJS.ProcessEnv = {}): Promise<{ lines: string[]; run: Running; pid: number }> {
  const run = new Running(spawn(process.execPath, [CLI, 'run', wasm, target()], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, ...env } }));
  try {
    await run.waitFor(/^# uprobe/);
  } catch {
    await run.exited;
    return { lines: [], run, pid: 0 };
  }
  const child = spawnSync(target(), ['3', '4', '2', '0'], { encoding: 'utf8' });
  const pid = child.pid ?? 0;
  const deadline = Date.now() + 10_000;
  while (run.lines(new RegExp(`^URETPROBE pid=${pid} `)).length < 2 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
  await new Promise((r) => setTimeout(r, 200));
  run.child.kill('SIGINT');
  await run.exited;
  return { lines: run.lines(new RegExp(`^U(RET)?PROBE pid=${pid} `)), run, pid };
}

const realSkip = !X86 || process.getuid?.() !== 0 ? 'needs root on an x86_64 host' : false;

t.test('real: the arm64 CO-RE build of the uprobe app reads a, b and ret on this host', { skip: realSkip }, async (t) => {
  ensureMounts();
  const wasm = guest('uprobe-arm64', uprobeObj('uprobe-arm64', arm64()));
  const ok = await traced(wasm);
  t.same(ok.lines, [
    `UPROBE pid=${ok.pid} a=3 b=4`, `URETPROBE pid=${ok.pid} ret=7`,
    `UPROBE pid=${ok.pid} a=3 b=4`, `URETPROBE pid=${ok.pid} ret=7`,
  ], ok.run.stderr);
  // without the pass, libbpf finds no user_pt_regs in the kernel BTF and the load fails
  const off = await traced(wasm, { WASM_BPF_NO_PTREGS: '1' });
  t.same(off.lines, []);
  t.match(off.run.stderr, /refused to load program 'uprobe_add'.*EINVAL/);
  t.match(off.run.stderr, /CO-RE relocation failed/);
});

t.test('real: the arm64 build without CO-RE, with its arch named', { skip: realSkip }, async (t) => {
  ensureMounts();
  const wasm = guest('uprobe-arm64-noco', uprobeObj('uprobe-arm64-noco', arm64(true)));
  const ok = await traced(wasm, { WASM_BPF_PTREGS_SOURCE_ARCH: 'arm64' });
  t.same(ok.lines, [
    `UPROBE pid=${ok.pid} a=3 b=4`, `URETPROBE pid=${ok.pid} ret=7`,
    `UPROBE pid=${ok.pid} a=3 b=4`, `URETPROBE pid=${ok.pid} ret=7`,
  ], ok.run.stderr);
  // unpatched, regs[0]/regs[1] at offsets 0/8 are x86's r15/r14: it loads, and misreads
  const off = await traced(wasm, { WASM_BPF_NO_PTREGS: '1' });
  t.equal(off.lines.length, 4, off.run.stderr);
  t.notOk(off.lines.includes(`UPROBE pid=${off.pid} a=3 b=4`), off.lines.join('\n'));
  t.notOk(off.lines.includes(`URETPROBE pid=${off.pid} ret=7`));
});

t.test('real: the x86 build still works (the pass leaves it alone)', { skip: realSkip }, async (t) => {
  ensureMounts();
  const wasm = guest('uprobe-x86', uprobeObj('uprobe-x86', ['-D__TARGET_ARCH_x86']));
  const ok = await traced(wasm);
  t.same(ok.lines, [
    `UPROBE pid=${ok.pid} a=3 b=4`, `URETPROBE pid=${ok.pid} ret=7`,
    `UPROBE pid=${ok.pid} a=3 b=4`, `URETPROBE pid=${ok.pid} ret=7`,
  ], ok.run.stderr);
});

t.test('the quick check before the pass (libbpf\'s view of the pt_regs members) never skips an object the pass would change', async (t) => {
  const native = loadNative();
  const objects = [
    ...fs.readdirSync(OUT).filter((f) => f.endsWith('.bpf.o')).map((f) => path.join(OUT, f)),
    ...fs.readdirSync(path.join(MATRIX, 'build')).filter((f) => f.endsWith('.bpf.o')).map((f) => path.join(MATRIX, 'build', f)),
  ];
  t.ok(objects.length >= 20, `${objects.length} objects: this file's fixtures and the matrix apps`);
  let skipped = 0;
  let checked = 0;
  for (const file of objects) {
    const bytes = new Uint8Array(fs.readFileSync(file));
    let obj: number;
    try {
      obj = native.open(bytes, 'ptregs_check', { logLevel: 0 });
    } catch {
      continue; // libbpf refuses it before the pass would matter
    }
    const facts = native.ptRegsMembers(obj);
    native.close(obj);
    // the selector reads the same evidence from its own parse (src/object): libbpf's view is the oracle
    let parsed: ReturnType<typeof loadObject> | undefined;
    try {
      parsed = loadObject(bytes);
    } catch {
      parsed = undefined;
    }
    if (parsed) t.same(ptRegsEvidence(parsed.btf), { members: [...facts.members].sort(), userPtRegs: facts.userPtRegs }, `${path.basename(file)}: the same pt_regs evidence as libbpf's parse`);
    for (const host of ['x86', 'arm64'] as const) {
      let changes: boolean;
      try {
        changes = relocatePtRegs(bytes, { hostArch: host }).bytes !== bytes;
      } catch {
        changes = true; // a refusal must be reached too
      }
      const may = mayNeedPtRegs(facts, host);
      checked++;
      if (!may) skipped++;
      if (changes && !may) t.fail(`${path.basename(file)} on ${host}: skipped, but the pass changes it`);
    }
  }
  t.ok(skipped > 0 && skipped < checked, `${skipped} of ${checked} (object, host) pairs skip the pass`);
  const x86 = { members: ['di', 'si', 'sp', 'ip', 'flags'], userPtRegs: false };
  const a64 = { members: ['regs', 'sp', 'pc', 'pstate'], userPtRegs: true };
  t.notOk(mayNeedPtRegs(x86, 'x86'), 'an x86 layout on x86: skip');
  t.ok(mayNeedPtRegs(a64, 'x86'), 'an arm64 layout on x86: the pass');
  t.ok(mayNeedPtRegs(x86, 'arm64'), 'an x86 layout on arm64: the pass');
  t.notOk(mayNeedPtRegs({ members: ['sp'], userPtRegs: false }, 'arm64'), 'sp alone belongs to both');
  t.notOk(mayNeedPtRegs({ members: [], userPtRegs: false }, 'x86'), 'no pt_regs at all: skip');
  t.ok(mayNeedPtRegs(x86, 'x86', ptregsSettingsFromEnv({ WASM_BPF_PTREGS_SOURCE_ARCH: 'arm64' })), 'WASM_BPF_PTREGS_SOURCE_ARCH forces the pass');
  t.notOk(mayNeedPtRegs(a64, 'x86', ptregsSettingsFromEnv({ WASM_BPF_NO_PTREGS: '1' })), 'WASM_BPF_NO_PTREGS turns it off');
  t.same(ptregsSettingsFromEnv({ WASM_BPF_PTREGS_SOURCE_ARCH: 'aarch64' }), { sourceArch: 'arm64' });
  t.same(ptregsSettingsFromEnv({ WASM_BPF_PTREGS_SOURCE_ARCH: 'sparc' }), {}, 'an arch the pass does not know: no setting');
});
