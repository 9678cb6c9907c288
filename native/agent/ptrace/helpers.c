/* The ptrace tier's helpers: the agent's (lib/helpers.c, built here as agent_helper_of) except those that
 * name the current thread, which here is the traced one, not ours: pid/tgid, uid/gid, comm; probe_read_*
 * read the traced process through process_vm_readv (lib/probe_read.c built with WBPF_READ_PID: never
 * faults, -EFAULT and dst zeroed); trace_printk's
 * text goes to the host over the channel. */
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "../lib/agent.h"
#include "tracer.h"

pid_t cur_tid, cur_tgid;

ebpf_vm_helper_fn agent_helper_of(void *user, uint32_t id);

static int h_pid_tgid(ebpf_vm_call *c)
{
	c->r0 = ((uint64_t)cur_tgid << 32) | (uint32_t)cur_tid;
	return 0;
}

/* a line "Name:\t..." of /proc/TGID/task/TID/status */
static int status_field(const char *name, char *out, size_t n)
{
	char path[64], line[256];
	snprintf(path, sizeof path, "/proc/%d/task/%d/status", (int)cur_tgid, (int)cur_tid);
	FILE *f = fopen(path, "re");
	if (!f) return -1;
	size_t k = strlen(name);
	int rc = -1;
	while (rc && fgets(line, sizeof line, f))
		if (!strncmp(line, name, k) && line[k] == ':') {
			snprintf(out, n, "%s", line + k + 1);
			rc = 0;
		}
	fclose(f);
	return rc;
}

/* the traced thread's real uid and gid */
static int h_uid_gid(ebpf_vm_call *c)
{
	char u[128], g[128];
	unsigned long uid = 0, gid = 0;
	if (status_field("Uid", u, sizeof u) == 0) sscanf(u, "%lu", &uid);
	if (status_field("Gid", g, sizeof g) == 0) sscanf(g, "%lu", &gid);
	c->r0 = ((uint64_t)gid << 32) | (uint32_t)uid;
	return 0;
}

/* the traced thread's name, NUL-terminated and zero-padded to size (the kernel's strscpy_pad) */
static int h_comm(ebpf_vm_call *c)
{
	uint32_t size = (uint32_t)c->args[1];
	uint8_t *dst = (uint8_t *)(uintptr_t)c->args[0];
	if (!ptr_ok(c->run, c->args[0], size, 1)) return 1;
	c->r0 = 0;
	if (size == 0) return 0;
	char comm[32] = { 0 }, path[64];
	snprintf(path, sizeof path, "/proc/%d/task/%d/comm", (int)cur_tgid, (int)cur_tid);
	FILE *f = fopen(path, "re");
	if (f) {
		if (!fgets(comm, sizeof comm, f)) comm[0] = 0;
		fclose(f);
	}
	comm[strcspn(comm, "\n")] = 0;
	size_t n = strnlen(comm, 15);
	if (n > size - 1) n = size - 1;
	memset(dst, 0, size);
	memcpy(dst, comm, n);
	return 0;
}

ebpf_vm_helper_fn helper_of(void *user, uint32_t id)
{
	switch (id) {
	case 14: return h_pid_tgid;
	case 15: return h_uid_gid;
	case 16: return h_comm;
	default: return agent_helper_of(user, id);
	}
}

void agent_trace(struct session *s, uint32_t hook_id, const char *text, uint32_t len)
{
	(void)s; /* one host */
	chan_trace(hook_id, text, len);
}
