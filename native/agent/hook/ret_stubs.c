/* Return stubs, any arch: one 16-byte stub per distinct real return address (so that a diverted return
 * always knows where to continue: the address is never only in a table that could lose it), their pool of
 * pages filled one by one when first needed, and its lock-free index. hook/<arch>/ret_stub.c writes a
 * page's stubs (wbpf_arch_ret_page_write) and says which return addresses may be diverted. */
#define _GNU_SOURCE
#include <errno.h>
#include <sched.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>
#include "internal.h"

#define STUB_PAGES 256
#define NSTUBS (STUB_PAGES * WBPF_RET_PER_PAGE) /* 65280: k fits arm64's movz (16 bits) */
#define TABLE_BITS 17 /* 2^17 index slots for at most 65280 stubs: load <= 0.5 */
#define TABLE_SIZE (1u << TABLE_BITS)

enum { P_EMPTY, P_FILLING, P_READY, P_FAILED };

static int pool_state;             /* atomic: P_EMPTY, P_FILLING (mapping), P_READY, P_FAILED */
static uint8_t *code;              /* STUB_PAGES pages, PROT_NONE until filled */
static uint64_t *orig_of;          /* [NSTUBS]: the real return address of stub k; 0: not handed out */
static uint32_t *table;            /* [TABLE_SIZE]: k + 1 by hash of the address; 0: empty */
static uint32_t next_stub;         /* atomic */
static uint8_t page_state[STUB_PAGES]; /* atomic: P_* */

static int pool_map(void);
static int page_fill(uint32_t p);

/* the slow paths (mmap, mprotect) keep the program's errno */
/* Another thread mapping or filling: wait for it (its own signal handlers never get here: ret.c's busy
 * flag keeps a nested arm out), else the calls of every thread meanwhile would go unreported (hundreds of
 * them when the filler is preempted on a loaded machine). Not in a fork child of the filler's process
 * (the filler is not there): a filler stores its pid before it claims the state. */
static pid_t filler_pid; /* atomic */
static int filling_here(void)
{
	if (__atomic_load_n(&filler_pid, __ATOMIC_ACQUIRE) != getpid()) return 0;
	sched_yield();
	return 1;
}

static int pool_ready(void)
{
	int st = __atomic_load_n(&pool_state, __ATOMIC_ACQUIRE);
	if (st == P_READY) return 1;
	if (st == P_FILLING) {
		while ((st = __atomic_load_n(&pool_state, __ATOMIC_ACQUIRE)) == P_FILLING)
			if (!filling_here()) return 0;
		return st == P_READY;
	}
	if (st != P_EMPTY) return 0;
	int saved_errno = errno, ok = pool_map();
	errno = saved_errno;
	return ok;
}

static int page_ready(uint32_t p)
{
	uint8_t st = __atomic_load_n(&page_state[p], __ATOMIC_ACQUIRE);
	if (st == P_READY) return 1;
	if (st == P_FILLING) {
		while ((st = __atomic_load_n(&page_state[p], __ATOMIC_ACQUIRE)) == P_FILLING)
			if (!filling_here()) return 0;
		return st == P_READY;
	}
	if (st != P_EMPTY) return 0;
	int saved_errno = errno, ok = page_fill(p);
	errno = saved_errno;
	return ok;
}

static int pool_map(void)
{
	int st = P_EMPTY;
	__atomic_store_n(&filler_pid, getpid(), __ATOMIC_RELEASE);
	/* one caller maps; one that lost the race to it waits, as pool_ready does (it saw P_EMPTY a moment
	 * before: returning at once left that call's return unreported, 1 in 4000 returns of 8 threads under load) */
	if (!__atomic_compare_exchange_n(&pool_state, &st, P_FILLING, 0, __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE)) {
		while (st == P_FILLING) {
			if (!filling_here()) return 0;
			st = __atomic_load_n(&pool_state, __ATOMIC_ACQUIRE);
		}
		return st == P_READY;
	}
	size_t data = (size_t)NSTUBS * 8 + (size_t)TABLE_SIZE * 4;
	void *c = mmap(NULL, (size_t)STUB_PAGES * WBPF_RET_PAGE, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	void *d = mmap(NULL, data, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (c == MAP_FAILED || d == MAP_FAILED) {
		if (c != MAP_FAILED) munmap(c, (size_t)STUB_PAGES * WBPF_RET_PAGE);
		if (d != MAP_FAILED) munmap(d, data);
		__atomic_store_n(&pool_state, P_FAILED, __ATOMIC_RELEASE);
		return 0;
	}
	code = c;
	orig_of = d;
	table = (uint32_t *)((uint8_t *)d + (size_t)NSTUBS * 8);
	__atomic_store_n(&pool_state, P_READY, __ATOMIC_RELEASE);
	return 1;
}

static int page_fill(uint32_t p)
{
	uint8_t st = P_EMPTY;
	__atomic_store_n(&filler_pid, getpid(), __ATOMIC_RELEASE);
	if (!__atomic_compare_exchange_n(&page_state[p], &st, P_FILLING, 0, __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE)) {
		while (st == P_FILLING) { /* the race's loser waits for the filler (pool_map) */
			if (!filling_here()) return 0;
			st = __atomic_load_n(&page_state[p], __ATOMIC_ACQUIRE);
		}
		return st == P_READY;
	}
	uint8_t *pg = code + (size_t)p * WBPF_RET_PAGE;
	if (mprotect(pg, WBPF_RET_PAGE, PROT_READ | PROT_WRITE)) {
		__atomic_store_n(&page_state[p], P_FAILED, __ATOMIC_RELEASE);
		return 0;
	}
	wbpf_arch_ret_page_write(pg, p * WBPF_RET_PER_PAGE);
	if (mprotect(pg, WBPF_RET_PAGE, PROT_READ | PROT_EXEC)) {
		mprotect(pg, WBPF_RET_PAGE, PROT_NONE);
		__atomic_store_n(&page_state[p], P_FAILED, __ATOMIC_RELEASE);
		return 0;
	}
	__atomic_store_n(&page_state[p], P_READY, __ATOMIC_RELEASE);
	return 1;
}

static uintptr_t stub_addr(uint32_t k)
{
	return (uintptr_t)code + (uintptr_t)(k / WBPF_RET_PER_PAGE) * WBPF_RET_PAGE + WBPF_RET_STUB * (k % WBPF_RET_PER_PAGE + 1);
}

/* this thread's last answer: a call site armed again and again (a loop calling the probed function) skips
 * the index. Never stale: a stub's address is never reused for another (orig_of[k] is written once), and a
 * fork child has the same pool */
static __thread uintptr_t last_orig __attribute__((tls_model("initial-exec")));
static __thread uintptr_t last_stub __attribute__((tls_model("initial-exec")));

static uintptr_t stub_lookup(uintptr_t orig);

uintptr_t wbpf_arch_ret_stub_last(uintptr_t orig) { return orig && orig == last_orig ? last_stub : 0; }

uintptr_t wbpf_arch_ret_stub(uintptr_t orig)
{
	if (orig && orig == last_orig) return last_stub;
	uintptr_t stub = stub_lookup(orig);
	if (stub) last_orig = orig, last_stub = stub;
	return stub;
}

static uintptr_t stub_lookup(uintptr_t orig)
{
	if (!orig || !wbpf_arch_ret_divertable(orig) || !pool_ready()) return 0;
	uint32_t h = (uint32_t)(((uint64_t)orig * 0x9e3779b97f4a7c15ull) >> (64 - TABLE_BITS));
	int64_t claimed = -1;
	for (uint32_t n = 0; n < TABLE_SIZE; n++, h = (h + 1) & (TABLE_SIZE - 1)) {
		uint32_t v = __atomic_load_n(&table[h], __ATOMIC_ACQUIRE);
		if (!v) {
			if (claimed < 0) {
				if (__atomic_load_n(&next_stub, __ATOMIC_RELAXED) >= NSTUBS) return 0;
				uint32_t k = __atomic_fetch_add(&next_stub, 1, __ATOMIC_RELAXED);
				if (k >= NSTUBS || !page_ready(k / WBPF_RET_PER_PAGE)) return 0; /* k stays unused */
				claimed = k;
				__atomic_store_n(&orig_of[k], (uint64_t)orig, __ATOMIC_RELAXED);
			}
			uint32_t want = (uint32_t)claimed + 1;
			if (__atomic_compare_exchange_n(&table[h], &v, want, 0, __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE))
				return stub_addr((uint32_t)claimed);
			/* another thread published this slot first: v is its entry */
		}
		if (__atomic_load_n(&orig_of[v - 1], __ATOMIC_RELAXED) == orig) return stub_addr(v - 1);
	}
	return 0;
}

uintptr_t wbpf_arch_ret_orig(uintptr_t addr)
{
	if (__atomic_load_n(&pool_state, __ATOMIC_ACQUIRE) != P_READY) return 0;
	uintptr_t off = addr - (uintptr_t)code;
	if (off >= (uintptr_t)STUB_PAGES * WBPF_RET_PAGE || (off & (WBPF_RET_STUB - 1)) || !(off & (WBPF_RET_PAGE - 1))) return 0;
	uint32_t k = (uint32_t)(off / WBPF_RET_PAGE) * WBPF_RET_PER_PAGE + (uint32_t)((off & (WBPF_RET_PAGE - 1)) / WBPF_RET_STUB) - 1;
	return (uintptr_t)__atomic_load_n(&orig_of[k], __ATOMIC_RELAXED);
}

uintptr_t wbpf_ret_stub_orig(uint64_t k)
{
	return k < NSTUBS ? (uintptr_t)__atomic_load_n(&orig_of[k], __ATOMIC_RELAXED) : 0;
}
