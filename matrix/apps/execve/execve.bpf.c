// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/* execve: every execve() call, sent through a BPF_MAP_TYPE_PERF_EVENT_ARRAY (the perf buffer path). */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include "execve.h"

char LICENSE[] SEC("license") = "Dual BSD/GPL";

struct {
	__uint(type, BPF_MAP_TYPE_PERF_EVENT_ARRAY);
	__uint(key_size, sizeof(u32));
	__uint(value_size, sizeof(u32));
} events SEC(".maps");

SEC("tracepoint/syscalls/sys_enter_execve")
int tracepoint__syscalls__sys_enter_execve(struct trace_event_raw_sys_enter *ctx)
{
	struct event e = {};
	const char *const *argv = (const char *const *)ctx->args[1];
	const char *arg1 = NULL;

	e.pid = bpf_get_current_pid_tgid() >> 32;
	e.uid = (u32)bpf_get_current_uid_gid();
	bpf_get_current_comm(&e.comm, sizeof(e.comm));
	bpf_probe_read_user_str(&e.filename, sizeof(e.filename), (const char *)ctx->args[0]);
	/* argv[1]: read the pointer, then the string it points to (argv[1] may be NULL) */
	if (argv && bpf_probe_read_user(&arg1, sizeof(arg1), &argv[1]) == 0 && arg1)
		bpf_probe_read_user_str(&e.arg1, sizeof(e.arg1), arg1);

	bpf_perf_event_output(ctx, &events, BPF_F_CURRENT_CPU, &e, sizeof(e));
	return 0;
}
