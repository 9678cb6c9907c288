/* SIGTRAP stays the hook's: once its handler is installed, sigaction() and signal() are interposed so
 * that a program setting a SIGTRAP handler later is recorded as the one chained to (never installed),
 * and the masks (pthread_sigmask, sigprocmask, sa_mask) never block SIGTRAP: a trap hook hit on a
 * thread blocking it would make the kernel kill the process. Where the interposers bind to nothing (a
 * dlopen'ed agent), wbpf_hook_signals_check re-installs the handler, chaining to the program's. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <string.h>
#include "internal.h"

typedef int (*sigaction_fn)(int, const struct sigaction *, struct sigaction *);
typedef int (*sigmask_fn)(int, const sigset_t *, sigset_t *);
static sigaction_fn real_sigaction;
static sigmask_fn real_pthread_sigmask, real_sigprocmask;

/* the program's SIGTRAP disposition, as it believes it is: 8 slots taken in turn (an atomic counter: no
 * lock, sigaction is async-signal-safe and a handler may call it), the current one's index published
 * atomically (a handler reading one while the program sets another). `lock` serialises the hook's own
 * installs and checks (never in a signal handler) */
static struct sigaction prev[8];
static unsigned next_slot;
static int cur = -1;        /* -1: the hook's handler is not installed: everything passes through */
static struct sigaction ours;
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;

__attribute__((constructor)) static void resolve(void)
{
	real_sigaction = (sigaction_fn)dlsym(RTLD_NEXT, "sigaction");
	real_pthread_sigmask = (sigmask_fn)dlsym(RTLD_NEXT, "pthread_sigmask");
	real_sigprocmask = (sigmask_fn)dlsym(RTLD_NEXT, "sigprocmask");
}

static int call_sigaction(int sig, const struct sigaction *sa, struct sigaction *old)
{
	if (!real_sigaction) resolve();
	if (!real_sigaction) return errno = ENOSYS, -1;
	return real_sigaction(sig, sa, old);
}

int wbpf_sigtrap_install(void (*handler)(int, siginfo_t *, void *), int flags, struct wbpf_hook_error *err)
{
	struct sigaction sa;
	memset(&sa, 0, sizeof sa);
	sigemptyset(&sa.sa_mask);
	sa.sa_flags = SA_SIGINFO | flags;
	sa.sa_sigaction = handler;
	pthread_mutex_lock(&lock);
	int rc = 0;
	if (cur < 0) {
		if (call_sigaction(SIGTRAP, &sa, &prev[0]))
			rc = wbpf_fail(err, WBPF_HOOK_ESIGNAL, "sigaction(SIGTRAP): %s", strerror(errno));
		else {
			ours = sa;
			__atomic_store_n(&cur, 0, __ATOMIC_RELEASE);
		}
	}
	pthread_mutex_unlock(&lock);
	return rc;
}

void wbpf_hook_signals_check(void)
{
	if (__atomic_load_n(&cur, __ATOMIC_ACQUIRE) < 0) return;
	struct sigaction now;
	pthread_mutex_lock(&lock);
	if (!call_sigaction(SIGTRAP, NULL, &now) && !((now.sa_flags & SA_SIGINFO) && now.sa_sigaction == ours.sa_sigaction)) {
		int j = (int)(__atomic_add_fetch(&next_slot, 1, __ATOMIC_RELAXED) & 7);
		prev[j] = now;
		if (!call_sigaction(SIGTRAP, &ours, NULL)) __atomic_store_n(&cur, j, __ATOMIC_RELEASE);
	}
	pthread_mutex_unlock(&lock);
}

/* a SIGTRAP that is not the hook's: to the program's handler (with its sa_mask, except SIGTRAP), or
 * what the kernel does with a trap nobody handles (die by SIGTRAP; ignoring a trap is not possible) */
void wbpf_sigtrap_chain(int sig, siginfo_t *si, void *uc)
{
	int i = __atomic_load_n(&cur, __ATOMIC_ACQUIRE);
	struct sigaction p = prev[i < 0 ? 0 : i];
	if (p.sa_handler != SIG_DFL && p.sa_handler != SIG_IGN) {
		sigset_t mask, old;
		memcpy(&mask, &p.sa_mask, sizeof mask);
		sigdelset(&mask, SIGTRAP);
		if (real_pthread_sigmask) real_pthread_sigmask(SIG_BLOCK, &mask, &old);
		if (p.sa_flags & SA_SIGINFO) p.sa_sigaction(sig, si, uc);
		else p.sa_handler(sig);
		if (real_pthread_sigmask) real_pthread_sigmask(SIG_SETMASK, &old, NULL);
		return;
	}
	struct sigaction dfl;
	memset(&dfl, 0, sizeof dfl);
	dfl.sa_handler = SIG_DFL;
	call_sigaction(SIGTRAP, &dfl, NULL);
	raise(SIGTRAP);
}

int sigaction(int sig, const struct sigaction *sa, struct sigaction *old)
{
	if (sig != SIGTRAP || __atomic_load_n(&cur, __ATOMIC_ACQUIRE) < 0) {
		if (sa && sigismember(&sa->sa_mask, SIGTRAP)) {
			struct sigaction copy = *sa;
			sigdelset(&copy.sa_mask, SIGTRAP);
			return call_sigaction(sig, &copy, old);
		}
		return call_sigaction(sig, sa, old);
	}
	int i = __atomic_load_n(&cur, __ATOMIC_ACQUIRE);
	struct sigaction was = prev[i];
	if (sa) {
		int j = (int)(__atomic_add_fetch(&next_slot, 1, __ATOMIC_RELAXED) & 7);
		prev[j] = *sa;
		__atomic_store_n(&cur, j, __ATOMIC_RELEASE);
	}
	if (old) *old = was;
	return 0;
}

sighandler_t signal(int sig, sighandler_t handler)
{
	struct sigaction sa, old;
	memset(&sa, 0, sizeof sa);
	sigemptyset(&sa.sa_mask);
	sa.sa_handler = handler;
	sa.sa_flags = SA_RESTART; /* glibc's signal(): BSD semantics */
	if (sigaction(sig, &sa, &old)) return SIG_ERR;
	return old.sa_handler;
}

static int mask_call(sigmask_fn real, int how, const sigset_t *set, sigset_t *old)
{
	if (!real) return errno = ENOSYS, -1;
	if (set && how != SIG_UNBLOCK && sigismember(set, SIGTRAP)) {
		sigset_t copy = *set;
		sigdelset(&copy, SIGTRAP);
		return real(how, &copy, old);
	}
	return real(how, set, old);
}

int pthread_sigmask(int how, const sigset_t *set, sigset_t *old)
{
	if (!real_pthread_sigmask) resolve();
	return mask_call(real_pthread_sigmask, how, set, old);
}

int sigprocmask(int how, const sigset_t *set, sigset_t *old)
{
	if (!real_sigprocmask) resolve();
	return mask_call(real_sigprocmask, how, set, old);
}
