/* arm64 return stubs: the code of a page of them (the pool is hook/ret_stubs.c; a stub is put in x30
 * through the entry trampoline's saved regs[30]), the PAC and GCS checks that keep a return from being
 * diverted, and the call from the return code (ret_tramp.S) that reports the return. */
#define _GNU_SOURCE
#include <errno.h>
#include <string.h>
#include <sys/prctl.h>
#include <unistd.h>
#include "a64.h"

extern const uint8_t wbpf_a64_ret_common[];
uintptr_t wbpf_a64_ret_entered(struct wbpf_pt_regs *regs, uint64_t k);

/* A page: +0 the address of wbpf_a64_ret_common; +16*j (j = 1..255) stub k = first + j - 1:
 * `movz x16, #k`, `ldr x17, <+0 of the page>`, `br x17`, `brk #0`; udf #0 elsewhere */
void wbpf_arch_ret_page_write(uint8_t *pg, uint32_t first)
{
	uint64_t common = (uint64_t)(uintptr_t)wbpf_a64_ret_common;
	memcpy(pg, &common, 8);
	memset(pg + 8, 0, WBPF_RET_PAGE - 8); /* udf #0 */
	for (int j = 1; j <= WBPF_RET_PER_PAGE; j++) {
		uint32_t *w = (uint32_t *)(pg + WBPF_RET_STUB * j);
		uint32_t k = first + (uint32_t)(j - 1);
		int32_t lit = -(WBPF_RET_STUB * j + 4) / 4; /* from the ldr to +0 of the page */
		w[0] = 0xd2800000u | (k << 5) | 16;                      /* movz x16, #k */
		w[1] = 0x58000000u | (((uint32_t)lit & 0x7ffff) << 5) | 17; /* ldr x17, page+0 */
		w[2] = 0xd61f0220u;                                      /* br x17 */
		w[3] = 0xd4200000u;                                      /* brk #0 */
	}
	__builtin___clear_cache((char *)pg, (char *)pg + WBPF_RET_PAGE);
}

/* the address without a pointer authentication code (xpaclri: a nop on a core without PAC) */
static uintptr_t strip_pac(uintptr_t p)
{
	register uintptr_t x30 __asm__("x30") = p;
	__asm__("hint #7" : "+r"(x30));
	return x30;
}

/* a signed return address (the entry's paciasp ran before the hook: a landing pad kept on a BTI-guarded
 * page) would fail its autiasp if replaced: that call goes untraced */
int wbpf_arch_ret_divertable(uintptr_t orig) { return strip_pac(orig) == orig; }

/* PR_GET_SHADOW_STACK_STATUS (Linux 6.13+, arm64 GCS): a thread with a guarded control stack would
 * fault on a rewritten return address; older kernels answer EINVAL */
int wbpf_arch_ret_blocked(void)
{
	unsigned long status = 0;
	int saved_errno = errno;
	int rc = prctl(74 /* PR_GET_SHADOW_STACK_STATUS */, &status, 0, 0, 0);
	errno = saved_errno;
	return rc == 0 && (status & 1);
}

/* called by wbpf_a64_ret_common (ret_tramp.S) with the stub's number; returns where to go */
uintptr_t wbpf_a64_ret_entered(struct wbpf_pt_regs *regs, uint64_t k)
{
	uintptr_t orig = wbpf_ret_stub_orig(k);
	regs->pc = orig;
	regs->regs[30] = orig;
	wbpf_ret_fire(regs, (uintptr_t)regs->sp, orig);
	return orig;
}
