/* Array maps: array and percpu_array (kernel/bpf/arraymap.c semantics). Every element always exists,
 * values round8(value_size) apart (per-CPU: ncpus copies); no locks: programs update values in place
 * (atomic adds through the lookup pointer), a concurrent syscall-side copy may be torn, as in the kernel. */
#include "internal.h"

static uint32_t index_of(const void *key) {
  uint32_t i;
  memcpy(&i, key, 4);
  return i;
}
static uint8_t *elem(struct wbpf_map *m, uint32_t i) { return map_base(m) + m->h->off_a + (uint64_t)i * m->h->stride; }

uint64_t wbpf_array_layout(struct wbpf_map_hdr *h) {
  h->off_a = ROUNDA(sizeof *h);
  return h->off_a + (uint64_t)h->max_entries * h->stride;
}

int wbpf_array_sys_lookup(struct wbpf_map *m, const void *key, void *value) {
  uint32_t i = index_of(key);
  if (i >= m->h->max_entries) return -ENOENT;
  memcpy(value, elem(m, i), is_percpu(m->h->type) ? m->h->stride : m->h->value_size);
  return 0;
}

int wbpf_array_sys_update(struct wbpf_map *m, const void *key, const void *value, uint64_t flags) {
  uint32_t i = index_of(key);
  if (i >= m->h->max_entries) return -E2BIG;
  if ((flags & 3) == UF_NOEXIST) return -EEXIST;
  uint8_t *a = elem(m, i);
  if (!is_percpu(m->h->type)) memcpy(a, value, m->h->value_size);
  else
    for (uint32_t c = 0; c < m->h->ncpus; c++) memcpy(a + c * m->h->vsz8, (const uint8_t *)value + c * m->h->vsz8, m->h->value_size);
  return 0;
}

int wbpf_array_sys_next_key(struct wbpf_map *m, const void *key, void *next) {
  uint32_t n = m->h->max_entries, nx = 0;
  if (key) {
    uint32_t i = index_of(key);
    if (i < n) {
      if (i == n - 1) return -ENOENT;
      nx = i + 1;
    }
  }
  memcpy(next, &nx, 4);
  return 0;
}

void *wbpf_array_lookup(struct wbpf_map *m, const void *key) {
  uint32_t i = index_of(key);
  if (i >= m->h->max_entries) return NULL;
  return elem(m, i) + (is_percpu(m->h->type) ? (uint32_t)wbpf_cpu(m) * m->h->vsz8 : 0);
}

long wbpf_array_update(struct wbpf_map *m, const void *key, const void *value, uint64_t flags) {
  if (bad_update_flags(flags)) return -EINVAL;
  uint32_t i = index_of(key);
  if (i >= m->h->max_entries) return -E2BIG;
  if ((flags & 3) == UF_NOEXIST) return -EEXIST;
  memcpy(elem(m, i) + (is_percpu(m->h->type) ? (uint32_t)wbpf_cpu(m) * m->h->vsz8 : 0), value, m->h->value_size);
  return 0;
}

void *wbpf_map_direct_value(struct wbpf_map *m) { return m->h->type == WBPF_MAP_ARRAY && m->h->max_entries > 0 ? elem(m, 0) : NULL; }
