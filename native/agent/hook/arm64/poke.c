/* arm64 live patching of a function entry while other threads run it: every other thread is parked
 * in the agent's signal handler (park.c; or seen asleep in a syscall), the one 4-byte instruction is stored
 * with a single aligned store, the caches are made coherent (DC CVAU, IC IVAU, DSB, ISB; then
 * membarrier SYNC_CORE), and the threads are released (their return from the handler is an exception
 * return: context-synchronizing). The ARM ARM (B2.2.5) lets code be modified while another core runs
 * it only between B, BL, NOP, BRK, ... instructions; the entry's old instruction is any, so no thread
 * may be running it during the store. */
#define _GNU_SOURCE
#include <errno.h>
#include <signal.h>
#include <string.h>
#include "a64.h"

static struct wbpf_hook_stats stats;

/* async-signal-safe: acknowledges park.c's round, then waits until the patcher releases it */
static void on_park(int sig, siginfo_t *si, void *uc)
{
	(void)sig, (void)uc;
	uint32_t seq = wbpf_park_mine(si);
	if (!seq) return;
	int saved = errno;
	wbpf_park_ack();
	wbpf_park_wait(seq);
	errno = saved;
}

/* stores one instruction at addr with every other thread stopped (also the trap tier's brk, trap.c) */
int wbpf_a64_poke(uintptr_t addr, uint32_t insn, struct wbpf_hook_error *err)
{
	int rc = wbpf_park_install(on_park, err);
	if (rc) return rc;
	struct wbpf_text tx;
	if ((rc = wbpf_text_open(&tx, addr, 4, err))) return rc;
	(void)wbpf_sync_method_name(); /* its one-time setup now, not while the other threads are parked */
	if ((rc = wbpf_park_round(NULL, NULL, "in a syscall", err))) {
		wbpf_text_close(&tx);
		return rc;
	}
	__atomic_store_n((uint32_t *)addr, insn, __ATOMIC_SEQ_CST);
	__builtin___clear_cache((char *)addr, (char *)addr + 4); /* dc cvau; dsb ish; ic ivau; dsb ish; isb */
	wbpf_sync_cores(); /* threads asleep in a syscall, other cores: serialised before they go on */
	wbpf_park_release();
	wbpf_text_close(&tx);
	return 0;
}

void wbpf_hook_get_stats(struct wbpf_hook_stats *out)
{
	/* the x86-64 int3 protocol's counters: nothing traps or is evacuated here */
	out->trapped = __atomic_load_n(&stats.trapped, __ATOMIC_RELAXED);
	out->rewound = __atomic_load_n(&stats.rewound, __ATOMIC_RELAXED);
	out->evacuated = __atomic_load_n(&stats.evacuated, __ATOMIC_RELAXED);
	out->trap_hits = __atomic_load_n(&wbpf_a64_trap_hits, __ATOMIC_RELAXED);
}

int wbpf_arch_patch_in(struct wbpf_site *s, struct wbpf_tramp *t, struct wbpf_hook_error *err)
{
	uintptr_t at = s->fn + (uintptr_t)(t->replaced - 4);
	uint32_t b = a64_b(at, t->entry);
	if (!b) return wbpf_fail(err, WBPF_HOOK_ENOMEM, "trampoline out of the b's reach of %#lx", (unsigned long)at);
	__atomic_store_n(&s->trap_target, t->entry, __ATOMIC_RELEASE);
	return wbpf_a64_poke(at, b, err);
}

int wbpf_arch_patch_out(struct wbpf_site *s, struct wbpf_tramp *t, struct wbpf_hook_error *err)
{
	int off = t->replaced - 4;
	uint32_t insn;
	memcpy(&insn, s->orig_bytes + off, 4);
	__atomic_store_n(&s->trap_target, t->orig, __ATOMIC_RELEASE);
	return wbpf_a64_poke(s->fn + (uintptr_t)off, insn, err);
}
