// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/* uprobe: trace calls of uprobe_target_add(int a, int b) in a binary (see target.c), in every
 * process that runs it.
 *
 *   uprobe [-j] [-t SECONDS] BINARY_PATH
 *
 *   UPROBE pid=.. a=.. b=..
 *   URETPROBE pid=.. ret=..
 *
 * -j: {"event":"uprobe","pid":..,"a":..,"b":..}  {"event":"uretprobe","pid":..,"ret":..}
 */
#include "common.h"
#include "buffer.h"
#include "uprobe.h"
#include "uprobe.skel.h"

#define FUNC_NAME "uprobe_target_add"

static const char synopsis[] = "[-j] [-t SECONDS] BINARY_PATH";

static int handle_event(void *ctx, void *data, size_t size)
{
	const struct event *e = (const struct event *)data;
	(void)ctx;
	if (size < sizeof(*e))
		return 0;
	if (json_out) {
		json_begin(e->is_ret ? "uretprobe" : "uprobe");
		json_int("pid", e->pid);
		if (e->is_ret) {
			json_int("ret", e->ret);
		} else {
			json_int("a", e->a);
			json_int("b", e->b);
		}
		json_end();
		return 0;
	}
	if (e->is_ret)
		printf("URETPROBE pid=%d ret=%d\n", e->pid, e->ret);
	else
		printf("UPROBE pid=%d a=%d b=%d\n", e->pid, e->a, e->b);
	fflush(stdout);
	return 0;
}

int main(int argc, char **argv)
{
	struct uprobe_bpf *skel;
	struct app_buffer *buf = NULL;
	double seconds = 0;
	int opt, err;

	app_init("uprobe");
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
		return usage("need one binary path", synopsis);
	const char *binary = argv[optind];

	skel = uprobe_bpf__open_and_load();
	if (!skel)
		return fail("open and load BPF skeleton", errno);

#ifdef __wasm__
	/* the host understands "PATH:FUNCTION" as a uprobe target */
	static char target[4096];
	snprintf(target, sizeof(target), "%s:%s", binary, FUNC_NAME);
	bpf_program__set_attach_target(skel->progs.uprobe_add, 0, target);
	bpf_program__set_attach_target(skel->progs.uretprobe_add, 0, target);
	err = uprobe_bpf__attach(skel);
#else
	LIBBPF_OPTS(bpf_uprobe_opts, opts, .func_name = FUNC_NAME, .retprobe = false);
	skel->links.uprobe_add = bpf_program__attach_uprobe_opts(skel->progs.uprobe_add,
	                                                         -1 /* any process */, binary, 0, &opts);
	err = skel->links.uprobe_add ? 0 : -errno;
	if (!err) {
		opts.retprobe = true;
		skel->links.uretprobe_add = bpf_program__attach_uprobe_opts(skel->progs.uretprobe_add, -1,
		                                                            binary, 0, &opts);
		err = skel->links.uretprobe_add ? 0 : -errno;
	}
#endif
	if (err) {
		err = fail("attach uprobes", err);
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
	uprobe_bpf__destroy(skel);
	return err;
}
