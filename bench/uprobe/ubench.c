// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/* ubench: the uprobe benchmark's guest. Attaches ubench.bpf.c's programs to FUNCTION in BINARY and
 * consumes their ring buffer records silently, counting them.
 *
 *   ubench [-m entry|return|both] [-i MS] BINARY FUNCTION      (default: entry, -i 0)
 *
 * -i 0: a blocking poll, woken by the producers (the kernel and the agent wake a waiting consumer
 * from the hit that finds it caught up, so a consumer that keeps up costs each hit a wake-up);
 * -i MS: a batching consumer: drain what is there, then sleep MS ms, so hits rarely find it waiting.
 * Drops (a full ring) are reported by the run: the kernel's ring buffer does not count them, ours does
 * ("wasm-bpf: userspace: map 'rb': N records refused because it was full").
 * The run stops on Ctrl-C or when the launched command exits; the guest is unwound then, so it cannot
 * print at its end: it prints "ubench: records N" (the running total) after every poll that delivered
 * records, and the last such line is the total. */
#include "common.h"
#include "buffer.h"
#include "ubench.h"
#include "ubench.skel.h"

static const char synopsis[] = "[-m entry|return|both] [-i MS] BINARY FUNCTION";

static unsigned long long records;

static int count_record(void *ctx, void *data, size_t size)
{
	(void)ctx;
	(void)data;
	(void)size;
	records++;
	return 0;
}

int main(int argc, char **argv)
{
	struct ubench_bpf *skel;
	struct app_buffer *buf = NULL;
	bool entry = true, ret = false;
	double interval_ms = 0;
	int opt, err = 0;

	app_init("ubench");
	while ((opt = getopt(argc, argv, "m:i:")) != -1) {
		if (opt == 'i' && parse_num(optarg, true, &interval_ms))
			continue;
		if (opt == 'm' && !strcmp(optarg, "entry")) {
			entry = true, ret = false;
			continue;
		}
		if (opt == 'm' && !strcmp(optarg, "return")) {
			entry = false, ret = true;
			continue;
		}
		if (opt == 'm' && !strcmp(optarg, "both")) {
			entry = true, ret = true;
			continue;
		}
		return usage("bad option", synopsis);
	}
	if (optind != argc - 2)
		return usage("need a binary path and a function name", synopsis);

	static char target[4096];
	snprintf(target, sizeof(target), "%s:%s", argv[optind], argv[optind + 1]);

	skel = ubench_bpf__open_and_load();
	if (!skel)
		return fail("open and load BPF skeleton", errno);
	if (entry) {
		bpf_program__set_attach_target(skel->progs.bench_entry, 0, target);
		skel->links.bench_entry = bpf_program__attach(skel->progs.bench_entry);
		if (!skel->links.bench_entry) {
			err = fail("attach the uprobe", errno);
			goto out;
		}
	}
	if (ret) {
		bpf_program__set_attach_target(skel->progs.bench_return, 0, target);
		skel->links.bench_return = bpf_program__attach(skel->progs.bench_return);
		if (!skel->links.bench_return) {
			err = fail("attach the uretprobe", errno);
			goto out;
		}
	}
	buf = app_buffer__new(skel->maps.rb, count_record, NULL);
	if (!buf) {
		err = fail("open ring buffer", errno);
		goto out;
	}
	print_attached("Ctrl-C to stop");
	for (;;) {
		/* batching: polls without waiting until the ring is empty (one poll hands over at most its
		 * buffer's worth), then the sleep */
		int n = app_buffer__poll(buf, interval_ms > 0 ? 0 : 1000);
		if (n < 0) {
			err = fail("poll buffer", n);
			break;
		}
		if (n > 0)
			printf("ubench: records %llu\n", records);
		if (interval_ms > 0 && n == 0)
			sleep_ms(interval_ms);
	}
out:
	app_buffer__free(buf);
	ubench_bpf__destroy(skel);
	return err;
}
