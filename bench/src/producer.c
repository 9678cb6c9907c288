/* producer: fires the getppid tracepoint of bench.bpf.c.
 *
 *   producer [RATE]    for each line COUNT read on stdin: calls getppid() COUNT times, RATE per second
 *                      (paced against an absolute clock; 0 or absent: as fast as possible), then prints
 *                      `produced=COUNT ns=ELAPSED`. Exits at the end of stdin.
 */
#define _GNU_SOURCE
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

static uint64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

int main(int argc, char **argv)
{
	double rate = argc > 1 ? atof(argv[1]) : 0;
	char line[64];
	prctl(PR_SET_TIMERSLACK, 1UL);
	prctl(PR_SET_PDEATHSIG, 9);
	while (fgets(line, sizeof line, stdin)) {
		long count = atol(line);
		uint64_t t0 = now_ns();
		if (rate <= 0) {
			for (long i = 0; i < count; i++)
				syscall(SYS_getppid);
		} else {
			double period = 1e9 / rate;
			for (long i = 0; i < count; i++) {
				uint64_t due = t0 + (uint64_t)((double)i * period);
				if (now_ns() < due) {
					struct timespec ts = { (time_t)(due / 1000000000ull), (long)(due % 1000000000ull) };
					clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL);
				}
				syscall(SYS_getppid);
			}
		}
		printf("produced=%ld ns=%llu\n", count, (unsigned long long)(now_ns() - t0));
		fflush(stdout);
	}
	return 0;
}
