/* Per-thread reader slots (readers.h): taking a slot on a thread's first hit, taking over a dead thread's,
 * and a writer's wait (a membarrier, then the slots still in a hit that started before it). */
#define _GNU_SOURCE
#include <errno.h>
#include <signal.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "../hook/internal.h"
#include "readers.h"

__thread struct reader *reader_self __attribute__((tls_model("initial-exec")));
static struct reader slots[READERS_MAX];

static int tid_of_self(void) { return (int)syscall(SYS_gettid); }

/* the thread is gone (its tid no longer in this process); saves errno: this runs in traced processes */
static int thread_gone(int tid)
{
	int saved = errno;
	int gone = syscall(SYS_tgkill, getpid(), tid, 0) < 0 && errno == ESRCH;
	errno = saved;
	return gone;
}

struct reader *reader_claim(void)
{
	int me = tid_of_self();
	for (unsigned i = 0; i < READERS_MAX; i++) {
		int free_ = 0;
		if (__atomic_compare_exchange_n(&slots[i].owner, &free_, me, 0, __ATOMIC_ACQ_REL, __ATOMIC_RELAXED))
			return reader_self = &slots[i];
	}
	/* all held: take over a dead thread's (it may have died in a hit: its seq turns even, ending a wait) */
	for (unsigned i = 0; i < READERS_MAX; i++) {
		int owner = __atomic_load_n(&slots[i].owner, __ATOMIC_ACQUIRE);
		if (owner == 0 || !thread_gone(owner)) continue;
		if (!__atomic_compare_exchange_n(&slots[i].owner, &owner, me, 0, __ATOMIC_ACQ_REL, __ATOMIC_RELAXED)) continue;
		unsigned s = __atomic_load_n(&slots[i].seq, __ATOMIC_RELAXED);
		__atomic_store_n(&slots[i].seq, (s + 1) & ~1u, __ATOMIC_RELEASE);
		return reader_self = &slots[i];
	}
	return reader_self = READER_NONE;
}

int readers_wait(const void *what, const struct timespec *t0, long long limit_ns)
{
	/* every thread of the process runs a full barrier (or is off-CPU): a hit either marked its slot
	 * visibly to the loads below, or reads what the writer stored before this */
	wbpf_sync_cores();
	unsigned snap[READERS_MAX];
	for (unsigned i = 0; i < READERS_MAX; i++) {
		unsigned s = __atomic_load_n(&slots[i].seq, __ATOMIC_ACQUIRE);
		snap[i] = (s & 1) && __atomic_load_n(&slots[i].what, __ATOMIC_RELAXED) == what ? s : 0;
	}
	struct timespec now, nap = { 0, 20000 };
	for (;;) {
		unsigned busy = 0;
		for (unsigned i = 0; i < READERS_MAX; i++) {
			if (!snap[i]) continue;
			if (__atomic_load_n(&slots[i].seq, __ATOMIC_ACQUIRE) != snap[i]) snap[i] = 0;
			else busy++;
		}
		if (!busy) return 1;
		clock_gettime(CLOCK_MONOTONIC, &now);
		if ((now.tv_sec - t0->tv_sec) * 1000000000ll + (now.tv_nsec - t0->tv_nsec) > limit_ns) return 0;
		nanosleep(&nap, NULL);
	}
}

void readers_child_reset(void)
{
	struct reader *mine = reader_self;
	for (unsigned i = 0; i < READERS_MAX; i++) {
		if (&slots[i] == mine) continue;
		slots[i].seq = 0;
		slots[i].what = NULL;
		slots[i].owner = 0;
	}
	if (mine && mine != READER_NONE) mine->owner = tid_of_self();
}
