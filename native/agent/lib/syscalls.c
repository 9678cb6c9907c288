/* tp/syscalls programs at rewritten syscall sites (sys/, x86-64): the SYSCALL frame's attachments by number,
 * one rewriter attach of libc's sites per traced number, and at each traced call the enter (or exit)
 * programs run with the tracepoint record the host's field table describes (sys/record.h) as ctx. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/auxv.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include "../hook/hook.h"
#include "../sys/record.h"
#include "../sys/sys.h"
#include "agent.h"
#include "readers.h"
#include "frames.h"

#define MAX_SYS 64    /* syscall attachments of every session (reused once removed and no call can read them) */
#define MAX_NR_ATT 16 /* attachments on one number (enter and exit together) */
#define REC_MAX 512   /* a record's bytes (a syscall event's is 24-64; raw_syscalls' 64) */

/* tp/sched/sched_process_* (WBPF_AGENT_SYSCALL_SCHED): the 64-byte sched table the host sends
 * (backends/userspace/syscalls/fieldtable.ts, schedFieldTable): u16 version SCHED_TABLE_VERSION, u16 kind,
 * u32 size (the fixed part), u16 id, u16 0, then (u16 offset, u16 size) slots: common_type, common_flags,
 * common_preempt_count, common_pid, then exec: filename, pid, old_pid; exit: comm, pid, prio, group_dead. A
 * string slot of size 4 is a __data_loc (its text after the fixed part), else an inline char array; size 0:
 * the field is not in this kernel's layout */
#define SCHED_TABLE_VERSION 0x5301
#define SCHED_SLOTS 8
struct sched_table {
	int kind;
	uint32_t size;
	uint16_t id;
	struct wbpf_sys_slot slot[SCHED_SLOTS];
};
enum { S_TYPE, S_FLAGS, S_PREEMPT, S_PID, S_F0, S_F1, S_F2, S_F3 };

static int sched_decode(const uint8_t *b, struct sched_table *t, char *why, size_t n)
{
	uint16_t v, kind, id;
	uint32_t size;
	memcpy(&v, b, 2), memcpy(&kind, b + 2, 2), memcpy(&size, b + 4, 4), memcpy(&id, b + 8, 2);
	if (v != SCHED_TABLE_VERSION) return snprintf(why, n, "sched table version 0x%x (0x%x expected)", v, SCHED_TABLE_VERSION), -1;
	if (kind != WBPF_AGENT_SCHED_EXEC && kind != WBPF_AGENT_SCHED_EXIT) return snprintf(why, n, "sched event %u is not traced by the agent (exec 0 and exit 1 are)", kind), -1;
	if (size < 8 || size > 256) return snprintf(why, n, "a %u-byte sched record", size), -1;
	t->kind = kind, t->size = size, t->id = id;
	for (int i = 0; i < SCHED_SLOTS; i++) {
		memcpy(&t->slot[i].offset, b + 12 + 4 * i, 2), memcpy(&t->slot[i].size, b + 14 + 4 * i, 2);
		if (t->slot[i].size && (uint32_t)t->slot[i].offset + t->slot[i].size > size) return snprintf(why, n, "sched slot %d past the record", i), -1;
		if (t->slot[i].size > 16) return snprintf(why, n, "sched slot %d of %u bytes", i, t->slot[i].size), -1;
	}
	return 0;
}

static void put_int(uint8_t *rec, struct wbpf_sys_slot sl, uint64_t v)
{
	if (sl.size == 1 || sl.size == 2 || sl.size == 4 || sl.size == 8) memcpy(rec + sl.offset, &v, sl.size); /* little-endian */
}

/* a string field: inline (truncated, NUL-padded) or a __data_loc (the text at *tail, which moves on) */
static void put_str(uint8_t *rec, size_t cap, struct wbpf_sys_slot sl, const char *text, size_t *tail)
{
	size_t len = 0;
	while (text[len] && len < 4095) len++;
	if (sl.size == 4) {
		if (*tail + len + 1 > cap) len = cap > *tail + 1 ? cap - *tail - 1 : 0;
		if (*tail + len + 1 > cap) return;
		memcpy(rec + *tail, text, len);
		rec[*tail + len] = 0;
		uint32_t loc = (uint32_t)((len + 1) << 16 | *tail);
		memcpy(rec + sl.offset, &loc, 4);
		*tail += len + 1;
	} else if (sl.size) {
		size_t k = len < (size_t)sl.size - 1 ? len : (size_t)sl.size - 1;
		memcpy(rec + sl.offset, text, k);
	}
}

/* the record of a sched event of the calling thread: its bytes (the fixed part, then __data_loc text) */
static size_t sched_record(const struct sched_table *t, uint8_t *rec, size_t cap, const char *filename, int group_dead)
{
	memset(rec, 0, cap);
	size_t tail = t->size;
	int32_t tid = (int32_t)gettid(), pid = (int32_t)getpid();
	put_int(rec, t->slot[S_TYPE], t->id);
	put_int(rec, t->slot[S_PID], (uint32_t)tid);
	char comm[17] = { 0 };
	if (t->kind == WBPF_AGENT_SCHED_EXEC) {
		put_str(rec, cap, t->slot[S_F0], filename, &tail);
		put_int(rec, t->slot[S_F1], (uint32_t)pid);
		put_int(rec, t->slot[S_F2], (uint32_t)tid); /* old_pid: the exec'ing thread is the leader now */
	} else {
		if (prctl(PR_GET_NAME, comm) != 0) comm[0] = 0;
		put_str(rec, cap, t->slot[S_F0], comm, &tail);
		put_int(rec, t->slot[S_F1], (uint32_t)tid);
		errno = 0;
		int nice = getpriority(PRIO_PROCESS, 0);
		put_int(rec, t->slot[S_F2], (uint32_t)(120 + (errno ? 0 : nice))); /* the kernel's prio: 120 + nice for SCHED_OTHER */
		put_int(rec, t->slot[S_F3], (uint64_t)!!group_dead);
	}
	return tail;
}

/* one attachment: a program at one syscall number's entry or exit */
struct asys {
	struct session *sess;
	uint32_t id;
	const struct aprog *prog;
	int nr, exit;
	struct wbpf_sys_table t;
	volatile int enabled;
	int reported;
	int live; /* agent_lock */
	int sched; /* -1, or WBPF_AGENT_SCHED_*: st holds its record's layout */
	struct sched_table st;
};
/* one traced number: its rewriter attach and its attachments (calls read at[] between reader marks) */
struct snr {
	int nr;
	struct wbpf_sys *h;             /* agent_lock; NULL: not rewritten */
	struct asys *at[MAX_NR_ATT];    /* atomic */
	unsigned nobody;                /* atomic: calls in progress of threads without a reader slot */
};

static struct asys atts[MAX_SYS];
static struct snr nrs[WBPF_SYS_NR_MAX]; /* never freed: a thread blocked in a syscall reads its exit list later */

/* one program run with ctx; a fault or the budget disables the attachment (one EVENT) */
static void run_one(struct asys *a, uint8_t *buf, size_t size, int exit, int nr)
{
	char msg[200];
	if (agent_run(a->prog, a->id, buf, size, msg, sizeof msg) == 0) return;
	a->enabled = 0;
	if (__atomic_exchange_n(&a->reported, 1, __ATOMIC_ACQ_REL)) return;
	char ev[256];
	if (a->sched >= 0)
		snprintf(ev, sizeof ev, "sched hook %u (sched_process_%s) disabled: %.150s; the process ran on", a->id,
			 a->sched == WBPF_AGENT_SCHED_EXEC ? "exec" : "exit", msg);
	else
		snprintf(ev, sizeof ev, "syscall hook %u (sys_%s of syscall %d) disabled: %.150s; the syscall itself ran on", a->id,
			 exit ? "exit" : "enter", nr, msg);
	agent_event(a->sess, a->id, ev);
}

static void on_call(struct snr *n, int exit, const uint64_t args[6], long ret);

static void run_list(struct snr *n, int exit, const uint64_t args[6], long ret)
{
	struct wbpf_pt_regs regs = { 0 };
	uint8_t buf[REC_MAX + sizeof regs] __attribute__((aligned(16)));
	int32_t tid = 0;
	for (unsigned i = 0; i < MAX_NR_ATT; i++) {
		struct asys *a = __atomic_load_n(&n->at[i], __ATOMIC_ACQUIRE);
		if (!a || a->exit != exit || !a->enabled) continue;
		if (!tid) {
			tid = (int32_t)gettid();
			/* the kernel's pt_regs at a syscall: the arguments, orig_rax the number, rax -ENOSYS at entry */
			regs.rdi = args[0], regs.rsi = args[1], regs.rdx = args[2];
			regs.r10 = args[3], regs.r8 = args[4], regs.r9 = args[5];
			regs.orig_rax = (uint64_t)n->nr;
			regs.rax = exit ? (uint64_t)ret : (uint64_t)-ENOSYS;
		}
		/* the record, then the pt_regs image its first 8 bytes point at: one ctx region holds both */
		size_t size;
		if (a->sched >= 0) {
			/* sched_process_exit at exit_group: this thread's exit code from now on, group_dead (the caller is the last
			 * thread the agent reports) */
			agent_task_exit((long)args[0]);
			size = sched_record(&a->st, buf, REC_MAX, "", 1);
			uint64_t r = (uint64_t)(uintptr_t)(buf + size);
			memcpy(buf, &r, 8);
		} else {
			size = a->t.size;
			wbpf_sys_record(&a->t, buf, REC_MAX, tid, 1, (uint64_t)(uintptr_t)(buf + size), n->nr, args, ret);
		}
		memcpy(buf + size, &regs, sizeof regs);
		run_one(a, buf, size + sizeof regs, exit, n->nr);
	}
}

/* sched_process_exec (and the sys_exit_execve a successful execve returns with), in the new image before its
 * main: the exec'd program's first moment the agent sees. filename: AT_EXECFN, the path as given to execve */
void agent_sched_exec(void)
{
	if (!agent_hit_begin()) return;
	const char *fn = (const char *)getauxval(AT_EXECFN);
	struct wbpf_pt_regs regs = { 0 };
	uint8_t buf[REC_MAX + sizeof regs] __attribute__((aligned(16)));
	for (unsigned i = 0; i < MAX_SYS; i++) {
		struct asys *a = &atts[i];
		if (!a->live || a->sched != WBPF_AGENT_SCHED_EXEC || !a->enabled) continue;
		size_t size = sched_record(&a->st, buf, REC_MAX - sizeof regs, fn ? fn : "", 0);
		uint64_t r = (uint64_t)(uintptr_t)(buf + size);
		memcpy(buf, &r, 8);
		memcpy(buf + size, &regs, sizeof regs);
		run_one(a, buf, size + sizeof regs, 0, -1);
	}
	agent_hit_end();
	/* the execve that made this image returns 0 here (the kernel's sys_exit_execve runs in the new image) */
	static const uint64_t none[6];
	struct snr *n = &nrs[59 /* execve, x86_64 */];
	int any = 0;
	for (unsigned i = 0; i < MAX_NR_ATT; i++) {
		struct asys *a = __atomic_load_n(&n->at[i], __ATOMIC_ACQUIRE);
		any |= a && a->exit && a->enabled;
	}
	if (any) on_call(n, 1, none, 0);
}

static void on_call(struct snr *n, int exit, const uint64_t args[6], long ret)
{
	if (!agent_hit_begin()) return; /* a program (or the agent's own thread) made this syscall */
	int slot = reader_enter(n);
	if (!slot) __atomic_add_fetch(&n->nobody, 1, __ATOMIC_SEQ_CST);
	int vf = n->nr == 59 || n->nr == 322; /* execve, execveat: maybe in a vfork child */
	if (vf) agent_ids_forget(), agent_read_pid_reset();
	run_list(n, exit, args, ret);
	if (vf) agent_ids_forget(), agent_read_pid_reset();
	if (slot) reader_leave();
	else __atomic_sub_fetch(&n->nobody, 1, __ATOMIC_RELEASE);
	agent_hit_end();
}

static void on_enter(long nr, const uint64_t args[6], void *cookie)
{
	(void)nr;
	on_call(cookie, 0, args, 0);
}

static void on_exit_(long nr, const uint64_t args[6], long ret, void *cookie)
{
	(void)nr;
	on_call(cookie, 1, args, ret);
}

/* sched_process_exit: libc's _exit(status), hooked inline: exit_group's enter list (the sched exit programs) */
static struct wbpf_hook *exit_hook; /* agent_lock */
static void on_exit_hit(struct wbpf_pt_regs *regs, void *cookie)
{
	(void)cookie;
	const uint64_t args[6] = { regs->rdi, 0, 0, 0, 0, 0 };
	agent_ids_forget(), agent_read_pid_reset(); /* a vfork child's _exit (an exec that failed): not its parent's ids */
	on_call(&nrs[231], 0, args, 0);
	agent_ids_forget(), agent_read_pid_reset();
}

/* waits (up to 2 s) until no call that may have read n->at before the last change runs: 1, or 0 (stalled) */
static int quiesce(struct snr *n)
{
	struct timespec t0, now, nap = { 0, 20000 };
	clock_gettime(CLOCK_MONOTONIC, &t0);
	if (!readers_wait(n, &t0, 2000000000ll)) return 0;
	while (__atomic_load_n(&n->nobody, __ATOMIC_SEQ_CST)) {
		clock_gettime(CLOCK_MONOTONIC, &now);
		if ((now.tv_sec - t0.tv_sec) * 1000000000ll + (now.tv_nsec - t0.tv_nsec) > 2000000000ll) return 0;
		nanosleep(&nap, NULL);
	}
	return 1;
}

static struct asys *find(const struct session *s, uint32_t id)
{
	for (unsigned i = 0; i < MAX_SYS; i++)
		if (atts[i].live && atts[i].sess == s && atts[i].id == id) return &atts[i];
	return NULL;
}

int agent_has_sys(const struct session *s, uint32_t id) { return find(s, id) != NULL; }

int agent_sys_uses(const struct aprog *p)
{
	for (unsigned i = 0; i < MAX_SYS; i++)
		if (atts[i].live && atts[i].prog == p) return (int)atts[i].id;
	return 0;
}

/* a fork child: calls the parent's other threads had in progress never end here (readers.c resets its slots;
 * these are the counts of threads without one) */
static void child_reset(void)
{
	for (unsigned i = 0; i < WBPF_SYS_NR_MAX; i++) __atomic_store_n(&nrs[i].nobody, 0, __ATOMIC_RELAXED);
}


int agent_sys_add(struct session *s, const struct wbpf_agent_syscall *r, const uint8_t *table, char *msg, size_t n)
{
	uint32_t id = r->id;
	if (find(s, id) || agent_has_hook(s, id)) return wbpf_frame_msg(msg, n, EEXIST, "syscall hook %u: id in use", id);
	if (r->nr >= WBPF_SYS_NR_MAX) return wbpf_frame_msg(msg, n, EINVAL, "syscall hook %u: syscall number %u is out of 0..%d", id, r->nr, WBPF_SYS_NR_MAX - 1);
	const struct aprog *prog = agent_find_prog(s, r->prog_id);
	if (!prog) return wbpf_frame_msg(msg, n, ENOENT, "syscall hook %u: no program %u", id, r->prog_id);
	struct wbpf_sys_table t = { 0 };
	struct sched_table st = { 0 };
	char why[200];
	struct wbpf_agent_syscall req = *r;
	int sched = -1;
	if (req.flags & WBPF_AGENT_SYSCALL_SCHED) {
		sched = (int)r->nr;
		/* sched_process_exec: run from agent_sched_exec, on no list; sched_process_exit: an enter program of exit_group */
		if (sched_decode(table, &st, why, sizeof why)) return wbpf_frame_msg(msg, n, EINVAL, "sched hook %u: %s", id, why);
		if (st.kind != (int)r->nr) return wbpf_frame_msg(msg, n, EINVAL, "sched hook %u: the table is for event %d, the frame says %u", id, st.kind, r->nr);
		if (st.kind == WBPF_AGENT_SCHED_EXEC) {
			struct asys *a = NULL;
			for (unsigned i = 0; i < MAX_SYS && !a; i++)
				if (!atts[i].live) a = &atts[i];
			if (!a) return wbpf_frame_msg(msg, n, ENOSPC, "sched hook %u: the agent holds %d syscall hooks already", id, MAX_SYS);
			*a = (struct asys){ .sess = s, .id = id, .prog = prog, .nr = -1, .sched = st.kind, .st = st, .enabled = 1, .live = 1 };
			return wbpf_frame_msg(msg, n, 0, "sched hook %u on sched_process_exec (run in each exec'd program before its main)", id);
		}
		req.nr = 231; /* exit_group, x86_64: listed there, run by the hook on libc's _exit (below) */
		req.flags = 0;
		t.size = st.size;
		if (!exit_hook) {
			/* glibc's _exit loads the number from a register (`mov %esi,%eax; syscall`): no site the rewriter takes;
			 * the inline hook on _exit sees exit(), main's return and _exit alike */
			void *fn = dlsym(RTLD_DEFAULT, "_exit");
			struct wbpf_hook_error err;
			if (!fn) return wbpf_frame_msg(msg, n, ENOENT, "sched hook %u: no _exit in this process", id);
			if (wbpf_hook_attach_any(fn, 0, on_exit_hit, NULL, &exit_hook, &err))
				return wbpf_frame_msg(msg, n, EINVAL, "sched hook %u: hooking _exit: %s: %s", id, wbpf_hook_code_name(err.code), err.reason);
		}
	} else if (wbpf_sys_table_decode(table, WBPF_SYS_TABLE_SIZE, &t, why, sizeof why)) return wbpf_frame_msg(msg, n, EINVAL, "syscall hook %u: %s", id, why);
	r = &req;
	if (t.size > REC_MAX) return wbpf_frame_msg(msg, n, EINVAL, "syscall hook %u: a %u-byte record (the agent builds at most %d)", id, t.size, REC_MAX);
	if (t.exit != !!(r->flags & WBPF_AGENT_SYSCALL_EXIT))
		return wbpf_frame_msg(msg, n, EINVAL, "syscall hook %u: the field table is for sys_%s, the frame says sys_%s", id, t.exit ? "exit" : "enter",
			   r->flags & WBPF_AGENT_SYSCALL_EXIT ? "exit" : "enter");
	struct asys *a = NULL;
	for (unsigned i = 0; i < MAX_SYS && !a; i++)
		if (!atts[i].live) a = &atts[i];
	if (!a) return wbpf_frame_msg(msg, n, ENOSPC, "syscall hook %u: the agent holds %d syscall hooks already", id, MAX_SYS);
	struct snr *sn = &nrs[r->nr];
	int slot = -1;
	for (int i = 0; i < MAX_NR_ATT && slot < 0; i++)
		if (!sn->at[i]) slot = i;
	if (slot < 0) return wbpf_frame_msg(msg, n, ENOSPC, "syscall hook %u: syscall %u has %d hooks already", id, r->nr, MAX_NR_ATT);
	*a = (struct asys){ .sess = s, .id = id, .prog = prog, .nr = (int)r->nr, .exit = t.exit, .t = t, .enabled = 1, .live = 1,
			    .sched = sched, .st = st };
	sn->nr = (int)r->nr;
	char rewrote[160] = "";
	static int atfork;
	if (!atfork) atfork = pthread_atfork(NULL, NULL, child_reset) == 0;
	if (!sn->h && sched < 0) {
		struct wbpf_sys_report rep;
		struct wbpf_hook_error err;
		int nr = (int)r->nr;
		if (wbpf_sys_attach(NULL, &nr, 1, 0, on_enter, on_exit_, sn, &sn->h, &rep, &err)) {
			a->live = 0;
			return wbpf_frame_msg(msg, n, EINVAL, "syscall hook %u: rewriting libc's sites of syscall %d: %s: %s", id, nr, wbpf_hook_code_name(err.code), err.reason);
		}
		if (!rep.rewritten) {
			wbpf_sys_detach(sn->h, &err);
			sn->h = NULL;
			a->live = 0;
			if (rep.refused)
				return wbpf_frame_msg(msg, n, EOPNOTSUPP, "syscall hook %u: no site of syscall %d in libc could be rewritten (%d refused; %s)", id, nr, rep.refused, rep.refusal);
			return wbpf_frame_msg(msg, n, ENOENT, "syscall hook %u: libc has no `mov $%d,%%eax; syscall` site: its calls of syscall %d cannot be traced by rewriting", id, nr, nr);
		}
		snprintf(rewrote, sizeof rewrote, ": %d libc site%s rewritten%s%.100s", rep.rewritten, rep.rewritten == 1 ? "" : "s",
			 rep.refused ? ", some refused: " : "", rep.refused ? rep.refusal : "");
	}
	__atomic_store_n(&sn->at[slot], a, __ATOMIC_SEQ_CST);
	const char *note = ebpf_vm_engine_note(agent_prog_vm(prog));
	return wbpf_frame_msg(msg, n, 0, "syscall hook %u on sys_%s of syscall %u%s%s%s%s", id, t.exit ? "exit" : "enter", r->nr, rewrote,
		   note ? " (" : "", note ? note : "", note ? ")" : "");
}

/* takes a off its number's list; the sites are restored with the number's last attachment. 1: no call reads a
 * any more; 0: one stalled (a stays live: never reused) */
static int unlist(struct asys *a, char *note, size_t n)
{
	if (a->nr < 0) { /* sched_process_exec: on no list; runs only in a constructor, under agent_lock */
		a->enabled = 0;
		a->live = 0;
		return 1;
	}
	struct snr *sn = &nrs[a->nr];
	int left = 0;
	for (int i = 0; i < MAX_NR_ATT; i++) {
		if (sn->at[i] == a) __atomic_store_n(&sn->at[i], NULL, __ATOMIC_SEQ_CST);
		else if (sn->at[i]) left++;
	}
	if (!left && sn->h) {
		struct wbpf_hook_error err;
		if (wbpf_sys_detach(sn->h, &err) == 0) sn->h = NULL;
		else if (note) snprintf(note, n, " (syscall %d's sites stay rewritten, running nothing: %.120s)", a->nr, err.reason);
	}
	if (a->sched == WBPF_AGENT_SCHED_EXIT && exit_hook) {
		int others = 0;
		for (unsigned i = 0; i < MAX_SYS; i++) others |= atts[i].live && &atts[i] != a && atts[i].sched == WBPF_AGENT_SCHED_EXIT;
		struct wbpf_hook_error err;
		if (!others && wbpf_hook_detach(exit_hook, &err) == 0) exit_hook = NULL;
	}
	a->enabled = 0;
	if (!quiesce(sn)) return 0;
	a->live = 0;
	return 1;
}

int agent_sys_remove(struct session *s, uint32_t id, char *msg, size_t n)
{
	struct asys *a = find(s, id);
	if (!a) return wbpf_frame_msg(msg, n, ENOENT, "unhook %u: no hook %u", id, id);
	char note[200] = "";
	unlist(a, note, sizeof note);
	return wbpf_frame_msg(msg, n, 0, "unhook %u%s", id, note);
}

int agent_sys_end(struct session *s)
{
	int quiet = 1;
	for (unsigned i = 0; i < MAX_SYS; i++)
		if (atts[i].live && atts[i].sess == s) quiet &= unlist(&atts[i], NULL, 0);
	return quiet;
}
