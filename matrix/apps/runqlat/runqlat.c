// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/* runqlat: run-queue latency histograms. Every INTERVAL seconds the user side walks the `hists`
 * map (bpf_map_get_next_key + bpf_map_lookup_elem), prints one line per key, then deletes the keys.
 *
 *   runqlat [-P] [-t SECONDS] [INTERVAL_S [COUNT]]    (defaults: 1 s, until stopped)
 *
 *   HIST key=.. total=.. slots=s0,s1,...,s25
 *   key: 0 (all tasks) or, with -P, a process id; slots[i]: waits of [2^i, 2^(i+1)) us.
 */
#include "common.h"
#include "runqlat.h"
#include "runqlat.skel.h"

static const char synopsis[] = "[-P] [-t SECONDS] [INTERVAL_S [COUNT]]";

#define MAX_KEYS 10240

/* Print and delete every histogram. */
static void print_hists(int fd)
{
	static __u32 keys[MAX_KEYS];
	__u32 key = (__u32)-2; /* a key that is never used: get_next_key then starts at the first */
	__u32 next;
	struct hist h;
	int n = 0;

	/* collect the keys first: deleting while walking would restart the walk */
	while (n < MAX_KEYS && bpf_map_get_next_key(fd, &key, &next) == 0) {
		keys[n++] = next;
		key = next;
	}
	for (int i = 0; i < n; i++) {
		unsigned long long total = 0;
		if (bpf_map_lookup_elem(fd, &keys[i], &h))
			continue; /* deleted meanwhile */
		for (int s = 0; s < MAX_SLOTS; s++)
			total += h.slots[s];
		printf("HIST key=%u total=%llu slots=", keys[i], total);
		for (int s = 0; s < MAX_SLOTS; s++)
			printf(s ? ",%u" : "%u", h.slots[s]);
		printf("\n");
		fflush(stdout);
	}
	for (int i = 0; i < n; i++)
		bpf_map_delete_elem(fd, &keys[i]);
}

int main(int argc, char **argv)
{
	struct runqlat_bpf *skel;
	double interval = 1, count = 0, seconds = 0;
	bool per_process = false;
	int opt, err;

	app_init("runqlat");
	while ((opt = getopt(argc, argv, "Pt:")) != -1) {
		if (opt == 'P') {
			per_process = true;
			continue;
		}
		if (opt == 't' && parse_num(optarg, true, &seconds))
			continue;
		return usage("bad option", synopsis);
	}
	if (optind < argc && !(parse_num(argv[optind++], true, &interval) && interval > 0))
		return usage("bad interval", synopsis);
	if (optind < argc && !(parse_num(argv[optind++], false, &count) && count > 0))
		return usage("bad count", synopsis);
	if (optind != argc)
		return usage("unexpected argument", synopsis);

	skel = runqlat_bpf__open();
	if (!skel)
		return fail("open BPF skeleton", errno);

	/* patch .rodata before load */
	skel->rodata->targ_per_process = per_process;

	err = runqlat_bpf__load(skel);
	if (err) {
		err = fail("load BPF skeleton", err);
		goto out;
	}
	err = runqlat_bpf__attach(skel);
	if (err) {
		err = fail("attach BPF programs", err);
		goto out;
	}

	print_attached("Ctrl-C to stop");
	run_for(seconds);
	for (double i = 0; keep_running() && (count == 0 || i < count); i++) {
		sleep_ms(interval * 1000);
		print_hists(bpf_map__fd(skel->maps.hists));
	}
out:
	runqlat_bpf__destroy(skel);
	return err;
}
