/* What lib/agent.c shares with a run's memory (regions.c), the helpers (helpers.c), the safe reads
 * (probe_read.c), trace_printk's formatting (printk.c), the descendants (follow.c) and dlopen (dlopen.c).
 * Internal to libwbpf_agent.so: every symbol is hidden, so none can interpose with (or be interposed by)
 * the traced program's own. */
#ifndef WBPF_AGENT_H
#define WBPF_AGENT_H
#include <stddef.h>
#include <pthread.h>
#include <stdint.h>

#include "../maps/wbpf_maps.h"
#include "../vm/ebpf_vm.h"
#include "proto.h"

#pragma GCC visibility push(hidden)

struct registry;
/* one host's state in the agent (agent.c): its channel, maps, programs and hooks; ids are per session */
struct session;

#define MAPREF_TAG 0x5742504d00000000ull /* "WBPM" << 32 | map id: what lddw map_by_fd(id) loads */

/* a shared map the agent holds (agent.c's table) */
struct amap {
	uint32_t id;
	struct wbpf_map m;
};
/* session s's map an lddw src 1 value names (a program only ever reaches its own session's maps), or NULL */
struct amap *find_map(const struct session *s, uint64_t ref);

/* ---- join mode (join.c: the agent dlopen'ed by ptrace injection into a running process) ---- */
/* a free session (at most WBPF_AGENT_MAX_SESSIONS hosts at once, launch's and joins' together), or NULL */
struct session *agent_claim(void);
/* gives the session back (a join that never got its channel) */
void agent_unclaim(struct session *s);
/* serves fd as session s on the calling thread until EOF, then removes s's hooks and maps and gives the
 * session back; no START (the process runs already). The caller claimed s (agent_claim) */
void agent_serve_joined(struct session *s, int fd);

/* the chan side sends a trace_printk text to session s's host (a weak stub in helpers.c drops it until then) */
void agent_trace(struct session *s, uint32_t hook_id, const char *text, uint32_t len);

/* ---- the agent's tables (agent.c), changed under agent_lock only; each add/remove returns 0 or an errno,
 * its message (the reply's text) in msg; ids are those of session s ---- */
extern pthread_mutex_t agent_lock;
extern struct registry *agent_reg; /* the run's registry (registry.h), NULL when not traced */
/* the registry's session (the launch's, or a descendant's copy of it), claimed on first use; NULL if none is free */
struct session *agent_root(void);
int agent_has_map(const struct session *s, uint32_t id);
int agent_map_add(struct session *s, uint32_t id, int fd, int notify_fd, char *msg, size_t n);
int agent_has_prog(const struct session *s, uint32_t id);
int agent_prog_add(struct session *s, uint32_t id, const uint8_t *helpers, uint32_t nhelpers, const uint8_t *insns, uint32_t insn_len, char *msg, size_t n);
/* frees a program of s (is_map 0: no hook runs it) or unmaps a map (1: no program names it): 0, ENOENT, EBUSY */
int agent_drop(struct session *s, int is_map, uint32_t id, char *msg, size_t n);
int agent_has_hook(const struct session *s, uint32_t id);
/* *pending: accepted, its file not mapped (yet): agent_hooks_retry sets it once it is */
int agent_hook_add(struct session *s, const struct wbpf_agent_hook *r, int *pending, char *msg, size_t n);
int agent_hook_remove(struct session *s, uint32_t id, char *msg, size_t n);
void agent_hooks_retry(void);
unsigned agent_npending(void); /* no lock needed */
/* the registry's run ended (or its host is gone): the root session's hooks go, the other sessions' stay */
void agent_end_root(void);
/* a root that exec'd: serve the same channel again (no START wait); 0 or -1 */
int agent_serve_again(int fd);
/* in a fork child: drop the parent's channels (a joined session's stays, to be polled), reset the locks */
void agent_child_reset(void);
/* in a fork child: ends the joined sessions whose host hung up; returns how many are still followed.
 * Caller holds agent_lock */
unsigned agent_joined_check(void);

/* ---- following descendants (follow.c) ---- */
/* the root agent: fork children follow the registry (pthread_atfork) */
void follow_atfork(void);
/* the constructor without a channel: an exec'd descendant applies the registry named by the environment
 * before main and follows it (or, the root's pid, serves the channel again); nothing when there is none */
void follow_exec(void);

/* ---- a run's memory (regions.c) ----
 * Exactly what a program may touch: the stack (the engine's), the ctx (pt_regs, read-only), the program's
 * global data (element 0's value of each array its lddw src 2 names; read-only when BPF_F_RDONLY_PROG, as
 * .rodata), and, added by helpers as the run goes, each value a lookup returned ([value, value +
 * value_size), this CPU's copy for per-CPU maps) and each ring buffer record reserved and not yet
 * submitted or discarded (its data only). A repeat lookup of the same value reuses its region; with
 * HIT_MAX_DYN dynamic regions held, a lookup returns NULL and a reserve fails (NULL). Records still
 * reserved when the run ends are discarded then. */
#define HIT_MAX_GLOBALS 8  /* global data maps one program may name (more: refused at load) */
#define HIT_MAX_DYN 32     /* lookup values and records one run may hold at once */
#define HIT_MAX_RECORDS 8  /* ring buffer records reserved at once */

/* a program's env.user: its session (whose maps its map references name) and the global data maps its
 * lddw src 2 named (filled by map_ref at load) */
#define PROG_MAX_MAPS 64 /* maps one program may name (the kernel's MAX_USED_MAPS) */
struct prog_refs {
	struct session *sess;
	unsigned n;
	struct amap *globals[HIT_MAX_GLOBALS];
	unsigned nmaps;                /* the ids of every map it names: a map is freed only when no program names it */
	uint32_t map_ids[PROG_MAX_MAPS];
	struct amap *maps[PROG_MAX_MAPS]; /* map_ids[k]'s map (its helpers' calls find it here, not in the session) */
};

/* one run's memory (run->data), on the hooked thread's stack */
struct hit {
	uint32_t hook_id;
	uint32_t nregions, ndyn, nrecords;
	struct {
		struct amap *m;
		uintptr_t data;
	} records[HIT_MAX_RECORDS];
	ebpf_vm_region regions[1 + HIT_MAX_GLOBALS + HIT_MAX_DYN];
};

/* the fixed regions of a run of prog (ctx, its global data); sets run->regions, nregions and data */
void hit_begin(struct hit *x, ebpf_vm_run *run, uint32_t hook_id, const ebpf_vm_prog *prog, void *ctx, size_t ctx_size);
void hit_add_globals(struct hit *x, const struct prog_refs *refs);
/* hit_begin for a program whose prog_refs (env.user) the caller holds: inline, on a hit's path */
static inline void hit_start(struct hit *x, ebpf_vm_run *run, uint32_t hook_id, const struct prog_refs *refs, void *ctx, size_t ctx_size)
{
	x->hook_id = hook_id;
	x->ndyn = x->nrecords = 0;
	x->nregions = 0;
	if (ctx_size && (uintptr_t)ctx + ctx_size > (uintptr_t)ctx) { /* the first region: region_insert's checks */
		x->regions[0] = (ebpf_vm_region){ (uintptr_t)ctx, ctx_size, (uint8_t *)ctx, 0 };
		x->nregions = 1;
	}
	if (refs && refs->n) hit_add_globals(x, refs);
	run->regions = x->regions;
	run->nregions = x->nregions;
	run->data = x;
}
/* the run ended (done or stopped): the records it left reserved are discarded, so the consumer never stalls */
void hit_end(struct hit *x);
/* a helper's region (a lookup value, a record): 0 (added, or the same one already held) or -1 (no room) */
int region_add_dyn(ebpf_vm_run *run, uintptr_t addr, uint64_t size, uint32_t flags);
void region_remove_dyn(ebpf_vm_run *run, uintptr_t addr);
/* [addr, addr+len) inside the run's stack or one of its regions (writable when asked) */
int ptr_ok(const ebpf_vm_run *run, uint64_t addr, uint64_t len, int write);
/* the region flags of a map's values for programs: writable unless BPF_F_RDONLY_PROG */
uint32_t value_flags(const struct amap *m);

/* ---- the task_struct image of bpf_get_current_task (helpers.c) ---- */
struct wbpf_agent_task;
/* the TASK frame's layout (every later image): 0, or EINVAL with why */
int agent_task_layout_set(const struct wbpf_agent_task *t, char *msg, size_t n);
/* exit_group(status) of this thread: the image's exit_code from now on (the kernel's (status & 0xff) << 8) */
void agent_task_exit(long status);
/* the cached pid/tid of get_current_pid_tgid forgotten (a vfork child shares them with its parent) */
void agent_ids_forget(void);
/* probe_read.c's cached pid re-read (the same reason) */
void agent_read_pid_reset(void);

/* ---- reading the process's memory without ever faulting (probe_read.c) ---- */
/* copy [src, src+len) into dst: 0, or -EFAULT (unmapped or unreadable) */
int safe_read(void *dst, uint64_t src, size_t len);
/* strncpy_from_user_nofault: the length with the NUL, or -EFAULT with dst zeroed */
long safe_read_str(uint8_t *dst, uint64_t src, uint32_t size);

/* ---- trace_printk's text (printk.c) ---- */
#define PRINTK_SIZE 1024 /* the kernel's trace_printk buffer */
/* f (flen bytes, no NUL) with args into out (PRINTK_SIZE bytes, NUL-terminated, truncated): the text's
 * length, or -1 for a format the kernel refuses (-EINVAL) */
long format_printk(const uint8_t *f, size_t flen, const uint64_t args[3], char *out);
/* fn(arg) with the thread's whole vector state saved and restored around it (lib/<arch>/vecsave.c): a hit's
 * slow paths into libc (snprintf, ...), since the hit path and its trampolines keep no vector register */
void vec_guarded(void (*fn)(void *), void *arg);

/* ---- the helpers (helpers.c) ---- */
ebpf_vm_helper_fn helper_of(void *user, uint32_t id);
ebpf_vm_leaf_fn leaf_of(void *user, uint32_t id); /* the agent's programs' env.leaf (not the ptrace tier's) */
ebpf_vm_helper_fn record_of(void *user, uint32_t id); /* and env.record: ring record variants (vm/recproof.c) */
int map_ref(void *user, uint32_t src, int32_t imm, uint64_t *value);
/* this thread's tgid << 32 | tid, cached per thread (read again in a fork child) */
uint64_t agent_pid_tgid(void);

/* ---- syscall tracepoints (syscalls.c: the SYSCALL frame; agent.c runs the programs) ---- */
struct aprog;
/* session s's program id, or NULL. Caller holds agent_lock */
const struct aprog *agent_find_prog(const struct session *s, uint32_t id);
const ebpf_vm_prog *agent_prog_vm(const struct aprog *p);
/* a program run begins on this thread: 1, or 0 when one runs already (or this is a serve thread): skip it */
int agent_hit_begin(void);
void agent_hit_end(void);
/* runs p with ctx [ctx, ctx+size) (read-only) as a hit of hook id: 0, or the engine's status with msg saying why */
int agent_run(const struct aprog *p, uint32_t id, void *ctx, size_t size, char *msg, size_t n);
/* an EVENT notice (a hook was disabled) to session s's host; never blocks */
void agent_event(struct session *s, uint32_t id, const char *msg);
/* the table follows r in the frame (WBPF_SYS_TABLE_SIZE bytes). 0, or an errno with msg */
int agent_sys_add(struct session *s, const struct wbpf_agent_syscall *r, const uint8_t *table, char *msg, size_t n);
int agent_sys_remove(struct session *s, uint32_t id, char *msg, size_t n);
int agent_has_sys(const struct session *s, uint32_t id);
/* a syscall attachment is live (atomic read: dlopen asks before taking agent_lock) */
int agent_sys_live(void);
/* a library was dlopen'ed: its syscall sites of the traced numbers are rewritten. Caller holds agent_lock */
void agent_sys_loaded(void);
/* the id of a syscall hook running p, or 0 */
int agent_sys_uses(const struct aprog *p);
/* removes session s's syscall hooks: 1, or 0 when a call stalled (what it reads is never freed) */
int agent_sys_end(struct session *s);
/* the exec'd image's sched_process_exec and sys_exit_execve programs (before main; syscalls.c) */
void agent_sched_exec(void);

#pragma GCC visibility pop
#endif
