// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/* bootstrap: print process exec and exit events.
 *
 *   bootstrap [-d MIN_DURATION_MS] [-t SECONDS]
 *
 *   EXEC pid=.. ppid=.. comm=.. filename=..
 *   EXIT pid=.. ppid=.. comm=.. exit_code=.. duration_ms=..
 */
#include "common.h"
#include "buffer.h"
#include "bootstrap.h"
#include "bootstrap.skel.h"

static const char synopsis[] = "[-d MIN_DURATION_MS] [-t SECONDS]";

static int handle_event(void *ctx, void *data, size_t size)
{
	const struct event *e = (const struct event *)data;
	(void)ctx;
	if (size < sizeof(*e))
		return 0;
	if (e->exit_event)
		printf("EXIT pid=%d ppid=%d comm=%s exit_code=%u duration_ms=%llu\n", e->pid, e->ppid,
		       STR(e->comm), e->exit_code, (unsigned long long)(e->duration_ns / 1000000));
	else
		printf("EXEC pid=%d ppid=%d comm=%s filename=%s\n", e->pid, e->ppid, STR(e->comm),
		       STR(e->filename));
	fflush(stdout);
	return 0;
}

int main(int argc, char **argv)
{
	struct bootstrap_bpf *skel;
	struct app_buffer *buf = NULL;
	double min_duration_ms = 0, seconds = 0;
	int opt, err;

	app_init("bootstrap");
	while ((opt = getopt(argc, argv, "d:t:")) != -1) {
		if (opt == 'd' && parse_num(optarg, false, &min_duration_ms))
			continue;
		if (opt == 't' && parse_num(optarg, true, &seconds))
			continue;
		return usage("bad option", synopsis);
	}
	if (optind != argc)
		return usage("unexpected argument", synopsis);

	skel = bootstrap_bpf__open();
	if (!skel)
		return fail("open BPF skeleton", errno);

	/* patch .rodata before load */
	skel->rodata->min_duration_ns = (unsigned long long)min_duration_ms * 1000000ULL;

	err = bootstrap_bpf__load(skel);
	if (err) {
		err = fail("load BPF skeleton", err);
		goto out;
	}
	err = bootstrap_bpf__attach(skel);
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
	bootstrap_bpf__destroy(skel);
	return err;
}
