/* static-loop: the ptrace tier's syscall bench target (bench/syscall/static.ts), built with gcc -static.
 * `static-loop openat|getpid N [-w]`: N calls of openat("/etc/hostname")+close, or of getpid (raw syscall
 * instructions: no libc cache), then prints "calls N wall_ns W cpu_ns C" (the whole loop: wall-clock time and
 * this process's CPU time). -w: waits for a byte on stdin first (a joined run attaches meanwhile). */
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

static long ns(clockid_t c)
{
	struct timespec t;
	clock_gettime(c, &t);
	return t.tv_sec * 1000000000L + t.tv_nsec;
}

int main(int argc, char **argv)
{
	if (argc < 3) return 2;
	int open_ = !strcmp(argv[1], "openat");
	long n = atol(argv[2]);
	char c;
	if (argc > 3 && !strcmp(argv[3], "-w") && read(0, &c, 1) != 1) return 3;
	long w0 = ns(CLOCK_MONOTONIC), c0 = ns(CLOCK_PROCESS_CPUTIME_ID);
	for (long i = 0; i < n; i++) {
		if (open_) {
			long fd = syscall(SYS_openat, AT_FDCWD, "/etc/hostname", O_RDONLY);
			if (fd >= 0) syscall(SYS_close, fd);
		} else {
			syscall(SYS_getpid);
		}
	}
	long w1 = ns(CLOCK_MONOTONIC), c1 = ns(CLOCK_PROCESS_CPUTIME_ID);
	printf("calls %ld wall_ns %ld cpu_ns %ld\n", n, w1 - w0, c1 - c0);
	fflush(stdout);
	return 0;
}
