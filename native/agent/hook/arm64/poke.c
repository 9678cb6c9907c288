/* arm64 live patching of a function entry while other threads run it: every other thread is parked
 * in the agent's signal handler (or seen asleep in a syscall), the one 4-byte instruction is stored
 * with a single aligned store, the caches are made coherent (DC CVAU, IC IVAU, DSB, ISB; then
 * membarrier SYNC_CORE), and the threads are released (their return from the handler is an exception
 * return: context-synchronizing). The ARM ARM (B2.2.5) lets code be modified while another core runs
 * it only between B, BL, NOP, BRK, ... instructions; the entry's old instruction is any, so no thread
 * may be running it during the store. */
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
#include "a64.h"

#define PARK_MAGIC 0x77627066ULL /* "wbpf" */
#define PARK_MAX_THREADS 4096
#define PARK_TIMEOUT_NS 2000000000L
#define PARKED_MAX_NS 3000000000L /* a parked thread never waits longer, whatever the patcher does */

static struct wbpf_hook_stats stats;
static int signals_ready;

/* one park at a time (hook.c's lock is held) */
static struct {
	uint32_t seq;      /* atomic: the park in progress (odd), or the last one released (even) */
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

/* async-signal-safe: acknowledges, then waits (futex) until the patcher releases this park */
static void on_park(int sig, siginfo_t *si, void *uc)
{
	(void)sig, (void)uc;
	uint64_t v = (uint64_t)(uintptr_t)si->si_value.sival_ptr;
	if (si->si_code != SI_QUEUE || si->si_pid != getpid() || (v >> 32) != PARK_MAGIC) return;
	uint32_t seq = (uint32_t)v;
	int saved = errno;
	if (__atomic_load_n(&park.seq, __ATOMIC_ACQUIRE) == seq) { /* not a late signal of a park already over */
		pid_t me = (pid_t)syscall(SYS_gettid);
		for (int i = 0; i < park.n; i++)
			if (park.tids[i] == me) __atomic_store_n(&park.acked[i], 1, __ATOMIC_RELEASE);
		struct timespec t0, nap = { 0, 100000000 };
		clock_gettime(CLOCK_MONOTONIC, &t0);
		while (__atomic_load_n(&park.seq, __ATOMIC_ACQUIRE) == seq && elapsed_ns(&t0) < PARKED_MAX_NS)
			syscall(SYS_futex, &park.seq, FUTEX_WAIT_PRIVATE, seq, &nap, NULL, 0);
	}
	errno = saved;
}

static int signals_init(struct wbpf_hook_error *err)
{
	if (signals_ready) return 0;
	struct sigaction sa, old;
	int ps = park_signal();
	if (sigaction(ps, NULL, &old))
		return wbpf_fail(err, WBPF_HOOK_ESIGNAL, "sigaction(%d): %s", ps, strerror(errno));
	if (!(old.sa_flags & SA_SIGINFO) && old.sa_handler != SIG_DFL)
		return wbpf_fail(err, WBPF_HOOK_ESIGNAL, "signal %d (SIGRTMAX-2), which the agent needs, is in use by the program", ps);
	memset(&sa, 0, sizeof sa);
	sigemptyset(&sa.sa_mask);
	sa.sa_flags = SA_SIGINFO | SA_RESTART;
	sa.sa_sigaction = on_park;
	if (sigaction(ps, &sa, NULL))
		return wbpf_fail(err, WBPF_HOOK_ESIGNAL, "sigaction(%d): %s", ps, strerror(errno));
	signals_ready = 1;
	return 0;
}

/* A thread that does not answer (it may block the agent's signal) is not running user code if
 * /proc/self/task/TID/syscall shows it in a syscall ("NR args... sp pc", or "-1 sp pc"), not "running" */
static int asleep(pid_t tid)
{
	char path[64], buf[256];
	snprintf(path, sizeof path, "/proc/self/task/%d/syscall", (int)tid);
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) return 0;
	ssize_t n = read(fd, buf, sizeof buf - 1);
	close(fd);
	if (n <= 0) return 0;
	buf[n] = 0;
	return buf[0] == '-' || (buf[0] >= '0' && buf[0] <= '9');
}

static void release(void)
{
	__atomic_fetch_add(&park.seq, 1, __ATOMIC_RELEASE);
	syscall(SYS_futex, &park.seq, FUTEX_WAKE_PRIVATE, 0x7fffffff, NULL, NULL, 0);
}

/* parks every other thread; on failure releases those parked */
static int park_all(struct wbpf_hook_error *err)
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
	uint32_t seq = __atomic_add_fetch(&park.seq, 1, __ATOMIC_SEQ_CST); /* odd: parking */
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
			if (elapsed_ns(&t0) > 1000000 && asleep(park.tids[i])) { park.acked[i] = 1; continue; }
			left++;
		}
		if (!left) return 0;
		if (elapsed_ns(&t0) > PARK_TIMEOUT_NS) {
			release();
			return wbpf_fail(err, WBPF_HOOK_ETHREADS, "%d thread(s) did not answer the agent's signal %d in 2 s and are not asleep in a syscall",
					 left, park_signal());
		}
		nanosleep(&nap, NULL);
	}
}

/* stores one instruction at addr with every other thread stopped */
static int poke(uintptr_t addr, uint32_t insn, struct wbpf_hook_error *err)
{
	int rc = signals_init(err);
	if (rc) return rc;
	struct wbpf_text tx;
	if ((rc = wbpf_text_open(&tx, addr, 4, err))) return rc;
	(void)wbpf_sync_method_name(); /* its one-time setup now, not while the other threads are parked */
	if ((rc = park_all(err))) {
		wbpf_text_close(&tx);
		return rc;
	}
	__atomic_store_n((uint32_t *)addr, insn, __ATOMIC_SEQ_CST);
	__builtin___clear_cache((char *)addr, (char *)addr + 4); /* dc cvau; dsb ish; ic ivau; dsb ish; isb */
	wbpf_sync_cores(); /* threads asleep in a syscall, other cores: serialised before they go on */
	release();
	wbpf_text_close(&tx);
	return 0;
}

void wbpf_hook_get_stats(struct wbpf_hook_stats *out)
{
	/* the x86-64 int3 protocol's counters: nothing traps or is evacuated here */
	out->trapped = __atomic_load_n(&stats.trapped, __ATOMIC_RELAXED);
	out->rewound = __atomic_load_n(&stats.rewound, __ATOMIC_RELAXED);
	out->evacuated = __atomic_load_n(&stats.evacuated, __ATOMIC_RELAXED);
}

int wbpf_arch_patch_in(struct wbpf_site *s, struct wbpf_tramp *t, struct wbpf_hook_error *err)
{
	uintptr_t at = s->fn + (uintptr_t)(t->replaced - 4);
	uint32_t b = a64_b(at, t->entry);
	if (!b) return wbpf_fail(err, WBPF_HOOK_ENOMEM, "trampoline out of the b's reach of %#lx", (unsigned long)at);
	__atomic_store_n(&s->trap_target, t->entry, __ATOMIC_RELEASE);
	return poke(at, b, err);
}

int wbpf_arch_patch_out(struct wbpf_site *s, struct wbpf_tramp *t, struct wbpf_hook_error *err)
{
	int off = t->replaced - 4;
	uint32_t insn;
	memcpy(&insn, s->orig_bytes + off, 4);
	__atomic_store_n(&s->trap_target, t->orig, __ATOMIC_RELEASE);
	return poke(s->fn + (uintptr_t)off, insn, err);
}
