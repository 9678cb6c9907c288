/* buffer.h: one API over BPF ring buffers and perf buffers, for both builds.
 *
 *   struct app_buffer *b = app_buffer__new(skel->maps.rb, handle_event, ctx);  // NULL + errno
 *   while (keep_running())
 *           err = app_buffer__poll(b, 100);  // records handled (>= 0) or -errno
 *   app_buffer__free(b);
 *
 * handle_event(ctx, data, size) is called once per record, in order; return 0 from it.
 * Native: ring_buffer__new() for a BPF_MAP_TYPE_RINGBUF map, perf_buffer__new() for a
 * BPF_MAP_TYPE_PERF_EVENT_ARRAY map. Wasm: bpf_buffer__new/open/poll of libbpf-wasm.h (the host
 * picks the kind from the map).
 */
#ifndef MATRIX_BUFFER_H
#define MATRIX_BUFFER_H

#include "common.h"

typedef int (*app_sample_fn)(void *ctx, void *data, size_t size);

struct app_buffer {
#ifdef __wasm__
	struct bpf_buffer *bb;
#else
	struct ring_buffer *rb;
	struct perf_buffer *pb;
	app_sample_fn fn;
	void *ctx;
#endif
};

#ifndef __wasm__
static inline void app_buffer__perf_sample(void *ctx, int cpu, void *data, __u32 size)
{
	struct app_buffer *b = (struct app_buffer *)ctx;
	(void)cpu;
	b->fn(b->ctx, data, size);
}

static inline void app_buffer__perf_lost(void *ctx, int cpu, __u64 cnt)
{
	(void)ctx;
	fprintf(stderr, "%s: lost %llu events on CPU %d\n", app_name, (unsigned long long)cnt, cpu);
}
#endif

static inline void app_buffer__free(struct app_buffer *b)
{
	if (!b)
		return;
#ifdef __wasm__
	bpf_buffer__free(b->bb);
#else
	ring_buffer__free(b->rb);
	perf_buffer__free(b->pb);
#endif
	free(b);
}

static inline struct app_buffer *app_buffer__new(struct bpf_map *map, app_sample_fn fn, void *ctx)
{
	struct app_buffer *b = (struct app_buffer *)calloc(1, sizeof(*b));
	if (!b)
		return NULL;
#ifdef __wasm__
	b->bb = bpf_buffer__new(map, NULL);
	if (!b->bb)
		goto err;
	int err = bpf_buffer__open(b->bb, fn, ctx);
	if (err) {
		errno = -err;
		goto err;
	}
#else
	b->fn = fn;
	b->ctx = ctx;
	if (bpf_map__type(map) == BPF_MAP_TYPE_PERF_EVENT_ARRAY)
		b->pb = perf_buffer__new(bpf_map__fd(map), 64 /* pages per CPU */, app_buffer__perf_sample,
		                         app_buffer__perf_lost, b, NULL);
	else
		b->rb = ring_buffer__new(bpf_map__fd(map), (ring_buffer_sample_fn)fn, ctx, NULL);
	if (!b->pb && !b->rb)
		goto err; /* libbpf set errno */
#endif
	return b;
err:;
	int saved = errno;
	app_buffer__free(b);
	errno = saved;
	return NULL;
}

/* Wait up to timeout_ms for records and hand each to the callback. Returns the number handled,
 * or -errno; an interrupted wait (Ctrl-C in the native build) counts as 0. */
static inline int app_buffer__poll(struct app_buffer *b, int timeout_ms)
{
	int n;
#ifdef __wasm__
	n = bpf_buffer__poll(b->bb, timeout_ms);
#else
	n = b->pb ? perf_buffer__poll(b->pb, timeout_ms) : ring_buffer__poll(b->rb, timeout_ms);
#endif
	return n == -EINTR ? 0 : n;
}

/* The usual main loop: poll every 100 ms until Ctrl-C / the host stops us / -t is over.
 * Returns 0, or 1 after printing "<app>: poll buffer: <strerror>". */
static inline int app_buffer__run(struct app_buffer *b)
{
	while (keep_running()) {
		int n = app_buffer__poll(b, 100);
		if (n < 0)
			return fail("poll buffer", n);
	}
	return 0;
}

#endif /* MATRIX_BUFFER_H */
