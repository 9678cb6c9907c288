/* x86-64 live patching of a function entry while other threads run it: int3-first writes (the
 * kernel's text_poke_bp order) with a core sync after each, the SIGTRAP handler for threads hitting
 * our int3 (and for the trap tier's hits, trap.c), and the evacuation of threads stopped inside the
 * replaced bytes to the relocated copy. */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <ucontext.h>
#include <unistd.h>
#include "x86.h"

#define EVAC_MAGIC 0x77627066 /* "wbpf" */
#define EVAC_MAX_THREADS 4096
#define EVAC_TIMEOUT_NS 2000000000L

static struct wbpf_hook_stats stats;
static int signals_ready;

/* one evacuation at a time (hook.c's lock is held) */
static struct {
	uintptr_t fn, orig;
	int len;
	uint8_t map[WBPF_REPLACED_MAX];
	pid_t tids[EVAC_MAX_THREADS];
	int acked[EVAC_MAX_THREADS];
	int n;
	int bad; /* a thread stopped inside an instruction: cannot happen, but never guess */
} evac;

static int evac_signal(void) { return SIGRTMAX - 2; }

static void on_trap(int sig, siginfo_t *si, void *ucv)
{
	ucontext_t *uc = ucv;
	greg_t *g = uc->uc_mcontext.gregs;
	if (si->si_code == SI_KERNEL) { /* int3 */
		uintptr_t at = (uintptr_t)g[REG_RIP] - 1;
		struct wbpf_site *s = wbpf_site_find(at);
		if (s) {
			if (wbpf_x86_trap_hit(s, at, ucv)) return; /* a trap-tier hook's hit */
			int state = __atomic_load_n(&s->state, __ATOMIC_ACQUIRE);
			if (*(volatile uint8_t *)at != 0xcc) {
				/* our int3 is gone (the patch finished meanwhile): run what is there now */
				g[REG_RIP] = (greg_t)at;
				__atomic_fetch_add(&stats.rewound, 1, __ATOMIC_RELAXED);
				return;
			}
			if (state == WBPF_SITE_PATCHING || state == WBPF_SITE_UNPATCHING) {
				g[REG_RIP] = (greg_t)__atomic_load_n(&s->trap_target, __ATOMIC_ACQUIRE);
				__atomic_fetch_add(&stats.trapped, 1, __ATOMIC_RELAXED);
				return;
			}
		}
	}
	wbpf_sigtrap_chain(sig, si, ucv);
}

static void on_evac(int sig, siginfo_t *si, void *ucv)
{
	(void)sig;
	if (si->si_code != SI_QUEUE || si->si_pid != getpid() || si->si_value.sival_int != EVAC_MAGIC) return;
	ucontext_t *uc = ucv;
	greg_t *g = uc->uc_mcontext.gregs;
	uintptr_t rip = (uintptr_t)g[REG_RIP];
	if (rip > evac.fn && rip < evac.fn + (uintptr_t)evac.len) {
		uint8_t o = evac.map[rip - evac.fn];
		if (o == 0xff) __atomic_store_n(&evac.bad, 1, __ATOMIC_RELEASE);
		else {
			g[REG_RIP] = (greg_t)(evac.orig + o);
			__atomic_fetch_add(&stats.evacuated, 1, __ATOMIC_RELAXED);
		}
	}
	pid_t me = (pid_t)syscall(SYS_gettid);
	for (int i = 0; i < evac.n; i++)
		if (evac.tids[i] == me) __atomic_store_n(&evac.acked[i], 1, __ATOMIC_RELEASE);
}

int wbpf_x86_signals_init(struct wbpf_hook_error *err)
{
	if (signals_ready) return 0;
	struct sigaction sa, old;
	int es = evac_signal();
	if (sigaction(es, NULL, &old))
		return wbpf_fail(err, WBPF_HOOK_ESIGNAL, "sigaction(%d): %s", es, strerror(errno));
	if (!(old.sa_flags & SA_SIGINFO) && old.sa_handler != SIG_DFL)
		return wbpf_fail(err, WBPF_HOOK_ESIGNAL, "signal %d (SIGRTMAX-2), which the agent needs, is in use by the program", es);
	memset(&sa, 0, sizeof sa);
	sigemptyset(&sa.sa_mask);
	sa.sa_flags = SA_SIGINFO | SA_RESTART;
	sa.sa_sigaction = on_evac;
	if (sigaction(es, &sa, NULL))
		return wbpf_fail(err, WBPF_HOOK_ESIGNAL, "sigaction(%d): %s", es, strerror(errno));
	/* SA_NODEFER: a trap hook hit while our handler runs (a program's helper, the app's own SIGTRAP
	 * handler) must not find SIGTRAP blocked: the kernel would kill the process */
	int rc = wbpf_sigtrap_install(on_trap, SA_RESTART | SA_NODEFER, err);
	if (rc) return rc;
	signals_ready = 1;
	return 0;
}

static long elapsed_ns(const struct timespec *t0)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return (t.tv_sec - t0->tv_sec) * 1000000000L + (t.tv_nsec - t0->tv_nsec);
}

/* A thread that does not answer (it may block the agent's signal, as helper threads often block all
 * signals) is safe if it sleeps outside (fn, fn+len): /proc/self/task/TID/syscall shows the user pc
 * of a thread that is not running ("NR args... sp pc", or "-1 sp pc"), and a thread outside the
 * replaced bytes never gets inside them once the int3 is in place. */
static int sleeps_outside(pid_t tid, uintptr_t fn, int len)
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
	char *last = strrchr(buf, ' ');
	if (!last) return 0;
	uintptr_t pc = (uintptr_t)strtoull(last + 1, NULL, 16);
	return pc && !(pc > fn && pc < fn + (uintptr_t)len);
}

/* every other thread: if stopped inside (fn, fn+len), continue at the same point of the copy */
static int evacuate(uintptr_t fn, const struct wbpf_tramp *t, struct wbpf_hook_error *err)
{
	pid_t pid = getpid(), self = (pid_t)syscall(SYS_gettid);
	DIR *d = opendir("/proc/self/task");
	if (!d) return wbpf_fail(err, WBPF_HOOK_ETHREADS, "opendir(/proc/self/task): %s", strerror(errno));
	evac.fn = fn;
	evac.orig = t->orig;
	evac.len = t->replaced;
	memcpy(evac.map, t->map, sizeof evac.map);
	evac.bad = 0;
	evac.n = 0;
	struct dirent *e;
	int too_many = 0;
	while ((e = readdir(d))) {
		pid_t tid = (pid_t)atoi(e->d_name);
		if (tid <= 0 || tid == self) continue;
		if (evac.n == EVAC_MAX_THREADS) { too_many = 1; break; }
		evac.acked[evac.n] = 0;
		evac.tids[evac.n++] = tid;
	}
	closedir(d);
	if (too_many) return wbpf_fail(err, WBPF_HOOK_ETHREADS, "more than %d threads", EVAC_MAX_THREADS);
	__atomic_thread_fence(__ATOMIC_SEQ_CST);
	for (int i = 0; i < evac.n; i++) {
		siginfo_t si;
		memset(&si, 0, sizeof si);
		si.si_signo = evac_signal();
		si.si_code = SI_QUEUE;
		si.si_pid = pid;
		si.si_uid = getuid();
		si.si_value.sival_int = EVAC_MAGIC;
		if (syscall(SYS_rt_tgsigqueueinfo, pid, evac.tids[i], evac_signal(), &si))
			evac.acked[i] = 1; /* exited */
	}
	struct timespec t0, nap = { 0, 20000 };
	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (;;) {
		int left = 0;
		for (int i = 0; i < evac.n; i++) {
			if (__atomic_load_n(&evac.acked[i], __ATOMIC_ACQUIRE)) continue;
			if (syscall(SYS_tgkill, pid, evac.tids[i], 0) && errno == ESRCH) { evac.acked[i] = 1; continue; }
			if (elapsed_ns(&t0) > 1000000 && sleeps_outside(evac.tids[i], fn, t->replaced)) { evac.acked[i] = 1; continue; }
			left++;
		}
		if (!left) break;
		if (elapsed_ns(&t0) > EVAC_TIMEOUT_NS)
			return wbpf_fail(err, WBPF_HOOK_ETHREADS, "%d thread(s) did not answer the agent's signal %d in 2 s and are not asleep outside the entry",
					 left, evac_signal());
		nanosleep(&nap, NULL);
	}
	if (__atomic_load_n(&evac.bad, __ATOMIC_ACQUIRE))
		return wbpf_fail(err, WBPF_HOOK_ETHREADS, "a thread stopped inside an instruction of the entry");
	return 0;
}

void wbpf_hook_get_stats(struct wbpf_hook_stats *out)
{
	out->trapped = __atomic_load_n(&stats.trapped, __ATOMIC_RELAXED);
	out->rewound = __atomic_load_n(&stats.rewound, __ATOMIC_RELAXED);
	out->evacuated = __atomic_load_n(&stats.evacuated, __ATOMIC_RELAXED);
	out->trap_hits = __atomic_load_n(&wbpf_x86_trap_hits, __ATOMIC_RELAXED);
}

int wbpf_arch_patch_in(struct wbpf_site *s, struct wbpf_tramp *t, struct wbpf_hook_error *err)
{
	int rc = wbpf_x86_signals_init(err);
	if (rc) return rc;
	uintptr_t fn = s->fn;
	uint8_t jmp[5] = { 0xe9 }, int3 = 0xcc;
	int32_t rel = (int32_t)((int64_t)t->entry - (int64_t)(fn + 5));
	memcpy(jmp + 1, &rel, 4);
	struct wbpf_text tx;
	if ((rc = wbpf_text_open(&tx, fn, 5, err))) return rc;
	__atomic_store_n(&s->trap_target, t->entry, __ATOMIC_RELEASE);
	wbpf_text_store(fn, &int3, 1);
	wbpf_sync_cores();
	/* no thread enters past the int3 now; move those already inside the replaced bytes */
	if ((rc = evacuate(fn, t, err))) {
		wbpf_text_store(fn, s->orig_bytes, 1);
		wbpf_sync_cores();
		wbpf_text_close(&tx);
		return rc;
	}
	wbpf_text_store(fn + 1, jmp + 1, 4);
	wbpf_sync_cores();
	wbpf_text_store(fn, jmp, 1);
	wbpf_sync_cores();
	wbpf_text_close(&tx);
	return 0;
}

int wbpf_arch_patch_out(struct wbpf_site *s, struct wbpf_tramp *t, struct wbpf_hook_error *err)
{
	uintptr_t fn = s->fn;
	uint8_t int3 = 0xcc;
	struct wbpf_text tx;
	int rc = wbpf_text_open(&tx, fn, 5, err);
	if (rc) return rc;
	/* the jmp is one instruction: no thread can be inside it, only before it or in the trampoline */
	__atomic_store_n(&s->trap_target, t->orig, __ATOMIC_RELEASE);
	wbpf_text_store(fn, &int3, 1);
	wbpf_sync_cores();
	wbpf_text_store(fn + 1, s->orig_bytes + 1, 4);
	wbpf_sync_cores();
	wbpf_text_store(fn, s->orig_bytes, 1);
	wbpf_sync_cores();
	wbpf_text_close(&tx);
	return 0;
}
