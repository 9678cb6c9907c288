/* Process events in the ptrace tier: tp/sched/sched_process_exec|exit|fork programs (the SYSCALL frame's SCHED
 * flag, lib/proto.h; the 64-byte sched table of backends/userspace/syscalls/fieldtable.ts) run in the tracer's
 * engine at the ptrace events it gets anyway, with the kernel's record layout (the table the host sends) and
 * the kernel's current task at that tracepoint:
 *
 * - exec: PTRACE_EVENT_EXEC (the new image is in place, as at the kernel's trace_sched_process_exec): the
 *   exec'd task; filename the new image's AT_EXECFN (bprm->filename: the path as given to execve), pid its
 *   tgid, old_pid the tid that called execve (the event's message). The launched command's own exec (before
 *   START, before any program was attached) runs at START, as the kernel's for a command started after attach.
 * - exit: PTRACE_EVENT_EXIT (PTRACE_O_TRACEEXIT), every thread's, deaths by signal included (SIGKILL's too:
 *   Linux 6.18 stops a SIGKILLed tracee there); the exiting thread; its exit code (the event's
 *   message: the wait status' code) in the task image's exit_code; group_dead when no other thread of its
 *   process is left that has not reached its own exit stop.
 * - fork: PTRACE_EVENT_FORK|VFORK|CLONE (threads too, as the kernel's fires for every new task) in the parent's
 *   context, before the child runs an instruction (the tracer holds it until then): parent_comm/parent_pid the
 *   forking thread's, child_comm the same name (copied at the fork), child_pid the new tid.
 *
 * And the task_struct image for bpf_get_current_task(_btf) (the TASK frame): per call, the current traced
 * thread's pid, tgid, comm, exit_code and start time (/proc/TGID/task/TID/stat), real_parent and parent
 * pointing at a second image with the parent's tgid as pid and tgid; probe_read_kernel(_str) copy from the two
 * images only. */
#define _GNU_SOURCE
#include <elf.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "../hook/hook.h"
#include "../lib/agent.h"
#include "../lib/frames.h"
#include "../sys/record.h"
#include "tracer.h"

#define MAX_TSCHED 32
#define REC_MAX 512
#define SCHED_TABLE_VERSION 0x5301 /* fieldtable.ts's SCHED_TABLE_VERSION */
#define SCHED_SLOTS 8
enum { S_TYPE, S_FLAGS, S_PREEMPT, S_PID, S_F0, S_F1, S_F2, S_F3 };
static const char *const kind_name[3] = { "exec", "exit", "fork" };

struct tsched {
	uint32_t id, prog;
	int kind, live, disabled;
	uint32_t size;
	uint16_t type;
	struct wbpf_sys_slot slot[SCHED_SLOTS];
};
static struct tsched tscheds[MAX_TSCHED];

static struct tsched *sched_find(uint32_t id)
{
	for (unsigned i = 0; i < MAX_TSCHED; i++)
		if (tscheds[i].live && tscheds[i].id == id) return &tscheds[i];
	return NULL;
}
int sched_has(uint32_t id) { return sched_find(id) != NULL; }
int sched_uses_prog(uint32_t prog)
{
	for (unsigned i = 0; i < MAX_TSCHED; i++)
		if (tscheds[i].live && tscheds[i].prog == prog) return 1;
	return 0;
}
int sched_wants(int kind)
{
	for (unsigned i = 0; i < MAX_TSCHED; i++)
		if (tscheds[i].live && !tscheds[i].disabled && tscheds[i].kind == kind) return 1;
	return 0;
}
void sched_end(void)
{
	for (unsigned i = 0; i < MAX_TSCHED; i++) tscheds[i].live = 0;
}

int sched_add(const struct wbpf_agent_syscall *r, const uint8_t *b, char *msg, size_t n)
{
	if (r->flags != WBPF_AGENT_SYSCALL_SCHED) return wbpf_frame_msg(msg, n, EINVAL, "sched hook %u: flags %#x: SCHED goes with no other flag", r->id, r->flags);
	if (!r->id || r->id >= 0xfffffffeu) return wbpf_frame_msg(msg, n, EINVAL, "sched hook %u: ids 0, 0xfffffffe and 0xffffffff are reserved", r->id);
	if (sched_find(r->id) || sys_has(r->id) || tables_hook(r->id)) return wbpf_frame_msg(msg, n, EEXIST, "sched hook %u: id in use", r->id);
	if (!tables_prog(r->prog_id)) return wbpf_frame_msg(msg, n, ENOENT, "sched hook %u: no program %u", r->id, r->prog_id);
	uint16_t v, kind, type;
	uint32_t size;
	memcpy(&v, b, 2), memcpy(&kind, b + 2, 2), memcpy(&size, b + 4, 4), memcpy(&type, b + 8, 2);
	if (v != SCHED_TABLE_VERSION) return wbpf_frame_msg(msg, n, EINVAL, "sched hook %u: sched table version 0x%x (0x%x expected)", r->id, v, SCHED_TABLE_VERSION);
	if (kind > WBPF_AGENT_SCHED_FORK) return wbpf_frame_msg(msg, n, EINVAL, "sched hook %u: sched event %u (exec 0, exit 1, fork 2)", r->id, kind);
	if (kind != r->nr) return wbpf_frame_msg(msg, n, EINVAL, "sched hook %u: the table is for event %u, the frame says %u", r->id, kind, r->nr);
	if (size < 8 || size > 256) return wbpf_frame_msg(msg, n, EINVAL, "sched hook %u: a %u-byte sched record", r->id, size);
	struct tsched a = { .id = r->id, .prog = r->prog_id, .kind = kind, .live = 1, .size = size, .type = type };
	for (int i = 0; i < SCHED_SLOTS; i++) {
		memcpy(&a.slot[i].offset, b + 12 + 4 * i, 2), memcpy(&a.slot[i].size, b + 14 + 4 * i, 2);
		if (a.slot[i].size && (uint32_t)a.slot[i].offset + a.slot[i].size > size)
			return wbpf_frame_msg(msg, n, EINVAL, "sched hook %u: sched slot %d past the record", r->id, i);
		if (a.slot[i].size > 16) return wbpf_frame_msg(msg, n, EINVAL, "sched hook %u: sched slot %d of %u bytes", r->id, i, a.slot[i].size);
	}
	struct tsched *s = NULL;
	for (unsigned i = 0; i < MAX_TSCHED && !s; i++)
		if (!tscheds[i].live) s = &tscheds[i];
	if (!s) return wbpf_frame_msg(msg, n, ENOSPC, "sched hook %u: the tracer holds %d sched hooks already", r->id, MAX_TSCHED);
	*s = a;
	static const char *const how[3] = { "at each PTRACE_EVENT_EXEC, in the exec'd task", "at each PTRACE_EVENT_EXIT, in the exiting thread",
					    "at each PTRACE_EVENT_FORK|VFORK|CLONE, in the parent, before the child runs" };
	return wbpf_frame_msg(msg, n, 0, "sched hook %u on sched_process_%s (ptrace tier: %s)", r->id, kind_name[kind], how[kind]);
}

int sched_remove(uint32_t id, int *status, char *msg, size_t n)
{
	struct tsched *a = sched_find(id);
	if (!a) return 0;
	a->live = 0;
	*status = wbpf_frame_msg(msg, n, 0, "unhook %u", id);
	return 1;
}

/* ---- what /proc says of a traced thread ---- */

/* its name (TASK_COMM_LEN 16, NUL-terminated) */
static void thread_comm(pid_t tgid, pid_t tid, char comm[17])
{
	char path[64];
	memset(comm, 0, 17);
	snprintf(path, sizeof path, "/proc/%d/task/%d/comm", (int)tgid, (int)tid);
	FILE *f = fopen(path, "re");
	if (f) {
		if (!fgets(comm, 17, f)) comm[0] = 0;
		fclose(f);
	}
	comm[strcspn(comm, "\n")] = 0;
	comm[15] = 0;
}

/* field k (1-based, as proc(5) counts) of /proc/TGID/task/TID/stat; 0 unknown */
static long long stat_field(pid_t tgid, pid_t tid, int k)
{
	char path[64], buf[1024];
	snprintf(path, sizeof path, "/proc/%d/task/%d/stat", (int)tgid, (int)tid);
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) return 0;
	ssize_t r = read(fd, buf, sizeof buf - 1);
	close(fd);
	if (r <= 0) return 0;
	buf[r] = 0;
	char *s = strrchr(buf, ')'); /* comm may hold spaces and parentheses: fields count from the last ')' */
	if (!s || !s[1]) return 0;
	s += 2; /* field 3 */
	for (int f = 3; f < k && s; f++)
		if ((s = strchr(s, ' '))) s++;
	return s ? strtoll(s, NULL, 10) : 0;
}

/* ---- the task_struct image ---- */
static struct wbpf_agent_task layout; /* size 0: none sent (get_current_task returns NULL) */
static uint8_t *img;                  /* 2 * layout.size: the current thread's, its parent's */

int task_layout_set(const uint8_t *p, uint32_t len, char *msg, size_t n)
{
	struct wbpf_agent_task t;
	if (len < sizeof t) return wbpf_frame_msg(msg, n, EINVAL, "task layout: short request");
	memcpy(&t, p, sizeof t);
	if (t.size == 0 || t.size > WBPF_AGENT_TASK_MAX) return wbpf_frame_msg(msg, n, EINVAL, "task layout: a %u-byte task_struct (1..%u)", t.size, WBPF_AGENT_TASK_MAX);
	uint32_t off[8] = { t.pid, t.tgid, t.real_parent, t.parent, t.comm, t.exit_code, t.start_time, t.start_boottime };
	static const uint32_t width[8] = { 4, 4, 8, 8, 16, 4, 8, 8 };
	for (int i = 0; i < 8; i++)
		if (off[i] != WBPF_AGENT_TASK_NONE && ((uint64_t)off[i] + width[i] > t.size || off[i] % (width[i] == 16 ? 1 : width[i])))
			return wbpf_frame_msg(msg, n, EINVAL, "task layout: field %d at %u does not fit a %u-byte task_struct", i, off[i], t.size);
	uint8_t *m = calloc(2, t.size);
	if (!m) return wbpf_frame_msg(msg, n, ENOMEM, "task layout: %u bytes", 2 * t.size);
	free(img);
	img = m;
	layout = t;
	return wbpf_frame_msg(msg, n, 0, "task layout: %u-byte task_struct image (ptrace tier: filled from /proc at each call)", t.size);
}

static void put32(uint8_t *b, uint32_t off, uint32_t v)
{
	if (off != WBPF_AGENT_TASK_NONE) memcpy(b + off, &v, 4);
}
static void put64(uint8_t *b, uint32_t off, uint64_t v)
{
	if (off != WBPF_AGENT_TASK_NONE) memcpy(b + off, &v, 8);
}
static uint64_t clock_ns(clockid_t c)
{
	struct timespec ts;
	clock_gettime(c, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* the current thread's image (cur_tid, cur_tgid, cur_task), refilled: its address, or 0 without a layout */
uintptr_t task_image(uint64_t *size)
{
	if (!layout.size || !img) return 0;
	uint32_t sz = layout.size;
	uint8_t *self = img, *parent = img + sz;
	memset(img, 0, 2 * (size_t)sz);
	put32(self, layout.pid, (uint32_t)cur_tid);
	put32(self, layout.tgid, (uint32_t)cur_tgid);
	put64(self, layout.real_parent, (uintptr_t)parent);
	put64(self, layout.parent, (uintptr_t)parent);
	put32(self, layout.exit_code, cur_task ? (uint32_t)cur_task->exit_code : 0);
	if (layout.comm != WBPF_AGENT_TASK_NONE) {
		char comm[17];
		thread_comm(cur_tgid, cur_tid, comm);
		memcpy(self + layout.comm, comm, 16);
	}
	if (layout.start_time != WBPF_AGENT_TASK_NONE || layout.start_boottime != WBPF_AGENT_TASK_NONE) {
		/* starttime: clock ticks (USER_HZ 100) since boot; start_time is CLOCK_MONOTONIC at the fork */
		uint64_t boot_ns = (uint64_t)stat_field(cur_tgid, cur_tid, 22) * (1000000000ull / 100);
		uint64_t mono = clock_ns(CLOCK_MONOTONIC), boot = clock_ns(CLOCK_BOOTTIME);
		put64(self, layout.start_boottime, boot_ns);
		put64(self, layout.start_time, boot_ns - (boot - mono));
	}
	/* the parent: its process (the kernel's real_parent is a thread of it; bootstrap reads its tgid) */
	pid_t ppid = (pid_t)stat_field(cur_tgid, cur_tid, 4);
	put32(parent, layout.pid, (uint32_t)ppid);
	put32(parent, layout.tgid, (uint32_t)ppid);
	*size = 2ull * sz;
	return (uintptr_t)img;
}

/* [src, src+len) within the images */
int task_readable(uint64_t src, uint64_t len)
{
	uintptr_t a = (uintptr_t)img;
	uint64_t total = 2ull * layout.size;
	return a && layout.size && len <= total && src >= a && src - a <= total - len;
}
uint64_t task_image_end(void) { return (uintptr_t)img + 2ull * layout.size; }

/* ---- the records ---- */
static void put_int(uint8_t *rec, struct wbpf_sys_slot sl, uint64_t v)
{
	if (sl.size == 1 || sl.size == 2 || sl.size == 4 || sl.size == 8) memcpy(rec + sl.offset, &v, sl.size); /* little-endian */
}
/* a string field: inline (truncated, NUL-padded) or a __data_loc (the text at *tail, which moves on) */
static void put_str(uint8_t *rec, size_t cap, struct wbpf_sys_slot sl, const char *text, size_t *tail)
{
	size_t len = strnlen(text, 4095);
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

struct ev {
	const char *filename; /* exec */
	pid_t old_pid;        /* exec */
	int group_dead;       /* exit */
	pid_t child;          /* fork */
};

static void run_kind(struct task *t, int kind, const struct ev *e)
{
	struct user_regs_struct regs;
	struct wbpf_pt_regs pr = { 0 };
	_Static_assert(sizeof pr <= sizeof regs, "pt_regs is a prefix of user_regs_struct");
	if (regs_get(t->tid, &regs) == 0) memcpy(&pr, &regs, sizeof pr);
	pid_t tgid = task_tgid(t);
	char comm[17];
	thread_comm(tgid, t->tid, comm);
	uint8_t buf[REC_MAX + sizeof pr] __attribute__((aligned(16)));
	for (unsigned i = 0; i < MAX_TSCHED; i++) {
		struct tsched *a = &tscheds[i];
		if (!a->live || a->disabled || a->kind != kind) continue;
		memset(buf, 0, REC_MAX);
		size_t tail = a->size;
		put_int(buf, a->slot[S_TYPE], a->type);
		put_int(buf, a->slot[S_PID], (uint32_t)t->tid);
		if (kind == WBPF_AGENT_SCHED_EXEC) {
			put_str(buf, REC_MAX, a->slot[S_F0], e->filename, &tail);
			put_int(buf, a->slot[S_F1], (uint32_t)tgid);
			put_int(buf, a->slot[S_F2], (uint32_t)e->old_pid);
		} else if (kind == WBPF_AGENT_SCHED_EXIT) {
			put_str(buf, REC_MAX, a->slot[S_F0], comm, &tail);
			put_int(buf, a->slot[S_F1], (uint32_t)t->tid);
			long long prio = stat_field(tgid, t->tid, 18); /* proc(5)'s priority: the kernel's prio - 100 */
			put_int(buf, a->slot[S_F2], (uint32_t)(prio + 100));
			put_int(buf, a->slot[S_F3], (uint64_t)!!e->group_dead);
		} else {
			put_str(buf, REC_MAX, a->slot[S_F0], comm, &tail);
			put_int(buf, a->slot[S_F1], (uint32_t)t->tid);
			put_str(buf, REC_MAX, a->slot[S_F2], comm, &tail); /* the child's name is the parent's, copied at the fork */
			put_int(buf, a->slot[S_F3], (uint32_t)e->child);
		}
		/* the kernel writes its pt_regs pointer over the first 8 bytes: here the image after the record */
		uint64_t rp = (uint64_t)(uintptr_t)(buf + tail);
		memcpy(buf, &rp, 8);
		memcpy(buf + tail, &pr, sizeof pr);
		char why[200];
		if (tables_exec(a->id, a->prog, t, buf, tail + sizeof pr, why, sizeof why) == 0) continue;
		a->disabled = 1;
		char m[300];
		snprintf(m, sizeof m, "sched hook %u (sched_process_%s) disabled: %s; the process ran on", a->id, kind_name[kind], why);
		chan_event(a->id, m);
	}
}

/* the exec'd image's AT_EXECFN, read from its memory ("" when unknown) */
static void execfn(struct task *t, char *out, size_t n)
{
	char path[64];
	out[0] = 0;
	snprintf(path, sizeof path, "/proc/%d/auxv", (int)t->tid);
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) return;
	uint64_t av[2], at = 0;
	while (read(fd, av, sizeof av) == sizeof av && av[0] != AT_NULL)
		if (av[0] == AT_EXECFN) at = av[1];
	close(fd);
	if (!at) return;
	/* page by page: the string ends near the stack's top */
	size_t got = 0;
	while (got + 1 < n) {
		size_t chunk = 4096 - ((at + got) & 4095);
		if (chunk > n - 1 - got) chunk = n - 1 - got;
		if (mem_read(t->p, at + got, out + got, chunk) < 0) break;
		if (memchr(out + got, 0, chunk)) return;
		got += chunk;
	}
	out[got] = 0;
}

void sched_exec(struct task *t, pid_t old_pid)
{
	if (!sched_wants(WBPF_AGENT_SCHED_EXEC)) return;
	char fn[4096];
	execfn(t, fn, sizeof fn);
	run_kind(t, WBPF_AGENT_SCHED_EXEC, &(struct ev){ .filename = fn, .old_pid = old_pid });
}

void sched_exit(struct task *t, long code)
{
	t->exit_code = (int)code;
	t->exiting = 1;
	if (!sched_wants(WBPF_AGENT_SCHED_EXIT)) return;
	int others = 0;
	pid_t tgid = task_tgid(t);
	for (unsigned i = 0; i < ntasks; i++)
		if (tasks[i] != t && !tasks[i]->exiting && task_tgid(tasks[i]) == tgid) others = 1;
	run_kind(t, WBPF_AGENT_SCHED_EXIT, &(struct ev){ .group_dead = !others });
}

void sched_fork(struct task *parent, pid_t child)
{
	if (!sched_wants(WBPF_AGENT_SCHED_FORK)) return;
	run_kind(parent, WBPF_AGENT_SCHED_FORK, &(struct ev){ .child = child });
}
