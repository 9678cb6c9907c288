/* The ptrace tier on arm64: `brk #0` breakpoints (4 bytes), reported as SIGTRAP with TRAP_BRKPT and pc at
 * the brk; a function's return address in x30 at its entry, the stack pointer unchanged by its ret; the
 * entry instructions compilers put first emulated instead of single-stepped (nop, bti, mov x29, sp,
 * stp x29, x30, [sp, #-N]!). paciasp is never emulated: with pointer authentication on it signs x30 with a
 * key only the kernel holds (it is single-stepped). */
#define _GNU_SOURCE
#include <errno.h>
#include <string.h>

#include "../tracer.h"

#define BRK0 0xd4200000u /* brk #0, a debugger's breakpoint (the kernel keeps #5 for its own uprobes) */

const uint8_t bp_insn[BP_MAX] = { BRK0 & 0xff, (BRK0 >> 8) & 0xff, (BRK0 >> 16) & 0xff, BRK0 >> 24 };
const unsigned bp_len = 4;

uint64_t regs_pc(const struct user_regs_struct *r) { return r->pc; }
void regs_set_pc(struct user_regs_struct *r, uint64_t pc) { r->pc = pc; }
uint64_t regs_sp(const struct user_regs_struct *r) { return r->sp; }

uint64_t arch_trap_addr(const siginfo_t *si, const struct user_regs_struct *r)
{
	return si->si_code == TRAP_BRKPT ? r->pc : 0;
}

static uint32_t insn_of(const uint8_t *b)
{
	uint32_t i;
	memcpy(&i, b, 4);
	return i;
}

/* any brk #imm: BRK is 0xd4200000 | imm16 << 5 */
int arch_bp_foreign(const uint8_t *orig) { return (insn_of(orig) & 0xffe0001fu) == 0xd4200000u; }

int arch_ret_of(struct proc *p, const struct user_regs_struct *r, uint64_t *ra, uint64_t *sp)
{
	(void)p;
	*ra = r->regs[30];
	*sp = r->sp;
	return *ra ? 0 : -EFAULT;
}

int arch_emulate(struct proc *p, struct user_regs_struct *r, const struct bp *b)
{
	uint32_t i = insn_of(b->orig);
	if (i == 0xd503201fu || (i & 0xffffff3fu) == 0xd503241fu) { /* nop; bti, bti c/j/jc */
		r->pc += 4;
		return 1;
	}
	if (i == 0x910003fdu) { /* mov x29, sp */
		r->regs[29] = r->sp;
		r->pc += 4;
		return 1;
	}
	if ((i & 0xffc07fffu) == 0xa9807bfdu) { /* stp x29, x30, [sp, #imm7 * 8]! */
		int64_t off = ((int64_t)((uint64_t)((i >> 15) & 0x7f) << 57) >> 57) * 8;
		uint64_t a = r->sp + (uint64_t)off, v[2] = { r->regs[29], r->regs[30] };
		if (mem_write(p, a, v, sizeof v) < 0) return 0; /* below the stack's mapping: the step grows it */
		r->sp = a;
		r->pc += 4;
		return 1;
	}
	return 0;
}
