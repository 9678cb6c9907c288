/* The agent's signal to every other thread of the process (SIGRTMAX-2), one round at a time (hook.c's
 * lock is held): each thread's handler (the arch's poke.c) acknowledges, and may wait parked until the
 * patcher releases the round; a thread that does not answer counts if it is asleep in a syscall. */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/futex.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>
#include "internal.h"

#define PARK_MAGIC 0x77627066ULL /* "wbpf" */
#define PARK_MAX_THREADS 4096
/* a round waits this long for every other thread (busy threads on a loaded machine take seconds to be
 * scheduled: 2 s failed hooks at a load average of 15); a parked thread never waits longer than PARKED_MAX_NS */
#define PARK_TIMEOUT_NS 5000000000L
#define PARKED_MAX_NS 6000000000L

static int installed;

static struct {
	uint32_t seq;      /* atomic: the round in progress (odd), or the last one released (even) */
	pid_t tids[PARK_MAX_THREADS];
	int acked[PARK_MAX_THREADS];
	int n;
} park;

static int park_signal(void) { return SIGRTMAX - 2; }

static long elapsed_ns(const struct timespec *t0)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return (t.tv_sec - t0->tv_sec) * 1000000000L + (t.tv_nsec - t0->tv_nsec);
}

int wbpf_park_install(void (*handler)(int, siginfo_t *, void *), struct wbpf_hook_error *err)
{
	if (installed) return 0;
	struct sigaction sa, old;
	int ps = park_signal();
	if (sigaction(ps, NULL, &old))
		return wbpf_fail(err, WBPF_HOOK_ESIGNAL, "sigaction(%d): %s", ps, strerror(errno));
	if (!(old.sa_flags & SA_SIGINFO) && old.sa_handler != SIG_DFL)
		return wbpf_fail(err, WBPF_HOOK_ESIGNAL, "signal %d (SIGRTMAX-2), which the agent needs, is in use by the program", ps);
	memset(&sa, 0, sizeof sa);
	sigemptyset(&sa.sa_mask);
	sa.sa_flags = SA_SIGINFO | SA_RESTART;
	sa.sa_sigaction = handler;
	if (sigaction(ps, &sa, NULL))
		return wbpf_fail(err, WBPF_HOOK_ESIGNAL, "sigaction(%d): %s", ps, strerror(errno));
	installed = 1;
	return 0;
}

uint32_t wbpf_park_mine(const siginfo_t *si)
{
	uint64_t v = (uint64_t)(uintptr_t)si->si_value.sival_ptr;
	if (si->si_code != SI_QUEUE || si->si_pid != getpid() || (v >> 32) != PARK_MAGIC) return 0;
	uint32_t seq = (uint32_t)v;
	/* not a late signal of a round already over */
	return __atomic_load_n(&park.seq, __ATOMIC_ACQUIRE) == seq ? seq : 0;
}

void wbpf_park_ack(void)
{
	pid_t me = (pid_t)syscall(SYS_gettid);
	for (int i = 0; i < park.n; i++)
		if (park.tids[i] == me) __atomic_store_n(&park.acked[i], 1, __ATOMIC_RELEASE);
}

void wbpf_park_wait(uint32_t seq)
{
	struct timespec t0, nap = { 0, 100000000 };
	clock_gettime(CLOCK_MONOTONIC, &t0);
	while (__atomic_load_n(&park.seq, __ATOMIC_ACQUIRE) == seq && elapsed_ns(&t0) < PARKED_MAX_NS)
		syscall(SYS_futex, &park.seq, FUTEX_WAIT_PRIVATE, seq, &nap, NULL, 0);
}

void wbpf_park_release(void)
{
	if (!(__atomic_load_n(&park.seq, __ATOMIC_RELAXED) & 1)) return;
	__atomic_fetch_add(&park.seq, 1, __ATOMIC_RELEASE);
	syscall(SYS_futex, &park.seq, FUTEX_WAKE_PRIVATE, 0x7fffffff, NULL, NULL, 0);
}

/* A thread that does not answer (it may block the agent's signal, as helper threads often block all
 * signals) is not running user code if /proc/self/task/TID/syscall shows it in a syscall ("NR args...
 * sp pc", or "-1 sp pc"), not "running"; quiet (if given) judges the user pc it will go on at */
static int asleep(pid_t tid, int (*quiet)(uintptr_t pc, void *arg), void *arg)
{
	char path[64], buf[256];
	snprintf(path, sizeof path, "/proc/self/task/%d/syscall", (int)tid);
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) return 0;
	ssize_t n = read(fd, buf, sizeof buf - 1);
	close(fd);
	if (n <= 0) return 0;
	buf[n] = 0;
	if (buf[0] != '-' && (buf[0] < '0' || buf[0] > '9')) return 0; /* "running" */
	if (!quiet) return 1;
	char *last = strrchr(buf, ' ');
	if (!last) return 0;
	uintptr_t pc = (uintptr_t)strtoull(last + 1, NULL, 16);
	return pc && quiet(pc, arg);
}

int wbpf_park_round(int (*quiet)(uintptr_t pc, void *arg), void *arg, const char *quiet_what, struct wbpf_hook_error *err)
{
	pid_t pid = getpid(), self = (pid_t)syscall(SYS_gettid);
	DIR *d = opendir("/proc/self/task");
	if (!d) return wbpf_fail(err, WBPF_HOOK_ETHREADS, "opendir(/proc/self/task): %s", strerror(errno));
	park.n = 0;
	struct dirent *e;
	int too_many = 0;
	while ((e = readdir(d))) {
		pid_t tid = (pid_t)atoi(e->d_name);
		if (tid <= 0 || tid == self) continue;
		if (park.n == PARK_MAX_THREADS) { too_many = 1; break; }
		park.acked[park.n] = 0;
		park.tids[park.n++] = tid;
	}
	closedir(d);
	if (too_many) return wbpf_fail(err, WBPF_HOOK_ETHREADS, "more than %d threads", PARK_MAX_THREADS);
	uint32_t seq = __atomic_add_fetch(&park.seq, 1, __ATOMIC_SEQ_CST); /* odd: in progress */
	for (int i = 0; i < park.n; i++) {
		siginfo_t si;
		memset(&si, 0, sizeof si);
		si.si_signo = park_signal();
		si.si_code = SI_QUEUE;
		si.si_pid = pid;
		si.si_uid = getuid();
		si.si_value.sival_ptr = (void *)(uintptr_t)(PARK_MAGIC << 32 | seq);
		if (syscall(SYS_rt_tgsigqueueinfo, pid, park.tids[i], park_signal(), &si))
			park.acked[i] = 1; /* exited */
	}
	struct timespec t0, nap = { 0, 20000 };
	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (;;) {
		int left = 0;
		for (int i = 0; i < park.n; i++) {
			if (__atomic_load_n(&park.acked[i], __ATOMIC_ACQUIRE)) continue;
			if (syscall(SYS_tgkill, pid, park.tids[i], 0) && errno == ESRCH) { park.acked[i] = 1; continue; }
			if (elapsed_ns(&t0) > 1000000 && asleep(park.tids[i], quiet, arg)) { park.acked[i] = 1; continue; }
			left++;
		}
		if (!left) return 0;
		if (elapsed_ns(&t0) > PARK_TIMEOUT_NS) {
			wbpf_park_release();
			return wbpf_fail(err, WBPF_HOOK_ETHREADS, "%d thread(s) did not answer the agent's signal %d in %d s and are not asleep %s",
					 left, park_signal(), (int)(PARK_TIMEOUT_NS / 1000000000L), quiet_what);
		}
		nanosleep(&nap, NULL);
	}
}
