// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/* lsm: print every program execution, seen from the BPF LSM hook bprm_check_security.
 *
 *   lsm [-j] [-t SECONDS]
 *
 *   PID     COMM             FILENAME
 *   4242    sh               /bin/true
 *
 * -j: {"event":"exec","pid":..,"comm":"..","filename":".."}
 */
#include "common.h"
#include "buffer.h"
#include "lsm.h"
#include "lsm.skel.h"

static const char synopsis[] = "[-j] [-t SECONDS]";

static int handle_event(void *ctx, void *data, size_t size)
{
	const struct event *e = (const struct event *)data;
	(void)ctx;
	if (size < sizeof(*e))
		return 0;
	if (json_out) {
		json_begin("exec");
		json_int("pid", e->pid);
		JSON_FIELD("comm", e->comm);
		JSON_FIELD("filename", e->filename);
		json_end();
		return 0;
	}
	printf("%-7d %-16s %s\n", e->pid, STR(e->comm), STR(e->filename));
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
	while ((opt = getopt(argc, argv, "jt:")) != -1) {
		if (opt == 'j') {
			json_out = true;
			continue;
		}
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
	if (!json_out) {
		printf("%-7s %-16s %s\n", "PID", "COMM", "FILENAME");
		fflush(stdout);
	}
	run_for(seconds);
	err = app_buffer__run(buf);
out:
	app_buffer__free(buf);
	lsm_bpf__destroy(skel);
	return err;
}
