/* xdp.h: the value of the `stats` array of xdp.bpf.c (index: IP protocol number, 0-255). */
#ifndef XDP_H
#define XDP_H

#define MAX_PROTO 256

struct proto_stats {
	__u64 packets;
	__u64 bytes;
};

_Static_assert(sizeof(struct proto_stats) == 16, "struct proto_stats layout");

#endif
