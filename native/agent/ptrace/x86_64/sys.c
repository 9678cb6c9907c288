/* The ptrace tier's syscall registers on x86-64 (ptrace/sys.c): the number in orig_rax, the arguments in
 * rdi, rsi, rdx, r10, r8, r9, the result in rax (-ENOSYS at the entry stops); `syscall` (0f 05). */
#define _GNU_SOURCE
#include <linux/audit.h>

#include "../tracer.h"

const uint32_t sys_audit_arch = AUDIT_ARCH_X86_64;
const uint8_t sys_insn[4] = { 0x0f, 0x05 };
const unsigned sys_insn_len = 2;

int sys_regs_nr(pid_t tid, const struct user_regs_struct *r)
{
	(void)tid;
	return (int)r->orig_rax;
}

void sys_regs_args(const struct user_regs_struct *r, uint64_t args[6])
{
	args[0] = r->rdi, args[1] = r->rsi, args[2] = r->rdx, args[3] = r->r10, args[4] = r->r8, args[5] = r->r9;
}

long sys_regs_ret(const struct user_regs_struct *r) { return (long)r->rax; }

void sys_regs_call(pid_t tid, struct user_regs_struct *r, long nr, uint64_t a0, uint64_t a1, uint64_t a2)
{
	(void)tid;
	/* orig_rax -1: no syscall restart of the stop's own call applies to the injected one */
	r->rax = (uint64_t)nr, r->orig_rax = (uint64_t)-1, r->rdi = a0, r->rsi = a1, r->rdx = a2;
}

long sys_regs_result(const struct user_regs_struct *r) { return (long)r->rax; }
