/* The run's registry: what the root agent (the one holding the channel) received, in shared memory that
 * every traced process of the run maps (a memfd inherited across fork and exec), so that descendants apply
 * the same maps, programs and hooks and see the run end. Agent-to-agent only: the host never reads it, and
 * a reader bounds every count, index and length (a traced process may have written anything there). */
#ifndef WBPF_AGENT_REGISTRY_H
#define WBPF_AGENT_REGISTRY_H
#include <stdint.h>

#include "proto.h"

#pragma GCC visibility push(hidden)

#define REG_ENV "WBPF_AGENT_REG" /* the registry's fd number, in every traced process's environment */
#define REG_MAGIC 0x5247455242505757ull
#define REG_VERSION 4u /* 2: maps and programs carry a dropped flag; 3: syscall hooks; 4: the task layout */
#define REG_MAPS 64
#define REG_PROGS 64
#define REG_HOOKS 1024
#define REG_SYS 64 /* syscall hooks (lib/syscalls.c) */
#define REG_BLOB (16u << 20) /* programs' helper ids and instructions, append-only */

enum { REG_ACTIVE = 1, REG_ENDED = 2 };

struct reg_map {
	uint32_t id;
	int32_t fd, notify_fd; /* inherited at these numbers (the root agent clears their FD_CLOEXEC) */
	uint32_t dropped;      /* 1: its object was closed (the root unmapped it and closed the fds) */
};
struct reg_prog {
	uint32_t id, nhelpers, insn_len, dropped; /* dropped: 1 once its object was closed */
	uint64_t off; /* blob[off, off + 4 * nhelpers + insn_len): helper ids then instructions */
};
struct reg_hook {
	struct wbpf_agent_hook h;
	uint32_t active; /* 0 once unhooked */
	uint32_t reserved;
};
/* a SYSCALL request and its field table, as the root agent received it */
struct reg_sys {
	struct wbpf_agent_syscall s;
	uint8_t table[64];
	uint32_t active; /* 0 once unhooked */
	uint32_t reserved;
};
struct registry {
	uint64_t magic;
	uint32_t version;
	uint32_t gen;      /* futex (shared): bumped after every change */
	uint32_t state;    /* REG_ACTIVE, REG_ENDED (the root agent saw EOF) */
	int32_t host_pid;  /* the channel's peer (SO_PEERCRED), 0 unknown */
	int32_t root_pid;  /* the process whose agent serves the channel */
	int32_t chan_fd;   /* the channel's number in the root (descendants inherit it: polled for hang-up) */
	uint64_t chan_dev, chan_ino;
	uint32_t nmaps, nprogs, nhooks, reserved;
	uint64_t blob_used;
	struct reg_map maps[REG_MAPS];
	struct reg_prog progs[REG_PROGS];
	struct reg_hook hooks[REG_HOOKS];
	uint32_t nsys, reserved2;
	struct reg_sys sys[REG_SYS];
	uint32_t task_gen, reserved3; /* task_gen: bumped (odd while writing) when TASK sets task */
	struct wbpf_agent_task task;
	uint8_t blob[REG_BLOB];
};

/* the root agent: a new registry (its fd number put in the environment as REG_ENV), or NULL */
struct registry *reg_create(int chan_fd);
/* an exec'd agent: the registry named by REG_ENV when it is one (size and magic checked), or NULL */
struct registry *reg_from_env(void);

/* root agent only, on its serve thread; each returns 0 or -1 (no room) and wakes the readers. The writer
 * keeps its own counts: a traced process writing over the shared ones cannot move where it writes */
int reg_add_map(struct registry *r, uint32_t id, int fd, int notify_fd);
int reg_add_prog(struct registry *r, uint32_t id, const uint8_t *helpers, uint32_t nhelpers, const uint8_t *insns, uint32_t insn_len);
int reg_add_hook(struct registry *r, const struct wbpf_agent_hook *h);
int reg_add_sys(struct registry *r, const struct wbpf_agent_syscall *s, const uint8_t *table);
/* the TASK frame's layout */
void reg_set_task(struct registry *r, const struct wbpf_agent_task *t);
/* a reader's copy of it: 1, or 0 (none set, or being written) */
int reg_task(const struct registry *r, struct wbpf_agent_task *t);
/* a hook or a syscall hook removed */
void reg_unhook(struct registry *r, uint32_t id);
/* a map (is_map) or a program the root dropped: descendants drop it too and never add it again */
void reg_drop(struct registry *r, int is_map, uint32_t id);
void reg_end(struct registry *r);
/* a root that exec'd takes over the registry: its counts from the shared ones (clamped) */
void reg_adopt(const struct registry *r);

/* readers: counts clamped to the arrays; a program's bytes copied out (0, or -1 out of bounds) */
uint32_t reg_nmaps(const struct registry *r);
uint32_t reg_nprogs(const struct registry *r);
uint32_t reg_nhooks(const struct registry *r);
uint32_t reg_nsys(const struct registry *r);
int reg_prog_copy(const struct registry *r, uint32_t i, struct reg_prog *p, uint8_t **bytes);
/* waits (up to ms) while gen == seen */
void reg_wait(struct registry *r, uint32_t seen, int ms);
/* the host closed the channel or died (polled on the inherited channel, else its pid) */
int reg_host_gone(const struct registry *r);

#pragma GCC visibility pop
#endif
