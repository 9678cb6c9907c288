/* bench/src/common.h: what mapbench.c and ringbench.c share, for both builds of the same source:
 *   Wasm guest (clang --target=wasm32-wasi, __wasm__): libbpf-wasm.h, the object embedded as bench_obj[];
 *   native (clang/gcc + libbpf): bpf_object__open_mem on the same embedded bytes.
 */
#ifndef BENCH_COMMON_H
#define BENCH_COMMON_H

#ifdef __wasm__
#include "libbpf-wasm.h"
#else
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <linux/types.h>
#endif
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "bench_obj.h" /* bench_obj[], bench_obj_len: the ELF bytes of bench.bpf.o */

#ifdef __wasm__
#define FLAVOUR "wasm"
#else
#define FLAVOUR "native"
#endif

static inline uint64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* CPU time of the whole process (all threads: for wasm-bpf that includes Node's own threads) */
static inline uint64_t cpu_ns(void)
{
	struct timespec ts;
	if (clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts) != 0)
		return 0;
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static inline void sleep_ms(int ms)
{
	struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000L };
	nanosleep(&ts, NULL);
}

static inline void die(const char *what, int err)
{
	fprintf(stderr, "bench(%s): %s: %s\n", FLAVOUR, what, strerror(err < 0 ? -err : err));
	exit(1);
}

struct bench {
#ifdef __wasm__
	uint64_t handle;
#else
	struct bpf_object *obj;
#endif
	int array_fd, hash_fd, cfg_fd, rb_fd;
};

static inline int bench_map_fd(struct bench *b, const char *name)
{
#ifdef __wasm__
	int fd = wasm_bpf_map_fd_by_name(b->handle, name);
#else
	int fd = bpf_object__find_map_fd_by_name(b->obj, name);
#endif
	if (fd < 0)
		die(name, fd);
	return fd;
}

/* open + load the embedded object */
static inline void bench_load(struct bench *b)
{
#ifdef __wasm__
	b->handle = wasm_load_bpf_object(bench_obj, (int)bench_obj_len);
	if (!b->handle)
		die("load", EINVAL);
#else
	LIBBPF_OPTS(bpf_object_open_opts, oo, .object_name = "bench");
	b->obj = bpf_object__open_mem(bench_obj, bench_obj_len, &oo);
	if (!b->obj)
		die("open", errno);
	int err = bpf_object__load(b->obj);
	if (err)
		die("load", err);
#endif
	b->array_fd = bench_map_fd(b, "array");
	b->hash_fd = bench_map_fd(b, "hash");
	b->cfg_fd = bench_map_fd(b, "cfg");
	b->rb_fd = bench_map_fd(b, "rb");
}

static inline void bench_attach(struct bench *b)
{
#ifdef __wasm__
	int err = wasm_attach_bpf_program(b->handle, "on_getppid", "");
	if (err < 0)
		die("attach", err);
#else
	struct bpf_program *p = bpf_object__find_program_by_name(b->obj, "on_getppid");
	if (!p || !bpf_program__attach(p)) /* the link lives until the process exits */
		die("attach", errno);
#endif
}

static inline void bench_close(struct bench *b)
{
#ifdef __wasm__
	wasm_close_bpf_object(b->handle);
#else
	bpf_object__close(b->obj);
#endif
}

#endif
