/* ringbench: ring buffer consumption cost, the same source built as a wasm-bpf guest and as a native
 * libbpf program. Records come from bench.bpf.c's getppid tracepoint, fired by bench/src/producer.c.
 *
 *   ringbench drain  PRODUCER_PID K [W]
 *                                     twice: wait until the producer queued the records (nobody
 *                                     polling), then time polling (timeout 0) until all are consumed;
 *                                     first W records (default K/4: cold, the runtime's JIT warms up;
 *                                     reported on a `# warm` line, after which the runner releases the
 *                                     next K), then K (the result)
 *   ringbench steady PRODUCER_PID K   poll (timeout 100 ms) while the producer emits K records at its
 *                                     fixed rate; measure this process's CPU time from the first to
 *                                     the K-th record
 *   ringbench empty 0 N               N polls (timeout 0) of the empty ring: the fixed cost of one poll
 *                                     call (host call + N-API + one poll/epoll_wait syscall)
 *
 * The consumer prints `# ready` once attached and filtering on PRODUCER_PID (the runner then lets the
 * producer go), then one result line of key=value pairs, then lingers 300 ms before cleaning up (so
 * that the runner can read /proc/PID/task/x/schedstat before teardown costs show up).
 */
#include "common.h"

#define POLL_TIMEOUT_MS 100

static long want;
static long seen;
static uint64_t sum_seq, expect_seq, out_of_order;
static uint64_t cpu_first, cpu_last, wall_first, wall_last;
static int steady;

static int on_record(void *ctx, void *data, size_t size)
{
	const __u64 *r = (const __u64 *)data; /* {pid,pad} seq ts extra */
	(void)ctx;
	if (size < 32)
		return 0;
	uint64_t seq = r[1];
	if (seq != expect_seq)
		out_of_order++;
	expect_seq = seq + 1;
	sum_seq += seq;
	seen++;
	if (steady) {
		if (seen == 1) {
			cpu_first = cpu_ns();
			wall_first = now_ns();
		} else if (seen == want) {
			cpu_last = cpu_ns();
			wall_last = now_ns();
		}
	}
	return 0;
}

#ifdef __wasm__
static char rec_buf[4096];
static struct bench *g_bench;
static int poll_once(int timeout_ms)
{
	return wasm_bpf_buffer_poll(g_bench->handle, g_bench->rb_fd, (int32_t)(uintptr_t)on_record, 0, rec_buf,
	                            (int)sizeof(rec_buf), timeout_ms);
}
#else
static struct ring_buffer *g_rb;
static int poll_once(int timeout_ms)
{
	return ring_buffer__poll(g_rb, timeout_ms);
}
#endif

static __u64 emitted(struct bench *b)
{
	__u32 k = 1;
	__u64 v = 0;
	bpf_map_lookup_elem(b->cfg_fd, &k, &v);
	return v;
}

int main(int argc, char **argv)
{
	if (argc < 4 || (strcmp(argv[1], "drain") && strcmp(argv[1], "steady") && strcmp(argv[1], "empty"))) {
		fprintf(stderr, "usage: ringbench drain|steady|empty PRODUCER_PID K\n");
		return 2;
	}
	steady = !strcmp(argv[1], "steady");
	__u64 pid = (__u64)atol(argv[2]);
	want = atol(argv[3]);

	struct bench b;
	bench_load(&b);
	bench_attach(&b);
#ifdef __wasm__
	g_bench = &b;
	/* opens the host-side reader (first poll of this map) */
	if (poll_once(0) < 0)
		die("first poll", EINVAL);
#else
	g_rb = ring_buffer__new(b.rb_fd, on_record, NULL, NULL);
	if (!g_rb)
		die("ring_buffer__new", errno);
#endif
	__u32 k = 0;
	if (bpf_map_update_elem(b.cfg_fd, &k, &pid, BPF_ANY))
		die("cfg update", errno);
	/* let the runtime settle (e.g. V8's background tier-up of the module) before anything is measured */
	sleep_ms(200);
	printf("# ready\n");
	fflush(stdout);

	uint64_t deadline = now_ns() + 60ull * 1000000000ull;
	if (!strcmp(argv[1], "empty")) {
		for (long i = 0; i < want / 10; i++) /* warm-up */
			poll_once(0);
		uint64_t t0 = now_ns();
		int bad = 0;
		for (long i = 0; i < want; i++)
			bad |= poll_once(0);
		uint64_t t1 = now_ns();
		if (bad)
			die("empty poll", bad);
		printf("flavour=%s mode=empty polls=%ld empty_poll_ns=%.1f\n", FLAVOUR, want, (double)(t1 - t0) / (double)want);
		fflush(stdout);
		bench_close(&b);
		return 0;
	}
	if (!steady) {
		long warm = argc > 4 ? atol(argv[4]) : want / 4;
		long rounds[2] = { warm, want };
		__u64 total = 0;
		for (int round = 0; round < 2; round++) {
			long k = rounds[round];
			total += (__u64)k;
			/* wait for the queue to fill; nobody consumes meanwhile */
			while (emitted(&b) < total) {
				if (now_ns() > deadline)
					die("waiting for the producer", ETIMEDOUT);
				sleep_ms(1);
			}
			sleep_ms(20); /* the last record is submitted just after the counter moved */
			long start = seen;
			uint64_t c0 = cpu_ns(), t0 = now_ns();
			long polls = 0;
			while (seen < (long)total) {
				int n = poll_once(0);
				polls++;
				if (n < 0)
					die("poll", n);
				if (now_ns() > deadline)
					die("draining", ETIMEDOUT);
			}
			uint64_t t1 = now_ns(), c1 = cpu_ns();
			long got = seen - start;
			if (round == 0) {
				printf("# warm records=%ld cold_ns_per_rec=%.2f\n", got, (double)(t1 - t0) / (double)got);
				fflush(stdout);
				continue;
			}
			printf("flavour=%s mode=drain records=%ld polls=%ld drain_ns_per_rec=%.2f drain_cpu_ns_per_rec=%.2f "
			       "out_of_order=%llu\n",
			       FLAVOUR, got, polls, (double)(t1 - t0) / (double)got, (double)(c1 - c0) / (double)got,
			       (unsigned long long)out_of_order);
		}
	} else {
		long polls = 0;
		while (seen < want) {
			int n = poll_once(POLL_TIMEOUT_MS);
			polls++;
			if (n < 0)
				die("poll", n);
			/* a clock read is a WASI host call for the guest: not on every poll */
			if ((polls & 1023) == 0 && now_ns() > deadline)
				die("steady stream", ETIMEDOUT);
		}
		double recs = (double)(want - 1);
		printf("flavour=%s mode=steady records=%ld polls=%ld cpu_ns_per_rec=%.1f wall_ms=%.1f rate_per_s=%.0f "
		       "out_of_order=%llu\n",
		       FLAVOUR, seen, polls, (double)(cpu_last - cpu_first) / recs, (double)(wall_last - wall_first) / 1e6,
		       recs * 1e9 / (double)(wall_last - wall_first), (unsigned long long)out_of_order);
	}
	fflush(stdout);
	sleep_ms(300);
	bench_close(&b);
	return 0;
}
