// Issue 14, the guest's WASI layer and lifecycle: a hostile module cannot leave its --dir through
// symlinks of the shared tree, cannot truncate or overwrite the host's stdout, gets EFAULT for bad
// pointers, and every way a run can end (stack overflow, proc_exit in a start function, codes above
// 255, a wrong WASI import, a memory.grow loop on Ctrl-C, stdin from a non-blocking pipe) ends with
// the documented exit code and message.
import t from 'tap';
import fs from 'node:fs';
import path from 'node:path';
import { spawn, spawnSync } from 'node:child_process';
import { BUILD, buildBpf, buildGuest, CLI, embed, FIXTURES, kernelIds, kv, Running, runCli, settledLeaks } from './helpers.js';
import { Bytes } from '../src/wasm/writer.js';

const before = kernelIds();
const hostile = buildGuest(path.join(FIXTURES, 'wasi-hostile.c'), path.join(BUILD, 'wasi-hostile.wasm'));
const ENOTCAPABLE = '76';

t.test('--dir: no path operation follows a symlink of the shared tree out of it', async (t) => {
  const base = fs.mkdtempSync(path.join(BUILD, 'wasi-dir-'));
  t.teardown(() => fs.rmSync(base, { recursive: true, force: true }));
  const shared = path.join(base, 'shared');
  const outside = path.join(base, 'outside');
  fs.mkdirSync(path.join(shared, 'sub'), { recursive: true });
  fs.mkdirSync(outside);
  fs.mkdirSync(path.join(base, 'victim'));
  fs.writeFileSync(path.join(outside, 'secret.txt'), 'secret\n');
  fs.writeFileSync(path.join(shared, 'sub', 'file.txt'), 'hello\n');
  fs.writeFileSync(path.join(shared, 'sub', 'moveme'), 'm\n');
  const link = (target: string, at: string): void => fs.symlinkSync(target, path.join(shared, at));
  link(outside, 'esc');
  link(outside, 'esc2');
  link('/etc', 'etc');
  link('..', 'up');
  link('sub', 'in');
  link(path.join(shared, 'sub'), 'abs');
  link(outside, 'absout');
  link('../esc', 'sub/deep');
  link('loop', 'loop');
  link(path.join(outside, 'planted'), 'dangle');

  const r = runCli(['--dir', `${shared}:/d`, hostile, 'escape']);
  t.equal(r.code, 0, r.stderr);
  const got = kv(r.stdout);
  const out = [
    'read_etc_passwd', 'list_etc', 'list_esc', 'read_esc', 'read_deep', 'read_absout', 'create_esc', 'create_up', 'create_dangling', 'stat_esc',
    'stat_esc_link', 'mkdir_up', 'rmdir_up', 'unlink_esc', 'rename_from_esc', 'rename_into_esc', 'link_esc', 'utimes_esc',
    'symlink_abs', 'symlink_up', 'openat_dotdot', 'openat_link',
  ];
  for (const k of out) t.equal(got[k], ENOTCAPABLE, `${k}: refused with ENOTCAPABLE`);
  t.equal(got['open_loop'], '32', 'a symlink loop: ELOOP');
  for (const k of ['in_read_link', 'in_read_abs', 'in_read_dotdot', 'in_openat', 'in_stat', 'in_list', 'in_create', 'in_symlink', 'in_read_alias', 'in_unlink_esc_link']) {
    t.equal(got[k], 'ok', `${k}: symlinks that stay inside still work`);
  }
  // and on the host side: nothing outside changed
  t.equal(fs.readFileSync(path.join(outside, 'secret.txt'), 'utf8'), 'secret\n');
  t.same(fs.readdirSync(outside), ['secret.txt']);
  t.same(fs.readdirSync(base).sort(), ['outside', 'shared', 'victim']);
  t.ok(fs.existsSync(path.join(shared, 'sub', 'moveme')));
  t.notOk(fs.existsSync(path.join(shared, 'mylink')), 'no guest symlink to an absolute path');
  t.notOk(fs.existsSync(path.join(shared, 'sub', 'l2')), 'no guest symlink out of the tree');
  t.equal(fs.readlinkSync(path.join(shared, 'sub', 'alias')), 'file.txt');
});

t.test("stdout appended to a file: the guest cannot truncate, seek, overwrite or renumber it", async (t) => {
  const file = path.join(BUILD, 'wasi-stdout.txt');
  fs.writeFileSync(file, 'EARLIER\n');
  const fd = fs.openSync(file, 'a');
  const r = spawnSync(process.execPath, [CLI, hostile, 'stdio'], { stdio: ['ignore', fd, 'pipe'], encoding: 'utf8', timeout: 60_000 });
  fs.closeSync(fd);
  t.equal(r.status, 0, r.stderr);
  t.equal(fs.readFileSync(file, 'utf8'), 'EARLIER\nline1\nline2\n');
  t.same(kv(r.stderr), {
    ftruncate: '28', // EINVAL
    setfl: '76', // ENOTCAPABLE
    lseek: '70', // ESPIPE
    pwrite: '70',
    allocate: '70',
    set_size: '28',
    set_times: '76',
    advise: '70',
    renumber_away: '76',
    renumber_onto: '76',
    shutdown: '76',
    close: '0', // allowed: hides fd 1 from the guest, the host's stays open
    write_closed: '8', // EBADF
    close_again: '8',
  });
});

t.test('pointers that wrap or leave the memory: EFAULT to the guest, never a host exception', async (t) => {
  const r = runCli([hostile, 'pointers']);
  t.equal(r.code, 0, r.stderr);
  t.same(kv(r.stdout), {
    poll_in: '21',
    poll_out: '21',
    poll_nevents: '21',
    poll_nsubs: '21',
    poll_zero: '28',
    poll_ok: '0',
    fdstat: '21',
    path_open: '21',
  });
  t.equal(r.stderr, '');
});

t.test('a stack overflow of the guest is a trap: exit 134', async (t) => {
  const r = runCli([hostile, 'overflow']);
  t.equal(r.code, 134);
  t.match(r.stderr, /the guest trapped: stack overflow/);
});

t.test('proc_exit codes: as given when they fit 0-255, else exit 1 naming the code', async (t) => {
  t.equal(runCli([hostile, 'exit', '7']).code, 7);
  t.equal(runCli([hostile, 'exit', '0']).code, 0);
  for (const c of ['256', '4294967295']) {
    const r = runCli([hostile, 'exit', c]);
    t.equal(r.code, 1, `proc_exit(${c})`);
    t.match(r.stderr, new RegExp(`the guest exited with code ${c}, which is not an exit status`));
  }
});

/** a module whose start function (run while it is instantiated) calls proc_exit(7) */
function startExitModule(): Uint8Array {
  const out = new Bytes().bytes(new Uint8Array([0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00]));
  const section = (id: number, body: Bytes): void => void out.byte(id).u32(body.len).bytes(body.out());
  section(1, new Bytes().u32(2).byte(0x60).u32(1).byte(0x7f).u32(0).byte(0x60).u32(0).u32(0));
  section(2, new Bytes().u32(1).str('wasi_snapshot_preview1').str('proc_exit').byte(0).u32(0));
  section(3, new Bytes().u32(2).u32(1).u32(1));
  section(5, new Bytes().u32(1).byte(0).u32(1));
  section(7, new Bytes().u32(2).str('memory').byte(2).u32(0).str('_start').byte(0).u32(2));
  section(8, new Bytes().u32(1));
  const start = new Bytes().u32(0).byte(0x41).s32(7).byte(0x10).u32(0).byte(0x0b);
  const empty = new Bytes().u32(0).byte(0x0b);
  section(10, new Bytes().u32(2).u32(start.len).bytes(start.out()).u32(empty.len).bytes(empty.out()));
  return out.out();
}

t.test('proc_exit in a start function: a normal exit with its code', async (t) => {
  const file = path.join(BUILD, 'wasi-start-exit.wasm');
  fs.writeFileSync(file, startExitModule());
  const r = runCli([file]);
  t.equal(r.code, 7);
  t.equal(r.stderr, '');
});

t.test('a WASI import of the wrong type, or one WASI lacks: exit 1 with both types', async (t) => {
  const src = path.join(BUILD, 'wasi-wrong-import.c');
  fs.writeFileSync(
    src,
    `__attribute__((import_module("wasi_snapshot_preview1"), import_name("fd_write"))) int bad_write(int);
__attribute__((import_module("wasi_snapshot_preview1"), import_name(NAME))) int other(int);
int main(void) { return bad_write(1) + other(2); }
`,
  );
  const wrong = buildGuest(src, path.join(BUILD, 'wasi-wrong-type.wasm'), ['-DNAME="fd_close"']);
  let r = runCli([wrong]);
  t.equal(r.code, 1);
  t.match(r.stderr, 'import wasi_snapshot_preview1.fd_write has type (i32) -> i32, expected (i32, i32, i32, i32) -> i32');
  fs.writeFileSync(src, fs.readFileSync(src, 'utf8').replace('bad_write(int)', 'bad_write(int, int, int, int)').replace('bad_write(1)', 'bad_write(1, 0, 0, 0)'));
  const unknown = buildGuest(src, path.join(BUILD, 'wasi-unknown.wasm'), ['-DNAME="fd_nonesuch"']);
  r = runCli([unknown]);
  t.equal(r.code, 1);
  t.match(r.stderr, 'the module imports wasi_snapshot_preview1.fd_nonesuch, which WASI preview1 does not have');
});

t.test('stdin from a pipe: the guest blocks until data or EOF (Node makes its pipe to a child non-blocking)', async (t) => {
  const run = new Running(spawn(process.execPath, [CLI, hostile, 'cat'], { stdio: ['pipe', 'pipe', 'pipe'] }));
  await new Promise((r) => setTimeout(r, 800));
  run.child.stdin!.write('hi\n');
  await run.waitFor(/^hi$/);
  await new Promise((r) => setTimeout(r, 200));
  run.child.stdin!.end('there\n');
  const r = await run.exited;
  t.equal(r.code, 0, run.stderr);
  t.equal(run.stdout, 'hi\nthere\neof\n');
});

t.test('stdout to a pipe its reader drains late: no write fails with EAGAIN, no line lost', async (t) => {
  const run = new Running(spawn(process.execPath, [CLI, hostile, 'flood'], { stdio: ['ignore', 'pipe', 'pipe'] }));
  run.child.stdout!.pause();
  await new Promise((r) => setTimeout(r, 1500));
  run.child.stdout!.resume();
  const r = await run.exited;
  t.equal(r.code, 0, run.stderr);
  t.equal(run.stdout.length, 1_000_000);
});

const growGuest = (): string => {
  const obj = buildBpf(path.join(FIXTURES, 'probe.bpf.c'), path.join(BUILD, 'probe.bpf.o'));
  const hdr = embed(obj, 'probe_obj', path.join(BUILD, 'probe_obj.h'));
  return buildGuest(path.join(FIXTURES, 'grow.c'), path.join(BUILD, 'grow.wasm'), ['-Wl,--max-memory=2147483648'], [hdr]);
};

for (const [mode, sig, code, stdin] of [
  ['loop', 'SIGINT', 130, 'pipe'],
  ['fail', 'SIGINT', 130, 'pipe'],
  ['huge', 'SIGTERM', 143, 'pipe'],
  // Node's pipe to a child is a non-blocking socket: the read waits in the host, in slices
  ['read', 'SIGINT', 130, 'pipe'],
  // a FIFO: a blocking read, which terminate() does not interrupt
  ['read', 'SIGINT', 130, 'fifo'],
] as const) {
  const what = mode === 'read' ? `blocks reading stdin (${stdin})` : `grows its memory (${mode})`;
  t.test(`${sig} while the guest ${what}: exit ${code} within 2 s`, async (t) => {
    let input: 'pipe' | number = 'pipe';
    if (stdin === 'fifo') {
      const fifo = path.join(BUILD, `wasi-fifo-${process.pid}`);
      fs.rmSync(fifo, { force: true });
      spawnSync('mkfifo', [fifo]);
      input = fs.openSync(fifo, 'r+');
      t.teardown(() => fs.rmSync(fifo, { force: true }));
    }
    const run = new Running(spawn(process.execPath, [CLI, growGuest(), mode], { stdio: [input, 'pipe', 'pipe'] }));
    if (typeof input === 'number') fs.closeSync(input);
    await run.waitFor(/^# growing/);
    t.match(run.stdout, /load=[1-9]\d* attach=0/);
    await new Promise((r) => setTimeout(r, 300));
    const r = await run.interrupt(sig);
    run.child.stdin?.destroy();
    t.equal(r.code, code);
    t.ok(r.ms < 2000, `exited in ${r.ms} ms`);
    // the read may also end at once (the signal interrupts it with EINTR when it lands on that thread)
    if (mode === 'loop') t.match(run.stderr, /the guest did not yield within .* of SIG/);
  });
}

t.test('nothing left in the kernel', async (t) => {
  t.same(await settledLeaks(before), { progs: [], maps: [], links: [] });
});

t.test('the path walk agrees with the kernel: 3,000 random paths through random symlinks', async (t) => {
  const { PathConfinement } = await import('../src/runtime/wasi-paths.js');
  const base = fs.mkdtempSync(path.join(BUILD, 'wasi-walk-'));
  t.teardown(() => fs.rmSync(base, { recursive: true, force: true }));
  const root = path.join(base, 'root');
  let seed = 14;
  const rnd = (n: number): number => {
    seed = (seed * 1103515245 + 12345) & 0x7fffffff;
    return seed % n;
  };
  const names = ['a', 'b', 'c', 'l1', 'l2', 'l3', '..', '.', 'f'];
  const dirs = ['', 'a', 'a/b', 'c', 'a/b/c'];
  for (const d of dirs) fs.mkdirSync(path.join(root, d), { recursive: true });
  fs.mkdirSync(path.join(base, 'out', 'a'), { recursive: true });
  fs.writeFileSync(path.join(root, 'f'), '');
  const targets = ['..', '../..', '../../out', 'a', 'b/c', '/etc', root, `${root}/a/..`, `${root}/../out`, path.join(base, 'out'), '.', 'l1', '../l2', 'a/../..', 'f'];
  for (const d of dirs) for (const l of ['l1', 'l2', 'l3']) fs.symlinkSync(targets[rnd(targets.length)]!, path.join(root, d, l));
  const conf = new PathConfinement({ '/r': root });
  const real = fs.realpathSync(root);
  let allowed = 0;
  let refused = 0;
  for (let i = 0; i < 3000; i++) {
    const p = Array.from({ length: 1 + rnd(5) }, () => names[rnd(names.length)]!).join('/');
    const host = conf.check(3, p, false, true);
    if (typeof host !== 'string') {
      refused++;
      continue;
    }
    allowed++;
    // where the kernel lands: the deepest existing prefix of the path, resolved
    let probe = host;
    let resolved: string | undefined;
    for (;;) {
      try {
        resolved = fs.realpathSync(probe);
        break;
      } catch {
        const up = path.dirname(probe);
        if (up === probe) break;
        probe = up;
      }
    }
    if (resolved !== real && !resolved?.startsWith(`${real}/`)) t.fail(`${p}: allowed, but the kernel resolves ${probe} to ${resolved}`);
  }
  t.ok(allowed > 300 && refused > 300, `allowed ${allowed}, refused ${refused}`);
});
