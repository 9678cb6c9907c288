// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/* ubench.bpf.c: the uprobe benchmark's programs: at each entry (uprobe) and return (uretprobe) of
 * `int bench_fn(int)`, reserve a 16-byte ring buffer record, fill it and submit it. The target is
 * given by the guest at attach time. */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include "ubench.h"

char LICENSE[] SEC("license") = "Dual BSD/GPL";

/* 32 MiB: a whole run's records (2 x 500k x 24 bytes) fit even if the consumer falls behind */
struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 32 * 1024 * 1024);
} rb SEC(".maps");

SEC("uprobe")
int BPF_KPROBE(bench_entry, int a)
{
	struct record *r = bpf_ringbuf_reserve(&rb, sizeof(*r), 0);
	if (!r)
		return 0;
	r->pid_tgid = bpf_get_current_pid_tgid();
	r->value = a;
	r->is_ret = 0;
	bpf_ringbuf_submit(r, 0);
	return 0;
}

SEC("uretprobe")
int BPF_KRETPROBE(bench_return, int ret)
{
	struct record *r = bpf_ringbuf_reserve(&rb, sizeof(*r), 0);
	if (!r)
		return 0;
	r->pid_tgid = bpf_get_current_pid_tgid();
	r->value = ret;
	r->is_ret = 1;
	bpf_ringbuf_submit(r, 0);
	return 0;
}
