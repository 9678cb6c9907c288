// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/* execve: every execve() call with its result, sent through a BPF_MAP_TYPE_PERF_EVENT_ARRAY (the
 * perf buffer path). The record is started at syscall entry (keyed by thread id) and sent at exit,
 * when the return value and the new command name are known. */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>
#include "execve.h"

char LICENSE[] SEC("license") = "Dual BSD/GPL";

struct {
	__uint(type, BPF_MAP_TYPE_PERF_EVENT_ARRAY);
	__uint(key_size, sizeof(u32));
	__uint(value_size, sizeof(u32));
} events SEC(".maps");

/* tid -> the record of its execve() in progress */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 10240);
	__type(key, u32);
	__type(value, struct event);
} execs SEC(".maps");

SEC("tracepoint/syscalls/sys_enter_execve")
int tracepoint__syscalls__sys_enter_execve(struct trace_event_raw_sys_enter *ctx)
{
	struct event e = {};
	const char *const *argv = (const char *const *)ctx->args[1];
	const char *arg1 = NULL;
	u64 id = bpf_get_current_pid_tgid();
	u32 tid = (u32)id;
	struct task_struct *task = (struct task_struct *)bpf_get_current_task();

	e.pid = id >> 32;
	e.ppid = BPF_CORE_READ(task, real_parent, tgid);
	e.uid = (u32)bpf_get_current_uid_gid();
	bpf_probe_read_user_str(&e.filename, sizeof(e.filename), (const char *)ctx->args[0]);
	/* argv[1]: read the pointer, then the string it points to (argv[1] may be NULL) */
	if (argv && bpf_probe_read_user(&arg1, sizeof(arg1), &argv[1]) == 0 && arg1)
		bpf_probe_read_user_str(&e.arg1, sizeof(e.arg1), arg1);
	bpf_map_update_elem(&execs, &tid, &e, BPF_ANY);
	return 0;
}

SEC("tracepoint/syscalls/sys_exit_execve")
int tracepoint__syscalls__sys_exit_execve(struct trace_event_raw_sys_exit *ctx)
{
	u32 tid = (u32)bpf_get_current_pid_tgid();
	struct event *e = bpf_map_lookup_elem(&execs, &tid);

	if (!e)
		return 0; /* missed the entry */
	e->ret = (s32)ctx->ret;
	bpf_get_current_comm(&e->comm, sizeof(e->comm)); /* the new program's name after a success */
	bpf_perf_event_output(ctx, &events, BPF_F_CURRENT_CPU, e, sizeof(*e));
	bpf_map_delete_elem(&execs, &tid);
	return 0;
}
