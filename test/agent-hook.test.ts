// The agent's inline hook (native/agent/hook, x86-64): builds its C tests with gcc and clang-16 (make
// -C native/agent tests, into test/build/agent) and runs them: entry kinds hooked and unhooked,
// refusals, evacuation, and 1000 hook/unhook cycles while 8 threads call the function; return probes
// (recursion, longjmp, tail calls, flags, fork, signals, 8 threads, pthread_exit, attach/detach cycles, a full
// shadow stack; C++ exceptions; the flags at an entry); the agent's per-thread reader slots (readers_test);
// the trap tier (trap_test: entries the inline hook refuses, hooked by an int3); the ptrace tier's arch part.
import t from 'tap';
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { BUILD, ROOT } from './helpers.js';

const AGENT = path.join(ROOT, 'native', 'agent');
const OUT = path.join(BUILD, 'agent');
const BIN = path.join(OUT, 'test');

interface Run { status: number | null; signal: string | null; stdout: string; stderr: string }

function run(file: string, args: string[] = [], env: Record<string, string> = {}, timeoutMs = 60_000): Run {
  const r = spawnSync(path.join(BIN, file), args, { encoding: 'utf8', timeout: timeoutMs, env: { ...process.env, ...env } });
  return { status: r.status, signal: r.signal, stdout: r.stdout ?? '', stderr: r.stderr ?? '' };
}

function exitedOk(tt: Tap.Test, r: Run, what: string): void {
  tt.equal(r.signal, null, `${what}: no signal (crash)`);
  tt.equal(r.status, 0, `${what}: exit 0`, { stdout: r.stdout, stderr: r.stderr });
}

if (process.arch !== 'x64') {
  t.pass('the inline hook supports x86-64 only for now');
} else {
  // 1000 hook/unhook cycles under 8 busy threads on a 2-CPU machine take 15-40 s
  t.setTimeout(300_000);

  t.test('builds with the system compilers', async (tt) => {
    const r = spawnSync('make', ['-C', AGENT, `B=${OUT}`, '-j2', 'tests'], { encoding: 'utf8' });
    tt.equal(r.status, 0, 'make tests', { stderr: r.stderr });
  });

  t.test('decoder and relocator on byte strings', async (tt) => {
    const r = run('hook_unit');
    exitedOk(tt, r, 'hook_unit');
    tt.match(r.stdout, /^ok decode: \d+ prologue and nop forms$/m);
    tt.match(r.stdout, /^ok relocate: jcc rel8 -> jcc rel32 near, inverse jcc \+ absolute jmp far$/m);
    tt.match(r.stdout, /^ok relocate: call rel32 -> absolute call far$/m);
    tt.match(r.stdout, /^ok refused far rip-relative: rip-relative operand at \+0: 0x[0-9a-f]+ is out of \+-2 GiB/m);
    tt.match(r.stdout, /^ok refused branch into the entry: /m);
    tt.match(r.stdout, /^hook_unit: OK$/m);
  });

  for (const prog of ['hook_test', 'hook_test_nopie']) {
    t.test(`${prog}: each entry kind hooked, called, unhooked`, async (tt) => {
      const r = run(prog);
      exitedOk(tt, r, prog);
      // name, bytes replaced, PARM1, PARM2 and the result of the second hooked call
      const kinds: [string, number, number, number, number][] = [
        ['endbr', 7, -20, 5, -15], ['push', 7, 1000, -1, 999], ['nop5', 5, 11, 12, 23], ['plain', 10, 5, 6, 1051],
        ['riprel', 6, 8, 9, 24], ['riplea', 7, 2, 9, 309], ['jshort', 7, -5, 9, 14], ['call', 9, 50, 1, 101],
        ['tail', 5, 30, 40, 70], ['jshort-unsized', 7, -5, 9, 14], ['call-unsized', 9, 50, 1, 101],
      ];
      for (const [name, replaced, p1, p2, result] of kinds) {
        tt.match(r.stdout, new RegExp(`^ok ${name} replaced=${replaced} parm1=${p1} parm2=${p2} result=${result}$`, 'm'), name);
      }
      tt.match(r.stdout, /^ok fp replaced=8 xmm0-7 kept across the handler$/m);
      tt.match(r.stdout, /^ok evacuated a thread stopped at t_endbr\+4 to the copy: returned 42$/m);
      tt.match(r.stdout, /^ok attach does not wait for a thread that blocks every signal and sleeps in read\(\)$/m);
      tt.match(r.stdout, /^ok refused short WBPF_HOOK_ESHORT: the function ends at \+4, before the 5 bytes the jump needs$/m);
      tt.match(r.stdout, /^ok refused unknown WBPF_HOOK_EDECODE: unknown instruction 0f 31 at \+0$/m);
      tt.match(r.stdout, /^ok refused loop WBPF_HOOK_EBRANCH: the branch at \+6 targets \+2, inside the 6 replaced bytes$/m);
      tt.match(r.stdout, /^ok refused loop-sized WBPF_HOOK_EBRANCH: /m);
      tt.match(r.stdout, /^ok refused short-sized WBPF_HOOK_ESHORT: the function is 4 bytes/m);
      tt.match(r.stdout, /^ok refused riplea-unsized WBPF_HOOK_EDECODE: unknown instruction 0f 31 at \+16/m);
      tt.match(r.stdout, /^ok refused busy WBPF_HOOK_EBUSY: /m);
      tt.match(r.stdout, /^ok chained SIGTRAP to the program's handler$/m);
      tt.match(r.stdout, /^hook_test: OK$/m);
    });
  }

  t.test('return probes: every return reported once, in order, with its value; the caller unharmed', async (tt) => {
    const r = run('ret_test');
    exitedOk(tt, r, 'ret_test');
    for (const line of [
      /^ok recursion depth 100: 101 returns, innermost first, values 1000\.\.1100, rsp and rip of each call$/m,
      /^ok shadow stack full: 45 deeper calls untraced \(arm -1\), 256 returns reported, r_rec\(300\) = 1300$/m,
      /^ok longjmp out of 1 and 6 nested hooked calls: no return reported, the next calls exact$/m,
      /^ok longjmp back into a hooked caller 1000 times: 1000 returns of 7003, the 4000 stale entries dropped$/m,
      /^ok tail call \(r_tail jmp r_add, both hooked\): 2 returns of 105 at the same rsp and rip$/m,
      /^ok one call armed twice: 2 returns of 42, the last armed first$/m,
      /^ok xmm0 and rax:rdx returns kept across the return handler \(which clobbers them\); rax\/rdx reported$/m,
      /^ok flags after the return \(OF DF SF ZF AF PF CF\) as the function left them$/m,
      /^ok flags at the entry \(OF DF SF ZF AF PF CF\) as the caller left them, in pt_regs too; the handler runs with DF clear$/m,
      /^ok xmm0-15 as the caller left them across a hooked call whose handler clobbers them$/m,
      /^ok fork in a hooked call: the child returns 77 and reports it, the parent returns the pid$/m,
      /^ok signal handler calling a hooked function inside a hooked call: returns 5 then 41$/m,
      /^ok the same on sigaltstack: values right, [0-2] of 2 returns reported$/m,
      /^ok 8 threads x 200000 calls: every entry and return reported once, on its thread, with its value$/m,
      /^ok pthread_exit inside an armed call, 100 threads: each ends with its value$/m,
      /^ok 20000 signals on 4 threads in armed calls, the handler calling a hooked function: values right, shadow stacks whole$/m,
      /^ok 200 attach\/detach cycles under 4 threads: each of the \d+ armed returns reported once, values right$/m,
      /^cost: unhooked [\d.]+ ns, entry hook [\d.]+ ns, entry hook \+ armed return [\d.]+ ns per call/m,
      /^ret_test: OK$/m,
    ]) tt.match(r.stdout, line);
    const cost = /^cost: .*$/m.exec(r.stdout);
    if (cost) tt.comment(cost[0]);
  });

  t.test('return probes: C++ exceptions unwind through armed calls (g++)', async (tt) => {
    const r = run('ret_cxx');
    exitedOk(tt, r, 'ret_cxx');
    tt.match(r.stdout, /^ok throw through 4 hooked calls, caught above them: their returns unreported, later calls traced$/m);
    tt.match(r.stdout, /^ok throw caught inside a hooked function: it returns -3 /m);
    tt.match(r.stdout, /^ok rethrow \(throw;\) from a hooked function called in a catch block$/m);
    tt.match(r.stdout, /^ok 1000 throws through 5 hooked calls$/m);
    tt.match(r.stdout, /^ok pthread_exit below an armed call: the destructors above it run \(100 threads\)$/m);
    tt.match(r.stdout, /^ret_cxx: OK$/m);
  });

  // the agent's per-thread reader slots (lib/readers.c): what lets an UNHOOK wait for the hits in progress
  for (const sync of ['', 'mprotect']) {
    t.test(`reader slots: waits, torture, slots running out, fork${sync ? ` (sync: ${sync})` : ''}`, async (tt) => {
      const r = run('readers_test', [], sync ? { WBPF_HOOK_SYNC: sync } : {}, 120_000);
      exitedOk(tt, r, 'readers_test');
      for (const line of [
        /^ok - a wait for X while a hit of X runs lasts until its limit/m,
        /^ok - a wait for Y does not wait for a hit of X/m,
        /^ok - a wait for X ends when the hit leaves/m,
        /^ok - 500 swaps under 2 reading threads \(\d+ reads\): no reader saw a retired object \(0 times\)/m,
        /^ok - a fork child does not wait for the parent's hit in progress, and its thread keeps its slot$/m,
        /^ok - 296 live threads: 255 got a slot/m,
        /^ok - after they exited, 296 new threads: 255 took over a dead thread's slot$/m,
        /^readers_test: 0 failed$/m,
      ]) tt.match(r.stdout, line);
    });
  }

  // the ptrace tier's arch part (ptrace/x86_64/arch.c): the int3, and the entry instructions it emulates on a
  // traced thread's registers and stack instead of single-stepping them (its arm64 twin runs in agent-hook-arm64)
  t.test('ptrace tier: the breakpoint and the emulated entry instructions', async (tt) => {
    const r = run('ptrace_arch_test');
    exitedOk(tt, r, 'ptrace_arch_test');
    for (const line of [/^ok the breakpoint is int3$/m, /^ok an int3 already there is foreign$/m, /^ok push %rbp: stored below rsp, rsp - 8$/m,
      /^ok push %r12$/m, /^ok mov %rsp,%rbp$/m, /^ok endbr64$/m, /^ok lea .*: stepped, not emulated$/m, /^ptrace_arch_test: OK$/m]) tt.match(r.stdout, line);
    tt.notMatch(r.stdout, /^not ok/m);
  });

  t.test('trap tier: entries the inline hook refuses hooked by an int3, exact on 8 threads', async (tt) => {
    const r = run('trap_test', [], {}, 120_000);
    exitedOk(tt, r, 'trap_test');
    for (const line of [
      /^ok trap loop \(inline: WBPF_HOOK_EBRANCH\)$/m,
      /^ok trap tiny \(inline: WBPF_HOOK_ESHORT\)$/m,
      /^ok trap lfence \(inline: WBPF_HOOK_EDECODE\)$/m,
      /^ok refused by both tiers: WBPF_HOOK_EDECODE: unknown instruction 0f 31 at \+0; nor can the trap hook take it: unknown instruction 0f 31 at \+0$/m,
      /^ok trap empty \(inline: WBPF_HOOK_ESHORT\): 100 entries and returns$/m,
      /^ok forced trap tier riplea, then inline$/m,
      /^ok forced trap tier push, then inline$/m,
      /^ok lfence: 8 threads x 20000 calls, entries and returns counted exactly /m,
      /^ok tiny: 8 threads x 20000 calls, entries and returns counted exactly /m,
      /^ok loop: 2000 hook\/unhook cycles under 4 calling threads /m,
      /^ok a hit on a sigaltstack, and one nested in the handler$/m,
      /^ok handler installed before the hook: the program's own int3 reaches its SIGTRAP handler, trap hook hits do not$/m,
      /^ok handler set again after the hook \(sigaction\): the program's own int3 reaches its SIGTRAP handler, trap hook hits do not$/m,
      /^ok the program's SIGTRAP handler set after the hook \(sigaction, signal\): the hook's stays installed$/m,
      /^ok a thread blocking every signal hits a trap hook \(SIGTRAP is never blocked\)$/m,
      /^ok the program's SIGTRAP handler set behind the interposers: re-installed by the check and by a trap attach$/m,
      /^ok a fork child keeps the trap hook, hits it and unhooks its copy$/m,
      /^trap_test: OK$/m,
    ]) tt.match(r.stdout, line);
    const cost = /# ([\d.]+ us of CPU per call[^)]*)/.exec(r.stdout);
    if (cost) tt.comment(`trap tier: ${cost[1]}`);
  });

  // every call between "attach returned" and "detach started" is seen, with the right arguments
  const stress = (name: string, cycles: number, env: Record<string, string> = {}, sync?: string): void => {
    const label = `stress ${name}: ${cycles} hook/unhook cycles under 8 calling threads${sync ? ` (sync: ${sync})` : ''}`;
    t.test(label, async (tt) => {
      const r = run('hook_stress', [name, String(cycles), '8'], env, 240_000);
      exitedOk(tt, r, `hook_stress ${name}`);
      const m = /^stress (\w+): cycles (\d+) threads (\d+) calls (\d+) in-window (\d+) hits (\d+) missed (\d+) bad (\d+) wrong-args (\d+) .*sync ([\w-]+)\)$/m.exec(r.stdout);
      if (!m) {
        tt.fail('summary line', { stdout: r.stdout });
        return;
      }
      tt.equal(Number(m[2]), cycles, 'cycles');
      tt.equal(Number(m[3]), 8, 'threads');
      tt.ok(Number(m[5]) > 0, `calls inside hooked windows (${m[5]})`);
      tt.equal(Number(m[7]), 0, 'no call inside a hooked window was missed');
      tt.equal(Number(m[8]), 0, 'every call returned the right value');
      tt.equal(Number(m[9]), 0, 'the handler saw the right PARM1/PARM2');
      if (sync) tt.equal(m[10], sync, 'core sync method');
      tt.match(r.stdout, /^hook_stress: OK$/m);
    });
  };
  stress('endbr', 1000);
  stress('push', 200);
  stress('nop5', 200);
  stress('jshort', 200);
  stress('lfence', 100); // the trap tier (the inline hook refuses it)
  stress('tiny', 100);
  stress('push', 100, { WBPF_HOOK_SYNC: 'membarrier' }, 'membarrier');
  stress('nop5', 100, { WBPF_HOOK_SYNC: 'mprotect' }, 'mprotect');
}
