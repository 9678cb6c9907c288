/* Return probes on arm64 (hook/ret_stubs.c, hook/arm64/ret_stub.c, ret_tramp.S, hook/ret.c): recursion, a longjmp out of
 * armed calls, a tail call between two hooked functions, x0/x1 and d0 return values kept across the
 * return handler (which clobbers them), 4 threads, a signed return address (paciasp ran first) left
 * alone. Prints "ok ..." per check and "ret_test_arm64: OK"; exits 1 at the first failure. */
#define _GNU_SOURCE
#include <pthread.h>
#include <setjmp.h>
#include "ret_log.h"

#define KEEP(x) __asm__ volatile("" : "+r"(x))

struct pair { long a, b; };
__attribute__((noipa)) long r_rec(long n)
{
	if (n == 0) return 1000;
	long r = r_rec(n - 1);
	KEEP(r);
	return r + 1;
}
static jmp_buf jb;
__attribute__((noipa)) long r_jmp(long n)
{
	if (n < 0) return -1;
	if (n == 0) longjmp(jb, 1);
	long r = r_jmp(n - 1);
	KEEP(r);
	return r + 1;
}
__attribute__((noipa)) long r_add(long a, long b) { return a + b; }
__attribute__((noipa)) long r_tail(long a, long b) { return r_add(a, b + 1); }
__attribute__((noipa)) struct pair r_pair(long x) { return (struct pair){ x, 3 * x }; }
__attribute__((noipa)) double r_fp(double x) { return x * 2.5; }
long r_pac(long a, long b); /* paciasp; add; autiasp; ret (below) */
__asm__(".text\n.p2align 2\n.globl r_pac\n.type r_pac, %function\nr_pac:\n\thint #25\n\tstp x29, x30, [sp, #-16]!\n"
	"\tmov x29, sp\n\tadd x0, x0, x1\n\tldp x29, x30, [sp], #16\n\thint #29\n\tret\n.size r_pac, .-r_pac\n");

static void check_returns(const char *what, int n)
{
	/* the i-th return matches the entry n-1-i (innermost first): sp and the real return address */
	for (int k = 0; k < n; k++) {
		const struct ev *e = &lg.ev[n - 1 - k], *r = &lg.ev[n + k];
		if (e->kind != 'E' || r->kind != 'R') FAIL("%s: event order", what);
		if (r->rsp != e->rsp || r->rip != e->rip)
			FAIL("%s: return %d: sp %#lx pc %#lx, want %#lx %#lx", what, k, (unsigned long)r->rsp, (unsigned long)r->rip,
			     (unsigned long)e->rsp, (unsigned long)e->rip);
	}
}

static struct { long calls, bad, returns, entries; } th[4];
static void *worker(void *arg)
{
	long i = (long)(intptr_t)arg;
	long (*volatile f)(long, long) = r_add;
	log_reset();
	for (long k = 0; k < 20000; k++)
		if (f(k, i) != k + i) th[i].bad++;
	th[i].calls = 20000;
	th[i].returns = lg.returns;
	th[i].entries = lg.entries;
	return NULL;
}

int main(void)
{
	setvbuf(stdout, NULL, _IOLBF, 0);
	long (*volatile rec)(long) = r_rec;
	struct wbpf_hook *h = hook((void *)r_rec, "r_rec", on_entry);
	log_reset();
	long v = rec(100);
	if (v != 1100 || lg.entries != 101 || lg.returns != 101 || lg.arm_failed) FAIL("recursion: %ld, %ld/%ld", v, lg.entries, lg.returns);
	for (int k = 0; k <= 100; k++)
		if (lg.ev[101 + k].val != 1000 + k) FAIL("recursion: return %d = %ld", k, (long)lg.ev[101 + k].val);
	check_returns("recursion", 101);
	printf("ok recursion depth 100: 101 returns, innermost first, values 1000..1100, sp and pc of each call\n");

	struct wbpf_hook *hj = hook((void *)r_jmp, "r_jmp", on_entry);
	long (*volatile jmp)(long) = r_jmp;
	log_reset();
	if (!setjmp(jb)) jmp(10);
	if (lg.entries != 11 || lg.returns != 0) FAIL("longjmp: %ld/%ld", lg.entries, lg.returns);
	log_reset();
	v = rec(3);
	if (v != 1003 || lg.returns != 4) FAIL("after longjmp: %ld, %ld returns", v, lg.returns);
	check_returns("after longjmp", 4);
	printf("ok longjmp out of 11 armed calls: none reported, the next calls are\n");
	unhook(hj, "r_jmp");
	unhook(h, "r_rec");

	struct wbpf_hook *ha = hook((void *)r_add, "r_add", on_entry), *ht = hook((void *)r_tail, "r_tail", on_entry);
	long (*volatile tail)(long, long) = r_tail;
	log_reset();
	v = tail(50, 54);
	if (v != 105 || lg.returns != 2 || lg.ev[2].val != 105 || lg.ev[3].val != 105 || lg.ev[2].rsp != lg.ev[0].rsp ||
	    lg.ev[3].rsp != lg.ev[0].rsp || lg.ev[2].rip != lg.ev[0].rip)
		FAIL("tail call: %ld, %ld returns", v, lg.returns);
	printf("ok tail call (r_tail b r_add, both hooked): 2 returns of 105 at the same sp and pc\n");
	unhook(ht, "r_tail");

	pthread_t t[4];
	for (long i = 0; i < 4; i++) pthread_create(&t[i], NULL, worker, (void *)(intptr_t)i);
	for (int i = 0; i < 4; i++) pthread_join(t[i], NULL);
	for (int i = 0; i < 4; i++)
		if (th[i].bad || th[i].returns != th[i].calls || th[i].entries != th[i].calls)
			FAIL("threads: thread %d: %ld bad, %ld/%ld/%ld", i, th[i].bad, th[i].entries, th[i].returns, th[i].calls);
	printf("ok 4 threads x 20000 calls: every return reported on its thread, every result right\n");
	unhook(ha, "r_add");

	struct wbpf_hook *hp = hook((void *)r_pair, "r_pair", on_entry), *hf = hook((void *)r_fp, "r_fp", on_entry);
	struct pair (*volatile pair)(long) = r_pair;
	double (*volatile fp)(double) = r_fp;
	log_reset();
	struct pair p = pair(0x1234567890L);
	double d = fp(4.0);
	if (p.a != 0x1234567890L || p.b != 3 * 0x1234567890L || d != 10.0) FAIL("registers: %lx %lx %f", p.a, p.b, d);
	if (lg.returns != 2 || lg.ev[1].val != 0x1234567890L || lg.ev[1].rdx != 3 * 0x1234567890UL) FAIL("registers: x0/x1 reported");
	printf("ok x0:x1 and d0 returns kept across the return handler (which clobbers them); x0/x1 reported\n");
	unhook(hf, "r_fp");
	unhook(hp, "r_pair");

	/* a signed x30 is never replaced: on a BTI-guarded page paciasp runs before the hook; here the
	 * entry handler sees x30 signed by hand (pacia x30, sp as the modifier, as paciasp) */
	uintptr_t ra = (uintptr_t)__builtin_return_address(0), signed_ra;
	__asm__ volatile("mov x17, %1\n\tmov x16, sp\n\t.inst 0xdac10211 /* pacia x17, x16 */\n\tmov %0, x17" : "=r"(signed_ra) : "r"(ra) : "x16", "x17");
	struct wbpf_pt_regs regs;
	memset(&regs, 0, sizeof regs);
	regs.regs[30] = signed_ra;
	regs.sp = (uintptr_t)__builtin_frame_address(0);
	int rc = wbpf_hook_ret_arm(&regs, on_return, NULL);
	if (signed_ra != ra && (rc != -1 || regs.regs[30] != signed_ra)) FAIL("a signed return address was diverted");
	printf("ok a signed return address (PAC) is left alone: the call goes untraced (%s)\n",
	       signed_ra != ra ? "PAC on" : "no PAC here: nothing to check");
	(void)r_pac;
	printf("ret_test_arm64: OK\n");
	return 0;
}
