/* wbpf-ptrace: the userspace backend's ptrace tier, for processes no agent can enter (static binaries, a
 * forced tier). `wbpf-ptrace --launch CMD ARGS` runs CMD traced from its first instruction (held until
 * START) and exits with its status; `wbpf-ptrace --pid PID` forks the tracer (its own session), which
 * seizes every thread of a running process, and exits 0 once it has (1 with "ERRNO reason" on stderr when
 * it cannot): the caller waits for that, the tracer runs on until the run ends. Fd 3 is the channel
 * (lib/proto.h). EOF on it (the run's end, the host's death) or the end of the traced processes:
 * every byte restored, every task detached, exit. */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ptrace.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <sys/wait.h>
#include <unistd.h>

#include "tracer.h"

/* TRACESECCOMP, TRACESYSGOOD: the syscall tracepoints' stops (sys.c); TRACEEXIT: sched_process_exit (sched.c) */
#define OPTS \
	(PTRACE_O_TRACECLONE | PTRACE_O_TRACEFORK | PTRACE_O_TRACEVFORK | PTRACE_O_TRACEEXEC | PTRACE_O_TRACESECCOMP | PTRACE_O_TRACESYSGOOD | PTRACE_O_TRACEEXIT)

void tlog(const char *fmt, ...)
{
	/* WBPF_PTRACE_DEBUG=FILE: a line per notable event appended there */
	const char *to = getenv("WBPF_PTRACE_DEBUG");
	FILE *f = to && *to == '/' ? fopen(to, "ae") : NULL;
	if (!f) return;
	va_list ap;
	va_start(ap, fmt);
	fprintf(f, "wbpf-ptrace %d: ", (int)getpid());
	vfprintf(f, fmt, ap);
	fputc('\n', f);
	va_end(ap);
	fclose(f);
}

static void fail(int err, const char *fmt, ...) __attribute__((noreturn, format(printf, 2, 3)));
static void fail(int err, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	fprintf(stderr, "%d ", err);
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
	va_end(ap);
	exit(1);
}

/* launch: the child waits on a pipe until it is seized, then execs; held at the exec until START */
static void launch(char **argv)
{
	int go[2];
	if (pipe2(go, O_CLOEXEC) < 0) fail(errno, "pipe: %s", strerror(errno));
	pid_t pid = fork();
	if (pid < 0) fail(errno, "fork: %s", strerror(errno));
	if (pid == 0) {
		char c;
		close(go[1]);
		close(chan);
		sigset_t none;
		sigemptyset(&none);
		sigprocmask(SIG_SETMASK, &none, NULL);
		if (read(go[0], &c, 1) != 1) _exit(127); /* the tracer died first */
		unsetenv("WBPF_PTRACE_STATS");
		execvp(argv[0], argv);
		fprintf(stderr, "wbpf-ptrace: cannot run %s: %s\n", argv[0], strerror(errno));
		_exit(127);
	}
	close(go[0]);
	/* EXITKILL until START: a command the host never lets start dies with its tracer (killed before its main) */
	if (ptrace(PTRACE_SEIZE, pid, 0, (void *)(long)(OPTS | PTRACE_O_EXITKILL)) < 0) fail(errno, "PTRACE_SEIZE of the command: %s", strerror(errno));
	root_pid = pid;
	struct proc *p = proc_new(pid);
	struct task *rt = p ? task_add(pid, p) : NULL;
	if (!rt) fail(ENOMEM, "tracking the command");
	rt->tgid = pid;
	if (write(go[1], "g", 1) != 1) fail(errno, "starting the command");
	close(go[1]);
	/* its exec (or its exit, when the exec failed) */
	int st;
	while (waitpid(pid, &st, __WALL) < 0 && errno == EINTR) {
	}
	task_event(pid, st);
}

/* join: seize every thread, again until a pass finds no new one */
static void join(pid_t pid)
{
	struct proc *p = proc_new(pid);
	if (!p) fail(errno ? errno : ENOMEM, "opening /proc/%d/mem: %s", (int)pid, strerror(errno));
	for (int found = 1; found;) {
		found = 0;
		char path[64];
		snprintf(path, sizeof path, "/proc/%d/task", (int)pid);
		DIR *d = opendir(path);
		if (!d) fail(ESRCH, "process %d has exited", (int)pid);
		struct dirent *e;
		while ((e = readdir(d))) {
			pid_t tid = (pid_t)atoi(e->d_name);
			if (tid <= 0 || task_find(tid)) continue;
			if (ptrace(PTRACE_SEIZE, tid, 0, (void *)(long)OPTS) < 0) {
				if (errno == ESRCH) continue; /* it ended meanwhile */
				int err = errno;
				detach_all();
				fail(err, "PTRACE_SEIZE of thread %d of process %d: %s%s", (int)tid, (int)pid, strerror(err),
				     err == EPERM ? " (another user's process, or one already traced, or ptrace forbidden here)" : "");
			}
			struct task *jt = task_add(tid, p);
			if (!jt) fail(ENOMEM, "too many threads");
			jt->tgid = pid;
			found = 1;
		}
		closedir(d);
	}
	loader_watch(p); /* the libraries it dlopens from now on */
}

int main(int argc, char **argv)
{
	if (argc < 3 || (strcmp(argv[1], "--launch") && strcmp(argv[1], "--pid"))) {
		fprintf(stderr, "usage: wbpf-ptrace --launch CMD [ARGS] | --pid PID   (fd 3: the agent channel)\n");
		return 2;
	}
	if (fcntl(chan, F_GETFD) < 0) fail(EBADF, "fd 3 (the channel) is not open");
	(void)fcntl(chan, F_SETFD, FD_CLOEXEC);
	/* a Ctrl-C of the host's terminal is the host's to handle: the tracer ends when the channel does */
	sigset_t mask;
	sigemptyset(&mask);
	sigaddset(&mask, SIGCHLD);
	sigaddset(&mask, SIGINT);
	sigaddset(&mask, SIGTERM);
	sigaddset(&mask, SIGHUP);
	sigaddset(&mask, SIGQUIT);
	sigaddset(&mask, SIGPIPE);
	sigprocmask(SIG_BLOCK, &mask, NULL);
	sigset_t chld;
	sigemptyset(&chld);
	sigaddset(&chld, SIGCHLD);
	int sfd = signalfd(-1, &chld, SFD_CLOEXEC | SFD_NONBLOCK);
	if (sfd < 0) fail(errno, "signalfd: %s", strerror(errno));

	if (!strcmp(argv[1], "--launch")) {
		launch(argv + 2);
	} else {
		/* the caller waits for this process; the tracer is its child, whose stderr (a pipe) says how the seize went */
		int rep[2];
		if (pipe2(rep, O_CLOEXEC) < 0) fail(errno, "pipe: %s", strerror(errno));
		pid_t tracer = fork();
		if (tracer < 0) fail(errno, "fork: %s", strerror(errno));
		if (tracer > 0) {
			char buf[512];
			size_t n = 0;
			ssize_t r;
			close(rep[1]);
			close(chan);
			while ((r = read(rep[0], buf + n, sizeof buf - 1 - n)) > 0 || (r < 0 && errno == EINTR)) n += r > 0 ? (size_t)r : 0;
			buf[n] = 0;
			if (!strncmp(buf, "ok\n", 3)) return 0;
			fputs(n ? buf : "5 the tracer ended before it seized the process\n", stderr);
			return 1;
		}
		close(rep[0]);
		setsid(); /* the host's terminal and its signals are not the tracer's */
		dup2(rep[1], 2);
		join((pid_t)atoi(argv[2]));
		int null = open("/dev/null", O_RDWR);
		if (null >= 0) dup2(null, 0), dup2(null, 1);
		if (write(2, "ok\n", 3) != 3) {
		}
		dup2(null >= 0 ? null : 2, 2);
		close(rep[1]);
		if (null > 2) close(null);
	}

	for (;;) {
		pid_t tid;
		int st;
		while (queue_pop(&tid, &st)) task_event(tid, st);
		while ((tid = waitpid(-1, &st, __WALL | WNOHANG)) > 0) {
			task_event(tid, st);
			while (queue_pop(&tid, &st)) task_event(tid, st);
		}
		/* the launched command ended: the run does too; but a tree with our seccomp filter in it keeps its tracer
		 * until its last task ends (a RET_TRACE call with no tracer would fail with ENOSYS) */
		if (root_pid && root_status >= 0 && !sys_filtered) break;
		if (ntasks == 0) {
			tlog("no task left");
			break;
		}
		static int released;
		if (root_pid && started && !released) {
			struct task *r = task_find(root_pid);
			released = 1;
			if (r && r->state == T_STOPPED) {
				/* START: the command runs; from here a tracer's death no longer kills it */
				(void)ptrace(PTRACE_SETOPTIONS, root_pid, 0, (void *)(long)OPTS);
				sched_exec(r, root_pid); /* its exec (the kernel's sched_process_exec for a command started after the attach) */
				sys_start(r); /* the syscall tracepoints' filter, before its first instruction */
				task_resume(r);
			}
		}
		struct pollfd pf[2] = { { .fd = chan < 0 ? -1 : chan, .events = POLLIN }, { .fd = sfd, .events = POLLIN } };
		if (poll(pf, 2, -1) < 0 && errno != EINTR) break;
		if (pf[1].revents) {
			struct signalfd_siginfo si;
			while (read(sfd, &si, sizeof si) == sizeof si) {
			}
		}
		if (pf[0].revents && chan_serve_one() < 0) {
			tlog("the channel closed");
			if (!sys_filtered) break;
			/* the run ended (or the host died) with our filter in the tree: no program runs any more, every byte
			 * of ours goes back, and the filter's stops are passed through until the tree ends */
			sys_end();
			for (unsigned i = 0; i < MAX_THOOKS; i++) {
				char m[160];
				if (thooks[i].live) (void)tables_unhook(thooks[i].id, m, sizeof m);
			}
			close(chan);
			chan = -1;
			tlog("passing the seccomp filter's stops through until the traced processes end");
		}
	}
	detach_all();
	if (getenv("WBPF_PTRACE_STATS") && sys_calls) {
		/* the tracer's own CPU per syscall stop that ran programs (the traced thread's stops are its own CPU time) */
		struct rusage ru;
		getrusage(RUSAGE_SELF, &ru);
		double cpu = (ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1e9 + (ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) * 1e3;
		FILE *out = fdopen(dup(2), "w");
		if (out) {
			fprintf(out, "wbpf-ptrace: %llu traced syscalls (%s), %.0f ns of the tracer's CPU per traced syscall\n", (unsigned long long)sys_calls,
				sys_mode(), cpu / (double)sys_calls);
			fclose(out);
		}
	}
	if (getenv("WBPF_PTRACE_STATS") && hits_total) {
		/* the tracer's own CPU per hit (the traced thread's trap and stop are its own CPU time) */
		struct rusage ru;
		getrusage(RUSAGE_SELF, &ru);
		double cpu = (ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1e9 + (ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) * 1e3;
		FILE *out = fdopen(dup(2), "w");
		if (out) {
			fprintf(out, "wbpf-ptrace: %llu hits, %.0f ns of the tracer's CPU per hit; returns: %llu armed, %llu run, %llu dropped, %llu not armed\n",
				(unsigned long long)hits_total, cpu / (double)hits_total, (unsigned long long)rets_armed, (unsigned long long)rets_run,
				(unsigned long long)rets_dropped, (unsigned long long)rets_unarmed);
			fclose(out);
		}
	}
	if (root_pid && root_status < 0) {
		/* the run ended first: the command runs on on its own */
		return 0;
	}
	return root_pid ? root_status : 0;
}
