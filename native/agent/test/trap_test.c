/* Test of the trap tier (wbpf_hook_attach_any / _trap): entries the inline hook refuses (a loop head at
 * +2, a 4-byte function, an unknown instruction at +2) hooked by an int3; registers, exact counts on 8
 * threads, return probes, hook/unhook cycles under load, foreign int3s and the program's own SIGTRAP
 * handler, hits on a sigaltstack and nested in the handler. Prints "ok ..."; exits 1 at the first failure. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <link.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <ucontext.h>
#include <sys/wait.h>
#include <unistd.h>
#include "../hook/hook.h"

int t_gv = 7;
int t_loop(int, int), t_tiny(int, int), t_lfence(int, int), t_unknown(int, int), t_riplea(int, int);
int t_push(int, int), t_endbr(int, int);
extern const int t_table[4];
extern char __executable_start[], etext[];

#define FAIL(...) do { printf("FAIL "); printf(__VA_ARGS__); printf("\n"); exit(1); } while (0)

typedef int (*ifn)(int, int);
static int m_add(int a, int b) { return a + b; }
static int m_loop(int a, int b) { return a * b; }
static int m_riplea(int a, int b) { return t_table[a & 3] + b; }

__attribute__((noinline)) static int call(ifn fn, int a, int b)
{
	ifn volatile f = fn;
	return f(a, b);
}

static size_t sym_size(void *fn)
{
	Dl_info info;
	const ElfW(Sym) *sym = NULL;
	if (!dladdr1(fn, &info, (void **)&sym, RTLD_DL_SYMENT) || !sym || info.dli_saddr != fn || !sym->st_size)
		FAIL("no symbol size for %p", fn);
	return sym->st_size;
}

struct seen {
	uint64_t hits, rets, bad;
	struct wbpf_pt_regs r;
	uint64_t ret_addr;
	int arm;          /* arm a return probe at each hit */
	ifn nested;       /* called from inside the handler (once per hit, guarded) */
};
static struct seen seen;
static __thread int in_handler;

static void on_ret(struct wbpf_pt_regs *r, void *cookie)
{
	struct seen *s = cookie;
	__atomic_fetch_add(&s->rets, 1, __ATOMIC_RELAXED);
	if (r->rax != 13) __atomic_fetch_add(&s->bad, 1, __ATOMIC_RELAXED); /* the threads call fn(6, 7) */
}

static void handler(struct wbpf_pt_regs *r, void *cookie)
{
	struct seen *s = cookie;
	__atomic_fetch_add(&s->hits, 1, __ATOMIC_RELAXED);
	if (in_handler) return; /* a hit nested in this handler (below): counted, nothing else */
	s->r = *r;
	s->ret_addr = *(uint64_t *)r->rsp;
	if (s->arm && wbpf_hook_ret_arm(r, on_ret, s)) __atomic_fetch_add(&s->bad, 1, __ATOMIC_RELAXED);
	if (s->nested) {
		in_handler = 1;
		if (call(s->nested, 1, 2) != 3) __atomic_fetch_add(&s->bad, 1, __ATOMIC_RELAXED);
		in_handler = 0;
	}
}

static void reset(void) { memset(&seen, 0, sizeof seen); }

/* refused inline, hooked by the trap tier: registers, the result, the int3, detach restores */
static void check_trap(const char *name, ifn fn, ifn model, int want_inline_code)
{
	uint8_t before[16];
	struct wbpf_hook *h = NULL;
	struct wbpf_hook_error e;
	size_t size = sym_size((void *)fn);
	memcpy(before, (void *)fn, sizeof before);
	int rc = wbpf_hook_attach_sized((void *)fn, size, handler, &seen, &h, &e);
	if (rc != want_inline_code) FAIL("%s: the inline hook returned %s (%s), want %s", name, wbpf_hook_code_name(rc), e.reason,
					 wbpf_hook_code_name(want_inline_code));
	for (int round = 0; round < 2; round++) { /* the second reuses the retired record */
		if (wbpf_hook_attach_any((void *)fn, size, handler, &seen, &h, &e))
			FAIL("%s: attach_any: %s: %s", name, wbpf_hook_code_name(e.code), e.reason);
		if (e.code != WBPF_HOOK_OK || !strstr(e.reason, wbpf_hook_code_name(want_inline_code)))
			FAIL("%s: attach_any's reason does not say why the inline hook was refused: %s", name, e.reason);
		if (wbpf_hook_tier(h) != WBPF_HOOK_TIER_TRAP || strcmp(wbpf_hook_tier_name(wbpf_hook_tier(h)), "trap hook"))
			FAIL("%s: not the trap tier", name);
		if (*(volatile uint8_t *)fn != 0xcc || memcmp(before + 1, (uint8_t *)fn + 1, sizeof before - 1))
			FAIL("%s: the trap tier must replace the first byte alone", name);
		for (int k = 0; k < 3; k++) {
			int a = 5 + k, b = 3 + k;
			reset();
			int r = call(fn, a, b);
			if (r != model(a, b)) FAIL("%s(%d, %d) trap-hooked = %d, want %d", name, a, b, r, model(a, b));
			if (seen.hits != 1) FAIL("%s: handler ran %lu times", name, (unsigned long)seen.hits);
			if ((int)seen.r.rdi != a || (int)seen.r.rsi != b || seen.r.rip != (uintptr_t)fn || seen.r.orig_rax != (uint64_t)-1 ||
			    seen.r.cs != 0x33 || seen.r.ss != 0x2b || (seen.r.rsp & 7))
				FAIL("%s: regs rdi=%lu rsi=%lu rip=%#lx (fn %p) rsp=%#lx", name, (unsigned long)seen.r.rdi,
				     (unsigned long)seen.r.rsi, (unsigned long)seen.r.rip, (void *)fn, (unsigned long)seen.r.rsp);
			if (seen.ret_addr < (uintptr_t)__executable_start || seen.ret_addr >= (uintptr_t)etext ||
			    ((uint8_t *)seen.ret_addr)[-5] != 0xe8)
				FAIL("%s: *(rsp) = %#lx is not a return address after a call", name, (unsigned long)seen.ret_addr);
		}
		if (wbpf_hook_replaced_len(h) != 1) FAIL("%s: replaced %d bytes", name, wbpf_hook_replaced_len(h));
		if (wbpf_hook_detach(h, &e)) FAIL("%s: detach: %s: %s", name, wbpf_hook_code_name(e.code), e.reason);
		if (memcmp(before, (void *)fn, sizeof before)) FAIL("%s: bytes differ after detach", name);
		reset();
		if (call(fn, 6, 7) != model(6, 7) || seen.hits) FAIL("%s: unhooked, but it misbehaves", name);
	}
	printf("ok trap %s (inline: %s)\n", name, wbpf_hook_code_name(want_inline_code));
}

/* the first instruction itself cannot move: refused, untouched, both reasons named */
static void check_refused(void)
{
	uint8_t before[16];
	struct wbpf_hook *h = NULL;
	struct wbpf_hook_error e;
	memcpy(before, (void *)t_unknown, sizeof before);
	int rc = wbpf_hook_attach_any((void *)t_unknown, sym_size((void *)t_unknown), handler, &seen, &h, &e);
	if (rc != WBPF_HOOK_EDECODE || e.code != rc || h || !strstr(e.reason, "trap hook"))
		FAIL("unknown first instruction: attach_any returned %s (%s)", wbpf_hook_code_name(rc), e.reason);
	if (memcmp(before, (void *)t_unknown, sizeof before)) FAIL("refused, but the bytes changed");
	printf("ok refused by both tiers: %s: %s\n", wbpf_hook_code_name(rc), e.reason);
}

/* the trap tier forced on entries the inline hook takes: a rip-relative first instruction re-based out of
 * line; then the inline hook on the same function (its record saved only 1 byte at first) */
static void check_forced(const char *name, ifn fn, ifn model)
{
	uint8_t before[16];
	struct wbpf_hook *h;
	struct wbpf_hook_error e;
	memcpy(before, (void *)fn, sizeof before);
	if (wbpf_hook_attach_trap((void *)fn, sym_size((void *)fn), handler, &seen, &h, &e)) FAIL("%s: attach_trap: %s", name, e.reason);
	reset();
	if (call(fn, 2, 9) != model(2, 9) || seen.hits != 1 || (int)seen.r.rdi != 2) FAIL("%s: forced trap tier", name);
	if (wbpf_hook_detach(h, &e)) FAIL("%s: detach: %s", name, e.reason);
	if (wbpf_hook_attach_any((void *)fn, sym_size((void *)fn), handler, &seen, &h, &e) || wbpf_hook_tier(h) != WBPF_HOOK_TIER_INLINE)
		FAIL("%s: attach_any after a trap hook: %s (tier %d)", name, e.reason, wbpf_hook_tier(h));
	reset();
	if (call(fn, 3, 4) != model(3, 4) || seen.hits != 1) FAIL("%s: inline after trap", name);
	if (wbpf_hook_detach(h, &e)) FAIL("%s: detach: %s", name, e.reason);
	if (memcmp(before, (void *)fn, sizeof before)) FAIL("%s: bytes differ after trap then inline", name);
	printf("ok forced trap tier %s, then inline\n", name);
}

#define THREADS 8
#define CALLS 20000
static ifn thread_fn;
static volatile int go, stop;
static uint64_t calls_made;

static void *caller(void *arg)
{
	(void)arg;
	while (!go) ;
	for (int i = 0; i < CALLS; i++)
		if (call(thread_fn, 6, 7) != 13) __atomic_fetch_add(&seen.bad, 1, __ATOMIC_RELAXED);
	return NULL;
}

/* 8 threads, every call counted exactly once at the entry and once at the return */
static void check_threads(const char *name, ifn fn)
{
	struct wbpf_hook *h;
	struct wbpf_hook_error e;
	pthread_t th[THREADS];
	reset();
	seen.arm = 1;
	if (wbpf_hook_attach_any((void *)fn, sym_size((void *)fn), handler, &seen, &h, &e)) FAIL("%s: attach: %s", name, e.reason);
	struct wbpf_hook_stats st0, st1;
	wbpf_hook_get_stats(&st0);
	thread_fn = fn;
	go = 0;
	for (int i = 0; i < THREADS; i++) pthread_create(&th[i], NULL, caller, NULL);
	struct timespec t0, t1;
	clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t0);
	go = 1;
	for (int i = 0; i < THREADS; i++) pthread_join(th[i], NULL);
	clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t1);
	wbpf_hook_get_stats(&st1);
	if (wbpf_hook_detach(h, &e)) FAIL("%s: detach: %s", name, e.reason);
	uint64_t want = (uint64_t)THREADS * CALLS;
	if (seen.hits != want || seen.rets != want || seen.bad || st1.trap_hits - st0.trap_hits != want)
		FAIL("%s: %d threads x %d calls: %lu entries, %lu returns, %lu bad, %lu trap hits", name, THREADS, CALLS,
		     (unsigned long)seen.hits, (unsigned long)seen.rets, (unsigned long)seen.bad,
		     (unsigned long)(st1.trap_hits - st0.trap_hits));
	double ns = ((t1.tv_sec - t0.tv_sec) * 1e9 + (t1.tv_nsec - t0.tv_nsec)) / (double)want;
	printf("ok %s: %d threads x %d calls, entries and returns counted exactly (# %.2f us of CPU per call: trap entry + armed return)\n",
	       name, THREADS, CALLS, ns / 1000);
}

static int spin_want;
static void *spinner(void *arg)
{
	ifn fn = (ifn)arg;
	while (!stop) {
		if (call(fn, 6, 7) != spin_want) __atomic_fetch_add(&seen.bad, 1, __ATOMIC_RELAXED);
		__atomic_fetch_add(&calls_made, 1, __ATOMIC_RELAXED);
	}
	return NULL;
}

/* hook/unhook cycles while 4 threads call the function: results stay right, the bytes come back */
static void check_cycles(const char *name, ifn fn, ifn model, int cycles)
{
	uint8_t before[16];
	pthread_t th[4];
	memcpy(before, (void *)fn, sizeof before);
	reset();
	stop = 0;
	calls_made = 0;
	spin_want = model(6, 7);
	for (int i = 0; i < 4; i++) pthread_create(&th[i], NULL, spinner, (void *)fn);
	for (int c = 0; c < cycles; c++) {
		struct wbpf_hook *h;
		struct wbpf_hook_error e;
		if (wbpf_hook_attach_any((void *)fn, sym_size((void *)fn), handler, &seen, &h, &e)) FAIL("%s: cycle %d: %s", name, c, e.reason);
		if (wbpf_hook_detach(h, &e)) FAIL("%s: cycle %d: detach: %s", name, c, e.reason);
	}
	stop = 1;
	for (int i = 0; i < 4; i++) pthread_join(th[i], NULL);
	if (seen.bad || memcmp(before, (void *)fn, sizeof before)) FAIL("%s: cycles: %lu bad results, bytes restored: %d", name,
									 (unsigned long)seen.bad, !memcmp(before, (void *)fn, sizeof before));
	if (seen.hits > calls_made) FAIL("%s: more hits (%lu) than calls (%lu)", name, (unsigned long)seen.hits, (unsigned long)calls_made);
	printf("ok %s: %d hook/unhook cycles under 4 calling threads (%lu calls, %lu hit)\n", name, cycles,
	       (unsigned long)calls_made, (unsigned long)seen.hits);
}

/* a hit on a sigaltstack (from a signal handler) and a hit nested in the handler (SA_NODEFER) */
static volatile int alt_result;
static void on_usr1(int sig) { (void)sig; alt_result = call(t_lfence, 20, 22); }
static void check_signal_contexts(void)
{
	struct wbpf_hook *h;
	struct wbpf_hook_error e;
	static char alt[64 * 1024];
	stack_t ss = { .ss_sp = alt, .ss_size = sizeof alt, .ss_flags = 0 };
	if (sigaltstack(&ss, NULL)) FAIL("sigaltstack");
	struct sigaction sa;
	memset(&sa, 0, sizeof sa);
	sa.sa_handler = on_usr1;
	sa.sa_flags = SA_ONSTACK;
	sigaction(SIGUSR1, &sa, NULL);
	if (wbpf_hook_attach_any((void *)t_lfence, sym_size((void *)t_lfence), handler, &seen, &h, &e)) FAIL("attach: %s", e.reason);
	reset();
	raise(SIGUSR1);
	if (alt_result != 42 || seen.hits != 1 || seen.r.rsp < (uintptr_t)alt || seen.r.rsp >= (uintptr_t)alt + sizeof alt)
		FAIL("a hit on the sigaltstack: result %d, hits %lu, rsp %#lx", alt_result, (unsigned long)seen.hits,
		     (unsigned long)seen.r.rsp);
	reset();
	seen.nested = t_lfence; /* the handler calls the hooked function: its int3 traps inside our SIGTRAP handler */
	if (call(t_lfence, 1, 1) != 2 || seen.hits != 2 || seen.bad) FAIL("a hit nested in the handler: hits %lu bad %lu",
									 (unsigned long)seen.hits, (unsigned long)seen.bad);
	seen.nested = NULL;
	if (wbpf_hook_detach(h, &e)) FAIL("detach: %s", e.reason);
	printf("ok a hit on a sigaltstack, and one nested in the handler\n");
}

/* the program's own SIGTRAP handler, installed before the agent's, still gets its own int3s with its
 * siginfo and context, and trap hook hits never reach it */
static volatile int own_traps;
static volatile uintptr_t own_rip;
static void own_trap(int sig, siginfo_t *si, void *ucv)
{
	(void)sig;
	(void)si;
	own_traps++;
	own_rip = (uintptr_t)((ucontext_t *)ucv)->uc_mcontext.gregs[REG_RIP];
}

static void check_own_int3(const char *when)
{
	struct wbpf_hook *h;
	struct wbpf_hook_error e;
	if (wbpf_hook_attach_any((void *)t_loop, sym_size((void *)t_loop), handler, &seen, &h, &e)) FAIL("attach: %s", e.reason);
	reset();
	own_traps = 0;
	if (call(t_loop, 3, 4) != 12 || seen.hits != 1 || own_traps) FAIL("%s: a trap hook hit reached the program's handler", when);
	__asm__ volatile("int3");
	if (own_traps != 1 || seen.hits != 1) FAIL("%s: the program's own int3 did not reach its SIGTRAP handler (%d)", when, own_traps);
	if (wbpf_hook_detach(h, &e)) FAIL("detach: %s", e.reason);
	printf("ok %s: the program's own int3 reaches its SIGTRAP handler, trap hook hits do not\n", when);
}

/* the program sets its SIGTRAP handler after the hook's (sigaction, then signal): the hook's stays, the
 * program's is what sigaction reports and what gets its own int3s */
static volatile int own_plain;
static void own_plain_trap(int sig) { (void)sig; own_plain++; }
static void check_late_handler(void)
{
	struct sigaction sa, cur;
	memset(&sa, 0, sizeof sa);
	sa.sa_handler = SIG_DFL;
	if (sigaction(SIGTRAP, &sa, NULL)) FAIL("sigaction(SIGTRAP, SIG_DFL)");
	sa.sa_sigaction = own_trap;
	sa.sa_flags = SA_SIGINFO;
	if (sigaction(SIGTRAP, &sa, NULL)) FAIL("sigaction(SIGTRAP, own_trap)");
	if (sigaction(SIGTRAP, NULL, &cur) || cur.sa_sigaction != own_trap) FAIL("sigaction does not report the program's handler");
	check_own_int3("handler set again after the hook (sigaction)");
	own_plain = 0;
	if (signal(SIGTRAP, own_plain_trap) != (sighandler_t)(void *)own_trap) FAIL("signal() did not return the previous handler");
	struct wbpf_hook *h;
	struct wbpf_hook_error e;
	if (wbpf_hook_attach_any((void *)t_tiny, sym_size((void *)t_tiny), handler, &seen, &h, &e)) FAIL("attach: %s", e.reason);
	reset();
	if (call(t_tiny, 1, 2) != 3 || seen.hits != 1 || own_plain) FAIL("signal(): a trap hook hit reached the program's handler");
	__asm__ volatile("int3");
	if (own_plain != 1) FAIL("signal(): the program's own int3 did not reach its handler");
	if (wbpf_hook_detach(h, &e)) FAIL("detach: %s", e.reason);
	sa.sa_sigaction = own_trap;
	sigaction(SIGTRAP, &sa, NULL);
	printf("ok the program's SIGTRAP handler set after the hook (sigaction, signal): the hook's stays installed\n");
}

/* the program's handler set behind the interposers (libc's own sigaction, as a joined process does):
 * wbpf_hook_signals_check (the agent calls it every 100 ms) re-installs the hook's, chaining to it */
static void check_behind(void)
{
	int (*libc_sigaction)(int, const struct sigaction *, struct sigaction *) =
		(int (*)(int, const struct sigaction *, struct sigaction *))dlsym(RTLD_NEXT, "sigaction");
	if (!libc_sigaction) FAIL("no libc sigaction");
	struct sigaction sa;
	memset(&sa, 0, sizeof sa);
	sa.sa_sigaction = own_trap;
	sa.sa_flags = SA_SIGINFO;
	struct sigaction now;
	if (libc_sigaction(SIGTRAP, &sa, NULL) || libc_sigaction(SIGTRAP, NULL, &now) || now.sa_sigaction != own_trap) FAIL("libc sigaction");
	wbpf_hook_signals_check();
	if (libc_sigaction(SIGTRAP, NULL, &now) || now.sa_sigaction == own_trap) FAIL("wbpf_hook_signals_check did not re-install the hook's handler");
	if (sigaction(SIGTRAP, NULL, &now) || now.sa_sigaction != own_trap) FAIL("sigaction does not report the program's handler");
	check_own_int3("handler set behind the interposers, then wbpf_hook_signals_check");
	struct wbpf_hook *h;
	struct wbpf_hook_error e;
	if (libc_sigaction(SIGTRAP, &sa, NULL)) FAIL("libc sigaction");
	/* an attach of the trap tier checks too */
	if (wbpf_hook_attach_any((void *)t_tiny, sym_size((void *)t_tiny), handler, &seen, &h, &e)) FAIL("attach: %s", e.reason);
	reset();
	own_traps = 0;
	if (call(t_tiny, 2, 2) != 4 || seen.hits != 1 || own_traps) FAIL("a trap attach did not re-install the hook's SIGTRAP handler");
	if (wbpf_hook_detach(h, &e)) FAIL("detach: %s", e.reason);
	printf("ok the program's SIGTRAP handler set behind the interposers: re-installed by the check and by a trap attach\n");
}

/* a thread blocking every signal calls a trap-hooked function: SIGTRAP is never blocked (the kernel would
 * kill the process), the hit runs */
static void *blocker(void *arg)
{
	(void)arg;
	sigset_t all, now;
	sigfillset(&all);
	pthread_sigmask(SIG_BLOCK, &all, NULL);
	sigprocmask(SIG_SETMASK, &all, NULL);
	pthread_sigmask(SIG_SETMASK, NULL, &now);
	if (sigismember(&now, SIGTRAP) || !sigismember(&now, SIGUSR1)) return (void *)1;
	return (void *)(intptr_t)(call(t_lfence, 4, 5) != 9);
}
static void check_blocking_thread(void)
{
	struct wbpf_hook *h;
	struct wbpf_hook_error e;
	if (wbpf_hook_attach_any((void *)t_lfence, sym_size((void *)t_lfence), handler, &seen, &h, &e)) FAIL("attach: %s", e.reason);
	reset();
	pthread_t th;
	void *bad;
	pthread_create(&th, NULL, blocker, NULL);
	pthread_join(th, &bad);
	if (bad || seen.hits != 1) FAIL("a thread blocking every signal: bad %p, hits %lu", bad, (unsigned long)seen.hits);
	if (wbpf_hook_detach(h, &e)) FAIL("detach: %s", e.reason);
	printf("ok a thread blocking every signal hits a trap hook (SIGTRAP is never blocked)\n");
}

/* a fork child keeps the trap hook (the int3 and the handler are copied); unhooking in the parent leaves
 * the child's copy hooked until the child unhooks it */
static void check_fork(void)
{
	struct wbpf_hook *h;
	struct wbpf_hook_error e;
	if (wbpf_hook_attach_any((void *)t_tiny, sym_size((void *)t_tiny), handler, &seen, &h, &e)) FAIL("attach: %s", e.reason);
	reset();
	pid_t pid = fork();
	if (pid == 0) {
		int ok = call(t_tiny, 20, 1) == 21 && seen.hits == 1;
		ok = ok && !wbpf_hook_detach(h, &e) && call(t_tiny, 1, 1) == 2 && seen.hits == 1 && *(volatile uint8_t *)t_tiny != 0xcc;
		_exit(ok ? 0 : 1);
	}
	int st = 0;
	waitpid(pid, &st, 0);
	if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) FAIL("fork child: status %#x", st);
	if (call(t_tiny, 2, 3) != 5 || seen.hits != 1) FAIL("parent after the fork: hits %lu", (unsigned long)seen.hits);
	if (wbpf_hook_detach(h, &e)) FAIL("detach: %s", e.reason);
	printf("ok a fork child keeps the trap hook, hits it and unhooks its copy\n");
}

/* an empty function (a lone `ret`): the trap tier hooks it, entry and return (the ret runs out of line) */
void t_empty(void);
static uint64_t empty_hits, empty_rets;
static void empty_ret(struct wbpf_pt_regs *r, void *cookie) { (void)r; (void)cookie; empty_rets++; }
static void empty_entry(struct wbpf_pt_regs *r, void *cookie)
{
	(void)cookie;
	empty_hits++;
	wbpf_hook_ret_arm(r, empty_ret, NULL);
}
static void check_empty(const char *name, void (*fn)(void), int want_inline_code)
{
	struct wbpf_hook *h;
	struct wbpf_hook_error e;
	size_t size = sym_size((void *)fn);
	if (wbpf_hook_attach_sized((void *)fn, size, empty_entry, NULL, &h, &e) != want_inline_code)
		FAIL("%s: the inline hook returned %s: %s", name, wbpf_hook_code_name(e.code), e.reason);
	if (wbpf_hook_attach_any((void *)fn, size, empty_entry, NULL, &h, &e) || wbpf_hook_tier(h) != WBPF_HOOK_TIER_TRAP)
		FAIL("%s: attach_any: %s", name, e.reason);
	void (*volatile f)(void) = fn;
	empty_hits = empty_rets = 0;
	for (int i = 0; i < 100; i++) f();
	if (wbpf_hook_detach(h, &e)) FAIL("%s: detach: %s", name, e.reason);
	f();
	if (empty_hits != 100 || empty_rets != 100) FAIL("%s: %lu entries, %lu returns of 100 calls", name,
							 (unsigned long)empty_hits, (unsigned long)empty_rets);
	printf("ok trap %s (inline: %s): 100 entries and returns\n", name, wbpf_hook_code_name(want_inline_code));
}

int main(void)
{
	struct sigaction sa;
	memset(&sa, 0, sizeof sa);
	sa.sa_sigaction = own_trap;
	sa.sa_flags = SA_SIGINFO;
	sigaction(SIGTRAP, &sa, NULL);

	check_trap("loop", t_loop, m_loop, WBPF_HOOK_EBRANCH);
	check_trap("tiny", t_tiny, m_add, WBPF_HOOK_ESHORT);
	check_trap("lfence", t_lfence, m_add, WBPF_HOOK_EDECODE);
	check_refused();
	check_empty("empty", t_empty, WBPF_HOOK_ESHORT);
	check_forced("riplea", t_riplea, m_riplea);
	check_forced("push", t_push, m_add);
	check_threads("lfence", t_lfence);
	check_threads("tiny", t_tiny);
	check_cycles("loop", t_loop, m_loop, 2000);
	check_signal_contexts();
	check_own_int3("handler installed before the hook");
	check_late_handler();
	check_blocking_thread();
	check_behind();
	check_fork();
	printf("trap_test: OK\n");
	return 0;
}
