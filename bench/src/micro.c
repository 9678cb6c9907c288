/* micro: a libc-less Wasm module for bench/micro.ts, which splits the cost of one map operation from
 * a guest into its parts (Wasm -> JS import with and without an i64 parameter, N-API, the syscall)
 * and measures ways of delivering ring buffer records into guest memory.
 * Build: clang-16 --target=wasm32 -nostdlib -O2 -Wl,--no-entry micro.c -o micro.wasm
 */
#include <stdint.h>
#include "bench_obj.h"

#define IMP(m, n) __attribute__((import_module(m), import_name(n)))
#define EXPORT(n) __attribute__((export_name(n)))

IMP("wasm_bpf", "wasm_load_bpf_object") uint64_t load_obj(const void *obj, int len);
IMP("wasm_bpf", "wasm_bpf_map_fd_by_name") int fd_by_name(uint64_t h, const char *name);
IMP("wasm_bpf", "wasm_bpf_map_operate") int map_operate(int fd, int cmd, const void *k, void *v, void *nk, uint64_t flags);
/* the same signature, implemented by the JS variant under test */
IMP("bench", "op_i64") int op_i64(int fd, int cmd, const void *k, void *v, void *nk, uint64_t flags);
/* flags split in two i32: no BigInt at the boundary */
IMP("bench", "op_i32") int op_i32(int fd, int cmd, const void *k, void *v, void *nk, uint32_t lo, uint32_t hi);
/* the i64 signature again, satisfied by adapter.wasm's export (Wasm -> Wasm -> JS with i32 only) */
IMP("bench", "op_adapted") int op_adapted(int fd, int cmd, const void *k, void *v, void *nk, uint64_t flags);

static uint32_t key = 7;
static uint64_t val;
static uint64_t sum;

EXPORT("setup") int setup(const char *map)
{
	uint64_t h = load_obj(bench_obj, (int)bench_obj_len);
	return h ? fd_by_name(h, map) : -1;
}
EXPORT("name_buf") char *name_buf(void)
{
	static char b[64];
	return b;
}
EXPORT("key_ptr") uint32_t *key_ptr(void) { return &key; }
EXPORT("val_ptr") uint64_t *val_ptr(void) { return &val; }

EXPORT("loop_host") int loop_host(int fd, int n)
{
	int bad = 0;
	for (int i = 0; i < n; i++)
		bad |= map_operate(fd, 1, &key, &val, 0, 0);
	return bad;
}
EXPORT("loop_i64") int loop_i64(int fd, int n)
{
	int bad = 0;
	for (int i = 0; i < n; i++)
		bad |= op_i64(fd, 1, &key, &val, 0, 0);
	return bad;
}
EXPORT("loop_i32") int loop_i32(int fd, int n)
{
	int bad = 0;
	for (int i = 0; i < n; i++)
		bad |= op_i32(fd, 1, &key, &val, 0, 0, 0);
	return bad;
}
EXPORT("loop_adapted") int loop_adapted(int fd, int n)
{
	int bad = 0;
	for (int i = 0; i < n; i++)
		bad |= op_adapted(fd, 1, &key, &val, 0, 0);
	return bad;
}

/* a record callback like ringbench's: reads the record */
EXPORT("cb") int cb(uint32_t ctx, const uint64_t *data, uint32_t size)
{
	(void)ctx;
	if (size >= 16)
		sum += data[1];
	return 0;
}
EXPORT("sum") uint64_t get_sum(void) { return sum; }
static char rec_buf[4096];
EXPORT("rec_buf") char *get_rec_buf(void) { return rec_buf; }
