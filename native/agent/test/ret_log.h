/* What the return-probe tests (ret_test.c, ret_cxx.cc) share: an entry handler that records the call
 * and arms its return, a return handler that records it (and clobbers what a handler may), both into
 * a per-thread log; hooking by symbol (its st_size); FAIL. C and C++. */
#pragma once
#include <dlfcn.h>
#include <link.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#ifdef __cplusplus
extern "C" {
#endif
#include "../hook/hook.h"
#ifdef __cplusplus
}
#endif

#define FAIL(...) do { printf("FAIL "); printf(__VA_ARGS__); printf("\n"); exit(1); } while (0)

#define LOG_MAX 1024
struct ev {
	char kind;          /* 'E' entry, 'R' return */
	void *cookie;
	int64_t val;        /* E: PARM1 (rdi, x0); R: the return value (rax, x0) */
	uint64_t rdx;       /* R: the second return register (rdx, x1) */
	uint64_t rsp;       /* E: the entry's rsp (sp); R: the rsp (sp) after the return */
	uint64_t rip;       /* E: the return address at the entry (at rsp, x30); R: PT_REGS_IP (the real return address) */
};
struct log {
	long entries, returns, arm_failed;
	int n;              /* events kept (the first LOG_MAX) */
	struct ev ev[LOG_MAX];
};
static __thread struct log lg;

static void log_reset(void) { memset(&lg, 0, sizeof lg); }

static void log_add(char kind, void *cookie, int64_t val, uint64_t rdx, uint64_t rsp, uint64_t rip)
{
	if (lg.n < LOG_MAX) {
		struct ev *e = &lg.ev[lg.n++];
		e->kind = kind;
		e->cookie = cookie;
		e->val = val;
		e->rdx = rdx;
		e->rsp = rsp;
		e->rip = rip;
	}
}

/* the registers the log reads, per arch: PARM1, the return value pair, the stack pointer, PT_REGS_IP,
 * and the return address at the entry (x86-64: at rsp; arm64: x30); then what a handler may clobber */
#if defined(__x86_64__)
#define R_P1(r) ((int64_t)(r)->rdi)
#define R_RC(r) ((int64_t)(r)->rax)
#define R_RC2(r) ((r)->rdx)
#define R_SP(r) ((r)->rsp)
#define R_IP(r) ((r)->rip)
#define R_RA(r) (*(uint64_t *)(r)->rsp)
#define CLOBBER()                                                                                               \
	__asm__ volatile("xorps %%xmm0, %%xmm0\n\txorps %%xmm1, %%xmm1\n\txorps %%xmm2, %%xmm2\n\t"                 \
			 "xorps %%xmm8, %%xmm8\n\txorps %%xmm15, %%xmm15\n\t"                                           \
			 "mov $-1, %%rax\n\tmov $-1, %%rcx\n\tmov $-1, %%rdx\n\tmov $-1, %%rsi\n\tmov $-1, %%rdi\n\t"     \
			 "mov $-1, %%r8\n\tmov $-1, %%r9\n\tmov $-1, %%r10\n\tmov $-1, %%r11\n\tcmp %%rax, %%rcx\n\tstd\n\tcld" \
			 ::: "xmm0", "xmm1", "xmm2", "xmm8", "xmm15", "rax", "rcx", "rdx", "rsi", "rdi", "r8", "r9",   \
			 "r10", "r11", "cc")
#elif defined(__aarch64__)
#define R_P1(r) ((int64_t)(r)->regs[0])
#define R_RC(r) ((int64_t)(r)->regs[0])
#define R_RC2(r) ((r)->regs[1])
#define R_SP(r) ((r)->sp)
#define R_IP(r) ((r)->pc)
#define R_RA(r) ((r)->regs[30])
#define CLOBBER()                                                                                               \
	__asm__ volatile("movi v0.16b, #0xff\n\tmovi v1.16b, #0xff\n\tmovi v2.16b, #0xff\n\tmovi v3.16b, #0xff\n\t"  \
			 "mov x0, #-1\n\tmov x1, #-1\n\tmov x2, #-1\n\tmov x3, #-1\n\tmov x8, #-1\n\tmov x9, #-1\n\t"    \
			 "mov x15, #-1\n\tmov x16, #-1\n\tmov x17, #-1\n\tcmp x0, #0"                                   \
			 ::: "v0", "v1", "v2", "v3", "x0", "x1", "x2", "x3", "x8", "x9", "x15", "x16", "x17", "cc")
#endif

static void on_return(struct wbpf_pt_regs *r, void *cookie)
{
	lg.returns++;
	log_add('R', cookie, R_RC(r), R_RC2(r), R_SP(r), R_IP(r));
	/* what a handler may do: the return code must give the caller back what the function left */
	CLOBBER();
}

/* how on_entry arms: wbpf_hook_ret_arm, or wbpf_hook_ret_arm_ro (on_return writes nothing in r) */
static int (*ret_arm_fn)(const struct wbpf_pt_regs *, wbpf_hook_handler, void *) = wbpf_hook_ret_arm;

static void on_entry(struct wbpf_pt_regs *r, void *cookie)
{
	lg.entries++;
	log_add('E', cookie, R_P1(r), 0, R_SP(r), R_RA(r));
	if (ret_arm_fn(r, on_return, cookie)) lg.arm_failed++;
}

/* arms twice with cookies 1 and 2: the return is reported twice, last armed first */
__attribute__((unused)) static void on_entry_twice(struct wbpf_pt_regs *r, void *cookie)
{
	(void)cookie;
	lg.entries++;
	log_add('E', (void *)1, R_P1(r), 0, R_SP(r), R_RA(r));
	if (wbpf_hook_ret_arm(r, on_return, (void *)1)) lg.arm_failed++;
	if (wbpf_hook_ret_arm(r, on_return, (void *)2)) lg.arm_failed++;
}

static size_t sym_size(void *fn)
{
	Dl_info info;
	const ElfW(Sym) *sym = NULL;
	if (!dladdr1(fn, &info, (void **)&sym, RTLD_DL_SYMENT) || !sym || info.dli_saddr != fn || !sym->st_size)
		FAIL("no symbol size for %p", fn);
	return sym->st_size;
}

static struct wbpf_hook *hook(void *fn, const char *name, wbpf_hook_handler h)
{
	struct wbpf_hook *out;
	struct wbpf_hook_error e;
	if (wbpf_hook_attach_sized(fn, sym_size(fn), h, NULL, &out, &e))
		FAIL("%s: attach: %s: %s", name, wbpf_hook_code_name(e.code), e.reason);
	return out;
}

static void unhook(struct wbpf_hook *h, const char *name)
{
	struct wbpf_hook_error e;
	if (wbpf_hook_detach(h, &e)) FAIL("%s: detach: %s", name, e.reason);
}
