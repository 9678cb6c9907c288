// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/* sockfilter: a socket filter program that parses Ethernet + IPv4 (+ TCP/UDP ports) with
 * bpf_skb_load_bytes and reports every IPv4 packet the socket sees (after libbpf-bootstrap's). */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>
#include "sockfilter.h"

char LICENSE[] SEC("license") = "Dual BSD/GPL";

#define ETH_HLEN 14
#define ETH_P_IP 0x0800
#define IP_MF 0x2000
#define IP_OFFSET 0x1FFF
#define IPPROTO_TCP 6
#define IPPROTO_UDP 17

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 256 * 1024);
} rb SEC(".maps");

SEC("socket")
int socket_handler(struct __sk_buff *skb)
{
	const u32 nhoff = ETH_HLEN;
	struct so_event *e;
	u16 h_proto, frag_off;
	u8 verlen, proto;
	u16 ports[2] = {};

	if (bpf_skb_load_bytes(skb, 12, &h_proto, sizeof(h_proto)) || h_proto != bpf_htons(ETH_P_IP))
		return 0;
	if (bpf_skb_load_bytes(skb, nhoff + offsetof(struct iphdr, frag_off), &frag_off, 2) ||
	    bpf_skb_load_bytes(skb, nhoff + offsetof(struct iphdr, protocol), &proto, 1) ||
	    bpf_skb_load_bytes(skb, nhoff, &verlen, 1))
		return 0;
	/* ports are in the first fragment only */
	if ((proto == IPPROTO_TCP || proto == IPPROTO_UDP) && !(bpf_ntohs(frag_off) & IP_OFFSET))
		bpf_skb_load_bytes(skb, nhoff + ((verlen & 0xF) << 2), ports, sizeof(ports));

	e = bpf_ringbuf_reserve(&rb, sizeof(*e), 0);
	if (!e)
		return 0;
	e->ip_proto = proto;
	e->src_port = bpf_ntohs(ports[0]);
	e->dst_port = bpf_ntohs(ports[1]);
	e->len = skb->len;
	if (bpf_skb_load_bytes(skb, nhoff + offsetof(struct iphdr, saddr), e->src_addr, 4) ||
	    bpf_skb_load_bytes(skb, nhoff + offsetof(struct iphdr, daddr), e->dst_addr, 4)) {
		bpf_ringbuf_discard(e, 0);
		return 0;
	}
	bpf_ringbuf_submit(e, 0);
	/* 0: the socket itself receives nothing; the ring buffer is the output */
	return 0;
}
