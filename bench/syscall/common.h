/* The syscall bench's shared parts: the timed loops, the stub every userspace mechanism runs per traced syscall
 * (a 24-byte record into an in-memory ring a consumer thread drains every 10 ms, as the kernel rows' ringbuf),
 * the re-issue gadget (gadget.S) and the seccomp filter builder. x86_64 only. */
#pragma once
#include <stdint.h>
#include <stddef.h>

/* asm-getppid: a `syscall` instruction in this binary's own code, which no mechanism rewrites */
enum workload { W_GETPPID, W_OPENAT, W_GETPID, W_RAW_GETPPID, W_ASM_GETPPID, W_RAW_GETPID };

struct result {
  uint64_t calls;
  uint64_t thread_cpu_ns; /* the looping thread's CPU time over the loop */
  uint64_t wall_ns;
  uint64_t tracer_cpu_ns; /* ptrace rows: the tracer's CPU time over the whole run */
  uint64_t records;       /* records the stub (or the kernel program) made */
};

/* the loop: calls of the workload's syscall(s), timed by CLOCK_THREAD_CPUTIME_ID */
void run_loop(enum workload w, uint64_t n, struct result *r);
const char *workload_name(enum workload w);
/* the syscall numbers a workload traces (getppid, openat); getpid traces getppid (the untraced-syscall row) */
int traced_nr(enum workload w);

/* the stub and its ring */
void stub_enter(long nr, const long args[6]);
void stub_exit(long nr, long ret);
/* for sites whose number arrives in a register: the stubs run only for numbers added here */
void stub_trace(long nr);
void stub_enter_dyn(long nr, const long args[6]);
void stub_exit_dyn(long nr, long ret);
uint64_t stub_records(void);
void consumer_start(void);
void consumer_stop(void);

/* gadget.S: re-issues a syscall from an address range the mechanisms exempt; our own signal restorer */
long gadget_syscall(long nr, long a0, long a1, long a2, long a3, long a4, long a5);
extern char gadget_start[], gadget_end[];
void gadget_restorer(void);

/* a SIGSYS handler installed with our restorer (rt_sigaction directly, SA_RESTORER) */
int install_sigsys(void (*h)(int, void *, void *));

/* seccomp: RET action for the traced numbers unless the syscall's ip is inside one of the ranges */
struct ip_range { uint64_t lo, hi; };
int install_seccomp(const int *nrs, int n_nrs, const struct ip_range *ranges, int n_ranges, uint32_t action);

uint64_t now_ns(int clock);
