/* wbpf-ptrace, the userspace backend's ptrace tier: what its files share. The tracer speaks the agent's
 * channel protocol (lib/proto.h) and runs the programs itself at each hit of a breakpoint it put in the traced
 * processes (no code of ours inside them). One thread, one event loop (main.c). */
#ifndef WBPF_TRACER_H
#define WBPF_TRACER_H

#include <signal.h>
#include <stdint.h>
#include <sys/types.h>
#include <sys/user.h>

#include "../lib/proto.h"

#define MAX_TASKS 4096
#define MAX_PROCS 256
#define MAX_BPS 256     /* breakpoints per process (entries and pending return addresses) */
#define MAX_SITES 256   /* hooks set in one process */
#define MAX_RFRAMES 256 /* armed returns per thread */
#define MAX_THOOKS 64   /* the run's hooks */

#define BP_MAX 4 /* the longest breakpoint instruction: int3 is 1 byte (x86-64), brk 4 (arm64) */
/* a breakpoint in one process: its original bytes, and who wants it */
struct bp {
	uint64_t addr;
	uint8_t orig[BP_MAX];
	uint8_t inserted; /* the breakpoint instruction is in memory */
	uint32_t nsites;  /* hook sites at this address */
	uint32_t nrets;   /* armed returns to this address (every thread's) */
	uint8_t ret_site; /* a return was armed here once: kept inserted while the process has a return hook */
};
/* a hook set in one process, at a function's address there */
struct site {
	uint32_t hook;
	uint64_t addr;
};
/* a traced address space (a process; a vfork child shares its parent's until it execs) */
struct proc {
	pid_t pid;
	int mem;   /* /proc/PID/mem, read-write */
	int refs;  /* tasks using it */
	struct bp bps[MAX_BPS];
	unsigned nbps;
	struct site sites[MAX_SITES];
	unsigned nsites;
};
/* an armed return: the function at fn returns to ret with its stack pointer == sp */
struct rframe {
	uint64_t fn, ret, sp;
};
enum { T_RUNNING, T_STOPPED };
struct task {
	pid_t tid;
	int state;
	int pending_sig;   /* a signal to deliver at the next resume */
	struct proc *p;
	struct rframe rf[MAX_RFRAMES];
	unsigned nrf;
	int sys_entered; /* its syscall-entry stop ran the enter programs (every syscall stops) */
	int sys_exit;    /* resumed with PTRACE_SYSCALL: its syscall-exit-stop runs the exit programs */
	pid_t tgid;      /* its process (0: not known yet; task_tgid reads it) */
	int exit_code;   /* the kernel's task->exit_code once it reached its exit stop (PTRACE_EVENT_EXIT) */
	int exiting;     /* it did */
};

/* ---- the run's tables (tables.c): maps, programs, hooks from the host ---- */
struct thook {
	uint32_t id, prog, flags;
	int live;
	int disabled; /* its program faulted once: it runs no more (an EVENT said so) */
	struct wbpf_agent_hook req;
};
extern struct thook thooks[MAX_THOOKS];
int tables_map_add(uint32_t id, int fd, int nfd, char *msg, size_t n);
int tables_prog_add(const uint8_t *p, uint32_t len, char *msg, size_t n);
int tables_drop(const uint8_t *p, uint32_t len, char *msg, size_t n);
struct thook *tables_hook(uint32_t id);
int tables_hook_add(const struct wbpf_agent_hook *r, char *msg, size_t n);
int tables_unhook(uint32_t id, char *msg, size_t n);
/* runs program prog on ctx for hook id in task t (hit.c calls it); 0 done, else the engine's status */
int tables_run(struct thook *h, struct task *t, struct user_regs_struct *regs);
/* the loaded program id, or NULL */
const void *tables_prog(uint32_t id);
/* runs program prog for hook id in task t on ctx [ctx, ctx+size): 0 done, else the engine's status and why */
int tables_exec(uint32_t id, uint32_t prog, struct task *t, void *ctx, size_t size, char *why, size_t n);

/* ---- syscall tracepoints (sys.c, x86-64) ---- */
int sys_add(const struct wbpf_agent_syscall *r, const uint8_t *table, char *msg, size_t n);
int sys_remove(uint32_t id, int *status, char *msg, size_t n);
int sys_has(uint32_t id);
int sys_uses_prog(uint32_t prog);
/* START of a launched command (the root at its exec stop): its seccomp filter */
void sys_start(struct task *root);
/* a seccomp stop (1) or a syscall stop (0) of t: its programs run, t resumes */
void sys_event(struct task *t, int seccomp);
/* the run's end: no program runs any more */
void sys_end(void);
const char *sys_mode(void);
extern int sys_filtered, sys_stops;
extern uint64_t sys_calls;

/* ---- process events and the task_struct image (sched.c) ---- */
int sched_add(const struct wbpf_agent_syscall *r, const uint8_t *table, char *msg, size_t n);
int sched_remove(uint32_t id, int *status, char *msg, size_t n);
int sched_has(uint32_t id);
int sched_uses_prog(uint32_t prog);
int sched_wants(int kind);
void sched_end(void);
/* the programs of each event, in the kernel's current task of its tracepoint */
void sched_exec(struct task *t, pid_t old_pid);
void sched_exit(struct task *t, long code);
void sched_fork(struct task *parent, pid_t child);
/* the TASK frame; the current thread's images (2 * the layout's size) for bpf_get_current_task */
int task_layout_set(const uint8_t *p, uint32_t len, char *msg, size_t n);
uintptr_t task_image(uint64_t *size);
int task_readable(uint64_t src, uint64_t len);
uint64_t task_image_end(void);

/* ---- the arch (ptrace/x86_64/arch.c, ptrace/arm64/arch.c): registers are glibc's user_regs_struct on both,
 * read and written as the NT_PRSTATUS regset; on arm64 it is laid out as struct wbpf_pt_regs (hook/hook.h) ---- */
extern const uint8_t bp_insn[BP_MAX]; /* the breakpoint instruction, bp_len bytes */
extern const unsigned bp_len;
uint64_t regs_pc(const struct user_regs_struct *r);
void regs_set_pc(struct user_regs_struct *r, uint64_t pc);
uint64_t regs_sp(const struct user_regs_struct *r);
/* where the breakpoint that stopped a thread with this SIGTRAP is (to look up with bp_find), or 0 when the
 * trap was no breakpoint instruction's */
uint64_t arch_trap_addr(const siginfo_t *si, const struct user_regs_struct *r);
/* the original bytes at a site are a breakpoint instruction already (a debugger's) */
int arch_bp_foreign(const uint8_t *orig);
/* at a function's entry: the address it returns to and the stack pointer it returns with; 0 or -EFAULT */
int arch_ret_of(struct proc *p, const struct user_regs_struct *r, uint64_t *ra, uint64_t *sp);
/* runs the displaced instruction of b (at regs' pc) on r without executing it: 1 done, 0 not one emulated
 * (the caller single-steps it) */
int arch_emulate(struct proc *p, struct user_regs_struct *r, const struct bp *b);

/* ---- the arch's syscall side (ptrace/x86_64/sys.c, ptrace/arm64/sys.c): the syscall tracepoints' registers ---- */
extern const uint32_t sys_audit_arch;             /* seccomp_data.arch of the arch's native calls (AUDIT_ARCH_*) */
extern const uint8_t sys_insn[4];                 /* the syscall instruction (syscall; svc #0), sys_insn_len bytes */
extern const unsigned sys_insn_len;
/* the number of the syscall t is stopped in (a seccomp, syscall-entry or syscall-exit stop), or -1 */
int sys_regs_nr(pid_t tid, const struct user_regs_struct *r);
/* its arguments (meaningful at the seccomp and entry stops) and its result (at the exit stop) */
void sys_regs_args(const struct user_regs_struct *r, uint64_t args[6]);
long sys_regs_ret(const struct user_regs_struct *r);
/* r set up for one injected call of nr (a0..a2) by the instruction at its pc; the result after the step */
void sys_regs_call(pid_t tid, struct user_regs_struct *r, long nr, uint64_t a0, uint64_t a1, uint64_t a2);
long sys_regs_result(const struct user_regs_struct *r);

/* ---- breakpoints, memory and registers (bp.c) ---- */
int regs_get(pid_t tid, struct user_regs_struct *r);
int regs_set(pid_t tid, const struct user_regs_struct *r);
int mem_read(struct proc *p, uint64_t addr, void *buf, size_t n);
int mem_write(struct proc *p, uint64_t addr, const void *buf, size_t n);
struct bp *bp_find(struct proc *p, uint64_t addr);
/* takes a reference (site or return) on the breakpoint at addr, inserting it: the bp, or NULL */
struct bp *bp_get(struct proc *p, uint64_t addr, int ret);
/* drops one; the original byte goes back with the last */
void bp_put(struct proc *p, uint64_t addr, int ret);
int bp_needed(const struct proc *p, const struct bp *b); /* still wanted in memory */
/* every inserted byte restored (the end of the run) */
void bp_restore_all(struct proc *p);
/* a fork child's copy: the same breakpoints are in its memory */
void bp_copy(struct proc *dst, const struct proc *src);
/* sets hook h in process p (if it maps the file): 1 set, 0 not mapped, -errno */
int proc_hook(struct proc *p, const struct thook *h);
void proc_unhook(struct proc *p, uint32_t hook);

/* ---- tasks (tasks.c) ---- */
extern struct task *tasks[MAX_TASKS];
extern unsigned ntasks;
struct task *task_find(pid_t tid);
pid_t task_tgid(struct task *t); /* its process id (/proc/TID/status once) */
struct task *task_add(pid_t tid, struct proc *p);
void task_remove(struct task *t);
struct proc *proc_new(pid_t pid);
void proc_unref(struct proc *p);
extern struct proc *procs[MAX_PROCS];
extern unsigned nprocs;
/* resumes a stopped task (delivering its pending signal) */
void task_resume(struct task *t);
/* one wait status of tid: breakpoints, new tasks, exec, signals; sets *root_status when the launched root ended */
void task_event(pid_t tid, int status);
/* stops every running task of p except `except`; returns how many; their other stops are queued */
void stop_others(struct proc *p, struct task *except);
void resume_others(struct proc *p, struct task *except);
/* queued wait statuses (met while stopping tasks), handled by the main loop */
int queue_pop(pid_t *tid, int *status);
void queue_push(pid_t tid, int status);
/* the end: every task stopped, every byte restored, every task detached */
void detach_all(void);
extern pid_t root_pid;    /* launch mode: the command; 0: join mode */
extern int root_status;   /* -1 while it runs; else its status as a shell reports it */

/* ---- hits (hit.c) ---- */
/* t stopped by a breakpoint of ours at addr (regs as stopped): runs the programs, arms returns, steps over */
void hit(struct task *t, struct user_regs_struct *regs, uint64_t addr);
extern uint64_t hits_total;
extern uint64_t rets_armed, rets_run, rets_dropped, rets_unarmed;

/* ---- libraries loaded later (loader.c) ---- */
/* a breakpoint on p's dynamic loader's debugger hook (or, before the loader ran, on the program's entry) */
void loader_watch(struct proc *p);
/* a hit at addr in p: 1 when it was the loader's (the hooks were set again there; the caller runs hit()) */
int loader_event(struct proc *p, uint64_t addr);

/* ---- the channel (chan.c) ---- */
extern int chan;
/* serves one request: 0, or -1 at EOF */
int chan_serve_one(void);
void chan_event(uint32_t hook, const char *msg);
void chan_trace(uint32_t hook, const char *text, uint32_t len);
extern int started; /* launch mode: START came */

/* ---- the current hit, for the helpers (helpers.c) ---- */
extern pid_t cur_tid, cur_tgid;
extern struct task *cur_task;
extern uintptr_t cur_ctx; /* the current run's ctx: the record the tracer built, in its own memory */
extern size_t cur_ctx_size;

void tlog(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
#endif
