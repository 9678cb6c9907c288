// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/* runqlat: run-queue latency histograms. Every INTERVAL seconds the user side walks the `hists`
 * map (bpf_map_get_next_key + bpf_map_lookup_elem), prints each histogram, then deletes the keys.
 *
 *   runqlat [-j] [-m] [-P] [-t SECONDS] [INTERVAL_S [COUNT]]    (defaults: 1 s, until stopped)
 *
 * A log2 histogram per interval, as libbpf-tools' runqlat prints it (hist.h): -m in msecs instead
 * of usecs, -P one per process, after a line "pid = PID". An interval with no wait prints nothing.
 *
 *   (blank line)
 *        usecs               : count    distribution
 *            0 -> 1          : 12       |****************************************|
 *            2 -> 3          : 3        |**********                              |
 *
 * -j: {"event":"hist","key":..,"unit":"usecs"|"msecs","total":..,"slots":[s0,...,s25]}
 *     key: 0 (all tasks) or, with -P, a process id; slots[i]: waits of [2^i, 2^(i+1)) units.
 */
#include "common.h"
#include "hist.h"
#include "runqlat.h"
#include "runqlat.skel.h"

static const char synopsis[] = "[-j] [-m] [-P] [-t SECONDS] [INTERVAL_S [COUNT]]";
static bool per_process, msecs;

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
		if (json_out) {
			json_begin("hist");
			json_uint("key", keys[i]);
			json_str("unit", msecs ? "msecs" : "usecs", 8);
			json_uint("total", total);
			json_uints("slots", h.slots, MAX_SLOTS);
			json_end();
			continue;
		}
		printf("\n");
		if (per_process)
			printf("pid = %u\n", keys[i]);
		print_log2_hist(h.slots, MAX_SLOTS, msecs ? "msecs" : "usecs");
	}
	for (int i = 0; i < n; i++)
		bpf_map_delete_elem(fd, &keys[i]);
}

int main(int argc, char **argv)
{
	struct runqlat_bpf *skel;
	double interval = 1, count = 0, seconds = 0;
	int opt, err;

	app_init("runqlat");
	while ((opt = getopt(argc, argv, "jmPt:")) != -1) {
		if (opt == 'j' || opt == 'm' || opt == 'P') {
			*(opt == 'j' ? &json_out : opt == 'm' ? &msecs : &per_process) = true;
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
	skel->rodata->targ_ms = msecs;

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
