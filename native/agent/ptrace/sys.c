/* Syscall tracepoints in the ptrace tier (x86-64 and arm64; the registers in ptrace/ARCH/sys.c): tp/syscalls/sys_enter_* and sys_exit_* programs (the
 * SYSCALL frame, lib/proto.h), and raw_syscalls/sys_enter|sys_exit (the frame's RAW flag: every number), for
 * processes no agent can enter (static binaries). Two mechanisms:
 *
 * - a launched command: at START, before its first instruction, the tracer makes it install a seccomp filter
 *   (injected prctl(PR_SET_NO_NEW_PRIVS) when the tracer has no CAP_SYS_ADMIN, then seccomp(SET_MODE_FILTER))
 *   that returns SECCOMP_RET_TRACE for the traced numbers only (every number when a raw_syscalls program is
 *   attached) and SECCOMP_RET_ALLOW for the rest: only a
 *   traced number stops (PTRACE_EVENT_SECCOMP: the enter programs run on its registers); a number with exit
 *   programs is resumed with PTRACE_SYSCALL once, and its syscall-exit-stop runs them with the result (rax, x0). The filter is
 *   inherited by every thread, fork child and exec'd program of the command and can never be removed: without
 *   a tracer a RET_TRACE call fails with ENOSYS, so once a filter is in, the tracer stays the tree's tracer
 *   until the tree ends (after the run it only passes the stops through: see main.c).
 * - a joined process (or a number attached after START, or a filter the command refused): every task is
 *   resumed with PTRACE_SYSCALL, so every syscall of every thread stops twice (~10 us each); nothing stays
 *   behind at detach.
 *
 * The ctx is the kernel's: the record the host's field table describes (sys/record.c), its first 8 bytes
 * pointing at the pt_regs image that follows it (the stopped thread's registers; rax -ENOSYS at entry on
 * x86-64, x0 the first argument at entry on arm64, the result at exit). */
#define _GNU_SOURCE
#include <errno.h>
#include <inttypes.h>
#include <linux/audit.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/ptrace.h>
#include <sys/syscall.h>
#include <sys/wait.h>

#include "../hook/hook.h"
#include "../lib/frames.h"
#include "../sys/record.h"
#include "tracer.h"

#define MAX_TSYS 64
#define REC_MAX 512
#define FILTER_MAX_NRS 200
#define SYS_NR_MAX 512 /* numbers 0..511, as the agent's (sys/sys.h) */ /* a BPF jump reaches 255 instructions ahead */

#ifndef WBPF_AGENT_SYSCALL_RAW
#define WBPF_AGENT_SYSCALL_RAW 2u /* raw_syscalls/sys_enter|sys_exit: every number (the frame's nr ignored) */
#endif
#ifndef WBPF_AGENT_SYSCALL_SCHED
#define WBPF_AGENT_SYSCALL_SCHED 4u /* tp/sched/sched_process_*: sched.c's */
#endif

struct tsys {
	uint32_t id, prog;
	int nr, exit, raw, live, disabled;
	struct wbpf_sys_table t;
};
static struct tsys tsyss[MAX_TSYS];
static uint8_t in_filter[SYS_NR_MAX / 8]; /* the numbers the launched command's filter traces */
int sys_filtered;                          /* a filter is in the launched command's tree */
static int filter_all;                     /* it traces every number (a raw_syscalls program was attached at START) */
int sys_stops;                             /* every task is resumed with PTRACE_SYSCALL */
uint64_t sys_calls;                        /* syscalls the programs ran at */
static int nnp;                            /* the filter needed no_new_privs */

static int filtered(int nr)
{
	return sys_filtered && (filter_all || (nr >= 0 && nr < SYS_NR_MAX && (in_filter[nr / 8] >> (nr % 8) & 1)));
}
static int covered(const struct tsys *a) { return a->raw ? sys_filtered && filter_all : filtered(a->nr); }

/* the tracer (and so the command it forked) has CAP_SYS_ADMIN: a filter without no_new_privs */
static int admin(void)
{
	FILE *f = fopen("/proc/self/status", "re");
	char line[256];
	unsigned long long cap = 0;
	while (f && fgets(line, sizeof line, f))
		if (sscanf(line, "CapEff: %llx", &cap) == 1) break;
	if (f) fclose(f);
	return (cap >> 21) & 1;
}

static struct tsys *sys_find(uint32_t id)
{
	for (unsigned i = 0; i < MAX_TSYS; i++)
		if (tsyss[i].live && tsyss[i].id == id) return &tsyss[i];
	return NULL;
}

int sys_has(uint32_t id) { return sys_find(id) != NULL; }

int sys_uses_prog(uint32_t prog)
{
	for (unsigned i = 0; i < MAX_TSYS; i++)
		if (tsyss[i].live && tsyss[i].prog == prog) return 1;
	return 0;
}

/* every task resumes with PTRACE_SYSCALL from its next stop on; the running ones are stopped to switch now */
static void switch_stops(int on)
{
	if (sys_stops == on) return;
	sys_stops = on;
	tlog("every syscall %s", on ? "stops now (PTRACE_SYSCALL)" : "runs on again");
	if (!on) return; /* a task stopping once more at its next syscall is resumed with PTRACE_CONT */
	for (unsigned i = 0; i < nprocs; i++) {
		stop_others(procs[i], NULL);
		resume_others(procs[i], NULL);
	}
}

/* a number not in the filter (or no filter at all): the stops tier, for as long as such an attachment lives */
static void recheck_stops(void)
{
	int need = 0;
	for (unsigned i = 0; i < MAX_TSYS; i++)
		if (tsyss[i].live && !covered(&tsyss[i]) && (started || !root_pid)) need = 1;
	switch_stops(need);
}

int sys_add(const struct wbpf_agent_syscall *r, const uint8_t *table, char *msg, size_t n)
{
	/* the process events are emitted by the agent (an exec'd image's constructor, an inline hook on libc's _exit):
	 * a static command has no agent, and its frame's nr and table are not a syscall's */
	if (r->flags & WBPF_AGENT_SYSCALL_SCHED) return sched_add(r, table, msg, n); /* sched.c: nr is the event, the table a sched table */
	if (r->flags & ~(WBPF_AGENT_SYSCALL_EXIT | WBPF_AGENT_SYSCALL_RAW))
		return wbpf_frame_msg(msg, n, EINVAL, "syscall hook %u: unknown flags %#x", r->id, r->flags);
	if (!r->id || r->id >= 0xfffffffeu) return wbpf_frame_msg(msg, n, EINVAL, "syscall hook %u: ids 0, 0xfffffffe and 0xffffffff are reserved", r->id);
	if (sys_find(r->id) || sched_has(r->id) || tables_hook(r->id)) return wbpf_frame_msg(msg, n, EEXIST, "syscall hook %u: id in use", r->id);
	int raw = (r->flags & WBPF_AGENT_SYSCALL_RAW) != 0;
	if (!raw && r->nr >= SYS_NR_MAX) return wbpf_frame_msg(msg, n, EINVAL, "syscall hook %u: syscall number %u is out of 0..%d", r->id, r->nr, SYS_NR_MAX - 1);
	if (!tables_prog(r->prog_id)) return wbpf_frame_msg(msg, n, ENOENT, "syscall hook %u: no program %u", r->id, r->prog_id);
	struct wbpf_sys_table t;
	char why[160];
	if (wbpf_sys_table_decode(table, WBPF_SYS_TABLE_SIZE, &t, why, sizeof why)) return wbpf_frame_msg(msg, n, EINVAL, "syscall hook %u: %s", r->id, why);
	if (t.size > REC_MAX) return wbpf_frame_msg(msg, n, EINVAL, "syscall hook %u: a %u-byte record (the tracer builds at most %d)", r->id, t.size, REC_MAX);
	int exit = (r->flags & WBPF_AGENT_SYSCALL_EXIT) != 0;
	if (t.exit != exit)
		return wbpf_frame_msg(msg, n, EINVAL, "syscall hook %u: the field table is for sys_%s, the frame says sys_%s", r->id, t.exit ? "exit" : "enter",
				      exit ? "exit" : "enter");
	struct tsys *a = NULL;
	for (unsigned i = 0; i < MAX_TSYS && !a; i++)
		if (!tsyss[i].live) a = &tsyss[i];
	if (!a) return wbpf_frame_msg(msg, n, ENOSPC, "syscall hook %u: the tracer holds %d syscall hooks already", r->id, MAX_TSYS);
	*a = (struct tsys){ .id = r->id, .prog = r->prog_id, .nr = raw ? -1 : (int)r->nr, .exit = exit, .raw = raw, .live = 1, .t = t };
	const char *how;
	if (root_pid && !started)
		how = admin() ? "a seccomp filter the command installs at its start stops at the traced numbers only"
			      : "a seccomp filter the command installs at its start stops at the traced numbers only; as an ordinary user it sets no_new_privs first: "
				"set-uid and file-capability programs it execs run without their privileges";
	else if (covered(a)) how = "the command's seccomp filter stops at it";
	else how = root_pid ? "attached after the start, not in the command's seccomp filter: every syscall of the traced processes stops (PTRACE_SYSCALL, ~10 us each)"
			    : "a joined process: every syscall of it stops (PTRACE_SYSCALL, ~10 us each; no filter can be added from outside)";
	recheck_stops();
	if (raw) return wbpf_frame_msg(msg, n, 0, "syscall hook %u on raw_syscalls/sys_%s, every number (ptrace tier: %s)", r->id, exit ? "exit" : "enter", how);
	return wbpf_frame_msg(msg, n, 0, "syscall hook %u on sys_%s of syscall %u (ptrace tier: %s)", r->id, exit ? "exit" : "enter", r->nr, how);
}

/* 1 and the reply when id is a syscall hook, else 0 */
int sys_remove(uint32_t id, int *status, char *msg, size_t n)
{
	struct tsys *a = sys_find(id);
	if (!a) return 0;
	a->live = 0;
	recheck_stops();
	*status = wbpf_frame_msg(msg, n, 0, "unhook %u", id);
	return 1;
}

/* the run ended: programs run no more (the stops a filter causes are passed through) */
void sys_end(void)
{
	for (unsigned i = 0; i < MAX_TSYS; i++) tsyss[i].live = 0;
	sched_end();
	switch_stops(0);
}

/* one syscall made by the stopped task t at its pc (the arch's syscall instruction there): its result, or -errno of ptrace */
static long inject(struct task *t, const struct user_regs_struct *at, long nr, uint64_t a0, uint64_t a1, uint64_t a2)
{
	struct user_regs_struct q = *at;
	sys_regs_call(t->tid, &q, nr, a0, a1, a2);
	if (regs_set(t->tid, &q) < 0 || ptrace(PTRACE_SINGLESTEP, t->tid, 0, 0) < 0) return -errno;
	for (;;) {
		int st;
		pid_t w;
		while ((w = waitpid(t->tid, &st, __WALL)) < 0 && errno == EINTR) {
		}
		if (w < 0) return -ECHILD;
		if (WIFEXITED(st) || WIFSIGNALED(st)) {
			queue_push(t->tid, st);
			return -ESRCH;
		}
		if (WSTOPSIG(st) == SIGTRAP && (st >> 16) == 0) break;
		if ((st >> 16) == 0) t->pending_sig = WSTOPSIG(st);
		if (ptrace(PTRACE_SINGLESTEP, t->tid, 0, 0) < 0) return -errno;
	}
	if (regs_get(t->tid, &q) < 0) return -ESRCH;
	return sys_regs_result(&q);
}

/* the command's filter, made by the command: t is the launched root, stopped at its exec (no instruction run) */
static int install(struct task *t, char *why, size_t n)
{
	int nrs[FILTER_MAX_NRS], k = 0, all = 0;
	for (unsigned i = 0; i < MAX_TSYS; i++) {
		if (!tsyss[i].live) continue;
		if (tsyss[i].raw) {
			all = 1;
			continue;
		}
		int dup = 0;
		for (int j = 0; j < k; j++) dup |= nrs[j] == tsyss[i].nr;
		if (dup) continue;
		if (k == FILTER_MAX_NRS) return snprintf(why, n, "more than %d traced numbers", FILTER_MAX_NRS), -1;
		nrs[k++] = tsyss[i].nr;
	}
	if (all) k = 0; /* every number stops: no list */
	if (!k && !all) return 0;
	/* arch != the native one (x86-64's int 0x80 calls: i386 numbers; arm64's 32-bit tasks) and x32 numbers run on:
	 * the kernel's tracepoint would see them with other numbers, and so are not traced here */
	struct sock_filter f[FILTER_MAX_NRS + 6];
	unsigned m = 0;
	f[m++] = (struct sock_filter)BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, arch));
	f[m++] = (struct sock_filter)BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, sys_audit_arch, 1, 0);
	f[m++] = (struct sock_filter)BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW);
	if (!all) {
		f[m++] = (struct sock_filter)BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr));
		for (int i = 0; i < k; i++) f[m++] = (struct sock_filter)BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, (uint32_t)nrs[i], (uint8_t)(k - i), 0);
		f[m++] = (struct sock_filter)BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW);
	}
	f[m++] = (struct sock_filter)BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_TRACE);

	/* out of the exec: a single step reports at the syscall's exit, before the program's first instruction (on
	 * x86-64 and arm64 alike) */
	struct user_regs_struct at, saved;
	if (ptrace(PTRACE_SINGLESTEP, t->tid, 0, 0) < 0) return snprintf(why, n, "PTRACE_SINGLESTEP: %s", strerror(errno)), -1;
	int st;
	pid_t w;
	while ((w = waitpid(t->tid, &st, __WALL)) < 0 && errno == EINTR) {
	}
	if (w < 0 || !WIFSTOPPED(st)) {
		if (w > 0) queue_push(t->tid, st);
		return snprintf(why, n, "the command ended"), -1;
	}
	if (regs_get(t->tid, &at) < 0) return snprintf(why, n, "reading its registers: %s", strerror(errno)), -1;
	saved = at;
	/* the filter and its sock_fprog below the stack pointer (the exec maps 128 KiB of stack below it), then a
	 * syscall instruction over the entry's first bytes (2 on x86-64, 4 on arm64), put back after */
	uint64_t base = (regs_sp(&at) - 8192) & ~15ull;
	struct sock_fprog prog = { .len = (unsigned short)m, .filter = (struct sock_filter *)(uintptr_t)(base + 32) };
	uint8_t orig[4];
	uint64_t pc = regs_pc(&at);
	int rc = -1;
	if (mem_write(t->p, base, &prog, sizeof prog) < 0 || mem_write(t->p, base + 32, f, m * sizeof f[0]) < 0 || mem_read(t->p, pc, orig, sys_insn_len) < 0 ||
	    mem_write(t->p, pc, sys_insn, sys_insn_len) < 0) {
		snprintf(why, n, "writing the filter into the command's memory: %s", strerror(errno));
	} else {
		long r = inject(t, &at, SYS_seccomp, SECCOMP_SET_MODE_FILTER, 0, base);
		if (r == -EACCES) {
			/* an ordinary user: no_new_privs first (set-uid programs it execs run without privileges) */
			long p = inject(t, &at, SYS_prctl, PR_SET_NO_NEW_PRIVS, 1, 0);
			nnp = 1;
			r = p < 0 ? p : inject(t, &at, SYS_seccomp, SECCOMP_SET_MODE_FILTER, 0, base);
		}
		if (r < 0) snprintf(why, n, "seccomp(SECCOMP_SET_MODE_FILTER) in the command: %s", strerror((int)-r));
		else rc = 0;
		(void)mem_write(t->p, pc, orig, sys_insn_len);
	}
	(void)regs_set(t->tid, &saved);
	if (rc == 0) {
		sys_filtered = 1;
		filter_all = all;
		for (int i = 0; i < k; i++) in_filter[nrs[i] / 8] |= (uint8_t)(1u << (nrs[i] % 8));
		tlog("filter installed: %s%d numbers%s", all ? "every number, " : "", k, nnp ? " (no_new_privs set)" : "");
	}
	return rc;
}

/* START of a launched command: its filter (the root is at its exec stop); a failure falls back to the stops */
void sys_start(struct task *root)
{
	char why[200];
	if (install(root, why, sizeof why) < 0) {
		/* said on the command's stderr (the tracer's): the run is slower than the user was told */
		fprintf(stderr, "wbpf-ptrace: no seccomp filter in the command (%s): every syscall stops instead (PTRACE_SYSCALL, ~10 us each)\n", why);
		tlog("no filter: %s", why);
	}
	recheck_stops();
}

const char *sys_mode(void)
{
	return sys_filtered ? (nnp ? "seccomp filter (no_new_privs)" : "seccomp filter") : sys_stops ? "every syscall stops" : "none";
}

static void run(struct task *t, struct user_regs_struct *regs, int nr, int exit)
{
	struct wbpf_pt_regs img;
	_Static_assert(sizeof img <= sizeof *regs, "pt_regs is a prefix of user_regs_struct");
	memcpy(&img, regs, sizeof img);
	uint64_t args[6];
	sys_regs_args(regs, args);
	uint8_t buf[REC_MAX + sizeof img] __attribute__((aligned(16)));
	int ran = 0;
	for (unsigned i = 0; i < MAX_TSYS; i++) {
		struct tsys *a = &tsyss[i];
		if (!a->live || a->disabled || (!a->raw && a->nr != nr) || a->exit != exit) continue;
		size_t size = a->t.size;
		memcpy(buf + size, &img, sizeof img);
		/* the record's pointer is the image's address in the program's ctx region: buf's own */
		wbpf_sys_record(&a->t, buf, REC_MAX, (int32_t)t->tid, 1, (uint64_t)(uintptr_t)(buf + size), nr, args, sys_regs_ret(regs));
		char why[200];
		ran = 1;
		if (tables_exec(a->id, a->prog, t, buf, size + sizeof img, why, sizeof why) == 0) continue;
		a->disabled = 1;
		char ev[300];
		snprintf(ev, sizeof ev, "syscall hook %u (sys_%s of syscall %d) disabled: %s; the syscall itself ran on", a->id, exit ? "exit" : "enter", nr, why);
		chan_event(a->id, ev);
	}
	sys_calls += ran;
}

static int wants(int nr, int exit)
{
	for (unsigned i = 0; i < MAX_TSYS; i++)
		if (tsyss[i].live && !tsyss[i].disabled && (tsyss[i].raw || tsyss[i].nr == nr) && tsyss[i].exit == exit) return 1;
	return 0;
}

/* a seccomp stop (seccomp = 1) or a syscall stop (SIGTRAP | 0x80) of t: the programs, then t resumes */
void sys_event(struct task *t, int seccomp)
{
	struct user_regs_struct regs;
	if (regs_get(t->tid, &regs) < 0) {
		task_resume(t);
		return;
	}
	int nr = sys_regs_nr(t->tid, &regs);
	if (seccomp) {
		/* enter programs, unless its entry stop ran them (every syscall stops) */
		if (!t->sys_entered) run(t, &regs, nr, 0);
		t->sys_entered = 0;
		t->sys_exit = wants(nr, 1);
	} else {
		uint8_t info[96] = { 0 }; /* struct ptrace_syscall_info: op first (1 entry, 2 exit, 3 seccomp) */
		long k = ptrace(PTRACE_GET_SYSCALL_INFO, t->tid, (void *)sizeof info, info);
		int exit = k > 0 ? info[0] == 2 : t->sys_entered;
		if (!exit) {
			run(t, &regs, nr, 0);
			t->sys_entered = 1;
			t->sys_exit = wants(nr, 1);
		} else {
			if (t->sys_exit || sys_stops) run(t, &regs, nr, 1);
			t->sys_entered = 0;
			t->sys_exit = 0;
		}
	}
	task_resume(t);
}
