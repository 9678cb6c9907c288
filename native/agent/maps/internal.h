/* The shared layout of a map's memfd (header, hash buckets and elements, ring descriptors) and what the
 * map families share: robust locks, the current CPU, flag checks. Offsets, never pointers, are shared. */
#ifndef WBPF_MAPS_INTERNAL_H
#define WBPF_MAPS_INTERNAL_H

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <string.h>
#include <sys/types.h>

#include "wbpf_maps.h"

#define WBPF_ALIGN 64
#define ROUND8(n) (((n) + 7u) & ~7u)
#define ROUNDA(n) (((n) + (WBPF_ALIGN - 1)) & ~(uint64_t)(WBPF_ALIGN - 1))

/* update flags, map_flags */
#define UF_ANY 0
#define UF_NOEXIST 1
#define UF_EXIST 2
#define UF_LOCK 4
#define MF_RDONLY (1u << 3)
#define MF_WRONLY (1u << 4)
#define MF_RDONLY_PROG (1u << 7)

/* ring records: the kernel's header bits */
#define RB_BUSY 0x80000000u
#define RB_DISCARD 0x40000000u
#define RB_HDR 8u
#define RB_NO_WAKEUP 1u
#define RB_FORCE_WAKEUP 2u

/* one ring (the ring buffer's, or one CPU's of a perf array): positions grow forever; data is 2 x cap
 * bytes so that a record starting near the end stays contiguous (it runs into the second half). The
 * consumer's word and the producers' words on cache lines of their own (and a perf array's rings too) */
struct wbpf_ring {
  _Atomic uint64_t cons; /* written by the consumer only */
  _Atomic uint64_t prod __attribute__((aligned(WBPF_ALIGN))); /* under lock */
  _Atomic uint64_t pending; /* the oldest record that may still be busy (Linux 6.8+'s pending_pos); under lock */
  _Atomic uint64_t cons_seen; /* producers: the last cons read (under lock); cons is read again only when the
                               * ring looks full by it, so that an eager consumer's line is not pulled per record */
  uint64_t limit;           /* the most bytes prod may be ahead of cons and pending */
  uint64_t mask;            /* cap - 1 */
  uint64_t data_off;        /* from the map's start */
  _Atomic uint64_t lock;    /* producers: 0 free, else the holder's (pid << 32) | tid (ring_lock.c) */
} __attribute__((aligned(WBPF_ALIGN)));

struct wbpf_bucket {
  pthread_mutex_t lock;   /* robust, process-shared */
  _Atomic uint32_t head;  /* element index + 1, 0 = empty */
};

/* a hash element; key then value(s) follow */
struct wbpf_elem {
  _Atomic uint32_t next;  /* chain (or free list) link: index + 1 */
  _Atomic uint32_t state; /* 0 free, 1 linked in a bucket */
  uint32_t hash;
  uint32_t pad;
  _Atomic uint64_t tick;  /* LRU: last use */
};

struct wbpf_map_hdr {
  uint32_t magic, version;
  uint32_t type, key_size, value_size, max_entries, map_flags, ncpus;
  uint64_t total_size;
  uint32_t vsz8;      /* round8(value_size) */
  uint32_t stride;    /* value bytes per element: vsz8, times ncpus for per-CPU maps */
  uint32_t nbuckets;  /* hash: power of two */
  uint32_t elem_size; /* hash: struct wbpf_elem + round8(key) + stride */
  uint64_t off_a;     /* array: values; hash: buckets; rings: struct wbpf_ring[nrings] */
  uint64_t off_b;     /* hash: elements; perf: open flags (u8 per slot) */
  uint32_t nrings;
  uint32_t perf_bytes;  /* perf: bytes of records per CPU */
  _Atomic uint64_t free_head; /* hash: lock-free free list, (tag << 32) | (index + 1) */
  _Atomic uint64_t clock;     /* LRU */
  _Atomic uint64_t drops;
  _Atomic uint64_t recoveries;
  _Atomic uint32_t count;     /* hash: linked elements */
  _Atomic uint32_t frozen;    /* bpf_map_freeze: syscall-side writes EPERM (programs still write) */
  _Atomic uint32_t light;     /* rings: 1 if the consumer runs membarrier's global expedited barrier before it
                               * sleeps (ring_fence.c): registered producers then commit without a full barrier */
  /* rings: the consumer sleeps in poll(2) (producers then write the eventfd); on a line of its own: the
   * consumer stores it at each sleep, producers read the line above at each record */
  _Atomic uint32_t waiting __attribute__((aligned(WBPF_ALIGN)));
};

static inline uint8_t *map_base(const struct wbpf_map *m) { return (uint8_t *)m->h; }

/* a robust lock: a holder that dies leaves EOWNERDEAD to the next taker, which marks it consistent */
static inline void wbpf_lock(struct wbpf_map *m, pthread_mutex_t *l) {
  if (pthread_mutex_lock(l) == EOWNERDEAD) {
    pthread_mutex_consistent(l);
    atomic_fetch_add(&m->h->recoveries, 1);
  }
}
static inline int wbpf_trylock(struct wbpf_map *m, pthread_mutex_t *l) {
  int r = pthread_mutex_trylock(l);
  if (r == EOWNERDEAD) {
    pthread_mutex_consistent(l);
    atomic_fetch_add(&m->h->recoveries, 1);
    return 1;
  }
  return r == 0;
}
static inline void wbpf_unlock(pthread_mutex_t *l) { pthread_mutex_unlock(l); }
int wbpf_lock_init(pthread_mutex_t *l);

/* a ring's producer lock (ring_lock.c): a spinlock word naming its holder; a holder found dead on
 * contention is replaced (counted in recoveries). 0 taken, -EDEADLK: this thread holds it already */
int wbpf_ring_lock(struct wbpf_map *m, _Atomic uint64_t *l);
/* this process's pid, cached (ring.c; a fork child reads it again) */
pid_t wbpf_ring_self_pid(void);
/* ring_fence.c: this process is registered for membarrier's global expedited barrier (registers it on first
 * use in each process): its commits may skip the full barrier when the map's `light` says so */
int wbpf_ring_fence_producer(void);
/* the host, creating a ring: 1 if the global expedited barrier works here (and this process is registered) */
int wbpf_ring_fence_host(void);
/* the consumer, after storing `waiting` and before it looks at the ring a last time: 0, or -errno */
int wbpf_ring_fence_consumer(void);
void wbpf_ring_unlock(_Atomic uint64_t *l);

int wbpf_cpu(const struct wbpf_map *m);

/* flags > BPF_EXIST, or BPF_F_LOCK (no spin lock in these maps' values) */
static inline int bad_update_flags(uint64_t flags) { return (flags & ~(uint64_t)UF_LOCK) > UF_EXIST || (flags & UF_LOCK) != 0; }
static inline int sys_readable(const struct wbpf_map *m) { return (m->h->map_flags & MF_WRONLY) == 0; }
static inline int sys_writable(const struct wbpf_map *m) { return (m->h->map_flags & MF_RDONLY) == 0 && !atomic_load(&m->h->frozen); }

static inline int is_hash(uint32_t t) {
  return t == WBPF_MAP_HASH || t == WBPF_MAP_PERCPU_HASH || t == WBPF_MAP_LRU_HASH || t == WBPF_MAP_LRU_PERCPU_HASH;
}
static inline int is_percpu(uint32_t t) {
  return t == WBPF_MAP_PERCPU_HASH || t == WBPF_MAP_LRU_PERCPU_HASH || t == WBPF_MAP_PERCPU_ARRAY;
}
static inline int is_lru(uint32_t t) { return t == WBPF_MAP_LRU_HASH || t == WBPF_MAP_LRU_PERCPU_HASH; }

/* per family: layout size and init (region.c calls them), operations (api.c dispatches) */
uint64_t wbpf_array_layout(struct wbpf_map_hdr *h);
uint64_t wbpf_hash_layout(struct wbpf_map_hdr *h);
void wbpf_hash_init(struct wbpf_map *m);
uint64_t wbpf_ring_layout(struct wbpf_map_hdr *h, uint32_t perf_bytes);
int wbpf_ring_init(struct wbpf_map *m);

int wbpf_array_sys_lookup(struct wbpf_map *m, const void *key, void *value);
int wbpf_array_sys_update(struct wbpf_map *m, const void *key, const void *value, uint64_t flags);
int wbpf_array_sys_next_key(struct wbpf_map *m, const void *key, void *next);
void *wbpf_array_lookup(struct wbpf_map *m, const void *key);
long wbpf_array_update(struct wbpf_map *m, const void *key, const void *value, uint64_t flags);

int wbpf_hash_sys_lookup(struct wbpf_map *m, const void *key, void *value, int and_delete);
int wbpf_hash_sys_update(struct wbpf_map *m, const void *key, const void *value, uint64_t flags);
int wbpf_hash_delete(struct wbpf_map *m, const void *key);
int wbpf_hash_sys_next_key(struct wbpf_map *m, const void *key, void *next);
void *wbpf_hash_lookup(struct wbpf_map *m, const void *key);
long wbpf_hash_update(struct wbpf_map *m, const void *key, const void *value, uint64_t flags);

int wbpf_perf_sys_update(struct wbpf_map *m, const void *key);
int wbpf_perf_sys_delete(struct wbpf_map *m, const void *key);

#endif
