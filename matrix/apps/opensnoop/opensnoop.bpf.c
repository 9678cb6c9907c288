// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/* opensnoop: openat() calls with their result: the arguments are saved at syscall entry (keyed by
 * thread id) and reported at syscall exit, when the return value is known. */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include "opensnoop.h"

char LICENSE[] SEC("license") = "Dual BSD/GPL";

/* Set by user space before load (-p PID): report only this process; 0 = all. */
const volatile pid_t targ_pid = 0;

struct args_t {
	const char *fname;
	int flags;
};

/* tid -> the arguments of its openat() in progress */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 10240);
	__type(key, u32);
	__type(value, struct args_t);
} start SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 256 * 1024);
} rb SEC(".maps");

SEC("tracepoint/syscalls/sys_enter_openat")
int tracepoint__syscalls__sys_enter_openat(struct trace_event_raw_sys_enter *ctx)
{
	u64 id = bpf_get_current_pid_tgid();
	u32 pid = id >> 32, tid = (u32)id;
	struct args_t args = {};

	if (targ_pid && targ_pid != pid)
		return 0;
	args.fname = (const char *)ctx->args[1];
	args.flags = (int)ctx->args[2];
	bpf_map_update_elem(&start, &tid, &args, BPF_ANY);
	return 0;
}

SEC("tracepoint/syscalls/sys_exit_openat")
int tracepoint__syscalls__sys_exit_openat(struct trace_event_raw_sys_exit *ctx)
{
	u64 id = bpf_get_current_pid_tgid();
	u32 tid = (u32)id;
	struct args_t *ap;
	struct event *e;

	ap = bpf_map_lookup_elem(&start, &tid);
	if (!ap)
		return 0; /* missed the entry, or filtered out there */

	e = bpf_ringbuf_reserve(&rb, sizeof(*e), 0);
	if (e) {
		e->pid = id >> 32;
		e->ret = (int)ctx->ret;
		e->flags = ap->flags;
		bpf_get_current_comm(&e->comm, sizeof(e->comm));
		/* the kernel has copied the name by now, so the page is present */
		if (bpf_probe_read_user_str(&e->filename, sizeof(e->filename), ap->fname) < 0)
			e->filename[0] = 0;
		bpf_ringbuf_submit(e, 0);
	}
	bpf_map_delete_elem(&start, &tid);
	return 0;
}
