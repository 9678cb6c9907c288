/* execloop: starts PROG (default /bin/true) every INTERVAL_US microseconds (default 2000) until killed,
 * with posix_spawn (vfork + exec: cheap for the machine the start-up benchmark measures). */
#define _GNU_SOURCE
#include <signal.h>
#include <spawn.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/prctl.h>
#include <time.h>
#include <unistd.h>

extern char **environ;

int main(int argc, char **argv)
{
	long us = argc > 1 ? atol(argv[1]) : 2000;
	char *prog = argc > 2 ? argv[2] : "/bin/true";
	char *args[] = { prog, NULL };
	signal(SIGCHLD, SIG_IGN); /* no zombies */
	prctl(PR_SET_PDEATHSIG, SIGKILL);
	prctl(PR_SET_TIMERSLACK, 1UL);
	struct timespec next;
	clock_gettime(CLOCK_MONOTONIC, &next);
	for (;;) {
		pid_t pid;
		posix_spawn(&pid, prog, NULL, NULL, args, environ);
		next.tv_nsec += us * 1000;
		while (next.tv_nsec >= 1000000000L) {
			next.tv_nsec -= 1000000000L;
			next.tv_sec++;
		}
		clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &next, NULL);
	}
}
