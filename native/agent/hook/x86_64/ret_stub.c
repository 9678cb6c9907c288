/* x86-64 return stubs: the code of a page of them (the pool is hook/ret_stubs.c), the CET shadow-stack
 * check, and the call from the return code (ret_tramp.S) that reports the return. */
#define _GNU_SOURCE
#include <errno.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>
#include "x86.h"

extern const uint8_t wbpf_x86_ret_common[], wbpf_x86_ret_common_gp[]; /* _gp: no xmm saves */
uintptr_t wbpf_x86_ret_entered(struct wbpf_pt_regs *regs, uint64_t k);

/* A page: +0 the address of wbpf_x86_ret_common (_gp once wbpf_hook_set_vector_free); +16*j (j = 1..255) stub k = first + j - 1: `push $k`
 * (68 imm32), `jmp *-(16j+11)(%rip)` (ff 25, the page's first quad), int3 padding. No call: the return
 * stack buffer stays balanced, and the common code leaves with an indirect jmp the predictor learns. */
void wbpf_arch_ret_page_write(uint8_t *pg, uint32_t first)
{
	int gp = __atomic_load_n(&wbpf_hook_vector_free, __ATOMIC_RELAXED);
	uint64_t common = (uint64_t)(uintptr_t)(gp ? wbpf_x86_ret_common_gp : wbpf_x86_ret_common);
	memcpy(pg, &common, 8);
	memset(pg + 8, 0xcc, WBPF_RET_PAGE - 8);
	for (int j = 1; j <= WBPF_RET_PER_PAGE; j++) {
		uint8_t *sp = pg + WBPF_RET_STUB * j;
		uint32_t k = first + (uint32_t)(j - 1);
		int32_t disp = -(WBPF_RET_STUB * j + 11);
		sp[0] = 0x68;
		memcpy(sp + 1, &k, 4);
		sp[5] = 0xff;
		sp[6] = 0x25;
		memcpy(sp + 7, &disp, 4);
	}
}

int wbpf_arch_ret_divertable(uintptr_t orig)
{
	(void)orig;
	return 1;
}

/* ARCH_SHSTK_STATUS (Linux 6.6+): a thread with a user shadow stack would fault on a rewritten
 * return address; kernels without it answer EINVAL */
int wbpf_arch_ret_blocked(void)
{
	unsigned long features = 0;
	int saved_errno = errno;
	long rc = syscall(SYS_arch_prctl, 0x5005L, &features);
	errno = saved_errno;
	return rc == 0 && (features & 1);
}

/* called by wbpf_x86_ret_common (ret_tramp.S) with the number the stub pushed; returns where to go */
uintptr_t wbpf_x86_ret_entered(struct wbpf_pt_regs *regs, uint64_t k)
{
	uintptr_t orig = wbpf_ret_stub_orig(k);
	regs->rip = orig;
	wbpf_ret_fire(regs, (uintptr_t)regs->rsp - 8, orig);
	return orig;
}
