// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/* execve: print every execve() call and its result (events come through a perf buffer), in the
 * layout of bcc's execsnoop.
 *
 *   execve [-j] [-x] [-t SECONDS]           (-x: include failed calls, as execsnoop's -x)
 *
 *   PCOMM            PID    PPID   RET ARGS
 *   echo             4242   4100     0 /bin/echo hello       (the path and the first argument only)
 *
 * -j: {"event":"exec","pid":..,"ppid":..,"uid":..,"ret":..,"comm":"..","filename":"..","arg1":".."}
 */
#include "common.h"
#include "buffer.h"
#include "execve.h"
#include "execve.skel.h"

static const char synopsis[] = "[-j] [-x] [-t SECONDS]";

static bool include_failed; /* -x: execsnoop's --fails; without it, successful calls only */

static int handle_event(void *ctx, void *data, size_t size)
{
	const struct event *e = (const struct event *)data;
	(void)ctx;
	if (size < sizeof(*e))
		return 0;
	if (!include_failed && e->ret < 0)
		return 0;
	if (json_out) {
		json_begin("exec");
		json_int("pid", e->pid);
		json_int("ppid", e->ppid);
		json_uint("uid", e->uid);
		json_int("ret", e->ret);
		JSON_FIELD("comm", e->comm);
		JSON_FIELD("filename", e->filename);
		JSON_FIELD("arg1", e->arg1);
		json_end();
		return 0;
	}
	printf("%-16s %-6d %-6d %3d %s%s%s\n", STR(e->comm), e->pid, e->ppid, e->ret, STR(e->filename),
	       e->arg1[0] ? " " : "", STR(e->arg1));
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
	while ((opt = getopt(argc, argv, "jxt:")) != -1) {
		if (opt == 'j' || opt == 'x') {
			*(opt == 'j' ? &json_out : &include_failed) = true;
			continue;
		}
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
	if (!json_out) {
		printf("%-16s %-6s %-6s %3s %s\n", "PCOMM", "PID", "PPID", "RET", "ARGS");
		fflush(stdout);
	}
	run_for(seconds);
	err = app_buffer__run(buf);
out:
	app_buffer__free(buf);
	execve_bpf__destroy(skel);
	return err;
}
