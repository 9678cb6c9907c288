/* target: the uprobe benchmark's traced program. Calls bench_fn N times in one timed loop and prints
 * the time per call. Built once per entry kind (see Makefile): the same source, only the compiler
 * and its flags change what bench_fn's first instruction is.
 *
 *   target N [LINGER_MS]
 *   -> "target: N calls, T ns, X ns per call (acc A)"
 *
 * LINGER_MS (default 0): stay that long after printing, outside the timed loop, so that a batching
 * consumer drains the last records before the run stops with this command's exit. */
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

volatile int sink;

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

static long long now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
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
	long long t0 = now_ns();
	for (long i = 0; i < n; i++)
		acc += bench_fn((int)i);
	long long t = now_ns() - t0;
	printf("target: %ld calls, %lld ns, %.3f ns per call (acc %d)\n", n, t, (double)t / (double)n, acc);
	fflush(stdout);
	long linger_ms = argc > 2 ? atol(argv[2]) : 0;
	struct timespec ts = { linger_ms / 1000, (linger_ms % 1000) * 1000000L };
	nanosleep(&ts, NULL);
	return 0;
}
