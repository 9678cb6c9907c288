/* Functional test of return probes (wbpf_hook_ret_arm): recursion, a full shadow stack, longjmp out
 * of one and several hooked calls, a tail call, two arms of one call, fp and two-register returns,
 * fork, a signal handler nested in a hooked call (also on sigaltstack, and 20000 signals on busy
 * threads), 8 threads, pthread_exit, attach/detach cycles under load; then the cost of an armed
 * call. Prints "ok ..." per check and "ret_test: OK"; exits 1 at the first failure. */
#define _GNU_SOURCE
#include <pthread.h>
#include <sched.h>
#include <setjmp.h>
#include <signal.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include "ret_log.h"

int r_add(int, int), r_rec(int), r_jump(int, jmp_buf *), r_wrap(int), r_tail(int);
int r_outer(int (*)(int), int), r_fork(int);
double r_fp(double);
struct r_pair { long a, b; };
struct r_pair r_pair(long);

#define DEPTH 256 /* the shadow stack's depth (hook/ret.c) */

static int (*volatile v_add)(int, int) = r_add;
static int (*volatile v_rec)(int) = r_rec;

static const struct ev *ev_at(int i) { return &lg.ev[i]; }

/* calls that each return once: E events in call order, then R events innermost first */
static void check_nested(const char *what, int calls, int armed, int64_t first_ret, int step)
{
	if (lg.entries != calls || lg.returns != armed || lg.arm_failed != calls - armed)
		FAIL("%s: entries %ld returns %ld arm failures %ld, want %d %d %d", what, lg.entries, lg.returns,
		     lg.arm_failed, calls, armed, calls - armed);
	for (int k = 0; k < armed; k++) {
		const struct ev *r = ev_at(calls + k), *e = ev_at(armed - 1 - k); /* the armed calls are the outer ones */
		if (r->kind != 'R' || r->val != first_ret + (int64_t)k * step)
			FAIL("%s: return %d: %c %ld, want R %ld", what, k, r->kind, (long)r->val, (long)(first_ret + k * step));
		if (r->rsp != e->rsp + 8 || r->rip != e->rip)
			FAIL("%s: return %d: rsp %#lx rip %#lx, want %#lx %#lx", what, k, (unsigned long)r->rsp,
			     (unsigned long)r->rip, (unsigned long)(e->rsp + 8), (unsigned long)e->rip);
	}
}

static void check_recursion(void)
{
	struct wbpf_hook *h = hook((void *)r_rec, "r_rec", on_entry);
	log_reset();
	int r = v_rec(100);
	if (r != 1100) FAIL("recursion: r_rec(100) = %d", r);
	check_nested("recursion", 101, 101, 1000, 1);
	printf("ok recursion depth 100: 101 returns, innermost first, values 1000..1100, rsp and rip of each call\n");

	/* deeper than the shadow stack: the outer DEPTH calls are armed, the deeper ones run untraced */
	log_reset();
	r = v_rec(300);
	if (r != 1300) FAIL("full: r_rec(300) = %d", r);
	check_nested("full", 301, DEPTH, 1300 - DEPTH + 1, 1);
	printf("ok shadow stack full: %ld deeper calls untraced (arm -1), %d returns reported, r_rec(300) = %d\n",
	       lg.arm_failed, DEPTH, r);
	log_reset();
	if (v_rec(100) != 1100 || lg.returns != 101) FAIL("full: afterwards, %ld returns", lg.returns);
	unhook(h, "r_rec");
}

static void check_longjmp(void)
{
	struct wbpf_hook *hj = hook((void *)r_jump, "r_jump", on_entry);
	struct wbpf_hook *hr = hook((void *)r_rec, "r_rec", on_entry);
	jmp_buf jb;
	int (*volatile jump)(int, jmp_buf *) = r_jump;
	for (int depth = 0; depth <= 5; depth += 5) {
		log_reset();
		if (!setjmp(jb)) jump(depth, &jb);
		if (lg.entries != depth + 1 || lg.returns) FAIL("longjmp %d: entries %ld returns %ld", depth, lg.entries, lg.returns);
		/* the stale entries are dropped by the next arm: a later call is reported exactly */
		log_reset();
		if (v_rec(20) != 1020) FAIL("longjmp %d: r_rec after it", depth);
		check_nested("after longjmp", 21, 21, 1000, 1);
	}
	printf("ok longjmp out of 1 and 6 nested hooked calls: no return reported, the next calls exact\n");

	/* r_wrap (hooked) calls r_jump(3), which longjmps back into r_wrap, 1000 times: each r_wrap return
	 * is found under the 4 stale entries; none piles up (a recursion of 200 is then fully traced) */
	struct wbpf_hook *hw = hook((void *)r_wrap, "r_wrap", on_entry);
	int (*volatile wrap)(int) = r_wrap;
	log_reset();
	for (int i = 0; i < 1000; i++) {
		int r = wrap(3);
		if (r != 7003) FAIL("wrap: r_wrap(3) = %d", r);
	}
	if (lg.entries != 5000 || lg.returns != 1000 || lg.arm_failed) FAIL("wrap: entries %ld returns %ld arm failures %ld", lg.entries, lg.returns, lg.arm_failed);
	for (int i = 0; i < lg.n; i++)
		if (lg.ev[i].kind == 'R' && lg.ev[i].val != 7003) FAIL("wrap: a return of %ld", (long)lg.ev[i].val);
	log_reset();
	if (v_rec(200) != 1200) FAIL("wrap: r_rec(200)");
	check_nested("after 1000 longjmps", 201, 201, 1000, 1);
	printf("ok longjmp back into a hooked caller 1000 times: 1000 returns of 7003, the 4000 stale entries dropped\n");
	unhook(hw, "r_wrap");
	unhook(hj, "r_jump");
	unhook(hr, "r_rec");
}

static void check_tail_and_twice(void)
{
	struct wbpf_hook *ht = hook((void *)r_tail, "r_tail", on_entry);
	struct wbpf_hook *ha = hook((void *)r_add, "r_add", on_entry);
	int (*volatile tail)(int) = r_tail;
	log_reset();
	int r = tail(5);
	if (r != 105 || lg.entries != 2 || lg.returns != 2) FAIL("tail: r_tail(5) = %d, entries %ld returns %ld", r, lg.entries, lg.returns);
	const struct ev *e0 = ev_at(0), *r0 = ev_at(2), *r1 = ev_at(3);
	if (r0->val != 105 || r1->val != 105 || r0->rsp != e0->rsp + 8 || r1->rsp != r0->rsp || r0->rip != e0->rip || r1->rip != e0->rip)
		FAIL("tail: returns %ld %ld", (long)r0->val, (long)r1->val);
	printf("ok tail call (r_tail jmp r_add, both hooked): 2 returns of 105 at the same rsp and rip\n");
	unhook(ha, "r_add");
	unhook(ht, "r_tail");

	ha = hook((void *)r_add, "r_add", on_entry_twice);
	log_reset();
	r = v_add(20, 22);
	if (r != 42 || lg.returns != 2 || ev_at(1)->cookie != (void *)2 || ev_at(2)->cookie != (void *)1 || ev_at(1)->val != 42 || ev_at(2)->val != 42)
		FAIL("twice: r = %d, returns %ld", r, lg.returns);
	printf("ok one call armed twice: 2 returns of 42, the last armed first\n");
	unhook(ha, "r_add");
}

static void check_registers(void)
{
	struct wbpf_hook *hf = hook((void *)r_fp, "r_fp", on_entry);
	struct wbpf_hook *hp = hook((void *)r_pair, "r_pair", on_entry);
	double (*volatile fp)(double) = r_fp;
	struct r_pair (*volatile pair)(long) = r_pair;
	log_reset();
	double d = fp(1.25);
	struct r_pair p = pair(0x1234567890L);
	if (d != 2.5 || p.a != 0x1234567890L || p.b != 3 * 0x1234567890L || lg.returns != 2)
		FAIL("registers: r_fp = %g, r_pair = {%#lx, %#lx}, returns %ld", d, p.a, p.b, lg.returns);
	if (ev_at(3)->val != 0x1234567890L || ev_at(3)->rdx != 3 * 0x1234567890UL) FAIL("registers: PT_REGS rax/rdx of r_pair");
	printf("ok xmm0 and rax:rdx returns kept across the return handler (which clobbers them); rax/rdx reported\n");
	unhook(hp, "r_pair");
	unhook(hf, "r_fp");
}

uint64_t r_flags(uint64_t f);
uint64_t call_flags(uint64_t f, uint64_t (*fn)(uint64_t));

/* the caller sees the flags the function returned with (the handler changes them, DF too) */
static void check_flags(void)
{
	struct wbpf_hook *h = hook((void *)r_flags, "r_flags", on_entry);
	const uint64_t mask = 0xcd5; /* OF DF SF ZF AF PF CF */
	const uint64_t cases[] = { 0x202, 0x202 | 0xcd5, 0x203, 0x206, 0x212, 0x242, 0x282, 0x602, 0xa02, 0x202 | 0x8c1 };
	log_reset();
	for (unsigned i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		uint64_t got = call_flags(cases[i], r_flags);
		if ((got & mask) != (cases[i] & mask)) FAIL("flags: returned with %#lx, the caller saw %#lx", (unsigned long)cases[i], (unsigned long)got);
	}
	if (lg.returns != (long)(sizeof cases / sizeof cases[0])) FAIL("flags: %ld returns", lg.returns);
	printf("ok flags after the return (OF DF SF ZF AF PF CF) as the function left them\n");
	unhook(h, "r_flags");
}

uint64_t call_keeping_gprs(const uint64_t in[6], uint64_t out[6], int (*fn)(int, int));

/* a caller's callee-saved registers (rbx rbp r12-r15) across a hooked call whose return is armed: the return
 * code restores only what the handler may change (ret_tramp.S), the rest must come back as the caller set it */
static void check_callee_saved(void)
{
	struct wbpf_hook *h = hook((void *)r_add, "r_add", on_entry);
	log_reset();
	for (int i = 0; i < 4; i++) {
		uint64_t in[6], out[6] = { 0 };
		for (int k = 0; k < 6; k++) in[k] = 0x1111111111111111ull * (uint64_t)(k + 1) + (uint64_t)i;
		call_keeping_gprs(in, out, r_add);
		for (int k = 0; k < 6; k++)
			if (out[k] != in[k]) FAIL("callee-saved: register %d was %#lx before the call, %#lx after", k, (unsigned long)in[k], (unsigned long)out[k]);
	}
	if (lg.returns != 4 || lg.entries != 4) FAIL("callee-saved: %ld entries %ld returns", lg.entries, lg.returns);
	if (lg.ev[1].kind != 'R' || lg.ev[1].val != 42) FAIL("callee-saved: the return reported %c %ld", lg.ev[1].kind, (long)lg.ev[1].val);
	printf("ok rbx rbp r12-r15 as the caller set them after an armed call's return (4 calls, 4 returns of 42)\n");
	unhook(h, "r_add");
}

uint64_t e_flags(void);
uint64_t call_with_flags(uint64_t f, uint64_t (*fn)(void));

static uint64_t ef_regs, ef_live; /* the last entry's pt_regs eflags; the flags the handler ran with */
static void on_entry_flags(struct wbpf_pt_regs *r, void *cookie)
{
	(void)cookie;
	ef_regs = r->eflags;
	__asm__ volatile("pushfq\n\tpop %0" : "=r"(ef_live));
	/* what a handler may do: the body must still start with the caller's flags */
	__asm__ volatile("cmp %%rsp, %%rsp\n\tstd\n\tcld" ::: "cc");
}

/* the function's body starts with the flags its caller left (the entry trampoline restores them without
 * popfq), the handler sees them in pt_regs, and it runs with DF clear whatever the caller left */
static void check_entry_flags(void)
{
	struct wbpf_hook *h = hook((void *)e_flags, "e_flags", on_entry_flags);
	const uint64_t mask = 0xcd5; /* OF DF SF ZF AF PF CF */
	const uint64_t cases[] = { 0x202, 0x202 | 0xcd5, 0x203, 0x206, 0x212, 0x242, 0x282, 0x602, 0xa02, 0x202 | 0x8c1 };
	for (unsigned i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		ef_regs = ef_live = 0;
		uint64_t got = call_with_flags(cases[i], e_flags);
		if ((got & mask) != (cases[i] & mask)) FAIL("entry flags: called with %#lx, the body saw %#lx", (unsigned long)cases[i], (unsigned long)got);
		if ((ef_regs & mask) != (cases[i] & mask)) FAIL("entry flags: called with %#lx, pt_regs has %#lx", (unsigned long)cases[i], (unsigned long)ef_regs);
		if (!ef_live || (ef_live & 0x400)) FAIL("entry flags: called with %#lx, the handler ran with %#lx (DF set or not run)", (unsigned long)cases[i], (unsigned long)ef_live);
	}
	printf("ok flags at the entry (OF DF SF ZF AF PF CF) as the caller left them, in pt_regs too; the handler runs with DF clear\n");
	unhook(h, "e_flags");
}

void call_keeping_xmm(const uint8_t *in, uint8_t *out, uint64_t (*fn)(void));

/* a handler that clobbers every vector register, as glibc's string functions under it may */
static void on_entry_clobber_xmm(struct wbpf_pt_regs *r, void *cookie)
{
	(void)r, (void)cookie;
	__asm__ volatile("pxor %%xmm0, %%xmm0\n\tpcmpeqd %%xmm1, %%xmm1\n\tpcmpeqd %%xmm2, %%xmm2\n\tpcmpeqd %%xmm3, %%xmm3\n\t"
			 "pcmpeqd %%xmm4, %%xmm4\n\tpcmpeqd %%xmm5, %%xmm5\n\tpcmpeqd %%xmm6, %%xmm6\n\tpcmpeqd %%xmm7, %%xmm7\n\t"
			 "pcmpeqd %%xmm8, %%xmm8\n\tpcmpeqd %%xmm9, %%xmm9\n\tpcmpeqd %%xmm10, %%xmm10\n\tpcmpeqd %%xmm11, %%xmm11\n\t"
			 "pcmpeqd %%xmm12, %%xmm12\n\tpcmpeqd %%xmm13, %%xmm13\n\tpcmpeqd %%xmm14, %%xmm14\n\tpcmpeqd %%xmm15, %%xmm15"
			 ::: "xmm0", "xmm1", "xmm2", "xmm3", "xmm4", "xmm5", "xmm6", "xmm7", "xmm8", "xmm9", "xmm10", "xmm11",
			 "xmm12", "xmm13", "xmm14", "xmm15");
}

/* a caller that keeps values in xmm0-15 across a call of a function that leaves them alone (-fipa-ra): the
 * entry hook must give every one back, whatever its handler does with them */
static void check_entry_xmm(void)
{
	struct wbpf_hook *h = hook((void *)e_flags, "e_flags", on_entry_clobber_xmm);
	uint8_t in[256], out[256];
	for (unsigned i = 0; i < sizeof in; i++) in[i] = (uint8_t)(i * 7 + 3);
	memset(out, 0, sizeof out);
	call_keeping_xmm(in, out, e_flags);
	for (unsigned k = 0; k < 16; k++)
		if (memcmp(in + 16 * k, out + 16 * k, 16)) FAIL("entry hook: xmm%u changed across a hooked call", k);
	printf("ok xmm0-15 as the caller left them across a hooked call whose handler clobbers them\n");
	unhook(h, "e_flags");
}

static void check_fork(void)
{
	struct wbpf_hook *h = hook((void *)r_fork, "r_fork", on_entry);
	int (*volatile fk)(int) = r_fork;
	log_reset();
	int r = fk(77);
	if (r == 77) { /* the child: its return came through the copied shadow stack */
		_exit(lg.returns == 1 && lg.ev[1].val == 77 ? 0 : 3);
	}
	int st;
	if (r <= 0 || waitpid(r, &st, 0) != r) FAIL("fork: r_fork returned %d", r);
	if (!WIFEXITED(st) || WEXITSTATUS(st)) FAIL("fork: child status %#x", st);
	if (lg.returns != 1 || lg.ev[1].val != r) FAIL("fork: parent returns %ld", lg.returns);
	printf("ok fork in a hooked call: the child returns 77 and reports it, the parent returns the pid\n");
	unhook(h, "r_fork");
}

static volatile int sig_result;
static void on_sig(int sig)
{
	(void)sig;
	sig_result = v_add(2, 3);
}

static int raise_usr1(int x)
{
	raise(SIGUSR1);
	return x * 10;
}

static void check_signal(int altstack)
{
	struct sigaction sa;
	memset(&sa, 0, sizeof sa);
	sa.sa_handler = on_sig;
	sa.sa_flags = altstack ? SA_ONSTACK : 0;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGUSR1, &sa, NULL);
	stack_t ss = { .ss_sp = NULL, .ss_size = 1 << 16, .ss_flags = 0 };
	if (altstack) {
		ss.ss_sp = malloc(ss.ss_size);
		if (sigaltstack(&ss, NULL)) FAIL("sigaltstack");
	}
	struct wbpf_hook *ho = hook((void *)r_outer, "r_outer", on_entry);
	struct wbpf_hook *ha = hook((void *)r_add, "r_add", on_entry);
	int (*volatile outer)(int (*)(int), int) = r_outer;
	log_reset();
	sig_result = 0;
	int r = outer(raise_usr1, 4);
	if (r != 41 || sig_result != 5) FAIL("signal: r_outer = %d, r_add in the handler = %d", r, sig_result);
	if (!altstack) {
		if (lg.returns != 2 || ev_at(2)->val != 5 || ev_at(3)->val != 41) FAIL("signal: returns %ld", lg.returns);
		printf("ok signal handler calling a hooked function inside a hooked call: returns 5 then 41\n");
	} else {
		printf("ok the same on sigaltstack: values right, %ld of 2 returns reported\n", lg.returns);
	}
	unhook(ha, "r_add");
	unhook(ho, "r_outer");
	if (altstack) {
		ss.ss_flags = SS_DISABLE;
		sigaltstack(&ss, NULL);
		free(ss.ss_sp);
	}
}

/* pthread_exit inside an armed call: glibc's forced unwind (its own handle on libgcc_s, not
 * interposed) stops at the diverted return address and ends the thread there: it must end cleanly */
static int exit_thread(int x)
{
	pthread_exit((void *)(long)(x + 1));
	return 0;
}
static void *exiter(void *arg)
{
	(void)arg;
	int (*volatile outer)(int (*)(int), int) = r_outer;
	outer(exit_thread, 41);
	return NULL;
}

static void check_pthread_exit(void)
{
	struct wbpf_hook *h = hook((void *)r_outer, "r_outer", on_entry);
	for (int i = 0; i < 100; i++) {
		pthread_t t;
		void *ret = NULL;
		pthread_create(&t, NULL, exiter, NULL);
		pthread_join(t, &ret);
		if (ret != (void *)42L) FAIL("pthread_exit: thread returned %p", ret);
	}
	printf("ok pthread_exit inside an armed call, 100 threads: each ends with its value\n");
	unhook(h, "r_outer");
}

#define THREADS 8
#define CALLS 200000
static long t_entries[THREADS], t_returns[THREADS], t_bad[THREADS];
static void *caller(void *arg)
{
	int idx = (int)(long)arg;
	log_reset();
	long bad = 0;
	for (int i = 0; i < CALLS; i++) {
		lg.n = 0; /* keep the last call only */
		int r = v_add(i, idx);
		if (r != i + idx || lg.ev[1].kind != 'R' || lg.ev[1].val != i + idx) bad++;
	}
	t_entries[idx] = lg.entries;
	t_returns[idx] = lg.returns;
	t_bad[idx] = bad + lg.arm_failed;
	return NULL;
}

static void check_threads(void)
{
	struct wbpf_hook *h = hook((void *)r_add, "r_add", on_entry);
	pthread_t t[THREADS];
	for (int i = 0; i < THREADS; i++) pthread_create(&t[i], NULL, caller, (void *)(long)i);
	for (int i = 0; i < THREADS; i++) pthread_join(t[i], NULL);
	for (int i = 0; i < THREADS; i++)
		if (t_entries[i] != CALLS || t_returns[i] != CALLS || t_bad[i])
			FAIL("threads: thread %d entries %ld returns %ld bad %ld", i, t_entries[i], t_returns[i], t_bad[i]);
	printf("ok %d threads x %d calls: every entry and return reported once, on its thread, with its value\n", THREADS, CALLS);
	unhook(h, "r_add");
}

/* signals on threads busy in armed calls: the handler (same stack) calls a hooked function, often in
 * the middle of an arm or a return; values must stay right, and each thread's shadow stack whole */
#define STORM_THREADS 4
static volatile int storm_stop;
static long storm_bad[STORM_THREADS], storm_after[STORM_THREADS], storm_calls[STORM_THREADS];
static __thread long sig_bad;
static void on_storm(int sig)
{
	(void)sig;
	if (v_add(1, 2) != 3) sig_bad++;
}
static void *stormed(void *arg)
{
	int idx = (int)(long)arg;
	long bad = 0, calls = 0;
	while (!__atomic_load_n(&storm_stop, __ATOMIC_RELAXED)) {
		lg.n = 0;
		if (v_rec(5) != 1005) bad++;
		calls++;
	}
	log_reset();
	storm_after[idx] = v_rec(50) == 1050 && lg.returns == 51 && lg.arm_failed == 0;
	storm_bad[idx] = bad + sig_bad;
	storm_calls[idx] = calls;
	return NULL;
}

static void check_signal_storm(void)
{
	struct sigaction sa;
	memset(&sa, 0, sizeof sa);
	sa.sa_handler = on_storm;
	sa.sa_flags = SA_RESTART;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGUSR2, &sa, NULL);
	struct wbpf_hook *hr = hook((void *)r_rec, "r_rec", on_entry);
	struct wbpf_hook *ha = hook((void *)r_add, "r_add", on_entry);
	pthread_t t[STORM_THREADS];
	for (int i = 0; i < STORM_THREADS; i++) pthread_create(&t[i], NULL, stormed, (void *)(long)i);
	for (int k = 0; k < 20000; k++) {
		pthread_kill(t[k % STORM_THREADS], SIGUSR2);
		if (k % 64 == 0) sched_yield();
	}
	__atomic_store_n(&storm_stop, 1, __ATOMIC_RELAXED);
	for (int i = 0; i < STORM_THREADS; i++) pthread_join(t[i], NULL);
	for (int i = 0; i < STORM_THREADS; i++)
		if (storm_bad[i] || !storm_after[i] || !storm_calls[i])
			FAIL("signal storm: thread %d: %ld wrong values, calls %ld, afterwards whole %ld", i, storm_bad[i], storm_calls[i], storm_after[i]);
	printf("ok 20000 signals on %d threads in armed calls, the handler calling a hooked function: values right, shadow stacks whole\n", STORM_THREADS);
	unhook(ha, "r_add");
	unhook(hr, "r_rec");
}

/* the entry hook attached and detached 200 times while 4 threads run armed calls: every armed return
 * is reported once (after its hook's detach too), every value right */
#define CYCLE_THREADS 4
static volatile int cycle_stop;
static long cycle_entries[CYCLE_THREADS], cycle_returns[CYCLE_THREADS], cycle_bad[CYCLE_THREADS];
static void *cycled(void *arg)
{
	int idx = (int)(long)arg;
	long bad = 0;
	log_reset();
	while (!__atomic_load_n(&cycle_stop, __ATOMIC_RELAXED)) {
		lg.n = 0;
		if (v_rec(3) != 1003) bad++;
		if (v_add(idx, 5) != idx + 5) bad++;
	}
	cycle_entries[idx] = lg.entries;
	cycle_returns[idx] = lg.returns;
	cycle_bad[idx] = bad + lg.arm_failed;
	return NULL;
}

static void check_attach_cycles(void)
{
	pthread_t t[CYCLE_THREADS];
	for (int i = 0; i < CYCLE_THREADS; i++) pthread_create(&t[i], NULL, cycled, (void *)(long)i);
	for (int k = 0; k < 200; k++) {
		struct wbpf_hook *hr = hook((void *)r_rec, "r_rec", on_entry);
		struct wbpf_hook *ha = hook((void *)r_add, "r_add", on_entry);
		sched_yield();
		unhook(ha, "r_add");
		unhook(hr, "r_rec");
	}
	__atomic_store_n(&cycle_stop, 1, __ATOMIC_RELAXED);
	long entries = 0;
	for (int i = 0; i < CYCLE_THREADS; i++) {
		pthread_join(t[i], NULL);
		if (cycle_bad[i] || cycle_returns[i] != cycle_entries[i])
			FAIL("attach cycles: thread %d: %ld wrong values, %ld entries, %ld returns", i, cycle_bad[i], cycle_entries[i], cycle_returns[i]);
		entries += cycle_entries[i];
	}
	if (!entries) FAIL("attach cycles: no call was hooked");
	printf("ok 200 attach/detach cycles under %d threads: each of the %ld armed returns reported once, values right\n",
	       CYCLE_THREADS, entries);
}

static void empty(struct wbpf_pt_regs *r, void *c) { (void)r; (void)c; }
static void arm_empty(struct wbpf_pt_regs *r, void *c) { wbpf_hook_ret_arm(r, empty, c); }

static double ns_per_call(long n)
{
	struct timespec t0, t1;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (long i = 0; i < n; i++) v_add((int)i, 1);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	return ((t1.tv_sec - t0.tv_sec) * 1e9 + (t1.tv_nsec - t0.tv_nsec)) / n;
}

static void cost(void)
{
	const long n = 2000000;
	double plain = ns_per_call(n);
	struct wbpf_hook *h = hook((void *)r_add, "r_add", empty);
	ns_per_call(n / 10);
	double entry = ns_per_call(n);
	unhook(h, "r_add");
	h = hook((void *)r_add, "r_add", arm_empty);
	ns_per_call(n / 10);
	double ret = ns_per_call(n);
	unhook(h, "r_add");
	printf("cost: unhooked %.1f ns, entry hook %.1f ns, entry hook + armed return %.1f ns per call "
	       "(empty handlers; the return adds %.1f ns)\n", plain, entry, ret, ret - entry);
}

int main(void)
{
	setvbuf(stdout, NULL, _IOLBF, 0);
	check_recursion();
	check_longjmp();
	check_tail_and_twice();
	check_registers();
	check_flags();
	check_callee_saved();
	check_entry_flags();
	check_entry_xmm();
	check_fork();
	check_signal(0);
	check_signal(1);
	check_threads();
	check_pthread_exit();
	check_signal_storm();
	check_attach_cycles();
	/* again, armed without the regs' copy (wbpf_hook_ret_arm_ro, as the agent arms): the same returns, values,
	 * registers and flags given back */
	ret_arm_fn = wbpf_hook_ret_arm_ro;
	printf("# armed with wbpf_hook_ret_arm_ro:\n");
	check_recursion();
	check_longjmp();
	check_tail_and_twice();
	check_registers();
	check_flags();
	check_callee_saved();
	check_threads();
	ret_arm_fn = wbpf_hook_ret_arm;
	cost();
	printf("ret_test: OK\n");
	return 0;
}
