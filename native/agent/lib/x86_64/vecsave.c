/* A hit's slow paths that need libc (a disabled hook's message through snprintf) run inside vec_guarded:
 * the thread's whole vector state saved (xsave of the CPU's x87/SSE/AVX/AVX-512 components, else fxsave)
 * and restored around them, since the trampolines save none (the hit path itself uses general registers). */
#include <cpuid.h>
#include <stdint.h>
#include <string.h>

#include "../agent.h"

#define AREA 4096 /* xsave's standard form of components 0-7 ends at 2688 (AVX-512's Hi16_ZMM) */

static uint64_t xmask;   /* the components saved */
static int how;          /* 0: not known yet, 1: xsave, 2: fxsave */

static int pick(void)
{
	unsigned a, b, c, d;
	int h = 2;
	uint64_t m = 0;
	if (__get_cpuid(1, &a, &b, &c, &d) && (c & bit_OSXSAVE)) {
		uint32_t lo, hi;
		__asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
		m = ((uint64_t)hi << 32 | lo) & 0xff; /* x87 SSE AVX MPX(2) AVX-512(3); never AMX */
		unsigned end = 576;
		for (unsigned i = 2; i < 8; i++)
			if ((m >> i) & 1 && __get_cpuid_count(0xd, i, &a, &b, &c, &d) && b + a > end) end = b + a;
		if (end <= AREA) h = 1;
	}
	xmask = m;
	__atomic_store_n(&how, h, __ATOMIC_RELEASE);
	return h;
}

__attribute__((noinline)) void vec_guarded(void (*fn)(void *), void *arg)
{
	uint8_t area[AREA] __attribute__((aligned(64)));
	int h = __atomic_load_n(&how, __ATOMIC_ACQUIRE);
	if (!h) h = pick();
	uint32_t lo = (uint32_t)xmask, hi = (uint32_t)(xmask >> 32);
	if (h == 1) {
		memset(area + 512, 0, 64); /* the xsave header: xrstor faults on stray bits there */
		__asm__ volatile("xsave64 %0" : "+m"(*(uint8_t(*)[AREA])area) : "a"(lo), "d"(hi));
	} else
		__asm__ volatile("fxsave64 %0" : "=m"(*(uint8_t(*)[512])area));
	fn(arg);
	if (h == 1)
		__asm__ volatile("xrstor64 %0" : : "m"(*(uint8_t(*)[AREA])area), "a"(lo), "d"(hi));
	else
		__asm__ volatile("fxrstor64 %0" : : "m"(*(uint8_t(*)[512])area));
}
