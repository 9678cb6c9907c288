// The agent's arm64 inline hook (native/agent/hook/arm64) on a real arm64 kernel: cross-builds the agent
// and its C tests (make ARCH=arm64 CC=aarch64-linux-gnu-gcc) and runs them in the matrix's arm64 6.1 qemu
// guest (matrix/guests/boot.sh; the cross build is arm64-build.sh's): every entry kind hooked and unhooked,
// registers, refusals, landing pads on a BTI-guarded page, attach/detach under calling threads; return
// probes (recursion, longjmp, tail calls, return registers, threads, PAC, C++ exceptions); the maps'
// and helpers' C tests on arm64; the trap tier (a brk on the entry); join (wbpf-inject): the CLI joins a
// running process by pid; the ptrace tier (wbpf-ptrace): static programs launched and joined. Needs qemu-system-aarch64 and the cross compiler
// (matrix/guests/setup-host.sh, which .ci/setup runs): without them this test fails, it does not skip.
import t from 'tap';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { spawnSync } from 'node:child_process';
import { BUILD, ROOT } from './helpers.js';

const AGENT = path.join(ROOT, 'native', 'agent');
const OUT = path.join(BUILD, 'agent-arm64');
const has = (cmd: string): boolean => spawnSync('sh', ['-c', `command -v ${cmd}`]).status === 0;

// a warm guest boots and runs these in 30-60 s under TCG; a cold cache first fetches and cross-builds
t.setTimeout(900_000);

t.test('the tools are there', async (tt) => {
  for (const tool of ['aarch64-linux-gnu-gcc', 'qemu-system-aarch64'])
    tt.ok(has(tool), `${tool} is installed (bash matrix/guests/setup-host.sh installs it)`);
});

t.test('cross-builds with aarch64-linux-gnu-gcc', async (tt) => {
  const r = spawnSync('make', ['-C', AGENT, 'ARCH=arm64', 'CC=aarch64-linux-gnu-gcc', 'CXX=aarch64-linux-gnu-g++', `B=${OUT}`, '-j2', 'all', 'tests'], { encoding: 'utf8' });
  tt.equal(r.status, 0, 'make ARCH=arm64 all tests', { stderr: r.stderr.slice(-4000) });
  const elf = fs.readFileSync(path.join(OUT, 'libwbpf_agent.so'));
  tt.equal(elf.readUInt16LE(18), 183, 'libwbpf_agent.so is an AArch64 object (e_machine 183)');
});

t.test('in the arm64 6.1 guest', async (tt) => {
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'wasm-bpf-arm64-hook-'));
  tt.teardown(() => fs.rmSync(tmp, { recursive: true, force: true }));
  const script = path.join(tmp, 'guest.sh');
  fs.writeFileSync(script, [
    'T=$WASM_BPF_ROOT/native/agent/build/test',
    'echo "arch $(uname -m) kernel $(uname -r)"',
    'WBPF_EXPECT_BTI=1 $T/hook_test_arm64 200 3; echo "status hook_test_arm64 $?"',
    'WBPF_EXPECT_BTI=1 $T/trap_test_arm64 100; echo "status trap_test_arm64 $?"',
    '$T/ptrace_arch_test; echo "status ptrace_arch_test $?"',
    '$T/ret_test_arm64; echo "status ret_test_arm64 $?"',
    '$T/ret_cxx_arm64; echo "status ret_cxx_arm64 $?"',
    '$T/maps_unit; echo "status maps_unit $?"',
    '$T/maps_stress 2 2 2000; echo "status maps_stress $?"',
    '$T/agent_helpers_test | sed "s/^/helpers: /"; echo "status agent_helpers_test $?"',
    // join: a running target (sleeping until SIGUSR1) joined by pid through the CLI and the injector; its
    // calls after the hooks are in, Ctrl-C during its tail sleep, then it runs on to its end
    'M=$WASM_BPF_ROOT/matrix/build; J=/tmp/join; mkdir -p $J',
    '$T/uprobe-target-join 3 4 3 120000 1 1000 120000 > $J/target.out 2>&1 & TP=$!',
    'echo "join pid $TP"',
    '$WASM_BPF_NODE $WASM_BPF_ROOT/bin/wasm-bpf.js run -v --backend userspace --pid $TP $M/uprobe-arm64.wasm $T/uprobe-target-join > $J/run.out 2> $J/run.err & RP=$!',
    'n=0; while [ $n -lt 600 ] && ! grep -q "^# uprobe" $J/run.out && kill -0 $RP 2>/dev/null; do sleep 0.2; n=$((n+1)); done',
    'echo "join ready after $n"',
    'kill -USR1 $TP',
    'n=0; while [ $n -lt 300 ] && [ "$(grep -c "^URETPROBE pid=$TP ret=7$" $J/run.out)" -lt 3 ]; do sleep 0.2; n=$((n+1)); done',
    'grep -q "calls done" $J/target.out && echo "join target in its tail"',
    'kill -INT $RP; wait $RP; echo "status join run $?"',
    'kill -0 $TP && echo "join target alive after the run"',
    'grep -c "libwbpf_agent" /proc/$TP/maps | sed "s/^/join agent mappings /"',
    'kill -USR1 $TP; wait $TP; echo "status join target $?"',
    'sed "s/^/join out: /" $J/run.out; sed "s/^/join err: /" $J/run.err; sed "s/^/join target: /" $J/target.out',
    // two join-targets joined by one run: one borrowed in its 1 ms nanosleeps (errno checked around each),
    // one whose two threads both run the program's code (registers checked after every call); both run on
    // (niced: their spinning threads would starve the CLI of the guest's two emulated cpus)
    'nice -n 19 $T/join-target 90000 1 > $J/jt1.out 2>&1 & P1=$!; nice -n 19 $T/join-target 90000 1 busy > $J/jt2.out 2>&1 & P2=$!',
    'echo "jt pids $P1 $P2"; t0=$(date +%s)',
    '$WASM_BPF_NODE $WASM_BPF_ROOT/bin/wasm-bpf.js run -v --backend userspace --pid $P1 --pid $P2 $M/uprobe-arm64.wasm $T/join-target > $J/jr.out 2> $J/jr.err & R=$!',
    'n=0; while [ $n -lt 600 ] && ! grep -q "^# uprobe" $J/jr.out && kill -0 $R 2>/dev/null; do sleep 0.2; n=$((n+1)); done',
    'echo "jt joined after $(( $(date +%s) - t0 )) s"; sleep 2; kill -INT $R; wait $R; echo "status jt run $?"',
    'wait $P1; echo "status jt1 $?"; wait $P2; echo "status jt2 $?"',
    'echo "jt1 events $(grep -c "^UPROBE pid=$P1 " $J/jr.out) jt2 events $(grep -c "^UPROBE pid=$P2 " $J/jr.out)"',
    'sed "s/^/jt1: /" $J/jt1.out; sed "s/^/jt2: /" $J/jt2.out; grep "hooked\\|cannot" $J/jr.err | sed "s/^/jt err: /"',
    // the ptrace tier (wbpf-ptrace's arm64 part: brk breakpoints, x30 returns): a static program launched (one
    // thread, then 4 threads), a dynamic one with the tier forced (the loader's breakpoint), a running static one joined
    'S=$T/uprobe-target-static; U="$WASM_BPF_NODE $WASM_BPF_ROOT/bin/wasm-bpf.js run --backend userspace"',
    '$U $M/uprobe-arm64.wasm $S -- $S 3 4 2 0 > $J/s1.out 2> $J/s1.err; echo "status static launch $?"',
    'sed "s/^/static launch: /" $J/s1.out; grep -i "ptrace\|error" $J/s1.err | sed "s/^/static launch err: /"',
    '$U $M/uprobe-arm64.wasm $S -- $S 3 4 50 0 4 > $J/s4.out 2> $J/s4.err; echo "status static threads $?"',
    'echo "static threads events $(grep -c "^UPROBE pid=.* a=3 b=4$" $J/s4.out) $(grep -c "^URETPROBE pid=.* ret=7$" $J/s4.out)"; grep "^uprobe-target: uprobe_target_add" $J/s4.out | sed "s/^/static threads: /"',
    '$U --userspace-tier ptrace $M/uprobe-arm64.wasm $T/uprobe-target-join -- $T/uprobe-target-join 3 4 2 0 > $J/d1.out 2> $J/d1.err; echo "status forced launch $?"',
    'sed "s/^/forced launch: /" $J/d1.out',
    '$S 3 4 3 120000 1 0 120000 > $J/sj-target.out 2>&1 & SP=$!',
    '$U --pid $SP $M/uprobe-arm64.wasm $S > $J/sj.out 2> $J/sj.err & RP=$!',
    'n=0; while [ $n -lt 600 ] && ! grep -q "^# uprobe" $J/sj.out && kill -0 $RP 2>/dev/null; do sleep 0.2; n=$((n+1)); done',
    'echo "static join pid $SP ready after $n"; kill -USR1 $SP',
    'n=0; while [ $n -lt 300 ] && [ "$(grep -c "^URETPROBE pid=$SP ret=7$" $J/sj.out)" -lt 3 ]; do sleep 0.2; n=$((n+1)); done',
    'kill -INT $RP; wait $RP; echo "status static join run $?"',
    'kill -0 $SP && echo "static target alive after the run"; kill -USR1 $SP; wait $SP; echo "status static target $?"',
    'sed "s/^/static join: /" $J/sj.out; grep -i "ptrace\|error" $J/sj.err | sed "s/^/static join err: /"; sed "s/^/static join target: /" $J/sj-target.out',
    '',
  ].join('\n'));
  const r = spawnSync('bash', [path.join(ROOT, 'matrix', 'guests', 'boot.sh'), 'arm64-6.1', script], {
    encoding: 'utf8', timeout: 840_000, env: { ...process.env, TIMEOUT: '780' },
  });
  const out = r.stdout ?? '';
  tt.equal(r.status, 0, 'the guest booted and ran the script', { stderr: (r.stderr ?? '').slice(-3000), stdout: out.slice(-3000) });
  tt.match(out, /^arch aarch64 kernel 6\.1\./m, 'an arm64 6.1 kernel');
  for (const prog of ['hook_test_arm64', 'trap_test_arm64', 'ret_test_arm64', 'ret_cxx_arm64', 'maps_unit', 'maps_stress'])
    tt.match(out, new RegExp(`^status ${prog} 0$`, 'm'), `${prog} exits 0`, { stdout: out.slice(-4000) });
  // agent_helpers_test: every check but its timing ones (a syscall costs ~30x the host's under TCG)
  const helpers = out.split('\n').filter((l) => l.startsWith('helpers: '));
  tt.ok(helpers.filter((l) => /^helpers: \s*ok /.test(l)).length > 50, 'agent_helpers_test ran its checks', { helpers: helpers.slice(-20) });
  tt.same(helpers.filter((l) => /not ok/.test(l) && !/costs one syscall/.test(l)), [], 'agent_helpers_test: no check failed but timing ones');
  for (const kind of ['adrp', 'adr', 'ldr w literal', 'ldr x literal', 'ldrsw literal', 'ldr s literal', 'ldr q literal', 'prfm literal',
    'b \\(tail call\\)', 'bl', 'b\\.lt', 'cbz', 'tbnz', 'paciasp', 'bti c', 'stp x29, x30 frame', 'ret only'])
    tt.match(out, new RegExp(`^ok ${kind}$`, 'm'), `entry kind ${kind}: hooked, called, unhooked`);
  tt.match(out, /^ok regs: sp, x19, NZCV at the entry and after$/m);
  tt.match(out, /^ok ldr d literal, FP arguments kept$/m);
  tt.match(out, /^ok a branch back to the entry hits again$/m);
  tt.match(out, /^ok refused brk at the entry: brk #0x5 \(another breakpoint/m);
  tt.match(out, /^ok refused unallocated instruction: /m);
  tt.match(out, /^ok far branches, adrp, refusals \(relocator\)$/m);
  tt.match(out, /^ok landing pads \(bti c, paciasp\) on a BTI-guarded page$/m);
  tt.match(out, /^ok stress: 200 attach\/detach cycles under 3 calling threads, [1-9]\d* hits$/m);
  tt.match(out, /^hook_test_arm64: OK \(sync: membarrier-sync-core\)$/m);
  // the trap tier: a brk on the entry, the SIGTRAP handler, the instruction out of line
  for (const kind of ['plain \\(mov\\)', 'stp x29, x30 frame', 'adrp', 'adr', 'ldr w literal', 'ldr x literal', 'b \\(tail call\\)', 'bl', 'b\\.lt',
    'cbz', 'tbnz', 'paciasp', 'bti c'])
    tt.match(out, new RegExp(`^ok trap ${kind}: hooked by a brk, called, unhooked$`, 'm'), `trap tier, entry kind ${kind}`);
  tt.match(out, /^ok trap landing pads \(bti c, paciasp\) on a BTI-guarded page: the brk after them$/m);
  tt.match(out, /^ok return probes through a trap hook: 100 entries, 100 returns, results kept$/m);
  tt.match(out, /^ok 4 threads x 2000 calls: 8000 hits, every result right$/m);
  tt.match(out, /^ok 100 trap attach\/detach cycles under 3 calling threads, [1-9]\d* hits, \d+ calls$/m);
  tt.match(out, /^ok the program's SIGTRAP handler gets its own brk, trap hook hits do not reach it \([1-9]\d* trap hits\)$/m);
  tt.match(out, /^trap_test_arm64: OK$/m);
  // return probes
  tt.match(out, /^ok recursion depth 100: 101 returns, innermost first, values 1000\.\.1100, sp and pc of each call$/m);
  tt.match(out, /^ok longjmp out of 11 armed calls: none reported, the next calls are$/m);
  tt.match(out, /^ok tail call \(r_tail b r_add, both hooked\): 2 returns of 105 at the same sp and pc$/m);
  tt.match(out, /^ok 4 threads x 20000 calls: every return reported on its thread, every result right$/m);
  tt.match(out, /^ok x0:x1 and d0 returns kept across the return handler/m);
  tt.match(out, /^ok a signed return address \(PAC\) is left alone: the call goes untraced \(PAC on\)$/m);
  tt.match(out, /^ret_test_arm64: OK$/m);
  // C++ exceptions through armed calls (the unwinder never meets a stub)
  tt.match(out, /^ok throw through 4 hooked calls, caught above them/m);
  tt.match(out, /^ok 1000 throws through 5 hooked calls$/m);
  tt.match(out, /^ok pthread_exit below an armed call: the destructors above it run \(100 threads\)$/m);
  tt.match(out, /^ret_cxx: OK$/m);
  // join (wbpf-inject's arm64 part): exact events of the running process, which runs on after the run
  const pid = /^join pid (\d+)$/m.exec(out)?.[1];
  tt.ok(pid, 'the join target started', { stdout: out.slice(-4000) });
  const lines = (re: RegExp): string[] => out.split('\n').filter((l) => re.test(l));
  tt.match(out, new RegExp(`^join err: .*hooked \\S+:uprobe_target_add in pid ${pid}`, 'm'), 'the CLI joined the running process by pid and hooked it', { stdout: out.slice(-4000) });
  tt.same(lines(/^join out: UPROBE /), [1, 2, 3].map(() => `join out: UPROBE pid=${pid} a=3 b=4`), 'three entry events, a=3 b=4');
  tt.same(lines(/^join out: URETPROBE /), [1, 2, 3].map(() => `join out: URETPROBE pid=${pid} ret=7`), 'three return events, ret=7');
  tt.match(out, /^join target in its tail$/m, 'the run ended while the target still ran');
  tt.match(out, /^status join run 130$/m, 'Ctrl-C: 130');
  tt.match(out, /^join target alive after the run$/m, 'the target runs on after the run');
  tt.match(out, /^join target: uprobe-target: uprobe_target_add\(3, 4\) = 7, 3 calls$/m, 'every call right');
  tt.match(out, /^status join target 0$/m, 'the target ran to its end, exit 0');
  // errno and registers of joined processes: one borrowed in a syscall, one in its own code
  tt.match(out, /^status jt run 130$/m, 'two processes joined by one run, Ctrl-C: 130', { stdout: out.slice(-3000) });
  const [p1, p2] = /^jt pids (\d+) (\d+)$/m.exec(out)?.slice(1) ?? [];
  for (const p of [p1, p2]) tt.match(out, new RegExp(`^jt err: .*hooked \\S+:uprobe_target_add in pid ${p}: inline hook`, 'm'), `process ${p} joined and hooked`);
  tt.match(out, /^jt1 events [1-9]\d* /m, 'events (the busy one\'s may find the ring full of the other\'s)');
  tt.match(out, /^jt1: join-target: ok, \d+ calls$/m, 'the sleeping one: errno kept across every sleep, every result right');
  tt.match(out, /^jt2: join-target: ok, \d+ calls$/m, 'the busy one: registers kept after every call');
  tt.match(out, /^status jt1 0$/m);
  tt.match(out, /^status jt2 0$/m);
  // the ptrace tier's arch part: brk #0, and the entry instructions emulated (or not) on registers and the stack
  tt.match(out, /^status ptrace_arch_test 0$/m, 'ptrace_arch_test exits 0');
  for (const l of ['the breakpoint is brk #0', 'any brk #imm already there is foreign', 'mov x29, sp', 'paciasp: stepped \\(it signs x30 with the kernel\'s key\\)',
    'add w0, w0, w1: stepped', 'stp x19, x30, \\[sp, #-16\\]!: stepped \\(not the frame pair\\)', 'stp x29, x30, \\[sp\\] without writeback: stepped'])
    tt.match(out, new RegExp(`^ok ${l}$`, 'm'), l);
  for (const n of [16, 32, 64, 128]) tt.match(out, new RegExp(`^ok stp x29, x30, \\[sp, #-${n}\\]!: both stored at the new sp, sp moved$`, 'm'));
  for (const b of ['nop', 'bti c', 'bti j', 'bti jc', 'bti']) tt.match(out, new RegExp(`^ok ${b}: the next instruction \\(pc \\+4: 1\\)$`, 'm'), b);
  tt.match(out, /^ptrace_arch_test: OK$/m);
  // the ptrace tier on arm64: the kernel's events for a static program, launched and joined, exact on 4 threads
  tt.match(out, /^status static launch 0$/m, 'a static command under the ptrace tier: exit 0', { stdout: out.slice(-4000) });
  tt.same(lines(/^static launch: U(RET)?PROBE /).map((l) => l.replace(/pid=\d+ /, '')), ['UPROBE a=3 b=4', 'URETPROBE ret=7', 'UPROBE a=3 b=4', 'URETPROBE ret=7'].map((l) => `static launch: ${l}`), 'two calls: entry a=3 b=4 then return ret=7, each');
  tt.match(out, /^static launch: uprobe-target: uprobe_target_add\(3, 4\) = 7, 2 calls$/m, 'the static target ran right');
  tt.match(out, /^status static threads 0$/m, '4 threads under the ptrace tier: exit 0');
  // entries and returns exact (a return site's breakpoint stays while the process has a return hook: before that,
  // a return was sometimes missed in this emulated guest under load; native/agent/README.md, "Limits")
  tt.match(out, /^static threads events 200 200$/m, '4 threads x 50 calls: 200 entries and 200 returns, exact');
  tt.match(out, /^static threads: uprobe-target: uprobe_target_add\(3, 4\) = 7, 200 calls$/m, 'every call right');
  tt.match(out, /^status forced launch 0$/m, 'a dynamic command with --userspace-tier ptrace: exit 0');
  tt.equal(lines(/^forced launch: UPROBE .* a=3 b=4$/).length, 2, 'forced: two entries (the function in the program, hooked after the loader ran)');
  tt.equal(lines(/^forced launch: URETPROBE .* ret=7$/).length, 2, 'forced: two returns');
  const sp = /^static join pid (\d+) ready/m.exec(out)?.[1];
  tt.ok(sp, 'the static join target started');
  tt.same(lines(/^static join: UPROBE /), [1, 2, 3].map(() => `static join: UPROBE pid=${sp} a=3 b=4`), 'joined static process: three entries');
  tt.same(lines(/^static join: URETPROBE /), [1, 2, 3].map(() => `static join: URETPROBE pid=${sp} ret=7`), 'three returns');
  tt.match(out, /^status static join run 130$/m, 'Ctrl-C: 130');
  tt.match(out, /^static target alive after the run$/m, 'the static process runs on after the run');
  tt.match(out, /^static join target: uprobe-target: uprobe_target_add\(3, 4\) = 7, 3 calls$/m, 'every call right');
  tt.match(out, /^status static target 0$/m, 'and ends normally');
});
