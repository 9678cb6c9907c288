/* Following a run's descendants: a fork child (pthread_atfork) or an exec'd program (the constructor, before
 * main) applies the run's registry (registry.h: maps, programs, hooks) and a watcher thread keeps it
 * applied, removing every hook when the run ends or the host is gone. */
#define _GNU_SOURCE
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/stat.h>
#include <unistd.h>

#include "agent.h"
#include "registry.h"

#define WATCH_MS 100 /* the host's death is noticed within this (plus a removal's wait) */

/* the registry's maps, programs, hooks and syscall hooks this process lacks are added to the root session; hooks unhooked
 * there are removed. Caller holds agent_lock. Refusals are silent: a descendant has no channel to say them on */
static void apply(const struct registry *r)
{
	char msg[512];
	struct session *s = agent_root();
	if (!s) return;
	uint32_t n = reg_nmaps(r);
	for (uint32_t i = 0; i < n; i++) {
		struct reg_map m;
		memcpy(&m, (const void *)&r->maps[i], sizeof m);
		if (!m.dropped && !agent_has_map(s, m.id)) (void)agent_map_add(s, m.id, m.fd, m.notify_fd, msg, sizeof msg);
	}
	n = reg_nprogs(r);
	for (uint32_t i = 0; i < n; i++) {
		struct reg_prog p;
		uint8_t *bytes;
		if (__atomic_load_n(&r->progs[i].dropped, __ATOMIC_ACQUIRE) || agent_has_prog(s, __atomic_load_n(&r->progs[i].id, __ATOMIC_RELAXED))) continue;
		if (reg_prog_copy(r, i, &p, &bytes) == 0 && !agent_has_prog(s, p.id))
			(void)agent_prog_add(s, p.id, bytes, p.nhelpers, bytes + 4ull * p.nhelpers, p.insn_len, msg, sizeof msg);
		free(bytes);
	}
	n = reg_nhooks(r);
	for (uint32_t i = 0; i < n; i++) {
		struct reg_hook h;
		memcpy(&h, (const void *)&r->hooks[i], sizeof h);
		int have = agent_has_hook(s, h.h.id), pending;
		if (h.active && !have) (void)agent_hook_add(s, &h.h, &pending, msg, sizeof msg);
		else if (!h.active && have) (void)agent_hook_remove(s, h.h.id, msg, sizeof msg);
	}
	struct wbpf_agent_task t;
	if (reg_task(r, &t)) (void)agent_task_layout_set(&t, msg, sizeof msg);
	n = reg_nsys(r);
	for (uint32_t i = 0; i < n; i++) {
		struct reg_sys y;
		memcpy(&y, (const void *)&r->sys[i], sizeof y); /* one snapshot: agent_sys_add checks every field */
		int have = agent_has_sys(s, y.s.id);
		if (y.active && !have) (void)agent_sys_add(s, &y.s, y.table, msg, sizeof msg);
		else if (!y.active && have) (void)agent_sys_remove(s, y.s.id, msg, sizeof msg);
	}
	/* what closed objects had: programs (their hooks are gone), then maps (no program names them) */
	n = reg_nprogs(r);
	for (uint32_t i = 0; i < n; i++) {
		uint32_t id = __atomic_load_n(&r->progs[i].id, __ATOMIC_RELAXED);
		if (__atomic_load_n(&r->progs[i].dropped, __ATOMIC_ACQUIRE) && agent_has_prog(s, id)) (void)agent_drop(s, 0, id, msg, sizeof msg);
	}
	n = reg_nmaps(r);
	for (uint32_t i = 0; i < n; i++) {
		uint32_t id = __atomic_load_n(&r->maps[i].id, __ATOMIC_RELAXED);
		if (__atomic_load_n(&r->maps[i].dropped, __ATOMIC_ACQUIRE) && agent_has_map(s, id)) (void)agent_drop(s, 1, id, msg, sizeof msg);
	}
}

static int ended(const struct registry *r)
{
	return __atomic_load_n(&r->state, __ATOMIC_ACQUIRE) != REG_ACTIVE || reg_host_gone(r);
}

static void *watch(void *arg)
{
	struct registry *r = arg;
	sigset_t all;
	sigfillset(&all);
	sigdelset(&all, SIGTRAP); /* never blocked: a trap hook hit would be fatal (hook/sigtrap.c) */
	pthread_sigmask(SIG_BLOCK, &all, NULL); /* the target's signals go to its own threads */
	uint32_t seen = 0;
	int first = 1;
	while (!ended(r)) {
		uint32_t g = __atomic_load_n(&r->gen, __ATOMIC_ACQUIRE);
		if (first || g != seen) {
			first = 0;
			seen = g;
			pthread_mutex_lock(&agent_lock);
			apply(r);
			pthread_mutex_unlock(&agent_lock);
		}
		reg_wait(r, g, WATCH_MS);
	}
	pthread_mutex_lock(&agent_lock);
	agent_end_root();
	pthread_mutex_unlock(&agent_lock);
	return NULL;
}

static void watch_start(void)
{
	pthread_t t;
	if (pthread_create(&t, NULL, watch, agent_reg) == 0) pthread_detach(t);
}

/* a fork child's joined sessions: their hooks stay (what the host had set at the fork) until the host hangs
 * up its channel (closed, or died), polled every WATCH_MS */
static void *watch_joined(void *arg)
{
	(void)arg;
	sigset_t all;
	sigfillset(&all);
	pthread_sigmask(SIG_BLOCK, &all, NULL);
	struct timespec nap = { 0, WATCH_MS * 1000000L };
	for (;;) {
		pthread_mutex_lock(&agent_lock);
		unsigned left = agent_joined_check();
		pthread_mutex_unlock(&agent_lock);
		if (!left) return NULL;
		nanosleep(&nap, NULL);
	}
}

/* fork: the child gets a consistent copy of the tables (none is changing), keeps every session's hooks and
 * follows the registry (the root session) and each joined session's channel */
static void before_fork(void) { pthread_mutex_lock(&agent_lock); }
static void after_fork_parent(void) { pthread_mutex_unlock(&agent_lock); }
static void after_fork_child(void)
{
	agent_child_reset();
	if (agent_joined_check()) {
		pthread_t t;
		if (pthread_create(&t, NULL, watch_joined, NULL) == 0) pthread_detach(t);
	}
	if (!agent_reg) return; /* joined only: no registry to follow */
	if (!ended(agent_reg)) watch_start();
	else agent_end_root();
}

void follow_atfork(void)
{
	static int done;
	if (!done) done = !pthread_atfork(before_fork, after_fork_parent, after_fork_child);
}

void follow_exec(void)
{
	struct registry *r = reg_from_env();
	if (!r) return;
	agent_reg = r;
	follow_atfork();
	if (ended(r)) return;
	pthread_mutex_lock(&agent_lock);
	apply(r); /* before main: the hooks see its first instruction */
	pthread_mutex_unlock(&agent_lock);
	agent_sched_exec(); /* this exec's sched_process_exec and sys_exit_execve */
	/* the root exec'd (sh -c's last command, a wrapper): this program serves the channel now */
	struct stat st;
	int fd = r->chan_fd;
	if (getpid() == r->root_pid && fd >= 0 && fstat(fd, &st) == 0 && (uint64_t)st.st_dev == r->chan_dev &&
	    (uint64_t)st.st_ino == r->chan_ino) {
		reg_adopt(r);
		if (agent_serve_again(fd) == 0) return;
	}
	watch_start();
}
