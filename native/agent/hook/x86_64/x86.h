/* x86-64 internals shared by decode.c, relocate.c, trampoline.c and poke.c. */
#ifndef WBPF_HOOK_X86_H
#define WBPF_HOOK_X86_H
#include <stddef.h>
#include <stdint.h>
#include "../internal.h"

enum x86_kind {
	X86_PLAIN,   /* runs the same anywhere (after a rip-relative fixup, if any) */
	X86_JMP,     /* jmp rel8 / rel32 */
	X86_JCC,     /* jcc rel8 / rel32 */
	X86_CALL,    /* call rel32 */
	X86_END,     /* ret, indirect jmp: control does not reach the next instruction */
};

struct x86_insn {
	int len;
	int kind;      /* enum x86_kind */
	int disp_off;  /* offset of a rip-relative disp32 in the instruction, or -1 */
	int64_t rel;   /* X86_JMP / X86_JCC / X86_CALL: displacement from the instruction's end */
	int cc;        /* X86_JCC: condition (low nibble of 0x7X) */
};

/* decodes the instruction at p; returns 0, or -1 with why ("unknown instruction 0f 31") */
int x86_decode(const uint8_t *p, struct x86_insn *in, char *why, size_t whylen);

/* relocates whole instructions of fn (fn_size bytes, 0: unknown; readable: bytes mapped from fn on)
 * covering at least min_len bytes to dst (which runs at dst_addr), then a jump back; sets
 * t->replaced, t->map; returns the bytes written or -code */
int x86_relocate(const uint8_t *fn, size_t fn_size, size_t readable, int min_len, uint8_t *dst, size_t cap,
		 uintptr_t dst_addr, struct wbpf_tramp *t, struct wbpf_hook_error *err);

/* poke.c: installs the agent's SIGTRAP and evacuation handlers once (0, or a WBPF_HOOK_ESIGNAL) */
int wbpf_x86_signals_init(struct wbpf_hook_error *err);
/* trap.c, called by poke.c's SIGTRAP handler for an int3 at fn (site s): 1 if it was a trap-tier hit
 * (handled: the handler ran and the context resumes out of line), 0 if not one */
int wbpf_x86_trap_hit(struct wbpf_site *s, uintptr_t fn, void *ucontext);
extern uint64_t wbpf_x86_trap_hits; /* atomic: trap-tier hits so far */

/* jmp to target from code at `at`: rel32 when it reaches, else jmp *0(%rip); .quad; returns length */
int x86_emit_jmp(uint8_t *p, uintptr_t at, uintptr_t target);

#endif
