// The built-in syscall tables (backends/userspace/syscalls/tables/): the committed modules are what gen.ts writes,
// every covered event's layout equals this host's tracefs (fails on any drift), known numbers and layouts per arch,
// and the context builder's bytes (header, registers, __data_loc strings); an ordinary user (no tracefs) gets the table.
import t from 'tap';
import fs from 'node:fs';
import { spawnSync } from 'node:child_process';
import { ensureMounts, ROOT as REPO } from './helpers.js';
import { ARM64_FORMATS, generate, sourceTable, tableModule, hostEvents, parseUnistd, savedEvents } from '../backends/userspace/syscalls/gen.js';
import { hostArch } from '../backends/userspace/syscalls/host.js';
import { eventLayout, syscallName, syscallNumber, TABLES } from '../backends/userspace/syscalls/layout.js';
import { tableEvents } from '../backends/userspace/syscalls/table.js';
import { coveredEvents, tracefsRoot } from '../backends/userspace/syscalls/tracefs.js';
import { buildRecord, syscallFromRegs, syscallRecord } from '../backends/userspace/syscalls/context.js';
import { parseFormat } from '../backends/userspace/syscalls/format.js';

ensureMounts();
const ROOT = tracefsRoot();
const HOST = hostArch();

t.test('the committed tables are what gen.ts writes', async (t) => {
  const arm = generate(sourceTable('arm64'));
  t.ok(arm === fs.readFileSync(tableModule('arm64'), 'utf8'), 'tables/arm64.ts is out of date: `node --import=tsx backends/userspace/syscalls/gen.ts arm64`');
  if (HOST !== 'x86_64' || !ROOT) return t.skip('the x86_64 table is generated from an x86_64 host\'s tracefs');
  // the kernel's build name (6.18.44-fc-vNNNN) changes with every rebuild of the same kernel: the lines naming it
  // are left out; every number, name and layout must be the same
  const unnamed = (text: string): string => text.replace(/\d+\.\d+\.\d+[-\w.]*/g, 'KERNEL');
  const x86 = generate(sourceTable('x86_64'));
  t.ok(unnamed(x86) === unnamed(fs.readFileSync(tableModule('x86_64'), 'utf8')), 'tables/x86_64.ts differs from this host\'s tracefs: regenerate with `node --import=tsx backends/userspace/syscalls/gen.ts x86_64` and commit it');
});

t.test('every syscalls/*, raw_syscalls/* and sched_process_* layout of the built-in table equals this host\'s tracefs', { skip: !ROOT || !HOST ? 'no tracefs or an arch without a table' : false }, async (t) => {
  const live = hostEvents(ROOT!);
  const builtin = tableEvents(TABLES[HOST!]);
  const keys = coveredEvents(ROOT!);
  t.ok(keys.length > 600, `${keys.length} events in tracefs`);
  let same = 0;
  const drift: string[] = [];
  for (const key of keys) {
    const want = live.get(key)!;
    const have = builtin.get(key);
    const strip = (fs: typeof want.fields): string => JSON.stringify(fs);
    if (!have || strip(have.fields) !== strip(want.fields)) drift.push(key);
    else same++;
  }
  for (const key of builtin.keys()) if (!live.has(key)) drift.push(`${key} (not in tracefs)`);
  t.same(drift, [], 'no event drifted');
  t.equal(same, keys.length, `${same} events equal, field by field`);
  // and the run-time answer reads tracefs, with the running kernel's id
  const l = eventLayout('tp/syscalls/sys_enter_openat');
  t.equal(l?.source, 'tracefs');
  t.equal(l?.id, parseFormat(fs.readFileSync(`${ROOT}/events/syscalls/sys_enter_openat/format`, 'utf8')).id);
  t.ok((l?.id ?? 0) > 0, 'an event id');
  t.equal(eventLayout('sys_enter_openat', HOST, { tracefs: false })?.source, 'table');
});

t.test('the arm64 table equals the arm64 guest\'s saved tracefs formats, field by field', async (t) => {
  const saved = savedEvents(fs.readFileSync(ARM64_FORMATS, 'utf8'));
  const builtin = tableEvents(TABLES.arm64);
  t.equal(saved.size, 605, '600 syscall events, 2 raw_syscalls, 3 sched');
  t.same([...builtin.keys()].sort(), [...saved.keys()].sort(), 'the same events');
  const drift = [...saved].filter(([k, ev]) => JSON.stringify(builtin.get(k)?.fields) !== JSON.stringify(ev.fields)).map(([k]) => k);
  t.same(drift, [], 'no event differs');
});

t.test('numbers, names and layouts per arch', async (t) => {
  t.equal(syscallNumber('openat', 'x86_64'), 257);
  t.equal(syscallNumber('getppid', 'x86_64'), 110);
  t.equal(syscallNumber('newfstatat', 'x86_64'), 262);
  t.equal(syscallNumber('newuname', 'x86_64'), 63, 'newuname is __NR_uname');
  t.equal(syscallNumber('openat', 'arm64'), 56);
  t.equal(syscallNumber('getppid', 'arm64'), 173);
  t.equal(syscallNumber('newfstat', 'arm64'), 80, 'arm64: newfstat is __NR3264_fstat');
  t.equal(syscallNumber('arm64_personality', 'arm64'), 92);
  t.equal(syscallNumber('open', 'arm64'), undefined, 'arm64 has no open');
  t.equal(syscallName(257, 'x86_64'), 'openat');
  t.equal(syscallName(221, 'arm64'), 'execve');
  for (const arch of ['x86_64', 'arm64'] as const) {
    const nrs = Object.values(TABLES[arch].syscalls).map(([nr]) => nr);
    t.equal(new Set(nrs).size, nrs.length, `${arch}: every number once`);
    const enter = eventLayout('syscalls/sys_enter_openat', arch, { tracefs: false })!;
    t.same(enter.fields.slice(4).map((f) => [f.name, f.offset, f.size, f.signed]), [['__syscall_nr', 8, 4, true], ['dfd', 16, 8, false], ['filename', 24, 8, false], ['flags', 32, 8, false], ['mode', 40, 8, false]], `${arch} sys_enter_openat`);
    t.same(eventLayout('sys_exit_openat', arch, { tracefs: false })!.fields.slice(4).map((f) => [f.name, f.offset, f.size, f.signed]), [['__syscall_nr', 8, 4, true], ['ret', 16, 8, true]]);
    t.same(eventLayout('raw_syscalls/sys_enter', arch, { tracefs: false })!.fields.slice(4).map((f) => [f.name, f.offset, f.size, f.count]), [['id', 8, 8, 0], ['args', 16, 48, 6]]);
    const exec = eventLayout('sched/sched_process_exec', arch, { tracefs: false })!;
    t.same(exec.fields.slice(4).map((f) => [f.name, f.offset, f.size, f.dataLoc]), [['filename', 8, 4, true], ['pid', 12, 4, false], ['old_pid', 16, 4, false]]);
  }
  // the two kernels differ where the kernel changed: 6.18's fork event carries comms by __data_loc, 6.1's inline
  t.equal(eventLayout('sched_process_fork', 'arm64', { tracefs: false })!.fields[4]!.decl, 'char parent_comm[16]');
  t.equal(eventLayout('sched_process_fork', 'x86_64', { tracefs: false })!.fields[4]!.decl, '__data_loc char[] parent_comm');
  t.equal(eventLayout('syscalls/sys_enter_nope', 'x86_64'), undefined);
  t.equal(eventLayout('kprobe/foo'), undefined);
});

t.test('unistd parsing: direct, __NR3264 and aliases of them; conflicting numbers refused', async (t) => {
  const m = parseUnistd('#define __NR3264_fstat 80\n#define __NR_fstat __NR3264_fstat\n#define __NR_openat 56\n#define __NR3264_lseek 62\n');
  t.same([...m].sort(), [['fstat', 80], ['lseek', 62], ['openat', 56]]);
  t.throws(() => parseUnistd('#define __NR_a 1\n#define __NR_a 2\n'), /defines a as 1 and 2/);
});

t.test('the builder: header, registers as the kernel stores them, __data_loc strings', async (t) => {
  const l = eventLayout('syscalls/sys_enter_openat', 'x86_64', { tracefs: false })!;
  const regs = { orig_rax: 257n, rdi: -100n & 0xffffffffffffffffn, rsi: 0x7ffd1234n, rdx: 0x80241n, r10: 0o640n, r8: 7n, r9: 9n, rax: -14n };
  const sc = syscallFromRegs('x86_64', regs);
  const rec = syscallRecord({ ...l, id: 782 }, { pid: 4242 }, sc);
  const dv = new DataView(rec.buffer);
  t.equal(rec.length, 48, 'the fixed part: 16 + 4 arguments');
  t.equal(dv.getUint16(0, true), 782, 'common_type is the event id');
  t.equal(dv.getInt32(4, true), 4242, 'common_pid');
  t.equal(dv.getInt32(8, true), 257, '__syscall_nr');
  t.equal(dv.getBigInt64(16, true), -100n, 'dfd: the whole register (AT_FDCWD sign-extended)');
  t.equal(dv.getBigUint64(24, true), 0x7ffd1234n);
  t.equal(dv.getBigUint64(32, true), 0x80241n);
  t.equal(dv.getBigUint64(40, true), 0o640n);
  const exit = syscallRecord(eventLayout('sys_exit_openat', 'x86_64', { tracefs: false })!, { pid: 1 }, sc);
  t.equal(new DataView(exit.buffer).getBigInt64(16, true), -14n, 'ret');
  const raw = syscallRecord(eventLayout('raw_syscalls/sys_enter', 'arm64', { tracefs: false })!, { pid: 1 }, syscallFromRegs('arm64', { x8: 56n, x0: 1n, x1: 2n, x2: 3n, x3: 4n, x4: 5n, x5: 6n }));
  const rdv = new DataView(raw.buffer);
  t.same([rdv.getBigInt64(8, true), ...[0, 1, 2, 3, 4, 5].map((i) => rdv.getBigUint64(16 + 8 * i, true))], [56n, 1n, 2n, 3n, 4n, 5n, 6n], 'arm64 raw sys_enter: id and args[6] from x8, x0..x5');
  const exec = eventLayout('sched_process_exec', 'x86_64', { tracefs: false })!;
  const er = buildRecord(exec, { pid: 77 }, { filename: '/bin/true', pid: 77, old_pid: 77 });
  const edv = new DataView(er.buffer);
  const loc = edv.getUint32(8, true);
  t.equal(loc & 0xffff, exec.size, 'the string starts after the fixed part');
  t.equal(loc >>> 16, 10, 'its length counts the NUL');
  t.equal(new TextDecoder().decode(er.subarray(loc & 0xffff, (loc & 0xffff) + (loc >>> 16))), '/bin/true\0');
  const exit2 = buildRecord(eventLayout('sched_process_exit', 'arm64', { tracefs: false })!, { pid: 5 }, { comm: 'a-very-long-command-name', pid: 5 });
  t.equal(new TextDecoder().decode(exit2.subarray(8, 24)), 'a-very-long-com\0', 'comm: at most 15 bytes and a NUL');
  t.throws(() => buildRecord(exec, { pid: 1 }, { nope: 1 }), /has no field 'nope'/);
  t.throws(() => buildRecord(exec, { pid: 1 }, { pid: 'x' }), /cannot hold string/);
  t.throws(() => syscallFromRegs('arm64', { x8: 1n }), /register 'x0' missing/);
});

t.test('uid 65534 cannot read tracefs (mode 0700): the layout comes from the built-in table, and equals the kernel\'s', { skip: (process.getuid?.() !== 0 || !ROOT || !HOST) && 'needs root to switch to uid 65534, tracefs, a table for this arch' }, async (t) => {
  const script = "import('./backends/userspace/syscalls/layout.ts').then((m) => { const l = m.eventLayout('tp/syscalls/sys_enter_openat'); process.stdout.write(JSON.stringify({ source: l.source, id: l.id, fields: l.fields })); })";
  const r = spawnSync('env', ['-u', 'NODE_OPTIONS', 'setpriv', '--reuid', '65534', '--regid', '65534', '--clear-groups', process.execPath, '--import=tsx', '-e', script], { cwd: REPO, encoding: 'utf8', timeout: 30_000 });
  t.equal(r.status, 0, r.stderr);
  const got = JSON.parse(r.stdout) as { source: string; id: number; fields: unknown };
  t.equal(got.source, 'table');
  t.equal(got.id, 0, 'no event id without tracefs');
  t.same(got.fields, eventLayout('tp/syscalls/sys_enter_openat')!.fields, 'the same fields as the root\'s tracefs answer');
});
