/* The agent's own memcpy, memmove, memset, memcmp, memchr, strlen, strnlen and strrchr, hidden in libwbpf_agent.so: the
 * compiler's and our calls bind here (not to libc's AVX variants), so a hit touches no vector register
 * and the trampolines need not save any (README "A vector-free hit path"). General registers only; x86-64 only. */
#include <stddef.h>
#include <stdint.h>

#define HIDDEN __attribute__((visibility("hidden")))

#if defined(__x86_64__) /* arm64: the agent keeps libc's (its trampolines save q0-q7) */

HIDDEN void *memcpy(void *restrict d, const void *restrict s, size_t n)
{
	void *r = d;
	__asm__ volatile("rep movsb" : "+D"(d), "+S"(s), "+c"(n) : : "memory");
	return r;
}

HIDDEN void *memmove(void *d, const void *s, size_t n)
{
	unsigned char *dp = d;
	const unsigned char *sp = s;
	if (dp == sp || n == 0) return d;
	if ((uintptr_t)dp - (uintptr_t)sp >= n) return memcpy(d, s, n); /* no overlap with d after s */
	/* backwards: std; rep movsb from the last byte; cld (the ABI's DF) */
	const void *se = sp + n - 1;
	void *de = dp + n - 1;
	__asm__ volatile("std\n\trep movsb\n\tcld" : "+D"(de), "+S"(se), "+c"(n) : : "memory");
	return d;
}

HIDDEN void *memset(void *d, int c, size_t n)
{
	void *r = d;
	__asm__ volatile("rep stosb" : "+D"(d), "+c"(n) : "a"(c) : "memory");
	return r;
}

HIDDEN int memcmp(const void *a, const void *b, size_t n)
{
	const unsigned char *x = a, *y = b;
	for (; n; n--, x++, y++)
		if (*x != *y) return *x < *y ? -1 : 1;
	return 0;
}

HIDDEN size_t strlen(const char *s)
{
	const char *p = s;
	while (*p) p++;
	return (size_t)(p - s);
}

HIDDEN size_t strnlen(const char *s, size_t max)
{
	size_t n = 0;
	while (n < max && s[n]) n++;
	return n;
}

HIDDEN void *memchr(const void *s, int c, size_t n)
{
	const unsigned char *p = s;
	for (; n; n--, p++)
		if (*p == (unsigned char)c) return (void *)p;
	return NULL;
}

HIDDEN char *strrchr(const char *s, int c)
{
	const char *last = NULL;
	for (;; s++) {
		if (*s == (char)c) last = s;
		if (!*s) return (char *)last;
	}
}

#endif
