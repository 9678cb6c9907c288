// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/* kprobe: print unlink()/unlinkat() calls, seen by a kprobe and a kretprobe on do_unlinkat().
 *
 *   kprobe [-j] [-t SECONDS]
 *
 *   PID     EVENT  FILENAME/RET
 *   4242    ENTRY  /tmp/x
 *   4242    RETURN 0                 (0 or -errno)
 *
 * -j: {"event":"unlink","pid":..,"filename":".."}  {"event":"unlink_ret","pid":..,"ret":..}
 *
 * The fentry app is this same user side on its own object: apps/fentry/fentry.c defines the
 * UNLINK_* names below and includes this file.
 */
#ifndef UNLINK_APP
#define UNLINK_APP "kprobe"
#define UNLINK_SKEL_H "kprobe.skel.h"
#define UNLINK_SKEL kprobe_bpf
#define UNLINK_PROGRAMS "kprobes"
#endif
/* UNLINK_SKEL__open_and_load etc.: the skeleton's functions */
#define SKEL_CAT(s, f) s##__##f
#define SKEL_FN(s, f) SKEL_CAT(s, f)

#include "common.h"
#include "buffer.h"
#include "kprobe.h"
#include UNLINK_SKEL_H

static const char synopsis[] = "[-j] [-t SECONDS]";

static int handle_event(void *ctx, void *data, size_t size)
{
	const struct event *e = (const struct event *)data;
	(void)ctx;
	if (size < sizeof(*e))
		return 0;
	if (json_out) {
		json_begin(e->is_ret ? "unlink_ret" : "unlink");
		json_int("pid", e->pid);
		if (e->is_ret)
			json_int("ret", e->ret);
		else
			JSON_FIELD("filename", e->filename);
		json_end();
		return 0;
	}
	if (e->is_ret)
		printf("%-7d %-6s %lld\n", e->pid, "RETURN", (long long)e->ret);
	else
		printf("%-7d %-6s %s\n", e->pid, "ENTRY", STR(e->filename));
	fflush(stdout);
	return 0;
}

int main(int argc, char **argv)
{
	struct UNLINK_SKEL *skel;
	struct app_buffer *buf = NULL;
	double seconds = 0;
	int opt, err;

	app_init(UNLINK_APP);
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

	skel = SKEL_FN(UNLINK_SKEL, open_and_load)();
	if (!skel)
		return fail("open and load BPF skeleton", errno);
	err = SKEL_FN(UNLINK_SKEL, attach)(skel);
	if (err) {
		err = fail("attach " UNLINK_PROGRAMS, err);
		goto out;
	}
	buf = app_buffer__new(skel->maps.rb, handle_event, NULL);
	if (!buf) {
		err = fail("open ring buffer", errno);
		goto out;
	}

	print_attached("Ctrl-C to stop");
	if (!json_out) {
		printf("%-7s %-6s %s\n", "PID", "EVENT", "FILENAME/RET");
		fflush(stdout);
	}
	run_for(seconds);
	err = app_buffer__run(buf);
out:
	app_buffer__free(buf);
	SKEL_FN(UNLINK_SKEL, destroy)(skel);
	return err;
}
