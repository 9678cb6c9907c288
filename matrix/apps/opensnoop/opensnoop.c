// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/* opensnoop: print openat() calls and their results, in the layout of bcc/libbpf-tools opensnoop.
 *
 *   opensnoop [-j] [-x] [-p PID] [-t SECONDS]     (-x: failed opens only; -p: that process only)
 *
 *   PID    COMM              FD ERR PATH
 *   4242   cat                3   0 /etc/hostname
 *   4242   cat               -1   2 /no/such/file           (FD -1 and ERR the errno on failure)
 *
 * -j: {"event":"open","pid":..,"comm":"..","ret":..,"flags":..,"filename":".."}
 *     (ret: the fd or -errno; flags: the O_* flags)
 */
#include "common.h"
#include "buffer.h"
#include "opensnoop.h"
#include "opensnoop.skel.h"

static const char synopsis[] = "[-j] [-x] [-p PID] [-t SECONDS]";

static bool failed_only; /* -x */

static int handle_event(void *ctx, void *data, size_t size)
{
	const struct event *e = (const struct event *)data;
	(void)ctx;
	if (size < sizeof(*e))
		return 0;
	if (failed_only && e->ret >= 0)
		return 0;
	if (json_out) {
		json_begin("open");
		json_int("pid", e->pid);
		JSON_FIELD("comm", e->comm);
		json_int("ret", e->ret);
		json_int("flags", e->flags);
		JSON_FIELD("filename", e->filename);
		json_end();
		return 0;
	}
	printf("%-6d %-16s %3d %3d %s\n", e->pid, STR(e->comm), e->ret >= 0 ? e->ret : -1,
	       e->ret >= 0 ? 0 : -e->ret, STR(e->filename));
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
	while ((opt = getopt(argc, argv, "jxp:t:")) != -1) {
		if (opt == 'j' || opt == 'x') {
			*(opt == 'j' ? &json_out : &failed_only) = true;
			continue;
		}
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
	if (!json_out) {
		printf("%-6s %-16s %3s %3s %s\n", "PID", "COMM", "FD", "ERR", "PATH");
		fflush(stdout);
	}
	run_for(seconds);
	err = app_buffer__run(buf);
out:
	app_buffer__free(buf);
	opensnoop_bpf__destroy(skel);
	return err;
}
