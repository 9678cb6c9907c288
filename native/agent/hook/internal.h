/* What the hook's files share: the trampoline and probe-site records, the arch interface each
 * hook/<arch>/ implements, the text-writing primitives (patch.c) and near allocation (near.c). */
#ifndef WBPF_HOOK_INTERNAL_H
#define WBPF_HOOK_INTERNAL_H
#include <stddef.h>
#include <stdint.h>
#include "hook.h"

#define WBPF_RELOC_MAX 160   /* relocated prologue + jump back, bytes */
#define WBPF_REPLACED_MAX 24 /* replaced bytes of the function (whole instructions) */
#define WBPF_TRAMP_PAGE 4096

/* One trampoline: written once into its own page, then read+exec forever (never unmapped). */
struct wbpf_tramp {
	uint8_t *page;
	uintptr_t entry;            /* handler path: save regs, handler, restore, then orig */
	uintptr_t orig;             /* relocated prologue, then jump back: the original path */
	int replaced;               /* bytes of fn replaced by the jump */
	uint8_t map[WBPF_REPLACED_MAX]; /* fn offset at an instruction boundary -> offset in orig; 0xff if not one */
	wbpf_hook_handler handler;
	void *cookie;
	size_t fn_size;             /* as given to attach (0: unknown); a reuse must match it too */
	int trap;                   /* the trap tier: fn's first byte is an int3, orig = its first instruction out of line */
	struct wbpf_tramp *next;    /* the site's retired trampolines, kept for reuse */
};

/* One hooked (or once hooked) function. Entries are never freed: the signal handlers read them. */
struct wbpf_site {
	uintptr_t fn;               /* 0: free entry */
	int replaced;
	uint8_t orig_bytes[WBPF_REPLACED_MAX];
	uintptr_t trap_target;      /* atomic: where a thread that hits our int3 at fn goes */
	int state;                  /* atomic: WBPF_SITE_* */
	struct wbpf_tramp *tramp;   /* the attached trampoline */
	struct wbpf_tramp *retired;
	struct wbpf_tramp *trap;    /* atomic: the trap tier's record while fn's int3 is ours (set before the
	                             * int3 is stored, cleared after the byte is restored); NULL otherwise */
};
enum { WBPF_SITE_IDLE, WBPF_SITE_PATCHING, WBPF_SITE_ACTIVE, WBPF_SITE_UNPATCHING };

struct wbpf_hook {
	struct wbpf_site *site;
	struct wbpf_tramp *tramp;
};

/* the stack pointer at the probed entry, per arch (ret.c orders its shadow stack by it) */
/* where a function's return address is at its entry, which a return probe rewrites: x86-64 the stack
 * slot at rsp; arm64 x30 in the entry trampoline's saved registers (restored from there) */
#if defined(__x86_64__)
#define WBPF_REGS_SP(r) ((r)->rsp)
#define WBPF_RET_ADDR_AT(r) ((volatile uintptr_t *)(uintptr_t)(r)->rsp)
#define WBPF_NEAR_REACH "+-2 GiB"
#elif defined(__aarch64__)
#define WBPF_REGS_SP(r) ((r)->sp)
#define WBPF_RET_ADDR_AT(r) ((volatile uintptr_t *)(uintptr_t)&(r)->regs[30])
#define WBPF_NEAR_REACH "+-128 MiB"
#endif

/* sets err (if not NULL) and returns code */
int wbpf_fail(struct wbpf_hook_error *err, int code, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/* the site table (hook.c), read by the arch's signal handlers */
struct wbpf_site *wbpf_site_find(uintptr_t fn);

/* hook.c, for sys/: a site record for a one-instruction rewrite (see hook.c) */
struct wbpf_site *wbpf_site_claim(uintptr_t at, int len);
void wbpf_site_release(struct wbpf_site *s, int state);

/* near.c: a fresh RW page whose every byte is within the arch's branch reach of addr (x86-64: +-(2 GiB -
 * 2 MiB), jmp rel32; arm64: +-(128 MiB - 2 MiB), b imm26), or NULL */
uint8_t *wbpf_near_page(uintptr_t addr);

/* patch.c: writing code that other threads may be running */
struct wbpf_text { uintptr_t start; size_t len; int prot[2]; };
int wbpf_text_open(struct wbpf_text *t, uintptr_t addr, size_t len, struct wbpf_hook_error *err);
void wbpf_text_close(struct wbpf_text *t);
void wbpf_text_store(uintptr_t addr, const uint8_t *bytes, size_t n);
void wbpf_sync_cores(void);
#if defined(__aarch64__)
int wbpf_a64_bti_guarded(uintptr_t addr); /* hook/arm64/trampoline.c: /proc/self/maps does not show PROT_BTI */
#endif
/* bytes readable from addr to the end of its mapping; 0 if not mapped readable */
size_t wbpf_readable_from(uintptr_t addr);
const char *wbpf_sync_method_name(void);

/* what hook/<arch>/ provides */
extern const int wbpf_arch_patch_len;
extern int wbpf_hook_vector_free; /* wbpf_hook_set_vector_free */
/* writes the trampoline for fn (fn_size bytes long, 0: unknown; readable: bytes mapped from fn on)
 * into page (RW) and fills t; fn's bytes are only read */
int wbpf_arch_build(struct wbpf_tramp *t, uint8_t *page, uintptr_t fn, size_t fn_size, size_t readable,
		    wbpf_hook_handler handler, void *cookie, struct wbpf_hook_error *err);
/* patches fn's entry to jump to t (site->state PATCHING on entry), or restores it */
int wbpf_arch_patch_in(struct wbpf_site *s, struct wbpf_tramp *t, struct wbpf_hook_error *err);
int wbpf_arch_patch_out(struct wbpf_site *s, struct wbpf_tramp *t, struct wbpf_hook_error *err);

/* the trap tier (hook/<arch>/trap.c): for an entry the relocator refuses, the first byte becomes an
 * int3 and the arch's SIGTRAP handler runs the handler, then the first instruction out of line.
 * build: writes that instruction's relocated copy and the jump back into page (RW) and fills t
 * (t->replaced = 1, t->trap = 1); in/out: store or restore the int3 (no evacuation: one byte) */
int wbpf_arch_trap_build(struct wbpf_tramp *t, uint8_t *page, uintptr_t fn, size_t fn_size, size_t readable,
			 wbpf_hook_handler handler, void *cookie, struct wbpf_hook_error *err);
int wbpf_arch_trap_in(struct wbpf_site *s, struct wbpf_tramp *t, struct wbpf_hook_error *err);
/* what every arch's trap build sets once the out-of-line copy is in page: the copy is the "original" */
static inline void wbpf_trap_fill(struct wbpf_tramp *t, uint8_t *page, int replaced, wbpf_hook_handler handler, void *cookie)
{
	t->replaced = replaced;
	t->page = page;
	t->entry = 0;
	t->orig = (uintptr_t)page;
	t->handler = handler;
	t->cookie = cookie;
	t->trap = 1;
}
int wbpf_arch_trap_out(struct wbpf_site *s, struct wbpf_tramp *t, struct wbpf_hook_error *err);

/* sigtrap.c: SIGTRAP stays the hook's (sigaction, signal and the masks interposed). install: the hook's
 * handler, once (the program's disposition is kept as the one to chain to); chain: a SIGTRAP that is
 * not the hook's, to the program's handler or the default action */
#include <signal.h>
int wbpf_sigtrap_install(void (*handler)(int, siginfo_t *, void *), int flags, struct wbpf_hook_error *err);
void wbpf_sigtrap_chain(int sig, siginfo_t *si, void *uc);

/* park.c: the agent's signal (SIGRTMAX-2) to every other thread, one round at a time (hook.c's lock held).
 * install: the arch's handler, once; in it, mine: the round's seq if si is its signal (else 0), ack: this
 * thread answered, wait: parked until release (at most 6 s; async-signal-safe). round: signals every other
 * thread and waits until each acked, exited, or sleeps in a syscall (and quiet(pc) if given, pc: where it
 * goes on); fails after 5 s (released), naming quiet_what. release: ends the round, wakes the parked */
int wbpf_park_install(void (*handler)(int, siginfo_t *, void *), struct wbpf_hook_error *err);
uint32_t wbpf_park_mine(const siginfo_t *si);
void wbpf_park_ack(void);
void wbpf_park_wait(uint32_t seq);
int wbpf_park_round(int (*quiet)(uintptr_t pc, void *arg), void *arg, const char *quiet_what, struct wbpf_hook_error *err);
void wbpf_park_release(void);

/* return probes: ret.c keeps the per-thread shadow stack; hook/<arch>/ provides the code a diverted
 * return runs. Every function here is async-signal-safe and never allocates with malloc. */
/* ret_stubs.c, the stubs' pool: a return address to store in a slot so that the return comes back
 * through the arch's return code and then continues at orig, or 0 (none left, or the pool could not be
 * mapped, or orig may not be diverted) */
uintptr_t wbpf_arch_ret_stub(uintptr_t orig);
/* orig's stub when orig is this thread's last answer of wbpf_arch_ret_stub (so orig is no stub: only a real
 * return address is ever looked up), else 0: the common arm, without asking wbpf_arch_ret_orig first */
uintptr_t wbpf_arch_ret_stub_last(uintptr_t orig);
/* orig if addr is such a return address, else 0 */
uintptr_t wbpf_arch_ret_orig(uintptr_t addr);
/* the real return address of stub number k (what the arch's return code was entered with), 0 if none */
uintptr_t wbpf_ret_stub_orig(uint64_t k);
/* hook/<arch>/ret_stub.c: a page of stubs is WBPF_RET_PAGE bytes: +0 a quad for the arch's use (the
 * return code's address), then WBPF_RET_PER_PAGE stubs of WBPF_RET_STUB bytes at +16, +32, ... */
#define WBPF_RET_PAGE 4096
#define WBPF_RET_STUB 16
#define WBPF_RET_PER_PAGE (WBPF_RET_PAGE / WBPF_RET_STUB - 1)
/* writes the page (RW; made R+X after) whose stubs are numbers first .. first + WBPF_RET_PER_PAGE - 1 */
void wbpf_arch_ret_page_write(uint8_t *pg, uint32_t first);
/* orig may be replaced by a stub's address (arm64: not a PAC-signed one) */
int wbpf_arch_ret_divertable(uintptr_t orig);
/* nonzero if this thread's return addresses must not be rewritten (a CET shadow stack) */
int wbpf_arch_ret_blocked(void);
/* called by the arch's return code with the registers at the return (rip = orig, rsp after the
 * return) and the address of the slot the return was read from: reports the matching entries */
void wbpf_ret_fire(const struct wbpf_pt_regs *regs, uintptr_t slot, uintptr_t orig);
/* before an exception or forced unwind walks this thread's stack: every diverted return address
 * back in its slot, the shadow stack emptied (those returns go unreported) */
void wbpf_ret_unwinding(void);

#endif
