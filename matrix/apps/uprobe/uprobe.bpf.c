// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/* uprobe: entry and return of a user-space function `int f(int a, int b)`. The target (binary and
 * function) is chosen by user space at attach time. Arguments and return value are read from
 * pt_regs with BPF_KPROBE/BPF_KRETPROBE, relocated by CO-RE (vmlinux.h + -D__TARGET_ARCH_<arch>). */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include "uprobe.h"

char LICENSE[] SEC("license") = "Dual BSD/GPL";

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 256 * 1024);
} rb SEC(".maps");

SEC("uprobe")
int BPF_KPROBE(uprobe_add, int a, int b)
{
	struct event *e = bpf_ringbuf_reserve(&rb, sizeof(*e), 0);
	if (!e)
		return 0;
	e->pid = bpf_get_current_pid_tgid() >> 32;
	e->a = a;
	e->b = b;
	e->ret = 0;
	e->is_ret = 0;
	bpf_ringbuf_submit(e, 0);
	return 0;
}

SEC("uretprobe")
int BPF_KRETPROBE(uretprobe_add, int ret)
{
	struct event *e = bpf_ringbuf_reserve(&rb, sizeof(*e), 0);
	if (!e)
		return 0;
	e->pid = bpf_get_current_pid_tgid() >> 32;
	e->a = 0;
	e->b = 0;
	e->ret = ret;
	e->is_ret = 1;
	bpf_ringbuf_submit(e, 0);
	return 0;
}
