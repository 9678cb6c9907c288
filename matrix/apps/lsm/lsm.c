// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/* lsm: print every program execution, seen from the BPF LSM hook bprm_check_security.
 *
 *   lsm [-t SECONDS]
 *
 *   LSM pid=.. comm=.. filename=..
 */
#include "common.h"
#include "buffer.h"
#include "lsm.h"
#include "lsm.skel.h"

static const char synopsis[] = "[-t SECONDS]";

static int handle_event(void *ctx, void *data, size_t size)
{
	const struct event *e = (const struct event *)data;
	(void)ctx;
	if (size < sizeof(*e))
		return 0;
	printf("LSM pid=%d comm=%s filename=%s\n", e->pid, STR(e->comm), STR(e->filename));
	fflush(stdout);
	return 0;
}

int main(int argc, char **argv)
{
	struct lsm_bpf *skel;
	struct app_buffer *buf = NULL;
	double seconds = 0;
	int opt, err;

	app_init("lsm");
	while ((opt = getopt(argc, argv, "t:")) != -1) {
		if (opt == 't' && parse_num(optarg, true, &seconds))
			continue;
		return usage("bad option", synopsis);
	}
	if (optind != argc)
		return usage("unexpected argument", synopsis);

	skel = lsm_bpf__open_and_load();
	if (!skel)
		return fail("open and load BPF skeleton", errno);
	err = lsm_bpf__attach(skel);
	if (err) {
		err = fail("attach BPF LSM program", err);
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
	lsm_bpf__destroy(skel);
	return err;
}
