// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/* fentry: print unlink()/unlinkat() calls, seen by fentry and fexit programs on do_unlinkat().
 *
 *   fentry [-t SECONDS]
 *
 *   UNLINK pid=.. filename=..
 *   UNLINK_RET pid=.. ret=..      (ret: 0 or -errno)
 */
#include "common.h"
#include "buffer.h"
#include "fentry.h"
#include "fentry.skel.h"

static const char synopsis[] = "[-t SECONDS]";

static int handle_event(void *ctx, void *data, size_t size)
{
	const struct event *e = (const struct event *)data;
	(void)ctx;
	if (size < sizeof(*e))
		return 0;
	if (e->is_ret)
		printf("UNLINK_RET pid=%d ret=%lld\n", e->pid, (long long)e->ret);
	else
		printf("UNLINK pid=%d filename=%s\n", e->pid, STR(e->filename));
	fflush(stdout);
	return 0;
}

int main(int argc, char **argv)
{
	struct fentry_bpf *skel;
	struct app_buffer *buf = NULL;
	double seconds = 0;
	int opt, err;

	app_init("fentry");
	while ((opt = getopt(argc, argv, "t:")) != -1) {
		if (opt == 't' && parse_num(optarg, true, &seconds))
			continue;
		return usage("bad option", synopsis);
	}
	if (optind != argc)
		return usage("unexpected argument", synopsis);

	skel = fentry_bpf__open_and_load();
	if (!skel)
		return fail("open and load BPF skeleton", errno);
	err = fentry_bpf__attach(skel);
	if (err) {
		err = fail("attach fentry/fexit programs", err);
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
	fentry_bpf__destroy(skel);
	return err;
}
