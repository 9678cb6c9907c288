/* The injector's arm64 part (inject/arch.h): PTRACE_GETREGSET NT_PRSTATUS and NT_PRFPREG, `svc #0`, the
 * return stub (x30 points at it: ldr x7 back; getpid), PSTATE.BTYPE cleared at a call. No SIGTRAP (a brk
 * on a thread that blocks SIGTRAP would reset the process's SIGTRAP to its default): every stop is a
 * syscall stop, and at those the kernel reports x7 as entry/exit and puts its own value back after, so the
 * stub reloads the thread's x7 before its syscall and the registers put back at the end keep it. */
#define _GNU_SOURCE
#include <elf.h>
#include <errno.h>
#include <string.h>
#include <sys/ptrace.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include "arch.h"

#define A64_SVC0 0xd4000001u
#define PSTATE_BTYPE (3ul << 10)

static struct user_fpsimd_state fpsimd;
static int have_fpsimd;

const uint8_t inj_syscall_insn[] = { 0x01, 0x00, 0x00, 0xd4 }; /* svc #0 */
const size_t inj_syscall_insn_len = 4, inj_insn_align = 4;

int inj_getregs(pid_t tid, inj_regs *r)
{
	struct iovec iov = { r, sizeof *r };
	return ptrace(PTRACE_GETREGSET, tid, (void *)NT_PRSTATUS, &iov) < 0 ? -1 : 0;
}

int inj_setregs(pid_t tid, const inj_regs *r)
{
	struct iovec iov = { (void *)r, sizeof *r };
	return ptrace(PTRACE_SETREGSET, tid, (void *)NT_PRSTATUS, &iov) < 0 ? -1 : 0;
}

uintptr_t inj_pc(const inj_regs *r) { return r->pc; }

int inj_save_ext(pid_t tid, const char **what)
{
	*what = "NT_PRFPREG";
	struct iovec iov = { &fpsimd, sizeof fpsimd };
	if (ptrace(PTRACE_GETREGSET, tid, (void *)NT_PRFPREG, &iov) < 0) return -1;
	have_fpsimd = 1;
	return 0;
}

int inj_restore_ext(pid_t tid)
{
	struct iovec iov = { &fpsimd, sizeof fpsimd };
	return have_fpsimd && ptrace(PTRACE_SETREGSET, tid, (void *)NT_PRFPREG, &iov) < 0 ? -1 : 0;
}

/* ldr x7, .+16; movz x8, #SYS_getpid; svc #0; b . (never reached: the tracer stops the getpid);
 * .quad the thread's x7 */
#define STUB_SVC_END 12
size_t inj_return_stub(uint8_t *out, size_t max, const inj_regs *saved)
{
	const uint32_t code[4] = { 0x58000000u | (4u << 5) | 7u, 0xd2800000u | ((uint32_t)SYS_getpid << 5) | 8u, A64_SVC0, 0x14000000u };
	uint64_t x7 = saved->regs[7];
	if (max < sizeof code + sizeof x7) return 0;
	memcpy(out, code, sizeof code);
	memcpy(out + sizeof code, &x7, sizeof x7);
	return sizeof code + sizeof x7;
}

int inj_at_return(const inj_regs *r, uintptr_t stub) { return r->pc == stub + STUB_SVC_END && r->regs[8] == SYS_getpid; }
uintptr_t inj_call_result(const inj_regs *r) { return r->regs[0]; }

void inj_setup_syscall(inj_regs *r, uintptr_t insn, long nr, const long a[6])
{
	r->pc = insn, r->regs[8] = (uint64_t)nr;
	for (int i = 0; i < 6; i++) r->regs[i] = (uint64_t)a[i];
	r->pstate &= ~PSTATE_BTYPE;
}

long inj_syscall_result(const inj_regs *r) { return (long)r->regs[0]; }

int inj_setup_call(inj_regs *r, uintptr_t fn, uintptr_t stub, const uintptr_t a[3], inj_mem_fn poke)
{
	(void)poke;
	/* no red zone in the AAPCS64, 256 bytes below anyway; sp 16-byte aligned. The callee signs x30 (PAC)
	 * itself and authenticates that value before its ret: the stub needs no signature */
	r->sp = (r->sp - 256) & ~(uint64_t)15;
	r->pc = fn, r->regs[30] = stub;
	r->regs[0] = a[0], r->regs[1] = a[1], r->regs[2] = a[2];
	r->pstate &= ~PSTATE_BTYPE; /* pc set, not branched to: no BTI landing pad checked */
	return 0;
}

/* a thread stopped in a syscall has had its restart set up before the stop (pc back at the svc, x0 its
 * first argument, x8 its number); one about to make it looks the same */
long inj_syscall_of(const inj_regs *r, inj_mem_fn peek)
{
	uint32_t insn;
	if (peek(r->pc, &insn, sizeof insn) < 0 || insn != A64_SVC0) return -1;
	return (long)r->regs[8];
}

int inj_waiting_syscall(long nr)
{
	switch (nr) {
	case SYS_read: case SYS_ppoll: case SYS_pselect6: case SYS_nanosleep: case SYS_clock_nanosleep:
	case SYS_accept: case SYS_accept4: case SYS_recvfrom: case SYS_recvmsg: case SYS_wait4: case SYS_waitid:
	case SYS_rt_sigtimedwait: case SYS_rt_sigsuspend: case SYS_epoll_pwait: case SYS_futex: case SYS_restart_syscall:
#ifdef SYS_epoll_pwait2
	case SYS_epoll_pwait2:
#endif
		return 1;
	}
	return 0;
}
