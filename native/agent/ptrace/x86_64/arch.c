/* The ptrace tier on x86-64: int3 (0xcc) breakpoints, reported as SIGTRAP with SI_KERNEL and rip one past
 * them; a function's return address at [rsp] at its entry; the entry instructions emulated instead of
 * single-stepped (endbr64, nops, push, mov %rsp,%rbp). */
#define _GNU_SOURCE
#include <errno.h>
#include <string.h>

#include "../tracer.h"

const uint8_t bp_insn[BP_MAX] = { 0xcc };
const unsigned bp_len = 1;

uint64_t regs_pc(const struct user_regs_struct *r) { return r->rip; }
void regs_set_pc(struct user_regs_struct *r, uint64_t pc) { r->rip = pc; }
uint64_t regs_sp(const struct user_regs_struct *r) { return r->rsp; }

uint64_t arch_trap_addr(const siginfo_t *si, const struct user_regs_struct *r)
{
	return si->si_code == SI_KERNEL ? r->rip - 1 : 0;
}

int arch_bp_foreign(const uint8_t *orig) { return orig[0] == 0xcc; }

int arch_ret_of(struct proc *p, const struct user_regs_struct *r, uint64_t *ra, uint64_t *sp)
{
	if (mem_read(p, r->rsp, ra, sizeof *ra) < 0) return -EFAULT;
	*sp = r->rsp + 8; /* the ret pops it */
	return 0;
}

static uint64_t *reg_of(struct user_regs_struct *r, unsigned n)
{
	uint64_t *tab[16] = { (uint64_t *)&r->rax, (uint64_t *)&r->rcx, (uint64_t *)&r->rdx, (uint64_t *)&r->rbx,
			      (uint64_t *)&r->rsp, (uint64_t *)&r->rbp, (uint64_t *)&r->rsi, (uint64_t *)&r->rdi,
			      (uint64_t *)&r->r8,  (uint64_t *)&r->r9,  (uint64_t *)&r->r10, (uint64_t *)&r->r11,
			      (uint64_t *)&r->r12, (uint64_t *)&r->r13, (uint64_t *)&r->r14, (uint64_t *)&r->r15 };
	return tab[n & 15];
}

int arch_emulate(struct proc *p, struct user_regs_struct *r, const struct bp *b)
{
	uint8_t c[8];
	if (mem_read(p, r->rip, c, sizeof c) < 0) return 0;
	c[0] = b->orig[0];
	for (unsigned k = 1; k < sizeof c; k++)
		if (c[k] == 0xcc && bp_find(p, r->rip + k)) return 0; /* another of ours inside: step it */
	static const struct {
		uint8_t len;
		uint8_t bytes[8];
	} nops[] = {
		{ 4, { 0xf3, 0x0f, 0x1e, 0xfa } },                         /* endbr64 */
		{ 1, { 0x90 } },                                           /* nop */
		{ 2, { 0x66, 0x90 } },
		{ 3, { 0x0f, 0x1f, 0x00 } },
		{ 4, { 0x0f, 0x1f, 0x40, 0x00 } },
		{ 5, { 0x0f, 0x1f, 0x44, 0x00, 0x00 } },                   /* nop5 (-mnop-mcount) */
		{ 6, { 0x66, 0x0f, 0x1f, 0x44, 0x00, 0x00 } },
		{ 7, { 0x0f, 0x1f, 0x80, 0x00, 0x00, 0x00, 0x00 } },
		{ 8, { 0x0f, 0x1f, 0x84, 0x00, 0x00, 0x00, 0x00, 0x00 } },
	};
	for (unsigned i = 0; i < sizeof nops / sizeof nops[0]; i++)
		if (!memcmp(c, nops[i].bytes, nops[i].len)) {
			r->rip += nops[i].len;
			return 1;
		}
	if (c[0] == 0x48 && c[1] == 0x89 && c[2] == 0xe5) { /* mov %rsp,%rbp */
		r->rbp = r->rsp;
		r->rip += 3;
		return 1;
	}
	unsigned n = 16, len = 0;
	if (c[0] >= 0x50 && c[0] <= 0x57) n = c[0] - 0x50, len = 1;                            /* push %r64 */
	else if (c[0] == 0x41 && c[1] >= 0x50 && c[1] <= 0x57) n = 8 + c[1] - 0x50, len = 2; /* push %r8-15 */
	if (len) {
		uint64_t v = *reg_of(r, n);
		if (mem_write(p, r->rsp - 8, &v, 8) < 0) return 0;
		r->rsp -= 8;
		r->rip += len;
		return 1;
	}
	return 0;
}
