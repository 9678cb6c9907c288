// The agent's C twin of syscallRecord (native/agent/sys/record.c) fed the field table the host derives from an
// event's layout (backends/userspace/syscalls/fieldtable.ts): for syscall and raw_syscalls events of this
// kernel's tracefs (when readable) and the built-in tables of both arches, the record it builds equals the
// host's byte for byte (which test/syscall-context-kernel.test.ts holds equal to the kernel's); a table of
// another version, or with a slot past the record, is refused with the reason.
import t from 'tap';
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { BUILD, ROOT } from './helpers.js';
import { eventLayout, type Arch } from '../backends/userspace/syscalls/layout.js';
import { syscallRecord } from '../backends/userspace/syscalls/context.js';
import { encodeFieldTable, sysFieldTable } from '../backends/userspace/syscalls/fieldtable.js';

const AGENT = path.join(ROOT, 'native', 'agent');
const OUT = path.join(BUILD, 'agent-sys-record');
const TOOL = path.join(OUT, 'test', 'sys_record_tool');

const hex = (b: Uint8Array): string => Buffer.from(b).toString('hex');

function tool(table: Uint8Array, tid: number, nr: bigint, ret: bigint, args: bigint[], regs?: bigint): string {
  const argv = [hex(table), String(tid), String(nr), String(ret), ...args.map((a) => `0x${BigInt.asUintN(64, a).toString(16)}`)];
  if (regs !== undefined) argv.push(`0x${regs.toString(16)}`);
  const r = spawnSync(TOOL, argv, { encoding: 'utf8' });
  return (r.stdout ?? '').trim();
}

t.test('builds', async (tt) => {
  const r = spawnSync('make', ['-C', AGENT, `B=${OUT}`, TOOL], { encoding: 'utf8' });
  tt.equal(r.status, 0, 'make sys_record_tool', { stderr: r.stderr });
});

const EVENTS = ['syscalls/sys_enter_openat', 'syscalls/sys_exit_openat', 'syscalls/sys_enter_getppid', 'syscalls/sys_enter_mmap',
  'syscalls/sys_exit_read', 'raw_syscalls/sys_enter', 'raw_syscalls/sys_exit'];
// AT_FDCWD zero-extended (what glibc's openat leaves in rdi), a pointer, flags; a negative errno as the result
const ARGS = [0xffffff9cn, 0x7ffd12345678n, 0x80000n, 0o644n, -1n, 0x1234n];

for (const source of ['tracefs', 'table'] as const) {
  for (const arch of ['x86_64', 'arm64'] as Arch[]) {
    t.test(`${arch}, ${source}: the agent's records equal the host's`, async (tt) => {
      let n = 0;
      for (const ev of EVENTS) {
        const layout = eventLayout(ev, arch, source === 'table' ? { tracefs: false } : {});
        if (!layout || layout.source !== source) continue;
        const table = encodeFieldTable(sysFieldTable(layout));
        for (const [nr, ret, regs] of [[257n, -2n, undefined], [110n, 4242n, 0xffff888012345678n]] as const) {
          const want = syscallRecord(layout, { pid: 4321, regs }, { nr, args: ARGS, ret });
          tt.equal(tool(table, 4321, nr, ret, ARGS, regs), hex(want), `${ev}: nr ${nr}, ret ${ret}${regs ? ', pt_regs pointer over the header' : ''}`);
        }
        n++;
      }
      if (source === 'tracefs' && n === 0) tt.comment(`no readable tracefs for ${arch} here: only the built-in table is compared`);
      else tt.equal(n, EVENTS.length, `all ${EVENTS.length} events compared`);
    });
  }
}

t.test('a table the agent cannot read is refused with the reason', async (tt) => {
  const layout = eventLayout('syscalls/sys_enter_openat', 'x86_64', { tracefs: false })!;
  const table = encodeFieldTable(sysFieldTable(layout));
  const v2 = table.slice();
  v2[0] = 2;
  tt.match(tool(v2, 1, 257n, 0n, ARGS), /^error: a syscall field table of version 2, 64 bytes: this agent reads version 1/);
  const past = table.slice();
  new DataView(past.buffer).setUint16(12 + 6 * 4, 60, true); // args[0] at 60 (8 bytes) in a 64-byte record
  tt.match(tool(past, 1, 257n, 0n, ARGS), /^error: slot 6 of a syscall field table: 8 bytes at 60 in a \d+-byte record/);
  tt.throws(() => sysFieldTable(eventLayout('sched/sched_process_exec', 'x86_64', { tracefs: false })!), /not a syscall event/);
});
