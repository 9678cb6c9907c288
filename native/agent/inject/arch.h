/* What inject/<arch>.c gives the injector (wbpf-inject.c): a stopped thread's registers, the syscall
 * instruction searched for in libc, the stub every injected call returns to, how a syscall and a call
 * are set up in a copy of the registers and read back, and which waiting syscall a thread is in. */
#ifndef WBPF_INJECT_ARCH_H
#define WBPF_INJECT_ARCH_H
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <sys/user.h>

#if defined(__x86_64__)
typedef struct user_regs_struct inj_regs;
#elif defined(__aarch64__)
#include <asm/ptrace.h>
typedef struct user_pt_regs inj_regs;
#endif

typedef int (*inj_mem_fn)(uintptr_t addr, void *p, size_t n); /* 0, or -1 */

/* registers of a thread in a ptrace stop: 0, or -1 with errno */
int inj_getregs(pid_t tid, inj_regs *r);
int inj_setregs(pid_t tid, const inj_regs *r);
/* the vector/FP registers: saved once before the calls, put back at the end (0, or -1 with errno; what
 * names the regset in a message) */
int inj_save_ext(pid_t tid, const char **what);
int inj_restore_ext(pid_t tid);
uintptr_t inj_pc(const inj_regs *r);

/* the syscall instruction (its bytes, and the alignment of instructions) */
extern const uint8_t inj_syscall_insn[];
extern const size_t inj_syscall_insn_len, inj_insn_align;

/* writes the return stub into out (at most max bytes, at the scratch page's start): it makes a getpid
 * syscall, whose entry stop is where a call has returned; saved: the thread's own registers (what the
 * stub keeps for the syscall stops). Its length, or 0 */
size_t inj_return_stub(uint8_t *out, size_t max, const inj_regs *saved);
/* r (a syscall-entry stop) is the stub's getpid at stub */
int inj_at_return(const inj_regs *r, uintptr_t stub);
/* the called function's return value there */
uintptr_t inj_call_result(const inj_regs *r);

/* r: a syscall nr(a) at the syscall instruction insn */
void inj_setup_syscall(inj_regs *r, uintptr_t insn, long nr, const long a[6]);
/* its return value (at the exit stop) */
long inj_syscall_result(const inj_regs *r);
/* r: a call fn(a[0], a[1], a[2]) returning to stub, on the stack below r's; poke writes the target's memory */
int inj_setup_call(inj_regs *r, uintptr_t fn, uintptr_t stub, const uintptr_t a[3], inj_mem_fn poke);

/* the syscall a stopped thread waits in (it goes on waiting when its registers are put back), or -1
 * (not in one); peek reads the target's memory quietly */
long inj_syscall_of(const inj_regs *r, inj_mem_fn peek);
/* nr is one a thread waits in without holding a libc lock that dlopen or pthread_create would take */
int inj_waiting_syscall(long nr);

#endif
