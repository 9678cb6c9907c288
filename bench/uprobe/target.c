/* target: the uprobe benchmark's traced program. Calls bench_fn N times in one timed loop and prints
 * the time per call. Built once per entry kind (see Makefile): the same source, only the compiler
 * and its flags change what bench_fn's first instruction is.
 *
 *   target N [LINGER_MS]
 *   -> "target: N calls, T ns, X ns per call, C cpu ns, Y cpu ns per call (acc A)"
 *
 * T is wall-clock time (CLOCK_MONOTONIC), C the thread's CPU time (CLOCK_THREAD_CPUTIME_ID): a probe's
 * work runs in this thread (the kernel's uprobe handler, single-step and program; our hook and program),
 * so C counts it, but not the time other processes of a loaded machine held the CPU.
 *
 * LINGER_MS (default 0): stay that long after printing, outside the timed loop, so that a batching
 * consumer drains the last records before the run stops with this command's exit. */
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

volatile int sink;

#ifdef TRAP_ENTRY
/* -DTRAP_ENTRY (x86-64): an entry the agent's relocator refuses (lfence, which its decoder does not know,
 * at +2), so that our hook is its trap tier (an int3 per hit); the kernel single-steps its mov */
__asm__(".text\n\t.globl bench_fn\n\t.type bench_fn, @function\n\t.p2align 4, 0xcc\n"
	"bench_fn:\n\tmov %edi, %eax\n\tlfence\n\tinc %eax\n\tret\n\t.size bench_fn, .-bench_fn\n");
int bench_fn(int a);
#else
/* Out of line and opaque to the caller's optimizer: every call is a real call of this entry. */
__attribute__((noinline, used))
#if defined(__GNUC__) && !defined(__clang__)
__attribute__((noipa))
#endif
int bench_fn(int a)
{
	sink = a;
	return a + 1;
}
#endif

static long long now_ns(clockid_t clock)
{
	struct timespec ts;
	clock_gettime(clock, &ts);
	return (long long)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

int main(int argc, char **argv)
{
	if (argc < 2 || argc > 3 || atol(argv[1]) <= 0) {
		fprintf(stderr, "usage: target N [LINGER_MS]\n");
		return 1;
	}
	long n = atol(argv[1]);
	int acc = 0;
	long long t0 = now_ns(CLOCK_MONOTONIC), c0 = now_ns(CLOCK_THREAD_CPUTIME_ID);
	for (long i = 0; i < n; i++)
		acc += bench_fn((int)i);
	long long c = now_ns(CLOCK_THREAD_CPUTIME_ID) - c0, t = now_ns(CLOCK_MONOTONIC) - t0;
	printf("target: %ld calls, %lld ns, %.3f ns per call, %lld cpu ns, %.3f cpu ns per call (acc %d)\n", n, t,
	       (double)t / (double)n, c, (double)c / (double)n, acc);
	fflush(stdout);
	long linger_ms = argc > 2 ? atol(argv[2]) : 0;
	struct timespec ts = { linger_ms / 1000, (linger_ms % 1000) * 1000000L };
	nanosleep(&ts, NULL);
	return 0;
}
