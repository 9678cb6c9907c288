/* sockfilter.h: the record sockfilter.bpf.c sends for each IPv4 packet. */
#ifndef SOCKFILTER_H
#define SOCKFILTER_H

struct so_event {
	__u8 src_addr[4]; /* network byte order */
	__u8 dst_addr[4];
	__u16 src_port;   /* host byte order; 0 unless TCP or UDP */
	__u16 dst_port;
	__u32 len;        /* bytes, from the Ethernet header on */
	__u8 ip_proto;    /* IPPROTO_* */
	__u8 pad[3];
};

_Static_assert(sizeof(struct so_event) == 20, "struct so_event layout");

#endif
