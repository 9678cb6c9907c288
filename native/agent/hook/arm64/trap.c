/* arm64 trap tier, for an entry the inline hook refuses (no page within the b's +-128 MiB, ...): a
 * `brk #WBPF_A64_BRK` on the entry's first instruction (after a landing pad kept on a BTI-guarded page),
 * stored with every other thread parked (poke.c); at a hit the SIGTRAP handler builds pt_regs from the
 * signal's context, runs the hook's handler, puts x0-x30 and NZCV back from them (a return probe rewrote
 * x30) and resumes at the instruction's relocated copy, anywhere in memory, which branches back. */
#define _GNU_SOURCE
#include <errno.h>
#include <signal.h>
#include <string.h>
#include <ucontext.h>
#include "a64.h"

#define WBPF_A64_BRK 0x7762u /* "wb" */
#define A64_BRK_INSN (0xd4200000u | (WBPF_A64_BRK << 5))
#define NZCV_MASK 0xf0000000ull

uint64_t wbpf_a64_trap_hits;

int wbpf_arch_trap_build(struct wbpf_tramp *t, uint8_t *page, uintptr_t fn, size_t fn_size, size_t readable,
			 wbpf_hook_handler handler, void *cookie, struct wbpf_hook_error *err)
{
	size_t off;
	int rc = wbpf_a64_entry(fn, fn_size, readable, "a brk takes", &off, err);
	if (rc) return rc;
	const uint32_t *code = (const uint32_t *)fn;
	uintptr_t at = fn + off;
	/* the branch back is a `b` when near; far it is `br x16`, which on a BTI-guarded page must land on a
	 * landing pad, and the instruction after the entry's is none */
	if (off && !a64_b((uintptr_t)page + 64, at + 4))
		return wbpf_fail(err, WBPF_HOOK_ENOMEM, "no page within +-128 MiB of %#lx for the out-of-line copy, which a BTI-guarded function needs (its far branch back would need a landing pad)",
				 (unsigned long)fn);
	uint32_t *dst = (uint32_t *)page;
	char why[120];
	int n = a64_relocate(code[off / 4], at, dst, WBPF_TRAMP_PAGE / 4 - 4, (uintptr_t)page, why, sizeof why);
	if (n < 0) return wbpf_fail(err, WBPF_HOOK_EDECODE, "%s at +%zu", why, off);
	n += a64_emit_b(dst + n, (uintptr_t)page + 4u * (unsigned)n, at + 4); /* b, or ldr x16; br x16 when far */
	__builtin___clear_cache((char *)page, (char *)(dst + n));
	memset(t->map, 0xff, sizeof t->map);
	t->map[off] = 0;
	wbpf_trap_fill(t, page, (int)off + 4, handler, cookie);
	return 0;
}

/* async-signal-safe; runs on whatever stack the signal came on, in any thread */
static void on_trap(int sig, siginfo_t *si, void *ucv)
{
	ucontext_t *uc = ucv;
	mcontext_t *m = &uc->uc_mcontext;
	uintptr_t pc = (uintptr_t)m->pc;
	/* bounded: each pass that goes round again saw the site unhooked and hooked again meanwhile */
	for (int pass = 0; pass < 64; pass++) {
		if (si->si_code == TRAP_BRKPT && *(volatile uint32_t *)pc == A64_BRK_INSN) {
			/* brk at fn, or at fn+4 after a landing pad */
			struct wbpf_site *s = wbpf_site_find(pc);
			if (!s || !__atomic_load_n(&s->trap, __ATOMIC_ACQUIRE)) s = wbpf_site_find(pc - 4);
			struct wbpf_tramp *t = s ? __atomic_load_n(&s->trap, __ATOMIC_ACQUIRE) : NULL;
			if (t && s->fn + (uintptr_t)(t->replaced - 4) == pc) {
				struct wbpf_pt_regs r;
				memcpy(r.regs, m->regs, sizeof r.regs);
				r.sp = m->sp, r.pc = s->fn, r.pstate = m->pstate & NZCV_MASK;
				int saved_errno = errno;
				t->handler(&r, t->cookie);
				errno = saved_errno;
				/* as the inline trampoline restores them: x30 may now be a return probe's stub */
				memcpy(m->regs, r.regs, sizeof r.regs);
				m->pstate = (m->pstate & ~NZCV_MASK) | (r.pstate & NZCV_MASK);
				m->pc = t->orig;
				__atomic_fetch_add(&wbpf_a64_trap_hits, 1, __ATOMIC_RELAXED);
				return;
			}
		}
		if (si->si_code == TRAP_BRKPT && (*(volatile uint32_t *)pc & 0xffe0001fu) != 0xd4200000u && (wbpf_site_find(pc) || wbpf_site_find(pc - 4))) {
			/* our brk is gone (unhooked while this thread was parked between its trap and this handler):
			 * run what is there now */
			return;
		}
		/* a brk there, though no record was seen above: the hook was detached (the instruction put back, then the
		 * record cleared) and attached again (the record set, then the brk written) between the looks; the brk
		 * seen now is that new one, whose record is set: look again rather than pass our trap on as the program's */
		struct wbpf_site *again = si->si_code == TRAP_BRKPT && *(volatile uint32_t *)pc == A64_BRK_INSN ? wbpf_site_find(pc) : NULL;
		if (!again || !__atomic_load_n(&again->trap, __ATOMIC_ACQUIRE)) again = si->si_code == TRAP_BRKPT ? wbpf_site_find(pc - 4) : NULL;
		if (!again || !__atomic_load_n(&again->trap, __ATOMIC_ACQUIRE)) break;
	}
	wbpf_sigtrap_chain(sig, si, ucv);
}

int wbpf_arch_trap_in(struct wbpf_site *s, struct wbpf_tramp *t, struct wbpf_hook_error *err)
{
	/* SA_NODEFER: a trap hook hit while a handler runs (a program's helper, the app's own SIGTRAP handler)
	 * must not find SIGTRAP blocked: the kernel would kill the process */
	int rc = wbpf_sigtrap_install(on_trap, SA_RESTART | SA_NODEFER, err);
	if (rc) return rc;
	__atomic_store_n(&s->trap, t, __ATOMIC_SEQ_CST);
	if ((rc = wbpf_a64_poke(s->fn + (uintptr_t)(t->replaced - 4), A64_BRK_INSN, err))) __atomic_store_n(&s->trap, NULL, __ATOMIC_SEQ_CST);
	return rc;
}

int wbpf_arch_trap_out(struct wbpf_site *s, struct wbpf_tramp *t, struct wbpf_hook_error *err)
{
	int off = t->replaced - 4;
	uint32_t insn;
	memcpy(&insn, s->orig_bytes + off, 4);
	int rc = wbpf_a64_poke(s->fn + (uintptr_t)off, insn, err);
	/* after the instruction: a thread that trapped before and finds no record sees the brk gone and re-runs it */
	if (!rc) __atomic_store_n(&s->trap, NULL, __ATOMIC_SEQ_CST);
	return rc;
}
