/* ffimap: the native C baseline of bench/ffi-map.ts: ns per bpf_map_lookup_elem of key 7 of an ARRAY
 * u32 -> u64 (16 entries), as libbpf's C callers pay it. ffimap N: N lookups after a warm-up of N/10;
 * prints `lookup_array_ns=..`. Build: gcc -O2 ffimap.c -lbpf */
#include <bpf/bpf.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

static uint64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

int main(int argc, char **argv)
{
	long n = argc > 1 ? atol(argv[1]) : 300000;
	int fd = bpf_map_create(BPF_MAP_TYPE_ARRAY, "ffimap", 4, 8, 16, NULL);
	if (fd < 0) {
		fprintf(stderr, "ffimap: bpf_map_create: %d\n", fd);
		return 1;
	}
	__u32 key = 7;
	__u64 val = 42, sink = 0;
	if (bpf_map_update_elem(fd, &key, &val, BPF_ANY)) return 1;
	for (long i = 0; i < n / 10; i++) sink += bpf_map_lookup_elem(fd, &key, &val);
	uint64_t t0 = now_ns();
	for (long i = 0; i < n; i++) {
		sink += bpf_map_lookup_elem(fd, &key, &val);
		sink += val;
	}
	uint64_t t1 = now_ns();
	close(fd);
	printf("lookup_array_ns=%.1f sink=%llu\n", (double)(t1 - t0) / n, (unsigned long long)sink);
	return 0;
}
