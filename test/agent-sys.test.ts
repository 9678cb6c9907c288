// The agent's syscall site rewriter (native/agent/sys, x86-64): builds test/sys_test.c (into its own build
// folder) and runs it: the scan on byte strings (refusals), getppid/openat/close and syscall() rewritten in
// this process's glibc under 8 threads (exact counts, arguments, results, errno), detach restoring every
// byte, 100 attach/detach rounds under calling threads, and a raw getpid site in the main program (its .symtab).
import t from 'tap';
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { BUILD, ROOT } from './helpers.js';

const AGENT = path.join(ROOT, 'native', 'agent');
const OUT = path.join(BUILD, 'agent-sys');
const BIN = path.join(OUT, 'test', 'sys_test');

if (process.arch !== 'x64') {
  t.pass('the syscall site rewriter supports x86-64 only for now');
} else {
  t.setTimeout(240_000);

  t.test('builds', async (tt) => {
    const r = spawnSync('make', ['-C', AGENT, `B=${OUT}`, '-j2', path.join(OUT, 'test', 'sys_test')], { encoding: 'utf8' });
    tt.equal(r.status, 0, 'make sys_test', { stderr: r.stderr });
  });

  t.test('sys_test: rewritten glibc sites, exact on 8 threads, restored at detach', async (tt) => {
    const r = spawnSync(BIN, [], { encoding: 'utf8', timeout: 180_000 });
    tt.equal(r.signal, null, 'no signal (crash)');
    tt.equal(r.status, 0, 'exit 0', { stdout: r.stdout, stderr: r.stderr });
    for (const line of [
      /^ok - scan: refused when a branch lands inside the mov/m,
      /^ok - scan: a branch to the syscall itself leaves the site rewritable, marked shared$/m,
      /^ok - scan: a site past an undecodable instruction is refused/m,
      /^ok - scan: the generic syscall\(\)'s mov 8\(%rsp\),%r9; syscall found$/m,
      /^ok - getppid's, openat's \(2\), close's \(2\) and syscall\(\)'s sites rewritten/m,
      /^ok - every call returned what it should, errno kept \(0 wrong\)$/m,
      /^ok - getppid: 32000 enters, 32000 exits, want 32000 each/m,
      /^ok - openat: 32000 enters, 32000 exits, want 32000 each$/m,
      /^ok - close: 16000 enters, 16000 exits, want 16000 each$/m,
      /^ok - the callbacks saw the right arguments and results \(openat of a missing file: -ENOENT\)/m,
      /^ok - detach restored every byte of getppid, openat, close and syscall$/m,
      /^ok - after detach the calls work \(0 wrong\) and no callback runs$/m,
      /^ok - 100 attach\/detach rounds under 8 calling threads: 0 failed, 0 wrong results$/m,
      /^ok - after the rounds every byte is the original$/m,
      /^ok - main program: its two getpid sites rewritten/m,
      /^ok - main program: 1000 raw getpid calls traced \(1000 enters\), results right \(0 wrong\)$/m,
      /^ok - main program: detach restored its bytes$/m,
      /^ok - a function hook whose entry bytes overlap a rewritten site is refused/m,
      /^ok - the site restored, the function hook attaches/m,
      /^ok - with the hook in place only the other site is rewritten/m,
      /^ok - the hooked function still works, then unhooked$/m,
      /^sys_test: 0 failed$/m,
    ]) tt.match(r.stdout, line);
    for (const re of [/^# .*$/m, /^cost: .*$/m]) {
      const m = re.exec(r.stdout);
      if (m) tt.comment(m[0]);
    }
  });
}
