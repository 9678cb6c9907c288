/* Test of the arm64 trap tier (wbpf_hook_attach_trap: a brk on the entry, hook/arm64/trap.c): every entry
 * kind of test/targets_arm64.S hooked by a brk, called (the handler sees the registers as struct
 * user_pt_regs and pc = the function), unhooked; landing pads on a BTI-guarded page (the brk after them); return probes through it (x30 rewritten in the signal's
 * context); exact counts on 4 threads; attach/detach cycles under calling threads; the program's own
 * SIGTRAP handler still gets its own brk. Prints "ok ..." per check and "trap_test_arm64: OK"; exits 1 at
 * the first failure. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <libgen.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <ucontext.h>
#include <unistd.h>
#include "../hook/hook.h"

typedef long (*lfn)(long, long);
long t_plain(long, long), t_frame(long, long), t_adrp(long, long), t_adr(long, long), t_ldrw(long, long);
long t_ldrx(long, long), t_b(long, long), t_bl_call(long, long), t_bl(long, long), t_bcond_call(long, long);
long t_bcond(long, long), t_cbz(long, long), t_tbnz(long, long), t_pac(long, long), t_bti(long, long), t_brk(long, long);
extern char __executable_start[], etext[];

#define FAIL(...) do { printf("FAIL "); printf(__VA_ARGS__); printf("\n"); exit(1); } while (0)

static long m_plain(long a, long b) { return (int)(a * 9 + b + 1000); }
static long m_add(long a, long b) { return (int)(a + b); }
static long m_adrp(long a, long b) { return (int)(a + b + 1234); }
static long m_adr(long a, long b) { return (int)(a + b + 77); }
static long m_ldrw(long a, long b) { return (int)(a + b + 1000); }
static long m_ldrx(long a, long b) { return a + b + 0x100000000L; }
static long m_bl(long a, long b) { return (int)(a + b + 100); }
static long m_bcond(long a, long b) { return (int)a < 0 ? (int)(b - a) : (int)(a + b); }
static long m_cbz(long a, long b) { return (int)a == 0 ? 77 : (int)(a + b); }
static long m_tbnz(long a, long b) { return (int)a < 0 ? (int)-a : (int)(a + b); }

struct kind { const char *name; lfn hooked, call, model; int x64; };
static const struct kind kinds[] = {
	{ "plain (mov)", t_plain, t_plain, m_plain, 0 },
	{ "stp x29, x30 frame", t_frame, t_frame, m_add, 0 },
	{ "adrp", t_adrp, t_adrp, m_adrp, 0 },
	{ "adr", t_adr, t_adr, m_adr, 0 },
	{ "ldr w literal", t_ldrw, t_ldrw, m_ldrw, 0 },
	{ "ldr x literal", t_ldrx, t_ldrx, m_ldrx, 1 },
	{ "b (tail call)", t_b, t_b, m_add, 0 },
	{ "bl", t_bl, t_bl_call, m_bl, 0 },
	{ "b.lt", t_bcond, t_bcond_call, m_bcond, 0 },
	{ "cbz", t_cbz, t_cbz, m_cbz, 0 },
	{ "tbnz", t_tbnz, t_tbnz, m_tbnz, 0 },
	{ "paciasp", t_pac, t_pac, m_add, 0 },
	{ "bti c", t_bti, t_bti, m_add, 0 },
};
static const long args[][2] = { { 3, 4 }, { 0, 9 }, { -7, 2 }, { 100000, -3 } };

struct seen {
	long hits, rets, bad;
	struct wbpf_pt_regs r;
	int arm;
	long ret_x0;
	uint64_t ret_pc;
};
static struct seen seen;

static void on_ret(struct wbpf_pt_regs *r, void *cookie)
{
	struct seen *s = cookie;
	__atomic_fetch_add(&s->rets, 1, __ATOMIC_RELAXED);
	s->ret_x0 = (long)r->regs[0];
	s->ret_pc = r->pc;
}

static void handler(struct wbpf_pt_regs *r, void *cookie)
{
	struct seen *s = cookie;
	__atomic_fetch_add(&s->hits, 1, __ATOMIC_RELAXED);
	s->r = *r;
	if (s->arm && wbpf_hook_ret_arm(r, on_ret, s)) __atomic_fetch_add(&s->bad, 1, __ATOMIC_RELAXED);
}

static void attach(void *fn, struct wbpf_hook **h, struct seen *s)
{
	struct wbpf_hook_error err;
	if (wbpf_hook_attach_trap(fn, 0, handler, s, h, &err)) FAIL("trap attach %p: %s: %s", fn, wbpf_hook_code_name(err.code), err.reason);
	if (wbpf_hook_tier(*h) != WBPF_HOOK_TIER_TRAP) FAIL("tier %d", wbpf_hook_tier(*h));
}

static void detach(struct wbpf_hook *h)
{
	struct wbpf_hook_error err;
	if (wbpf_hook_detach(h, &err)) FAIL("detach: %s: %s", wbpf_hook_code_name(err.code), err.reason);
}

static int same(const struct kind *k, long got, long want) { return k->x64 ? got == want : (int)got == (int)want; }

static void check_kind(const struct kind *k)
{
	uint32_t before[2], during[2], after[2];
	memcpy(before, (void *)k->hooked, 8);
	struct wbpf_hook *h;
	memset(&seen, 0, sizeof seen);
	attach((void *)k->hooked, &h, &seen);
	memcpy(during, (void *)k->hooked, 8);
	int off = wbpf_hook_replaced_len(h) - 4;
	uint32_t brk;
	memcpy(&brk, (char *)k->hooked + off, 4);
	if ((brk & 0xffe0001fu) != 0xd4200000u) FAIL("%s: no brk at +%d (%08x)", k->name, off, brk);
	if (off && during[0] != before[0]) FAIL("%s: the landing pad moved", k->name);
	for (size_t i = 0; i < sizeof args / sizeof args[0]; i++) {
		long got = k->call(args[i][0], args[i][1]);
		if (!same(k, got, k->model(args[i][0], args[i][1]))) FAIL("%s(%ld, %ld) hooked = %ld", k->name, args[i][0], args[i][1], got);
		if (seen.hits != (long)i + 1) FAIL("%s: %ld hits after %zu calls", k->name, seen.hits, i + 1);
		if ((long)seen.r.regs[0] != args[i][0] || (long)seen.r.regs[1] != args[i][1]) FAIL("%s: x0/x1 %ld %ld", k->name, (long)seen.r.regs[0], (long)seen.r.regs[1]);
		if (seen.r.pc != (uintptr_t)k->hooked) FAIL("%s: pc %#lx, want %p", k->name, (unsigned long)seen.r.pc, (void *)k->hooked);
		if (seen.r.sp & 15) FAIL("%s: sp %#lx", k->name, (unsigned long)seen.r.sp);
		if (!(seen.r.regs[30] >= (uintptr_t)__executable_start && seen.r.regs[30] < (uintptr_t)etext)) FAIL("%s: x30 %#lx", k->name, (unsigned long)seen.r.regs[30]);
	}
	detach(h);
	memcpy(after, (void *)k->hooked, 8);
	if (memcmp(before, after, 8)) FAIL("%s: entry not restored", k->name);
	long got = k->call(3, 4);
	if (!same(k, got, k->model(3, 4)) || seen.hits != 4) FAIL("%s: after detach %ld, %ld hits", k->name, got, seen.hits);
	printf("ok trap %s%s: hooked by a brk, called, unhooked\n", k->name, off ? " (brk after the landing pad)" : "");
}

/* return probes through the trap tier: x30 rewritten in the signal's context */
static void check_ret(void)
{
	struct wbpf_hook *h;
	memset(&seen, 0, sizeof seen);
	seen.arm = 1;
	attach((void *)t_frame, &h, &seen);
	long sum = 0;
	for (long i = 0; i < 100; i++) sum += t_frame(i, 1000);
	detach(h);
	if (seen.hits != 100 || seen.rets != 100 || seen.bad) FAIL("ret: %ld hits, %ld returns, %ld not armed", seen.hits, seen.rets, seen.bad);
	if (sum != 100 * 1000 + 4950 || seen.ret_x0 != 1099) FAIL("ret: sum %ld, last x0 %ld", sum, seen.ret_x0);
	if (!(seen.ret_pc >= (uintptr_t)__executable_start && seen.ret_pc < (uintptr_t)etext)) FAIL("ret: pc %#lx", (unsigned long)seen.ret_pc);
	printf("ok return probes through a trap hook: 100 entries, 100 returns, results kept\n");
}

static volatile int stop;
static long wrong;
static void *worker(void *arg)
{
	long n = (long)(intptr_t)arg, k = 0;
	lfn volatile f = t_frame;
	for (long i = 0; n ? i < n : !stop; i++, k++)
		if ((int)f(i, 7) != (int)(i + 7)) __atomic_fetch_add(&wrong, 1, __ATOMIC_RELAXED);
	return (void *)(intptr_t)k;
}

static void check_threads(void)
{
	struct wbpf_hook *h;
	memset(&seen, 0, sizeof seen);
	attach((void *)t_frame, &h, &seen);
	pthread_t th[4];
	for (int i = 0; i < 4; i++) pthread_create(&th[i], NULL, worker, (void *)(intptr_t)2000);
	for (int i = 0; i < 4; i++) pthread_join(th[i], NULL);
	detach(h);
	if (wrong || seen.hits != 8000) FAIL("threads: %ld hits of 8000, %ld wrong", seen.hits, wrong);
	printf("ok 4 threads x 2000 calls: 8000 hits, every result right\n");
}

static void check_cycles(int cycles)
{
	stop = 0;
	memset(&seen, 0, sizeof seen);
	pthread_t th[3];
	for (int i = 0; i < 3; i++) pthread_create(&th[i], NULL, worker, NULL);
	for (int c = 0; c < cycles; c++) {
		struct wbpf_hook *h;
		attach((void *)t_frame, &h, &seen);
		usleep(200);
		detach(h);
	}
	stop = 1;
	long calls = 0;
	for (int i = 0; i < 3; i++) {
		void *k;
		pthread_join(th[i], &k);
		calls += (long)(intptr_t)k;
	}
	if (wrong) FAIL("cycles: %ld wrong results", wrong);
	if (!seen.hits) FAIL("cycles: no hit");
	printf("ok %d trap attach/detach cycles under 3 calling threads, %ld hits, %ld calls\n", cycles, seen.hits, calls);
}

/* 1 if the page holding addr is BTI-guarded (VmFlags "bt" in /proc/self/smaps) */
static int guarded(uintptr_t addr)
{
	FILE *f = fopen("/proc/self/smaps", "re");
	char line[512];
	int in = 0, g = 0;
	unsigned long lo, hi;
	if (!f) return 0;
	while (fgets(line, sizeof line, f)) {
		if (sscanf(line, "%lx-%lx ", &lo, &hi) == 2 && strchr(line, '-') < strchr(line, ' ')) in = addr >= lo && addr < hi;
		else if (in && !strncmp(line, "VmFlags:", 8)) { g = strstr(line, " bt") != NULL; break; }
	}
	fclose(f);
	return g;
}

/* landing pads (test/bti_targets_arm64.S, a library the loader maps BTI-guarded): the brk goes after the
 * pad, an indirect call still lands on it */
static void check_bti(void)
{
	char exe[PATH_MAX], lib[PATH_MAX + 32];
	ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
	if (n <= 0) FAIL("readlink /proc/self/exe");
	exe[n] = 0;
	snprintf(lib, sizeof lib, "%s/libbti_targets.so", dirname(exe));
	void *so = dlopen(lib, RTLD_NOW);
	if (!so) FAIL("dlopen %s: %s", lib, dlerror());
	static const struct { const char *name; long add; } fns[] = { { "b_add", 0 }, { "b_pac", 0 }, { "b_adr", 5 } };
	int g = -1;
	for (size_t i = 0; i < sizeof fns / sizeof fns[0]; i++) {
		lfn f = (lfn)dlsym(so, fns[i].name);
		if (!f) FAIL("dlsym %s", fns[i].name);
		if (g < 0) g = guarded((uintptr_t)f);
		struct wbpf_hook *h;
		memset(&seen, 0, sizeof seen);
		attach((void *)f, &h, &seen);
		int replaced = wbpf_hook_replaced_len(h);
		uint32_t brk;
		memcpy(&brk, (char *)f + replaced - 4, 4);
		lfn volatile call = f; /* blr: an indirect call, which a guarded page checks */
		long got = (int)call(20, 22);
		detach(h);
		if ((brk & 0xffe0001fu) != 0xd4200000u) FAIL("%s: no brk at +%d", fns[i].name, replaced - 4);
		if (got != 42 + fns[i].add || seen.hits != 1 || seen.r.pc != (uintptr_t)f || seen.r.regs[0] != 20)
			FAIL("%s on a %sguarded page: %ld, %ld hits, pc %#lx", fns[i].name, g ? "" : "not ", got, seen.hits, (unsigned long)seen.r.pc);
		if (replaced != (g ? 8 : 4)) FAIL("%s: brk at +%d, want +%d", fns[i].name, replaced - 4, g ? 4 : 0);
		if (guarded((uintptr_t)f) != g) FAIL("%s: the page's BTI guard changed by the patch", fns[i].name);
	}
	if (!g && getenv("WBPF_EXPECT_BTI")) FAIL("libbti_targets.so is not BTI-guarded (VmFlags without bt)");
	printf("ok trap landing pads (bti c, paciasp) on a %s page: the brk after them\n", g ? "BTI-guarded" : "not guarded");
}

static int own_traps;
static void own_handler(int sig, siginfo_t *si, void *ucv)
{
	(void)sig, (void)si;
	ucontext_t *uc = ucv;
	own_traps++;
	uc->uc_mcontext.pc += 4; /* past the program's own brk */
}

static void check_own_handler(void)
{
	struct sigaction sa;
	memset(&sa, 0, sizeof sa);
	sa.sa_sigaction = own_handler;
	sa.sa_flags = SA_SIGINFO;
	if (sigaction(SIGTRAP, &sa, NULL)) FAIL("sigaction");
	struct wbpf_hook *h;
	memset(&seen, 0, sizeof seen);
	attach((void *)t_frame, &h, &seen);
	long r = t_brk(1, 2); /* brk #5; ret: the program's handler steps over it */
	(void)r;
	if (t_frame(5, 6) != 11 || seen.hits != 1) FAIL("own handler: trap hook %ld hits", seen.hits);
	if (own_traps != 1) FAIL("own handler: %d of the program's traps reached it", own_traps);
	detach(h);
	t_brk(1, 2);
	if (own_traps != 2) FAIL("own handler after detach: %d", own_traps);
	struct wbpf_hook_stats st;
	wbpf_hook_get_stats(&st);
	if (!st.trap_hits) FAIL("stats: no trap hit counted");
	printf("ok the program's SIGTRAP handler gets its own brk, trap hook hits do not reach it (%lu trap hits)\n", (unsigned long)st.trap_hits);
}

int main(int argc, char **argv)
{
	setvbuf(stdout, NULL, _IOLBF, 0);
	for (size_t i = 0; i < sizeof kinds / sizeof kinds[0]; i++) check_kind(&kinds[i]);
	check_bti();
	check_ret();
	check_threads();
	check_cycles(argc > 1 ? atoi(argv[1]) : 100);
	check_own_handler();
	printf("trap_test_arm64: OK\n");
	return 0;
}
