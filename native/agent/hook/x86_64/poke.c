/* x86-64 live patching of a function entry while other threads run it: int3-first writes (the
 * kernel's text_poke_bp order) with a core sync after each, the SIGTRAP handler for threads hitting
 * our int3 (and for the trap tier's hits, trap.c), and the evacuation of threads stopped inside the
 * replaced bytes to the relocated copy (park.c signals them). */
#define _GNU_SOURCE
#include <errno.h>
#include <signal.h>
#include <string.h>
#include <ucontext.h>
#include "x86.h"

static struct wbpf_hook_stats stats;
static int signals_ready;

/* one evacuation at a time (hook.c's lock is held) */
static struct {
	uintptr_t fn, orig;
	int len;
	uint8_t map[WBPF_REPLACED_MAX];
	int bad; /* a thread stopped inside an instruction: cannot happen, but never guess */
} evac;

static void on_trap(int sig, siginfo_t *si, void *ucv)
{
	ucontext_t *uc = ucv;
	greg_t *g = uc->uc_mcontext.gregs;
	if (si->si_code == SI_KERNEL) { /* int3 */
		uintptr_t at = (uintptr_t)g[REG_RIP] - 1;
		struct wbpf_site *s = wbpf_site_find(at);
		/* bounded: each pass that goes round again saw the site unhooked and hooked again meanwhile */
		for (int pass = 0; s && pass < 64; pass++) {
			if (wbpf_x86_trap_hit(s, at, ucv)) return; /* a trap-tier hook's hit */
			int state = __atomic_load_n(&s->state, __ATOMIC_ACQUIRE);
			if (*(volatile uint8_t *)at != 0xcc) {
				/* our int3 is gone (the patch finished meanwhile): run what is there now */
				g[REG_RIP] = (greg_t)at;
				__atomic_fetch_add(&stats.rewound, 1, __ATOMIC_RELAXED);
				return;
			}
			/* an int3 there, though the trap tier had no record above: its hook was detached (the byte put
			 * back, then the record cleared) and attached again (the record set, then the int3 written)
			 * between the two looks. The int3 seen is that new one, whose record is set: look again (the
			 * trap target is an inline patch's, never a trap hook's: going there would jump to 0) */
			if (__atomic_load_n(&s->trap, __ATOMIC_ACQUIRE)) continue;
			if (state == WBPF_SITE_PATCHING || state == WBPF_SITE_UNPATCHING) {
				g[REG_RIP] = (greg_t)__atomic_load_n(&s->trap_target, __ATOMIC_ACQUIRE);
				__atomic_fetch_add(&stats.trapped, 1, __ATOMIC_RELAXED);
				return;
			}
			break;
		}
	}
	wbpf_sigtrap_chain(sig, si, ucv);
}

/* a round of park.c's signal: a thread stopped inside (fn, fn+len) goes on at the same point of the copy */
static void on_evac(int sig, siginfo_t *si, void *ucv)
{
	(void)sig;
	if (!wbpf_park_mine(si)) return;
	int saved = errno;
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
	wbpf_park_ack();
	errno = saved;
}

int wbpf_x86_signals_init(struct wbpf_hook_error *err)
{
	if (signals_ready) return 0;
	int rc = wbpf_park_install(on_evac, err);
	if (rc) return rc;
	/* SA_NODEFER: a trap hook hit while our handler runs (a program's helper, the app's own SIGTRAP
	 * handler) must not find SIGTRAP blocked: the kernel would kill the process */
	rc = wbpf_sigtrap_install(on_trap, SA_RESTART | SA_NODEFER, err);
	if (rc) return rc;
	signals_ready = 1;
	return 0;
}

/* a thread asleep outside (fn, fn+len) never gets inside once the int3 is in place */
static int outside(uintptr_t pc, void *arg)
{
	(void)arg;
	return !(pc > evac.fn && pc < evac.fn + (uintptr_t)evac.len);
}

/* every other thread: if stopped inside (fn, fn+len), continue at the same point of the copy */
static int evacuate(uintptr_t fn, const struct wbpf_tramp *t, struct wbpf_hook_error *err)
{
	evac.fn = fn;
	evac.orig = t->orig;
	evac.len = t->replaced;
	memcpy(evac.map, t->map, sizeof evac.map);
	evac.bad = 0;
	int rc = wbpf_park_round(outside, NULL, "outside the entry", err);
	wbpf_park_release(); /* nobody waits: the handlers only acknowledge */
	if (rc) return rc;
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
