// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/* sockops: print the TCP connections established by the processes of a cgroup v2 directory.
 *
 *   sockops [-j] [-t SECONDS] CGROUP_PATH       (e.g. /sys/fs/cgroup/unified, a cgroup2 mount)
 *
 *   OP      LOCAL                                           REMOTE
 *   active  127.0.0.1:51234                                 127.0.0.1:8080     (IPv6: [addr]:port)
 *
 * -j: {"event":"tcp","op":"active"|"passive","ipver":4|6,"local":"IP","local_port":..,
 *      "remote":"IP","remote_port":..}
 */
#include "common.h"
#include "buffer.h"
#include "sockops.h"
#include "sockops.skel.h"

#ifndef __wasm__
#include <fcntl.h>
#endif

static const char synopsis[] = "[-j] [-t SECONDS] CGROUP_PATH";

static int handle_event(void *ctx, void *data, size_t size)
{
	const struct tcp_event *e = (const struct tcp_event *)data;
	(void)ctx;
	if (size < sizeof(*e))
		return 0;
	if (json_out) {
		json_begin("tcp");
		json_str("op", e->active ? "active" : "passive", 8);
		json_uint("ipver", e->ipver);
		json_str("local", ip_str(e->ipver, e->local_addr), STR_MAX);
		json_uint("local_port", e->local_port);
		json_str("remote", ip_str(e->ipver, e->remote_addr), STR_MAX);
		json_uint("remote_port", e->remote_port);
		json_end();
		return 0;
	}
	printf("%-7s %-47s %s\n", e->active ? "active" : "passive", ip_port_str(e->ipver, e->local_addr, e->local_port),
	       ip_port_str(e->ipver, e->remote_addr, e->remote_port));
	fflush(stdout);
	return 0;
}

int main(int argc, char **argv)
{
	struct sockops_bpf *skel;
	struct app_buffer *buf = NULL;
	const char *cgroup;
	double seconds = 0;
	int opt, err;

	app_init("sockops");
	while ((opt = getopt(argc, argv, "jt:")) != -1) {
		if (opt == 'j') {
			json_out = true;
			continue;
		}
		if (opt == 't' && parse_num(optarg, true, &seconds))
			continue;
		return usage("bad option", synopsis);
	}
	if (optind != argc - 1)
		return usage("need one cgroup path", synopsis);
	cgroup = argv[optind];

	skel = sockops_bpf__open_and_load();
	if (!skel)
		return fail("open and load BPF skeleton", errno);

#ifdef __wasm__
	/* the host attaches the program to that cgroup */
	bpf_program__set_attach_target(skel->progs.sockops_handler, 0, cgroup);
	err = sockops_bpf__attach(skel);
#else
	int cg_fd = open(cgroup, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (cg_fd < 0) {
		err = -errno;
	} else {
		skel->links.sockops_handler = bpf_program__attach_cgroup(skel->progs.sockops_handler, cg_fd);
		err = skel->links.sockops_handler ? 0 : -errno;
		close(cg_fd); /* the link keeps the attachment */
	}
#endif
	if (err) {
		err = fail("attach to cgroup", err);
		goto out;
	}
	buf = app_buffer__new(skel->maps.rb, handle_event, NULL);
	if (!buf) {
		err = fail("open ring buffer", errno);
		goto out;
	}

	print_attached("Ctrl-C to stop");
	if (!json_out) {
		printf("%-7s %-47s %s\n", "OP", "LOCAL", "REMOTE");
		fflush(stdout);
	}
	run_for(seconds);
	err = app_buffer__run(buf);
out:
	app_buffer__free(buf);
	sockops_bpf__destroy(skel);
	return err;
}
