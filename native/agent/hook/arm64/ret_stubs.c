/* arm64 return diversion: one 16-byte stub per distinct real return address (put in x30 through the
 * entry trampoline's saved regs[30]), so that a diverted return always knows where to continue, the
 * stubs' pool and its lock-free index; the PAC and GCS checks that keep a return from being diverted. */
#define _GNU_SOURCE
#include <errno.h>
#include <sched.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <unistd.h>
#include "a64.h"

/* Stub pages, mapped PROT_NONE at the first arm and filled one by one when first needed. A page:
 * +0 the address of wbpf_a64_ret_common; +16*j (j = 1..255) a stub: `movz x16, #k` (k its number),
 * `ldr x17, <+0 of the page>`, `br x17`, `brk #0`. */
#define PAGE 4096
#define STUB 16
#define STUB_PAGES 256
#define PER_PAGE (PAGE / STUB - 1)
#define NSTUBS (STUB_PAGES * PER_PAGE) /* 65280: k fits movz's 16 bits */
#define TABLE_BITS 17
#define TABLE_SIZE (1u << TABLE_BITS)

enum { P_EMPTY, P_FILLING, P_READY, P_FAILED };

extern const uint8_t wbpf_a64_ret_common[];
uintptr_t wbpf_a64_ret_entered(struct wbpf_pt_regs *regs, uint64_t k);

static int pool_state;
static uint8_t *code;
static uint64_t *orig_of;
static uint32_t *table;
static uint32_t next_stub;
static uint8_t page_state[STUB_PAGES];
static pid_t filler_pid;

static int pool_map(void);
static int page_fill(uint32_t p);

/* another thread mapping or filling: wait for it, unless this is a fork child of the filler's process */
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
	if (!__atomic_compare_exchange_n(&pool_state, &st, P_FILLING, 0, __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE)) return 0;
	size_t data = (size_t)NSTUBS * 8 + (size_t)TABLE_SIZE * 4;
	void *c = mmap(NULL, (size_t)STUB_PAGES * PAGE, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	void *d = mmap(NULL, data, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (c == MAP_FAILED || d == MAP_FAILED) {
		if (c != MAP_FAILED) munmap(c, (size_t)STUB_PAGES * PAGE);
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
	if (!__atomic_compare_exchange_n(&page_state[p], &st, P_FILLING, 0, __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE)) return 0;
	uint8_t *pg = code + (size_t)p * PAGE;
	if (mprotect(pg, PAGE, PROT_READ | PROT_WRITE)) {
		__atomic_store_n(&page_state[p], P_FAILED, __ATOMIC_RELEASE);
		return 0;
	}
	uint64_t common = (uint64_t)(uintptr_t)wbpf_a64_ret_common;
	memcpy(pg, &common, 8);
	memset(pg + 8, 0, PAGE - 8); /* udf #0 */
	for (int j = 1; j <= PER_PAGE; j++) {
		uint32_t *w = (uint32_t *)(pg + STUB * j);
		uint32_t k = p * PER_PAGE + (uint32_t)(j - 1);
		int32_t lit = -(STUB * j + 4) / 4; /* from the ldr to +0 of the page */
		w[0] = 0xd2800000u | (k << 5) | 16;                      /* movz x16, #k */
		w[1] = 0x58000000u | (((uint32_t)lit & 0x7ffff) << 5) | 17; /* ldr x17, page+0 */
		w[2] = 0xd61f0220u;                                      /* br x17 */
		w[3] = 0xd4200000u;                                      /* brk #0 */
	}
	__builtin___clear_cache((char *)pg, (char *)pg + PAGE);
	if (mprotect(pg, PAGE, PROT_READ | PROT_EXEC)) {
		mprotect(pg, PAGE, PROT_NONE);
		__atomic_store_n(&page_state[p], P_FAILED, __ATOMIC_RELEASE);
		return 0;
	}
	__atomic_store_n(&page_state[p], P_READY, __ATOMIC_RELEASE);
	return 1;
}

static uintptr_t stub_addr(uint32_t k)
{
	return (uintptr_t)code + (uintptr_t)(k / PER_PAGE) * PAGE + STUB * (k % PER_PAGE + 1);
}

/* the address without a pointer authentication code (xpaclri: a nop on a core without PAC) */
static uintptr_t strip_pac(uintptr_t p)
{
	register uintptr_t x30 __asm__("x30") = p;
	__asm__("hint #7" : "+r"(x30));
	return x30;
}

uintptr_t wbpf_arch_ret_stub(uintptr_t orig)
{
	/* a signed return address (the entry's paciasp ran before the hook: a landing pad kept on a
	 * BTI-guarded page) would fail its autiasp if replaced: that call goes untraced */
	if (!orig || strip_pac(orig) != orig || !pool_ready()) return 0;
	uint32_t h = (uint32_t)(((uint64_t)orig * 0x9e3779b97f4a7c15ull) >> (64 - TABLE_BITS));
	int64_t claimed = -1;
	for (uint32_t n = 0; n < TABLE_SIZE; n++, h = (h + 1) & (TABLE_SIZE - 1)) {
		uint32_t v = __atomic_load_n(&table[h], __ATOMIC_ACQUIRE);
		if (!v) {
			if (claimed < 0) {
				if (__atomic_load_n(&next_stub, __ATOMIC_RELAXED) >= NSTUBS) return 0;
				uint32_t k = __atomic_fetch_add(&next_stub, 1, __ATOMIC_RELAXED);
				if (k >= NSTUBS || !page_ready(k / PER_PAGE)) return 0;
				claimed = k;
				__atomic_store_n(&orig_of[k], (uint64_t)orig, __ATOMIC_RELAXED);
			}
			uint32_t want = (uint32_t)claimed + 1;
			if (__atomic_compare_exchange_n(&table[h], &v, want, 0, __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE))
				return stub_addr((uint32_t)claimed);
		}
		if (__atomic_load_n(&orig_of[v - 1], __ATOMIC_RELAXED) == orig) return stub_addr(v - 1);
	}
	return 0;
}

uintptr_t wbpf_arch_ret_orig(uintptr_t addr)
{
	if (__atomic_load_n(&pool_state, __ATOMIC_ACQUIRE) != P_READY) return 0;
	uintptr_t off = addr - (uintptr_t)code;
	if (off >= (uintptr_t)STUB_PAGES * PAGE || (off & (STUB - 1)) || !(off & (PAGE - 1))) return 0;
	uint32_t k = (uint32_t)(off / PAGE) * PER_PAGE + (uint32_t)((off & (PAGE - 1)) / STUB) - 1;
	return (uintptr_t)__atomic_load_n(&orig_of[k], __ATOMIC_RELAXED);
}

/* PR_GET_SHADOW_STACK_STATUS (Linux 6.13+, arm64 GCS): a thread with a guarded control stack would
 * fault on a rewritten return address; older kernels answer EINVAL */
int wbpf_arch_ret_blocked(void)
{
	unsigned long status = 0;
	int saved_errno = errno;
	int rc = prctl(74 /* PR_GET_SHADOW_STACK_STATUS */, &status, 0, 0, 0);
	errno = saved_errno;
	return rc == 0 && (status & 1);
}

/* called by wbpf_a64_ret_common (ret_tramp.S) with the stub's number; returns where to go */
uintptr_t wbpf_a64_ret_entered(struct wbpf_pt_regs *regs, uint64_t k)
{
	uintptr_t orig = k < NSTUBS ? (uintptr_t)__atomic_load_n(&orig_of[k], __ATOMIC_RELAXED) : 0;
	regs->pc = orig;
	regs->regs[30] = orig;
	wbpf_ret_fire(regs, (uintptr_t)regs->sp, orig);
	return orig;
}
