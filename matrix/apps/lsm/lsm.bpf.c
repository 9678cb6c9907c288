// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/* lsm: a BPF LSM program on the bprm_check_security hook (called for every execve), reporting the
 * file about to run. It only observes: it returns the previous hook's verdict. Needs a kernel with
 * CONFIG_BPF_LSM and "bpf" in the active LSMs (lsm= on the kernel command line). */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_core_read.h>
#include "lsm.h"

char LICENSE[] SEC("license") = "GPL";

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 256 * 1024);
} rb SEC(".maps");

SEC("lsm/bprm_check_security")
int BPF_PROG(lsm_bprm_check, struct linux_binprm *bprm, int ret)
{
	struct event *e;

	if (ret != 0)
		return ret; /* an earlier program already denied it */
	e = bpf_ringbuf_reserve(&rb, sizeof(*e), 0);
	if (!e)
		return 0;
	e->pid = bpf_get_current_pid_tgid() >> 32;
	bpf_get_current_comm(&e->comm, sizeof(e->comm));
	bpf_probe_read_kernel_str(&e->filename, sizeof(e->filename), BPF_CORE_READ(bprm, filename));
	bpf_ringbuf_submit(e, 0);
	return 0;
}
