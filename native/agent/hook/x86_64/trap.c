/* x86-64 trap tier, for an entry the relocator refuses: an int3 on the function's first byte; at a hit
 * poke.c's SIGTRAP handler calls wbpf_x86_trap_hit, which builds pt_regs from the signal's context, runs
 * the hook's handler, and resumes at the first instruction's relocated copy (then a jump back). */
#define _GNU_SOURCE
#include <errno.h>
#include <signal.h>
#include <string.h>
#include <ucontext.h>
#include "x86.h"

uint64_t wbpf_x86_trap_hits;

int wbpf_arch_trap_build(struct wbpf_tramp *t, uint8_t *page, uintptr_t fn, size_t fn_size, size_t readable,
			 wbpf_hook_handler handler, void *cookie, struct wbpf_hook_error *err)
{
	/* one instruction (min_len 1): no branch can target inside the one byte replaced */
	int n = x86_relocate((const uint8_t *)fn, fn_size, readable, 1, page, WBPF_TRAMP_PAGE, (uintptr_t)page, t, err);
	if (n < 0) return -n;
	wbpf_trap_fill(t, page, 1, handler, cookie);
	return 0;
}

int wbpf_arch_trap_in(struct wbpf_site *s, struct wbpf_tramp *t, struct wbpf_hook_error *err)
{
	int rc = wbpf_x86_signals_init(err);
	if (rc) return rc;
	struct wbpf_text tx;
	if ((rc = wbpf_text_open(&tx, s->fn, 1, err))) return rc;
	const uint8_t int3 = 0xcc;
	__atomic_store_n(&s->trap, t, __ATOMIC_SEQ_CST);
	wbpf_text_store(s->fn, &int3, 1); /* one byte: a thread runs either the old instruction or the int3 */
	wbpf_sync_cores();
	wbpf_text_close(&tx);
	return 0;
}

int wbpf_arch_trap_out(struct wbpf_site *s, struct wbpf_tramp *t, struct wbpf_hook_error *err)
{
	(void)t;
	struct wbpf_text tx;
	int rc = wbpf_text_open(&tx, s->fn, 1, err);
	if (rc) return rc;
	wbpf_text_store(s->fn, s->orig_bytes, 1);
	wbpf_sync_cores();
	/* after the byte: a thread that trapped before and finds no record sees the byte gone and re-runs it */
	__atomic_store_n(&s->trap, NULL, __ATOMIC_SEQ_CST);
	wbpf_text_close(&tx);
	return 0;
}

/* async-signal-safe; runs on whatever stack the signal came on, in any thread */
int wbpf_x86_trap_hit(struct wbpf_site *s, uintptr_t fn, void *ucv)
{
	struct wbpf_tramp *t = __atomic_load_n(&s->trap, __ATOMIC_ACQUIRE);
	if (!t) return 0;
	ucontext_t *uc = ucv;
	greg_t *g = uc->uc_mcontext.gregs;
	struct wbpf_pt_regs r = {
		.r15 = (uint64_t)g[REG_R15], .r14 = (uint64_t)g[REG_R14], .r13 = (uint64_t)g[REG_R13],
		.r12 = (uint64_t)g[REG_R12], .rbp = (uint64_t)g[REG_RBP], .rbx = (uint64_t)g[REG_RBX],
		.r11 = (uint64_t)g[REG_R11], .r10 = (uint64_t)g[REG_R10], .r9 = (uint64_t)g[REG_R9],
		.r8 = (uint64_t)g[REG_R8], .rax = (uint64_t)g[REG_RAX], .rcx = (uint64_t)g[REG_RCX],
		.rdx = (uint64_t)g[REG_RDX], .rsi = (uint64_t)g[REG_RSI], .rdi = (uint64_t)g[REG_RDI],
		.orig_rax = (uint64_t)-1, .rip = fn, .cs = 0x33, .eflags = (uint64_t)g[REG_EFL],
		.rsp = (uint64_t)g[REG_RSP], .ss = 0x2b,
	};
	int saved_errno = errno;
	t->handler(&r, t->cookie);
	errno = saved_errno;
	/* the registers are the context's own (the handler saw a copy); go on with the first instruction */
	g[REG_RIP] = (greg_t)t->orig;
	__atomic_fetch_add(&wbpf_x86_trap_hits, 1, __ATOMIC_RELAXED);
	return 1;
}
