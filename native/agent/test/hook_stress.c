/* Stress test of live patching: THREADS threads call the function while the main thread hooks and
 * unhooks it CYCLES times; every call inside a hooked window must be seen, with the right PARM1/2.
 * usage: hook_stress endbr|push|nop5|jshort|plain|lfence|tiny [CYCLES] [THREADS] [YIELD]
 * (lfence, tiny: entries the inline hook refuses, hooked by the trap tier: wbpf_hook_attach_any) */

/* Windows: a call that starts after an attach returned and ends before the next detach starts.
 * Workers yield the CPU every YIELD calls (default 1024; 0: never) so that all of them get scheduled
 * often on a small machine: each attach waits until every thread has answered its signal. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <link.h>
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "../hook/hook.h"

int t_endbr(int, int), t_push(int, int), t_nop5(int, int), t_plain(int, int), t_jshort(int, int);
int t_lfence(int, int), t_tiny(int, int);
int t_gv = 7;

typedef int (*ifn)(int, int);
static int m_add(int a, int b) { return a + b; }
static int m_plain(int a, int b) { return a * 9 + b + 1000; }
static int m_jshort(int a, int b) { return a >= 0 ? a + b : b - a; }

static ifn target, model;
static long yield_every = 1024; /* a power of 2; 0 or 1: never */
static long epoch;            /* k while hook k is attached (after attach returned, before detach starts), else 0 */
static volatile int stop;
static long hits, calls, in_window, missed, bad, wrong_args;

static __thread volatile int seen;
static __thread int my_a, my_b;

static void handler(struct wbpf_pt_regs *r, void *cookie)
{
	(void)cookie;
	if ((int)r->rdi != my_a || (int)r->rsi != my_b) __atomic_fetch_add(&wrong_args, 1, __ATOMIC_RELAXED);
	seen = 1;
	__atomic_fetch_add(&hits, 1, __ATOMIC_RELAXED);
}

static void *worker(void *arg)
{
	int idx = (int)(long)arg;
	ifn volatile f = target;
	long n = 0, win = 0, miss = 0, b = 0;
	while (!__atomic_load_n(&stop, __ATOMIC_RELAXED)) {
		int a = (int)(n & 0xfff) - 0x800; /* both signs: jshort's branch goes both ways */
		my_a = a;
		my_b = idx;
		seen = 0;
		long e0 = __atomic_load_n(&epoch, __ATOMIC_SEQ_CST);
		int r = f(a, idx);
		long e1 = __atomic_load_n(&epoch, __ATOMIC_SEQ_CST);
		if (r != model(a, idx)) b++;
		if (e0 && e0 == e1) {
			win++;
			if (!seen) miss++;
		}
		if ((++n & (yield_every - 1)) == 0) sched_yield();
	}
	__atomic_fetch_add(&calls, n, __ATOMIC_RELAXED);
	__atomic_fetch_add(&in_window, win, __ATOMIC_RELAXED);
	__atomic_fetch_add(&missed, miss, __ATOMIC_RELAXED);
	__atomic_fetch_add(&bad, b, __ATOMIC_RELAXED);
	return NULL;
}

static long now_ns(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return t.tv_sec * 1000000000L + t.tv_nsec;
}

int main(int argc, char **argv)
{
	const char *name = argc > 1 ? argv[1] : "endbr";
	long cycles = argc > 2 ? atol(argv[2]) : 1000;
	int threads = argc > 3 ? atoi(argv[3]) : 8;
	if (argc > 4) yield_every = atol(argv[4]);
	if (yield_every <= 1) yield_every = 1L << 62;
	if (!strcmp(name, "endbr")) target = t_endbr, model = m_add;
	else if (!strcmp(name, "push")) target = t_push, model = m_add;
	else if (!strcmp(name, "nop5")) target = t_nop5, model = m_add;
	else if (!strcmp(name, "jshort")) target = t_jshort, model = m_jshort;
	else if (!strcmp(name, "plain")) target = t_plain, model = m_plain;
	else if (!strcmp(name, "lfence")) target = t_lfence, model = m_add;
	else if (!strcmp(name, "tiny")) target = t_tiny, model = m_add;
	else { fprintf(stderr, "unknown target %s\n", name); return 2; }
	Dl_info info;
	const ElfW(Sym) *sym = NULL;
	if (!dladdr1((void *)target, &info, (void **)&sym, RTLD_DL_SYMENT) || !sym) {
		fprintf(stderr, "no symbol for %s (link with -rdynamic)\n", name);
		return 2;
	}
	size_t size = sym->st_size;
	pthread_t tid[64];
	if (threads > 64) threads = 64;
	for (int i = 0; i < threads; i++) pthread_create(&tid[i], NULL, worker, (void *)(long)i);
	long t0 = now_ns();
	for (long k = 1; k <= cycles; k++) {
		struct wbpf_hook *h;
		struct wbpf_hook_error e;
		if (wbpf_hook_attach_any((void *)target, size, handler, NULL, &h, &e)) {
			printf("FAIL attach %ld: %s: %s\n", k, wbpf_hook_code_name(e.code), e.reason);
			return 1;
		}
		__atomic_store_n(&epoch, k, __ATOMIC_SEQ_CST);
		long h0 = __atomic_load_n(&hits, __ATOMIC_RELAXED), w0 = now_ns();
		while (__atomic_load_n(&hits, __ATOMIC_RELAXED) - h0 < 64 && now_ns() - w0 < 2000000) sched_yield();
		__atomic_store_n(&epoch, 0, __ATOMIC_SEQ_CST);
		if (wbpf_hook_detach(h, &e)) {
			printf("FAIL detach %ld: %s: %s\n", k, wbpf_hook_code_name(e.code), e.reason);
			return 1;
		}
		sched_yield();
	}
	stop = 1;
	for (int i = 0; i < threads; i++) pthread_join(tid[i], NULL);
	struct wbpf_hook_stats st;
	wbpf_hook_get_stats(&st);
	printf("stress %s: cycles %ld threads %d calls %ld in-window %ld hits %ld missed %ld bad %ld wrong-args %ld "
	       "trapped %lu rewound %lu evacuated %lu trap-hits %lu (%.0f ms, sync %s)\n",
	       name, cycles, threads, calls, in_window, hits, missed, bad, wrong_args, (unsigned long)st.trapped,
	       (unsigned long)st.rewound, (unsigned long)st.evacuated, (unsigned long)st.trap_hits, (now_ns() - t0) / 1e6, wbpf_hook_sync_method());
	int ok = missed == 0 && bad == 0 && wrong_args == 0 && in_window > 0;
	printf("hook_stress: %s\n", ok ? "OK" : "FAIL");
	return !ok;
}
