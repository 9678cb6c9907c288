// Attach and detach, 1000 times in one run: the matrix's uprobe programs (unchanged) loaded, attached, polled
// and destroyed by a guest (test/fixtures/userspace/uprobe-cycles.c) again and again while the traced
// process calls the function from 8 threads. The process must never see a wrong result or die, every record
// must carry the right arguments, its entry must be restored at the end, and the agent must free what each
// closed object had (its 64-program table filled up after 32 cycles before objects were dropped).
import t, { type Test } from 'tap';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { BUILD, FIXTURES, ROOT, buildGuest, startCli } from './helpers.js';
import { entryBytes, fileBytes } from './uprobe-common.js';

const OUT = path.join(BUILD, 'userspace-cycles');
const MATRIX = path.join(ROOT, 'matrix');


function exited(child: ChildProcess): Promise<{ code: number | null; out: string }> {
  let out = '';
  child.stdout?.setEncoding('utf8').on('data', (d: string) => (out += d));
  return new Promise((resolve) => child.once('close', (code) => resolve({ code, out })));
}

if (process.arch !== 'x64') {
  t.pass('the agent hooks x86-64 only for now');
} else {
  t.setTimeout(600_000);
  fs.mkdirSync(OUT, { recursive: true });
  const skel = path.join(MATRIX, 'build', 'uprobe.skel.h');
  if (!fs.existsSync(skel)) throw new Error(`${skel} is not built: make -C matrix`);
  const guest = buildGuest(path.join(FIXTURES, 'userspace', 'uprobe-cycles.c'), path.join(OUT, 'uprobe-cycles.wasm'), [
    '-I', path.join(MATRIX, 'build'), '-I', path.join(MATRIX, 'apps', 'common'), '-I', path.join(MATRIX, 'apps', 'uprobe'),
  ], [skel]);
  const target = path.join(OUT, 'target');
  const cc = spawnSync('gcc', ['-O2', '-fcf-protection=full', path.join(FIXTURES, 'agent', 'uprobe-target.c'), '-o', target, '-lpthread'], { encoding: 'utf8' });
  if (cc.status !== 0) throw new Error(`building the target: ${cc.stderr}`);

  const summary = (tt: Test, stdout: string, stderr: string, cycles: number): void => {
    const m = /^cycles=(\d+) entries=(\d+) returns=(\d+) bad=(\d+)$/m.exec(stdout);
    tt.ok(m, 'the summary line', { stdout: stdout.slice(-2000), stderr: stderr.slice(-4000) });
    if (!m) return;
    tt.equal(Number(m[1]), cycles, `every cycle loaded, attached and destroyed (${cycles})`, { stderr: stderr.slice(-4000) });
    tt.ok(Number(m[2]) > 0, `entry records arrived (${m[2]})`);
    tt.ok(Number(m[3]) > 0, `return records arrived (${m[3]})`);
    tt.equal(Number(m[4]), 0, 'every record carried a=2 b=3 (entry) or ret=5 (return)');
    tt.notMatch(stderr, /holds \d+ (programs|maps|hooks)|refused by the agent|freeing the object/, 'no agent table filled up, every drop answered');
  };

  /** CYCLES cycles on a process joined (--pid) by the given tier, calling the function from 8 threads PAUSE_US apart */
  const joined = (label: string, tier: 'agent' | 'ptrace', cycles: number, pauseUs: number): void => {
    t.test(label, async (tt) => {
      const proc = spawn(target, ['2', '3', '1000000000', '0', '8', String(pauseUs)], { stdio: ['ignore', 'pipe', 'inherit'] });
      const procEnd = exited(proc);
      await new Promise((r) => setTimeout(r, 300));
      const run = startCli(['run', '--backend', 'userspace', '--userspace-tier', tier, '--pid', String(proc.pid), guest, target, String(cycles), '2', '3']);
      const end = await run.exited;
      tt.equal(end.code, 0, 'the app ended with status 0');
      summary(tt, run.stdout, run.stderr, cycles);
      tt.ok(proc.exitCode === null, 'the process still runs');
      tt.equal(entryBytes(proc.pid!, target), fileBytes(target), 'its entry is the file\'s again');
      proc.kill('SIGUSR2');
      const p = await procEnd;
      tt.equal(p.code, 0, 'it ended its calls with every result right');
      tt.match(p.out, /uprobe-target: uprobe_target_add\(2, 3\) = 5, \d+ calls/);
    });
  };
  joined('1000 load/attach/poll/destroy cycles on a joined process calling the function from 8 threads', 'agent', 1000, 200);
  joined('100 cycles on a process joined by the ptrace tier (the tracer frees what each object had too)', 'ptrace', 100, 500);

  t.test('200 cycles on a launched command (the run\'s registry drops what each object had)', async (tt) => {
    const run = startCli(['run', '--backend', 'userspace', guest, target, '200', '2', '3', '--', target, '2', '3', '1000000001', '0', '8', '200']);
    tt.teardown(() => {
      // never leave the command behind, whatever failed
      for (const d of fs.readdirSync('/proc').filter((x) => /^\d+$/.test(x))) {
        try {
          if (fs.readlinkSync(`/proc/${d}/exe`) === target) process.kill(Number(d), 'SIGKILL');
        } catch {
          // gone
        }
      }
    });
    // the app ends after its cycles; the command runs on until told
    const t0 = Date.now();
    while (!/^cycles=/m.test(run.stdout) && run.child.exitCode === null && Date.now() - t0 < 300_000) await new Promise((r) => setTimeout(r, 100));
    summary(tt, run.stdout, run.stderr, 200);
    const pid = fs.readdirSync('/proc').filter((d) => /^\d+$/.test(d)).find((d) => {
      try {
        return fs.readlinkSync(`/proc/${d}/exe`) === target && fs.readFileSync(`/proc/${d}/cmdline`, 'latin1').split('\0').includes('1000000001');
      } catch {
        return false;
      }
    });
    tt.ok(pid, 'the launched command runs on');
    if (pid) {
      tt.equal(entryBytes(Number(pid), target), fileBytes(target), 'its entry is the file\'s again');
      process.kill(Number(pid), 'SIGUSR2');
    }
    const end = await run.exited;
    tt.match(run.stdout, /uprobe-target: uprobe_target_add\(2, 3\) = 5, \d+ calls/, 'the command ended its calls with every result right');
    tt.equal(end.code, 0);
  });
}
