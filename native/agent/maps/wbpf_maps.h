/* The shared-memory maps' API: one memfd per map, created by the host and mapped by the host and every
 * agent; the syscall side (map_operate), the program side (helpers) and the ring consumer (the host). */
#ifndef WBPF_MAPS_H
#define WBPF_MAPS_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define WBPF_MAP_MAGIC 0x4d504257u /* "WBPM" */
#define WBPF_MAP_VERSION 4u

/* enum bpf_map_type values this library implements */
enum {
  WBPF_MAP_HASH = 1,
  WBPF_MAP_ARRAY = 2,
  WBPF_MAP_PERF_EVENT_ARRAY = 4,
  WBPF_MAP_PERCPU_HASH = 5,
  WBPF_MAP_PERCPU_ARRAY = 6,
  WBPF_MAP_LRU_HASH = 9,
  WBPF_MAP_LRU_PERCPU_HASH = 10,
  WBPF_MAP_RINGBUF = 27,
};

/* the kernel's internal ENOTSUPP, which map operations leak to user space */
#define WBPF_ENOTSUPP 524

struct wbpf_map_spec {
  uint32_t type, key_size, value_size, max_entries, map_flags;
  /* "possible CPUs": per-CPU maps hold this many values per element, perf arrays this many rings */
  uint32_t ncpus;
  /* perf_event_array: bytes of records each CPU's ring holds (0: 64 pages) */
  uint32_t perf_bytes_per_cpu;
  const char *name;
};

struct wbpf_map_hdr; /* the shared header (maps/internal.h) */

/* one process's view of a map: not shared (each process maps the memfd itself) */
struct wbpf_map {
  struct wbpf_map_hdr *h;
  size_t size;
  int fd;        /* the memfd */
  int notify_fd; /* ring buffer / perf array: the eventfd producers write to wake the consumer; else -1 */
};

/* host: create the memfd (and, for ring types, the eventfd), map it, lay out the header; 0 or -errno */
int wbpf_map_create(const struct wbpf_map_spec *spec, struct wbpf_map *out);
/* agent (or another host thread): map an existing map's memfd; checks magic, version and size */
int wbpf_map_open(int fd, int notify_fd, struct wbpf_map *out);
/* unmap; close_fds: also close the memfd and the eventfd */
void wbpf_map_close(struct wbpf_map *m, int close_fds);

/* bpf_map_freeze (libbpf freezes .rodata after load): syscall-side updates and deletes then fail with EPERM */
void wbpf_map_freeze(struct wbpf_map *m);

/* bytes the syscall side's lookup writes / update reads (per-CPU: round8(value_size) * ncpus) */
uint32_t wbpf_map_op_value_size(const struct wbpf_map *m);
uint32_t wbpf_map_type(const struct wbpf_map *m);
uint32_t wbpf_map_key_size(const struct wbpf_map *m);
/* the program side's value size (a helper's value argument; per-CPU maps: one CPU's value) */
uint32_t wbpf_map_value_size(const struct wbpf_map *m);
/* map_flags as created (BPF_F_RDONLY_PROG 0x80: programs may read its values, not write them) */
uint32_t wbpf_map_flags(const struct wbpf_map *m);
/* ring buffer: failed reserves/outputs (full); perf array: lost samples */
uint64_t wbpf_map_drops(const struct wbpf_map *m);
/* robust-lock recoveries (a holder died): for tests and diagnostics */
uint64_t wbpf_map_recoveries(const struct wbpf_map *m);

/* ---- the syscall side (map_operate); key NULL as the guest's NULL; 0 or -errno ---- */
int wbpf_map_sys_lookup(struct wbpf_map *m, const void *key, void *value, uint64_t flags);
int wbpf_map_sys_update(struct wbpf_map *m, const void *key, const void *value, uint64_t flags);
int wbpf_map_sys_delete(struct wbpf_map *m, const void *key, uint64_t flags);
int wbpf_map_sys_next_key(struct wbpf_map *m, const void *key, void *next_key, uint64_t flags);
int wbpf_map_sys_lookup_and_delete(struct wbpf_map *m, const void *key, void *value, uint64_t flags);

/* ---- the program side (helpers), run by agents at the hook ---- */
/* the CPU a program runs on: sched_getcpu() modulo ncpus, or the thread's override when >= 0 */
void wbpf_map_set_thread_cpu(int cpu);
/* that CPU (bpf_get_smp_processor_id): the thread's override or sched_getcpu(), modulo ncpus when ncpus > 0 */
int wbpf_map_current_cpu(uint32_t ncpus);
/* global data (lddw src 2): element 0's value of an array (not per-CPU), value_size bytes; else NULL */
void *wbpf_map_direct_value(struct wbpf_map *m);
void *wbpf_map_lookup_elem(struct wbpf_map *m, const void *key);
long wbpf_map_update_elem(struct wbpf_map *m, const void *key, const void *value, uint64_t flags);
long wbpf_map_delete_elem(struct wbpf_map *m, const void *key);
void *wbpf_ringbuf_reserve(struct wbpf_map *m, uint64_t size, uint64_t flags);
void wbpf_ringbuf_submit(struct wbpf_map *m, void *data, uint64_t flags);
void wbpf_ringbuf_discard(struct wbpf_map *m, void *data, uint64_t flags);
long wbpf_ringbuf_output(struct wbpf_map *m, const void *data, uint64_t size, uint64_t flags);
/* bpf_ringbuf_query: BPF_RB_AVAIL_DATA 0, RING_SIZE 1, CONS_POS 2, PROD_POS 3; other flags (or not a ring buffer) 0 */
uint64_t wbpf_ringbuf_query(struct wbpf_map *m, uint64_t flags);
long wbpf_perf_event_output(struct wbpf_map *m, uint64_t flags, const void *data, uint64_t size);

/* ---- the consumer (the host; one consumer per map) ---- */
/* perf array: a reader opened the map (every slot below ncpus gets an "event"; libbpf's perf_buffer__new) */
void wbpf_perf_open_readers(struct wbpf_map *m);
/* size of the next deliverable record, 0 if none */
uint32_t wbpf_ring_pending_size(struct wbpf_map *m);
/* copy whole records as [u32 size][u32 0][data padded to 8]; the count, or -ENOBUFS when the next alone does not fit */
int wbpf_ring_drain(struct wbpf_map *m, uint8_t *out, size_t out_len);
/* wait until a record may be there (1), timeout_ms passes (0; -1 waits forever) or stop_fd (-1: none)
 * becomes readable (-EINTR); no busy polling: poll(2) on the map's eventfd and stop_fd */
int wbpf_ring_wait(struct wbpf_map *m, int timeout_ms, int stop_fd);

#ifdef __cplusplus
}
#endif
#endif
