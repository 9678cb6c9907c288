// Tests for backends/userspace/attach/ (target.ts, libpath.ts, symbols.ts, procmaps.ts): uprobe targets
// parsed as libbpf reads them, resolved in ELF files, and found in running processes (PIE and non-PIE
// programs printing their own addresses, a library dlopen'ed after start, a versioned libc symbol).
import t from 'tap';
import { execFileSync, spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { BackendError } from '../src/errors.js';
import { uprobeTarget } from '../backends/userspace/attach/target.js';
import { resolveBinary, searchPath } from '../backends/userspace/attach/libpath.js';
import { resolveUprobe } from '../backends/userspace/attach/symbols.js';
import { devParts, parseMapsLine, processSites, ProcessTracker, sitesIn } from '../backends/userspace/attach/procmaps.js';

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'wasm-bpf-targets-'));
t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));

const PROG = `
#include <dlfcn.h>
#include <stdio.h>
#include <string.h>
__attribute__((noinline)) int target_fn(int x) { __asm__ volatile(""); return x * 3 + 1; }
static __attribute__((noinline, used)) int local_fn(int x) { __asm__ volatile(""); return x - 7; }
int main(int argc, char **argv) {
  (void)argv;
  char line[512];
  printf("target_fn %p\\n", (void *)&target_fn);
  printf("local_fn %p\\n", (void *)&local_fn);
  printf("malloc %p\\n", dlsym(RTLD_DEFAULT, "malloc"));
  fflush(stdout);
  while (fgets(line, sizeof line, stdin)) {
    line[strcspn(line, "\\n")] = 0;
    if (strcmp(line, "exit") == 0) break;
    void *h = dlopen(line, RTLD_NOW);
    printf("lib_fn %p\\n", h ? dlsym(h, "lib_fn") : NULL);
    fflush(stdout);
  }
  return target_fn(argc) + local_fn(argc) > 1000;
}
`;
const LIB = `int lib_fn(int x) { __asm__ volatile(""); return x + 42; }\n`;
// a function symbol without .size: st_size 0
const ZERO = `.text\n.globl zero_fn\n.type zero_fn,@function\nzero_fn:\n  ret\n`;

fs.writeFileSync(path.join(dir, 'prog.c'), PROG);
fs.writeFileSync(path.join(dir, 'lib.c'), LIB);
fs.writeFileSync(path.join(dir, 'zero.S'), ZERO);
const pie = path.join(dir, 'prog-pie');
const nopie = path.join(dir, 'prog-nopie');
const lib = path.join(dir, 'libtarget.so');
execFileSync('gcc', ['-O2', '-fPIE', '-pie', path.join(dir, 'prog.c'), path.join(dir, 'zero.S'), '-o', pie, '-ldl']);
execFileSync('clang-16', ['-O2', '-fno-pie', '-no-pie', path.join(dir, 'prog.c'), path.join(dir, 'zero.S'), '-o', nopie, '-ldl']);
execFileSync('gcc', ['-O2', '-shared', '-fPIC', path.join(dir, 'lib.c'), '-o', lib]);

/** a running test program and the lines it printed */
class Prog {
  readonly child: ChildProcessWithoutNullStreams;
  private buf = '';
  private waiters: Array<() => void> = [];
  readonly printed = new Map<string, bigint>();
  constructor(file: string) {
    this.child = spawn(file, [], { stdio: 'pipe' });
    this.child.stdout.on('data', (d: Buffer) => {
      this.buf += d.toString();
      let nl: number;
      while ((nl = this.buf.indexOf('\n')) >= 0) {
        const [k, v] = this.buf.slice(0, nl).split(' ');
        this.buf = this.buf.slice(nl + 1);
        if (k && v) this.printed.set(k, v === '(nil)' ? 0n : BigInt(v));
      }
      for (const w of this.waiters.splice(0)) w();
    });
  }
  async value(name: string): Promise<bigint> {
    const deadline = Date.now() + 10_000;
    while (!this.printed.has(name)) {
      if (Date.now() > deadline) throw new Error(`the program never printed ${name}`);
      await new Promise<void>((r) => {
        this.waiters.push(r);
        setTimeout(r, 200);
      });
    }
    return this.printed.get(name)!;
  }
  send(line: string): void {
    this.child.stdin.write(`${line}\n`);
  }
  async stop(): Promise<void> {
    if (this.child.exitCode !== null) return;
    const done = new Promise((r) => this.child.once('exit', r));
    this.send('exit');
    await done;
  }
}

function errOf(f: () => unknown): BackendError {
  try {
    f();
  } catch (err) {
    if (err instanceof BackendError) return err;
    throw err;
  }
  throw new Error('no error');
}

t.test('targets: sections and explicit targets as libbpf reads them', async (t) => {
  t.same(uprobeTarget('uprobe//usr/bin/bash:readline'), { binary: '/usr/bin/bash', func: 'readline', offset: 0, retprobe: false, sleepable: false });
  t.same(uprobeTarget('uretprobe.s//lib/x.so:f'), { binary: '/lib/x.so', func: 'f', offset: 0, retprobe: true, sleepable: true });
  t.same(uprobeTarget('uprobe/libc.so.6:malloc+0x10'), { binary: 'libc.so.6', func: 'malloc', offset: 16, retprobe: false, sleepable: false });
  t.same(uprobeTarget('uprobe.s/libc.so.6:malloc+8'), { binary: 'libc.so.6', func: 'malloc', offset: 8, retprobe: false, sleepable: true });
  t.same(uprobeTarget('uprobe', '/bin/x:malloc@@GLIBC_2.2.5'), { binary: '/bin/x', func: 'malloc', version: 'GLIBC_2.2.5', offset: 0, retprobe: false, sleepable: false });
  t.same(uprobeTarget('uprobe', '/bin/x:memcpy@GLIBC_2.2.5+4'), { binary: '/bin/x', func: 'memcpy', version: 'GLIBC_2.2.5', offset: 4, retprobe: false, sleepable: false });
  // the explicit target wins over the section's
  t.same(uprobeTarget('uprobe//bin/a:f', '/bin/b:g'), { binary: '/bin/b', func: 'g', offset: 0, retprobe: false, sleepable: false });
  // raw file offsets
  t.same(uprobeTarget('uprobe', '/bin/x:0x4c5e0'), { binary: '/bin/x', offset: 0x4c5e0, retprobe: false, sleepable: false });
  t.same(uprobeTarget('uretprobe', '/bin/x:1234'), { binary: '/bin/x', offset: 1234, retprobe: true, sleepable: false });

  const e = (section: string, target?: string): string => {
    const err = errOf(() => uprobeTarget(section, target));
    t.equal(err.errno, 22, `${section} ${target ?? ''}: EINVAL`);
    return err.message;
  };
  t.match(e('kprobe/do_unlinkat'), /is not a uprobe or uretprobe section/);
  t.match(e('usdt/libc.so.6:libc:setjmp'), /is not a uprobe or uretprobe section/);
  t.match(e('uprobe.multi//bin/x:f*'), /is not a uprobe or uretprobe section/);
  t.match(e('uprobe'), /names no BINARY:FUNCTION and no attach target was given/);
  t.match(e('uprobe//bin/x'), /'\/bin\/x' is not BINARY:FUNCTION\[\+OFFSET\]/);
  t.match(e('uretprobe//bin/x:f+4'), /a uretprobe takes no \+OFFSET/);
  t.match(e('uprobe', '/bin/x:0x10+4'), /neither a function name nor a file offset/);
  t.match(e('uprobe', '/bin/x:@GLIBC'), /is not FUNCTION@VERSION/);
});

t.test('libpath: bare names are searched as libbpf does', async (t) => {
  t.same(searchPath('libc.so.6', { env: { LD_LIBRARY_PATH: '/opt/a::/opt/b' }, arch: 'x64' }), ['/opt/a', '/opt/b', '/usr/lib64', '/usr/lib', '/lib/x86_64-linux-gnu']);
  t.same(searchPath('libc.so.6', { env: {}, arch: 'arm64' }), ['/usr/lib64', '/usr/lib', '/lib/aarch64-linux-gnu']);
  t.same(searchPath('bash', { env: { PATH: '/sbin:/bin' } }), ['/sbin', '/bin', '/usr/bin', '/usr/sbin']);
  t.equal(resolveBinary('/x/y'), '/x/y', 'a path is taken as it is');
  t.equal(resolveBinary('libtarget.so', { env: { LD_LIBRARY_PATH: dir } }), lib);
  if (process.arch === 'x64') t.equal(resolveBinary('libc.so.6', { env: {} }), fs.existsSync('/usr/lib/libc.so.6') ? '/usr/lib/libc.so.6' : '/lib/x86_64-linux-gnu/libc.so.6');
  const err = errOf(() => resolveBinary('libnothere.so.1', { env: {} }));
  t.equal(err.errno, 2);
  t.equal(err.code, 'NOT_FOUND');
  t.match(err.message, /uprobe target binary 'libnothere.so.1' was not found in \/usr\/lib64:\/usr\/lib/);
});

t.test('maps lines and device numbers', async (t) => {
  const m = parseMapsLine('7f1c2a028000-7f1c2a1bd000 r-xp 00028000 fd:01 1311221                    /usr/lib/x86_64-linux-gnu/libc.so.6 (deleted)');
  t.same(m, { start: 0x7f1c2a028000n, end: 0x7f1c2a1bd000n, perms: 'r-xp', pgoff: 0x28000n, major: 0xfd, minor: 1, ino: 1311221n, path: '/usr/lib/x86_64-linux-gnu/libc.so.6 (deleted)' });
  t.same(parseMapsLine('7ffd1000-7ffd2000 rw-p 00000000 00:00 0 '), { start: 0x7ffd1000n, end: 0x7ffd2000n, perms: 'rw-p', pgoff: 0n, major: 0, minor: 0, ino: 0n, path: '' });
  t.equal(parseMapsLine('garbage'), undefined);
  // glibc's makedev: major 259, minor 0x10003
  t.same(devParts(3n | (259n << 8n) | (0x10000n << 12n)), { major: 259, minor: 0x10003 });
  t.same(devParts(fs.statSync('/proc/self/exe', { bigint: true }).dev), (() => {
    const self = fs.readFileSync('/proc/self/maps', 'utf8').split('\n').map(parseMapsLine).find((x) => x && x.path === fs.realpathSync('/proc/self/exe'))!;
    return { major: self.major, minor: self.minor };
  })(), 'stat and /proc/self/maps agree');
  const target = { path: '/lib/x.so', dev: (0xfdn << 8n) | 1n, ino: 5n, fileOffset: 0x1234 };
  const maps = [
    parseMapsLine('1000-2000 r--p 00000000 fd:01 5 /lib/x.so')!,
    parseMapsLine('2000-4000 r-xp 00001000 fd:01 5 /lib/x.so')!,
    parseMapsLine('9000-b000 r-xp 00001000 fd:01 5 /mnt/bind/x.so')!,
    parseMapsLine('c000-e000 r-xp 00001000 fd:01 6 /lib/x.so (deleted)')!,
  ];
  const s = sitesIn(maps, target);
  t.same(s.sites.map((x) => x.address), [0x2234n, 0x9234n], 'every executable mapping of the inode, whatever its path');
  t.same(s.stale.map((x) => x.ino), [6n], 'another inode under the same path is stale');
});

async function checkProgram(t: Tap.Test, file: string, pieExpected: boolean): Promise<void> {
  const p = new Prog(file);
  t.teardown(() => p.stop());
  const printed = await p.value('target_fn');
  const r = resolveUprobe(uprobeTarget(`uprobe/${file}:target_fn`));
  t.equal(r.pie, pieExpected, 'PIE or not');
  t.equal(r.path, file);
  t.equal(r.func?.table, '.symtab');
  t.ok(r.func!.size > 0, 'st_size');
  const { sites, stale } = processSites(p.child.pid!, r);
  t.equal(sites.length, 1, 'one mapping holds it');
  t.equal(sites[0]!.address, printed, `resolved 0x${printed.toString(16)}`);
  t.same(stale, []);
  if (!pieExpected) t.equal(BigInt(r.vaddr), printed, 'non-PIE: the link-time address is the run-time one');

  // a static function (.symtab only), and +OFFSET
  const local = resolveUprobe(uprobeTarget('uprobe', `${file}:local_fn`));
  t.equal(processSites(p.child.pid!, local).sites[0]?.address, await p.value('local_fn'));
  const plus = resolveUprobe(uprobeTarget('uprobe', `${file}:target_fn+1`));
  t.equal(processSites(p.child.pid!, plus).sites[0]?.address, printed + 1n);
  // the raw file offset of the same point
  const raw = resolveUprobe(uprobeTarget('uprobe', `${file}:0x${r.fileOffset.toString(16)}`));
  t.equal(raw.func?.name, 'target_fn', 'a raw offset names the function holding it');
  t.equal(processSites(p.child.pid!, raw).sites[0]?.address, printed);

  // the versioned libc symbol, as the process's dynamic linker bound it
  const malloc = resolveUprobe(uprobeTarget('uprobe', 'libc.so.6:malloc@@GLIBC_2.2.5'));
  t.equal(malloc.func?.table, '.dynsym');
  t.equal(malloc.func?.version, 'GLIBC_2.2.5');
  t.equal(processSites(p.child.pid!, malloc).sites[0]?.address, await p.value('malloc'), 'malloc@@GLIBC_2.2.5');

  // a library dlopen'ed after start: not there, then found by a re-check
  const libTarget = resolveUprobe(uprobeTarget('uprobe', `${lib}:lib_fn`));
  const tracker = new ProcessTracker(p.child.pid!, libTarget);
  t.same(tracker.refresh().added, [], 'not mapped yet');
  p.send(lib);
  const libFn = await p.value('lib_fn');
  const after = tracker.refresh();
  t.same(after.added.map((s) => s.address), [libFn], `dlopen'ed lib_fn at 0x${libFn.toString(16)}`);
  t.same(tracker.refresh().added, [], 'a second re-check adds nothing');
  await p.stop();
}

t.test('a PIE program: its function, libc, a dlopen\'ed library', (t) => checkProgram(t, pie, true));
t.test('a non-PIE program (clang)', (t) => checkProgram(t, nopie, false));

t.test('by inode: a symlink path, a replaced binary', async (t) => {
  const copy = path.join(dir, 'prog-copy');
  fs.copyFileSync(pie, copy);
  fs.chmodSync(copy, 0o755);
  const link = path.join(dir, 'prog-link');
  fs.symlinkSync(copy, link);
  const p = new Prog(link);
  t.teardown(() => p.stop());
  const printed = await p.value('target_fn');
  const viaLink = resolveUprobe(uprobeTarget('uprobe', `${link}:target_fn`));
  t.equal(processSites(p.child.pid!, viaLink).sites[0]?.address, printed, 'the symlink names the mapped inode');
  // the file is replaced on disk (a package upgrade): the process still runs the old inode
  fs.rmSync(copy);
  fs.copyFileSync(nopie, copy);
  const replaced = resolveUprobe(uprobeTarget('uprobe', `${copy}:target_fn`));
  const s = processSites(p.child.pid!, replaced);
  t.same(s.sites, [], 'the new file is not mapped');
  t.ok(s.stale.length > 0 && s.stale.every((m) => m.path === `${copy} (deleted)`), 'the old one is reported stale');
  await p.stop();
  const gone = errOf(() => processSites(p.child.pid!, replaced));
  t.equal(gone.errno, 3, 'ESRCH once the process is gone');
});

t.test('by inode: a program run through a bind mount', async (t) => {
  const bind = path.join(dir, 'bind');
  fs.mkdirSync(bind);
  try {
    execFileSync('mount', ['--bind', dir, bind], { stdio: 'ignore' });
  } catch {
    t.skip('cannot bind-mount here (needs root)');
    return;
  }
  t.teardown(() => execFileSync('umount', ['-l', bind]));
  const p = new Prog(path.join(bind, 'prog-pie'));
  t.teardown(() => p.stop());
  const printed = await p.value('target_fn');
  const r = resolveUprobe(uprobeTarget('uprobe', `${pie}:target_fn`));
  const s = processSites(p.child.pid!, r);
  t.equal(s.sites[0]?.address, printed, 'resolved through the original path');
  t.equal(s.sites[0]?.mapping.path, path.join(bind, 'prog-pie'), 'the process maps it under the bind path');
  t.same(s.stale, []);
  await p.stop();
});

t.test('errors', async (t) => {
  const e = (target: string, errno: number, re: RegExp): void => {
    const err = errOf(() => resolveUprobe(uprobeTarget('uprobe', target)));
    t.equal(err.errno, errno, `${target}: errno ${errno}`);
    t.match(err.message, re);
  };
  e(`${dir}/nothere:f`, 2, /uprobe target binary .*\/nothere does not exist/);
  // a device or a directory named as the binary: refused before any read (reading /dev/zero never ends)
  e('/dev/zero:f', 22, /uprobe target binary \/dev\/zero is not a regular file/);
  e(`${dir}:f`, 22, /is not a regular file/);
  e(`${dir}/prog.c:f`, 8, /is not an ELF64 file: not an ELF file/);
  e(`${pie}:no_such_fn`, 2, /no function 'no_such_fn' in .*prog-pie/);
  e('libc.so.6:malloc@GLIBC_9.9', 2, /no function 'malloc@GLIBC_9.9' in .*libc\.so\.6/);
  e(`${pie}:zero_fn`, 22, /function 'zero_fn' in .*prog-pie has size 0 \(st_size\)/);
  e(`${pie}:target_fn+0x10000`, 22, /offset \+0x10000 is past the end of 'target_fn'/);
  e(`${pie}:0x7fffffff`, 22, /file offset 0x7fffffff is in no loaded section/);
  const hint = errOf(() => resolveUprobe(uprobeTarget('uprobe', 'libc.so.6:malloc@GLIBC_9.9')));
  t.match(hint.hint, /malloc@GLIBC_2\.2\.5/, 'the hint lists the versions it has');
});
