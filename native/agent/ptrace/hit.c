/* A hit of one of our int3s: the thread is stopped with rip one past it. Its return probes armed for this
 * return address and this rsp run (stale ones, left by longjmp, are dropped), then the entry programs of
 * the function there, on the thread's registers; a return probe arms a breakpoint at the return address
 * read at [rsp]. Then the displaced instruction runs: emulated when it is one compilers put at entries
 * (endbr64, push, nop, mov %rsp,%rbp), else single-stepped at its own address with the byte restored
 * while every other thread of the process is stopped, so none can run past the missing breakpoint. */
#define _GNU_SOURCE
#include <errno.h>
#include <signal.h>
#include <string.h>
#include <sys/ptrace.h>
#include <sys/wait.h>

#include "tracer.h"

uint64_t hits_total;

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
		if (f->sp < regs->rsp) { /* that call never returned here (longjmp, an exception): dropped */
			bp_put(t->p, f->ret, 1);
			t->nrf--;
			continue;
		}
		if (f->sp == regs->rsp && f->ret == addr) {
			struct rframe done = *f;
			t->nrf--;
			run_sites(t, regs, done.fn, WBPF_AGENT_HOOK_RETURN, NULL);
			bp_put(t->p, done.ret, 1);
		}
		break;
	}
}

static uint64_t *reg_of(struct user_regs_struct *r, unsigned n)
{
	uint64_t *tab[16] = { (uint64_t *)&r->rax, (uint64_t *)&r->rcx, (uint64_t *)&r->rdx, (uint64_t *)&r->rbx,
			      (uint64_t *)&r->rsp, (uint64_t *)&r->rbp, (uint64_t *)&r->rsi, (uint64_t *)&r->rdi,
			      (uint64_t *)&r->r8,  (uint64_t *)&r->r9,  (uint64_t *)&r->r10, (uint64_t *)&r->r11,
			      (uint64_t *)&r->r12, (uint64_t *)&r->r13, (uint64_t *)&r->r14, (uint64_t *)&r->r15 };
	return tab[n & 15];
}

/* runs the instruction at regs->rip (its first byte b->orig) on regs without executing it: 1 done, 0 not one we emulate */
static int emulate(struct proc *p, struct user_regs_struct *r, const struct bp *b)
{
	uint8_t c[8];
	if (mem_read(p, r->rip, c, sizeof c) < 0) return 0;
	c[0] = b->orig;
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

/* single-steps the displaced instruction with the original byte in place and the process's other threads
 * stopped; 0, or -1 when the task is gone (its exit is queued) */
static int step(struct task *t, struct user_regs_struct *regs, struct bp *b)
{
	struct proc *p = t->p;
	stop_others(p, t);
	(void)mem_write(p, b->addr, &b->orig, 1);
	int gone = 0;
	if (ptrace(PTRACE_SETREGS, t->tid, 0, regs) < 0) gone = 1;
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
	if (b->nsites || b->nrets) {
		static const uint8_t int3 = 0xcc;
		(void)mem_write(p, b->addr, &int3, 1);
	} else {
		b->inserted = 0;
	}
	if (!gone) task_resume(t);
	resume_others(p, t);
	return gone ? -1 : 0;
}

void hit(struct task *t, struct user_regs_struct *regs, uint64_t addr)
{
	struct proc *p = t->p;
	struct bp *b = bp_find(p, addr);
	hits_total++;
	regs->rip = addr;
	if (b->inserted) {
		if (b->nrets) run_returns(t, regs, addr);
		int want_ret = 0;
		if (b->nsites) run_sites(t, regs, addr, 0, &want_ret);
		uint64_t ra;
		if (want_ret && t->nrf < MAX_RFRAMES && mem_read(p, regs->rsp, &ra, sizeof ra) == 0 && bp_get(p, ra, 1))
			t->rf[t->nrf++] = (struct rframe){ addr, ra, regs->rsp + 8 };
	}
	if (!b->inserted || emulate(p, regs, b)) {
		/* removed meanwhile (the original byte is back: it runs again), or emulated */
		(void)ptrace(PTRACE_SETREGS, t->tid, 0, regs);
		task_resume(t);
		return;
	}
	(void)step(t, regs, b);
}
