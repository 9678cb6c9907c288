/* The agent's inline hook API: patch a function's entry with a jump to a trampoline that hands the
 * registers (as the kernel's struct pt_regs) to a C handler, then runs the original code. */
#ifndef WBPF_HOOK_H
#define WBPF_HOOK_H
#include <stddef.h>
#include <stdint.h>

#if defined(__x86_64__)
/* laid out as the kernel's x86-64 struct pt_regs (arch/x86/include/uapi/asm/ptrace.h), so a uprobe
 * program's PT_REGS_PARM1..6 / PT_REGS_RC / PT_REGS_IP / PT_REGS_SP read the right slots */
struct wbpf_pt_regs {
	uint64_t r15, r14, r13, r12, rbp, rbx, r11, r10, r9, r8;
	uint64_t rax, rcx, rdx, rsi, rdi, orig_rax, rip, cs, eflags, rsp, ss;
};
#elif defined(__aarch64__)
/* laid out as the kernel's arm64 struct user_pt_regs (arch/arm64/include/uapi/asm/ptrace.h), what a
 * uprobe program built with -D__TARGET_ARCH_arm64 reads: PT_REGS_PARM1..8 = regs[0..7], PT_REGS_RC =
 * regs[0], PT_REGS_RET = regs[30] (the return address), PT_REGS_SP = sp, PT_REGS_IP = pc; pstate holds
 * NZCV only (bits 31-28) */
struct wbpf_pt_regs {
	uint64_t regs[31];
	uint64_t sp, pc, pstate;
};
#else
#error "the inline hook supports x86-64 and arm64 only"
#endif

/* Runs on the thread that called the hooked function, at its entry, before its first instruction.
 * regs is read-only (the trampoline restores the registers it saved, whatever the handler wrote).
 * The handler may use general-purpose and SSE registers (xmm0-7 are saved), not AVX (ymm uppers). */
typedef void (*wbpf_hook_handler)(struct wbpf_pt_regs *regs, void *cookie);

enum wbpf_hook_code {
	WBPF_HOOK_OK = 0,
	WBPF_HOOK_EINVAL,       /* null function or handler */
	WBPF_HOOK_EBUSY,        /* the function is already hooked, or its entry overlaps a rewritten syscall site */
	WBPF_HOOK_EDECODE,      /* an instruction in the entry is not one the relocator knows */
	WBPF_HOOK_ESHORT,       /* the function ends (ret / jmp) before the bytes the jump needs */
	WBPF_HOOK_EBRANCH,      /* a branch in the entry targets the replaced bytes (or reads its own address) */
	WBPF_HOOK_ERANGE,       /* a rip-relative operand is out of +-2 GiB of the trampoline */
	WBPF_HOOK_ENOMEM,       /* no trampoline page within +-2 GiB of the function */
	WBPF_HOOK_EPROTECT,     /* mprotect of the text or trampoline page failed (W^X enforced?) */
	WBPF_HOOK_ESIGNAL,      /* installing the agent's signal handlers failed, or their signal is taken */
	WBPF_HOOK_ETHREADS,     /* another thread did not answer the patch's thread check in time */
	WBPF_HOOK_ENOENT,       /* detach of a hook that is not attached */
};

struct wbpf_hook_error {
	int code;             /* enum wbpf_hook_code */
	char reason[160];     /* what and where, e.g. "unknown instruction 0f 31 at +4" */
};

struct wbpf_hook; /* opaque; valid until wbpf_hook_detach */

/* Hooks fn. On success returns 0 and sets *out; otherwise returns the code (also in err->code,
 * with err->reason) and leaves fn's bytes untouched: a caller falls back to a trap-based probe. */
int wbpf_hook_attach(void *fn, wbpf_hook_handler handler, void *cookie, struct wbpf_hook **out,
		     struct wbpf_hook_error *err);

/* The same, with the function's size (st_size of its symbol): the body checked for branches into
 * the replaced bytes is then exactly [fn, fn+size) instead of "up to a ret or jmp followed by padding"
 * (which refuses when it runs into an instruction it does not know). size 0: unknown. */
int wbpf_hook_attach_sized(void *fn, size_t size, wbpf_hook_handler handler, void *cookie,
			   struct wbpf_hook **out, struct wbpf_hook_error *err);

/* The same, with the trap tier as the fallback: when the relocator refuses fn's entry (EDECODE, ESHORT,
 * EBRANCH, ERANGE, ENOMEM), fn's first byte becomes an int3 whose SIGTRAP the hook's handler takes:
 * it runs handler with the registers of the entry (from the signal's context), then the displaced
 * first instruction out of line (relocated alone) and the rest of fn. Costs a signal per hit
 * (~2-3 us, against ~15-25 ns inline). On success with the trap tier, err->code is WBPF_HOOK_OK and
 * err->reason says why the inline hook was refused. When even the first instruction cannot be
 * moved, returns the inline refusal's code, the reason naming both. */
int wbpf_hook_attach_any(void *fn, size_t size, wbpf_hook_handler handler, void *cookie, struct wbpf_hook **out,
			 struct wbpf_hook_error *err);

/* The trap tier only, whatever the relocator would say of the entry (tests, benchmarks). */
int wbpf_hook_attach_trap(void *fn, size_t size, wbpf_hook_handler handler, void *cookie, struct wbpf_hook **out,
			  struct wbpf_hook_error *err);

enum wbpf_hook_tier { WBPF_HOOK_TIER_INLINE = 1, WBPF_HOOK_TIER_TRAP = 2 };
/* the hook's tier; wbpf_hook_tier_name: "inline hook" or "trap hook" */
int wbpf_hook_tier(const struct wbpf_hook *hook);
const char *wbpf_hook_tier_name(int tier);

/* Re-installs the hook's SIGTRAP handler if the program replaced it behind the interposers (hook/sigtrap.c;
 * they bind to nothing in a dlopen'ed agent), the program's handler then chained to. Cheap (one
 * sigaction query); the trap tier's attach calls it, the agent every 100 ms. */
void wbpf_hook_signals_check(void);

/* Restores fn's original bytes. The trampoline stays mapped (a thread may still be inside it). */
int wbpf_hook_detach(struct wbpf_hook *hook, struct wbpf_hook_error *err);

/* bytes of fn replaced by the jump (whole instructions), for tests and diagnostics */
int wbpf_hook_replaced_len(const struct wbpf_hook *hook);

/* how cores are synchronised after a text write: "membarrier-sync-core", "membarrier", "mprotect" */
const char *wbpf_hook_sync_method(void);

/* what the patching saw so far, for tests and diagnostics */
struct wbpf_hook_stats {
	uint64_t trapped;    /* threads that hit an int3 of a patch in progress and were sent on */
	uint64_t rewound;    /* ... whose int3 was gone when their handler ran (re-run the new bytes) */
	uint64_t evacuated;  /* threads found stopped inside the replaced bytes, moved to the copy */
	uint64_t trap_hits;  /* hits of trap-tier hooks (each ran the handler and the first instruction out of line) */
};
void wbpf_hook_get_stats(struct wbpf_hook_stats *out);

/* Return probes. Called from an entry handler (on the thread, at the function's entry, with the regs
 * the entry trampoline passed): diverts this call's return so that on_return(regs_at_return, cookie)
 * runs on the thread when the function returns (regs->rax/rdx: the return value; regs->rsp: the stack
 * pointer after the return; regs->rip: the real return address), then the caller continues exactly
 * as if nothing happened. Returns 0, or -1 when this return cannot be traced (the thread's shadow
 * stack is full): the call then runs untraced and unharmed. */
int wbpf_hook_ret_arm(const struct wbpf_pt_regs *entry_regs, wbpf_hook_handler on_return, void *cookie);
/* The same for an on_return that never writes *regs (the agent's: its programs' ctx is read-only): it gets
 * the return code's own saved registers instead of a copy (what the caller gets back still cannot depend on
 * it; a handler that writes them would change it) */
int wbpf_hook_ret_arm_ro(const struct wbpf_pt_regs *entry_regs, wbpf_hook_handler on_return, void *cookie);

/* Declares that every handler (entry and return) given from now on touches no vector or x87 register:
 * built with -mgeneral-regs-only, calling nothing that does (libwbpf_agent.so: lib/mem.c). x86-64: the
 * trampolines and return code made after this save no xmm register around the handler; by default
 * (any handler) they save xmm0-15. arm64: no effect (its trampolines keep saving q0-q7). */
void wbpf_hook_set_vector_free(int on);

/* the code's name, e.g. "WBPF_HOOK_EDECODE" */
const char *wbpf_hook_code_name(int code);

#endif
