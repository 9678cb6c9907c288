/* The per-thread reader slots (lib/readers.c): a writer's wait waits for exactly the hits that may have
 * read the old value (a torture loop: no reader ever sees a retired object), slots run out into the
 * caller's fallback, a dead thread's slot is taken over, a fork child keeps only its own. Prints "ok - ..."
 * or "not ok - ..." per check; exits 1 on a failure. */
#define _GNU_SOURCE
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "../lib/readers.h"
#include "check.h"

static long long ms_since(const struct timespec *t0)
{
	struct timespec now;
	clock_gettime(CLOCK_MONOTONIC, &now);
	return ((now.tv_sec - t0->tv_sec) * 1000000000ll + (now.tv_nsec - t0->tv_nsec)) / 1000000;
}

static long long timed_wait(const void *what, long long limit_ms)
{
	struct timespec t0;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	readers_wait(what, &t0, limit_ms * 1000000ll);
	return ms_since(&t0);
}

static int X, Y; /* two "functions" */

/* ---- a thread inside a hit of X until told ---- */
static volatile int hold_go, hold_in, hold_marked;
static void *holder(void *a)
{
	(void)a;
	hold_marked = reader_enter(&X);
	__atomic_store_n(&hold_in, 1, __ATOMIC_RELEASE);
	while (!__atomic_load_n(&hold_go, __ATOMIC_ACQUIRE)) usleep(1000);
	if (hold_marked) reader_leave();
	return NULL;
}
static void *release_later(void *a)
{
	usleep(100000);
	__atomic_store_n(&hold_go, 1, __ATOMIC_RELEASE);
	return a;
}

static void check_wait(void)
{
	pthread_t t, r;
	hold_go = hold_in = 0;
	pthread_create(&t, NULL, holder, NULL);
	while (!__atomic_load_n(&hold_in, __ATOMIC_ACQUIRE)) usleep(1000);
	CHECK(hold_marked, "a thread's first hit takes a slot");
	long long a = timed_wait(&X, 200);
	CHECK(a >= 200, "a wait for X while a hit of X runs lasts until its limit (%lld ms of 200)", a);
	long long b = timed_wait(&Y, 2000);
	CHECK(b < 100, "a wait for Y does not wait for a hit of X (%lld ms)", b);
	pthread_create(&r, NULL, release_later, NULL);
	long long c = timed_wait(&X, 5000);
	CHECK(c >= 90 && c < 2000, "a wait for X ends when the hit leaves (%lld ms, it left after 100)", c);
	pthread_join(t, NULL);
	pthread_join(r, NULL);
	long long d = timed_wait(&X, 2000);
	CHECK(d < 100, "no hit of X: the wait returns at once (%lld ms)", d);
}

/* ---- torture: readers follow a pointer the writer swaps, waits for, then poisons ---- */
struct obj { volatile long alive; };
static struct obj *volatile cur;
static volatile int stop;
static long bad, reads;
static void *reader_loop(void *a)
{
	long n = 0, b = 0;
	(void)a;
	while (!__atomic_load_n(&stop, __ATOMIC_RELAXED)) {
		if (!reader_enter(&X)) { b = -1000000; break; }
		struct obj *o = __atomic_load_n(&cur, __ATOMIC_ACQUIRE);
		for (int i = 0; i < 2000; i++) /* a long hit: a swap lands inside most */
			if (o->alive != 1) b++;
		reader_leave();
		n++;
	}
	__atomic_add_fetch(&bad, b, __ATOMIC_RELAXED);
	__atomic_add_fetch(&reads, n, __ATOMIC_RELAXED);
	return NULL;
}

static void check_torture(void)
{
	enum { READERS = 2, SWAPS = 500 };
	static struct obj objs[2];
	pthread_t t[READERS];
	objs[0].alive = 1;
	cur = &objs[0];
	stop = 0;
	for (int i = 0; i < READERS; i++) pthread_create(&t[i], NULL, reader_loop, NULL);
	usleep(10000);
	long long waited = 0;
	for (int s = 0; s < SWAPS; s++) {
		struct obj *old = cur, *next = old == &objs[0] ? &objs[1] : &objs[0];
		next->alive = 1;
		__atomic_store_n(&cur, next, __ATOMIC_SEQ_CST);
		waited += timed_wait(&X, 2000);
		old->alive = 0; /* retired: no reader may see it from here */
		usleep(50);
	}
	stop = 1;
	for (int i = 0; i < READERS; i++) pthread_join(t[i], NULL);
	CHECK(bad == 0 && reads > 0, "%d swaps under %d reading threads (%ld reads): no reader saw a retired object (%ld times), %lld ms waited",
	      SWAPS, READERS, reads, bad, waited);
}

/* ---- slots run out, and dead threads' slots are taken over ---- */
static pthread_barrier_t bar;
static int got[READERS_MAX + 64];
static void *claimer(void *a)
{
	int *g = a;
	*g = reader_enter(&Y);
	if (*g) reader_leave();
	pthread_barrier_wait(&bar); /* all alive at once */
	return NULL;
}

static int claim_all(int n)
{
	pthread_t t[READERS_MAX + 64];
	pthread_barrier_init(&bar, NULL, (unsigned)n + 1);
	for (int i = 0; i < n; i++) pthread_create(&t[i], NULL, claimer, &got[i]);
	pthread_barrier_wait(&bar);
	int slots = 0;
	for (int i = 0; i < n; i++) pthread_join(t[i], NULL), slots += got[i];
	pthread_barrier_destroy(&bar);
	return slots;
}

static void check_slots(void)
{
	/* this thread and the earlier tests' threads hold some already: the dead ones are taken over */
	int n = READERS_MAX + 40;
	usleep(50000); /* joined threads finish exiting: their tids gone */
	int a = claim_all(n);
	CHECK(a == READERS_MAX - 1, "%d live threads: %d got a slot (all but this thread's), the rest count elsewhere", n, a);
	usleep(50000);
	int b = claim_all(n);
	CHECK(b == READERS_MAX - 1, "after they exited, %d new threads: %d took over a dead thread's slot", n, b);
}

/* ---- fork: the child's copy of the parent's hits never delays the child's waits ---- */
static void check_fork(void)
{
	pthread_t t;
	hold_go = hold_in = 0;
	pthread_create(&t, NULL, holder, NULL);
	while (!__atomic_load_n(&hold_in, __ATOMIC_ACQUIRE)) usleep(1000);
	int marked = reader_enter(&Y); /* this thread's own slot, then leaves before forking */
	if (marked) reader_leave();
	pid_t pid = fork();
	if (pid == 0) {
		readers_child_reset();
		long long w = timed_wait(&X, 1000);
		int again = reader_enter(&X);
		if (again) reader_leave();
		_exit(w < 100 && again ? 0 : 1);
	}
	int st = 0;
	waitpid(pid, &st, 0);
	CHECK(marked && WIFEXITED(st) && WEXITSTATUS(st) == 0,
	      "a fork child does not wait for the parent's hit in progress, and its thread keeps its slot");
	hold_go = 1;
	pthread_join(t, NULL);
}

int main(void)
{
	setvbuf(stdout, NULL, _IOLBF, 0);
	check_wait();
	check_torture();
	check_fork();
	check_slots();
	printf("readers_test: %d failed\n", failures);
	return failures ? 1 : 0;
}
