/* Per-thread reader slots: a hit marks itself in its own thread's slot with two plain stores (no locked
 * instruction); a writer that changed what hits read waits, after a membarrier, for the hits still marked.
 * Threads without a slot (all taken) use agent.c's shared counters instead. */
#ifndef WBPF_AGENT_READERS_H
#define WBPF_AGENT_READERS_H
#include <time.h>

#pragma GCC visibility push(hidden)

#define READERS_MAX 256 /* slots: a thread holds one from its first hit; a dead thread's is taken over */

struct reader {
	unsigned seq;     /* odd while its thread is in a hit; written by that thread only (atomic) */
	const void *what; /* what the hit reads (agent.c: its struct afn), set before seq turns odd (atomic) */
	int owner;        /* the holding thread's tid, 0 free (atomic) */
} __attribute__((aligned(64)));

#define READER_NONE ((struct reader *)1) /* this thread has no slot: the caller counts the hit its own way */
extern __thread struct reader *reader_self __attribute__((tls_model("initial-exec")));
/* this thread's slot, taken now (READER_NONE: none free) */
struct reader *reader_claim(void);

/* the hit begins: 1 marked in this thread's slot, 0 no slot (count it elsewhere). Not reentrant: the
 * caller skips hits nested in a hit (a signal handler) */
static inline int reader_enter(const void *what)
{
	struct reader *r = reader_self;
	if (__builtin_expect(r == NULL, 0)) r = reader_claim();
	if (r == READER_NONE) return 0;
	__atomic_store_n(&r->what, what, __ATOMIC_RELAXED);
	__atomic_store_n(&r->seq, r->seq + 1, __ATOMIC_RELAXED);
	/* a writer's membarrier orders these stores before the hit's loads, whichever it sees */
	__atomic_signal_fence(__ATOMIC_SEQ_CST);
	return 1;
}

/* the hit (reader_enter returned 1) is over: its loads are done before the slot says so */
static inline void reader_leave(void)
{
	struct reader *r = reader_self;
	__atomic_store_n(&r->seq, r->seq + 1, __ATOMIC_RELEASE);
}

/* a writer changed what hits of `what` read: waits until every hit marked in a slot that may have read the
 * old value has left (1), or until `limit_ns` after `t0` (CLOCK_MONOTONIC; a stalled hit: 0) */
int readers_wait(const void *what, const struct timespec *t0, long long limit_ns);

/* a fork child: the parent's other threads are gone, their slots free; this thread keeps its own */
void readers_child_reset(void);

#pragma GCC visibility pop
#endif
