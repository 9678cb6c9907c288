/* The ptrace tier's syscall registers on arm64 (ptrace/sys.c): `svc #0` with the number in x8, the arguments
 * in x0..x5, the result in x0 (over the first argument). The kernel's own idea of the number (what a
 * tracepoint reports, and what it runs) is the NT_ARM_SYSTEM_CALL regset: read there, x8 as the fallback.
 * At a syscall-entry or -exit stop (PTRACE_SYSCALL) the kernel shows x7 as 0 (entry) or 1 (exit) and puts
 * the task's own x7 back when it resumes; at a seccomp stop x7 is the task's. */
#define _GNU_SOURCE
#include <elf.h>
#include <linux/audit.h>
#include <sys/ptrace.h>
#include <sys/uio.h>

#include "../tracer.h"

#ifndef NT_ARM_SYSTEM_CALL
#define NT_ARM_SYSTEM_CALL 0x404
#endif

const uint32_t sys_audit_arch = AUDIT_ARCH_AARCH64;
const uint8_t sys_insn[4] = { 0x01, 0x00, 0x00, 0xd4 }; /* svc #0: 0xd4000001 */
const unsigned sys_insn_len = 4;

int sys_regs_nr(pid_t tid, const struct user_regs_struct *r)
{
	int nr;
	struct iovec v = { &nr, sizeof nr };
	if (ptrace(PTRACE_GETREGSET, tid, (void *)NT_ARM_SYSTEM_CALL, &v) == 0 && v.iov_len == sizeof nr) return nr;
	return (int)r->regs[8];
}

void sys_regs_args(const struct user_regs_struct *r, uint64_t args[6])
{
	for (unsigned i = 0; i < 6; i++) args[i] = r->regs[i];
}

long sys_regs_ret(const struct user_regs_struct *r) { return (long)r->regs[0]; }

void sys_regs_call(pid_t tid, struct user_regs_struct *r, long nr, uint64_t a0, uint64_t a1, uint64_t a2)
{
	/* the stop's own syscall is forgotten (-1: no restart applies to the injected one); the svc sets it again */
	int none = -1;
	struct iovec v = { &none, sizeof none };
	(void)ptrace(PTRACE_SETREGSET, tid, (void *)NT_ARM_SYSTEM_CALL, &v);
	r->regs[8] = (uint64_t)nr, r->regs[0] = a0, r->regs[1] = a1, r->regs[2] = a2;
}

long sys_regs_result(const struct user_regs_struct *r) { return (long)r->regs[0]; }
