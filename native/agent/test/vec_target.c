/* The vector-free hit path's target (test/agent-vector-free.test.ts), built gcc -O2 -mavx2 -fipa-ra: per byte
 * on stdin, N calls (argv[1]) of probed(__m256d a, double s, __m256d b, long i) = a*s + b from three callers:
 * a C loop keeping __m256d values and a double live across the call (-fipa-ra: in registers probed leaves
 * alone), an asm caller with known 256-bit patterns in ymm3-15 across the call, and (AVX-512F) one with
 * patterns in zmm3-31; then "round R: calls C bad B" (B: results or kept registers that changed).
 * argv[2] "selftest": the asm callers call clobber() instead, which changes a kept register (B must be > 0).
 * probed starts with 5 one-byte nops (patchable_function_entry: no -pg, which turns -fipa-ra off for it). */
#include <immintrin.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

__attribute__((noinline, patchable_function_entry(5, 0))) __m256d probed(__m256d a, double s, __m256d b, long i)
{
	__asm__ volatile("" ::"r"(i) : "memory");
	return _mm256_add_pd(_mm256_mul_pd(a, _mm256_set1_pd(s)), b);
}

/* what a hit path using libc's AVX code would do: ymm9's upper half and zmm20 changed */
__attribute__((noinline, target("avx512f"))) void clobber(void)
{
	__asm__ volatile("vpxor %%xmm9, %%xmm9, %%xmm9" ::: "xmm9");
	if (__builtin_cpu_supports("avx512f")) __asm__ volatile("vpxorq %%zmm20, %%zmm20, %%zmm20" ::: "xmm20");
}

static int selftest;
static long calls, bad;

static void expect(__m256d r, const double a[4], double s, const double b[4])
{
	double got[4];
	_mm256_storeu_pd(got, r);
	calls++;
	for (int k = 0; k < 4; k++)
		if (got[k] != a[k] * s + b[k]) {
			bad++;
			return;
		}
}

/* the compiler's own: v0..v7, acc and d live across each call, in registers probed leaves alone (-fipa-ra
 * knows it changes ymm0 and ymm1 only); checked after the loop (small integers and halves: sums exact) */
__attribute__((noinline)) static void c_caller(long n, const volatile double *seed)
{
	__m256d v[8], acc = _mm256_setzero_pd();
	double d = seed[0] * 0.5, want[4] = { 0, 0, 0, 0 };
	for (int k = 0; k < 8; k++) v[k] = _mm256_set_pd(seed[k] + 1, seed[k] + 2, seed[k] + 3, seed[k] + 4);
	__m256d x = _mm256_set_pd(4, 3, 2, 1), y = _mm256_set_pd(0.5, 7, -2, 5);
	for (long i = 0; i < n; i++) {
		acc = _mm256_add_pd(acc, probed(x, d, y, i));
		calls++;
	}
	double xs[4] = { 1, 2, 3, 4 }, ys[4] = { 5, -2, 7, 0.5 }, got[4], t[4];
	for (long i = 0; i < n; i++)
		for (int k = 0; k < 4; k++) want[k] += xs[k] * d + ys[k];
	_mm256_storeu_pd(got, acc);
	for (int k = 0; k < 4; k++)
		if (got[k] != want[k]) bad++;
	for (int k = 0; k < 8; k++) {
		_mm256_storeu_pd(t, v[k]);
		if (t[3] != seed[k] + 1 || t[2] != seed[k] + 2 || t[1] != seed[k] + 3 || t[0] != seed[k] + 4) bad++;
	}
	if (d != seed[0] * 0.5) bad++;
}

/* what the asm callers read (one register: the call leaves few) */
struct call_ctx {
	void *in, *out;
	double *a, *b, *s, *r;
	long i;
	void *fn;
};

static uint64_t pattern(int reg, int q) { return 0x9e3779b97f4a7c15ull * (uint64_t)(reg * 8 + q + 1) ^ 0x5bd1e995ull; }

/* ymm3-15: 256-bit patterns set, probed called (red zone skipped, stack aligned), read back */
__attribute__((noinline)) static void asm_caller(long i)
{
	uint64_t in[16][4], out[16][4];
	double a[4] = { 1.5, (double)i, -2, 8 }, b[4] = { 0.25, 3, (double)i, -1 }, s = 0.75, r[4];
	for (int g = 0; g < 16; g++)
		for (int q = 0; q < 4; q++) in[g][q] = pattern(g, q);
	struct call_ctx c = { in, out, a, b, &s, r, i, selftest ? (void *)clobber : (void *)probed };
	__asm__ volatile(
		"mov 0(%[c]), %%rax\n\t"
#define LD(n) "vmovdqu " #n "*32(%%rax), %%ymm" #n "\n\t"
#define ST(n) "vmovdqu %%ymm" #n ", " #n "*32(%%rax)\n\t"
		LD(3) LD(4) LD(5) LD(6) LD(7) LD(8) LD(9) LD(10) LD(11) LD(12) LD(13) LD(14) LD(15)
		"mov 16(%[c]), %%rax\n\t"
		"vmovupd (%%rax), %%ymm0\n\t"
		"mov 32(%[c]), %%rax\n\t"
		"vmovsd (%%rax), %%xmm1\n\t"
		"mov 24(%[c]), %%rax\n\t"
		"vmovupd (%%rax), %%ymm2\n\t"
		"mov 48(%[c]), %%rdi\n\t"
		"mov %%rsp, %%rbx\n\t"
		"sub $128, %%rsp\n\t"
		"and $-32, %%rsp\n\t"
		"call *56(%[c])\n\t"
		"mov %%rbx, %%rsp\n\t"
		"mov 40(%[c]), %%rax\n\t"
		"vmovupd %%ymm0, (%%rax)\n\t"
		"mov 8(%[c]), %%rax\n\t"
		ST(3) ST(4) ST(5) ST(6) ST(7) ST(8) ST(9) ST(10) ST(11) ST(12) ST(13) ST(14) ST(15)
		"vzeroupper"
#undef LD
#undef ST
		:
		: [c] "r"(&c)
		: "memory", "rax", "rbx", "rcx", "rdx", "rsi", "rdi", "r8", "r9", "r10", "r11", "xmm0", "xmm1", "xmm2", "xmm3", "xmm4",
		  "xmm5", "xmm6", "xmm7", "xmm8", "xmm9", "xmm10", "xmm11", "xmm12", "xmm13", "xmm14", "xmm15");
	if (!selftest) expect(_mm256_loadu_pd(r), a, s, b);
	if (memcmp(&in[3], &out[3], 13 * 32)) bad++;
}

/* AVX-512F: zmm3-31 (upper halves of zmm3-15, all of zmm16-31) the same way */
__attribute__((noinline, target("avx512f"))) static void asm_caller512(long i)
{
	uint64_t in[32][8] __attribute__((aligned(64))), out[32][8] __attribute__((aligned(64)));
	double a[4] = { 2.5, -1, (double)i, 4 }, b[4] = { (double)i, 1, 2, 3 }, s = -0.5, r[4];
	for (int g = 0; g < 32; g++)
		for (int q = 0; q < 8; q++) in[g][q] = pattern(g + 16, q);
	struct call_ctx c = { in, out, a, b, &s, r, i, selftest ? (void *)clobber : (void *)probed };
	__asm__ volatile(
		"mov 0(%[c]), %%rax\n\t"
#define LD(n) "vmovdqu64 " #n "*64(%%rax), %%zmm" #n "\n\t"
#define ST(n) "vmovdqu64 %%zmm" #n ", " #n "*64(%%rax)\n\t"
		LD(3) LD(4) LD(5) LD(6) LD(7) LD(8) LD(9) LD(10) LD(11) LD(12) LD(13) LD(14) LD(15)
		LD(16) LD(17) LD(18) LD(19) LD(20) LD(21) LD(22) LD(23) LD(24) LD(25) LD(26) LD(27) LD(28) LD(29) LD(30) LD(31)
		"mov 16(%[c]), %%rax\n\t"
		"vmovupd (%%rax), %%ymm0\n\t"
		"mov 32(%[c]), %%rax\n\t"
		"vmovsd (%%rax), %%xmm1\n\t"
		"mov 24(%[c]), %%rax\n\t"
		"vmovupd (%%rax), %%ymm2\n\t"
		"mov 48(%[c]), %%rdi\n\t"
		"mov %%rsp, %%rbx\n\t"
		"sub $128, %%rsp\n\t"
		"and $-64, %%rsp\n\t"
		"call *56(%[c])\n\t"
		"mov %%rbx, %%rsp\n\t"
		"mov 40(%[c]), %%rax\n\t"
		"vmovupd %%ymm0, (%%rax)\n\t"
		"mov 8(%[c]), %%rax\n\t"
		ST(3) ST(4) ST(5) ST(6) ST(7) ST(8) ST(9) ST(10) ST(11) ST(12) ST(13) ST(14) ST(15)
		ST(16) ST(17) ST(18) ST(19) ST(20) ST(21) ST(22) ST(23) ST(24) ST(25) ST(26) ST(27) ST(28) ST(29) ST(30) ST(31)
		"vzeroupper"
#undef LD
#undef ST
		:
		: [c] "r"(&c)
		: "memory", "rax", "rbx", "rcx", "rdx", "rsi", "rdi", "r8", "r9", "r10", "r11", "xmm0", "xmm1", "xmm2", "xmm3", "xmm4",
		  "xmm5", "xmm6", "xmm7", "xmm8", "xmm9", "xmm10", "xmm11", "xmm12", "xmm13", "xmm14", "xmm15", "xmm16", "xmm17",
		  "xmm18", "xmm19", "xmm20", "xmm21", "xmm22", "xmm23", "xmm24", "xmm25", "xmm26", "xmm27", "xmm28", "xmm29",
		  "xmm30", "xmm31");
	if (!selftest) expect(_mm256_loadu_pd(r), a, s, b);
	if (memcmp(&in[3], &out[3], 29 * 64)) bad++;
}

int main(int argc, char **argv)
{
	long n = argc > 1 ? atol(argv[1]) : 100;
	selftest = argc > 2 && !strcmp(argv[2], "selftest");
	int once = argc > 2; /* selftest or "once": one round, no stdin */
	int avx512 = __builtin_cpu_supports("avx512f");
	static volatile double seed[8] = { 1, 10, 100, 1000, -3, 0.125, 7e10, -9e-3 };
	setvbuf(stdout, NULL, _IOLBF, 0);
	printf("avx512f %d\n", !!avx512);
	char c;
	for (int round = 0; once ? round < 1 : read(0, &c, 1) == 1; round++) {
		calls = bad = 0;
		if (!selftest) c_caller(n, seed);
		for (long i = 0; i < n; i++) {
			asm_caller(i);
			if (avx512) asm_caller512(i);
		}
		printf("round %d: calls %ld bad %ld\n", round, calls, bad);
	}
	return 0;
}
