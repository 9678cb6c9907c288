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
struct task *cur_task;
uintptr_t cur_ctx;
size_t cur_ctx_size;

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

/* get_current_task 35, get_current_task_btf 158: the traced thread's task_struct image (sched.c; read-only to
 * the program), or 0 without a layout */
static int h_current_task(ebpf_vm_call *c)
{
	uint64_t size = 0;
	uintptr_t a = task_image(&size);
	if (a && region_add_dyn(c->run, a, size, 0) < 0) a = 0;
	c->r0 = a;
	return 0;
}

/* [src, src+len) is "kernel memory" of this run, in the tracer's own memory: the task images, or the ctx (a
 * tracepoint program reads its record's __data_loc strings with probe_read(_str) on ctx + offset, as in the kernel) */
static int local(uint64_t src, uint64_t len)
{
	return task_readable(src, len) || (cur_ctx && len <= cur_ctx_size && src >= cur_ctx && src - cur_ctx <= cur_ctx_size - len);
}

/* probe_read_kernel 113: the task images and the ctx only (no other kernel memory here): elsewhere dst zeroed, -EFAULT */
static int h_probe_read_kernel(ebpf_vm_call *c)
{
	uint32_t size = (uint32_t)c->args[1];
	if (!ptr_ok(c->run, c->args[0], size, 1)) return 1;
	if (local(c->args[2], size)) {
		memcpy((void *)(uintptr_t)c->args[0], (const void *)(uintptr_t)c->args[2], size);
		c->r0 = 0;
		return 0;
	}
	memset((void *)(uintptr_t)c->args[0], 0, size);
	c->r0 = (uint64_t)(int64_t)-EFAULT;
	return 0;
}

/* probe_read_kernel_str 115: as 113, up to the NUL */
static int h_probe_read_kernel_str(ebpf_vm_call *c)
{
	uint32_t size = (uint32_t)c->args[1];
	if (!ptr_ok(c->run, c->args[0], size, 1)) return 1;
	uint8_t *dst = (uint8_t *)(uintptr_t)c->args[0];
	if (size && local(c->args[2], 1)) {
		const uint8_t *src = (const uint8_t *)(uintptr_t)c->args[2];
		uint64_t end = task_readable(c->args[2], 1) ? task_image_end() : cur_ctx + cur_ctx_size;
		uint32_t i = 0;
		while (i + 1 < size && (uintptr_t)(src + i) < end && src[i]) dst[i] = src[i], i++;
		dst[i] = 0;
		c->r0 = i + 1;
		return 0;
	}
	if (size) memset(dst, 0, size);
	c->r0 = (uint64_t)(int64_t)-EFAULT;
	return 0;
}

/* probe_read 4 and probe_read_str 45 (the kernel's "any memory" reads): the run's own kernel memory (ctx, task
 * images) here, else the traced process's (the agent's helper: process_vm_readv) */
static ebpf_vm_helper_fn user_read, user_read_str;
static int h_probe_read_any(ebpf_vm_call *c)
{
	if (local(c->args[2], (uint32_t)c->args[1])) return h_probe_read_kernel(c);
	return user_read(c);
}
static int h_probe_read_str_any(ebpf_vm_call *c)
{
	if ((uint32_t)c->args[1] && local(c->args[2], 1)) return h_probe_read_kernel_str(c);
	return user_read_str(c);
}

ebpf_vm_helper_fn helper_of(void *user, uint32_t id)
{
	switch (id) {
	case 14: return h_pid_tgid;
	case 15: return h_uid_gid;
	case 16: return h_comm;
	case 4:
		user_read = agent_helper_of(user, 4);
		return user_read ? h_probe_read_any : NULL;
	case 45:
		user_read_str = agent_helper_of(user, 45);
		return user_read_str ? h_probe_read_str_any : NULL;
	case 35: return h_current_task;
	case 113: return h_probe_read_kernel;
	case 115: return h_probe_read_kernel_str;
	case 158: return h_current_task;
	default: return agent_helper_of(user, id);
	}
}

void agent_trace(struct session *s, uint32_t hook_id, const char *text, uint32_t len)
{
	(void)s; /* one host */
	chan_trace(hook_id, text, len);
}
