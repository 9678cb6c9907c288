// The userspace backend end to end: objects loaded by backends/userspace/index.ts, programs run in the
// VM with a ctx, results read through mapOperate / openRecords exactly as the ABI layer (src/abi/host.ts)
// calls them: guest memory as a Uint8Array with key/value offsets, records as [u32 size][u32 0][data].
import t, { type Test } from 'tap';
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { BUILD, FIXTURES, ROOT, buildBpf } from './helpers.js';
import { BackendError } from '../src/errors.js';
import { parseBtf } from '../src/object/btf.js';
import { type CurrentTask, UserspaceBackend, type UserspaceObject } from '../backends/userspace/index.js';
import { VmError } from '../backends/userspace/vm/index.js';

const US = path.join(FIXTURES, 'userspace');
const MATRIX = path.join(ROOT, 'matrix', 'build');
const VMLINUX = '/sys/kernel/btf/vmlinux';
const LOOKUP = 1;
const UPDATE = 2;
const DELETE = 3;
const NEXT_KEY = 4;

function fixture(name: string, defines: string[] = []): Uint8Array {
  const suffix = defines.length ? `-${defines.map((d) => d.replace(/\W/g, '')).join('')}` : '';
  const out = buildBpf(path.join(US, `${name}.bpf.c`), path.join(BUILD, `us-${name}${suffix}.bpf.o`), ['-D__TARGET_ARCH_x86', ...defines]);
  return new Uint8Array(readFileSync(out));
}
/** fn throws an error with this errno (and message) */
function throwsErrno(t: Test, fn: () => unknown, errno: number, message?: RegExp): void {
  try {
    fn();
    t.fail(`expected errno ${errno}`);
  } catch (e) {
    t.equal((e as { errno?: number }).errno, errno, `errno ${errno}`);
    if (message) t.match((e as Error).message, message);
  }
}
const loadOpts = { objectName: 'test', verbose: false, log: (): void => {} };
const TASK: CurrentTask = { pid: 1234, tgid: 1200, uid: 1000, gid: 100, comm: 'a-rather-long-command-name' };

/** a guest memory and the ABI layer's view of a map operation */
class Guest {
  readonly mem = new Uint8Array(65536);
  readonly dv = new DataView(this.mem.buffer);
  constructor(readonly obj: UserspaceObject) {}
  fd(name: string): number {
    const m = this.obj.maps.find((x) => x.name === name);
    if (!m) throw new Error(`no map ${name}`);
    return m.fd;
  }
  /** lookup with a u32 key; the value at offset 1024 */
  lookup(name: string, key: number, size = 8): { r: number; value: Uint8Array } {
    this.dv.setUint32(0, key, true);
    const r = this.obj.mapOperate(LOOKUP, this.fd(name), this.mem, 0, 1024, 0);
    return { r, value: this.mem.slice(1024, 1024 + size) };
  }
  u64(name: string, key: number): bigint {
    const { r, value } = this.lookup(name, key);
    if (r !== 0) throw new Error(`lookup ${name}[${key}]: ${r}`);
    return new DataView(value.buffer).getBigUint64(0, true);
  }
}

t.test('end to end: helpers, hash map, ring buffer, globals, per-CPU, queue, trace_printk', async (t) => {
  for (const engine of ['interp', 'jit', 'native'] as const) {
    const traced: string[] = [];
    const backend = new UserspaceBackend({ ncpus: 2, engine, task: TASK, trace: (s) => traced.push(s) });
    const obj = backend.load(fixture('e2e'), loadOpts);
    t.teardown(() => backend.dispose());
    const g = new Guest(obj);
    t.same(obj.programs.map((p) => [p.name, p.section, p.type]), [
      ['on_event', 'tp/syscalls/sys_enter_getpid', 5],
      ['on_perf', 'tp/syscalls/sys_enter_getppid', 5],
    ]);
    t.same(obj.maps.map((m) => [m.name, m.type, m.opValueSize]), [
      ['counts', 1, 8], ['percpu', 6, 16], ['q', 22, 4], ['rb', 27, 0], ['perf', 4, 4], ['.rodata', 2, 32], ['.bss', 2, 12],
    ]);
    const ctx = new Uint8Array(8);
    new DataView(ctx.buffer).setBigUint64(0, 77n, true);
    for (let i = 0; i < 3; i++) t.equal(obj.run('on_event', ctx, { cpu: i % 2 }).r0, 0n, `${engine}: run ${i}`);
    t.equal(obj.run('on_event', ctx, { cpu: 1, task: { ...TASK, pid: 7, tgid: 7, uid: 5, comm: 'other' } }).r0, 0n);

    // counts[tgid] through the ABI's lookup
    t.equal(g.u64('counts', 1200), 3n, `${engine}: counts[1200] = 3`);
    t.equal(g.u64('counts', 7), 1n);
    t.equal(g.lookup('counts', 999).r, -2, 'missing key: -ENOENT');
    // walk the keys as the guest's bpf_map_get_next_key loop does
    const keys: number[] = [];
    let r = obj.mapOperate(NEXT_KEY, g.fd('counts'), g.mem, -1, 8, 0);
    while (r === 0) {
      keys.push(g.dv.getUint32(8, true));
      g.dv.setUint32(0, g.dv.getUint32(8, true), true);
      r = obj.mapOperate(NEXT_KEY, g.fd('counts'), g.mem, 0, 8, 0);
    }
    t.same(keys.sort((a, b) => a - b), [7, 1200]);
    t.equal(r, -2, 'end of the walk: -ENOENT');
    // globals: total in .bss (offset 0), last_pid at 8
    const bss = g.lookup('.bss', 0, 12);
    t.equal(bss.r, 0);
    t.equal(new DataView(bss.value.buffer).getBigUint64(0, true), 4n, '.bss total += scale(1) four times');
    t.equal(new DataView(bss.value.buffer).getUint32(8, true), 7, 'last_pid');
    // per-CPU counter: two runs on each CPU
    const pc = g.lookup('percpu', 0, 16).value;
    t.same([new DataView(pc.buffer).getBigUint64(0, true), new DataView(pc.buffer).getBigUint64(8, true)], [2n, 2n], 'one value per CPU');
    // the queue holds the last 4 pids pushed (BPF_EXIST overwrote none: 4 pushes into 4 slots)
    const qv: number[] = [];
    for (;;) {
      const rr = obj.mapOperate(21, g.fd('q'), g.mem, -1, 1024, 0);
      if (rr !== 0) break;
      qv.push(g.dv.getUint32(1024, true));
    }
    t.same(qv, [1200, 1200, 1200, 7], 'queue: FIFO');
    // ring buffer records, as the ABI layer drains them
    const src = obj.openRecords(g.fd('rb'));
    const out = new Uint8Array(4096);
    const n = src.poll(0, out);
    t.equal(n, 4, 'four events');
    const dv = new DataView(out.buffer);
    let off = 0;
    const events = [];
    for (let i = 0; i < n; i++) {
      const size = dv.getUint32(off, true);
      const e = new DataView(out.buffer, off + 8, size);
      events.push({
        size,
        pid: e.getUint32(0, true),
        tid: e.getUint32(4, true),
        count: e.getBigUint64(8, true),
        uid: e.getUint32(16, true),
        cpu: e.getUint32(20, true),
        comm: new TextDecoder().decode(out.subarray(off + 8 + 24, off + 8 + 40)).replace(/\0+$/, ''),
        arg: e.getBigUint64(40, true),
      });
      off += 8 + ((size + 7) & ~7);
    }
    t.same(events[0], { size: 48, pid: 1200, tid: 1234, count: 1n, uid: 1000, cpu: 0, comm: 'a-rather-long-c', arg: 77n }, `${engine}: pid/tgid/uid/cpu/comm (15 chars)/ctx`);
    t.same(events.map((e) => [e.count, e.cpu]), [[1n, 0], [2n, 1], [3n, 0], [1n, 1]]);
    t.equal(events[3]!.comm, 'other');
    t.equal(src.poll(0, out), 0, 'drained');
    t.equal(src.pendingSize(), 0);
    t.same(traced, ['pid 1200 count 1', 'pid 1200 count 2', 'pid 1200 count 3', 'pid 7 count 1'], 'bpf_printk');
    t.same(obj.traceLines, traced);
    // syscall-side update seen by the program: counts[1200] = 100 -> next run reports 101
    g.dv.setUint32(0, 1200, true);
    g.dv.setBigUint64(1024, 100n, true);
    t.equal(obj.mapOperate(UPDATE, g.fd('counts'), g.mem, 0, 1024, 1), -17, 'BPF_NOEXIST on an existing key: -EEXIST');
    t.equal(obj.mapOperate(UPDATE, g.fd('counts'), g.mem, 0, 1024, 0), 0);
    obj.run('on_event', ctx);
    t.equal(g.u64('counts', 1200), 101n);
    t.equal(src.poll(0, out), 1);
    t.equal(new DataView(out.buffer).getBigUint64(8 + 8, true), 101n);
    t.equal(obj.mapOperate(DELETE, g.fd('counts'), g.mem, 0, -1, 0), 0);
    t.equal(obj.mapOperate(DELETE, g.fd('counts'), g.mem, 0, -1, 0), -2);
    t.equal(obj.mapOperate(LOOKUP, 12345, g.mem, 0, 1024, 0), -9, 'unknown fd: -EBADF');
    t.equal(obj.mapOperate(99, g.fd('counts'), g.mem, 0, 1024, 0), -22, 'unknown command: -EINVAL');
    t.equal(obj.mapOperate(LOOKUP, g.fd('counts'), g.mem, 65535, 1024, 0), -14, 'key past guest memory: -EFAULT');
    // .rodata is frozen after load, as libbpf does
    g.dv.setUint32(0, 0, true);
    t.equal(obj.mapOperate(UPDATE, g.fd('.rodata'), g.mem, 0, 1024, 0), -1, '.rodata update: -EPERM');
    t.equal(g.u64('.rodata', 0), 1n, 'multiplier from the object');
    src.close();
    obj.close();
    obj.close();
    t.equal(obj.mapOperate(LOOKUP, g.fd('counts'), g.mem, 0, 1024, 0), -9, 'closed: -EBADF');
  }
});

t.test('end to end: perf event array through openRecords', async (t) => {
  const backend = new UserspaceBackend({ ncpus: 2 });
  const obj = backend.load(fixture('e2e'), loadOpts);
  t.teardown(() => backend.dispose());
  const g = new Guest(obj);
  t.equal(obj.run('on_perf', new Uint8Array(8)).r0, BigInt.asUintN(64, -2n), 'no reader yet: -ENOENT');
  const src = obj.openRecords(g.fd('perf'));
  t.equal(obj.run('on_perf', new Uint8Array(8)).r0, 0n);
  t.equal(obj.run('on_perf', new Uint8Array(8), { cpu: 1 }).r0, 0n, 'BPF_F_CURRENT_CPU on CPU 1');
  const out = new Uint8Array(256);
  t.equal(src.poll(100, out), 2);
  const dv = new DataView(out.buffer);
  t.equal(dv.getUint32(0, true), 12, 'a 6-byte sample arrives as 12 bytes, as libbpf hands it over');
  t.equal(dv.getUint32(8, true), 0xdeadbeef);
  t.equal(dv.getUint16(12, true), 7);
  t.equal(src.lost(), 0);
  src.close();
  t.equal(obj.run('on_perf', new Uint8Array(8)).r0, BigInt.asUintN(64, -2n), 'reader closed: -ENOENT again');
  throwsErrno(t, () => obj.openRecords(g.fd('counts')), 22, /neither a ring buffer nor a perf event array/);
  throwsErrno(t, () => obj.openRecords(4242), 9);
});

t.test('end to end: subprograms, global data, legacy map, tail calls through a prog array', async (t) => {
  const backend = new UserspaceBackend({ ncpus: 1 });
  const obj = backend.load(fixture('link', ['-DNO_LOOP']), loadOpts);
  t.teardown(() => backend.dispose());
  const g = new Guest(obj);
  for (const engine of ['interp', 'jit'] as const) {
    // leaf(3) = 3 + ro_b(6) = 9; middle(3) = 9 * 2 + data_b(8) = 26; global_sub = 26 + leaf(1) = 33
    t.equal(obj.run('first', new Uint8Array(8), { engine }).r0, 33n, `${engine}: first() through three subprograms`);
  }
  t.equal(g.u64('legacy', 0), 10n, 'legacy[0] += ro_a twice');
  t.equal(g.u64('.data.custom', 0), 11n, 'custom incremented twice from 9');
  const bss = g.lookup('.bss', 0, 16);
  t.equal(new DataView(bss.value.buffer).getBigUint64(0, true), 8n, 'bss_a += 3 + 1, twice');
  t.equal(new DataView(bss.value.buffer).getUint32(8, true), 8, 'bss_b = data_b');
  // second() tail-calls tail_target through jumps[2] (initialized in the object)
  t.equal(obj.run('second', new Uint8Array(8)).r0, 42n, 'tail call taken');
  t.equal(g.u64('btfmap', 1), 1n);
  g.dv.setUint32(0, 2, true);
  t.equal(obj.mapOperate(LOOKUP, g.fd('jumps'), g.mem, 0, 1024, 0), 0);
  t.equal(g.dv.getUint32(1024, true), obj.programFd('tail_target'), 'prog array lookup gives the program id');
  t.equal(obj.mapOperate(DELETE, g.fd('jumps'), g.mem, 0, -1, 0), 0);
  t.equal(obj.run('second', new Uint8Array(8)).r0, 8n, 'empty slot: the call falls through (leaf(2) = 8)');
  g.dv.setUint32(1024, obj.programFd('third')!, true);
  t.equal(obj.mapOperate(UPDATE, g.fd('jumps'), g.mem, 0, 1024, 0), 0, 'slot 2 = third via its fd');
  t.equal(obj.run('second', new Uint8Array(8)).r0, 2n, 'tail call into third');
  g.dv.setUint32(1024, 999, true);
  t.equal(obj.mapOperate(UPDATE, g.fd('jumps'), g.mem, 0, 1024, 0), -9, 'not a program fd: -EBADF');
});

t.test('load errors name their cause', async (t) => {
  const backend = new UserspaceBackend({ ncpus: 1, maxMapBytes: 1 << 16 });
  t.teardown(() => backend.dispose());
  // the ring buffer (4096 x 2) fits; the hash map of 64 x 8 fits; shrink the limit under the ring buffer
  const tiny = new UserspaceBackend({ ncpus: 1, maxMapBytes: 4096 });
  throwsErrno(t, () => tiny.load(fixture('e2e'), loadOpts), 7, /cannot create map 'rb' \(ringbuf\): map 'rb' needs 8192 bytes of ring buffer data \(twice max_entries 4096.*limit of 4096 bytes per map/);
  throwsErrno(t, () => backend.load(new Uint8Array(100), loadOpts), 22, /cannot load object 'test': not a valid ELF object/);
  const bytes = fixture('e2e');
  t.throws(() => backend.load(bytes.subarray(0, bytes.length >> 1), loadOpts), BackendError);
  // a helper the backend does not have: named, with the program and instruction
  throwsErrno(t, () => backend.load(fixture('link'), loadOpts), 22, /program 'second' \(tp\/sched\/sched_wakeup\) calls bpf_loop \(181\) at insn \d+, which the userspace backend does not implement/);
  if (existsSync(path.join(MATRIX, 'sockfilter.bpf.o'))) {
    const big = new UserspaceBackend({ ncpus: 1 });
    throwsErrno(t, () => big.load(new Uint8Array(readFileSync(path.join(MATRIX, 'sockfilter.bpf.o'))), loadOpts), 22, /bpf_skb_load_bytes \(26\)/);
    big.dispose();
  }
  const obj = backend.load(fixture('e2e'), loadOpts);
  // a syscall tracepoint attaches in a traced process (issue 18): without one it is refused, naming why
  throwsErrno(t, () => obj.attach('on_event', undefined), 95, /^attaching program 'on_event' \(tp\/syscalls\/sys_enter_getpid\) needs a process to trace: the userspace backend runs syscall and process event tracepoint programs inside the processes it launches/);
  throwsErrno(t, () => obj.attach('nope', undefined), 2);
  throwsErrno(t, () => obj.run('nope'), 2);
  throwsErrno(t, () => obj.run('on_event', new Uint8Array(8), { cpu: 5 }), 22);
  t.equal(backend.wakeFd(), -1);
});

t.test('run faults are VmErrors naming the instruction; leaked reservations are discarded', async (t) => {
  const backend = new UserspaceBackend({ ncpus: 1 });
  t.teardown(() => backend.dispose());
  const obj = backend.load(fixture('e2e'), loadOpts);
  const err = (() => {
    try {
      obj.run('on_event', new Uint8Array(4)); // the program reads 8 bytes of ctx
    } catch (e) {
      return e;
    }
    return undefined;
  })();
  t.type(err, VmError);
  t.match((err as VmError).message, /memory: .* at pc \d+ .* in on_event/);
  // the run reserved a record before faulting: it was discarded, so the ring is empty and usable
  const src = obj.openRecords(obj.maps.find((m) => m.name === 'rb')!.fd);
  t.equal(src.poll(0, new Uint8Array(1024)), 0);
  t.equal(obj.run('on_event', new Uint8Array(8)).r0, 0n, 'the object still runs');
  t.equal(src.poll(0, new Uint8Array(1024)), 1);
});

t.test('polls wait for their timeout and return -EINTR once the stop flag is set', async (t) => {
  const stop = new SharedArrayBuffer(4);
  const backend = new UserspaceBackend({ ncpus: 1, stop });
  t.teardown(() => backend.dispose());
  const obj = backend.load(fixture('e2e'), loadOpts);
  const src = obj.openRecords(obj.maps.find((m) => m.name === 'rb')!.fd);
  const t0 = Date.now();
  t.equal(src.poll(60, new Uint8Array(64)), 0, 'timeout: 0');
  t.ok(Date.now() - t0 >= 50, 'it waited');
  Atomics.store(new Int32Array(stop), 0, 2);
  t.equal(src.poll(-1, new Uint8Array(64)), -4, 'stopped: -EINTR, even with an infinite timeout');
  obj.run('on_event', new Uint8Array(8));
  t.equal(src.poll(-1, new Uint8Array(64)), 1, 'queued records are still delivered first');
  t.equal(src.poll(-1, new Uint8Array(8)), -4);
  obj.run('on_event', new Uint8Array(8));
  t.equal(src.poll(0, new Uint8Array(8)), -105, 'a record larger than out: -ENOBUFS');
  t.equal(src.pendingSize(), 48);
});

t.test('CO-RE: vmlinux layouts with a task_struct image; the object\'s own layout by default', async (t) => {
  const bytes = fixture('core');
  // default target: the object's own BTF; the local layout of struct task_struct is
  // { flags, prio, pid, tgid, real_parent, comm[16], bitfields }
  const local = new UserspaceBackend({ ncpus: 1 });
  t.teardown(() => local.dispose());
  const lo = local.load(bytes, loadOpts);
  const img = new Uint8Array(64);
  const ldv = new DataView(img.buffer);
  ldv.setInt32(8, 321, true); // pid
  ldv.setInt32(12, 300, true); // tgid
  img.set(new TextEncoder().encode('abcdef'), 24); // comm
  img[40] = 0b10; // sched_contributes_to_load
  lo.run('core_all', new Uint8Array(8), {
    task: { ...TASK, taskStruct: { size: 64, build: (addr) => (ldv.setBigUint64(16, BigInt(addr), true), img) } },
  });
  const g = new Guest(lo);
  const res = g.lookup('.bss', 0, 160);
  const r = (i: number): bigint => new DataView(res.value.buffer).getBigUint64(i * 8, true);
  t.same([r(0), r(1), r(2), r(3), r(4), r(5), r(6), r(7)], [321n, 300n, 321n, 1n, 1n, 16n, 24n, 1n], 'local layout: pid, tgid, real_parent->pid, exists, exists, sizeof comm, offsetof comm, bitfield');
  t.equal(r(17), BigInt('d'.charCodeAt(0)), 'comm[3]');
  t.equal(r(12), 7n, 'PIDTYPE_SID as compiled');
  t.equal(r(19), 0n, 'other bitfield');

  if (!existsSync(VMLINUX)) return;
  const target = parseBtf(new Uint8Array(readFileSync(VMLINUX)));
  const st = target.find('task_struct', 'STRUCT');
  if (st?.kind !== 'STRUCT') return;
  const off = (name: string): number => st.members.find((m) => m.name === name)!.bitOffset;
  const kb = new UserspaceBackend({ ncpus: 1, coreTarget: 'vmlinux' });
  t.teardown(() => kb.dispose());
  const ko = kb.load(bytes, loadOpts);
  const size = st.size;
  const kimg = new Uint8Array(size);
  const kdv = new DataView(kimg.buffer);
  kdv.setInt32(off('pid') / 8, 4321, true);
  kdv.setInt32(off('tgid') / 8, 4300, true);
  kimg.set(new TextEncoder().encode('kernel-comm'), off('comm') / 8);
  const bit = off('sched_contributes_to_load');
  kimg[bit >> 3]! |= 1 << (bit & 7);
  ko.run('core_all', new Uint8Array(8), {
    task: { ...TASK, taskStruct: { size, build: (addr) => (kdv.setBigUint64(off('real_parent') / 8, BigInt(addr), true), kimg) } },
  });
  const kg = new Guest(ko);
  const kres = kg.lookup('.bss', 0, 160);
  const k = (i: number): bigint => new DataView(kres.value.buffer).getBigUint64(i * 8, true);
  t.same([k(0), k(1), k(2), k(3), k(4), k(5), k(6), k(7)], [4321n, 4300n, 4321n, 1n, 0n, 16n, BigInt(off('comm') / 8), 1n], 'vmlinux layout: fields found at the kernel\'s offsets');
  t.equal(k(10), BigInt(size), 'sizeof(struct task_struct) of this kernel');
  t.equal(k(17), BigInt('n'.charCodeAt(0)), 'comm[3]');
  t.equal(k(19), 0n);
  // reach_poison reads a field no kernel has: the poisoned instruction fails when reached
  t.throws(() => ko.run('reach_poison', new Uint8Array(8)), /CO-RE relocation could not be resolved .*program 'reach_poison' insn \d+/);
  t.equal(lo.run('reach_poison', new Uint8Array(8), { task: { ...TASK, taskStruct: img } }).r0, 321n, 'locally it reads the local offset (8: pid in the image)');
});

t.test('matrix objects in the userspace backend', { skip: !existsSync(path.join(MATRIX, 'bootstrap.bpf.o')) && 'no matrix/build (make -C matrix)' }, async (t) => {
  const backend = new UserspaceBackend({ ncpus: 1, task: TASK });
  t.teardown(() => backend.dispose());
  const load = (f: string): UserspaceObject => backend.load(new Uint8Array(readFileSync(path.join(MATRIX, f))), loadOpts);
  for (const f of ['bootstrap.bpf.o', 'execve.bpf.o', 'kprobe.bpf.o', 'lsm.bpf.o', 'opensnoop.bpf.o', 'runqlat.bpf.o', 'sockops.bpf.o', 'uprobe.bpf.o', 'xdp.bpf.o']) {
    if (!existsSync(path.join(MATRIX, f))) continue;
    const o = load(f);
    t.ok(o.programs.length > 0, `${f}: loads (${o.programs.map((p) => p.name).join(', ')})`);
    o.close();
  }
  // bootstrap's exec handler on a sched_process_exec tracepoint record:
  // struct trace_entry (8 bytes), u32 __data_loc_filename, pid, old_pid, then the filename
  const o = load('bootstrap.bpf.o');
  const name = new TextEncoder().encode('/usr/bin/true\0');
  const ctx = new Uint8Array(20 + name.length);
  const dv = new DataView(ctx.buffer);
  dv.setUint32(8, (name.length << 16) | 20, true);
  dv.setInt32(12, TASK.pid, true);
  ctx.set(name, 20);
  const rb = o.openRecords(o.maps.find((m) => m.name === 'rb')!.fd);
  t.equal(o.run('handle_exec', ctx).r0, 0n);
  const out = new Uint8Array(1024);
  t.equal(rb.poll(0, out), 1, 'one exec event');
  const e = new DataView(out.buffer, 8, 168);
  t.equal(new DataView(out.buffer).getUint32(0, true), 168, 'struct event');
  t.equal(e.getInt32(8, true), TASK.tgid, 'pid (tgid of the current task)');
  t.equal(e.getInt32(12, true), 0, 'ppid: no task_struct image, BPF_CORE_READ read zeros');
  t.equal(new TextDecoder().decode(out.subarray(8 + 20, 8 + 35)), 'a-rather-long-c');
  t.equal(new TextDecoder().decode(out.subarray(8 + 36, 8 + 49)), '/usr/bin/true', 'filename through bpf_probe_read_str of the ctx');
  t.equal(e.getUint8(163), 0, 'EXEC');
  // the exit handler finds the start time in exec_start and reports the duration
  t.equal(o.run('handle_exit', new Uint8Array(64), { task: { ...TASK, pid: TASK.tgid } }).r0, 0n);
  t.equal(rb.poll(0, out), 1, 'one exit event');
  t.equal(new DataView(out.buffer, 8).getUint8(163), 1, 'EXIT');
  t.ok(new DataView(out.buffer, 8).getBigUint64(0, true) > 0n, 'duration from exec_start');
});

t.test('hostile objects only ever fail with BackendError', async (t) => {
  const backend = new UserspaceBackend({ ncpus: 1, maxMapBytes: 1 << 20 });
  t.teardown(() => backend.dispose());
  let seed = 777;
  const rnd = (n: number): number => {
    seed = (Math.imul(seed, 1103515245) + 12345) >>> 0;
    return seed % n;
  };
  let loaded = 0;
  for (const base of [fixture('e2e'), fixture('core'), fixture('link', ['-DNO_LOOP'])]) {
    for (let i = 0; i < 300; i++) {
      const b = base.slice();
      for (let k = 1 + rnd(3); k > 0; k--) b[rnd(b.length)] = rnd(256);
      try {
        const o = backend.load(b, loadOpts);
        loaded++;
        o.close();
      } catch (e) {
        if (!(e instanceof BackendError)) {
          t.fail(`round ${i}: ${(e as Error).name}: ${(e as Error).message}`);
          return;
        }
      }
    }
  }
  t.ok(loaded > 0, `${loaded}/900 mutated objects still loaded, the rest failed with BackendError`);
});
