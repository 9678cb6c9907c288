// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/* fentry: the kprobe app's job done with BPF trampolines: fentry and fexit programs on the kernel
 * function do_unlinkat(), arguments typed from the kernel's BTF (no pt_regs, so one object serves
 * every arch). Needs a kernel with BPF trampolines for the arch (x86_64 5.5+). */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_core_read.h>
#include "../kprobe/kprobe.h" /* the same record as the kprobe app */

char LICENSE[] SEC("license") = "Dual BSD/GPL";

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 256 * 1024);
} rb SEC(".maps");

SEC("fentry/do_unlinkat")
int BPF_PROG(unlink_entry, int dfd, struct filename *name)
{
	struct event *e = bpf_ringbuf_reserve(&rb, sizeof(*e), 0);
	if (!e)
		return 0;
	e->pid = bpf_get_current_pid_tgid() >> 32;
	e->is_ret = 0;
	e->ret = 0;
	bpf_probe_read_kernel_str(&e->filename, sizeof(e->filename), BPF_CORE_READ(name, name));
	bpf_ringbuf_submit(e, 0);
	return 0;
}

SEC("fexit/do_unlinkat")
int BPF_PROG(unlink_exit, int dfd, struct filename *name, long ret)
{
	struct event *e = bpf_ringbuf_reserve(&rb, sizeof(*e), 0);
	if (!e)
		return 0;
	e->pid = bpf_get_current_pid_tgid() >> 32;
	e->is_ret = 1;
	e->ret = (int)ret;
	e->filename[0] = 0;
	bpf_ringbuf_submit(e, 0);
	return 0;
}
