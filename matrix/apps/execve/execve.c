// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/* execve: print every execve() call (events come through a perf buffer).
 *
 *   execve [-t SECONDS]
 *
 *   EXECVE pid=.. uid=.. comm=.. filename=.. arg1=..
 */
#include "common.h"
#include "buffer.h"
#include "execve.h"
#include "execve.skel.h"

static const char synopsis[] = "[-t SECONDS]";

static int handle_event(void *ctx, void *data, size_t size)
{
	const struct event *e = (const struct event *)data;
	(void)ctx;
	if (size < sizeof(*e))
		return 0;
	printf("EXECVE pid=%d uid=%u comm=%s filename=%s arg1=%s\n", e->pid, e->uid, STR(e->comm),
	       STR(e->filename), STR(e->arg1));
	fflush(stdout);
	return 0;
}

int main(int argc, char **argv)
{
	struct execve_bpf *skel;
	struct app_buffer *buf = NULL;
	double seconds = 0;
	int opt, err;

	app_init("execve");
	while ((opt = getopt(argc, argv, "t:")) != -1) {
		if (opt == 't' && parse_num(optarg, true, &seconds))
			continue;
		return usage("bad option", synopsis);
	}
	if (optind != argc)
		return usage("unexpected argument", synopsis);

	skel = execve_bpf__open_and_load();
	if (!skel)
		return fail("open and load BPF skeleton", errno);
	err = execve_bpf__attach(skel);
	if (err) {
		err = fail("attach BPF programs", err);
		goto out;
	}
	buf = app_buffer__new(skel->maps.events, handle_event, NULL);
	if (!buf) {
		err = fail("open perf buffer", errno);
		goto out;
	}

	print_attached("Ctrl-C to stop");
	run_for(seconds);
	err = app_buffer__run(buf);
out:
	app_buffer__free(buf);
	execve_bpf__destroy(skel);
	return err;
}
