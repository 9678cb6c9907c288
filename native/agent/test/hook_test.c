/* Functional test of the inline hook: each entry kind hooked, called (handler sees the registers,
 * clobbers the caller-saved ones), unhooked; refusals leave the function untouched; evacuation; a
 * foreign int3 chained. Prints "ok ..." per check and "hook_test: OK"; exits 1 at the first failure. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <link.h>
#include <pthread.h>
#include <signal.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include "../hook/hook.h"

/* the slots a uprobe program reads (kernel struct pt_regs, x86-64): PARM1 = di, PARM2 = si, RC = ax */
_Static_assert(offsetof(struct wbpf_pt_regs, rdi) == 112, "PT_REGS_PARM1");
_Static_assert(offsetof(struct wbpf_pt_regs, rsi) == 104, "PT_REGS_PARM2");
_Static_assert(offsetof(struct wbpf_pt_regs, rdx) == 96, "PT_REGS_PARM3");
_Static_assert(offsetof(struct wbpf_pt_regs, rcx) == 88, "PT_REGS_PARM4");
_Static_assert(offsetof(struct wbpf_pt_regs, r8) == 72, "PT_REGS_PARM5");
_Static_assert(offsetof(struct wbpf_pt_regs, r9) == 64, "PT_REGS_PARM6");
_Static_assert(offsetof(struct wbpf_pt_regs, rax) == 80, "PT_REGS_RC");
_Static_assert(offsetof(struct wbpf_pt_regs, rip) == 128, "PT_REGS_IP");
_Static_assert(offsetof(struct wbpf_pt_regs, rsp) == 152, "PT_REGS_SP");
_Static_assert(sizeof(struct wbpf_pt_regs) == 168, "struct pt_regs size");

int t_gv = 7;
int t_endbr(int, int), t_push(int, int), t_nop5(int, int), t_plain(int, int), t_rip(int, int);
int t_short(int, int), t_jshort(int, int), t_call(int, int), t_tail(int, int), t_riplea(int, int);
int t_unknown(int, int), t_loop(int, int);
double t_fp(double, double);
extern const int t_table[4];
extern char __executable_start[], etext[];

struct seen {
	int calls;
	struct wbpf_pt_regs r;
	uint64_t ret_addr;
};
static struct seen seen;

static void handler(struct wbpf_pt_regs *r, void *cookie)
{
	struct seen *s = cookie;
	s->calls++;
	s->r = *r;
	s->ret_addr = *(uint64_t *)r->rsp;
	/* what a handler may do: the trampoline must restore all of it */
	__asm__ volatile("xorps %%xmm0, %%xmm0\n\txorps %%xmm1, %%xmm1\n\txorps %%xmm2, %%xmm2\n\t"
			 "xorps %%xmm3, %%xmm3\n\txorps %%xmm4, %%xmm4\n\txorps %%xmm5, %%xmm5\n\t"
			 "xorps %%xmm6, %%xmm6\n\txorps %%xmm7, %%xmm7\n\t"
			 "mov $-1, %%rax\n\tmov $-1, %%rcx\n\tmov $-1, %%rdx\n\tmov $-1, %%rsi\n\tmov $-1, %%rdi\n\t"
			 "mov $-1, %%r8\n\tmov $-1, %%r9\n\tmov $-1, %%r10\n\tmov $-1, %%r11\n\tcmp %%rax, %%rcx"
			 ::: "xmm0", "xmm1", "xmm2", "xmm3", "xmm4", "xmm5", "xmm6", "xmm7", "rax", "rcx", "rdx",
			 "rsi", "rdi", "r8", "r9", "r10", "r11", "cc");
}

#define FAIL(...) do { printf("FAIL "); printf(__VA_ARGS__); printf("\n"); exit(1); } while (0)

typedef int (*ifn)(int, int);
static int m_add(int a, int b) { return a + b; }
static int m_plain(int a, int b) { return a * 9 + b + 1000; }
static int m_rip(int a, int b) { return t_gv + a + b; }
static int m_jshort(int a, int b) { return a >= 0 ? a + b : b - a; }
static int m_call(int a, int b) { return 2 * a + b; }
static int m_riplea(int a, int b) { return t_table[a & 3] + b; }
static int m_loop(int a, int b) { return a * b; }

/* the function's st_size, as the agent will take it from the symbol table (linked -rdynamic) */
static size_t sym_size(void *fn)
{
	Dl_info info;
	const ElfW(Sym) *sym = NULL;
	if (!dladdr1(fn, &info, (void **)&sym, RTLD_DL_SYMENT) || !sym || info.dli_saddr != fn || !sym->st_size)
		FAIL("no symbol size for %p", fn);
	return sym->st_size;
}

static void check_regs(const char *name, void *fn, int a, int b)
{
	const struct wbpf_pt_regs *r = &seen.r;
	if (seen.calls != 1) FAIL("%s(%d, %d): handler ran %d times", name, a, b, seen.calls);
	if ((int)r->rdi != a || (int)r->rsi != b)
		FAIL("%s: handler saw PARM1 %d PARM2 %d, want %d %d", name, (int)r->rdi, (int)r->rsi, a, b);
	if (r->rip != (uintptr_t)fn) FAIL("%s: PT_REGS_IP %#lx, want %p", name, (unsigned long)r->rip, fn);
	if (r->rsp % 16 != 8) FAIL("%s: PT_REGS_SP %#lx is not the entry's (%%16 == 8)", name, (unsigned long)r->rsp);
	if (seen.ret_addr < (uintptr_t)__executable_start || seen.ret_addr >= (uintptr_t)etext)
		FAIL("%s: *PT_REGS_SP %#lx is not a return address into the program", name, (unsigned long)seen.ret_addr);
	if (r->cs != 0x33 || r->ss != 0x2b || r->orig_rax != (uint64_t)-1 || (r->eflags & 0x202) != 0x202)
		FAIL("%s: cs %#lx ss %#lx orig_rax %#lx eflags %#lx", name, (unsigned long)r->cs, (unsigned long)r->ss,
		     (unsigned long)r->orig_rax, (unsigned long)r->eflags);
}

static int call(ifn fn, int a, int b)
{
	ifn volatile f = fn;
	return f(a, b);
}

/* hook, call twice, unhook, call; hook again (the retired trampoline is reused), call, unhook */
static void check_int_sized(const char *name, ifn fn, size_t size, ifn model, int a1, int b1, int a2, int b2,
			    int want_replaced)
{
	uint8_t before[16];
	struct wbpf_hook *h;
	struct wbpf_hook_error e;
	memcpy(before, (void *)fn, sizeof before);
	for (int round = 0; round < 2; round++) {
		if (wbpf_hook_attach_sized((void *)fn, size, handler, &seen, &h, &e))
			FAIL("%s: attach: %s: %s", name, wbpf_hook_code_name(e.code), e.reason);
		if (want_replaced && wbpf_hook_replaced_len(h) != want_replaced)
			FAIL("%s: replaced %d bytes, want %d", name, wbpf_hook_replaced_len(h), want_replaced);
		int args[2][2] = { { a1, b1 }, { a2, b2 } };
		for (int k = 0; k < 2; k++) {
			memset(&seen, 0, sizeof seen);
			int r = call(fn, args[k][0], args[k][1]), want = model(args[k][0], args[k][1]);
			if (r != want) FAIL("%s(%d, %d) hooked = %d, want %d", name, args[k][0], args[k][1], r, want);
			check_regs(name, (void *)fn, args[k][0], args[k][1]);
		}
		int replaced = wbpf_hook_replaced_len(h);
		if (wbpf_hook_detach(h, &e)) FAIL("%s: detach: %s: %s", name, wbpf_hook_code_name(e.code), e.reason);
		if (memcmp(before, (void *)fn, sizeof before)) FAIL("%s: bytes differ after detach", name);
		memset(&seen, 0, sizeof seen);
		int r = call(fn, a1, b1);
		if (r != model(a1, b1) || seen.calls) FAIL("%s unhooked = %d (handler ran %d times)", name, r, seen.calls);
		if (round == 1)
			printf("ok %s replaced=%d parm1=%d parm2=%d result=%d\n", name, replaced, a2, b2, model(a2, b2));
	}
}

static void check_int(const char *name, ifn fn, ifn model, int a1, int b1, int a2, int b2, int want_replaced)
{
	check_int_sized(name, fn, sym_size((void *)fn), model, a1, b1, a2, b2, want_replaced);
}

static void check_refused_sized(const char *name, ifn fn, size_t size, ifn model, int want_code)
{
	uint8_t before[32];
	struct wbpf_hook *h = NULL;
	struct wbpf_hook_error e;
	memcpy(before, (void *)fn, sizeof before);
	int rc = wbpf_hook_attach_sized((void *)fn, size, handler, &seen, &h, &e);
	if (rc != want_code || e.code != rc || !e.reason[0] || h)
		FAIL("%s: attach returned %s (%s), want %s", name, wbpf_hook_code_name(rc), e.reason, wbpf_hook_code_name(want_code));
	if (memcmp(before, (void *)fn, sizeof before)) FAIL("%s: refused, but its bytes changed", name);
	memset(&seen, 0, sizeof seen);
	if (call(fn, 6, 7) != model(6, 7) || seen.calls) FAIL("%s: refused, but it misbehaves", name);
	printf("ok refused %s %s: %s\n", name, wbpf_hook_code_name(rc), e.reason);
}

static void check_refused(const char *name, ifn fn, ifn model, int want_code)
{
	check_refused_sized(name, fn, 0, model, want_code);
}

static void check_fp(void)
{
	struct wbpf_hook *h;
	struct wbpf_hook_error e;
	if (wbpf_hook_attach_sized((void *)t_fp, sym_size((void *)t_fp), handler, &seen, &h, &e))
		FAIL("fp: attach: %s: %s", wbpf_hook_code_name(e.code), e.reason);
	double (*volatile f)(double, double) = t_fp;
	memset(&seen, 0, sizeof seen);
	double r = f(1.5, 4.0);
	if (r != 7.0 || seen.calls != 1) FAIL("fp(1.5, 4.0) hooked = %g (handler ran %d times): xmm0-7 not kept", r, seen.calls);
	if (wbpf_hook_detach(h, &e)) FAIL("fp: detach: %s", e.reason);
	printf("ok fp replaced=%d xmm0-7 kept across the handler\n", 8);
}

static volatile int deaf_ready;
static void *deaf(void *arg)
{
	char c;
	deaf_ready = 1;
	if (read(*(int *)arg, &c, 1) != 1) return NULL;
	return NULL;
}

/* A thread stopped inside the replaced bytes while the jump is written must be moved to the same
 * point of the relocated copy. The parker thread's SIGUSR1 handler (which blocks the agent's signal)
 * rewrites its context to "t_endbr called with (20, 22), endbr64 done: rip = t_endbr + 4", then
 * waits until the agent's signal is pending: on sigreturn the thread is at +4, and the signal is
 * delivered before it runs a single instruction there. The context also has the trap flag set: the
 * first instruction the thread runs after the agent's handler traps, and own_trap records where
 * (the relocated copy, not t_endbr + 7). */
static volatile uintptr_t stepped_to;
static volatile int parked, landed_result = -1;
void t_landing(void);
void t_landed(int r);
void t_landed(int r)
{
	landed_result = r;
	pthread_exit(NULL);
}

static void park(int sig, siginfo_t *si, void *ucv)
{
	(void)sig; (void)si;
	ucontext_t *uc = ucv;
	greg_t *g = uc->uc_mcontext.gregs;
	uint64_t sp = (((uint64_t)g[REG_RSP] - 256) & ~(uint64_t)15) - 8;
	*(uint64_t *)sp = (uint64_t)(uintptr_t)t_landing; /* the return address */
	g[REG_RSP] = (greg_t)sp;
	g[REG_RDI] = 20;
	g[REG_RSI] = 22;
	g[REG_RIP] = (greg_t)((uintptr_t)t_endbr + 4);
	g[REG_EFL] |= 0x100; /* TF */
	parked = 1;
	sigset_t pending;
	for (long spins = 0; spins < 2000000000L; spins++) {
		sigpending(&pending);
		if (sigismember(&pending, SIGRTMAX - 2)) return;
	}
}

static void *parker(void *arg)
{
	(void)arg;
	pthread_kill(pthread_self(), SIGUSR1);
	return NULL; /* not reached when parking works: the thread ends in t_landed */
}

static void check_evacuation(void)
{
	struct sigaction sa;
	memset(&sa, 0, sizeof sa);
	sa.sa_sigaction = park;
	sa.sa_flags = SA_SIGINFO;
	sigemptyset(&sa.sa_mask);
	sigaddset(&sa.sa_mask, SIGRTMAX - 2);
	sigaction(SIGUSR1, &sa, NULL);
	struct wbpf_hook_stats st0, st1;
	wbpf_hook_get_stats(&st0);
	pthread_t t;
	pthread_create(&t, NULL, parker, NULL);
	while (!parked) ;
	memset(&seen, 0, sizeof seen);
	struct wbpf_hook *h;
	struct wbpf_hook_error e;
	if (wbpf_hook_attach_sized((void *)t_endbr, sym_size((void *)t_endbr), handler, &seen, &h, &e))
		FAIL("evacuation: attach: %s: %s", wbpf_hook_code_name(e.code), e.reason);
	pthread_join(t, NULL);
	wbpf_hook_get_stats(&st1);
	if (landed_result != 42 || st1.evacuated != st0.evacuated + 1 || seen.calls)
		FAIL("evacuation: parked call returned %d, evacuated %lu, handler ran %d times", landed_result,
		     (unsigned long)(st1.evacuated - st0.evacuated), seen.calls);
	if (!stepped_to || (stepped_to >= (uintptr_t)t_endbr && stepped_to < (uintptr_t)t_endbr + 16))
		FAIL("evacuation: the parked thread ran its next instruction in place (stepped to %#lx)", (unsigned long)stepped_to);
	if (wbpf_hook_detach(h, &e)) FAIL("evacuation: detach: %s", e.reason);
	printf("ok evacuated a thread stopped at t_endbr+4 to the copy: returned %d\n", landed_result);
}

/* a helper thread that blocks every signal and sleeps in read(): attach must not wait for it */
static void check_deaf_thread(void)
{
	int fds[2];
	if (pipe(fds)) FAIL("pipe");
	sigset_t all, old;
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old); /* the new thread inherits it */
	pthread_t t;
	pthread_create(&t, NULL, deaf, &fds[0]);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	while (!deaf_ready) ;
	usleep(20000); /* let it block in read() */
	struct wbpf_hook *h;
	struct wbpf_hook_error e;
	struct timespec t0, t1;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	if (wbpf_hook_attach_sized((void *)t_plain, sym_size((void *)t_plain), handler, &seen, &h, &e))
		FAIL("deaf thread: attach: %s: %s", wbpf_hook_code_name(e.code), e.reason);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	if (wbpf_hook_detach(h, &e)) FAIL("deaf thread: detach: %s", e.reason);
	if (write(fds[1], "x", 1) != 1) FAIL("write");
	pthread_join(t, NULL);
	close(fds[0]);
	close(fds[1]);
	long ms = (t1.tv_sec - t0.tv_sec) * 1000 + (t1.tv_nsec - t0.tv_nsec) / 1000000;
	if (ms > 1000) FAIL("deaf thread: attach took %ld ms", ms);
	printf("ok attach does not wait for a thread that blocks every signal and sleeps in read()\n");
}

static volatile int own_traps;
static void own_trap(int sig, siginfo_t *si, void *ucv)
{
	(void)sig;
	ucontext_t *uc = ucv;
	if (si->si_code == TRAP_TRACE) { /* the evacuation test's single step */
		stepped_to = (uintptr_t)uc->uc_mcontext.gregs[REG_RIP];
		uc->uc_mcontext.gregs[REG_EFL] &= ~(greg_t)0x100;
		return;
	}
	own_traps++;
}

int main(void)
{
	setvbuf(stdout, NULL, _IOLBF, 0);
	struct sigaction sa;
	memset(&sa, 0, sizeof sa);
	sa.sa_sigaction = own_trap;
	sa.sa_flags = SA_SIGINFO;
	sigaction(SIGTRAP, &sa, NULL); /* the program's own handler, before the agent's */

	check_int("endbr", t_endbr, m_add, 3, 4, -20, 5, 7);   /* endbr64; lea */
	check_int("push", t_push, m_add, 3, 4, 1000, -1, 7);   /* push %rbp; mov %rsp,%rbp; lea */
	check_int("nop5", t_nop5, m_add, 3, 4, 11, 12, 5);     /* nopl 0x0(%rax,%rax,1) */
	check_int("plain", t_plain, m_plain, 3, 4, 5, 6, 10);  /* lea; lea disp32 */
	check_int("riprel", t_rip, m_rip, 3, 4, 8, 9, 6);      /* add t_gv(%rip),%edi */
	check_refused("riplea-unsized", t_riplea, m_riplea, WBPF_HOOK_EDECODE); /* runs into t_unknown */
	check_int("riplea", t_riplea, m_riplea, 3, 4, 2, 9, 7); /* lea t_table(%rip),%rax */
	check_int("jshort", t_jshort, m_jshort, 3, 4, -5, 9, 7); /* test; js rel8 (taken the 2nd time); lea */
	check_int("call", t_call, m_call, 3, 4, 50, 1, 9);     /* sub $8,%rsp; call rel32 */
	check_int("tail", t_tail, m_add, 3, 4, 30, 40, 5);     /* jmp rel32 */
	/* without the size: the body scan ends at a ret followed by int3 padding */
	check_int_sized("jshort-unsized", t_jshort, 0, m_jshort, 3, 4, -5, 9, 7);
	check_int_sized("call-unsized", t_call, 0, m_call, 3, 4, 50, 1, 9);
	check_fp();
	check_evacuation();
	check_deaf_thread();

	check_refused("short", t_short, m_add, WBPF_HOOK_ESHORT);
	check_refused("unknown", t_unknown, m_add, WBPF_HOOK_EDECODE);
	check_refused("loop", t_loop, m_loop, WBPF_HOOK_EBRANCH);
	check_refused_sized("loop-sized", t_loop, sym_size((void *)t_loop), m_loop, WBPF_HOOK_EBRANCH);
	check_refused_sized("short-sized", t_short, sym_size((void *)t_short), m_add, WBPF_HOOK_ESHORT);

	struct wbpf_hook *h, *h2;
	struct wbpf_hook_error e;
	if (wbpf_hook_attach_sized((void *)t_plain, sym_size((void *)t_plain), handler, &seen, &h, &e))
		FAIL("busy: attach: %s", e.reason);
	if (wbpf_hook_attach((void *)t_plain, handler, &seen, &h2, &e) != WBPF_HOOK_EBUSY) FAIL("busy: second attach was not refused");
	printf("ok refused busy %s: %s\n", wbpf_hook_code_name(e.code), e.reason);
	if (wbpf_hook_detach(h, &e)) FAIL("busy: detach: %s", e.reason);

	__asm__ volatile("int3");
	if (own_traps != 1) FAIL("an int3 that is not the agent's did not reach the program's SIGTRAP handler");
	printf("ok chained SIGTRAP to the program's handler\n");
	printf("sync %s\n", wbpf_hook_sync_method());
	printf("hook_test: OK\n");
	return 0;
}
