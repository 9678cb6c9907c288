/* The shared region: creates a map's memfd with the kernel's creation checks and lays out its header
 * (host), maps an existing one and checks it (agents), robust process-shared locks, the current CPU. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <sched.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "internal.h"

#define MF_NO_PREALLOC (1u << 0)
#define MF_NO_COMMON_LRU (1u << 1)
#define MF_NUMA_NODE (1u << 2)
#define MF_ZERO_SEED (1u << 6)
#define MF_WRONLY_PROG (1u << 8)
#define MF_MMAPABLE (1u << 10)
#define MF_PRESERVE_ELEMS (1u << 11)
#define MF_INNER_MAP (1u << 12)
#define HTAB_FLAGS (MF_NO_PREALLOC | MF_NO_COMMON_LRU | MF_NUMA_NODE | MF_RDONLY | MF_WRONLY | MF_RDONLY_PROG | MF_WRONLY_PROG | MF_ZERO_SEED)
#define ARRAY_FLAGS (MF_NUMA_NODE | MF_MMAPABLE | MF_RDONLY | MF_WRONLY | MF_RDONLY_PROG | MF_WRONLY_PROG | MF_INNER_MAP | MF_PRESERVE_ELEMS)
#define PERF_FLAGS (MF_NUMA_NODE | MF_RDONLY | MF_WRONLY | MF_PRESERVE_ELEMS)
#define PCPU_MIN_UNIT_SIZE 32768u
/* no map larger than this (the userspace backend's own limit is smaller and checked in TypeScript) */
#define MAX_MAP_BYTES (1ull << 32)

int wbpf_lock_init(pthread_mutex_t *l) {
  pthread_mutexattr_t a;
  pthread_mutexattr_init(&a);
  pthread_mutexattr_setpshared(&a, PTHREAD_PROCESS_SHARED);
  pthread_mutexattr_setrobust(&a, PTHREAD_MUTEX_ROBUST);
  int r = pthread_mutex_init(l, &a);
  pthread_mutexattr_destroy(&a);
  return -r;
}

static __thread int thread_cpu = -1;
void wbpf_map_set_thread_cpu(int cpu) { thread_cpu = cpu; }
int wbpf_map_current_cpu(uint32_t ncpus) {
  int c = thread_cpu >= 0 ? thread_cpu : sched_getcpu();
  if (c < 0) c = 0;
  return ncpus ? (int)((uint32_t)c % ncpus) : c;
}
int wbpf_cpu(const struct wbpf_map *m) { return wbpf_map_current_cpu(m->h->ncpus); }

/* the kernel's map_alloc_check for each family: 0 or -errno */
static int check_spec(const struct wbpf_map_spec *s) {
  uint32_t f = s->map_flags;
  if (s->ncpus == 0) return -EINVAL;
  switch (s->type) {
    case WBPF_MAP_HASH:
    case WBPF_MAP_PERCPU_HASH:
    case WBPF_MAP_LRU_HASH:
    case WBPF_MAP_LRU_PERCPU_HASH:
      if (s->key_size == 0 || s->value_size == 0 || s->max_entries == 0) return -EINVAL;
      if (f & ~HTAB_FLAGS) return -EINVAL;
      if ((f & MF_NO_COMMON_LRU) && !is_lru(s->type)) return -EINVAL;
      if ((f & MF_NO_PREALLOC) && is_lru(s->type)) return -WBPF_ENOTSUPP;
      if (s->key_size > 512) return -E2BIG;
      if (is_percpu(s->type) && ROUND8(s->value_size) > PCPU_MIN_UNIT_SIZE) return -E2BIG;
      return 0;
    case WBPF_MAP_ARRAY:
    case WBPF_MAP_PERCPU_ARRAY:
      if (s->key_size != 4 || s->value_size == 0 || s->max_entries == 0) return -EINVAL;
      if (f & ~ARRAY_FLAGS) return -EINVAL;
      if (s->type == WBPF_MAP_PERCPU_ARRAY && (f & (MF_MMAPABLE | MF_INNER_MAP))) return -EINVAL;
      if (s->type == WBPF_MAP_PERCPU_ARRAY && ROUND8(s->value_size) > PCPU_MIN_UNIT_SIZE) return -E2BIG;
      return 0;
    case WBPF_MAP_RINGBUF:
      if (s->key_size != 0 || s->value_size != 0) return -EINVAL;
      if (f & ~MF_NUMA_NODE) return -EINVAL;
      if (s->max_entries < 4096 || (s->max_entries & (s->max_entries - 1))) return -EINVAL;
      return 0;
    case WBPF_MAP_PERF_EVENT_ARRAY:
      if (s->key_size != 4 || s->value_size != 4 || s->max_entries == 0) return -EINVAL;
      if (f & ~PERF_FLAGS) return -EINVAL;
      return 0;
    default:
      return -EOPNOTSUPP;
  }
}

static uint64_t layout(struct wbpf_map_hdr *h, uint32_t perf_bytes) {
  if (is_hash(h->type)) return wbpf_hash_layout(h);
  if (h->type == WBPF_MAP_ARRAY || h->type == WBPF_MAP_PERCPU_ARRAY) return wbpf_array_layout(h);
  return wbpf_ring_layout(h, perf_bytes);
}

int wbpf_map_create(const struct wbpf_map_spec *s, struct wbpf_map *out) {
  int r = check_spec(s);
  if (r) return r;
  struct wbpf_map_hdr tmp;
  memset(&tmp, 0, sizeof tmp);
  tmp.magic = WBPF_MAP_MAGIC;
  tmp.version = WBPF_MAP_VERSION;
  tmp.type = s->type;
  tmp.key_size = s->key_size;
  tmp.value_size = s->value_size;
  tmp.max_entries = s->max_entries;
  tmp.map_flags = s->map_flags;
  tmp.ncpus = s->ncpus;
  tmp.vsz8 = ROUND8(s->value_size);
  tmp.stride = is_percpu(s->type) ? tmp.vsz8 * s->ncpus : tmp.vsz8;
  uint64_t size = layout(&tmp, s->perf_bytes_per_cpu ? s->perf_bytes_per_cpu : 64 * 4096);
  if (size == 0 || size > MAX_MAP_BYTES) return -E2BIG;
  size = (size + 4095) & ~4095ull;
  tmp.total_size = size;

  char name[64] = "wbpf-map:";
  if (s->name) strncat(name, s->name, sizeof name - strlen(name) - 1);
  int fd = memfd_create(name, MFD_CLOEXEC);
  if (fd < 0) return -errno;
  int nfd = -1;
  if (ftruncate(fd, (off_t)size) < 0) goto fail;
  void *p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  if (p == MAP_FAILED) goto fail;
  if (s->type == WBPF_MAP_RINGBUF || s->type == WBPF_MAP_PERF_EVENT_ARRAY) {
    nfd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (nfd < 0) {
      r = -errno;
      munmap(p, size);
      close(fd);
      return r;
    }
  }
  memcpy(p, &tmp, sizeof tmp); /* the memfd is zero-filled: atomics start at 0 */
  out->h = p;
  out->size = size;
  out->fd = fd;
  out->notify_fd = nfd;
  if (is_hash(s->type)) wbpf_hash_init(out);
  else if (nfd >= 0 && (r = wbpf_ring_init(out)) != 0) {
    wbpf_map_close(out, 1);
    return r;
  }
  /* rings: commits without a full barrier where the consumer can fence for them (ring_fence.c) */
  if (nfd >= 0) atomic_store(&out->h->light, (uint32_t)wbpf_ring_fence_host());
  return 0;
fail:
  r = -errno;
  close(fd);
  return r;
}

int wbpf_map_open(int fd, int notify_fd, struct wbpf_map *out) {
  struct stat st;
  if (fstat(fd, &st) < 0) return -errno;
  if ((size_t)st.st_size < sizeof(struct wbpf_map_hdr)) return -EINVAL;
  void *p = mmap(NULL, (size_t)st.st_size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  if (p == MAP_FAILED) return -errno;
  const struct wbpf_map_hdr *h = p;
  if (h->magic != WBPF_MAP_MAGIC || h->version != WBPF_MAP_VERSION || h->total_size != (uint64_t)st.st_size) {
    munmap(p, (size_t)st.st_size);
    return -EINVAL;
  }
  out->h = p;
  out->size = (size_t)st.st_size;
  out->fd = fd;
  out->notify_fd = notify_fd;
  /* a producer registers its process now, not at its first commit (in a hit) */
  if (atomic_load(&out->h->light)) (void)wbpf_ring_fence_producer();
  return 0;
}

void wbpf_map_close(struct wbpf_map *m, int close_fds) {
  if (m->h) munmap(m->h, m->size);
  m->h = NULL;
  if (close_fds) {
    if (m->fd >= 0) close(m->fd);
    if (m->notify_fd >= 0) close(m->notify_fd);
  }
  m->fd = m->notify_fd = -1;
}

uint32_t wbpf_map_op_value_size(const struct wbpf_map *m) { return is_percpu(m->h->type) ? m->h->stride : m->h->value_size; }
void wbpf_map_freeze(struct wbpf_map *m) { atomic_store(&m->h->frozen, 1); }
uint32_t wbpf_map_type(const struct wbpf_map *m) { return m->h->type; }
uint32_t wbpf_map_key_size(const struct wbpf_map *m) { return m->h->key_size; }
uint32_t wbpf_map_value_size(const struct wbpf_map *m) { return m->h->value_size; }
uint32_t wbpf_map_flags(const struct wbpf_map *m) { return m->h->map_flags; }
uint64_t wbpf_map_drops(const struct wbpf_map *m) { return atomic_load(&m->h->drops); }
uint64_t wbpf_map_recoveries(const struct wbpf_map *m) { return atomic_load(&m->h->recoveries); }
