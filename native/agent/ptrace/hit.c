/* A hit of one of our breakpoints (x86-64: the thread stopped with rip one past the int3; arm64: pc at the
 * brk). Its return probes armed for this return address and this stack pointer run (stale ones, left by
 * longjmp, are dropped), then the entry programs of the function there, on the thread's registers; a return
 * probe arms a breakpoint at the return address (arch_ret_of: [rsp] on x86-64, x30 on arm64). Then the
 * displaced instruction runs: emulated when it is one compilers put at entries (arch_emulate), else
 * single-stepped at its own address with its bytes restored while every other thread of the process is
 * stopped, so none can run past the missing breakpoint. */
#define _GNU_SOURCE
#include <errno.h>
#include <signal.h>
#include <string.h>
#include <sys/ptrace.h>
#include <sys/wait.h>

#include "tracer.h"

uint64_t hits_total;
uint64_t rets_armed, rets_run, rets_dropped, rets_unarmed; /* return probes: armed, run, dropped (longjmp), not armable */

static void run_sites(struct task *t, struct user_regs_struct *regs, uint64_t fn, uint32_t kind, int *want_ret)
{
	struct proc *p = t->p;
	for (unsigned i = 0; i < p->nsites; i++) {
		if (p->sites[i].addr != fn) continue;
		struct thook *h = tables_hook(p->sites[i].hook);
		if (!h || h->disabled) continue;
		if (h->flags != kind) {
			if (want_ret && h->flags == WBPF_AGENT_HOOK_RETURN) *want_ret = 1;
			continue;
		}
		(void)tables_run(h, t, regs);
	}
}

static void run_returns(struct task *t, struct user_regs_struct *regs, uint64_t addr)
{
	while (t->nrf > 0) {
		struct rframe *f = &t->rf[t->nrf - 1];
		if (f->sp < regs_sp(regs)) { /* that call never returned here (longjmp, an exception): dropped */
			tlog("task %d: armed return of 0x%llx to 0x%llx (sp 0x%llx) dropped at 0x%llx (sp 0x%llx)", (int)t->tid, (unsigned long long)f->fn,
			     (unsigned long long)f->ret, (unsigned long long)f->sp, (unsigned long long)addr, (unsigned long long)regs_sp(regs));
			rets_dropped++;
			bp_put(t->p, f->ret, 1);
			t->nrf--;
			continue;
		}
		if (f->sp == regs_sp(regs) && f->ret == addr) {
			struct rframe done = *f;
			t->nrf--;
			rets_run++;
			run_sites(t, regs, done.fn, WBPF_AGENT_HOOK_RETURN, NULL);
			bp_put(t->p, done.ret, 1);
		}
		break;
	}
}

/* single-steps the displaced instruction with the original byte in place and the process's other threads
 * stopped; 0, or -1 when the task is gone (its exit is queued) */
static int step(struct task *t, struct user_regs_struct *regs, struct bp *b)
{
	struct proc *p = t->p;
	stop_others(p, t);
	(void)mem_write(p, b->addr, b->orig, bp_len);
	int gone = 0;
	if (regs_set(t->tid, regs) < 0) gone = 1;
	while (!gone) {
		int st;
		if (ptrace(PTRACE_SINGLESTEP, t->tid, 0, 0) < 0) {
			gone = 1;
			break;
		}
		pid_t w;
		while ((w = waitpid(t->tid, &st, __WALL)) < 0 && errno == EINTR) {
		}
		if (w < 0) {
			gone = 1;
			break;
		}
		if (WIFEXITED(st) || WIFSIGNALED(st)) {
			gone = 2;
			queue_push(t->tid, st); /* the main loop removes it */
			break;
		}
		int sig = WSTOPSIG(st), event = st >> 16;
		if (sig == SIGTRAP && event == 0) break; /* the step's trap */
		if (event == 0) t->pending_sig = sig; /* a signal that came meanwhile: delivered after the step */
	}
	int back = 0;
	if (bp_needed(p, b)) /* tried again: a breakpoint not written back would be a hook lost without a word */
		for (int i = 0; i < 3 && !back; i++) back = mem_write(p, b->addr, bp_insn, bp_len) == 0;
	if (!back) b->inserted = 0;
	if (!gone) task_resume(t);
	resume_others(p, t);
	return gone ? -1 : 0;
}

void hit(struct task *t, struct user_regs_struct *regs, uint64_t addr)
{
	struct proc *p = t->p;
	struct bp *b = bp_find(p, addr);
	hits_total++;
	regs_set_pc(regs, addr);
	if (b->inserted) {
		if (b->nrets) run_returns(t, regs, addr);
		int want_ret = 0;
		if (b->nsites) run_sites(t, regs, addr, 0, &want_ret);
		uint64_t ra, sp;
		if (want_ret && t->nrf < MAX_RFRAMES && arch_ret_of(p, regs, &ra, &sp) == 0 && bp_get(p, ra, 1)) {
			t->rf[t->nrf++] = (struct rframe){ addr, ra, sp };
			rets_armed++;
		} else if (want_ret) {
			rets_unarmed++;
			tlog("task %d: the return of 0x%llx not armed (%u armed)", (int)t->tid, (unsigned long long)addr, t->nrf);
		}
	}
	if (!b->inserted || arch_emulate(p, regs, b)) {
		/* removed meanwhile (the original bytes are back: it runs again), or emulated */
		(void)regs_set(t->tid, regs);
		task_resume(t);
		return;
	}
	(void)step(t, regs, b);
}
