/* The map operations by type: the syscall side's checks in the kernel's order (flags, NULL key,
 * RDONLY/WRONLY) before the family's operation, and the program side's helpers. */
#include "internal.h"

static int is_array(uint32_t t) { return t == WBPF_MAP_ARRAY || t == WBPF_MAP_PERCPU_ARRAY; }

int wbpf_map_sys_lookup(struct wbpf_map *m, const void *key, void *value, uint64_t flags) {
  uint32_t t = m->h->type;
  if (t == WBPF_MAP_RINGBUF) return -WBPF_ENOTSUPP;
  if (flags != 0) return -EINVAL;
  if (t == WBPF_MAP_PERF_EVENT_ARRAY) return -WBPF_ENOTSUPP;
  if (!key) return -EFAULT;
  if (!sys_readable(m)) return -EPERM;
  return is_array(t) ? wbpf_array_sys_lookup(m, key, value) : wbpf_hash_sys_lookup(m, key, value, 0);
}

int wbpf_map_sys_update(struct wbpf_map *m, const void *key, const void *value, uint64_t flags) {
  uint32_t t = m->h->type;
  if (t == WBPF_MAP_RINGBUF) return -WBPF_ENOTSUPP;
  if (!key) return -EFAULT;
  if (t == WBPF_MAP_PERF_EVENT_ARRAY) return flags != 0 ? -EINVAL : wbpf_perf_sys_update(m, key);
  if (is_array(t)) {
    if (bad_update_flags(flags)) return -EINVAL;
    if (!sys_writable(m)) return -EPERM;
    return wbpf_array_sys_update(m, key, value, flags);
  }
  if (!sys_writable(m)) return -EPERM;
  return wbpf_hash_sys_update(m, key, value, flags);
}

int wbpf_map_sys_delete(struct wbpf_map *m, const void *key, uint64_t flags) {
  uint32_t t = m->h->type;
  if (t == WBPF_MAP_RINGBUF) return -WBPF_ENOTSUPP;
  if (flags != 0) return -EINVAL;
  if (is_array(t)) return -EINVAL;
  if (!key) return -EFAULT;
  if (t == WBPF_MAP_PERF_EVENT_ARRAY) return wbpf_perf_sys_delete(m, key);
  if (!sys_writable(m)) return -EPERM;
  return wbpf_hash_delete(m, key);
}

int wbpf_map_sys_next_key(struct wbpf_map *m, const void *key, void *next_key, uint64_t flags) {
  uint32_t t = m->h->type;
  if (t == WBPF_MAP_RINGBUF) return -WBPF_ENOTSUPP;
  if (flags != 0) return -EINVAL;
  if (is_array(t) || t == WBPF_MAP_PERF_EVENT_ARRAY) return wbpf_array_sys_next_key(m, key, next_key);
  if (!sys_readable(m)) return -EPERM;
  return wbpf_hash_sys_next_key(m, key, next_key);
}

int wbpf_map_sys_lookup_and_delete(struct wbpf_map *m, const void *key, void *value, uint64_t flags) {
  if (!is_hash(m->h->type)) return -WBPF_ENOTSUPP;
  if (flags != 0) return -EINVAL;
  if (!key) return -EFAULT;
  if (!sys_readable(m)) return -EPERM;
  if (!sys_writable(m)) {
    int r = wbpf_hash_sys_lookup(m, key, value, 0);
    return r < 0 ? r : -EPERM;
  }
  return wbpf_hash_sys_lookup(m, key, value, 1);
}

void *wbpf_map_lookup_elem(struct wbpf_map *m, const void *key) {
  uint32_t t = m->h->type;
  if (is_array(t)) return wbpf_array_lookup(m, key);
  if (is_hash(t)) return wbpf_hash_lookup(m, key);
  return NULL;
}

long wbpf_map_update_elem(struct wbpf_map *m, const void *key, const void *value, uint64_t flags) {
  uint32_t t = m->h->type;
  if (!is_array(t) && !is_hash(t)) return -EINVAL;
  if (m->h->map_flags & MF_RDONLY_PROG) return -EPERM;
  return is_array(t) ? wbpf_array_update(m, key, value, flags) : wbpf_hash_update(m, key, value, flags);
}

long wbpf_map_delete_elem(struct wbpf_map *m, const void *key) {
  if (!is_hash(m->h->type)) return -EINVAL;
  if (m->h->map_flags & MF_RDONLY_PROG) return -EPERM;
  return wbpf_hash_delete(m, key);
}
