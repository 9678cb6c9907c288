/* Return probes (wbpf_hook_ret_arm in hook.h): each thread's shadow stack of diverted returns, pushed
 * at a function's entry, popped and reported when the return comes back through the arch's return
 * code (hook/<arch>/), stale entries (longjmp) dropped, and emptied before an exception unwinds. */
#define _GNU_SOURCE
#include <errno.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <unistd.h>
#include "internal.h"

#ifndef WBPF_RET_DEPTH /* join mode's agent (Makefile) has less: a dlopen'ed library's static TLS is small */
#define WBPF_RET_DEPTH 256
#endif

struct ret_entry {
	uintptr_t slot;             /* where the return address was (the entry's rsp) */
	uintptr_t orig;             /* the real return address */
	wbpf_hook_handler handler;
	void *cookie;
};

/* One per thread, in static TLS (no allocation at a hit; a fork copies it). e[0..depth) are the
 * armed calls, the innermost on top; entries are only read and written by their own thread, and
 * `busy` keeps a signal handler that interrupts an update from touching the stack. */
struct ret_stack {
	int busy;
	int depth;
	int blocked;                /* 0: not checked yet, 1: returns may be diverted, 2: they may not (shadow stack) */
	/* bit i: e[i]'s handler never writes the regs (wbpf_hook_ret_arm_ro): no copy. A bitmap, not a field of
	 * the entries: join mode's 32 entries must fit the static TLS a dlopen'ed library finds (its one word
	 * takes the padding before e[]) */
	uint32_t ro[(WBPF_RET_DEPTH + 31) / 32];
	struct ret_entry e[WBPF_RET_DEPTH];
};
static __thread struct ret_stack rs __attribute__((tls_model("initial-exec")));

/* unwind.c's interposers come with return probes (a static link pulls them in through this) */
extern const char wbpf_unwind_interposed;
__attribute__((used)) static const char *const pull_unwind = &wbpf_unwind_interposed;

#define BARRIER() __atomic_signal_fence(__ATOMIC_SEQ_CST)

static int enter(struct ret_stack *s)
{
	if (s->busy) return 0; /* a signal handler nested in this thread's own update: leave it alone */
	s->busy = 1;
	BARRIER();
	return 1;
}

static void leave(struct ret_stack *s)
{
	BARRIER();
	s->busy = 0;
}

/* pushes {rsp, orig} for the call whose entry stack pointer is rsp and whose return address is at *slot
 * (x86-64: the stack slot at rsp; arm64: the saved x30), and diverts it */
static int arm(struct ret_stack *s, uintptr_t rsp, volatile uintptr_t *slot, wbpf_hook_handler handler, void *cookie, uintptr_t ro)
{
	uintptr_t ra = *slot, stub = wbpf_arch_ret_stub_last(ra), orig = ra;
	int chained = 0;
	if (!stub) { /* not the call site this thread armed last */
		/* already diverted: a second arm of this call, or a tail call from a function whose return is
		 * armed; the return then reports both, innermost first (as the kernel's chained uretprobes) */
		orig = wbpf_arch_ret_orig(ra);
		chained = orig != 0;
		stub = ra;
		if (!chained) {
			orig = ra;
			stub = wbpf_arch_ret_stub(orig);
			if (!stub) return -1;
		}
	}
	/* entries below this frame are stale (a longjmp left them); so is one at the same slot whose
	 * diversion was overwritten by this call. Dropping one never loses an address: its stub still
	 * knows where to go (the return is then unreported). */
	int d = s->depth;
	while (d > 0 && (s->e[d - 1].slot < rsp ||
			 (s->e[d - 1].slot == rsp && (!chained || s->e[d - 1].orig != orig))))
		d--;
	if (d == WBPF_RET_DEPTH) {
		s->depth = d;
		return -1;
	}
	s->e[d] = (struct ret_entry){ rsp, orig, handler, cookie };
	if (ro) s->ro[d / 32] |= 1u << (d % 32);
	else s->ro[d / 32] &= ~(1u << (d % 32));
	BARRIER();
	s->depth = d + 1;
	BARRIER();
	*slot = stub;
	return 0;
}

static int ret_arm(const struct wbpf_pt_regs *entry_regs, wbpf_hook_handler on_return, void *cookie, uintptr_t ro)
{
	if (!entry_regs || !on_return) return -1;
	struct ret_stack *s = &rs;
	int rc = -1;
	if (!s->blocked) s->blocked = wbpf_arch_ret_blocked() ? 2 : 1;
	if (s->blocked == 1 && enter(s)) {
		rc = arm(s, (uintptr_t)WBPF_REGS_SP(entry_regs), WBPF_RET_ADDR_AT(entry_regs), on_return, cookie, ro);
		leave(s);
	}
	return rc;
}

int wbpf_hook_ret_arm(const struct wbpf_pt_regs *entry_regs, wbpf_hook_handler on_return, void *cookie)
{
	return ret_arm(entry_regs, on_return, cookie, 0);
}

int wbpf_hook_ret_arm_ro(const struct wbpf_pt_regs *entry_regs, wbpf_hook_handler on_return, void *cookie)
{
	return ret_arm(entry_regs, on_return, cookie, 1);
}

void wbpf_ret_fire(const struct wbpf_pt_regs *regs, uintptr_t slot, uintptr_t orig)
{
	struct ret_stack *s = &rs;
	int *err = &errno, saved_errno = *err;
	for (int first = 1;; first = 0) {
		if (!enter(s)) break;
		/* the innermost entry of this slot; entries above it are calls that never returned
		 * (longjmp): dropped. Never past it: no match, nothing popped. Then the chained ones. */
		int i = s->depth - 1;
		if (first)
			while (i >= 0 && !(s->e[i].slot == slot && s->e[i].orig == orig)) i--;
		else if (i >= 0 && !(s->e[i].slot == slot && s->e[i].orig == orig))
			i = -1;
		if (i < 0) {
			leave(s);
			break;
		}
		wbpf_hook_handler h = s->e[i].handler;
		void *cookie = s->e[i].cookie;
		uint32_t ro = s->ro[i / 32] & (1u << (i % 32));
		/* a chained entry below it (a tail call's): looked for again after the handler, else none can come
		 * (the handler's own calls push and pop above e[i - 1], whose slot is above their stack) */
		int more = i > 0 && s->e[i - 1].slot == slot && s->e[i - 1].orig == orig;
		BARRIER();
		s->depth = i;
		leave(s);
		if (ro) /* it never writes them (wbpf_hook_ret_arm_ro): no 168-byte copy per return */
			h((struct wbpf_pt_regs *)regs, cookie);
		else {
			struct wbpf_pt_regs copy = *regs; /* what the caller gets back does not depend on the handler */
			h(&copy, cookie);
		}
		if (!more) break;
	}
	*err = saved_errno; /* the function's errno, whatever the handlers did */
}

/* reads 8 bytes at addr without faulting if it is not mapped (a stack that was freed) */
__attribute__((unused)) static int read_word(uintptr_t addr, uintptr_t *out)
{
	struct iovec local = { out, sizeof *out }, remote = { (void *)addr, sizeof *out };
	long n = syscall(SYS_process_vm_readv, (long)getpid(), &local, 1L, &remote, 1L, 0L);
	if (n == (long)sizeof *out) return 0;
	if (n < 0 && (errno == ENOSYS || errno == EPERM)) { /* a sandbox forbids it: read directly */
		*out = *(volatile uintptr_t *)addr;
		return 0;
	}
	return -1;
}

void wbpf_ret_unwinding(void)
{
	struct ret_stack *s = &rs;
	int saved_errno = errno;
	if (!s->depth || !enter(s)) {
		errno = saved_errno;
		return;
	}
	uintptr_t sp = (uintptr_t)__builtin_frame_address(0);
#if defined(__aarch64__)
	/* arm64: a diverted return address is wherever its function saved x30 (its frame, below its entry
	 * sp), not at the entry's sp: every stack word between this frame and the outermost live armed
	 * entry that holds a return stub's address gets its real return address back */
	uintptr_t top = 0;
	for (int i = 0; i < s->depth; i++)
		if (s->e[i].slot >= sp && s->e[i].slot > top && s->e[i].slot - sp < (8u << 20)) top = s->e[i].slot;
	for (uintptr_t a = sp & ~(uintptr_t)7; a < top; a += 8) {
		uintptr_t v = *(volatile uintptr_t *)a, o = wbpf_arch_ret_orig(v);
		if (o) *(volatile uintptr_t *)a = o;
	}
#else
	for (int i = s->depth - 1; i >= 0; i--) {
		struct ret_entry *e = &s->e[i];
		uintptr_t v;
		if (e->slot < sp) continue; /* below this frame: stale, and maybe our own locals now */
		if (read_word(e->slot, &v) || wbpf_arch_ret_orig(v) != e->orig) continue;
		*(volatile uintptr_t *)e->slot = e->orig;
	}
#endif
	BARRIER();
	s->depth = 0;
	leave(s);
	errno = saved_errno;
}
