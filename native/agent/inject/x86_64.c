/* The injector's x86-64 part (inject/arch.h): PTRACE_GETREGS, the XSAVE area, `syscall`, the return stub
 * (mov %rax,%rdi; getpid), a call's return address pushed on the target's stack. */
#define _GNU_SOURCE
#include <elf.h>
#include <errno.h>
#include <sys/ptrace.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <string.h>
#include "arch.h"

#define XSTATE_MAX (64 << 10)
static uint8_t xstate[XSTATE_MAX] __attribute__((aligned(64)));
static struct iovec xstate_iov = { xstate, sizeof xstate };
static int have_xstate;

/* where each injected call returns: mov %rax,%rdi; mov $SYS_getpid,%eax; syscall. A syscall stop (the call
 * runs under PTRACE_SYSCALL), not a trap: an int3 on a thread that blocks SIGTRAP (the agent's own serve
 * thread blocks every signal) would make the kernel reset SIGTRAP to its default for the whole process,
 * and the hook's int3-first patching would then kill it */
static const uint8_t RETURN_STUB[] = { 0x48, 0x89, 0xc7, 0xb8, SYS_getpid, 0, 0, 0, 0x0f, 0x05 };

const uint8_t inj_syscall_insn[] = { 0x0f, 0x05 };
const size_t inj_syscall_insn_len = 2, inj_insn_align = 1;

int inj_getregs(pid_t tid, inj_regs *r) { return ptrace(PTRACE_GETREGS, tid, 0, r) < 0 ? -1 : 0; }
int inj_setregs(pid_t tid, const inj_regs *r) { return ptrace(PTRACE_SETREGS, tid, 0, r) < 0 ? -1 : 0; }
uintptr_t inj_pc(const inj_regs *r) { return r->rip; }

int inj_save_ext(pid_t tid, const char **what)
{
	*what = "NT_X86_XSTATE";
	if (ptrace(PTRACE_GETREGSET, tid, (void *)NT_X86_XSTATE, &xstate_iov) < 0) return -1;
	have_xstate = 1;
	return 0;
}

int inj_restore_ext(pid_t tid)
{
	return have_xstate && ptrace(PTRACE_SETREGSET, tid, (void *)NT_X86_XSTATE, &xstate_iov) < 0 ? -1 : 0;
}

size_t inj_return_stub(uint8_t *out, size_t max, const inj_regs *saved)
{
	(void)saved;
	if (max < sizeof RETURN_STUB) return 0;
	memcpy(out, RETURN_STUB, sizeof RETURN_STUB);
	return sizeof RETURN_STUB;
}

int inj_at_return(const inj_regs *r, uintptr_t stub) { return r->rip == stub + sizeof RETURN_STUB && r->orig_rax == SYS_getpid; }
uintptr_t inj_call_result(const inj_regs *r) { return r->rdi; }

void inj_setup_syscall(inj_regs *r, uintptr_t insn, long nr, const long a[6])
{
	r->rip = insn, r->rax = (unsigned long)nr, r->orig_rax = (unsigned long)-1;
	r->rdi = a[0], r->rsi = a[1], r->rdx = a[2], r->r10 = a[3], r->r8 = a[4], r->r9 = a[5];
}

long inj_syscall_result(const inj_regs *r) { return (long)r->rax; }

int inj_setup_call(inj_regs *r, uintptr_t fn, uintptr_t stub, const uintptr_t a[3], inj_mem_fn poke)
{
	uintptr_t sp = ((r->rsp - 256) & ~(uintptr_t)15) - 8; /* below the red zone; entry alignment */
	if (poke(sp, &stub, sizeof stub) < 0) return -1;
	r->rip = fn, r->rsp = sp, r->rax = 0, r->orig_rax = (unsigned long)-1;
	r->rdi = a[0], r->rsi = a[1], r->rdx = a[2];
	r->eflags &= ~0x400ul; /* DF clear, as the ABI wants at a call */
	return 0;
}

long inj_syscall_of(const inj_regs *r, inj_mem_fn peek)
{
	(void)peek;
	long nr = (long)r->orig_rax, rax = (long)r->rax;
	int in_sys = nr >= 0 && (rax == -512 || rax == -513 || rax == -514 || rax == -516 || rax == -EINTR);
	return in_sys ? nr : -1;
}

int inj_waiting_syscall(long nr)
{
	switch (nr) {
	case SYS_read: case SYS_poll: case SYS_select: case SYS_nanosleep: case SYS_pause: case SYS_accept:
	case SYS_recvfrom: case SYS_recvmsg: case SYS_wait4: case SYS_rt_sigtimedwait: case SYS_rt_sigsuspend:
	case SYS_epoll_wait: case SYS_clock_nanosleep: case SYS_waitid: case SYS_pselect6: case SYS_ppoll:
	case SYS_epoll_pwait: case SYS_accept4: case SYS_futex:
#ifdef SYS_epoll_pwait2
	case SYS_epoll_pwait2:
#endif
		return 1;
	}
	return 0;
}
