/* wbpf-inject PID AGENT_SO TIMEOUT_MS: loads the agent into a running process (join mode) and hands it
 * the host's channel, this program's fd 3. ptrace-seizes every thread, borrows one stopped in a safe place
 * (the others run on), calls dlopen(AGENT_SO) and wbpf_agent_join() there, puts every register (and errno)
 * back, detaches. The registers, instructions and calling convention are inject/<arch>.c's (arch.h).
 * Exit 0, or 1 with "ERRNO reason" on stderr. See native/agent/README.md, "Joining a running process". */
#define _GNU_SOURCE
#include <dirent.h>
#include <dlfcn.h>
#include <elf.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/ptrace.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "../lib/proto.h"
#include "arch.h"

#define CHANNEL_FD 3
#define SCRATCH 8192 /* the page the calls return to (the arch's return stub) and their strings */
#define STRINGS 64   /* where the strings start in it */

static char why[1024];
static int why_errno;

/* records the first failure; returns -1 */
static int fail(int err, const char *fmt, ...)
{
	if (why_errno) return -1;
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(why, sizeof why, fmt, ap);
	va_end(ap);
	why_errno = err ? err : EIO;
	return -1;
}


static pid_t pid;
static int64_t deadline_ms;

static int64_t now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* ---- the target's threads ---- */
struct thr {
	pid_t tid;
	int stopped; /* in a ptrace stop we caused or met */
	int gone;    /* ended, or let go */
	int sig; /* a signal met in a signal-delivery stop: delivered when the thread is let go */
};
static struct thr th[4096];
static int nth;

static struct thr *find_thr(pid_t tid)
{
	for (int i = 0; i < nth; i++)
		if (th[i].tid == tid) return &th[i];
	return NULL;
}

/* waits (until the deadline) for t's next stop: 0 (status in *st), 1 (the thread is gone), -1 (timeout) */
static int wait_thr(struct thr *t, int *st)
{
	for (;;) {
		pid_t r = waitpid(t->tid, st, __WALL | WNOHANG);
		if (r == t->tid) {
			if (WIFEXITED(*st) || WIFSIGNALED(*st)) {
				t->gone = 1, t->stopped = 0;
				return 1;
			}
			return 0;
		}
		if (r < 0 && errno == EINTR) continue;
		if (r < 0) {
			t->gone = 1, t->stopped = 0;
			return 1;
		}
		if (now_ms() > deadline_ms) return -1;
		struct timespec nap = { 0, 200000 };
		nanosleep(&nap, NULL);
	}
}

/* t interrupted: wait until it is in a stop (an interrupt's, or a signal's, kept for later) */
static int wait_stopped(struct thr *t)
{
	int st;
	int r = wait_thr(t, &st);
	if (r == 1) return 0;
	if (r < 0) return fail(ETIMEDOUT, "thread %d of process %d did not stop within the timeout", t->tid, pid);
	int event = st >> 16, sig = WSTOPSIG(st);
	if (event == 0 && sig != (SIGTRAP | 0x80)) t->sig = sig; /* a signal-delivery stop: the target's own signal */
	t->stopped = 1;
	return 0;
}

/* seizes and interrupts every thread, again until a pass finds no new one (stopped threads create none) */
static int seize_all(void)
{
	char dir[64];
	snprintf(dir, sizeof dir, "/proc/%d/task", pid);
	for (int pass = 0;; pass++) {
		DIR *d = opendir(dir);
		if (!d) return fail(errno == ENOENT ? ESRCH : errno, "%s: %s", dir, strerror(errno));
		int added = 0;
		struct dirent *e;
		while ((e = readdir(d))) {
			pid_t tid = (pid_t)atoi(e->d_name);
			if (tid <= 0 || find_thr(tid)) continue;
			if (nth == (int)(sizeof th / sizeof th[0])) {
				closedir(d);
				return fail(E2BIG, "process %d has more than %d threads", pid, nth);
			}
			if (ptrace(PTRACE_SEIZE, tid, 0, (void *)(long)PTRACE_O_TRACESYSGOOD) < 0) {
				if (errno == ESRCH) continue; /* it ended */
				int err = errno;
				closedir(d);
				return fail(err, "ptrace(PTRACE_SEIZE) of thread %d of process %d: %s", tid, pid, strerror(err));
			}
			th[nth++] = (struct thr){ .tid = tid };
			if (ptrace(PTRACE_INTERRUPT, tid, 0, 0) < 0 && errno != ESRCH) {
				int err = errno;
				closedir(d);
				return fail(err, "ptrace(PTRACE_INTERRUPT) of thread %d: %s", tid, strerror(err));
			}
			added++;
		}
		closedir(d);
		for (int i = 0; i < nth; i++)
			if (!th[i].stopped && !th[i].gone && wait_stopped(&th[i]) < 0) return -1;
		if (!added && pass > 0) return 0;
	}
}

/* lets every stopped thread go (with the signal it was stopped for) */
static void detach_all(void)
{
	for (int i = 0; i < nth; i++) {
		if (th[i].gone) continue;
		if (ptrace(PTRACE_DETACH, th[i].tid, 0, (void *)(long)th[i].sig) < 0 && errno != ESRCH) {
			/* not in a stop (it ran on after an error): stop it, then detach */
			if (ptrace(PTRACE_INTERRUPT, th[i].tid, 0, 0) == 0) {
				int st;
				if (wait_thr(&th[i], &st) == 0) (void)ptrace(PTRACE_DETACH, th[i].tid, 0, (void *)(long)th[i].sig);
			}
		}
	}
}

/* resumes every thread for a moment, then stops them all again */
static int let_run(void)
{
	for (int i = 0; i < nth; i++) {
		if (th[i].gone) continue;
		int sig = th[i].sig;
		th[i].sig = 0;
		if (ptrace(PTRACE_CONT, th[i].tid, 0, (void *)(long)sig) < 0 && errno == ESRCH) th[i].gone = 1;
		th[i].stopped = 0;
	}
	struct timespec nap = { 0, 2000000 };
	nanosleep(&nap, NULL);
	for (int i = 0; i < nth; i++)
		if (!th[i].gone && ptrace(PTRACE_INTERRUPT, th[i].tid, 0, 0) < 0 && errno == ESRCH) th[i].gone = 1;
	for (int i = 0; i < nth; i++)
		if (!th[i].gone && wait_stopped(&th[i]) < 0) return -1;
	return 0;
}

/* ---- the target's mappings ---- */
struct mapping {
	uintptr_t start, end, off;
	char perms[8];
	char path[PATH_MAX];
};

/* calls fn for each line of /proc/PID/maps until it returns nonzero (that value), else 0 */
static int each_mapping(int (*fn)(const struct mapping *, void *), void *arg)
{
	char p[64];
	snprintf(p, sizeof p, "/proc/%d/maps", pid);
	FILE *f = fopen(p, "re");
	if (!f) return fail(errno, "%s: %s", p, strerror(errno));
	char line[PATH_MAX + 128];
	int r = 0;
	while (!r && fgets(line, sizeof line, f)) {
		struct mapping m = { 0 };
		int n = 0;
		if (sscanf(line, "%lx-%lx %7s %lx %*s %*s %n", &m.start, &m.end, m.perms, &m.off, &n) < 4) continue;
		snprintf(m.path, sizeof m.path, "%s", line + n);
		m.path[strcspn(m.path, "\n")] = 0;
		r = fn(&m, arg);
	}
	fclose(f);
	return r;
}

struct libc_info {
	uintptr_t base;      /* the mapping of file offset 0 */
	uintptr_t text, text_end;
	char path[PATH_MAX];
};

static int is_libc(const char *path)
{
	const char *b = strrchr(path, '/');
	b = b ? b + 1 : path;
	return strncmp(b, "libc.so", 7) == 0 || (strncmp(b, "libc-", 5) == 0 && strstr(b, ".so"));
}

static int libc_line(const struct mapping *m, void *arg)
{
	struct libc_info *l = arg;
	if (!is_libc(m->path)) return 0;
	if (!l->path[0] && m->off == 0) {
		l->base = m->start;
		snprintf(l->path, sizeof l->path, "%s", m->path);
	}
	if (l->path[0] && strcmp(l->path, m->path) == 0 && m->perms[2] == 'x' && !l->text) l->text = m->start, l->text_end = m->end;
	return 0;
}

struct exe_info {
	char path[PATH_MAX];
	uintptr_t pc;
	int in;
};

static int exe_line(const struct mapping *m, void *arg)
{
	struct exe_info *x = arg;
	if (m->perms[2] == 'x' && strcmp(m->path, x->path) == 0 && x->pc >= m->start && x->pc < m->end) x->in = 1;
	return x->in;
}

/* pc inside the dynamic loader (ld-linux*.so, ld-*.so): a thread there may hold its lock and be half-way
 * through loading a library; a dlopen on it would re-enter the loader (the lock is recursive) */
static int loader_line(const struct mapping *m, void *arg)
{
	uintptr_t pc = *(const uintptr_t *)arg;
	const char *b = strrchr(m->path, '/');
	return pc >= m->start && pc < m->end && b && strncmp(b + 1, "ld-", 3) == 0 && strstr(b, ".so");
}

/* ---- symbols of libc (its .dynsym), read from the target's view of the file ---- */
static uintptr_t libc_sym(const struct libc_info *l, const char *name)
{
	char p[PATH_MAX + 32];
	snprintf(p, sizeof p, "/proc/%d/root%s", pid, l->path);
	int fd = open(p, O_RDONLY | O_CLOEXEC);
	if (fd < 0) fd = open(l->path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) return fail(errno, "%s: %s", l->path, strerror(errno)), 0;
	struct stat sb;
	uint8_t *img = MAP_FAILED;
	if (fstat(fd, &sb) == 0 && sb.st_size >= (off_t)sizeof(Elf64_Ehdr)) img = mmap(NULL, (size_t)sb.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
	close(fd);
	if (img == MAP_FAILED) return fail(EIO, "%s: cannot map it", l->path), 0;
	size_t size = (size_t)sb.st_size;
	uintptr_t found = 0;
	const Elf64_Ehdr *eh = (const void *)img;
	if (memcmp(eh->e_ident, ELFMAG, SELFMAG) != 0 || eh->e_ident[EI_CLASS] != ELFCLASS64 || eh->e_shentsize != sizeof(Elf64_Shdr) ||
	    eh->e_shoff > size || (uint64_t)eh->e_shnum * sizeof(Elf64_Shdr) > size - eh->e_shoff)
		goto out;
	const Elf64_Shdr *sh = (const void *)(img + eh->e_shoff);
	for (unsigned i = 0; i < eh->e_shnum && !found; i++) {
		if (sh[i].sh_type != SHT_DYNSYM || sh[i].sh_link >= eh->e_shnum) continue;
		const Elf64_Shdr *ss = &sh[i], *st = &sh[ss->sh_link];
		if (ss->sh_offset > size || ss->sh_size > size - ss->sh_offset || st->sh_offset > size || st->sh_size > size - st->sh_offset) continue;
		const Elf64_Sym *sym = (const void *)(img + ss->sh_offset);
		const char *str = (const char *)(img + st->sh_offset);
		size_t n = ss->sh_size / sizeof(Elf64_Sym);
		for (size_t k = 0; k < n; k++) {
			if (sym[k].st_name >= st->sh_size || sym[k].st_shndx == SHN_UNDEF || !sym[k].st_value) continue;
			if (ELF64_ST_TYPE(sym[k].st_info) != STT_FUNC) continue;
			if (strncmp(str + sym[k].st_name, name, st->sh_size - sym[k].st_name) == 0) {
				found = l->base + sym[k].st_value;
				break;
			}
		}
	}
out:
	munmap(img, size);
	if (!found) fail(ENOENT, "%s has no symbol %s", l->path, name);
	return found;
}

/* ---- the borrowed thread ---- */
static int memfd = -1;
static struct thr *victim;
static inj_regs saved;

static int poke(uintptr_t addr, const void *p, size_t n)
{
	if (pwrite(memfd, p, n, (off_t)addr) != (ssize_t)n) return fail(errno ? errno : EIO, "writing the memory of process %d at 0x%lx: %s", pid, addr, strerror(errno));
	return 0;
}

static int peek(uintptr_t addr, void *p, size_t n)
{
	if (pread(memfd, p, n, (off_t)addr) != (ssize_t)n) return fail(errno ? errno : EIO, "reading the memory of process %d at 0x%lx: %s", pid, addr, strerror(errno));
	return 0;
}

/* as peek, a failure not recorded */
static int peek_quiet(uintptr_t addr, void *p, size_t n)
{
	return pread(memfd, p, n, (off_t)addr) == (ssize_t)n ? 0 : -1;
}

static int poke_mem(uintptr_t addr, void *p, size_t n) { return poke(addr, p, n); }

/* runs the victim until the stop `want` says is ours, passing the target's own signals on */
static int run_until(int request, int (*want)(int st, const inj_regs *r, uintptr_t arg), uintptr_t arg, inj_regs *out)
{
	int sig = 0;
	for (;;) {
		if (ptrace(request, victim->tid, 0, (void *)(long)sig) < 0) return fail(errno, "ptrace resume of thread %d: %s", victim->tid, strerror(errno));
		victim->stopped = 0;
		int st, r = wait_thr(victim, &st);
		if (r == 1) return fail(ESRCH, "thread %d of process %d ended during the join", victim->tid, pid);
		if (r < 0) {
			/* stop it where it is, so the registers can still be put back */
			if (ptrace(PTRACE_INTERRUPT, victim->tid, 0, 0) == 0) {
				int64_t d = deadline_ms;
				deadline_ms = now_ms() + 1000;
				int stopped = wait_thr(victim, &st) == 0;
				deadline_ms = d;
				if (stopped) victim->stopped = 1;
			}
			return fail(ETIMEDOUT, "the call injected into thread %d of process %d did not return within the timeout", victim->tid, pid);
		}
		victim->stopped = 1;
		if (inj_getregs(victim->tid, out) < 0) return fail(errno, "reading the registers of thread %d: %s", victim->tid, strerror(errno));
		if (want(st, out, arg)) return 0;
		int s = WSTOPSIG(st);
		sig = (st >> 16) == 0 && s != (SIGTRAP | 0x80) ? s : 0; /* the target's own signal (a SIGTRAP too: none is ours): delivered */
		siginfo_t si;
		if ((sig == SIGSEGV || sig == SIGBUS || sig == SIGILL || sig == SIGFPE) && ptrace(PTRACE_GETSIGINFO, victim->tid, 0, &si) == 0 && si.si_code > 0)
			/* a fault of the injected code itself: not delivered (it would end the process); the registers go back */
			return fail(EFAULT, "the call injected into thread %d of process %d faulted (signal %d at 0x%llx, address %p)", victim->tid, pid, sig,
				    (unsigned long long)inj_pc(out), si.si_addr);
	}
}

static int at_syscall_stop(int st, const inj_regs *r, uintptr_t arg)
{
	(void)r, (void)arg;
	return (st >> 16) == 0 && WSTOPSIG(st) == (SIGTRAP | 0x80);
}

/* the entry of the return stub's syscall at arg */
static int at_return(int st, const inj_regs *r, uintptr_t arg)
{
	return (st >> 16) == 0 && WSTOPSIG(st) == (SIGTRAP | 0x80) && inj_at_return(r, arg);
}

/* a syscall in the victim (at a `syscall` instruction of the target): its return value */
static int inject_syscall(uintptr_t insn, long nr, const long a[6], long *ret)
{
	inj_regs r = saved, out;
	inj_setup_syscall(&r, insn, nr, a);
	if (inj_setregs(victim->tid, &r) < 0) return fail(errno, "setting the registers of thread %d: %s", victim->tid, strerror(errno));
	if (run_until(PTRACE_SYSCALL, at_syscall_stop, 0, &out) < 0) return -1; /* the entry */
	if (run_until(PTRACE_SYSCALL, at_syscall_stop, 0, &out) < 0) return -1; /* the exit */
	*ret = inj_syscall_result(&out);
	return 0;
}

/* a call fn(a0, a1, a2) in the victim, returning to the return stub at `ret_addr`: its return value */
static int inject_call(uintptr_t fn, uintptr_t ret_addr, uintptr_t a0, uintptr_t a1, uintptr_t a2, uintptr_t *ret)
{
	inj_regs r = saved, out;
	const uintptr_t a[3] = { a0, a1, a2 };
	if (inj_setup_call(&r, fn, ret_addr, a, poke_mem) < 0) return -1;
	if (inj_setregs(victim->tid, &r) < 0) return fail(errno, "setting the registers of thread %d: %s", victim->tid, strerror(errno));
	if (run_until(PTRACE_SYSCALL, at_return, ret_addr, &out) < 0) return -1; /* the stub's getpid entry */
	*ret = inj_call_result(&out);
	if (run_until(PTRACE_SYSCALL, at_syscall_stop, 0, &out) < 0) return -1; /* its exit: regs may be set again */
	return 0;
}

static int restore_victim(void)
{
	int rc = 0, st;
	if (victim->gone) return fail(ESRCH, "thread %d of process %d ended during the join", victim->tid, pid);
	if (!victim->stopped) { /* running (a step failed): stop it where it is first */
		if (ptrace(PTRACE_INTERRUPT, victim->tid, 0, 0) < 0 || wait_thr(victim, &st) != 0)
			return fail(errno ? errno : ETIMEDOUT, "thread %d of process %d could not be stopped to put its registers back", victim->tid, pid);
		victim->stopped = 1;
	}
	if (inj_restore_ext(victim->tid) < 0) rc = fail(errno, "restoring the vector registers: %s", strerror(errno));
	if (inj_setregs(victim->tid, &saved) < 0) rc = fail(errno, "restoring the registers: %s", strerror(errno));
	return rc;
}

/* a stopped thread that is safe to borrow: waiting in a syscall of inj_waiting_syscall() (not from inside the
 * loader), else running the program's own code (not inside libc or the loader, whose locks a call of dlopen
 * would take); NULL: none now */
static struct thr *pick_victim(const char *exe)
{
	struct thr *in_code = NULL;
	for (int i = 0; i < nth; i++) {
		struct thr *t = &th[i];
		if (t->gone || !t->stopped || t->sig) continue;
		inj_regs r;
		if (inj_getregs(t->tid, &r) < 0) continue;
		long nr = inj_syscall_of(&r, peek_quiet);
		int in_sys = nr >= 0;
		if (in_sys && inj_waiting_syscall(nr)) {
			uintptr_t pc = inj_pc(&r);
			if (each_mapping(loader_line, &pc) == 0) return t;
			continue;
		}
		if (in_sys || in_code) continue;
		struct exe_info x = { .pc = inj_pc(&r) };
		snprintf(x.path, sizeof x.path, "%s", exe);
		if (each_mapping(exe_line, &x) > 0) in_code = t;
	}
	return in_code;
}

static int join(const char *agent)
{
	char p[64], exe[PATH_MAX];
	snprintf(p, sizeof p, "/proc/%d/exe", pid);
	ssize_t n = readlink(p, exe, sizeof exe - 1);
	if (n < 0) return fail(errno == ENOENT ? ESRCH : errno, "%s: %s", p, strerror(errno));
	exe[n] = 0;
	struct libc_info libc = { 0 };
	if (each_mapping(libc_line, &libc) < 0) return -1;
	if (!libc.path[0] || !libc.text)
		return fail(ENOEXEC, "process %d maps no libc (a static binary: there is no dlopen to load the agent with); it needs the ptrace tier, not built yet", pid);
	uintptr_t f_errno = libc_sym(&libc, "__errno_location"), f_unsetenv = libc_sym(&libc, "unsetenv");
	uintptr_t f_dlopen = libc_sym(&libc, "dlopen"), f_dlsym = libc_sym(&libc, "dlsym"), f_dlerror = libc_sym(&libc, "dlerror");
	if (!f_errno || !f_unsetenv || !f_dlopen || !f_dlsym || !f_dlerror) return -1;

	snprintf(p, sizeof p, "/proc/%d/mem", pid);
	memfd = open(p, O_RDWR | O_CLOEXEC);
	if (memfd < 0) return fail(errno, "%s: %s", p, strerror(errno));

	/* two syscall instructions in libc's text, for the mmap/munmap of the scratch page: the victim may be
	 * stopped at one (arm64 rewinds an interrupted syscall to its svc; one restarted there could become
	 * restart_syscall) */
	uintptr_t sys_insns[2] = { 0, 0 };
	{
		size_t len = libc.text_end - libc.text, found = 0;
		uint8_t *buf = malloc(len);
		if (!buf) return fail(ENOMEM, "out of memory");
		if (peek(libc.text, buf, len) == 0)
			for (size_t off = 0; found < 2 && off + inj_syscall_insn_len <= len; off += inj_insn_align)
				if (memcmp(buf + off, inj_syscall_insn, inj_syscall_insn_len) == 0) sys_insns[found++] = libc.text + off;
		free(buf);
		if (found < 2) return fail(ENOEXEC, "no syscall instruction found in %s", libc.path);
	}

	if (seize_all() < 0) return -1;
	while (!(victim = pick_victim(exe))) {
		if (now_ms() > deadline_ms) return fail(ETIMEDOUT, "no thread of process %d stopped in a safe place (waiting in a syscall, or in the program's own code) within the timeout", pid);
		if (let_run() < 0) return -1;
	}
	/* the other threads run on during the calls: one stopped while holding a lock dlopen takes (malloc's, the
	 * loader's) would otherwise hold it until the timeout */
	for (int i = 0; i < nth; i++)
		if (&th[i] != victim && !th[i].gone) {
			(void)ptrace(PTRACE_DETACH, th[i].tid, 0, (void *)(long)th[i].sig);
			th[i].gone = 1;
		}
	if (inj_getregs(victim->tid, &saved) < 0) return fail(errno, "reading the registers of thread %d: %s", victim->tid, strerror(errno));
	const char *ext = "";
	if (inj_save_ext(victim->tid, &ext) < 0) return fail(errno, "PTRACE_GETREGSET(%s) of thread %d: %s", ext, victim->tid, strerror(errno));
	uintptr_t sys_insn = sys_insns[0] == inj_pc(&saved) ? sys_insns[1] : sys_insns[0];

	int rc = -1;
	long scratch = 0;
	long a[6] = { 0, SCRATCH, PROT_READ | PROT_EXEC, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0 };
	if (inject_syscall(sys_insn, SYS_mmap, a, &scratch) < 0) goto restore;
	if (scratch < 0 && scratch > -4096) {
		fail((int)-scratch, "mmap in process %d: %s", pid, strerror((int)-scratch));
		scratch = 0;
		goto restore;
	}
	{
		/* the return stub at +0 (every call returns there); the strings from +STRINGS */
		char page[SCRATCH] = { 0 };
		if (!inj_return_stub((uint8_t *)page, STRINGS, &saved)) {
			fail(EINVAL, "the return stub does not fit");
			goto restore;
		}
		size_t off = STRINGS, alen = strlen(agent);
		if (off + alen + 64 > sizeof page) {
			fail(ENAMETOOLONG, "the agent's path is too long");
			goto restore;
		}
		uintptr_t s_agent = (uintptr_t)scratch + off;
		memcpy(page + off, agent, alen + 1), off += alen + 1;
		uintptr_t s_join = (uintptr_t)scratch + off;
		memcpy(page + off, "wbpf_agent_join", 16), off += 16;
		uintptr_t s_env = (uintptr_t)scratch + off;
		memcpy(page + off, "WBPF_AGENT_FD", 14), off += 14;
		if (poke((uintptr_t)scratch, page, off) < 0) goto restore;
		uintptr_t ret = (uintptr_t)scratch, errno_at = 0, handle = 0, fn = 0, got = 0;
		int saved_errno = 0;
		if (inject_call(f_errno, ret, 0, 0, 0, &errno_at) < 0 || peek(errno_at, &saved_errno, sizeof saved_errno) < 0) goto restore;
		/* launch mode's variable would make the agent's constructor wait for a START nobody sends */
		if (inject_call(f_unsetenv, ret, s_env, 0, 0, &got) < 0) goto restore;
		if (inject_call(f_dlopen, ret, s_agent, RTLD_NOW, 0, &handle) < 0) goto restore;
		if (!handle) {
			char msg[512] = "(no message)";
			uintptr_t m = 0;
			if (inject_call(f_dlerror, ret, 0, 0, 0, &m) == 0 && m) {
				(void)pread(memfd, msg, sizeof msg - 1, (off_t)m);
				msg[sizeof msg - 1] = 0;
			}
			fail(ELIBACC, "dlopen of the agent in process %d failed: %s", pid, msg);
			(void)poke(errno_at, &saved_errno, sizeof saved_errno);
			goto restore;
		}
		if (inject_call(f_dlsym, ret, handle, s_join, 0, &fn) < 0) goto restore;
		if (!fn) {
			fail(ELIBBAD, "%s has no wbpf_agent_join (an agent built before join mode?)", agent);
			goto restore;
		}
		if (inject_call(fn, ret, 0, 0, 0, &got) < 0) goto restore;
		(void)poke(errno_at, &saved_errno, sizeof saved_errno);
		int jfd = (int)got;
		if (jfd < 0) {
			if (jfd == -EBUSY) fail(EBUSY, "process %d is served by %d wasm-bpf hosts already (launched under one, or joined by other runs): the agent serves at most %d at once", pid, WBPF_AGENT_MAX_SESSIONS, WBPF_AGENT_MAX_SESSIONS);
			else fail(-jfd, "wbpf_agent_join in process %d: %s", pid, strerror(-jfd));
			goto restore;
		}
		/* the agent waits on the pair's other end for the channel: send it ours (fd 3) */
		int pidfd = (int)syscall(SYS_pidfd_open, pid, 0);
		int tfd = pidfd < 0 ? -1 : (int)syscall(SYS_pidfd_getfd, pidfd, jfd, 0);
		if (tfd < 0) {
			fail(errno, "pidfd_getfd of the agent's socket in process %d: %s (Linux 5.6+)", pid, strerror(errno));
		} else {
			char byte = 'j', cbuf[CMSG_SPACE(sizeof(int))] = { 0 };
			struct iovec iov = { &byte, 1 };
			struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = cbuf, .msg_controllen = sizeof cbuf };
			struct cmsghdr *c = CMSG_FIRSTHDR(&mh);
			c->cmsg_level = SOL_SOCKET, c->cmsg_type = SCM_RIGHTS, c->cmsg_len = CMSG_LEN(sizeof(int));
			int ch = CHANNEL_FD;
			memcpy(CMSG_DATA(c), &ch, sizeof ch);
			if (sendmsg(tfd, &mh, MSG_NOSIGNAL) != 1) fail(errno, "handing the channel to the agent in process %d: %s", pid, strerror(errno));
			else rc = 0;
			close(tfd);
		}
		if (pidfd >= 0) close(pidfd);
		/* on failure the agent gives up after 10 s and serves nothing */
	}
restore:
	deadline_ms = now_ms() + 2000; /* the clean-up's own time, the join's may be spent */
	if (scratch && victim->stopped) {
		long u[6] = { scratch, SCRATCH, 0, 0, 0, 0 }, r;
		(void)inject_syscall(sys_insn, SYS_munmap, u, &r);
	}
	if (restore_victim() < 0) rc = -1;
	return rc;
}

int main(int argc, char **argv)
{
	if (argc != 4) {
		fprintf(stderr, "%d usage: wbpf-inject PID AGENT_SO TIMEOUT_MS (the channel as fd 3)\n", EINVAL);
		return 2;
	}
	/* finish (restore, detach) whatever signal the host's terminal sends */
	sigset_t block;
	sigemptyset(&block);
	sigaddset(&block, SIGINT), sigaddset(&block, SIGTERM), sigaddset(&block, SIGHUP), sigaddset(&block, SIGQUIT), sigaddset(&block, SIGPIPE);
	sigprocmask(SIG_BLOCK, &block, NULL);
	pid = (pid_t)atoi(argv[1]);
	long timeout = atol(argv[3]);
	deadline_ms = now_ms() + (timeout > 0 ? timeout : 5000);
	int rc = pid > 0 ? join(argv[2]) : fail(EINVAL, "bad pid '%s'", argv[1]);
	detach_all();
	if (rc == 0) return 0;
	fprintf(stderr, "%d %s\n", why_errno, why);
	return 1;
}
