/* The traced tasks and their stops: every thread and descendant (PTRACE_O_TRACECLONE/FORK/VFORK/EXEC),
 * what each wait status means (a breakpoint of ours, a new task, an exec, a group-stop, a signal to pass
 * on unchanged), stopping a process's other threads while a displaced instruction is single-stepped, and
 * the end of the run: every byte restored, every task detached. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ptrace.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "tracer.h"

struct task *tasks[MAX_TASKS];
unsigned ntasks;
struct proc *procs[MAX_PROCS];
unsigned nprocs;
pid_t root_pid;
int root_status = -1;

/* wait statuses met while waiting for a given task (stop_others, the step), handled later in order */
#define QUEUE 4096
static struct {
	pid_t tid;
	int status;
} queue[QUEUE];
static unsigned qhead, qtail;

/* first stops of new processes seen before their parent's fork event (new_task resumes them) */
#define EARLY 64
static pid_t early[EARLY];
static unsigned nearly;

void queue_push(pid_t tid, int status)
{
	if (qtail - qhead >= QUEUE) return; /* cannot happen: one per task at most */
	queue[qtail % QUEUE].tid = tid;
	queue[qtail % QUEUE].status = status;
	qtail++;
}

int queue_pop(pid_t *tid, int *status)
{
	if (qhead == qtail) return 0;
	*tid = queue[qhead % QUEUE].tid;
	*status = queue[qhead % QUEUE].status;
	qhead++;
	return 1;
}

struct task *task_find(pid_t tid)
{
	for (unsigned i = 0; i < ntasks; i++)
		if (tasks[i]->tid == tid) return tasks[i];
	return NULL;
}

pid_t task_tgid(struct task *t)
{
	if (t->tgid) return t->tgid;
	char path[64], line[128];
	pid_t tgid = 0;
	snprintf(path, sizeof path, "/proc/%d/status", (int)t->tid);
	FILE *f = fopen(path, "re");
	if (f) {
		while (fgets(line, sizeof line, f))
			if (sscanf(line, "Tgid: %d", &tgid) == 1) break;
		fclose(f);
	}
	if (tgid > 0) t->tgid = tgid;
	return tgid > 0 ? tgid : t->p->pid;
}

struct proc *proc_new(pid_t pid)
{
	if (nprocs >= MAX_PROCS) return NULL;
	struct proc *p = calloc(1, sizeof *p);
	if (!p) return NULL;
	char path[64];
	snprintf(path, sizeof path, "/proc/%d/mem", (int)pid);
	p->pid = pid;
	p->mem = open(path, O_RDWR | O_CLOEXEC);
	if (p->mem < 0) {
		free(p);
		return NULL;
	}
	procs[nprocs++] = p;
	return p;
}

void proc_unref(struct proc *p)
{
	if (--p->refs > 0) return;
	close(p->mem);
	for (unsigned i = 0; i < nprocs; i++)
		if (procs[i] == p) procs[i] = procs[--nprocs];
	free(p);
}

struct task *task_add(pid_t tid, struct proc *p)
{
	struct task *t = task_find(tid);
	if (t) return t;
	if (ntasks >= MAX_TASKS || !(t = calloc(1, sizeof *t))) return NULL;
	t->tid = tid;
	t->state = T_RUNNING;
	t->p = p;
	p->refs++;
	tasks[ntasks++] = t;
	return t;
}

static void drop_frames(struct task *t)
{
	for (unsigned i = 0; i < t->nrf; i++) bp_put(t->p, t->rf[i].ret, 1);
	t->nrf = 0;
}

void task_remove(struct task *t)
{
	drop_frames(t);
	for (unsigned i = 0; i < ntasks; i++)
		if (tasks[i] == t) tasks[i] = tasks[--ntasks];
	proc_unref(t->p);
	free(t);
}

void task_resume(struct task *t)
{
	int sig = t->pending_sig;
	t->pending_sig = 0;
	/* PTRACE_SYSCALL: every syscall stops (sys.c), or this one's exit runs programs */
	int req = sys_stops || t->sys_exit ? PTRACE_SYSCALL : PTRACE_CONT;
	if (ptrace(req, t->tid, 0, (void *)(long)sig) == 0) t->state = T_RUNNING;
	else if (errno == ESRCH) t->state = T_RUNNING; /* killed meanwhile (SIGKILL): its exit is reported */
}

static int is_stop_event(int status, int event) { return WIFSTOPPED(status) && (status >> 16) == event; }

/* the task has ended (a zombie, or gone): it runs no code */
static int zombie(pid_t tgid, pid_t tid)
{
	char path[64], buf[256];
	snprintf(path, sizeof path, "/proc/%d/task/%d/stat", (int)tgid, (int)tid);
	FILE *f = fopen(path, "re");
	if (!f) return 1;
	size_t n = fread(buf, 1, sizeof buf - 1, f);
	fclose(f);
	buf[n] = 0;
	const char *e = strrchr(buf, ')');
	return !e || e[1] != ' ' || e[2] == 'Z' || e[2] == 'X';
}

void stop_others(struct proc *p, struct task *except)
{
	for (unsigned i = 0; i < ntasks; i++) {
		struct task *u = tasks[i];
		if (u == except || u->p != p || u->state != T_RUNNING) continue;
		(void)ptrace(PTRACE_INTERRUPT, u->tid, 0, 0);
	}
	for (unsigned i = 0; i < ntasks; i++) {
		struct task *u = tasks[i];
		if (u == except || u->p != p || u->state != T_RUNNING) continue;
		int st;
		pid_t r;
		/* not a blocking wait: a thread-group leader that ended while its threads run is a zombie whose
		 * exit is reported only after theirs; it runs no code, so it is skipped */
		struct timespec nap = { 0, 20000 };
		while ((r = waitpid(u->tid, &st, __WALL | WNOHANG)) == 0 || (r < 0 && errno == EINTR)) {
			if (r == 0 && zombie(p->pid, u->tid)) break;
			nanosleep(&nap, NULL);
		}
		if (r <= 0) continue;
		if (WIFEXITED(st) || WIFSIGNALED(st)) {
			queue_push(u->tid, st); /* its exit is handled by the main loop (the task goes then) */
			u->state = T_STOPPED;
			continue;
		}
		u->state = T_STOPPED;
		if (!(is_stop_event(st, PTRACE_EVENT_STOP) && WSTOPSIG(st) == SIGTRAP)) queue_push(u->tid, st);
	}
}

void resume_others(struct proc *p, struct task *except)
{
	for (unsigned i = 0; i < ntasks; i++) {
		struct task *u = tasks[i];
		if (u == except || u->p != p || u->state != T_STOPPED) continue;
		int queued = 0;
		for (unsigned k = qhead; k != qtail; k++)
			if (queue[k % QUEUE].tid == u->tid) queued = 1;
		if (!queued) task_resume(u); /* a queued one is resumed when its stop is handled */
	}
}

/* a new task reported by its parent's event (it reports its own first stop too, maybe earlier) */
static void new_task(struct task *parent, pid_t tid, int event)
{
	struct task *t = task_find(tid);
	if (!t) {
		struct proc *p = parent->p;
		if (event == PTRACE_EVENT_FORK) {
			p = proc_new(tid);
			if (!p) return;
			bp_copy(p, parent->p);
		}
		t = task_add(tid, p);
		if (!t) return;
		if (event != PTRACE_EVENT_CLONE) t->tgid = tid; /* a process of its own (a CLONE may be a thread or not: read when needed) */
		t->state = T_STOPPED; /* it starts in a stop we have not seen yet: resumed when it reports */
		t->nrf = 0;
		for (unsigned i = 0; i < nearly; i++)
			if (early[i] == tid) {
				early[i] = early[--nearly];
				t->state = T_RUNNING; /* its first stop came already: resumed below */
			}
		if (event != PTRACE_EVENT_CLONE) {
			/* the child's stack is a copy of the forking thread's: its armed returns come back there too */
			for (unsigned i = 0; i < parent->nrf && i < MAX_RFRAMES; i++)
				if (bp_get(t->p, parent->rf[i].ret, 1)) t->rf[t->nrf++] = parent->rf[i];
		}
		if (t->state == T_RUNNING) {
			t->state = T_STOPPED;
			task_resume(t);
		}
	}
}

/* an exec replaced the process's memory: nothing of ours is there; the run's hooks are set again */
static void after_exec(struct task *t)
{
	pid_t tgid = t->tid;
	struct proc *old = t->p;
	int own = old->pid == tgid; /* not a vfork child, which shared its parent's memory until now */
	/* the other threads are gone (their exits may still be reported: unknown tids are ignored) */
	for (unsigned i = 0; own && i < ntasks;) {
		struct task *u = tasks[i];
		if (u != t && u->p == t->p) {
			u->nrf = 0;
			task_remove(u);
			continue;
		}
		i++;
	}
	if (own) t->nrf = 0;
	else drop_frames(t); /* a vfork child's armed returns were in its parent's memory */
	struct proc *p = proc_new(tgid);
	if (!p) return;
	p->refs = 1;
	t->p = p;
	t->tgid = tgid;
	if (own) old->nbps = old->nsites = 0; /* not ours to restore: the memory they were in is gone */
	proc_unref(old);
	for (unsigned i = 0; i < MAX_THOOKS; i++)
		if (thooks[i].live) (void)proc_hook(p, &thooks[i]);
	loader_watch(p); /* the libraries its loader maps, and those it dlopens */
}

void task_event(pid_t tid, int status)
{
	struct task *t = task_find(tid);
	if (WIFEXITED(status) || WIFSIGNALED(status)) {
		tlog("task %d ended (status 0x%x)", (int)tid, status);
		if (tid == root_pid) root_status = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
		if (t) task_remove(t);
		return;
	}
	if (!WIFSTOPPED(status)) return;
	if (!t) {
		/* a new task's first stop before its parent's event: its process is known by its tgid */
		char path[64], line[128];
		pid_t tgid = tid;
		snprintf(path, sizeof path, "/proc/%d/status", (int)tid);
		FILE *f = fopen(path, "re");
		if (f) {
			while (fgets(line, sizeof line, f))
				if (sscanf(line, "Tgid: %d", &tgid) == 1) break;
			fclose(f);
		}
		struct proc *p = NULL;
		for (unsigned i = 0; i < nprocs; i++)
			if (procs[i]->pid == tgid) p = procs[i];
		if (!p) {
			/* a fork child before its parent's event: held stopped until the event says whose it is */
			if (nearly < EARLY) early[nearly++] = tid;
			return;
		}
		t = task_add(tid, p);
		if (!t) return;
	}
	t->state = T_STOPPED;
	int sig = WSTOPSIG(status), event = status >> 16;
	if (event == PTRACE_EVENT_CLONE || event == PTRACE_EVENT_FORK || event == PTRACE_EVENT_VFORK) {
		unsigned long child = 0;
		if (ptrace(PTRACE_GETEVENTMSG, tid, 0, &child) == 0) {
			sched_fork(t, (pid_t)child); /* in the parent, before the child runs (new_task may resume it) */
			new_task(t, (pid_t)child, event);
		}
		task_resume(t);
		return;
	}
	if (event == PTRACE_EVENT_EXEC) {
		unsigned long old = tid; /* the thread that called execve (another than the leader's, when a thread did) */
		(void)ptrace(PTRACE_GETEVENTMSG, tid, 0, &old);
		after_exec(t);
		/* the launched command's own exec: its programs run at START (main.c), once attached */
		if (tid != root_pid || started) {
			sched_exec(t, (pid_t)old);
			task_resume(t);
		}
		return;
	}
	if (event == PTRACE_EVENT_EXIT) {
		unsigned long code = 0; /* the wait status the task ends with: the kernel's task->exit_code */
		(void)ptrace(PTRACE_GETEVENTMSG, tid, 0, &code);
		sched_exit(t, (long)code);
		task_resume(t);
		return;
	}
	if (event == PTRACE_EVENT_STOP) {
		if (sig == SIGTRAP) task_resume(t); /* an interrupt of ours, or a new task's first stop */
		else (void)ptrace(PTRACE_LISTEN, tid, 0, 0); /* a group-stop: it stays stopped until SIGCONT */
		if (sig != SIGTRAP) t->state = T_RUNNING; /* listening: it reports again when it continues */
		return;
	}
	if (event == PTRACE_EVENT_SECCOMP || (event == 0 && sig == (SIGTRAP | 0x80))) {
		sys_event(t, event == PTRACE_EVENT_SECCOMP); /* a syscall tracepoint's stop (sys.c) */
		return;
	}
	if (sig == SIGTRAP) {
		siginfo_t si;
		struct user_regs_struct regs;
		if (ptrace(PTRACE_GETSIGINFO, tid, 0, &si) == 0 && regs_get(tid, &regs) == 0) {
			uint64_t addr = arch_trap_addr(&si, &regs);
			struct bp *b = addr ? bp_find(t->p, addr) : NULL;
			if (b) {
				(void)loader_event(t->p, addr);
				hit(t, &regs, addr);
				return;
			}
		}
	}
	tlog("task %d: signal %d passed on", (int)tid, sig);
	t->pending_sig = sig; /* someone else's signal: delivered unchanged */
	task_resume(t);
}

/* the end: every task stopped (a trap of ours met on the way is undone), every byte restored, every task
 * detached with the signal it was about to get */
void detach_all(void)
{
	for (unsigned i = 0; i < nprocs; i++) stop_others(procs[i], NULL);
	pid_t tid;
	int st;
	while (queue_pop(&tid, &st)) {
		struct task *t = task_find(tid);
		if (!t) continue;
		if (WIFEXITED(st) || WIFSIGNALED(st)) {
			task_remove(t);
			continue;
		}
		int sig = WSTOPSIG(st), event = st >> 16;
		if (event || sig == (SIGTRAP | 0x80)) continue; /* an event or syscall stop: nothing to deliver */
		if (sig == SIGTRAP) {
			siginfo_t si;
			struct user_regs_struct regs;
			uint64_t addr;
			if (ptrace(PTRACE_GETSIGINFO, tid, 0, &si) == 0 && regs_get(tid, &regs) == 0 && (addr = arch_trap_addr(&si, &regs)) &&
			    bp_find(t->p, addr)) {
				regs_set_pc(&regs, addr); /* our breakpoint: the instruction runs again once its bytes are back */
				(void)regs_set(tid, &regs);
				continue;
			}
		}
		t->pending_sig = sig;
	}
	for (unsigned i = 0; i < nprocs; i++) bp_restore_all(procs[i]);
	while (ntasks) {
		struct task *t = tasks[ntasks - 1];
		(void)ptrace(PTRACE_DETACH, t->tid, 0, (void *)(long)t->pending_sig);
		t->nrf = 0;
		task_remove(t);
	}
}
