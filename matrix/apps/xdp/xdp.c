// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/* xdp: count received packets per IP protocol with an XDP program; every interval print the totals
 * so far (since attach), one row per protocol seen, after a blank line and the time.
 *
 *   xdp [-j] [-i INTERVAL_MS] [-t SECONDS] [IFNAME]     (defaults: 1000 ms, lo)
 *
 *   12:00:01
 *   PROTO    PACKETS      BYTES
 *   UDP            5        210
 *
 * -j: {"event":"proto","proto":"TCP"|"UDP"|"ICMP"|"ICMPv6"|"<number>","packets":..,"bytes":..}
 */
#include "common.h"
#include "xdp.h"
#include "xdp.skel.h"

#ifndef __wasm__
#include <net/if.h>
#endif

static const char synopsis[] = "[-j] [-i INTERVAL_MS] [-t SECONDS] [IFNAME]";

/* Returns 0 or a negative errno. */
static int print_stats(int fd)
{
	struct proto_stats st;
	bool header = false;
	for (__u32 proto = 0; proto < MAX_PROTO; proto++) {
		int err = bpf_map_lookup_elem(fd, &proto, &st);
		if (err)
			return err;
		if (!st.packets)
			continue;
		if (json_out) {
			json_begin("proto");
			json_str("proto", ip_proto_str(proto), STR_MAX);
			json_uint("packets", st.packets);
			json_uint("bytes", st.bytes);
			json_end();
			continue;
		}
		if (!header)
			printf("\n%s\n%-6s %10s %10s\n", time_of_day(), "PROTO", "PACKETS", "BYTES");
		header = true;
		printf("%-6s %10llu %10llu\n", ip_proto_str(proto), (unsigned long long)st.packets,
		       (unsigned long long)st.bytes);
		fflush(stdout);
	}
	return 0;
}

int main(int argc, char **argv)
{
	struct xdp_bpf *skel;
	const char *ifname = "lo";
	double interval_ms = 1000, seconds = 0;
	int opt, err;

	app_init("xdp");
	while ((opt = getopt(argc, argv, "ji:t:")) != -1) {
		if (opt == 'j') {
			json_out = true;
			continue;
		}
		if (opt == 'i' && parse_num(optarg, false, &interval_ms) && interval_ms > 0)
			continue;
		if (opt == 't' && parse_num(optarg, true, &seconds))
			continue;
		return usage("bad option", synopsis);
	}
	if (optind < argc)
		ifname = argv[optind++];
	if (optind != argc)
		return usage("unexpected argument", synopsis);

	skel = xdp_bpf__open_and_load();
	if (!skel)
		return fail("open and load BPF skeleton", errno);

#ifdef __wasm__
	/* the host attaches an XDP program to the interface of that name */
	bpf_program__set_attach_target(skel->progs.xdp_count, 0, ifname);
	err = xdp_bpf__attach(skel);
#else
	int ifindex = if_nametoindex(ifname);
	if (!ifindex) {
		err = -errno;
	} else {
		skel->links.xdp_count = bpf_program__attach_xdp(skel->progs.xdp_count, ifindex);
		err = skel->links.xdp_count ? 0 : -errno;
	}
#endif
	if (err) {
		err = fail("attach XDP program", err);
		goto out;
	}

	print_attached("Ctrl-C to stop");
	run_for(seconds);
	while (keep_running()) {
		sleep_ms(interval_ms);
		err = print_stats(bpf_map__fd(skel->maps.stats));
		if (err) {
			err = fail("read counters", err);
			goto out;
		}
	}
out:
	xdp_bpf__destroy(skel);
	return err;
}
