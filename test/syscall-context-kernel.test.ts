// The context builder (backends/userspace/syscalls/context.ts) against the kernel itself: tracepoint programs on
// sys_enter_openat, sys_exit_openat, raw_syscalls/sys_enter|sys_exit and sched_process_exec|exit copy their ctx
// bytes into a ring buffer while a child makes an openat with known registers and execs; every field of every record
// must equal what the builder makes from the same values. And the syscall numbers newer than the installed headers
// (gen.ts NEWER) fire their own sys_enter_<name>. Needs root (bpf(), tracefs).
import t from 'tap';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { execFileSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { loadNative } from '../backends/linux/native.js';
import { ensureMounts, kernelIds, settledLeaks } from './helpers.js';
import { eventLayout, syscallNumber, type EventLayout } from '../backends/userspace/syscalls/layout.js';
import { buildRecord, syscallRecord, type FieldValue } from '../backends/userspace/syscalls/context.js';
import { hostArch } from '../backends/userspace/syscalls/host.js';
import { NEWER } from '../backends/userspace/syscalls/gen.js';

const here = path.dirname(fileURLToPath(import.meta.url));
const native = loadNative(path.resolve(here, '../native/build/Release/wasm_bpf_native.node'));
const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'wbpf-sysctx-'));
t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
ensureMounts();

const MAGIC = 0x5eed0000f00dn; // openat's filename: an unmapped address, so the call fails with -EFAULT after the tracepoint
const ARGS = [-100n, MAGIC, 0x80241n, 0o640n, 0x1111n, 0x2222n]; // dfd AT_FDCWD, path, flags, mode, and r8/r9 (x4/x5)

// Each program copies the first 64 bytes of its ctx after a tag (bpf_probe_read_kernel: the verifier refuses
// direct reads of the 8-byte common header); only for the marked thread (set by the magic openat) so other processes don't count.
const BPF = String.raw`
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>
char LICENSE[] SEC("license") = "GPL";
struct { __uint(type, BPF_MAP_TYPE_RINGBUF); __uint(max_entries, 64 * 1024); } rb SEC(".maps");
struct { __uint(type, BPF_MAP_TYPE_HASH); __uint(max_entries, 64); __type(key, __u32); __type(value, __u32); } marked SEC(".maps");
struct rec { __u64 tag; __u64 w[8]; };
static __always_inline int copy(__u64 *ctx, __u64 tag) {
  struct rec *r = bpf_ringbuf_reserve(&rb, sizeof(*r), 0);
  if (!r) return 0;
  r->tag = tag;
  bpf_probe_read_kernel(r->w, sizeof(r->w), ctx); /* direct ctx reads start at 8: the header needs a probe read */
  bpf_ringbuf_submit(r, 0);
  return 0;
}
static __always_inline int is_marked(void) {
  __u32 tid = (__u32)bpf_get_current_pid_tgid();
  return bpf_map_lookup_elem(&marked, &tid) != 0;
}
SEC("tp/syscalls/sys_enter_openat") int enter_openat(__u64 *ctx) {
  if (ctx[3] != ${MAGIC}ULL) return 0;
  __u32 tid = (__u32)bpf_get_current_pid_tgid(), one = 1;
  bpf_map_update_elem(&marked, &tid, &one, BPF_ANY);
  return copy(ctx, 1);
}
SEC("tp/syscalls/sys_exit_openat") int exit_openat(__u64 *ctx) { return is_marked() ? copy(ctx, 2) : 0; }
SEC("tp/raw_syscalls/sys_enter") int raw_enter(__u64 *ctx) { return ctx[3] == ${MAGIC}ULL ? copy(ctx, 3) : 0; }
SEC("tp/raw_syscalls/sys_exit") int raw_exit(__u64 *ctx) { return is_marked() && ctx[1] == ${syscallNumber('openat')}ULL ? copy(ctx, 4) : 0; }
SEC("tp/sched/sched_process_exec") int proc_exec(__u64 *ctx) { return is_marked() ? copy(ctx, 5) : 0; }
SEC("tp/sched/sched_process_exit") int proc_exit(__u64 *ctx) { return is_marked() ? copy(ctx, 6) : 0; }
`;

// The child: the magic openat with six known argument registers, then exec of /bin/true (same thread).
const CHILD = String.raw`
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <unistd.h>
#include <sys/syscall.h>
int main(void) {
  printf("%d\n", (int)syscall(SYS_gettid));
  fflush(stdout);
  long r = syscall(SYS_openat, ${ARGS.map((a) => `${a}L`).join(', ')});
  printf("%ld\n", r < 0 ? (long)-errno : r);
  fflush(stdout);
  execl("/bin/true", "true", (char *)0);
  return 1;
}
`;

function build(): { obj: Uint8Array; child: string } {
  const multiarch = execFileSync('gcc', ['-print-multiarch'], { encoding: 'utf8' }).trim();
  fs.writeFileSync(path.join(dir, 'ctx.bpf.c'), BPF);
  execFileSync('clang-16', ['-g', '-O2', '-target', 'bpf', `-I/usr/include/${multiarch}`, '-c', path.join(dir, 'ctx.bpf.c'), '-o', path.join(dir, 'ctx.bpf.o')], { stdio: 'pipe' });
  fs.writeFileSync(path.join(dir, 'child.c'), CHILD);
  execFileSync('gcc', ['-O1', '-o', path.join(dir, 'child'), path.join(dir, 'child.c')], { stdio: 'pipe' });
  return { obj: new Uint8Array(fs.readFileSync(path.join(dir, 'ctx.bpf.o'))), child: path.join(dir, 'child') };
}

/** each field, named, as [kernel bytes, builder bytes] in hex, for a readable diff */
function fieldDiff(layout: EventLayout, kernel: Uint8Array, built: Uint8Array, skip: readonly string[]): Record<string, [string, string]> {
  if (built.length < layout.size) return { '(record)': [`${layout.size} bytes`, `${built.length} bytes`] };
  const hex = (b: Uint8Array): string => Buffer.from(b).toString('hex');
  const out: Record<string, [string, string]> = {};
  for (const f of layout.fields) {
    if (skip.includes(f.name)) continue;
    const k = hex(kernel.subarray(f.offset, f.offset + f.size));
    const b = hex(built.subarray(f.offset, f.offset + f.size));
    if (k !== b) out[f.name] = [k, b];
  }
  return out;
}

t.test('the kernel\'s ctx bytes equal the builder\'s, field by field', { skip: hostArch() === undefined && 'no table for this arch' }, async (t) => {
  const before = kernelIds();
  const { obj: bytes, child } = build();
  const obj = native.open(bytes, 'sysctx', { logLevel: 0 });
  const recs = new Map<number, Uint8Array>();
  let tid = 0;
  let ret = 0n;
  try {
    native.load(obj);
    const rbFd = native.maps(obj).find((m) => m.name === 'rb')!.fd;
    for (const p of ['enter_openat', 'exit_openat', 'raw_enter', 'raw_exit', 'proc_exec', 'proc_exit']) native.attachAuto(obj, p);
    const buf = native.ringbufOpen(rbFd);
    const [tidLine, retLine] = execFileSync(child, { encoding: 'utf8' }).trim().split('\n');
    tid = Number(tidLine);
    ret = BigInt(retLine!);
    const out = new ArrayBuffer(8192);
    for (let i = 0; i < 20 && recs.size < 6; i++) {
      const n = native.bufferPoll(buf, 100, -1, out);
      const dv = new DataView(out);
      let off = 0;
      for (let j = 0; j < n; j++) {
        const size = dv.getUint32(off, true);
        const tag = Number(dv.getBigUint64(off + 8, true));
        if (!recs.has(tag)) recs.set(tag, new Uint8Array(out.slice(off + 16, off + 8 + size))); // the first: exec's loader opens more
        off += 8 + ((size + 7) & ~7);
      }
    }
    native.bufferClose(buf);
  } finally {
    native.close(obj);
  }
  t.equal(ret, -14n, 'the magic openat failed with -EFAULT (after its tracepoint)');
  t.same([...recs.keys()].sort(), [1, 2, 3, 4, 5, 6], 'a record from each of the six tracepoints');
  const nr = BigInt(syscallNumber('openat')!);
  const sc = { nr, args: ARGS, ret };
  // A BPF program's ctx never shows the common header: the kernel writes its pt_regs pointer over those 8 bytes
  // (perf_trace_run_bpf_submit). The builder writes the pointer it is given there (header.regs).
  const check = (tag: number, event: string, build: (l: EventLayout, regs: bigint) => Uint8Array): void => {
    const l = eventLayout(event)!;
    const kernel = recs.get(tag);
    if (!kernel) return void t.fail(`no record of ${event}`);
    const regs = new DataView(kernel.buffer, kernel.byteOffset).getBigUint64(0, true);
    t.equal(regs >> 47n, 0x1ffffn, `${event}: the first 8 bytes are a kernel pointer (pt_regs), not the header`);
    const diff = fieldDiff(l, kernel, build(l, regs), []);
    t.same(diff, {}, `${event} (${l.source}): all ${l.fields.length} fields equal`);
  };
  check(1, 'syscalls/sys_enter_openat', (l, regs) => syscallRecord(l, { pid: tid, regs }, sc));
  check(2, 'syscalls/sys_exit_openat', (l, regs) => syscallRecord(l, { pid: tid, regs }, sc));
  check(3, 'raw_syscalls/sys_enter', (l, regs) => syscallRecord(l, { pid: tid, regs }, sc));
  check(4, 'raw_syscalls/sys_exit', (l, regs) => syscallRecord(l, { pid: tid, regs }, sc));
  // exec: the filename string sits after the fixed part; only its first bytes fit the 64 copied
  const execL = eventLayout('sched/sched_process_exec')!;
  check(5, 'sched/sched_process_exec', (l, regs) => buildRecord(l, { pid: tid, regs }, { filename: '/bin/true', pid: tid, old_pid: tid }));
  const e = recs.get(5);
  if (e) {
    const loc = new DataView(e.buffer, e.byteOffset).getUint32(execL.fields.find((f) => f.name === 'filename')!.offset, true);
    t.equal(Buffer.from(e.subarray(loc & 0xffff, (loc & 0xffff) + (loc >>> 16))).toString(), '/bin/true\0', 'the __data_loc string, where the builder puts it');
  }
  const exitL = eventLayout('sched/sched_process_exit')!;
  const exitValues: Record<string, FieldValue> = { comm: 'true', pid: tid, prio: 120 };
  if (exitL.fields.some((f) => f.name === 'group_dead')) exitValues.group_dead = 1;
  check(6, 'sched/sched_process_exit', (l, regs) => buildRecord(l, { pid: tid, regs }, exitValues));
  t.same(await settledLeaks(before), { progs: [], maps: [], links: [] }, 'no kernel object outlives the test');
});

// The numbers the installed 6.1 headers lack (gen.ts NEWER) are this kernel's: a program on each one's
// sys_enter_<name> records __syscall_nr while a child calls syscall(nr, -1, MAGIC, 0...) (all fail harmlessly).
// uprobe/uretprobe are left out: outside their trampolines the kernel answers them with SIGILL.
t.test('the numbers of syscalls newer than the headers are the kernel\'s', { skip: hostArch() !== 'x86_64' && 'x86_64 host' }, async (t) => {
  const arch = hostArch()!;
  const names = Object.keys(NEWER[arch]).filter((n) => n !== 'uprobe' && n !== 'uretprobe' && eventLayout(`syscalls/sys_enter_${n}`)?.source === 'tracefs');
  t.ok(names.length >= 10, `${names.length} newer syscalls have tracepoints here`);
  const src = [
    '#include <linux/bpf.h>',
    '#include <bpf/bpf_helpers.h>',
    'char LICENSE[] SEC("license") = "GPL";',
    'struct { __uint(type, BPF_MAP_TYPE_RINGBUF); __uint(max_entries, 64 * 1024); } rb SEC(".maps");',
    'static __always_inline int rec(__u64 *ctx, __u64 idx) {',
    `  if (ctx[3] != ${MAGIC}ULL) return 0;`,
    '  __u64 *r = bpf_ringbuf_reserve(&rb, 16, 0);',
    '  if (!r) return 0;',
    '  r[0] = idx; r[1] = ((int *)ctx)[2];',
    '  bpf_ringbuf_submit(r, 0);',
    '  return 0;',
    '}',
    ...names.map((n, i) => `SEC("tp/syscalls/sys_enter_${n}") int e${i}(__u64 *ctx) { return rec(ctx, ${i}); }`),
  ].join('\n');
  const child = [
    '#include <unistd.h>',
    '#include <sys/syscall.h>',
    `int main(void) { static const long nrs[] = { ${names.map((n) => NEWER[arch][n]).join(', ')} };`,
    `  for (unsigned i = 0; i < sizeof nrs / sizeof nrs[0]; i++) syscall(nrs[i], -1L, ${MAGIC}L, 0L, 0L, 0L, 0L);`,
    '  return 0; }',
  ].join('\n');
  const multiarch = execFileSync('gcc', ['-print-multiarch'], { encoding: 'utf8' }).trim();
  fs.writeFileSync(path.join(dir, 'newer.bpf.c'), src);
  execFileSync('clang-16', ['-g', '-O2', '-target', 'bpf', `-I/usr/include/${multiarch}`, '-c', path.join(dir, 'newer.bpf.c'), '-o', path.join(dir, 'newer.bpf.o')], { stdio: 'pipe' });
  fs.writeFileSync(path.join(dir, 'newer.c'), child);
  execFileSync('gcc', ['-O1', '-o', path.join(dir, 'newer'), path.join(dir, 'newer.c')], { stdio: 'pipe' });
  const before = kernelIds();
  const obj = native.open(new Uint8Array(fs.readFileSync(path.join(dir, 'newer.bpf.o'))), 'newer', { logLevel: 0 });
  const seen = new Map<string, number>();
  try {
    native.load(obj);
    names.forEach((_, i) => native.attachAuto(obj, `e${i}`));
    const buf = native.ringbufOpen(native.maps(obj).find((m) => m.name === 'rb')!.fd);
    execFileSync(path.join(dir, 'newer'));
    const out = new ArrayBuffer(16384);
    for (let i = 0; i < 20 && seen.size < names.length; i++) {
      const n = native.bufferPoll(buf, 100, -1, out);
      const dv = new DataView(out);
      let off = 0;
      for (let j = 0; j < n; j++) {
        const size = dv.getUint32(off, true);
        seen.set(names[Number(dv.getBigUint64(off + 8, true))]!, Number(dv.getBigInt64(off + 16, true)));
        off += 8 + ((size + 7) & ~7);
      }
    }
    native.bufferClose(buf);
  } finally {
    native.close(obj);
  }
  t.same(Object.fromEntries(seen), Object.fromEntries(names.map((n) => [n, syscallNumber(n)])), 'each sys_enter_<name> fired with the table\'s number');
  t.same(await settledLeaks(before), { progs: [], maps: [], links: [] }, 'no kernel object outlives the test');
});
