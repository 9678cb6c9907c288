// The agent's vector-free hit path (x86-64; native/agent/README.md "A vector-free hit path"): its trampolines
// save no xmm register, so nothing a hit runs may touch one. Checked on the built libwbpf_agent.so and its join
// build libwbpf_agent_join.so (objdump -d):
// from the trampolines' C entry points (on_hit, on_return, wbpf_x86_ret_entered) and what the JIT'd code calls
// (the helpers helper_of answers, ebpf_jit_miss/slow), every reachable function uses general registers only
// and calls into other objects only through an allowed list, each with its reason; slow paths into libc run
// under vec_guarded's full save; the vDSO's clock_gettime is vector-free too. And on a real process
// (native/agent/test/vec_target.c, gcc -O2 -mavx2 -fipa-ra): values kept in xmm/ymm (and zmm with AVX-512F)
// across a probed call taking __m256d and double arguments survive its entry and return probes, whose
// programs write ring records, print with bpf_trace_printk and update a map.
import t from 'tap';
import { execFileSync, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { loadNative } from '../backends/linux/native.js';
import { assemble } from '../backends/userspace/vm/asm.js';
import { AGENT_DIR, RINGBUF, counterMap, hookRequest, launchUnderAgent, lookupAsm, peekCounter, ringbufOutputAsm } from './agent-common.js';
import { disassemble, edges, usesVector, walk, type Disasm } from './disasm.js';
import { BUILD, pollUntil as until } from './helpers.js';

const OUT = path.join(BUILD, 'agent-vector-free');
const AGENT = path.join(OUT, 'libwbpf_agent.so');
const TARGET = path.join(OUT, 'vec-target');
const N = 200;

/** counter[key] += 1, ringbuf_output(&ctx[reg], 8), and trace_printk("<c>=%d", PARM1) (unless everyTime: for
 * PARM1 < 4 only) */
function probeProgram(key: number, reg: number, c: string, everyTime: boolean): Uint8Array {
  const fmt = (0x64253d00 | c.charCodeAt(0)) >>> 0; // "<c>=%d"
  return assemble(`
      mov %r6, %r1
      ${lookupAsm(key)}
      mov %r1, 1
      lock add [%r0+0], %r1
      ldxdw %r1, [%r6+${reg}]
      stxdw [%r10-16], %r1
      ${ringbufOutputAsm(-16, 8)}
      ldxdw %r3, [%r6+112]
      ${everyTime ? '' : 'jgt %r3, 3, +6'}
      stw [%r10-32], ${fmt}
      stw [%r10-28], 0
      mov %r1, %r10
      add %r1, -32
      mov %r2, 5
      call 6
      mov %r0, 0
      exit`);
}

/** libc functions a hit may call, and why each leaves vector registers alone */
const ALLOWED: Record<string, string> = {
  __errno_location: 'returns the thread\'s errno address (a TLS offset)',
  syscall: 'glibc\'s syscall(): moves arguments, `syscall`; the kernel preserves vector state',
  getpid: 'a system call wrapper', gettid: 'a system call wrapper', getuid: 'a system call wrapper',
  getppid: 'a system call wrapper (the task_struct image\'s parent)',
  getpriority: 'a system call wrapper and integer arithmetic (sched_process_exit\'s prio)',
  getgid: 'a system call wrapper', prctl: 'a system call wrapper (PR_GET_NAME)', getrandom: 'a system call wrapper',
  process_vm_readv: 'a system call wrapper (safe_read)', write: 'a system call wrapper (the ring\'s wake-up eventfd)',
  sendmsg: 'a system call wrapper (a TRACE frame)', open: 'a system call wrapper (a ring lock holder\'s /proc/PID/stat)',
  read: 'a system call wrapper', close: 'a system call wrapper', mmap: 'a system call wrapper (a return stub page)',
  munmap: 'a system call wrapper', mprotect: 'a system call wrapper', sched_yield: 'a system call wrapper',
  clock_gettime: 'glibc calls the vDSO\'s, built by the kernel without SSE (checked below), or the system call',
  sched_getcpu: 'reads rseq\'s cpu_id or calls the vDSO\'s getcpu (an rdpid/lsl)',
  pthread_once: 'an atomic check; the routine (fork handlers) registers through the agent\'s guarded pthread_atfork',
  pthread_mutex_lock: 'futex locking: atomics and the futex system call',
  pthread_mutex_trylock: 'futex locking: atomics',
  pthread_mutex_unlock: 'futex locking: atomics and the futex system call',
  pthread_mutex_consistent: 'sets a robust mutex\'s owner field',
};

/** the hit path's roots in the agent: the trampolines' C entries and what JIT'd code calls */
function roots(fns: Disasm): string[] {
  const helpers = edges(fns, 'helper_of').filter((e) => e.how === 'lea').map((e) => e.target);
  return ['on_hit', 'on_return', 'wbpf_x86_ret_entered', 'wbpf_x86_ret_common_gp', 'ebpf_jit_miss', 'ebpf_jit_slow', ...helpers];
}

/** entered only by address: slow paths (run by vec_guarded) and the xmm-saving return code (the return
 * pages point at wbpf_x86_ret_common_gp once wbpf_hook_set_vector_free, as the agent's constructor sets) */
const byAddressOnly = (fn: string): boolean => fn.startsWith('slow_') || fn === 'wbpf_x86_ret_common';

if (process.arch !== 'x64') {
  t.pass('the vector-free hit path is x86-64 only (arm64\'s trampolines save q0-q7)');
} else {
  t.setTimeout(300_000);
  t.test('build the agent', async (tt) => {
    const mk = spawnSync('make', ['-C', AGENT_DIR, `B=${OUT}`, '-j2', AGENT, path.join(OUT, 'libwbpf_agent_join.so')], { encoding: 'utf8' });
    tt.equal(mk.status, 0, 'make', { stderr: mk.stderr });
  });

  t.test('the instruction check sees vector and x87 use', async (tt) => {
    for (const s of ['movaps %xmm0,(%rsp)', 'vmovdqu (%rsi),%ymm1', 'vpxorq %zmm16,%zmm16,%zmm16', 'paddq %mm0,%mm1',
      'fldl (%rax)', 'fnstcw (%rsp)', 'vzeroupper', 'kmovq %k1,%rax', 'stmxcsr (%rsp)', 'xsave64 (%rsp)']) {
      tt.ok(usesVector(s), s);
    }
    for (const s of ['mov %rdi,%rax', 'rep movsb (%rsi),(%rdi)', 'lea 0x8(%rsp),%rsp', 'cmpxchg %rdx,(%rdi)', 'syscall']) tt.notOk(usesVector(s), s);
  });

  for (const lib of ['libwbpf_agent.so', 'libwbpf_agent_join.so']) t.test(`every function a hit reaches in ${lib} uses general registers only`, async (tt) => {
    const so = path.join(OUT, lib);
    const fns = disassemble(so);
    const r = roots(fns);
    tt.ok(r.length > 25, `${r.length} roots (the entries and helper_of's helpers)`);
    for (const x of r) tt.ok(fns.has(x), `root ${x} is in the library`);
    const w = walk(fns, r, byAddressOnly);
    tt.ok(w.reached.size > 50, `${w.reached.size} functions reached`);
    for (const [fn, insns] of w.vector) {
      if (fn === 'vec_guarded') {
        tt.same([...new Set(insns.map((i) => i.text.split(/\s+/)[0]))].sort(), ['fxrstor64', 'fxsave64', 'xrstor64', 'xsave64'],
          'vec_guarded: only the full save and restore around a slow path');
        continue;
      }
      tt.fail(`${fn} uses ${insns[0]!.text} (${insns.length} such), reached by ${w.reached.get(fn)!.join(' > ')}`);
    }
    tt.ok(w.reached.has('vec_guarded'), 'vec_guarded is on the hit path (the slow paths\' guard)');
    for (const [sym, chain] of w.plt) tt.ok(sym in ALLOWED, `${sym}: ${ALLOWED[sym] ?? `not allowed, reached by ${chain.join(' > ')}`}`);
    for (const need of ['clock_gettime', 'sendmsg', 'process_vm_readv']) tt.ok(w.plt.has(need), `the walk reaches ${need} (it follows the helpers)`);
    for (const sym of ['memcpy', 'memset', 'memmove', 'memcmp', 'memchr', 'strlen', 'snprintf']) {
      tt.notOk(w.plt.has(sym), `${sym}: the agent's own`);
      tt.ok(fns.has(sym), `${sym} is defined in the library`);
    }
    tt.notOk(w.plt.has('__register_atfork'), 'pthread_atfork (malloc) only under vec_guarded (lib/guarded.c)');
    tt.ok(fns.has('__register_atfork@plt'), 'which the library does call');
    // the ones entered by address only: no call or jump to them anywhere in the library
    const stopped = [...fns.keys()].filter(byAddressOnly);
    tt.ok(stopped.length >= 3, `${stopped.length} functions entered by address only: ${stopped.join(', ')}`);
    for (const fn of fns.keys()) {
      for (const e of edges(fns, fn)) if (byAddressOnly(e.target) && e.how !== 'lea') tt.fail(`${fn} ${e.how}s ${e.target} directly`);
    }
    const dyn = execFileSync('nm', ['-D', '--undefined-only', so], { encoding: 'utf8' });
    tt.notMatch(dyn, /\b(memcpy|memset|memmove|memcmp|memchr|strlen|snprintf|pthread_atfork)@/, 'none of them imported');
  });

  t.test('the entry template for vector-free handlers saves no vector register', async (tt) => {
    const syms = new Map(execFileSync('nm', [AGENT], { encoding: 'utf8' }).split('\n').map((l) => l.split(' ')).filter((p) => p.length === 3).map((p) => [p[2]!, parseInt(p[0]!, 16)]));
    const range = (start: string, end: string): string[] => {
      const out = execFileSync('objdump', ['-d', '--no-show-raw-insn', '-w', '-j', '.rodata', `--start-address=${syms.get(start)}`, `--stop-address=${syms.get(end)}`, AGENT], { encoding: 'utf8' });
      return out.split('\n').map((l) => /^\s+[0-9a-f]+:\s+(.*)$/.exec(l)?.[1]?.trim()).filter((x): x is string => !!x);
    };
    const gp = range('wbpf_x86_tramp_gp_start', 'wbpf_x86_tramp_gp_end');
    const full = range('wbpf_x86_tramp_start', 'wbpf_x86_tramp_end');
    tt.ok(gp.length > 40, `${gp.length} instructions`);
    tt.same(gp.filter(usesVector), [], 'wbpf_x86_tramp_gp: none touches a vector register');
    tt.equal(full.filter(usesVector).length, 32, 'wbpf_x86_tramp (any handler): xmm0-15 saved and restored');
    tt.ok(gp.some((i) => /^call\s+\*%rax/.test(i)), 'it calls the handler');
  });

  t.test('vector registers survive entry and return probes (vec_target.c)', async (tt) => {
    if (!/^flags\s*:.*\bavx2\b/m.test(fs.readFileSync('/proc/cpuinfo', 'utf8'))) return tt.pass('skipped: this CPU has no AVX2');
    const src = path.join(AGENT_DIR, 'test', 'vec_target.c');
    const cc = spawnSync('gcc', ['-O2', '-g', '-mavx2', '-fipa-ra', '-fcf-protection=none', '-Wall', '-Wextra', src, '-o', TARGET], { encoding: 'utf8' });
    tt.equal(cc.status, 0, 'build the target (gcc -O2 -mavx2 -fipa-ra)', { stderr: cc.stderr });
    const round = (out: string, r: number): { calls: number; bad: number } | undefined => {
      const m = new RegExp(`^round ${r}: calls (\\d+) bad (\\d+)$`, 'm').exec(out);
      return m ? { calls: Number(m[1]), bad: Number(m[2]) } : undefined;
    };
    const self = spawnSync(TARGET, [String(N), 'selftest'], { encoding: 'utf8' });
    tt.ok((round(self.stdout, 0)?.bad ?? 0) > 0, 'selftest: a callee changing ymm9/zmm20 is caught', { stdout: self.stdout });
    const plain = spawnSync(TARGET, [String(N), 'once'], { encoding: 'utf8' });
    const avx512 = /^avx512f 1$/m.test(plain.stdout);
    const calls = N * (avx512 ? 3 : 2);
    tt.same(round(plain.stdout, 0), { calls, bad: 0 }, `unprobed: ${calls} calls, every value kept (AVX-512F: ${avx512})`);

    const native = loadNative();
    const counters = counterMap(tt, native, 2, 'vec_hits');
    const ring = native.shmMapCreate(RINGBUF, 0, 0, 1 << 17, 0, native.numPossibleCpus(), 0, 'vec_events');
    tt.teardown(() => native.shmMapClose(ring.id));
    const { agent, stdout, exited, child } = launchUnderAgent(tt, AGENT, [TARGET, String(N)]);
    agent.sendMap({ id: 1, fd: counters.fd, notifyFd: -1 });
    agent.sendMap({ id: 2, fd: ring.fd, notifyFd: ring.notifyFd });
    tt.equal(agent.sendProgram({ id: 1, insns: probeProgram(0, 112, 'i', false) }), 'prog 1');
    tt.equal(agent.sendProgram({ id: 2, insns: probeProgram(1, 80, 'r', true) }), 'prog 2');
    tt.match(agent.sendHook(hookRequest(TARGET, 'probed', 1, 1)), /^hook 1 at 0x/, 'entry probe on probed');
    tt.match(agent.sendHook(hookRequest(TARGET, 'probed', 2, 2, true)), /^hook 2 at 0x/, 'return probe on probed');
    agent.start();
    const out = new Uint8Array(calls * 2 * 16 + 64);
    for (let r = 0; r < 2; r++) {
      child.stdin?.write('1');
      tt.ok(await until(() => round(stdout(), r) !== undefined, 30_000), `round ${r} ran`);
      tt.same(round(stdout(), r), { calls, bad: 0 }, `round ${r}: every result and kept xmm/ymm${avx512 ? '/zmm' : ''} value survived the probes`);
      tt.equal(peekCounter(native, counters, 0), BigInt(calls * (r + 1)), 'the entry program ran at every call (map update)');
      tt.equal(peekCounter(native, counters, 1), BigInt(calls * (r + 1)), 'the return program too');
      let got = 0;
      for (let i = 0; i < 5 && got < calls * 2; i++) got += native.shmRingPoll(ring.id, 1000, out, -1);
      tt.equal(got, calls * 2, 'a ring record per entry and per return');
    }
    // TRACE frames are dropped, not waited for, when the channel is full (a return's at every call fills it)
    const traced = (id: number): string[] => agent.notices.filter((x) => x.kind === 'trace' && x.hookId === id).map((x) => x.message);
    tt.ok(await until(() => (agent.poll(), new Set(traced(1)).size === 4 && traced(2).length > 0), 10_000), 'the printk texts arrived');
    tt.same([...new Set(traced(1))].sort(), ['i=0', 'i=1', 'i=2', 'i=3'], 'the entry program\'s bpf_trace_printk texts (i < 4)');
    tt.same(traced(2).filter((m) => !/^r=-?\d+$/.test(m)), [], `the return program's texts: r=<rdi> (${traced(2).length} of ${2 * calls} arrived)`);
    tt.same(agent.notices.filter((x) => x.kind === 'disabled'), [], 'no hook disabled');
    agent.close();
    child.stdin?.end();
    tt.equal(await exited, 0, 'the target exits 0');
  });

  t.test('the vDSO\'s clock_gettime is vector-free', async (tt) => {
    const line = fs.readFileSync('/proc/self/maps', 'utf8').split('\n').find((l) => l.endsWith('[vdso]'));
    if (!line) return tt.pass('no vDSO: clock_gettime is a system call');
    const [lo, hi] = line.split(' ')[0]!.split('-').map((x) => parseInt(x, 16)) as [number, number];
    const buf = Buffer.alloc(hi - lo);
    const fd = fs.openSync('/proc/self/mem', 'r');
    try {
      fs.readSync(fd, buf, 0, buf.length, lo);
    } finally {
      fs.closeSync(fd);
    }
    fs.mkdirSync(OUT, { recursive: true });
    const file = path.join(OUT, 'vdso.so');
    fs.writeFileSync(file, buf);
    const fns = disassemble(file);
    const root = [...fns.keys()].find((k) => /^__vdso_clock_gettime\b/.test(k));
    tt.ok(root, 'the vDSO exports __vdso_clock_gettime');
    const w = walk(fns, [root!], () => false);
    tt.ok((fns.get(root!) ?? []).length > 20, `${(fns.get(root!) ?? []).length} instructions`);
    tt.same([...w.vector.keys()], [], 'no vector or x87 instruction in it or what it calls');
  });
}
