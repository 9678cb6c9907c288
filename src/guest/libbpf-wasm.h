/* libbpf-wasm.h: the guest-side API of wasm-bpf for C programs compiled to wasm32-wasi.
 *
 * It gives a Wasm guest the subset of libbpf that eBPF control planes use (skeleton open/load/
 * attach/destroy, bpf_map__fd, bpf_buffer__*, bpf_map_*_elem, bpf_program__set_attach_target)
 * on top of the six host functions of the `wasm_bpf` import module. Header-only: include it (or a
 * skeleton made by `wasm-bpf gen skeleton`) from exactly the translation units that need it.
 *
 * Build: clang-16 --target=wasm32-wasi --sysroot=/usr -O2 -I<this dir> app.c -o app.wasm \
 *          -Wl,--allow-undefined,--export-table -Wl,--strip-debug
 */
#ifndef LIBBPF_WASM_H
#define LIBBPF_WASM_H

#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef uint8_t __u8;
typedef uint16_t __u16;
typedef uint32_t __u32;
typedef uint64_t __u64;
typedef int8_t __s8;
typedef int16_t __s16;
typedef int32_t __s32;
typedef int64_t __s64;

/* ---- the host ABI (module "wasm_bpf") ---------------------------------------------------- */
#define WASM_BPF_IMPORT(name) __attribute__((import_module("wasm_bpf"), import_name(#name)))

WASM_BPF_IMPORT(wasm_load_bpf_object)
uint64_t wasm_load_bpf_object(const void *obj_buf, int obj_buf_sz);
WASM_BPF_IMPORT(wasm_attach_bpf_program)
int wasm_attach_bpf_program(uint64_t obj, const char *name, const char *attach_target);
WASM_BPF_IMPORT(wasm_bpf_buffer_poll)
int wasm_bpf_buffer_poll(uint64_t obj, int fd, int32_t sample_func, uint32_t ctx, char *data,
                         int max_size, int timeout_ms);
WASM_BPF_IMPORT(wasm_bpf_map_fd_by_name)
int wasm_bpf_map_fd_by_name(uint64_t obj, const char *name);
WASM_BPF_IMPORT(wasm_bpf_map_operate)
int wasm_bpf_map_operate(int fd, int cmd, const void *key, void *value, void *next_key,
                         uint64_t flags);
WASM_BPF_IMPORT(wasm_close_bpf_object)
int wasm_close_bpf_object(uint64_t obj);

/* kernel numbers */
#define BPF_MAP_LOOKUP_ELEM 1
#define BPF_MAP_UPDATE_ELEM 2
#define BPF_MAP_DELETE_ELEM 3
#define BPF_MAP_GET_NEXT_KEY 4
#define BPF_MAP_LOOKUP_AND_DELETE_ELEM 21
#ifndef BPF_ANY
#define BPF_ANY 0
#define BPF_NOEXIST 1
#define BPF_EXIST 2
#define BPF_F_LOCK 4
#endif

/* The host returns Linux errno numbers (-ENOENT = -2, ...); the guest's libc (wasi-libc) numbers
 * errno differently. The wrappers below translate, so `err == -ENOENT` and strerror(-err) work. */
static inline int libbpf_wasm__errno(int r)
{
	if (r >= 0)
		return r;
	switch (-r) {
	case 1: return -EPERM;
	case 2: return -ENOENT;
	case 3: return -ESRCH;
	case 4: return -EINTR;
	case 5: return -EIO;
	case 7: return -E2BIG;
	case 9: return -EBADF;
	case 11: return -EAGAIN;
	case 12: return -ENOMEM;
	case 13: return -EACCES;
	case 14: return -EFAULT;
	case 16: return -EBUSY;
	case 17: return -EEXIST;
	case 19: return -ENODEV;
	case 22: return -EINVAL;
	case 24: return -EMFILE;
	case 28: return -ENOSPC;
	case 95: return -EOPNOTSUPP;
	case 105: return -ENOBUFS;
	case 524: return -ENOTSUP;
	default: return -EINVAL;
	}
}

/* ---- objects, maps, programs ------------------------------------------------------------- */
struct bpf_object {
	uint64_t handle; /* 0 until loaded */
	const char *name;
	void *data; /* the ELF bytes (skeleton-owned; .rodata/.data are patched in place) */
	size_t data_sz;
};

struct bpf_map {
	struct bpf_object *obj;
	const char *name;
	int fd; /* -1 until loaded */
};

struct bpf_program {
	struct bpf_object *obj;
	const char *name;
	const char *attach_target; /* NULL: attach by section name */
};

struct bpf_link {
	struct bpf_program *prog;
};

struct bpf_map_skeleton {
	const char *name;
	struct bpf_map **map;
	void **mmaped;
};

struct bpf_prog_skeleton {
	const char *name;
	struct bpf_program **prog;
	struct bpf_link **link;
};

struct bpf_object_skeleton {
	size_t sz;
	const char *name;
	void *data;
	size_t data_sz;
	struct bpf_object **obj;
	int map_cnt;
	int map_skel_sz;
	struct bpf_map_skeleton *maps;
	int prog_cnt;
	int prog_skel_sz;
	struct bpf_prog_skeleton *progs;
};

struct bpf_object_open_opts {
	size_t sz;
};

static inline int libbpf_get_error(const void *ptr)
{
	return ptr ? 0 : -errno;
}

static inline int bpf_object__open_skeleton(struct bpf_object_skeleton *s,
                                            const struct bpf_object_open_opts *opts)
{
	(void)opts;
	struct bpf_object *obj = (struct bpf_object *)calloc(1, sizeof(*obj));
	if (!obj)
		return -ENOMEM;
	obj->name = s->name;
	obj->data = s->data;
	obj->data_sz = s->data_sz;
	*s->obj = obj;
	for (int i = 0; i < s->map_cnt; i++) {
		struct bpf_map *m = (struct bpf_map *)calloc(1, sizeof(*m));
		if (!m)
			return -ENOMEM;
		m->obj = obj;
		m->name = s->maps[i].name;
		m->fd = -1;
		*s->maps[i].map = m;
	}
	for (int i = 0; i < s->prog_cnt; i++) {
		struct bpf_program *p = (struct bpf_program *)calloc(1, sizeof(*p));
		if (!p)
			return -ENOMEM;
		p->obj = obj;
		p->name = s->progs[i].name;
		*s->progs[i].prog = p;
	}
	return 0;
}

static inline int bpf_object__load_skeleton(struct bpf_object_skeleton *s)
{
	struct bpf_object *obj = *s->obj;
	obj->handle = wasm_load_bpf_object(obj->data, (int)obj->data_sz);
	if (!obj->handle)
		return -EINVAL;
	for (int i = 0; i < s->map_cnt; i++) {
		struct bpf_map *m = *s->maps[i].map;
		m->fd = libbpf_wasm__errno(wasm_bpf_map_fd_by_name(obj->handle, m->name));
		/* .rodata/.data are patched inside the embedded ELF before load; .bss has no file bytes,
		 * so what the guest wrote to skel->bss before load is copied into the map now */
		if (m->fd >= 0 && s->maps[i].mmaped && *s->maps[i].mmaped && !strncmp(m->name, ".bss", 4)) {
			__u32 zero = 0;
			wasm_bpf_map_operate(m->fd, BPF_MAP_UPDATE_ELEM, &zero, *s->maps[i].mmaped, NULL, 0);
		}
	}
	return 0;
}

static inline int bpf_program__set_attach_target(struct bpf_program *prog, int attach_prog_fd,
                                                 const char *attach_func_name)
{
	(void)attach_prog_fd;
	prog->attach_target = attach_func_name;
	return 0;
}

static inline struct bpf_link *bpf_program__attach(struct bpf_program *prog)
{
	int err = libbpf_wasm__errno(wasm_attach_bpf_program(prog->obj->handle, prog->name,
	                                                     prog->attach_target ? prog->attach_target : ""));
	if (err < 0) {
		errno = -err;
		return NULL;
	}
	struct bpf_link *link = (struct bpf_link *)calloc(1, sizeof(*link));
	if (link)
		link->prog = prog;
	return link;
}

static inline int bpf_object__attach_skeleton(struct bpf_object_skeleton *s)
{
	for (int i = 0; i < s->prog_cnt; i++) {
		struct bpf_link *link = bpf_program__attach(*s->progs[i].prog);
		if (!link)
			return -errno;
		if (s->progs[i].link)
			*s->progs[i].link = link;
		else
			free(link);
	}
	return 0;
}

static inline void bpf_object__detach_skeleton(struct bpf_object_skeleton *s)
{
	(void)s; /* links are detached when the object is closed */
}

static inline void bpf_object__destroy_skeleton(struct bpf_object_skeleton *s)
{
	if (!s)
		return;
	struct bpf_object *obj = s->obj ? *s->obj : NULL;
	if (obj && obj->handle)
		wasm_close_bpf_object(obj->handle);
	for (int i = 0; s->maps && i < s->map_cnt; i++)
		free(*s->maps[i].map);
	for (int i = 0; s->progs && i < s->prog_cnt; i++) {
		free(*s->progs[i].prog);
		if (s->progs[i].link)
			free(*s->progs[i].link);
	}
	free(obj);
	free(s->maps);
	free(s->progs);
	free(s);
}

static inline int bpf_map__fd(const struct bpf_map *map)
{
	return map ? map->fd : -EINVAL;
}

static inline const char *bpf_map__name(const struct bpf_map *map)
{
	return map->name;
}

static inline const char *bpf_program__name(const struct bpf_program *prog)
{
	return prog->name;
}

/* Look a map up by name after load (useful without a skeleton). */
static inline int bpf_object__map_fd_by_name(const struct bpf_object *obj, const char *name)
{
	return libbpf_wasm__errno(wasm_bpf_map_fd_by_name(obj->handle, name));
}

/* Load an ELF object held in memory without a skeleton: returns 0 and fills obj, or -errno. */
static inline int bpf_object__load_mem(struct bpf_object *obj, void *data, size_t size)
{
	obj->data = data;
	obj->data_sz = size;
	obj->handle = wasm_load_bpf_object(data, (int)size);
	return obj->handle ? 0 : -EINVAL;
}

/* ---- map operations (one host call each) --------------------------------------------------- */
static inline int bpf_map_lookup_elem(int fd, const void *key, void *value)
{
	return libbpf_wasm__errno(wasm_bpf_map_operate(fd, BPF_MAP_LOOKUP_ELEM, key, value, NULL, 0));
}

static inline int bpf_map_lookup_elem_flags(int fd, const void *key, void *value, __u64 flags)
{
	return libbpf_wasm__errno(wasm_bpf_map_operate(fd, BPF_MAP_LOOKUP_ELEM, key, value, NULL, flags));
}

static inline int bpf_map_update_elem(int fd, const void *key, const void *value, __u64 flags)
{
	return libbpf_wasm__errno(wasm_bpf_map_operate(fd, BPF_MAP_UPDATE_ELEM, key, (void *)value, NULL, flags));
}

static inline int bpf_map_delete_elem(int fd, const void *key)
{
	return libbpf_wasm__errno(wasm_bpf_map_operate(fd, BPF_MAP_DELETE_ELEM, key, NULL, NULL, 0));
}

static inline int bpf_map_get_next_key(int fd, const void *key, void *next_key)
{
	return libbpf_wasm__errno(wasm_bpf_map_operate(fd, BPF_MAP_GET_NEXT_KEY, key, NULL, next_key, 0));
}

/* pop for queue and stack maps (key NULL); lookup-and-delete for hash maps */
static inline int bpf_map_lookup_and_delete_elem(int fd, const void *key, void *value)
{
	return libbpf_wasm__errno(wasm_bpf_map_operate(fd, BPF_MAP_LOOKUP_AND_DELETE_ELEM, (void *)key, value, NULL, 0));
}

/* ---- ring buffer / perf buffer --------------------------------------------------------------- */
typedef int (*bpf_buffer_sample_fn)(void *ctx, void *data, size_t size);

#ifndef WASM_BPF_BUFFER_SIZE
#define WASM_BPF_BUFFER_SIZE (256 * 1024)
#endif

struct bpf_buffer {
	struct bpf_map *events;
	bpf_buffer_sample_fn fn;
	void *ctx;
	char *buf;
	int buf_sz;
};

/* `events` is a BPF_MAP_TYPE_RINGBUF or BPF_MAP_TYPE_PERF_EVENT_ARRAY map; `heap` is accepted for
 * source compatibility and unused (the host decides ring buffer vs perf buffer before load). */
static inline struct bpf_buffer *bpf_buffer__new(struct bpf_map *events, struct bpf_map *heap)
{
	(void)heap;
	struct bpf_buffer *b = (struct bpf_buffer *)calloc(1, sizeof(*b));
	if (!b)
		return NULL;
	b->events = events;
	return b;
}

static inline int bpf_buffer__open(struct bpf_buffer *b, bpf_buffer_sample_fn fn, void *ctx)
{
	b->fn = fn;
	b->ctx = ctx;
	b->buf_sz = WASM_BPF_BUFFER_SIZE;
	b->buf = (char *)malloc((size_t)b->buf_sz);
	return b->buf ? 0 : -ENOMEM;
}

/* Returns the number of records handled, 0 on timeout, or -errno. */
static inline int bpf_buffer__poll(struct bpf_buffer *b, int timeout_ms)
{
	return libbpf_wasm__errno(wasm_bpf_buffer_poll(b->events->obj->handle, b->events->fd,
	                                               (int32_t)(uintptr_t)b->fn, (uint32_t)(uintptr_t)b->ctx,
	                                               b->buf, b->buf_sz, timeout_ms));
}

static inline void bpf_buffer__free(struct bpf_buffer *b)
{
	if (!b)
		return;
	free(b->buf);
	free(b);
}

#ifdef __cplusplus
}
#endif
#endif /* LIBBPF_WASM_H */
