/* libwbpf_agent.so: loaded with LD_PRELOAD, serves the control channel named by WBPF_AGENT_FD (lib/proto.h):
 * maps the shared maps, loads programs into the C engine, hooks functions (entry and return, several
 * programs per function); each hit runs the programs with ctx = the trampoline's pt_regs. The command
 * waits for START; EOF on the channel unhooks everything; a fault disables its hook only. What it
 * receives goes to the run's registry (registry.c), which descendants apply (follow.c). Several hosts at
 * once: each channel is a session (its own maps, programs, hooks, ids and serve thread); one session ending
 * removes only its own hooks and maps. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/sysmacros.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include "../hook/hook.h"
#include "../maps/wbpf_maps.h"
#include "../vm/ebpf_vm.h"
#include "agent.h"
#include "frames.h"
#include "maps_file.h"
#include "proto.h"
#include "readers.h"
#include "registry.h"

#define MAX_MAPS 64
#define MAX_PROGS 64
#define MAX_HOOKS 128   /* attachments of every session (entries of hooks[], reused once unhooked and no hit can read them) */
#define MAX_FNS 64      /* distinct functions hooked in the process's life (entries of fns[], never reused) */
#define MAX_FN_HOOKS 16 /* attachments on one function */
#define READER_SLOTS 8  /* a hit of a thread without a reader slot (readers.h) counts itself here, by thread */
#define RUN_BUDGET 1000000
#define MAX_SESSIONS WBPF_AGENT_MAX_SESSIONS /* hosts served at once (proto.h) */
#define NOTICE_QUEUE 16
#define NOTICE_MAX (4 + PRINTK_SIZE) /* payload bytes of a notice a hit queues: a trace's whole text fits */

struct aprog {
	uint32_t id;
	ebpf_vm_prog *prog;
	const struct prog_refs *refs; /* prog's env.user (a hit reads it without asking the engine) */
};
struct afn;
struct session;
/* one attachment: a program at a function's entry or return (hits read it through afn.at) */
struct ahook {
	struct session *sess; /* whose hook (ids are per session) */
	uint32_t id;
	uint32_t flags; /* WBPF_AGENT_HOOK_RETURN */
	const struct aprog *prog;
	struct afn *fn;
	volatile int enabled;
	volatile int reported;
	int live; /* agent_lock: in use (listed in fn->at, being added, or pending) */
	int pending; /* agent_lock: live, its file not mapped yet (not in any fn->at); req says where */
	struct wbpf_agent_hook req;
};
/* one hooked function: its patch and its attachments. Hits read at[] between fn_enter and fn_leave;
 * the serve thread changes it with atomic stores and then waits for the hits of the old phase */
struct afn {
	uintptr_t addr;
	struct wbpf_hook *hook;         /* serve thread only; NULL while unpatched */
	struct ahook *at[MAX_FN_HOOKS]; /* atomic; NULL: a free slot */
	unsigned top;                   /* atomic: at[top..] were never used (a hit looks at at[0..top) only) */
	unsigned nret;                  /* atomic: return attachments in at[] */
	unsigned phase;                 /* atomic: odd/even, flipped by each change */
	struct {
		unsigned n[2];          /* atomic: hits in progress, by the phase they started in */
	} __attribute__((aligned(64))) readers[READER_SLOTS];
};

struct notice {
	uint32_t type, len;
	uint8_t body[NOTICE_MAX];
};
/* one host's state: its channel, its notices, its maps and programs (its hooks are hooks[] naming it) */
struct session {
	int state; /* atomic: SESS_FREE, SESS_USED (claimed, served or followed), SESS_DEAD (a hit stalled: never reused) */
	int chan;  /* -1: none (a descendant follows the registry, or the session ended) */
	int watch_fd; /* a fork child's copy of a joined session's channel: never read or written, polled for the host's hang-up */
	int root;  /* the launch's session: what it receives goes to the registry (agent_reg) */
	pthread_mutex_t send_lock, notice_lock;
	struct notice notice_q[NOTICE_QUEUE];
	unsigned notice_n;
	unsigned long notices_dropped; /* atomic: the queue was full or busy */
	/* published with a release store of the count; entries never change once published, until the session
	 * ends and no hit can read them */
	struct amap maps[MAX_MAPS];
	unsigned nmaps;
	struct aprog progs[MAX_PROGS];
	unsigned nprogs;
};
enum { SESS_FREE = 0, SESS_USED = 1, SESS_DEAD = 2 };

pthread_mutex_t agent_lock = PTHREAD_MUTEX_INITIALIZER;
struct registry *agent_reg;
static unsigned npending; /* atomic: pending hooks (dlopen looks only when some are) */
static struct session sessions[MAX_SESSIONS];
/* agent_lock */
static struct ahook hooks[MAX_HOOKS];
static struct afn fns[MAX_FNS];
static unsigned nfns;

/* ---- sending frames: a session's serve thread blocks; a hit never does (its notices queue) ---- */
/* the session whose serve thread this is (its hits are skipped, its sends may block) */
static __thread struct session *serving __attribute__((tls_model("initial-exec")));

/* the whole of iov[0..n), looping on partial writes; 0, or -1 when the host is gone */
static int send_iov(const struct session *s, struct iovec *iov, int n, int flags)
{
	while (n > 0) {
		struct msghdr mh = { .msg_iov = iov, .msg_iovlen = (size_t)n };
		ssize_t w = sendmsg(s->chan, &mh, MSG_NOSIGNAL | flags);
		if (w < 0 && errno == EINTR) continue;
		if (w < 0) return -1;
		flags &= ~MSG_DONTWAIT; /* a frame begun is finished: the stream stays whole */
		while (n > 0 && (size_t)w >= iov->iov_len) w -= (ssize_t)(iov++)->iov_len, n--;
		if (n > 0) iov->iov_base = (uint8_t *)iov->iov_base + w, iov->iov_len -= (size_t)w;
	}
	return 0;
}

static void queue_notice(struct session *s, uint32_t type, const void *a, size_t alen, const char *msg, size_t mlen)
{
	if (pthread_mutex_trylock(&s->notice_lock) != 0) {
		__atomic_add_fetch(&s->notices_dropped, 1, __ATOMIC_RELAXED);
		return;
	}
	if (s->notice_n < NOTICE_QUEUE && alen + mlen <= NOTICE_MAX) {
		struct notice *q = &s->notice_q[s->notice_n++];
		q->type = type;
		q->len = (uint32_t)(alen + mlen);
		memcpy(q->body, a, alen);
		memcpy(q->body + alen, msg, mlen);
	} else {
		__atomic_add_fetch(&s->notices_dropped, 1, __ATOMIC_RELAXED);
	}
	pthread_mutex_unlock(&s->notice_lock);
}

/* a frame to session s's host (nothing when s has no channel: a descendant) */
static void send_frame_n(struct session *s, uint32_t type, uint32_t seq, const void *a, size_t alen, const char *msg, size_t mlen)
{
	if (!s || s->chan < 0) return;
	struct wbpf_agent_frame f = { (uint32_t)(alen + mlen), type, seq };
	struct iovec iov[3] = { { &f, sizeof f }, { (void *)a, alen }, { (void *)msg, mlen } };
	if (serving == s) {
		pthread_mutex_lock(&s->send_lock);
		(void)send_iov(s, iov, 3, 0); /* the host gone: EOF tells the reader */
		pthread_mutex_unlock(&s->send_lock);
		return;
	}
	/* a hit on a traced thread (or another session's thread): try once without blocking, else leave it to
	 * the session's serve thread */
	if (pthread_mutex_trylock(&s->send_lock) == 0) {
		int rc = send_iov(s, iov, 3, MSG_DONTWAIT);
		int again = rc < 0 && (errno == EAGAIN || errno == EWOULDBLOCK);
		pthread_mutex_unlock(&s->send_lock);
		if (!again) return;
	}
	queue_notice(s, type, a, alen, msg, mlen);
}

static void send_frame(struct session *s, uint32_t type, uint32_t seq, const void *a, size_t alen, const char *msg)
{
	send_frame_n(s, type, seq, a, alen, msg, msg ? strlen(msg) : 0);
}

/* s's serve thread: send what hits queued */
static void flush_notices(struct session *s)
{
	static __thread struct notice *out __attribute__((tls_model("initial-exec")));
	if (!out && !(out = malloc(sizeof(struct notice) * NOTICE_QUEUE))) return;
	pthread_mutex_lock(&s->notice_lock);
	unsigned n = s->notice_n;
	memcpy(out, s->notice_q, n * sizeof out[0]);
	s->notice_n = 0;
	pthread_mutex_unlock(&s->notice_lock);
	for (unsigned i = 0; i < n; i++) send_frame_n(s, out[i].type, 0, out[i].body, out[i].len, NULL, 0);
}

/* a TRACE frame (bpf_trace_printk's text) for the program run at hook_id (agent.h); never blocks a hit */
void agent_trace(struct session *s, uint32_t hook_id, const char *text, uint32_t len)
{
	if (len > NOTICE_MAX - sizeof hook_id) len = NOTICE_MAX - sizeof hook_id;
	send_frame_n(s, WBPF_AGENT_TRACE, 0, &hook_id, sizeof hook_id, text, len);
}

static void reply(struct session *s, uint32_t seq, int32_t status, const char *fmt, ...) __attribute__((format(printf, 4, 5)));
static void reply(struct session *s, uint32_t seq, int32_t status, const char *fmt, ...)
{
	char msg[512];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	send_frame(s, WBPF_AGENT_REPLY, seq, &status, sizeof status, msg);
}

/* session s's map an lddw src 1 value names (its ids are its own), or NULL */
struct amap *find_map(const struct session *s, uint64_t ref)
{
	if (!s || (ref & 0xffffffff00000000ull) != MAPREF_TAG) return NULL;
	unsigned n = __atomic_load_n(&s->nmaps, __ATOMIC_ACQUIRE);
	if ((uint32_t)ref == 0) return NULL; /* a free slot */
	for (unsigned i = n; i-- > 0;) /* the newest */
		if (__atomic_load_n(&s->maps[i].id, __ATOMIC_ACQUIRE) == (uint32_t)ref) return (struct amap *)&s->maps[i];
	return NULL;
}

/* ---- at each hit ---- */
/* a hit inside a hit (a helper or libc calling a hooked function) is skipped, not recursed into */
static __thread int in_hit __attribute__((tls_model("initial-exec")));

static inline void run_hit(struct ahook *h, struct wbpf_pt_regs *regs);

/* the return half (hook/hook.h, the uretprobe helper's): arms on_return for this call. Weak until it lands:
 * without it, return attachments are accepted and never run */
int wbpf_hook_ret_arm(const struct wbpf_pt_regs *entry_regs, wbpf_hook_handler on_return, void *cookie)
	__attribute__((weak));
/* on_return never writes the regs (a program's ctx is read-only, no helper writes it): armed without the copy */
int wbpf_hook_ret_arm_ro(const struct wbpf_pt_regs *entry_regs, wbpf_hook_handler on_return, void *cookie)
	__attribute__((weak));

/* this thread's reader slot + 1 (0: not chosen yet) */
static __thread unsigned reader_slot __attribute__((tls_model("initial-exec")));
static unsigned reader_slots_taken;

/* fn_enter's slow path: the thread has no reader slot (all taken) */
__attribute__((noinline)) static unsigned fn_enter_shared(struct afn *fn)
{
	if (!reader_slot) reader_slot = __atomic_add_fetch(&reader_slots_taken, 1, __ATOMIC_RELAXED) % READER_SLOTS + 1;
	unsigned idx = __atomic_load_n(&fn->phase, __ATOMIC_SEQ_CST) & 1;
	__atomic_add_fetch(&fn->readers[reader_slot - 1].n[idx], 1, __ATOMIC_SEQ_CST);
	return idx;
}

/* 2: counted in this thread's own reader slot (readers.h, no locked instruction); else the phase's counter */
static inline __attribute__((always_inline)) unsigned fn_enter(struct afn *fn)
{
	if (__builtin_expect(reader_enter(fn), 1)) return 2;
	return fn_enter_shared(fn);
}

static inline __attribute__((always_inline)) void fn_leave(struct afn *fn, unsigned idx)
{
	if (idx == 2) return reader_leave();
	__atomic_sub_fetch(&fn->readers[reader_slot - 1].n[idx], 1, __ATOMIC_RELEASE);
}

/* runs fn's enabled attachments of one kind (0: entry, WBPF_AGENT_HOOK_RETURN: return); inlined with run_hit
 * into on_hit and on_return: a hit is one C frame between the trampoline and the program */
static inline __attribute__((always_inline)) void run_list(struct afn *fn, struct wbpf_pt_regs *regs, uint32_t kind)
{
	unsigned top = __atomic_load_n(&fn->top, __ATOMIC_ACQUIRE);
	for (unsigned i = 0; i < top && i < MAX_FN_HOOKS; i++) {
		struct ahook *h = __atomic_load_n(&fn->at[i], __ATOMIC_ACQUIRE);
		if (h && (h->flags & WBPF_AGENT_HOOK_RETURN) == kind && h->enabled) run_hit(h, regs);
	}
}

static void on_return(struct wbpf_pt_regs *regs, void *cookie)
{
	struct afn *fn = cookie;
	if (in_hit) return;
	in_hit = 1;
	unsigned idx = fn_enter(fn);
	run_list(fn, regs, WBPF_AGENT_HOOK_RETURN);
	fn_leave(fn, idx);
	in_hit = 0;
}

static void on_hit(struct wbpf_pt_regs *regs, void *cookie)
{
	struct afn *fn = cookie;
	if (in_hit) return;
	in_hit = 1;
	unsigned idx = fn_enter(fn);
	run_list(fn, regs, 0);
	if (__atomic_load_n(&fn->nret, __ATOMIC_ACQUIRE)) {
		if (wbpf_hook_ret_arm_ro) (void)wbpf_hook_ret_arm_ro(regs, on_return, fn);
		else if (wbpf_hook_ret_arm) (void)wbpf_hook_ret_arm(regs, on_return, fn);
	}
	fn_leave(fn, idx);
	in_hit = 0;
}

/* a hook disabled by its program's fault, reported once (a hit's slow path: run in vec_guarded) */
struct disabled_report {
	struct ahook *h;
	int st;
	uint32_t pc;
	uint64_t addr;
};
__attribute__((noinline)) static void slow_report_disabled(void *arg)
{
	struct disabled_report *r = arg;
	char msg[160];
	snprintf(msg, sizeof msg, "hook %u disabled: program %u stopped with status %d at pc %u (addr 0x%" PRIx64 ")",
		 r->h->id, r->h->prog->id, r->st, (unsigned)r->pc, r->addr);
	send_frame(r->h->sess, WBPF_AGENT_EVENT, 0, &r->h->id, sizeof r->h->id, msg);
}

/* a run that left records reserved or did not finish (hit_end and the fault's report) */
__attribute__((noinline)) static void run_hit_end(struct ahook *h, struct hit *mem, const ebpf_vm_run *run, int st)
{
	hit_end(mem);
	if (st == EBPF_VM_DONE) return;
	h->enabled = 0;
	if (__atomic_exchange_n(&h->reported, 1, __ATOMIC_ACQ_REL)) return;
	struct disabled_report r = { h, st, run->fault.pc, run->fault.addr };
	vec_guarded(slow_report_disabled, &r); /* snprintf: libc, which may use vector registers */
}

static inline __attribute__((always_inline)) void run_hit(struct ahook *h, struct wbpf_pt_regs *regs)
{
	struct hit mem;
	uint8_t stack[EBPF_VM_STACK_SIZE] __attribute__((aligned(16)));
	ebpf_vm_run run; /* its inputs only (hit_start: the regions and data); the engine sets every output */
	const struct aprog *p = h->prog;
	run.stack = stack;
	run.stack_addr = (uintptr_t)stack;
	run.packet_addr = run.packet_size = 0;
	run.budget = RUN_BUDGET;
	hit_start(&mem, &run, h->id, p->refs, regs, sizeof *regs);
	uint64_t args[5] = { (uintptr_t)regs, 0, 0, 0, 0 };
	int st = ebpf_vm_exec(p->prog, &run, args);
	if (__builtin_expect(st != EBPF_VM_DONE || mem.nrecords != 0, 0)) run_hit_end(h, &mem, &run, st);
}

/* ---- syscall programs (syscalls.c): the same run as a hit's, the same guard ---- */
int agent_hit_begin(void)
{
	if (in_hit) return 0;
	in_hit = 1;
	return 1;
}

void agent_hit_end(void) { in_hit = 0; }

const ebpf_vm_prog *agent_prog_vm(const struct aprog *p) { return p->prog; }

int agent_run(const struct aprog *p, uint32_t id, void *ctx, size_t size, char *msg, size_t n)
{
	struct hit mem;
	uint8_t stack[EBPF_VM_STACK_SIZE] __attribute__((aligned(16)));
	ebpf_vm_run run = { .stack = stack, .stack_addr = (uintptr_t)stack, .budget = RUN_BUDGET };
	hit_begin(&mem, &run, id, p->prog, ctx, size);
	uint64_t args[5] = { (uintptr_t)ctx, 0, 0, 0, 0 };
	int st = ebpf_vm_exec(p->prog, &run, args);
	hit_end(&mem);
	if (st == EBPF_VM_DONE) return 0;
	snprintf(msg, n, "program %u stopped with status %d at pc %u (addr 0x%" PRIx64 ")", p->id, st, run.fault.pc, run.fault.addr);
	return st;
}

void agent_event(struct session *s, uint32_t id, const char *msg) { send_frame(s, WBPF_AGENT_EVENT, 0, &id, sizeof id, msg); }

/* ---- the tables: changed under agent_lock (the serve thread, a follower's watcher, dlopen) ---- */
static void put_msg(char *msg, size_t n, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void put_msg(char *msg, size_t n, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, n, fmt, ap);
	va_end(ap);
}

int agent_has_map(const struct session *s, uint32_t id)
{
	for (unsigned i = 0; id && i < s->nmaps; i++)
		if (s->maps[i].id == id) return 1;
	return 0;
}

/* maps map id of session s from fd and notify_fd into a free slot (a dropped map's, else a new one): 0, or an
 * errno with msg. The id is published last: a hit looking up another id never sees a half-set slot */
int agent_map_add(struct session *s, uint32_t id, int fd, int nfd, char *msg, size_t n)
{
	if (!id) return put_msg(msg, n, "map 0: id 0 is reserved"), EINVAL;
	unsigned i = 0;
	while (i < s->nmaps && s->maps[i].id) i++;
	if (i >= MAX_MAPS) return put_msg(msg, n, "map %u: the agent holds %u maps of this host already", id, MAX_MAPS), ENOSPC;
	struct amap *m = &s->maps[i];
	int rc = wbpf_map_open(fd, nfd, &m->m);
	if (rc < 0) return put_msg(msg, n, "map %u: opening fd %d: %s", id, fd, strerror(-rc)), -rc;
	__atomic_store_n(&m->id, id, __ATOMIC_RELEASE);
	if (i == s->nmaps) __atomic_store_n(&s->nmaps, s->nmaps + 1, __ATOMIC_RELEASE);
	put_msg(msg, n, "map %u", id);
	return 0;
}

int agent_has_prog(const struct session *s, uint32_t id)
{
	for (unsigned i = 0; id && i < s->nprogs; i++)
		if (s->progs[i].id == id) return 1;
	return 0;
}

/* frees program id of session s once no hook runs it (its hooks were removed: no hit can be inside it): 0, or
 * ENOENT / EBUSY with msg. Caller holds agent_lock */
static int prog_drop(struct session *s, uint32_t id, char *msg, size_t n)
{
	struct aprog *p = NULL;
	for (unsigned i = 0; id && i < s->nprogs; i++)
		if (s->progs[i].id == id) p = &s->progs[i];
	if (!p) return put_msg(msg, n, "drop prog %u: no program %u", id, id), ENOENT;
	for (unsigned i = 0; i < MAX_HOOKS; i++)
		if (hooks[i].live && hooks[i].prog == p) return put_msg(msg, n, "drop prog %u: hook %u still runs it", id, hooks[i].id), EBUSY;
	int sys = agent_sys_uses(p);
	if (sys) return put_msg(msg, n, "drop prog %u: syscall hook %d still runs it", id, sys), EBUSY;
	free(ebpf_vm_user(p->prog));
	ebpf_vm_free(p->prog);
	*p = (struct aprog){ 0, NULL, NULL };
	put_msg(msg, n, "drop prog %u", id);
	return 0;
}

/* unmaps map id of session s (closing its fds) once no loaded program names it (no hit can reach it): 0, or
 * ENOENT / EBUSY with msg. Caller holds agent_lock */
static int map_drop(struct session *s, uint32_t id, char *msg, size_t n)
{
	struct amap *m = NULL;
	for (unsigned i = 0; id && i < s->nmaps; i++)
		if (s->maps[i].id == id) m = &s->maps[i];
	if (!m) return put_msg(msg, n, "drop map %u: no map %u", id, id), ENOENT;
	for (unsigned i = 0; i < s->nprogs; i++) {
		const struct prog_refs *refs = s->progs[i].prog ? ebpf_vm_user(s->progs[i].prog) : NULL;
		for (unsigned k = 0; refs && k < refs->nmaps; k++)
			if (refs->map_ids[k] == id) return put_msg(msg, n, "drop map %u: program %u still names it", id, s->progs[i].id), EBUSY;
	}
	__atomic_store_n(&m->id, 0, __ATOMIC_RELEASE);
	wbpf_map_close(&m->m, 1);
	put_msg(msg, n, "drop map %u", id);
	return 0;
}

int agent_drop(struct session *s, int is_map, uint32_t id, char *msg, size_t n)
{
	return is_map ? map_drop(s, id, msg, n) : prog_drop(s, id, msg, n);
}

/* loads program id of session s (helpers: nhelpers u32 ids, unaligned) into a free slot: 0, or an errno with msg */
int agent_prog_add(struct session *s, uint32_t id, const uint8_t *helpers, uint32_t nhelpers, const uint8_t *insns, uint32_t insn_len, char *msg, size_t n)
{
	if (!id) return put_msg(msg, n, "prog 0: id 0 is reserved"), EINVAL;
	unsigned slot = 0;
	while (slot < s->nprogs && s->progs[slot].prog) slot++;
	if (slot >= MAX_PROGS) return put_msg(msg, n, "prog %u: the agent holds %u programs of this host already", id, MAX_PROGS), ENOSPC;
	for (uint32_t i = 0; i < nhelpers; i++) {
		uint32_t h;
		memcpy(&h, helpers + 4 * i, 4);
		if (!helper_of(NULL, h)) return put_msg(msg, n, "prog %u: helper %u is not implemented by the agent", id, h), EOPNOTSUPP;
	}
	struct prog_refs *refs = calloc(1, sizeof *refs);
	if (!refs) return put_msg(msg, n, "prog %u: out of memory", id), ENOMEM;
	refs->sess = s; /* its map references are its session's maps */
	/* plain: the agent's helpers read no call pc/id or budget and never move the stack (helpers.c) */
	ebpf_vm_env env = { .helper = helper_of, .map = map_ref, .user = refs, .leaf = leaf_of, .record = record_of, .plain_helpers = 1 };
	ebpf_vm_error err;
	ebpf_vm_prog *prog;
	if (ebpf_vm_load(insns, insn_len, &env, &prog, &err) != EBPF_VM_OK) {
		free(refs);
		return put_msg(msg, n, "%s", err.message), EINVAL;
	}
	s->progs[slot] = (struct aprog){ id, prog, refs };
	if (slot == s->nprogs) __atomic_store_n(&s->nprogs, s->nprogs + 1, __ATOMIC_RELEASE);
	put_msg(msg, n, "prog %u", id);
	return 0;
}

/* ---- attachments (agent_lock) ---- */
static const struct aprog *find_prog(const struct session *s, uint32_t id)
{
	const struct aprog *prog = NULL;
	for (unsigned i = 0; id && i < s->nprogs; i++)
		if (s->progs[i].id == id) prog = &s->progs[i];
	return prog;
}

const struct aprog *agent_find_prog(const struct session *s, uint32_t id) { return find_prog(s, id); }

static struct ahook *find_hook(const struct session *s, uint32_t id)
{
	for (unsigned i = 0; i < MAX_HOOKS; i++)
		if (hooks[i].live && hooks[i].sess == s && hooks[i].id == id) return &hooks[i];
	return NULL;
}

static struct ahook *free_hook(void)
{
	for (unsigned i = 0; i < MAX_HOOKS; i++)
		if (!hooks[i].live) return &hooks[i];
	return NULL;
}

/* the function's entry, hooked before or new; NULL when MAX_FNS functions were hooked already */
static struct afn *fn_of(uintptr_t addr)
{
	for (unsigned i = 0; i < nfns; i++)
		if (fns[i].addr == addr) return &fns[i];
	if (nfns >= MAX_FNS) return NULL;
	fns[nfns].addr = addr;
	return &fns[nfns++];
}

static int fn_slot(const struct afn *fn)
{
	for (int i = 0; i < MAX_FN_HOOKS; i++)
		if (!fn->at[i]) return i;
	return -1;
}

static int fn_empty(const struct afn *fn)
{
	for (int i = 0; i < MAX_FN_HOOKS; i++)
		if (fn->at[i]) return 0;
	return 1;
}

/* waits (up to 2 s) until no hit that may have read fn->at before the last change is running: 1, or 0
 * when one stalled (what it may read must then never be freed) */
static int fn_quiesce(struct afn *fn)
{
	unsigned old = __atomic_fetch_add(&fn->phase, 1, __ATOMIC_SEQ_CST) & 1;
	struct timespec t0, now, nap = { 0, 20000 };
	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (;;) {
		unsigned busy = 0;
		for (unsigned i = 0; i < READER_SLOTS; i++) busy += __atomic_load_n(&fn->readers[i].n[old], __ATOMIC_SEQ_CST);
		if (!busy) break;
		clock_gettime(CLOCK_MONOTONIC, &now);
		if ((now.tv_sec - t0.tv_sec) * 1000000000ll + (now.tv_nsec - t0.tv_nsec) > 2000000000ll)
			return 0; /* a hit stalled: entries are never freed, only reused */
		nanosleep(&nap, NULL);
	}
	return readers_wait(fn, &t0, 2000000000ll); /* and the hits counted in threads' own slots */
}

static void unlist(struct ahook *h)
{
	struct afn *fn = h->fn;
	if (!fn) return; /* pending: never installed on a function */
	for (int i = 0; i < MAX_FN_HOOKS; i++)
		if (fn->at[i] == h) __atomic_store_n(&fn->at[i], NULL, __ATOMIC_SEQ_CST);
	if (h->flags & WBPF_AGENT_HOOK_RETURN) __atomic_sub_fetch(&fn->nret, 1, __ATOMIC_SEQ_CST);
}

/* set by the constructor under LD_PRELOAD (launch mode); a joined agent was dlopen'ed instead */
static int preloaded;

/* a joined agent's interposers (hook/unwind.c) bind to nothing: an exception unwinding through an armed
 * return would meet a return stub and end the process (std::terminate). Refused where unwinding is likely */
static int unwinder_mapped(void)
{
	FILE *f = fopen("/proc/self/maps", "re");
	if (!f) return 1;
	char line[512];
	int found = 0;
	while (!found && fgets(line, sizeof line, f)) found = strstr(line, "/libgcc_s.so") || strstr(line, "/libstdc++.so");
	fclose(f);
	return found;
}

/* puts live hook h (its req set, not listed) on the function at addr: 0, or an errno with msg (h freed) */
static int install(struct ahook *h, uintptr_t addr, char *msg, size_t n)
{
	uint32_t id = h->id;
	struct afn *fn = fn_of(addr);
	if (!fn) return h->live = 0, put_msg(msg, n, "hook %u: the agent hooked %u functions already", id, MAX_FNS), ENOSPC;
	int slot = fn_slot(fn);
	if (slot < 0) return h->live = 0, put_msg(msg, n, "hook %u: 0x%" PRIxPTR " has %u hooks already", id, addr, MAX_FN_HOOKS), ENOSPC;
	h->fn = fn;
	if (h->flags & WBPF_AGENT_HOOK_RETURN) __atomic_add_fetch(&fn->nret, 1, __ATOMIC_SEQ_CST);
	__atomic_store_n(&fn->at[slot], h, __ATOMIC_SEQ_CST);
	if ((unsigned)slot >= fn->top) __atomic_store_n(&fn->top, (unsigned)slot + 1, __ATOMIC_RELEASE);
	if (!fn->hook) {
		struct wbpf_hook_error err;
		struct wbpf_hook *wh;
		/* inline, else the trap tier (an int3) for an entry the relocator refuses */
		if (wbpf_hook_attach_any((void *)addr, h->req.size, on_hit, fn, &wh, &err) != 0) {
			unlist(h);
			fn_quiesce(fn);
			h->live = 0;
			put_msg(msg, n, "hook %u: %s: %s", id, wbpf_hook_code_name(err.code), err.reason);
			return err.code;
		}
		fn->hook = wh;
		if (wbpf_hook_tier(wh) == WBPF_HOOK_TIER_TRAP)
			return put_msg(msg, n, "hook %u at 0x%" PRIxPTR " (trap hook: ~2-3 us per hit; %s)", id, addr, err.reason), 0;
	} else if (wbpf_hook_tier(fn->hook) == WBPF_HOOK_TIER_TRAP) {
		return put_msg(msg, n, "hook %u at 0x%" PRIxPTR " (trap hook: ~2-3 us per hit)", id, addr), 0;
	}
	const char *note = ebpf_vm_engine_note(h->prog->prog); /* the engine's JIT left the program to the interpreter */
	put_msg(msg, n, "hook %u at 0x%" PRIxPTR "%s%s%s", id, addr, note ? " (" : "", note ? note : "", note ? ")" : "");
	return 0;
}

int agent_has_hook(const struct session *s, uint32_t id) { return find_hook(s, id) != NULL; }

/* adds hook r of session s: 0 (set, or *pending: its file is not mapped yet), or an errno with msg */
int agent_hook_add(struct session *s, const struct wbpf_agent_hook *r, int *pending, char *msg, size_t n)
{
	*pending = 0;
	const struct aprog *prog = find_prog(s, r->prog_id);
	if (!prog) return put_msg(msg, n, "hook %u: no program %u", r->id, r->prog_id), ENOENT;
	if (find_hook(s, r->id)) return put_msg(msg, n, "hook %u: the agent has a hook %u already", r->id, r->id), EEXIST;
	struct ahook *h = free_hook();
	if (!h) return put_msg(msg, n, "hook %u: the agent holds %u hooks already", r->id, MAX_HOOKS), ENOSPC;
	if ((r->flags & WBPF_AGENT_HOOK_RETURN) && !preloaded && unwinder_mapped())
		return put_msg(msg, n, "hook %u: a return probe in a joined process that maps libgcc_s or libstdc++ is refused: an exception "
			       "unwinding through an armed call would end the process (a dlopen'ed agent cannot interpose the unwinder); "
			       "launch the command under wasm-bpf instead", r->id), EOPNOTSUPP;
	*h = (struct ahook){ .sess = s, .id = r->id, .flags = r->flags & WBPF_AGENT_HOOK_RETURN, .prog = prog, .enabled = 1, .live = 1, .req = *r };
	uintptr_t addr = (uintptr_t)wbpf_maps_find(0, r);
	if (!addr) {
		h->pending = 1;
		__atomic_add_fetch(&npending, 1, __ATOMIC_SEQ_CST);
		*pending = 1;
		put_msg(msg, n, "hook %u pending: file offset 0x%" PRIx64 " of dev %u:%u inode %" PRIu64 " is not mapped executable",
			r->id, r->file_offset, gnu_dev_major(r->dev), gnu_dev_minor(r->dev), r->ino);
		return 0;
	}
	return install(h, addr, msg, n);
}

/* removes hook id of session s: 0, or ENOENT; msg says so (and when the entry stays patched) */
int agent_hook_remove(struct session *s, uint32_t id, char *msg, size_t n)
{
	struct ahook *h = find_hook(s, id);
	if (!h) return put_msg(msg, n, "unhook %u: no hook %u", id, id), ENOENT;
	if (h->pending) {
		h->pending = 0;
		__atomic_sub_fetch(&npending, 1, __ATOMIC_SEQ_CST);
		h->live = 0;
		return put_msg(msg, n, "unhook %u", id), 0;
	}
	struct afn *fn = h->fn;
	unlist(h);
	char note[256] = "";
	if (fn_empty(fn) && fn->hook) {
		struct wbpf_hook_error err;
		if (wbpf_hook_detach(fn->hook, &err) == 0) fn->hook = NULL;
		else snprintf(note, sizeof note, " (the entry stays patched, running nothing: %s: %s)", wbpf_hook_code_name(err.code), err.reason);
	}
	fn_quiesce(fn); /* from here no hit reads h: it may be reused */
	h->live = 0;
	put_msg(msg, n, "unhook %u%s", id, note);
	return 0;
}

/* pending hooks whose file is mapped now (after a dlopen) are set; one refused is dropped (an EVENT) */
void agent_hooks_retry(void)
{
	if (!__atomic_load_n(&npending, __ATOMIC_SEQ_CST)) return;
	int was = in_hit;
	in_hit = 1; /* an application thread (dlopen): calling a hooked function here runs no program */
	for (unsigned i = 0; i < MAX_HOOKS; i++) {
		struct ahook *h = &hooks[i];
		if (!h->live || !h->pending) continue;
		uintptr_t addr = (uintptr_t)wbpf_maps_find(0, &h->req);
		if (!addr) continue;
		h->pending = 0;
		__atomic_sub_fetch(&npending, 1, __ATOMIC_SEQ_CST);
		char msg[256];
		uint32_t id = h->id;
		if (install(h, addr, msg, sizeof msg) != 0) send_frame(h->sess, WBPF_AGENT_EVENT, 0, &id, sizeof id, msg);
	}
	in_hit = was;
}

unsigned agent_npending(void) { return __atomic_load_n(&npending, __ATOMIC_SEQ_CST); }

/* ---- requests (a session's serve thread; what the root session's succeed goes to the registry for the
 * descendants) ---- */
static void do_map(struct session *s, uint32_t seq, const uint8_t *p, uint32_t len, const int *fds, int nfds)
{
	struct wbpf_agent_map r;
	char msg[256];
	if (len < sizeof r) return reply(s, seq, EINVAL, "map: short request");
	memcpy(&r, p, sizeof r);
	int fd = nfds > 0 ? fds[0] : r.fd, nfd = nfds > 1 ? fds[1] : r.notify_fd;
	int rc = agent_map_add(s, r.id, fd, nfd, msg, sizeof msg);
	if (rc == 0 && s->root && agent_reg) {
		/* exec'd descendants inherit the fds at the same numbers */
		(void)fcntl(fd, F_SETFD, 0);
		if (nfd >= 0) (void)fcntl(nfd, F_SETFD, 0);
		(void)reg_add_map(agent_reg, r.id, fd, nfd);
	}
	reply(s, seq, rc, "%s", msg);
}

static void do_prog(struct session *s, uint32_t seq, const uint8_t *p, uint32_t len)
{
	struct wbpf_agent_prog r;
	char msg[256];
	if (len < sizeof r) return reply(s, seq, EINVAL, "prog: short request");
	memcpy(&r, p, sizeof r);
	if ((uint64_t)sizeof r + 4ull * r.nhelpers + r.insn_len != len) return reply(s, seq, EINVAL, "prog %u: bad length", r.id);
	const uint8_t *helpers = p + sizeof r, *insns = p + sizeof r + 4 * r.nhelpers;
	int rc = agent_prog_add(s, r.id, helpers, r.nhelpers, insns, r.insn_len, msg, sizeof msg);
	if (rc == 0 && s->root && agent_reg && reg_add_prog(agent_reg, r.id, helpers, r.nhelpers, insns, r.insn_len) < 0)
		snprintf(msg, sizeof msg, "prog %u (the run's registry is full: descendants will not run it)", r.id);
	reply(s, seq, rc, "%s", msg);
}

static void do_hook(struct session *s, uint32_t seq, const uint8_t *p, uint32_t len)
{
	struct wbpf_agent_hook r;
	char msg[256];
	int pending;
	if (len < sizeof r) return reply(s, seq, EINVAL, "hook: short request");
	memcpy(&r, p, sizeof r);
	if (agent_has_sys(s, r.id)) return reply(s, seq, EEXIST, "hook %u: id in use", r.id);
	int rc = agent_hook_add(s, &r, &pending, msg, sizeof msg);
	if (rc == 0 && s->root && agent_reg && reg_add_hook(agent_reg, &r) < 0) {
		size_t l = strlen(msg);
		snprintf(msg + l, sizeof msg - l, " (the run's registry is full: not in descendants)");
	}
	reply(s, seq, rc, "%s", msg);
}

static void do_unhook(struct session *s, uint32_t seq, const uint8_t *p, uint32_t len)
{
	uint32_t id;
	char msg[512];
	if (len < sizeof id) return reply(s, seq, EINVAL, "unhook: short request");
	memcpy(&id, p, sizeof id);
	if (s->root && agent_reg) reg_unhook(agent_reg, id);
	if (agent_has_sys(s, id)) return reply(s, seq, agent_sys_remove(s, id, msg, sizeof msg), "%s", msg);
	int rc = agent_hook_remove(s, id, msg, sizeof msg);
	reply(s, seq, rc, "%s", msg);
}

/* a syscall program (syscalls.c); fork children keep it (the rewritten text and the tables are copied),
 * exec'd programs apply it from the registry */
static void do_syscall(struct session *s, uint32_t seq, const uint8_t *p, uint32_t len)
{
	struct wbpf_agent_syscall r;
	char msg[512];
	if (len != sizeof r + 64) return reply(s, seq, EINVAL, "syscall: a %u-byte request (%zu expected)", len, sizeof r + 64);
	memcpy(&r, p, sizeof r);
	int rc = agent_sys_add(s, &r, p + sizeof r, msg, sizeof msg);
	if (rc == 0 && s->root && agent_reg && reg_add_sys(agent_reg, &r, p + sizeof r) < 0) {
		size_t l = strlen(msg);
		snprintf(msg + l, sizeof msg - l, " (the run's registry is full: not in exec'd descendants)");
	}
	reply(s, seq, rc, "%s", msg);
}

/* the task_struct image's layout (helpers.c); descendants take it from the registry */
static void do_task(struct session *s, uint32_t seq, const uint8_t *p, uint32_t len)
{
	struct wbpf_agent_task t;
	char msg[200];
	if (len != sizeof t) return reply(s, seq, EINVAL, "task: a %u-byte request (%zu expected)", len, sizeof t);
	memcpy(&t, p, sizeof t);
	int rc = agent_task_layout_set(&t, msg, sizeof msg);
	if (rc == 0 && s->root && agent_reg) reg_set_task(agent_reg, &t);
	reply(s, seq, rc, "%s", msg);
}

static void do_drop(struct session *s, uint32_t seq, const uint8_t *p, uint32_t len)
{
	struct wbpf_agent_drop r;
	char msg[256];
	if (len < sizeof r) return reply(s, seq, EINVAL, "drop: short request");
	memcpy(&r, p, sizeof r);
	if (r.kind != WBPF_AGENT_DROP_PROG && r.kind != WBPF_AGENT_DROP_MAP) return reply(s, seq, EINVAL, "drop: unknown kind %u", r.kind);
	int rc = agent_drop(s, r.kind == WBPF_AGENT_DROP_MAP, r.id, msg, sizeof msg);
	if (rc == 0 && s->root && agent_reg) reg_drop(agent_reg, r.kind == WBPF_AGENT_DROP_MAP, r.id);
	reply(s, seq, rc, "%s", msg);
}

/* ---- START: the constructor waits for it (or EOF) before the command's main ---- */
static pthread_mutex_t start_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t start_cond = PTHREAD_COND_INITIALIZER;
static int started;

static void release_start(void)
{
	pthread_mutex_lock(&start_lock);
	started = 1;
	pthread_cond_broadcast(&start_cond);
	pthread_mutex_unlock(&start_lock);
}

static void wait_start(void)
{
	pthread_mutex_lock(&start_lock);
	while (!started) pthread_cond_wait(&start_cond, &start_lock);
	pthread_mutex_unlock(&start_lock);
}

static void do_start(struct session *s, uint32_t seq)
{
	reply(s, seq, 0, "start"); /* first: a command that exits at once must not take the answer with it */
	release_start();
}

/* ---- sessions: claimed by the launch's constructor, a join (join.c) or a descendant following the
 * registry; ended by EOF (the host closed or died) or the run's end ---- */
static struct session *root_sess; /* the registry's session (launch mode, and descendants), or NULL */

static struct session *claim(void)
{
	for (unsigned i = 0; i < MAX_SESSIONS; i++) {
		struct session *s = &sessions[i];
		int free_ = SESS_FREE;
		if (!__atomic_compare_exchange_n(&s->state, &free_, SESS_USED, 0, __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE)) continue;
		s->chan = -1;
		s->watch_fd = -1;
		s->root = 0;
		s->notice_n = 0;
		pthread_mutex_init(&s->send_lock, NULL);
		pthread_mutex_init(&s->notice_lock, NULL);
		return s;
	}
	return NULL;
}

/* removes every hook of session s (the function is unpatched with its last hook, whoever's), then, when no
 * hit can read them any more, unmaps its maps (closing their fds) and frees its programs and its slot; a
 * stalled hit leaves them as they are and the slot is never reused. Caller holds agent_lock */
static void end_session(struct session *s)
{
	struct afn *touched[MAX_FNS];
	unsigned nt = 0;
	for (unsigned i = 0; i < MAX_HOOKS; i++) {
		struct ahook *h = &hooks[i];
		if (!h->live || h->sess != s) continue;
		h->enabled = 0;
		if (h->pending) h->pending = 0, __atomic_sub_fetch(&npending, 1, __ATOMIC_SEQ_CST);
		struct afn *fn = h->fn;
		unlist(h);
		if (!fn) continue;
		unsigned k = 0;
		while (k < nt && touched[k] != fn) k++;
		if (k == nt) touched[nt++] = fn;
	}
	int quiet = 1;
	for (unsigned k = 0; k < nt; k++) {
		struct wbpf_hook_error err;
		if (fn_empty(touched[k]) && touched[k]->hook && wbpf_hook_detach(touched[k]->hook, &err) == 0) touched[k]->hook = NULL;
	}
	for (unsigned k = 0; k < nt; k++) quiet &= fn_quiesce(touched[k]);
	quiet &= agent_sys_end(s);
	for (unsigned i = 0; i < MAX_HOOKS; i++)
		if (hooks[i].live && hooks[i].sess == s) hooks[i].live = 0;
	if (s == root_sess) root_sess = NULL;
	if (!quiet) {
		__atomic_store_n(&s->state, SESS_DEAD, __ATOMIC_RELEASE);
		return;
	}
	for (unsigned i = 0; i < s->nmaps; i++)
		if (s->maps[i].id) s->maps[i].id = 0, wbpf_map_close(&s->maps[i].m, 1);
	for (unsigned i = 0; i < s->nprogs; i++) {
		if (!s->progs[i].prog) continue;
		free(ebpf_vm_user(s->progs[i].prog));
		ebpf_vm_free(s->progs[i].prog);
		s->progs[i] = (struct aprog){ 0, NULL, NULL };
	}
	__atomic_store_n(&s->nmaps, 0, __ATOMIC_RELEASE);
	__atomic_store_n(&s->nprogs, 0, __ATOMIC_RELEASE);
	s->root = 0;
	__atomic_store_n(&s->state, SESS_FREE, __ATOMIC_RELEASE);
}

struct session *agent_root(void)
{
	if (!root_sess && (root_sess = claim())) root_sess->root = 1;
	return root_sess;
}

void agent_end_root(void)
{
	if (root_sess) end_session(root_sess);
}

/* ---- the channel ---- */
/* one request of session s: read, answer; -1 at EOF (or a frame too large to be ours) */
static int serve_one(struct session *s)
{
	struct wbpf_agent_frame f;
	int fds[WBPF_FRAME_MAX_FDS], nfds = 0;
	uint8_t *p;
	int rc = wbpf_frame_read(s->chan, &f, &p, fds, &nfds);
	if (!rc) {
		if (f.type != WBPF_AGENT_START) pthread_mutex_lock(&agent_lock);
		switch (f.type) {
		case WBPF_AGENT_MAP: do_map(s, f.seq, p, f.len, fds, nfds); nfds = 0; break;
		case WBPF_AGENT_PROG: do_prog(s, f.seq, p, f.len); break;
		case WBPF_AGENT_HOOK: do_hook(s, f.seq, p, f.len); break;
		case WBPF_AGENT_START: do_start(s, f.seq); break;
		case WBPF_AGENT_UNHOOK: do_unhook(s, f.seq, p, f.len); break;
		case WBPF_AGENT_DROP: do_drop(s, f.seq, p, f.len); break;
		case WBPF_AGENT_SYSCALL: do_syscall(s, f.seq, p, f.len); break;
		case WBPF_AGENT_TASK: do_task(s, f.seq, p, f.len); break;
		default: reply(s, f.seq, EINVAL, "unknown request type %u", f.type);
		}
		if (f.type != WBPF_AGENT_START) pthread_mutex_unlock(&agent_lock);
	}
	for (int i = 0; i < nfds; i++) close(fds[i]);
	free(p);
	return rc;
}

/* session s's serve thread until EOF; then only s's hooks go (the root's also ends the registry's run) */
static void *serve(void *arg)
{
	struct session *s = arg;
	sigset_t all;
	sigfillset(&all);
	sigdelset(&all, SIGTRAP); /* never blocked: a trap hook hit would be fatal (hook/sigtrap.c) */
	pthread_sigmask(SIG_BLOCK, &all, NULL); /* the target's signals go to its own threads */
	serving = s;
	in_hit = 1; /* this thread calling a hooked function runs no program */
	for (;;) {
		struct pollfd pf = { .fd = s->chan, .events = POLLIN };
		int r = poll(&pf, 1, 100); /* wakes to send what hits queued */
		flush_notices(s);
		wbpf_hook_signals_check(); /* a joined program's own sigaction(SIGTRAP) is not interposed */
		if (r < 0 && errno != EINTR) break;
		if (r > 0 && serve_one(s) < 0) break;
	}
	int root = s->root;
	pthread_mutex_lock(&agent_lock);
	if (root && agent_reg) reg_end(agent_reg); /* the descendants unhook too */
	int chan = s->chan;
	s->chan = -1; /* before its slot may be claimed again */
	end_session(s);
	close(chan);
	pthread_mutex_unlock(&agent_lock);
	serving = NULL;
	if (root) release_start();
	return NULL;
}

/* ---- join mode's sessions (join.c) ---- */
struct session *agent_claim(void)
{
	struct session *s = claim();
	if (s) follow_atfork(); /* a fork child drops the joined sessions (agent_child_reset) */
	return s;
}

void agent_unclaim(struct session *s)
{
	__atomic_store_n(&s->state, SESS_FREE, __ATOMIC_RELEASE);
}

void agent_serve_joined(struct session *s, int fd)
{
	s->chan = fd;
	release_start();
	(void)serve(s);
}

/* session s's serve thread on channel fd; 0, or -1 when it cannot start */
static int serve_start(struct session *s, int fd)
{
	s->chan = fd;
	pthread_t t;
	if (pthread_create(&t, NULL, serve, s) != 0) {
		s->chan = -1;
		return -1;
	}
	pthread_detach(t);
	return 0;
}

/* a process that was the root exec'd a new program (this one): the same channel, served again by the root
 * session (the registry's, applied by the caller); its main runs at once (START came before the exec) */
int agent_serve_again(int fd)
{
	started = 1;
	preloaded = 1;
	struct session *s = agent_root();
	return s ? serve_start(s, fd) : -1;
}

/* in a fork child (the only thread): the channels are the parent's (never ours to use) and the locks may
 * have been held by threads that do not exist here. Every session's hooks stay: the root session's follow
 * the registry (follow.c), a joined session's keep running what they ran at the fork until its host hangs
 * up (agent_joined_check); a session still waiting for its channel (a join's hand-off) is dropped */
void agent_child_reset(void)
{
	pthread_mutex_init(&agent_lock, NULL);
	/* hits of the parent's other threads counted there never leave here: a removal must not wait for them */
	for (unsigned i = 0; i < nfns; i++) memset(fns[i].readers, 0, sizeof fns[i].readers);
	readers_child_reset();
	for (unsigned i = 0; i < MAX_SESSIONS; i++) {
		struct session *s = &sessions[i];
		pthread_mutex_init(&s->send_lock, NULL);
		pthread_mutex_init(&s->notice_lock, NULL);
		s->notice_n = 0;
		if (s->state != SESS_USED) continue;
		int chan = s->chan;
		s->chan = -1;
		if (s == root_sess) continue; /* its channel: descendants poll it for the host's hang-up (registry.c) */
		if (chan >= 0) s->watch_fd = chan;
		else if (s->watch_fd < 0) end_session(s);
	}
}

/* a fork child's joined sessions whose host hung up (closed its end or died) end here too: their hooks go,
 * their maps are unmapped. The number still followed. Caller holds agent_lock */
unsigned agent_joined_check(void)
{
	unsigned left = 0;
	for (unsigned i = 0; i < MAX_SESSIONS; i++) {
		struct session *s = &sessions[i];
		if (s->state != SESS_USED || s->watch_fd < 0) continue;
		struct pollfd pf = { .fd = s->watch_fd, .events = POLLRDHUP };
		if (poll(&pf, 1, 0) == 0) {
			left++;
			continue;
		}
		int fd = s->watch_fd;
		s->watch_fd = -1;
		end_session(s);
		close(fd);
	}
	return left;
}

__attribute__((constructor)) static void wbpf_agent_init(void)
{
#ifdef WBPF_VECTOR_FREE
	wbpf_hook_set_vector_free(1); /* the hit path is built -mgeneral-regs-only (Makefile GPR) */
#endif
	const char *s = getenv("WBPF_AGENT_FD");
	if (!s || !*s) return follow_exec(); /* a descendant of a traced process, or nothing to do */
	char *end;
	long fd = strtol(s, &end, 10);
	if (*end || fd < 0 || fd > 65535) return;
	/* children and exec'd programs must not serve this host's channel (they'd race on it): they follow the
	 * registry instead (follow.c) */
	unsetenv("WBPF_AGENT_FD");
	preloaded = 1;
	struct session *root = agent_root();
	if (!root) return;
	agent_reg = reg_create((int)fd);
	if (agent_reg) follow_atfork();
	if (serve_start(root, (int)fd) != 0) {
		root_sess = NULL;
		agent_unclaim(root);
		return;
	}
	wait_start(); /* the command's main runs once the host says START (or goes away) */
	agent_sched_exec(); /* the launched command's exec, as the kernel reports it */
}
