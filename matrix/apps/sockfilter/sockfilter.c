// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/* sockfilter: print the IPv4 packets seen on a network interface, as parsed by a socket filter
 * program on a raw AF_PACKET socket. On lo each packet shows twice (sent and received).
 *
 *   sockfilter [-j] [-t SECONDS] [IFNAME]    (default lo)
 *
 *   PROTO  SRC                   DST                   LEN
 *   UDP    127.0.0.1:40000       127.0.0.1:9           47      (ports 0 unless TCP/UDP)
 *
 * -j: {"event":"packet","proto":"TCP"|"UDP"|"ICMP"|"<number>","src":"IP","src_port":..,
 *      "dst":"IP","dst_port":..,"len":..}
 */
#include "common.h"
#include "buffer.h"
#include "sockfilter.h"
#include "sockfilter.skel.h"

#ifndef __wasm__
#include <linux/if_ether.h>
#include <linux/if_packet.h>
#include <net/if.h>
#include <sys/socket.h>
#endif

static const char synopsis[] = "[-j] [-t SECONDS] [IFNAME]";

static int handle_event(void *ctx, void *data, size_t size)
{
	const struct so_event *e = (const struct so_event *)data;
	(void)ctx;
	if (size < sizeof(*e))
		return 0;
	if (json_out) {
		json_begin("packet");
		json_str("proto", ip_proto_str(e->ip_proto), STR_MAX);
		json_str("src", ip_str(4, e->src_addr), STR_MAX);
		json_uint("src_port", e->src_port);
		json_str("dst", ip_str(4, e->dst_addr), STR_MAX);
		json_uint("dst_port", e->dst_port);
		json_uint("len", e->len);
		json_end();
		return 0;
	}
	printf("%-6s %-21s %-21s %u\n", ip_proto_str(e->ip_proto), ip_port_str(4, e->src_addr, e->src_port),
	       ip_port_str(4, e->dst_addr, e->dst_port), e->len);
	fflush(stdout);
	return 0;
}

#ifndef __wasm__
/* What the wasm-bpf host does for a socket filter with an interface name as attach target. */
static int open_raw_socket(const char *ifname, int prog_fd)
{
	struct sockaddr_ll sll;
	int sock, err;

	memset(&sll, 0, sizeof(sll));
	sll.sll_family = AF_PACKET;
	sll.sll_protocol = htons(ETH_P_ALL);
	sll.sll_ifindex = if_nametoindex(ifname);
	if (!sll.sll_ifindex)
		return -errno;
	sock = socket(AF_PACKET, SOCK_RAW | SOCK_NONBLOCK | SOCK_CLOEXEC, htons(ETH_P_ALL));
	if (sock < 0)
		return -errno;
	if (bind(sock, (struct sockaddr *)&sll, sizeof(sll)) ||
	    setsockopt(sock, SOL_SOCKET, SO_ATTACH_BPF, &prog_fd, sizeof(prog_fd))) {
		err = -errno;
		close(sock);
		return err;
	}
	return sock;
}
#endif

int main(int argc, char **argv)
{
	struct sockfilter_bpf *skel;
	struct app_buffer *buf = NULL;
	const char *ifname = "lo";
	double seconds = 0;
	int opt, err, sock = -1;

	app_init("sockfilter");
	while ((opt = getopt(argc, argv, "jt:")) != -1) {
		if (opt == 'j') {
			json_out = true;
			continue;
		}
		if (opt == 't' && parse_num(optarg, true, &seconds))
			continue;
		return usage("bad option", synopsis);
	}
	if (optind < argc)
		ifname = argv[optind++];
	if (optind != argc)
		return usage("unexpected argument", synopsis);

	skel = sockfilter_bpf__open_and_load();
	if (!skel)
		return fail("open and load BPF skeleton", errno);

#ifdef __wasm__
	/* the host opens a raw AF_PACKET socket on the interface and attaches the program to it */
	bpf_program__set_attach_target(skel->progs.socket_handler, 0, ifname);
	err = sockfilter_bpf__attach(skel);
#else
	sock = open_raw_socket(ifname, bpf_program__fd(skel->progs.socket_handler));
	err = sock < 0 ? sock : 0;
#endif
	if (err) {
		err = fail("attach socket filter", err);
		goto out;
	}
	buf = app_buffer__new(skel->maps.rb, handle_event, NULL);
	if (!buf) {
		err = fail("open ring buffer", errno);
		goto out;
	}

	print_attached("Ctrl-C to stop");
	if (!json_out) {
		printf("%-6s %-21s %-21s %s\n", "PROTO", "SRC", "DST", "LEN");
		fflush(stdout);
	}
	run_for(seconds);
	err = app_buffer__run(buf);
out:
	app_buffer__free(buf);
	if (sock >= 0)
		close(sock);
	sockfilter_bpf__destroy(skel);
	return err;
}
