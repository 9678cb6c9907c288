/* sockops.h: the record sockops.bpf.c sends when a TCP connection is established. */
#ifndef SOCKOPS_H
#define SOCKOPS_H

struct tcp_event {
	__u8 local_addr[16];  /* network byte order; IPv4 uses the first 4 bytes */
	__u8 remote_addr[16];
	__u16 local_port;     /* host byte order */
	__u16 remote_port;
	__u8 ipver;           /* 4 or 6 */
	__u8 active;          /* 1: we connected (active open), 0: we accepted (passive open) */
	__u8 pad[2];
};

_Static_assert(sizeof(struct tcp_event) == 40, "struct tcp_event layout");

#endif
