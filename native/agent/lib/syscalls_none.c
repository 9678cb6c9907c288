/* The SYSCALL frame on arches without the syscall site rewriter (sys/ is x86-64 only so far): refused,
 * naming why; the other entry points of lib/syscalls.c have nothing to do. */
#include <errno.h>
#include <stdio.h>
#include "agent.h"

int agent_sys_add(struct session *s, const struct wbpf_agent_syscall *r, const uint8_t *table, char *msg, size_t n)
{
	(void)s;
	(void)table;
	snprintf(msg, n, "syscall hook %u: the agent rewrites syscall sites on x86-64 only so far", r->id);
	return EOPNOTSUPP;
}

int agent_sys_remove(struct session *s, uint32_t id, char *msg, size_t n)
{
	(void)s;
	snprintf(msg, n, "unhook %u: no hook %u", id, id);
	return ENOENT;
}

int agent_has_sys(const struct session *s, uint32_t id) { (void)s, (void)id; return 0; }
int agent_sys_uses(const struct aprog *p) { (void)p; return 0; }
int agent_sys_end(struct session *s) { (void)s; return 1; }
void agent_sched_exec(void) {}
int agent_sys_live(void) { return 0; }
void agent_sys_loaded(void) {}
