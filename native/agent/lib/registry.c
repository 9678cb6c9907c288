/* The run's registry (registry.h): created by the root agent in a memfd every descendant inherits; written
 * by the root agent only, read by every other agent with every count, index and length bounded. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/futex.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "registry.h"

/* the writer's own counts (the root agent's): what a traced process wrote over the shared ones never
 * moves where the root writes */
static struct {
	uint32_t nmaps, nprogs, nhooks, nsys;
	uint64_t blob_used;
	uint32_t hook_ids[REG_HOOKS], sys_ids[REG_SYS];
	uint32_t map_ids[REG_MAPS], prog_ids[REG_PROGS];
} w;

static void wake(struct registry *r)
{
	__atomic_add_fetch(&r->gen, 1, __ATOMIC_SEQ_CST);
	syscall(SYS_futex, &r->gen, FUTEX_WAKE, INT32_MAX, NULL, NULL, 0); /* shared: no FUTEX_PRIVATE_FLAG */
}

struct registry *reg_create(int chan_fd)
{
	int fd = memfd_create("wbpf-agent-registry", 0); /* no CLOEXEC: exec'd descendants inherit it */
	if (fd < 0) return NULL;
	if (ftruncate(fd, sizeof(struct registry)) < 0) goto fail;
	struct registry *r = mmap(NULL, sizeof *r, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (r == MAP_FAILED) goto fail;
	struct ucred cred;
	socklen_t clen = sizeof cred;
	struct stat st;
	r->version = REG_VERSION;
	r->state = REG_ACTIVE;
	r->host_pid = getsockopt(chan_fd, SOL_SOCKET, SO_PEERCRED, &cred, &clen) == 0 ? cred.pid : 0;
	r->root_pid = getpid();
	r->chan_fd = chan_fd;
	if (fstat(chan_fd, &st) == 0) r->chan_dev = st.st_dev, r->chan_ino = st.st_ino;
	__atomic_store_n(&r->magic, REG_MAGIC, __ATOMIC_RELEASE);
	char s[16];
	snprintf(s, sizeof s, "%d", fd);
	if (setenv(REG_ENV, s, 1) < 0) {
		munmap(r, sizeof *r);
		goto fail;
	}
	return r;
fail:
	close(fd);
	return NULL;
}

struct registry *reg_from_env(void)
{
	const char *s = getenv(REG_ENV);
	if (!s || !*s) return NULL;
	char *end;
	long fd = strtol(s, &end, 10);
	struct stat st;
	if (*end || fd < 0 || fd > 65535 || fstat((int)fd, &st) < 0) return NULL;
	if (!S_ISREG(st.st_mode) || (size_t)st.st_size != sizeof(struct registry)) return NULL;
	struct registry *r = mmap(NULL, sizeof *r, PROT_READ | PROT_WRITE, MAP_SHARED, (int)fd, 0);
	if (r == MAP_FAILED) return NULL;
	if (r->magic != REG_MAGIC || r->version != REG_VERSION) {
		munmap(r, sizeof *r);
		return NULL;
	}
	return r;
}

int reg_add_map(struct registry *r, uint32_t id, int fd, int notify_fd)
{
	uint32_t n = w.nmaps;
	if (n >= REG_MAPS) return -1;
	r->maps[n] = (struct reg_map){ id, fd, notify_fd, 0 };
	w.map_ids[n] = id;
	__atomic_store_n(&r->nmaps, w.nmaps = n + 1, __ATOMIC_RELEASE);
	wake(r);
	return 0;
}

int reg_add_prog(struct registry *r, uint32_t id, const uint8_t *helpers, uint32_t nhelpers, const uint8_t *insns, uint32_t insn_len)
{
	uint32_t n = w.nprogs;
	uint64_t used = w.blob_used, len = 4ull * nhelpers + insn_len;
	if (n >= REG_PROGS || used > REG_BLOB || len > REG_BLOB - used) return -1;
	memcpy(r->blob + used, helpers, 4ull * nhelpers);
	memcpy(r->blob + used + 4ull * nhelpers, insns, insn_len);
	r->progs[n] = (struct reg_prog){ .id = id, .nhelpers = nhelpers, .insn_len = insn_len, .off = used };
	w.prog_ids[n] = id;
	r->blob_used = w.blob_used = used + ((len + 7) & ~7ull);
	__atomic_store_n(&r->nprogs, w.nprogs = n + 1, __ATOMIC_RELEASE);
	wake(r);
	return 0;
}

int reg_add_hook(struct registry *r, const struct wbpf_agent_hook *h)
{
	uint32_t n = w.nhooks;
	if (n >= REG_HOOKS) return -1;
	r->hooks[n] = (struct reg_hook){ .h = *h, .active = 1 };
	w.hook_ids[n] = h->id;
	__atomic_store_n(&r->nhooks, w.nhooks = n + 1, __ATOMIC_RELEASE);
	wake(r);
	return 0;
}

int reg_add_sys(struct registry *r, const struct wbpf_agent_syscall *s, const uint8_t *table)
{
	uint32_t n = w.nsys;
	if (n >= REG_SYS) return -1;
	r->sys[n].s = *s;
	memcpy(r->sys[n].table, table, sizeof r->sys[n].table);
	__atomic_store_n(&r->sys[n].active, 1, __ATOMIC_RELEASE);
	w.sys_ids[n] = s->id;
	__atomic_store_n(&r->nsys, w.nsys = n + 1, __ATOMIC_RELEASE);
	wake(r);
	return 0;
}

void reg_set_task(struct registry *r, const struct wbpf_agent_task *t)
{
	uint32_t g = __atomic_load_n(&r->task_gen, __ATOMIC_RELAXED) | 1u;
	__atomic_store_n(&r->task_gen, g, __ATOMIC_RELEASE);
	memcpy((void *)&r->task, t, sizeof *t);
	__atomic_store_n(&r->task_gen, g + 1, __ATOMIC_RELEASE);
	wake(r);
}

int reg_task(const struct registry *r, struct wbpf_agent_task *t)
{
	uint32_t g = __atomic_load_n(&r->task_gen, __ATOMIC_ACQUIRE);
	if (!g || (g & 1)) return 0;
	memcpy(t, (const void *)&r->task, sizeof *t);
	return __atomic_load_n(&r->task_gen, __ATOMIC_ACQUIRE) == g;
}

void reg_unhook(struct registry *r, uint32_t id)
{
	for (uint32_t i = 0; i < w.nhooks; i++)
		if (w.hook_ids[i] == id) __atomic_store_n(&r->hooks[i].active, 0, __ATOMIC_RELEASE);
	for (uint32_t i = 0; i < w.nsys; i++)
		if (w.sys_ids[i] == id) __atomic_store_n(&r->sys[i].active, 0, __ATOMIC_RELEASE);
	wake(r);
}

void reg_drop(struct registry *r, int is_map, uint32_t id)
{
	uint32_t n = is_map ? w.nmaps : w.nprogs;
	for (uint32_t i = 0; i < n; i++) {
		if ((is_map ? w.map_ids[i] : w.prog_ids[i]) != id) continue;
		__atomic_store_n(is_map ? &r->maps[i].dropped : &r->progs[i].dropped, 1, __ATOMIC_RELEASE);
	}
	wake(r);
}

void reg_adopt(const struct registry *r)
{
	w.nmaps = reg_nmaps(r);
	w.nprogs = reg_nprogs(r);
	w.nhooks = reg_nhooks(r);
	for (uint32_t i = 0; i < w.nhooks; i++) w.hook_ids[i] = __atomic_load_n(&r->hooks[i].h.id, __ATOMIC_RELAXED);
	w.nsys = reg_nsys(r);
	for (uint32_t i = 0; i < w.nsys; i++) w.sys_ids[i] = __atomic_load_n(&r->sys[i].s.id, __ATOMIC_RELAXED);
	for (uint32_t i = 0; i < w.nmaps; i++) w.map_ids[i] = __atomic_load_n(&r->maps[i].id, __ATOMIC_RELAXED);
	for (uint32_t i = 0; i < w.nprogs; i++) w.prog_ids[i] = __atomic_load_n(&r->progs[i].id, __ATOMIC_RELAXED);
	uint64_t used = __atomic_load_n(&r->blob_used, __ATOMIC_ACQUIRE);
	w.blob_used = used < REG_BLOB ? (used + 7) & ~7ull : REG_BLOB;
}

void reg_end(struct registry *r)
{
	__atomic_store_n(&r->state, REG_ENDED, __ATOMIC_RELEASE);
	wake(r);
}

static uint32_t clamp(const uint32_t *n, uint32_t max)
{
	uint32_t v = __atomic_load_n(n, __ATOMIC_ACQUIRE);
	return v < max ? v : max;
}
uint32_t reg_nmaps(const struct registry *r) { return clamp(&r->nmaps, REG_MAPS); }
uint32_t reg_nprogs(const struct registry *r) { return clamp(&r->nprogs, REG_PROGS); }
uint32_t reg_nhooks(const struct registry *r) { return clamp(&r->nhooks, REG_HOOKS); }
uint32_t reg_nsys(const struct registry *r) { return clamp(&r->nsys, REG_SYS); }

int reg_prog_copy(const struct registry *r, uint32_t i, struct reg_prog *p, uint8_t **bytes)
{
	*bytes = NULL;
	if (i >= REG_PROGS) return -1;
	memcpy(p, (const void *)&r->progs[i], sizeof *p); /* one snapshot: the checks and the copy use it */
	uint64_t len = 4ull * p->nhelpers + p->insn_len;
	if (p->off > REG_BLOB || len > REG_BLOB - p->off) return -1;
	*bytes = malloc(len ? len : 1);
	if (!*bytes) return -1;
	memcpy(*bytes, r->blob + p->off, len);
	return 0;
}

void reg_wait(struct registry *r, uint32_t seen, int ms)
{
	struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };
	syscall(SYS_futex, &r->gen, FUTEX_WAIT, seen, &ts, NULL, 0);
}

int reg_host_gone(const struct registry *r)
{
	struct stat st;
	int fd = r->chan_fd;
	if (fd >= 0 && fstat(fd, &st) == 0 && (uint64_t)st.st_dev == r->chan_dev && (uint64_t)st.st_ino == r->chan_ino) {
		struct pollfd pf = { .fd = fd, .events = POLLRDHUP };
		return poll(&pf, 1, 0) > 0 && (pf.revents & (POLLHUP | POLLRDHUP | POLLERR));
	}
	pid_t host = r->host_pid;
	return host > 0 && kill(host, 0) < 0 && errno == ESRCH;
}
