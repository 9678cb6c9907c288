/* tp/syscalls and tp/raw_syscalls programs at rewritten syscall sites (sys/, x86-64): the SYSCALL frame's
 * attachments by number (or every number: WBPF_AGENT_SYSCALL_RAW), one rewriter attach per traced number of
 * every loaded object's `mov $nr,%eax; syscall` sites, one of every site of every number while a raw_syscalls
 * program is attached, and one of libc's generic syscall() whose traced set follows the attachments; at
 * each traced call the number's and the raw programs run with the tracepoint record the host's field table
 * describes (sys/record.h) as ctx. Also tp/sched/sched_process_exec|exit (WBPF_AGENT_SYSCALL_SCHED): exec's
 * programs run in each exec'd image before its main (agent_sched_exec), exit's from an inline hook on libc's
 * _exit; each event has its own list, apart from the numbers' and raw's. */
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
#define MAX_MORE 16   /* a number's attaches of dlopen'ed objects (later ones: their sites are missed) */

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


/* the lists of no one number: raw_syscalls' (every number) and the sched events' (no syscall site) */
#define NR_RAW (-1)
#define NR_SCHED (-2)

/* one attachment: a program at one syscall number's entry or exit, at every number's (raw_syscalls), or at a
 * sched event (nr NR_SCHED, sched the event, st its record's layout) */
struct asys {
	struct session *sess;
	uint32_t id;
	const struct aprog *prog;
	int nr, exit;
	struct wbpf_sys_table t;
	volatile int enabled;
	int reported;
	int live;  /* agent_lock */
	int sched; /* -1, or WBPF_AGENT_SCHED_EXEC|EXIT */
	struct sched_table st;
};
/* one traced number (or raw: every number): its rewriter attach and its attachments (calls read at[] between reader marks) */
struct snr {
	int nr;                         /* NR_RAW: raw; NR_SCHED: a sched event's */
	struct wbpf_sys *h;             /* agent_lock; NULL: not rewritten */
	struct asys *at[MAX_NR_ATT];    /* atomic */
	unsigned top;                   /* atomic: at[top..] are NULL */
	unsigned count[2];              /* atomic: live attachments at entry [0] and exit [1]: a call skips a kind with none */
	struct wbpf_sys *more[MAX_MORE];/* agent_lock: attaches of objects dlopen'ed since h's */
	unsigned nmore;
};

static struct asys atts[MAX_SYS];
static struct snr nrs[WBPF_SYS_NR_MAX]; /* never freed: a thread blocked in a syscall reads its exit list later */
static struct snr raw = { .nr = NR_RAW }; /* raw_syscalls/sys_enter|sys_exit */
/* sched_process_exec and sched_process_exit (their programs at count[0]; no rewriter attach) */
static struct snr sched_lists[2] = { [WBPF_AGENT_SCHED_EXEC] = { .nr = NR_SCHED }, [WBPF_AGENT_SCHED_EXIT] = { .nr = NR_SCHED } };
static struct wbpf_hook *exit_hook;     /* agent_lock: the inline hook on libc's _exit while sched_process_exit has a program */
static struct wbpf_sys *generic;        /* agent_lock: libc's syscall(), its traced set the numbers with attachments (all while raw has one) */
static unsigned nobody;                 /* atomic: calls in progress of threads without a reader slot */
#define READ_KEY ((const void *)nrs)    /* what every call marks in its reader slot: a change waits for all of them */

/* the per-call work, lean (bench/syscall's agent row): no system call (the tid is cached per thread), the
 * pt_regs image built once per call, the record of each attachment written right before it */
static void run_list(struct snr *n, long nr, int exit, const uint64_t args[6], long ret)
{
	uint8_t buf[REC_MAX + sizeof(struct wbpf_pt_regs)] __attribute__((aligned(16)));
	struct wbpf_pt_regs *regs = (struct wbpf_pt_regs *)(buf + REC_MAX);
	int built = 0;
	unsigned top = __atomic_load_n(&n->top, __ATOMIC_ACQUIRE);
	for (unsigned i = 0; i < top && i < MAX_NR_ATT; i++) {
		struct asys *a = __atomic_load_n(&n->at[i], __ATOMIC_ACQUIRE);
		if (!a || a->exit != exit || !a->enabled) continue;
		if (!built) {
			/* the kernel's pt_regs at a syscall: the arguments, orig_rax the number, rax -ENOSYS at entry */
			memset(regs, 0, sizeof *regs);
			regs->rdi = args[0], regs->rsi = args[1], regs->rdx = args[2];
			regs->r10 = args[3], regs->r8 = args[4], regs->r9 = args[5];
			regs->orig_rax = (uint64_t)nr;
			regs->rax = exit ? (uint64_t)ret : (uint64_t)-ENOSYS;
			built = 1;
		}
		/* the record, then the pt_regs image its first 8 bytes point at: one ctx region holds both */
		size_t size = a->t.size;
		uint8_t *rec = buf + REC_MAX - size;
		wbpf_sys_record(&a->t, rec, size, (int32_t)agent_pid_tgid(), 1, (uint64_t)(uintptr_t)regs, nr, args, ret);
		char msg[200];
		if (__builtin_expect(agent_run(a->prog, a->id, rec, size + sizeof *regs, msg, sizeof msg) == 0, 1)) continue;
		a->enabled = 0;
		if (__atomic_exchange_n(&a->reported, 1, __ATOMIC_ACQ_REL)) continue;
		char ev[256];
		if (n->nr == NR_RAW)
			snprintf(ev, sizeof ev, "syscall hook %u (raw_syscalls/sys_%s, at syscall %ld) disabled: %.150s; the syscall itself ran on", a->id,
				 exit ? "exit" : "enter", nr, msg);
		else
			snprintf(ev, sizeof ev, "syscall hook %u (sys_%s of syscall %d) disabled: %.150s; the syscall itself ran on", a->id,
				 exit ? "exit" : "enter", n->nr, msg);
		agent_event(a->sess, a->id, ev);
	}
}

/* whichever attach's site made the call, the number's programs and the raw ones run (a site has one owner) */
static void on_call(long nr, int exit, const uint64_t args[6], long ret)
{
	struct snr *n = (unsigned long)nr < WBPF_SYS_NR_MAX ? &nrs[nr] : NULL;
	int mine = n && __atomic_load_n(&n->count[exit], __ATOMIC_RELAXED), any = __atomic_load_n(&raw.count[exit], __ATOMIC_RELAXED);
	if (!mine && !any) return; /* nothing at this end of the call */
	if (!agent_hit_begin()) return; /* a program (or the agent's own thread) made this syscall */
	int slot = reader_enter(READ_KEY);
	if (!slot) __atomic_add_fetch(&nobody, 1, __ATOMIC_SEQ_CST);
	/* execve, execveat: maybe in a vfork child, which shares its parent's thread-local ids: forgotten around them */
	int vf = nr == 59 || nr == 322;
	if (__builtin_expect(vf, 0)) agent_ids_forget(), agent_read_pid_reset();
	if (any) run_list(&raw, nr, exit, args, ret); /* raw_syscalls first, as the kernel runs them here */
	if (mine) run_list(n, nr, exit, args, ret);
	if (__builtin_expect(vf, 0)) agent_ids_forget(), agent_read_pid_reset();
	if (slot) reader_leave();
	else __atomic_sub_fetch(&nobody, 1, __ATOMIC_RELEASE);
	agent_hit_end();
}

static void on_enter(long nr, const uint64_t args[6], void *cookie)
{
	(void)cookie;
	on_call(nr, 0, args, 0);
}

static void on_exit_(long nr, const uint64_t args[6], long ret, void *cookie)
{
	(void)cookie;
	on_call(nr, 1, args, ret);
}

/* a sched event's programs (its list n), each with its record then a pt_regs image: exec's all 0, exit's the
 * exit_group the process makes (rdi its status). filename: exec's; status: exit's */
static void run_sched(struct snr *n, const char *filename, long status)
{
	int ex = n == &sched_lists[WBPF_AGENT_SCHED_EXIT];
	if (!__atomic_load_n(&n->count[0], __ATOMIC_RELAXED)) return;
	if (!agent_hit_begin()) return;
	int slot = reader_enter(READ_KEY);
	if (!slot) __atomic_add_fetch(&nobody, 1, __ATOMIC_SEQ_CST);
	struct wbpf_pt_regs regs = { 0 };
	if (ex) regs.rdi = (uint64_t)status, regs.orig_rax = 231 /* exit_group, x86_64 */, regs.rax = (uint64_t)-ENOSYS;
	uint8_t buf[REC_MAX + sizeof regs] __attribute__((aligned(16)));
	unsigned top = __atomic_load_n(&n->top, __ATOMIC_ACQUIRE);
	for (unsigned i = 0; i < top && i < MAX_NR_ATT; i++) {
		struct asys *a = __atomic_load_n(&n->at[i], __ATOMIC_ACQUIRE);
		if (!a || !a->enabled) continue;
		/* exit: this thread's exit code from now on (the task image's), group_dead (the caller is the last thread
		 * the agent reports) */
		if (ex) agent_task_exit(status);
		size_t size = sched_record(&a->st, buf, REC_MAX, ex ? "" : filename, ex);
		uint64_t r = (uint64_t)(uintptr_t)(buf + size);
		memcpy(buf, &r, 8);
		memcpy(buf + size, &regs, sizeof regs);
		char msg[200];
		if (agent_run(a->prog, a->id, buf, size + sizeof regs, msg, sizeof msg) == 0) continue;
		a->enabled = 0;
		if (__atomic_exchange_n(&a->reported, 1, __ATOMIC_ACQ_REL)) continue;
		char ev[256];
		snprintf(ev, sizeof ev, "sched hook %u (sched_process_%s) disabled: %.150s; the process ran on", a->id, ex ? "exit" : "exec", msg);
		agent_event(a->sess, a->id, ev);
	}
	if (slot) reader_leave();
	else __atomic_sub_fetch(&nobody, 1, __ATOMIC_RELEASE);
	agent_hit_end();
}

/* sched_process_exec (and the sys_exit_execve a successful execve returns with), in the new image before its
 * main: the exec'd program's first moment the agent sees. filename: AT_EXECFN, the path as given to execve */
void agent_sched_exec(void)
{
	const char *fn = (const char *)getauxval(AT_EXECFN);
	run_sched(&sched_lists[WBPF_AGENT_SCHED_EXEC], fn ? fn : "", 0);
	/* the execve that made this image returns 0 here (the kernel's sys_exit_execve, and raw_syscalls' sys_exit,
	 * run in the new image) */
	static const uint64_t none[6];
	on_call(59 /* execve, x86_64 */, 1, none, 0);
}

/* sched_process_exit: libc's _exit(status), hooked inline (exit(), main's return and _exit alike) */
static void on_exit_hit(struct wbpf_pt_regs *regs, void *cookie)
{
	(void)cookie;
	agent_ids_forget(), agent_read_pid_reset(); /* a vfork child's _exit (an exec that failed): not its parent's ids */
	run_sched(&sched_lists[WBPF_AGENT_SCHED_EXIT], "", (long)regs->rdi);
	agent_ids_forget(), agent_read_pid_reset();
}

/* waits (up to 2 s) until no call that may have read an at[] before the last change runs: 1, or 0 (stalled) */
static int quiesce(void)
{
	struct timespec t0, now, nap = { 0, 20000 };
	clock_gettime(CLOCK_MONOTONIC, &t0);
	if (!readers_wait(READ_KEY, &t0, 2000000000ll)) return 0;
	while (__atomic_load_n(&nobody, __ATOMIC_SEQ_CST)) {
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
	__atomic_store_n(&nobody, 0, __ATOMIC_RELAXED);
}


static int unsafe_nr(int nr) { return nr == 56 || nr == 57 || nr == 58 || nr == 435 || nr == 15; } /* as sys/rewrite.c */

/* sets nr (or every number: -1) in the generic syscall()'s traced set, attaching it with the first call
 * (libc without the pattern: its calls are missed, said in note) */
static void generic_trace(int nr, int on, char *note, size_t n)
{
	if (!generic && on) {
		struct wbpf_sys_report rep;
		struct wbpf_hook_error err;
		if (wbpf_sys_attach(NULL, NULL, 0, 1, on_enter, on_exit_, NULL, &generic, &rep, &err) || !rep.rewritten) {
			if (generic) wbpf_sys_detach(generic, &err);
			generic = NULL;
			if (note) snprintf(note, n, "; libc's syscall() not rewritten (its calls are missed)");
			return;
		}
		if (note) snprintf(note, n, "; libc's syscall() rewritten");
	}
	if (!generic) return;
	for (int i = nr < 0 ? 0 : nr; i < (nr < 0 ? WBPF_SYS_NR_MAX : nr + 1); i++) {
		int want = on || raw.count[0] || raw.count[1] || nrs[i].count[0] || nrs[i].count[1];
		wbpf_sys_set_traced(generic, i, want);
	}
}

/* the raw attach: every site of every number in every loaded object (the unsafe ones refused) */
static int raw_attach(uint32_t id, char *rewrote, size_t rn, char *msg, size_t n)
{
	int all[WBPF_SYS_NR_MAX], k = 0;
	for (int i = 0; i < WBPF_SYS_NR_MAX; i++)
		if (!unsafe_nr(i)) all[k++] = i;
	struct wbpf_sys_report rep;
	struct wbpf_hook_error err;
	if (wbpf_sys_attach("*", all, k, 0, on_enter, on_exit_, &raw, &raw.h, &rep, &err))
		return wbpf_frame_msg(msg, n, EINVAL, "syscall hook %u: rewriting every syscall site: %s: %s", id, wbpf_hook_code_name(err.code), err.reason);
	snprintf(rewrote, rn, ": %d sites rewritten in %d objects; missed: %d `syscall` instructions loading no constant number%s%d refused%s%.100s",
		 rep.rewritten, rep.objects, rep.others, rep.refused > rep.held ? ", " : "", rep.refused - rep.held,
		 rep.refused > rep.held ? " (the first: " : "", rep.refused > rep.held ? rep.refusal : "");
	if (rep.refused > rep.held) snprintf(rewrote + strlen(rewrote), rn - strlen(rewrote), ")");
	return 0;
}

static void atfork_once(void)
{
	static int atfork;
	if (!atfork) atfork = pthread_atfork(NULL, NULL, child_reset) == 0;
}

/* a sched event's attachment (agent_lock): exec's run by agent_sched_exec, exit's by the inline hook on _exit
 * (attached with the first, removed with the last: release) */
static int sched_add(struct session *s, uint32_t id, const struct aprog *prog, uint32_t ev, const uint8_t *table, char *msg, size_t n)
{
	struct sched_table st = { 0 };
	char why[200];
	if (ev == WBPF_AGENT_SCHED_FORK)
		return wbpf_frame_msg(msg, n, EOPNOTSUPP,
				      "sched hook %u: the agent emits no sched_process_fork (glibc's clone switches stacks in the child: no site of it is rewritten); "
				      "the ptrace tier does (--userspace-tier ptrace)",
				      id);
	if (sched_decode(table, &st, why, sizeof why)) return wbpf_frame_msg(msg, n, EINVAL, "sched hook %u: %s", id, why);
	if (st.kind != (int)ev) return wbpf_frame_msg(msg, n, EINVAL, "sched hook %u: the table is for event %d, the frame says %u", id, st.kind, ev);
	struct asys *a = NULL;
	for (unsigned i = 0; i < MAX_SYS && !a; i++)
		if (!atts[i].live) a = &atts[i];
	if (!a) return wbpf_frame_msg(msg, n, ENOSPC, "sched hook %u: the agent holds %d syscall hooks already", id, MAX_SYS);
	struct snr *sn = &sched_lists[st.kind];
	int slot = -1;
	for (int i = 0; i < MAX_NR_ATT && slot < 0; i++)
		if (!sn->at[i]) slot = i;
	const char *name = st.kind == WBPF_AGENT_SCHED_EXEC ? "exec" : "exit";
	if (slot < 0) return wbpf_frame_msg(msg, n, ENOSPC, "sched hook %u: sched_process_%s has %d hooks already", id, name, MAX_NR_ATT);
	if (st.kind == WBPF_AGENT_SCHED_EXIT && !exit_hook) {
		/* glibc's _exit loads the number from a register (`mov %esi,%eax; syscall`): no site the rewriter takes */
		void *fn = dlsym(RTLD_DEFAULT, "_exit");
		struct wbpf_hook_error err;
		if (!fn) return wbpf_frame_msg(msg, n, ENOENT, "sched hook %u: no _exit in this process", id);
		if (wbpf_hook_attach_any(fn, 0, on_exit_hit, NULL, &exit_hook, &err))
			return wbpf_frame_msg(msg, n, EINVAL, "sched hook %u: hooking _exit: %s: %s", id, wbpf_hook_code_name(err.code), err.reason);
	}
	atfork_once();
	*a = (struct asys){ .sess = s, .id = id, .prog = prog, .nr = NR_SCHED, .sched = st.kind, .st = st, .enabled = 1, .live = 1 };
	__atomic_store_n(&sn->at[slot], a, __ATOMIC_SEQ_CST);
	if ((unsigned)slot >= sn->top) __atomic_store_n(&sn->top, (unsigned)slot + 1, __ATOMIC_SEQ_CST);
	__atomic_add_fetch(&sn->count[0], 1, __ATOMIC_SEQ_CST);
	if (st.kind == WBPF_AGENT_SCHED_EXEC)
		return wbpf_frame_msg(msg, n, 0, "sched hook %u on sched_process_exec (run in each exec'd program before its main)", id);
	return wbpf_frame_msg(msg, n, 0, "sched hook %u on sched_process_exit (run at libc's _exit, hooked inline)", id);
}

int agent_sys_add(struct session *s, const struct wbpf_agent_syscall *r, const uint8_t *table, char *msg, size_t n)
{
	uint32_t id = r->id;
	int is_raw = !!(r->flags & WBPF_AGENT_SYSCALL_RAW), is_sched = !!(r->flags & WBPF_AGENT_SYSCALL_SCHED);
	if (find(s, id) || agent_has_hook(s, id)) return wbpf_frame_msg(msg, n, EEXIST, "syscall hook %u: id in use", id);
	if (r->flags & ~(WBPF_AGENT_SYSCALL_EXIT | WBPF_AGENT_SYSCALL_RAW | WBPF_AGENT_SYSCALL_SCHED))
		return wbpf_frame_msg(msg, n, EINVAL, "syscall hook %u: unknown flags %#x", id, r->flags);
	if (is_sched && r->flags != WBPF_AGENT_SYSCALL_SCHED)
		return wbpf_frame_msg(msg, n, EINVAL, "sched hook %u: flags %#x: SCHED goes with no other flag", id, r->flags);
	if (!is_raw && !is_sched && r->nr >= WBPF_SYS_NR_MAX) return wbpf_frame_msg(msg, n, EINVAL, "syscall hook %u: syscall number %u is out of 0..%d", id, r->nr, WBPF_SYS_NR_MAX - 1);
	const struct aprog *prog = agent_find_prog(s, r->prog_id);
	if (!prog) return wbpf_frame_msg(msg, n, ENOENT, "syscall hook %u: no program %u", id, r->prog_id);
	if (is_sched) return sched_add(s, id, prog, r->nr, table, msg, n);
	struct wbpf_sys_table t;
	char why[200];
	if (wbpf_sys_table_decode(table, WBPF_SYS_TABLE_SIZE, &t, why, sizeof why)) return wbpf_frame_msg(msg, n, EINVAL, "syscall hook %u: %s", id, why);
	if (t.size > REC_MAX) return wbpf_frame_msg(msg, n, EINVAL, "syscall hook %u: a %u-byte record (the agent builds at most %d)", id, t.size, REC_MAX);
	if (t.exit != !!(r->flags & WBPF_AGENT_SYSCALL_EXIT))
		return wbpf_frame_msg(msg, n, EINVAL, "syscall hook %u: the field table is for sys_%s, the frame says sys_%s", id, t.exit ? "exit" : "enter",
			   r->flags & WBPF_AGENT_SYSCALL_EXIT ? "exit" : "enter");
	struct asys *a = NULL;
	for (unsigned i = 0; i < MAX_SYS && !a; i++)
		if (!atts[i].live) a = &atts[i];
	if (!a) return wbpf_frame_msg(msg, n, ENOSPC, "syscall hook %u: the agent holds %d syscall hooks already", id, MAX_SYS);
	struct snr *sn = is_raw ? &raw : &nrs[r->nr];
	int slot = -1;
	for (int i = 0; i < MAX_NR_ATT && slot < 0; i++)
		if (!sn->at[i]) slot = i;
	if (slot < 0) return wbpf_frame_msg(msg, n, ENOSPC, "syscall hook %u: %s has %d hooks already", id, is_raw ? "raw_syscalls" : "this syscall", MAX_NR_ATT);
	*a = (struct asys){ .sess = s, .id = id, .prog = prog, .nr = is_raw ? NR_RAW : (int)r->nr, .exit = t.exit, .t = t, .enabled = 1, .live = 1, .sched = -1 };
	if (!is_raw) sn->nr = (int)r->nr;
	char rewrote[320] = "", gnote[80] = "";
	atfork_once();
	if (is_raw && !sn->h) {
		int rc = raw_attach(id, rewrote, sizeof rewrote, msg, n);
		if (rc) { a->live = 0; return rc; }
	} else if (!sn->h) {
		struct wbpf_sys_report rep;
		struct wbpf_hook_error err;
		int nr = (int)r->nr;
		if (wbpf_sys_attach("*", &nr, 1, 0, on_enter, on_exit_, sn, &sn->h, &rep, &err)) {
			a->live = 0;
			return wbpf_frame_msg(msg, n, EINVAL, "syscall hook %u: rewriting the sites of syscall %d: %s: %s", id, nr, wbpf_hook_code_name(err.code), err.reason);
		}
		if (!rep.rewritten && !rep.held) {
			wbpf_sys_detach(sn->h, &err);
			sn->h = NULL;
			a->live = 0;
			if (rep.refused)
				return wbpf_frame_msg(msg, n, EOPNOTSUPP, "syscall hook %u: no site of syscall %d could be rewritten (%d refused; %s)", id, nr, rep.refused, rep.refusal);
			return wbpf_frame_msg(msg, n, ENOENT, "syscall hook %u: no loaded object has a `mov $%d,%%eax; syscall` site: its calls of syscall %d cannot be traced by rewriting", id, nr, nr);
		}
		snprintf(rewrote, sizeof rewrote, ": %d site%s rewritten in %d objects%s%s%.100s", rep.rewritten, rep.rewritten == 1 ? "" : "s", rep.objects,
			 rep.held ? " (and some the raw_syscalls attach holds)" : "", rep.refused > rep.held ? ", some refused: " : "", rep.refused > rep.held ? rep.refusal : "");
	}
	__atomic_store_n(&sn->at[slot], a, __ATOMIC_SEQ_CST);
	if ((unsigned)slot >= sn->top) __atomic_store_n(&sn->top, (unsigned)slot + 1, __ATOMIC_SEQ_CST);
	__atomic_add_fetch(&sn->count[t.exit], 1, __ATOMIC_SEQ_CST);
	generic_trace(is_raw ? -1 : (int)r->nr, 1, gnote, sizeof gnote);
	const char *note = ebpf_vm_engine_note(agent_prog_vm(prog));
	if (is_raw)
		return wbpf_frame_msg(msg, n, 0, "syscall hook %u on raw_syscalls/sys_%s%s%s%s%s%s", id, t.exit ? "exit" : "enter", rewrote, gnote,
				   note ? " (" : "", note ? note : "", note ? ")" : "");
	return wbpf_frame_msg(msg, n, 0, "syscall hook %u on sys_%s of syscall %u%s%s%s%s%s", id, t.exit ? "exit" : "enter", r->nr, rewrote, gnote,
		   note ? " (" : "", note ? note : "", note ? ")" : "");
}

static int has_atts(const struct snr *sn) { return sn->count[0] || sn->count[1]; }

/* restores the sites of sn's attaches (h and those of dlopen'ed objects): 0, or -1 with err (h stays) */
static int snr_detach(struct snr *sn, struct wbpf_hook_error *err)
{
	for (unsigned i = 0; i < sn->nmore; i++) (void)wbpf_sys_detach(sn->more[i], err);
	sn->nmore = 0;
	if (sn->h && wbpf_sys_detach(sn->h, err)) return -1;
	sn->h = NULL;
	return 0;
}

/* a library was dlopen'ed (lib/dlopen.c, agent_lock held): the traced numbers' sites in it (every site, while
 * raw_syscalls has an attachment) are rewritten too; the objects scanned before count their sites as held */
int agent_sys_live(void)
{
	if (__atomic_load_n(&raw.count[0], __ATOMIC_RELAXED) || __atomic_load_n(&raw.count[1], __ATOMIC_RELAXED)) return 1;
	for (unsigned i = 0; i < MAX_SYS; i++)
		if (__atomic_load_n(&atts[i].live, __ATOMIC_RELAXED)) return 1;
	return 0;
}

void agent_sys_loaded(void)
{
	static int all[WBPF_SYS_NR_MAX];
	int k = 0;
	for (int i = 0; i < WBPF_SYS_NR_MAX; i++)
		if (!unsafe_nr(i)) all[k++] = i;
	for (int i = -1; i < WBPF_SYS_NR_MAX; i++) {
		struct snr *sn = i < 0 ? &raw : &nrs[i];
		if (!sn->h || !has_atts(sn) || sn->nmore >= MAX_MORE) continue;
		struct wbpf_sys *h = NULL;
		struct wbpf_sys_report rep;
		struct wbpf_hook_error err;
		if (wbpf_sys_attach("*", i < 0 ? all : &i, i < 0 ? k : 1, 0, on_enter, on_exit_, sn, &h, &rep, &err)) continue;
		if (rep.rewritten) sn->more[sn->nmore++] = h;
		else wbpf_sys_detach(h, &err);
	}
}

/* libc's syscall() restored once no attachment is left */
static void generic_release(void)
{
	if (!generic || has_atts(&raw)) return;
	for (int i = 0; i < WBPF_SYS_NR_MAX; i++)
		if (has_atts(&nrs[i])) return;
	struct wbpf_hook_error err;
	if (wbpf_sys_detach(generic, &err) == 0) generic = NULL;
}

/* restores sn's sites when neither it nor (for a number) the raw attach needs them: a number's sites stay
 * while raw is attached (raw's attach left them to it); raw's end restores the numbers left without attachments */
static void release(struct snr *sn, char *note, size_t n)
{
	struct wbpf_hook_error err;
	if (sn->nr == NR_SCHED) { /* no site: exit's hook on _exit goes with its last program */
		if (sn != &sched_lists[WBPF_AGENT_SCHED_EXIT] || has_atts(sn) || !exit_hook) return;
		if (wbpf_hook_detach(exit_hook, &err) == 0) exit_hook = NULL;
		else if (note) snprintf(note, n, " (libc's _exit stays hooked, running nothing: %.120s)", err.reason);
		return;
	}
	if (sn == &raw) {
		if (has_atts(&raw)) return;
		if (snr_detach(&raw, &err) && note) snprintf(note, n, " (the raw sites stay rewritten, running nothing: %.120s)", err.reason);
		for (int i = 0; i < WBPF_SYS_NR_MAX; i++) {
			if (!nrs[i].h) continue;
			(void)snr_detach(&nrs[i], &err);
			if (nrs[i].h || !has_atts(&nrs[i])) continue;
			/* its sites raw held: rewritten for it now (its calls in between are missed) */
			struct wbpf_sys_report rep;
			if (wbpf_sys_attach("*", &i, 1, 0, on_enter, on_exit_, &nrs[i], &nrs[i].h, &rep, &err)) nrs[i].h = NULL;
		}
		generic_trace(-1, 0, NULL, 0);
		generic_release();
		return;
	}
	if (has_atts(sn)) return;
	generic_trace(sn->nr, 0, NULL, 0);
	generic_release();
	if (has_atts(&raw) || !sn->h) return;
	if (snr_detach(sn, &err) && note) snprintf(note, n, " (syscall %d's sites stay rewritten, running nothing: %.120s)", sn->nr, err.reason);
}

/* takes a off its list; the sites are restored with the list's last attachment (release). 1: no call reads a
 * any more; 0: one stalled (a stays live: never reused) */
static int unlist(struct asys *a, char *note, size_t n)
{
	struct snr *sn = a->nr == NR_SCHED ? &sched_lists[a->sched] : a->nr == NR_RAW ? &raw : &nrs[a->nr];
	for (int i = 0; i < MAX_NR_ATT; i++) {
		if (sn->at[i] == a) {
			__atomic_store_n(&sn->at[i], NULL, __ATOMIC_SEQ_CST);
			__atomic_sub_fetch(&sn->count[a->exit], 1, __ATOMIC_SEQ_CST);
		}
	}
	release(sn, note, n);
	a->enabled = 0;
	if (!quiesce()) return 0;
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
	generic_release();
	return quiet;
}
