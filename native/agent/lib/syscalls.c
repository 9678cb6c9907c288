/* tp/syscalls programs at rewritten syscall sites (sys/, x86-64): the SYSCALL frame's attachments by number,
 * one rewriter attach of libc's sites per traced number, and at each traced call the enter (or exit)
 * programs run with the tracepoint record the host's field table describes (sys/record.h) as ctx. */
#define _GNU_SOURCE
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
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
		size_t size = a->t.size;
		memcpy(buf + size, &regs, sizeof regs);
		wbpf_sys_record(&a->t, buf, REC_MAX, tid, 1, (uint64_t)(uintptr_t)(buf + size), n->nr, args, ret);
		char msg[200];
		if (agent_run(a->prog, a->id, buf, size + sizeof regs, msg, sizeof msg) == 0) continue;
		a->enabled = 0;
		if (__atomic_exchange_n(&a->reported, 1, __ATOMIC_ACQ_REL)) continue;
		char ev[256];
		snprintf(ev, sizeof ev, "syscall hook %u (sys_%s of syscall %d) disabled: %.150s; the syscall itself ran on", a->id,
			 exit ? "exit" : "enter", n->nr, msg);
		agent_event(a->sess, a->id, ev);
	}
}

static void on_call(struct snr *n, int exit, const uint64_t args[6], long ret)
{
	if (!agent_hit_begin()) return; /* a program (or the agent's own thread) made this syscall */
	int slot = reader_enter(n);
	if (!slot) __atomic_add_fetch(&n->nobody, 1, __ATOMIC_SEQ_CST);
	run_list(n, exit, args, ret);
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
	struct snr *sn = &nrs[r->nr];
	int slot = -1;
	for (int i = 0; i < MAX_NR_ATT && slot < 0; i++)
		if (!sn->at[i]) slot = i;
	if (slot < 0) return wbpf_frame_msg(msg, n, ENOSPC, "syscall hook %u: syscall %u has %d hooks already", id, r->nr, MAX_NR_ATT);
	*a = (struct asys){ .sess = s, .id = id, .prog = prog, .nr = (int)r->nr, .exit = t.exit, .t = t, .enabled = 1, .live = 1 };
	sn->nr = (int)r->nr;
	char rewrote[160] = "";
	static int atfork;
	if (!atfork) atfork = pthread_atfork(NULL, NULL, child_reset) == 0;
	if (!sn->h) {
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
