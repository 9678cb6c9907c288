// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/* opensnoop: print openat() calls and their results.
 *
 *   opensnoop [-p PID] [-t SECONDS]
 *
 *   OPEN pid=.. comm=.. ret=.. flags=0x.. filename=..
 *   (ret: the fd or -errno; flags: the O_* flags in hex)
 */
#include "common.h"
#include "buffer.h"
#include "opensnoop.h"
#include "opensnoop.skel.h"

static const char synopsis[] = "[-p PID] [-t SECONDS]";

static int handle_event(void *ctx, void *data, size_t size)
{
	const struct event *e = (const struct event *)data;
	(void)ctx;
	if (size < sizeof(*e))
		return 0;
	printf("OPEN pid=%d comm=%s ret=%d flags=0x%x filename=%s\n", e->pid, STR(e->comm), e->ret,
	       (unsigned)e->flags, STR(e->filename));
	fflush(stdout);
	return 0;
}

int main(int argc, char **argv)
{
	struct opensnoop_bpf *skel;
	struct app_buffer *buf = NULL;
	double pid = 0, seconds = 0;
	int opt, err;

	app_init("opensnoop");
	while ((opt = getopt(argc, argv, "p:t:")) != -1) {
		if (opt == 'p' && parse_num(optarg, false, &pid) && pid <= 0x7fffffff)
			continue;
		if (opt == 't' && parse_num(optarg, true, &seconds))
			continue;
		return usage("bad option", synopsis);
	}
	if (optind != argc)
		return usage("unexpected argument", synopsis);

	skel = opensnoop_bpf__open();
	if (!skel)
		return fail("open BPF skeleton", errno);

	/* patch .rodata before load */
	skel->rodata->targ_pid = (pid_t)pid;

	err = opensnoop_bpf__load(skel);
	if (err) {
		err = fail("load BPF skeleton", err);
		goto out;
	}
	err = opensnoop_bpf__attach(skel);
	if (err) {
		err = fail("attach BPF programs", err);
		goto out;
	}
	buf = app_buffer__new(skel->maps.rb, handle_event, NULL);
	if (!buf) {
		err = fail("open ring buffer", errno);
		goto out;
	}

	print_attached("Ctrl-C to stop");
	run_for(seconds);
	err = app_buffer__run(buf);
out:
	app_buffer__free(buf);
	opensnoop_bpf__destroy(skel);
	return err;
}
