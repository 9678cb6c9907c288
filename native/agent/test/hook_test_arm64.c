/* Functional test of the arm64 inline hook: each entry kind of test/targets_arm64.S (and a C double
 * function) hooked, called (the handler sees the registers as struct user_pt_regs and clobbers the
 * caller-saved ones, q0-q7 and NZCV), unhooked; refusals leave the function untouched; the relocator's
 * far forms; threads calling while the main thread hooks and unhooks. Prints "ok ..." per check and
 * "hook_test_arm64: OK"; exits 1 at the first failure. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <libgen.h>
#include <limits.h>
#include <pthread.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>
#include "../hook/hook.h"
#include "../hook/arm64/a64.h"

/* the slots a uprobe program built with -D__TARGET_ARCH_arm64 reads (struct user_pt_regs) */
_Static_assert(offsetof(struct wbpf_pt_regs, regs[0]) == 0, "PT_REGS_PARM1");
_Static_assert(offsetof(struct wbpf_pt_regs, regs[7]) == 56, "PT_REGS_PARM8");
_Static_assert(offsetof(struct wbpf_pt_regs, regs[30]) == 240, "PT_REGS_RET");
_Static_assert(offsetof(struct wbpf_pt_regs, sp) == 248, "PT_REGS_SP");
_Static_assert(offsetof(struct wbpf_pt_regs, pc) == 256, "PT_REGS_IP");
_Static_assert(sizeof(struct wbpf_pt_regs) == 272, "struct user_pt_regs size");

typedef long (*lfn)(long, long);
long t_plain(long, long), t_frame(long, long), t_adrp(long, long), t_adr(long, long), t_ldrw(long, long);
long t_ldrx(long, long), t_ldrsw(long, long), t_ldrs(long, long), t_ldrq(long, long), t_prfm(long, long);
long t_b(long, long), t_bl_call(long, long), t_bl(long, long), t_bcond_call(long, long), t_bcond(long, long);
long t_cbz(long, long), t_tbnz(long, long), t_pac(long, long), t_bti(long, long), t_loop(long, long);
long t_svc_call(long, long), t_svc(long, long), t_brk(long, long), t_udf(long, long), t_ret_only(long, long);
double t_ldrd(double, double);
extern char __executable_start[], etext[];

#define FAIL(...) do { printf("FAIL "); printf(__VA_ARGS__); printf("\n"); exit(1); } while (0)

struct seen {
	int calls;
	struct wbpf_pt_regs r;
};
static struct seen seen;

static void handler(struct wbpf_pt_regs *r, void *cookie)
{
	struct seen *s = cookie;
	s->calls++;
	s->r = *r;
	/* what a handler may do: the trampoline must restore all of it */
	__asm__ volatile("movi v0.16b, #0xff\n\tmovi v1.16b, #0xff\n\tmovi v2.16b, #0xff\n\tmovi v3.16b, #0xff\n\t"
			 "movi v4.16b, #0xff\n\tmovi v5.16b, #0xff\n\tmovi v6.16b, #0xff\n\tmovi v7.16b, #0xff\n\t"
			 "mov x0, #-1\n\tmov x1, #-1\n\tmov x2, #-1\n\tmov x3, #-1\n\tmov x4, #-1\n\tmov x5, #-1\n\t"
			 "mov x6, #-1\n\tmov x7, #-1\n\tmov x8, #-1\n\tmov x9, #-1\n\tmov x10, #-1\n\tmov x11, #-1\n\t"
			 "mov x12, #-1\n\tmov x13, #-1\n\tmov x14, #-1\n\tmov x15, #-1\n\tmov x16, #-1\n\tmov x17, #-1\n\t"
			 "cmp x0, #0"
			 ::: "v0", "v1", "v2", "v3", "v4", "v5", "v6", "v7", "x0", "x1", "x2", "x3", "x4", "x5", "x6",
			 "x7", "x8", "x9", "x10", "x11", "x12", "x13", "x14", "x15", "x16", "x17", "cc");
}

static long m_plain(long a, long b) { return (int)(a * 9 + b + 1000); }
static long m_add(long a, long b) { return (int)(a + b); }
static long m_adrp(long a, long b) { return (int)(a + b + 1234); }
static long m_adr(long a, long b) { return (int)(a + b + 77); }
static long m_ldrw(long a, long b) { return (int)(a + b + 1000); }
static long m_ldrx(long a, long b) { return a + b + 0x100000000L; }
static long m_ldrsw(long a, long b) { return a + b - 5; }
static long m_ldrs(long a, long b) { return (int)(a + b + 0x40490fdb); }
static long m_ldrq(long a, long b) { return a + b + 42; }
static long m_bl(long a, long b) { return (int)(a + b + 100); }
static long m_bcond(long a, long b) { return (int)a < 0 ? (int)(b - a) : (int)(a + b); }
static long m_cbz(long a, long b) { return (int)a == 0 ? 77 : (int)(a + b); }
static long m_tbnz(long a, long b) { return (int)a < 0 ? (int)-a : (int)(a + b); }

struct kind {
	const char *name;
	lfn hooked;   /* the function hooked */
	lfn call;     /* what the test calls (a wrapper that branches to it, or itself) */
	lfn model;
	int x64;      /* the result is 64-bit (else w0: compared as int) */
};

static const struct kind kinds[] = {
	{ "plain (mov)", t_plain, t_plain, m_plain, 0 },
	{ "stp x29, x30 frame", t_frame, t_frame, m_add, 0 },
	{ "adrp", t_adrp, t_adrp, m_adrp, 0 },
	{ "adr", t_adr, t_adr, m_adr, 0 },
	{ "ldr w literal", t_ldrw, t_ldrw, m_ldrw, 0 },
	{ "ldr x literal", t_ldrx, t_ldrx, m_ldrx, 1 },
	{ "ldrsw literal", t_ldrsw, t_ldrsw, m_ldrsw, 1 },
	{ "ldr s literal", t_ldrs, t_ldrs, m_ldrs, 0 },
	{ "ldr q literal", t_ldrq, t_ldrq, m_ldrq, 1 },
	{ "prfm literal", t_prfm, t_prfm, m_add, 0 },
	{ "b (tail call)", t_b, t_b, m_add, 0 },
	{ "bl", t_bl, t_bl_call, m_bl, 0 },
	{ "b.lt", t_bcond, t_bcond_call, m_bcond, 0 },
	{ "cbz", t_cbz, t_cbz, m_cbz, 0 },
	{ "tbnz", t_tbnz, t_tbnz, m_tbnz, 0 },
	{ "paciasp", t_pac, t_pac, m_add, 0 },
	{ "bti c", t_bti, t_bti, m_add, 0 },
	{ "ret only", t_ret_only, t_ret_only, NULL, 0 },
};

static const long args[][2] = { { 3, 4 }, { 0, 9 }, { -7, 2 }, { 100000, -3 } };

static void hook(void *fn, struct wbpf_hook **h)
{
	struct wbpf_hook_error err;
	if (wbpf_hook_attach(fn, handler, &seen, h, &err))
		FAIL("attach %p: %s: %s", fn, wbpf_hook_code_name(err.code), err.reason);
}

static void unhook(struct wbpf_hook *h)
{
	struct wbpf_hook_error err;
	if (wbpf_hook_detach(h, &err)) FAIL("detach: %s: %s", wbpf_hook_code_name(err.code), err.reason);
}

static int in_text(uint64_t a) { return a >= (uintptr_t)__executable_start && a < (uintptr_t)etext; }

static void check_kind(const struct kind *k)
{
	lfn volatile call = k->call;
	uint32_t before;
	memcpy(&before, (void *)k->hooked, 4);
	struct wbpf_hook *h;
	hook((void *)k->hooked, &h);
	for (size_t i = 0; i < sizeof args / sizeof args[0]; i++) {
		long a = args[i][0], b = args[i][1];
		memset(&seen, 0, sizeof seen);
		long got = call(a, b);
		if (!k->x64) got = (int)got;
		if (k->model && got != k->model(a, b)) FAIL("%s(%ld, %ld) hooked = %ld, want %ld", k->name, a, b, got, k->model(a, b));
		if (seen.calls != 1) FAIL("%s: %d handler calls, want 1", k->name, seen.calls);
		if ((long)seen.r.regs[0] != a || (long)seen.r.regs[1] != b)
			FAIL("%s: PARM1/2 = %ld, %ld, want %ld, %ld", k->name, (long)seen.r.regs[0], (long)seen.r.regs[1], a, b);
		if (seen.r.pc != (uintptr_t)k->hooked) FAIL("%s: pc %#lx, want %p", k->name, (unsigned long)seen.r.pc, (void *)k->hooked);
		if (seen.r.sp & 15) FAIL("%s: sp %#lx is not the entry's (16-byte aligned)", k->name, (unsigned long)seen.r.sp);
		if (!in_text(seen.r.regs[30])) FAIL("%s: x30 %#lx is not a return address in the test", k->name, (unsigned long)seen.r.regs[30]);
	}
	unhook(h);
	uint32_t after;
	memcpy(&after, (void *)k->hooked, 4);
	if (after != before) FAIL("%s: entry %08x after detach, was %08x", k->name, after, before);
	memset(&seen, 0, sizeof seen);
	long got = call(5, 6);
	if (!k->x64) got = (int)got;
	if (k->model && got != k->model(5, 6)) FAIL("%s after detach", k->name);
	if (seen.calls) FAIL("%s: handler ran after detach", k->name);
	printf("ok %s\n", k->name);
}

/* the entry's sp, x29 and the caller's registers, seen from a caller that knows them */
static void check_regs(void)
{
	struct wbpf_hook *h;
	hook((void *)t_plain, &h);
	memset(&seen, 0, sizeof seen);
	uint64_t sp_at, x19_after, nzcv_after;
	long r;
	/* x19 (callee-saved) and NZCV across the hooked call; sp at the call = sp at the entry */
	__asm__ volatile("mov x0, #3\n\tmov x1, #4\n\tmov x19, #0x5a5a\n\tmov %[sp], sp\n\t"
			 "msr nzcv, %[z]\n\t"
			 "blr %[f]\n\t"
			 "mov %[r], x0\n\tmov %[x19], x19\n\tmrs %[n], nzcv"
			 : [sp] "=&r"(sp_at), [r] "=&r"(r), [x19] "=&r"(x19_after), [n] "=&r"(nzcv_after)
			 : [f] "r"(t_plain), [z] "r"((uint64_t)0x60000000)
			 : "x0", "x1", "x2", "x3", "x4", "x5", "x6", "x7", "x8", "x9", "x10", "x11", "x12", "x13",
			   "x14", "x15", "x16", "x17", "x19", "x30", "v0", "v1", "v2", "v3", "v4", "v5", "v6", "v7",
			   "v16", "v17", "v18", "v19", "v20", "v21", "v22", "v23", "v24", "v25", "v26", "v27",
			   "v28", "v29", "v30", "v31", "cc", "memory");
	unhook(h);
	if ((int)r != m_plain(3, 4)) FAIL("regs: result %ld", r);
	if (seen.r.sp != sp_at) FAIL("regs: sp %#lx, want %#lx", (unsigned long)seen.r.sp, (unsigned long)sp_at);
	if (seen.r.regs[19] != 0x5a5a || x19_after != 0x5a5a) FAIL("regs: x19 %#lx / %#lx", (unsigned long)seen.r.regs[19], (unsigned long)x19_after);
	if ((seen.r.pstate >> 28) != 6) FAIL("regs: pstate %#lx, want NZCV 0110", (unsigned long)seen.r.pstate);
	printf("ok regs: sp, x19, NZCV at the entry and after\n");
}

static void check_fp(void)
{
	double (*volatile f)(double, double) = t_ldrd;
	struct wbpf_hook *h;
	hook((void *)t_ldrd, &h);
	memset(&seen, 0, sizeof seen);
	double got = f(3.0, 2.5);
	unhook(h);
	if (got != 8.0) FAIL("ldr d literal: %f, want 8.0 (q0-q7 restored?)", got);
	if (seen.calls != 1) FAIL("ldr d literal: %d calls", seen.calls);
	printf("ok ldr d literal, FP arguments kept\n");
}

static void check_svc(void)
{
	lfn volatile f = t_svc_call;
	struct wbpf_hook *h;
	hook((void *)t_svc, &h);
	memset(&seen, 0, sizeof seen);
	long got = f(0, 0);
	unhook(h);
	if ((int)got != getpid() || seen.calls != 1) FAIL("svc: %ld (pid %d), %d calls", got, (int)getpid(), seen.calls);
	if (seen.r.regs[8] != 172) FAIL("svc: x8 %lu", (unsigned long)seen.r.regs[8]);
	printf("ok svc\n");
}

/* a loop whose head is the entry: every pass runs the probe, as a kernel uprobe at that address does */
static void check_loop(void)
{
	lfn volatile f = t_loop;
	struct wbpf_hook *h;
	hook((void *)t_loop, &h);
	memset(&seen, 0, sizeof seen);
	long got = f(2, 10);
	unhook(h);
	if ((int)got != 10 || seen.calls != 8) FAIL("loop: %ld, %d hits, want 10, 8", got, seen.calls);
	printf("ok a branch back to the entry hits again\n");
}

static void check_refused(void *fn, int code, const char *what)
{
	uint32_t before, after;
	memcpy(&before, fn, 4);
	struct wbpf_hook *h;
	struct wbpf_hook_error err;
	int rc = wbpf_hook_attach(fn, handler, &seen, &h, &err);
	memcpy(&after, fn, 4);
	if (rc != code) FAIL("%s: %s (%s), want %s", what, wbpf_hook_code_name(rc), err.reason, wbpf_hook_code_name(code));
	if (before != after) FAIL("%s: entry changed by a refused attach", what);
	printf("ok refused %s: %s\n", what, err.reason);
}

/* the relocator's far forms (target out of +-128 MiB of the trampoline), read back word by word */
static void check_far(void)
{
	char why[120];
	uint32_t out[16];
	uintptr_t pc = 0x400000, far = pc + (1UL << 32);
	/* b +8 from pc, relocated 4 GiB away: ldr x16, .+8; br x16; .quad pc + 8 */
	int n = a64_relocate(0x14000002u, pc, out, 16, far, why, sizeof why);
	if (n != 4 || out[0] != 0x58000050u || out[1] != 0xd61f0200u || out[2] != pc + 8 || out[3] != 0)
		FAIL("far b: %d words %08x %08x %08x %08x", n, out[0], out[1], out[2], out[3]);
	/* b.eq +8: b.ne over the far block */
	n = a64_relocate(0x54000040u, pc, out, 16, far, why, sizeof why);
	if (n != 5 || out[0] != 0x540000a1u || out[1] != 0x58000050u || out[3] != pc + 8)
		FAIL("far b.eq: %d words %08x %08x", n, out[0], out[1]);
	/* cbz x3, +8 -> cbnz x3, +20; far block */
	n = a64_relocate(0xb4000043u, pc, out, 16, far, why, sizeof why);
	if (n != 5 || out[0] != 0xb50000a3u) FAIL("far cbz: %d words %08x", n, out[0]);
	/* tbz w3, #2, +8 -> tbnz w3, #2, +20 */
	n = a64_relocate(0x36100043u, pc, out, 16, far, why, sizeof why);
	if (n != 5 || out[0] != 0x371000a3u) FAIL("far tbz: %d words %08x", n, out[0]);
	/* bl +8: x30 = pc + 4 (movz/movk), then the far block */
	n = a64_relocate(0x94000002u, pc, out, 16, far, why, sizeof why);
	if (n != 8 || out[0] != (0xd2800000u | ((pc + 4) & 0xffff) << 5 | 30) || out[4] != 0x58000050u)
		FAIL("far bl: %d words %08x", n, out[0]);
	/* adrp x2, +0x1000 pages -> movz/movk x2, (pc & ~0xfff) + 0x1000 */
	n = a64_relocate(0x90000002u | (1u << 29), pc + 0x123, out, 16, far, why, sizeof why);
	if (n != 4 || out[0] != (0xd2800000u | (((pc + 0x1000) & 0xffff) << 5) | 2) || out[1] != (0xf2a00000u | (((pc + 0x1000) >> 16) << 5) | 2))
		FAIL("adrp: %d words %08x %08x", n, out[0], out[1]);
	if (a64_relocate(0xd4200000u, pc, out, 16, far, why, sizeof why) != -1 || !strstr(why, "brk"))
		FAIL("brk not refused");
	if (a64_relocate(0xd65f03c0u, pc, out, 16, far, why, sizeof why) != 1 || out[0] != 0xd65f03c0u) FAIL("ret");
	printf("ok far branches, adrp, refusals (relocator)\n");
}

/* landing pads on a BTI-guarded page (libbti_targets.so next to the test): they stay, the b replaces the
 * next instruction, and an indirect call (which must land on a landing pad) still works hooked */
static int guarded(uintptr_t addr)
{
	FILE *f = fopen("/proc/self/smaps", "re");
	char line[512];
	unsigned long lo, hi;
	int in = 0, g = 0;
	while (f && fgets(line, sizeof line, f)) {
		if (sscanf(line, "%lx-%lx ", &lo, &hi) == 2 && strchr(line, '-') < strchr(line, ' ')) in = addr >= lo && addr < hi;
		else if (in && !strncmp(line, "VmFlags:", 8)) { g = strstr(line, " bt") != NULL; break; }
	}
	if (f) fclose(f);
	return g;
}

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
		hook((void *)f, &h);
		int replaced = wbpf_hook_replaced_len(h);
		memset(&seen, 0, sizeof seen);
		lfn volatile call = f; /* blr: an indirect call, which a guarded page checks */
		long got = (int)call(20, 22);
		unhook(h);
		if (got != 42 + fns[i].add || seen.calls != 1 || seen.r.pc != (uintptr_t)f || seen.r.regs[0] != 20)
			FAIL("%s on a %sguarded page: %ld, %d calls, pc %#lx", fns[i].name, g ? "" : "not ", got, seen.calls,
			     (unsigned long)seen.r.pc);
		if (replaced != (g ? 8 : 4)) FAIL("%s: %d bytes replaced, want %d", fns[i].name, replaced, g ? 8 : 4);
		if (guarded((uintptr_t)f) != g) FAIL("%s: the page's BTI guard changed by the patch", fns[i].name);
	}
	/* the guest's qemu cpu (max) and kernel have BTI: the loader must have guarded the library */
	if (!g && getenv("WBPF_EXPECT_BTI")) FAIL("libbti_targets.so is not BTI-guarded (VmFlags without bt)");
	printf("ok landing pads (bti c, paciasp) on a %s page\n", g ? "BTI-guarded" : "not guarded");
}

/* threads call t_frame while the main thread hooks and unhooks it: every result right, the handler's
 * arguments right, hits seen */
static volatile int stop;
static long wrong, wrong_args, hits;
static __thread long my_a;

static void stress_handler(struct wbpf_pt_regs *r, void *cookie)
{
	(void)cookie;
	if ((long)r->regs[0] != my_a) __atomic_fetch_add(&wrong_args, 1, __ATOMIC_RELAXED);
	__atomic_fetch_add(&hits, 1, __ATOMIC_RELAXED);
}

static void *worker(void *arg)
{
	lfn volatile f = t_frame;
	long base = (long)(intptr_t)arg * 1000000;
	for (long i = 0; !stop; i++) {
		my_a = base + (i & 0xffff);
		if ((int)f(my_a, 3) != (int)(my_a + 3)) __atomic_fetch_add(&wrong, 1, __ATOMIC_RELAXED);
	}
	return NULL;
}

static void check_stress(int cycles, int nthreads)
{
	pthread_t th[16];
	for (int i = 0; i < nthreads; i++) pthread_create(&th[i], NULL, worker, (void *)(intptr_t)(i + 1));
	for (int c = 0; c < cycles; c++) {
		struct wbpf_hook *h;
		struct wbpf_hook_error err;
		if (wbpf_hook_attach((void *)t_frame, stress_handler, NULL, &h, &err))
			FAIL("stress attach %d: %s", c, err.reason);
		usleep(200);
		if (wbpf_hook_detach(h, &err)) FAIL("stress detach %d: %s", c, err.reason);
	}
	stop = 1;
	for (int i = 0; i < nthreads; i++) pthread_join(th[i], NULL);
	if (wrong || wrong_args) FAIL("stress: %ld wrong results, %ld wrong arguments", wrong, wrong_args);
	if (!hits) FAIL("stress: no hit in %d cycles", cycles);
	printf("ok stress: %d attach/detach cycles under %d calling threads, %ld hits\n", cycles, nthreads, hits);
}

int main(int argc, char **argv)
{
	setvbuf(stdout, NULL, _IOLBF, 0);
	for (size_t i = 0; i < sizeof kinds / sizeof kinds[0]; i++) check_kind(&kinds[i]);
	check_regs();
	check_fp();
	check_svc();
	check_loop();
	check_refused((void *)t_brk, WBPF_HOOK_EDECODE, "brk at the entry");
	check_refused((void *)t_udf, WBPF_HOOK_EDECODE, "unallocated instruction");
	check_refused((void *)((uintptr_t)t_plain + 2), WBPF_HOOK_EINVAL, "unaligned address");
	check_far();
	check_bti();
	check_stress(argc > 1 ? atoi(argv[1]) : 200, argc > 2 ? atoi(argv[2]) : 3);
	printf("hook_test_arm64: OK (sync: %s)\n", wbpf_hook_sync_method());
	return 0;
}
