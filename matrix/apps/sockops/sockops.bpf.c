// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/* sockops: a BPF_PROG_TYPE_SOCK_OPS program on a cgroup v2 directory; reports every TCP connection
 * of the cgroup's processes when it is established (active: connect(), passive: accept()). */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>
#include "sockops.h"

char LICENSE[] SEC("license") = "Dual BSD/GPL";

#define AF_INET 2
#define AF_INET6 10

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 256 * 1024);
} rb SEC(".maps");

SEC("sockops")
int sockops_handler(struct bpf_sock_ops *skops)
{
	u32 op = skops->op, family = skops->family;
	struct tcp_event *e;

	if (op != BPF_SOCK_OPS_ACTIVE_ESTABLISHED_CB && op != BPF_SOCK_OPS_PASSIVE_ESTABLISHED_CB)
		return 1;
	if (family != AF_INET && family != AF_INET6)
		return 1;

	e = bpf_ringbuf_reserve(&rb, sizeof(*e), 0);
	if (!e)
		return 1;
	__builtin_memset(e, 0, sizeof(*e));
	e->active = op == BPF_SOCK_OPS_ACTIVE_ESTABLISHED_CB;
	e->local_port = skops->local_port;                  /* host byte order */
	e->remote_port = bpf_ntohl(skops->remote_port);     /* network byte order, upper 16 bits */
	if (family == AF_INET) {
		u32 l = skops->local_ip4, r = skops->remote_ip4;
		e->ipver = 4;
		__builtin_memcpy(e->local_addr, &l, 4);
		__builtin_memcpy(e->remote_addr, &r, 4);
	} else {
		u32 l[4], r[4];
		e->ipver = 6;
		l[0] = skops->local_ip6[0]; l[1] = skops->local_ip6[1];
		l[2] = skops->local_ip6[2]; l[3] = skops->local_ip6[3];
		r[0] = skops->remote_ip6[0]; r[1] = skops->remote_ip6[1];
		r[2] = skops->remote_ip6[2]; r[3] = skops->remote_ip6[3];
		__builtin_memcpy(e->local_addr, l, 16);
		__builtin_memcpy(e->remote_addr, r, 16);
	}
	bpf_ringbuf_submit(e, 0);
	return 1;
}
