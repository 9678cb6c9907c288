// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/* bootstrap: print process exec and exit events, in libbpf-bootstrap's layout.
 *
 *   bootstrap [-j] [-d MIN_DURATION_MS] [-t SECONDS]
 *
 *   TIME     EVENT COMM             PID     PPID    FILENAME/EXIT CODE
 *   12:00:01 EXEC  sh               4242    4100    /bin/sh
 *   12:00:01 EXIT  sh               4242    4100    [3] (2ms)        (the duration if it is >= 1 ms)
 *
 * -j: {"event":"exec","pid":..,"ppid":..,"comm":"..","filename":".."}
 *     {"event":"exit","pid":..,"ppid":..,"comm":"..","exit_code":..,"duration_ns":..}
 */
#include "common.h"
#include "buffer.h"
#include "bootstrap.h"
#include "bootstrap.skel.h"

static const char synopsis[] = "[-j] [-d MIN_DURATION_MS] [-t SECONDS]";

static int handle_event(void *ctx, void *data, size_t size)
{
	const struct event *e = (const struct event *)data;
	(void)ctx;
	if (size < sizeof(*e))
		return 0;
	if (json_out) {
		json_begin(e->exit_event ? "exit" : "exec");
		json_int("pid", e->pid);
		json_int("ppid", e->ppid);
		JSON_FIELD("comm", e->comm);
		if (e->exit_event) {
			json_uint("exit_code", e->exit_code);
			json_uint("duration_ns", e->duration_ns);
		} else {
			JSON_FIELD("filename", e->filename);
		}
		json_end();
		return 0;
	}
	printf("%-8s %-5s %-16s %-7d %-7d ", time_of_day(), e->exit_event ? "EXIT" : "EXEC", STR(e->comm),
	       e->pid, e->ppid);
	if (!e->exit_event)
		printf("%s\n", STR(e->filename));
	else if (e->duration_ns / 1000000)
		printf("[%u] (%llums)\n", e->exit_code, (unsigned long long)(e->duration_ns / 1000000));
	else
		printf("[%u]\n", e->exit_code);
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
	while ((opt = getopt(argc, argv, "jd:t:")) != -1) {
		if (opt == 'j') {
			json_out = true;
			continue;
		}
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
	if (!json_out) {
		printf("%-8s %-5s %-16s %-7s %-7s %s\n", "TIME", "EVENT", "COMM", "PID", "PPID", "FILENAME/EXIT CODE");
		fflush(stdout);
	}
	run_for(seconds);
	err = app_buffer__run(buf);
out:
	app_buffer__free(buf);
	bootstrap_bpf__destroy(skel);
	return err;
}
