/* Pages near an address: a trampoline must be within branch reach of its function (x86-64: +-2 GiB,
 * jmp rel32 both ways and rip-relative operands re-based from it; arm64: +-128 MiB, b imm26), so mmap
 * is asked at hints stepping away from it. */
#define _GNU_SOURCE
#include <sys/mman.h>
#include "internal.h"

#ifndef MAP_FIXED_NOREPLACE
#define MAP_FIXED_NOREPLACE 0x100000
#endif

#define STEP (1UL << 20)
#if defined(__aarch64__)
#define REACH ((1UL << 27) - 2 * STEP)
#else
#define REACH ((1UL << 31) - 2 * STEP)
#endif

static int near(uintptr_t p, uintptr_t addr) { return p > addr ? p - addr < REACH : addr - p < REACH; }

uint8_t *wbpf_near_page(uintptr_t addr)
{
	uintptr_t base = addr & ~(uintptr_t)(STEP - 1);
	/* below first at each distance: above a non-PIE program's text lies its brk heap, which a page
	 * there would stop growing (malloc then falls back to mmap) */
	for (uintptr_t off = STEP; off < REACH; off += STEP) {
		uintptr_t cand[2] = { base > off + STEP ? base - off : 0, base + off };
		for (int i = 0; i < 2; i++) {
			if (!cand[i]) continue;
			void *q = mmap((void *)cand[i], WBPF_TRAMP_PAGE, PROT_READ | PROT_WRITE,
				       MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0);
			if (q == MAP_FAILED) continue;
			/* a kernel older than 4.17 takes the flag as a plain hint and may map elsewhere */
			if (near((uintptr_t)q, addr) && near((uintptr_t)q + WBPF_TRAMP_PAGE, addr)) return q;
			munmap(q, WBPF_TRAMP_PAGE);
		}
	}
	return NULL;
}
