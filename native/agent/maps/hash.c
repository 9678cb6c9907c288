/* Hash maps: hash, percpu_hash, lru_hash, lru_percpu_hash (kernel/bpf/hashtab.c semantics) in shared
 * memory: preallocated elements on a lock-free free list (tagged head, no ABA), chains under per-bucket
 * robust mutexes, LRU by a shared clock (exact: the least recently used element is evicted). */
#include "internal.h"

static struct wbpf_bucket *bucket(struct wbpf_map *m, uint32_t i) { return (struct wbpf_bucket *)(map_base(m) + m->h->off_a) + i; }
static struct wbpf_elem *elem(struct wbpf_map *m, uint32_t i) { return (struct wbpf_elem *)(map_base(m) + m->h->off_b + (uint64_t)i * m->h->elem_size); }
static uint8_t *key_of(struct wbpf_elem *e) { return (uint8_t *)(e + 1); }
static uint8_t *val_of(struct wbpf_map *m, struct wbpf_elem *e) { return (uint8_t *)(e + 1) + ROUND8(m->h->key_size); }
static uint32_t index_of(struct wbpf_map *m, struct wbpf_elem *e) { return (uint32_t)(((uint8_t *)e - (map_base(m) + m->h->off_b)) / m->h->elem_size); }

uint64_t wbpf_hash_layout(struct wbpf_map_hdr *h) {
  uint32_t nb = 1;
  while (nb < h->max_entries && nb < (1u << 30)) nb <<= 1;
  h->nbuckets = nb;
  h->elem_size = (uint32_t)(sizeof(struct wbpf_elem) + ROUND8(h->key_size) + h->stride);
  h->off_a = ROUNDA(sizeof *h);
  h->off_b = ROUNDA(h->off_a + (uint64_t)nb * sizeof(struct wbpf_bucket));
  return h->off_b + (uint64_t)h->max_entries * h->elem_size;
}

void wbpf_hash_init(struct wbpf_map *m) {
  for (uint32_t i = 0; i < m->h->nbuckets; i++) wbpf_lock_init(&bucket(m, i)->lock);
  uint32_t n = m->h->max_entries;
  /* index 0 is handed out first */
  for (uint32_t i = 0; i < n; i++) atomic_store(&elem(m, i)->next, i + 1 < n ? i + 2 : 0);
  atomic_store(&m->h->free_head, 1);
}

/* ---- the free list: a Treiber stack whose head carries a tag bumped on every change ---- */
static int64_t pop_free(struct wbpf_map *m) {
  uint64_t old = atomic_load(&m->h->free_head);
  for (;;) {
    uint32_t i1 = (uint32_t)old;
    if (!i1) return -1;
    uint32_t nx = atomic_load(&elem(m, i1 - 1)->next);
    uint64_t nw = (((old >> 32) + 1) << 32) | nx;
    if (atomic_compare_exchange_weak(&m->h->free_head, &old, nw)) return i1 - 1;
  }
}
static void push_free(struct wbpf_map *m, uint32_t i) {
  uint64_t old = atomic_load(&m->h->free_head);
  for (;;) {
    atomic_store(&elem(m, i)->next, (uint32_t)old);
    uint64_t nw = (((old >> 32) + 1) << 32) | (i + 1);
    if (atomic_compare_exchange_weak(&m->h->free_head, &old, nw)) return;
  }
}

static uint32_t hash_key(const void *key, uint32_t n) {
  const uint8_t *p = key;
  uint32_t h = 2166136261u;
  for (uint32_t i = 0; i < n; i++) h = (h ^ p[i]) * 16777619u;
  return h ^ (h >> 15);
}

/* under the bucket's lock */
static struct wbpf_elem *find(struct wbpf_map *m, struct wbpf_bucket *b, uint32_t h, const void *key) {
  for (uint32_t i1 = atomic_load(&b->head); i1; ) {
    struct wbpf_elem *e = elem(m, i1 - 1);
    if (e->hash == h && memcmp(key_of(e), key, m->h->key_size) == 0) return e;
    i1 = atomic_load(&e->next);
  }
  return NULL;
}
/* unlink element i from b's chain (one store: a holder killed here leaves the chain whole); 1 if it was there */
static int unlink_elem(struct wbpf_map *m, struct wbpf_bucket *b, uint32_t i) {
  _Atomic uint32_t *link = &b->head;
  for (uint32_t i1 = atomic_load(link); i1; i1 = atomic_load(link)) {
    if (i1 == i + 1) {
      atomic_store(link, atomic_load(&elem(m, i)->next));
      return 1;
    }
    link = &elem(m, i1 - 1)->next;
  }
  return 0;
}

static void touch(struct wbpf_map *m, struct wbpf_elem *e) {
  if (is_lru(m->h->type)) atomic_store_explicit(&e->tick, atomic_fetch_add(&m->h->clock, 1) + 1, memory_order_relaxed);
}

/*
 * LRU: take the least recently used element (the caller holds `held`). A victim's bucket is only
 * try-locked (no lock order to keep): a busy one is skipped for the next oldest, so under contention
 * the choice is approximate (as the kernel's LRU always is); uncontended it is exact. An element marked
 * linked but in no chain (its holder died between the two steps) is reclaimed too. -1: nothing taken.
 */
#define EVICT_TRIES 32
static int64_t evict(struct wbpf_map *m, struct wbpf_bucket *held) {
  uint32_t skip[EVICT_TRIES];
  int nskip = 0;
  for (int attempt = 0; attempt < EVICT_TRIES; attempt++) {
    int64_t best = -1;
    uint64_t best_tick = UINT64_MAX;
    for (uint32_t i = 0; i < m->h->max_entries; i++) {
      struct wbpf_elem *e = elem(m, i);
      if (atomic_load(&e->state) != 1) continue;
      uint64_t t = atomic_load_explicit(&e->tick, memory_order_relaxed);
      if (t >= best_tick) continue;
      int skipped = 0;
      for (int j = 0; j < nskip && !skipped; j++) skipped = skip[j] == i;
      if (!skipped) best_tick = t, best = i;
    }
    if (best < 0) return pop_free(m);
    skip[nskip++] = (uint32_t)best;
    struct wbpf_elem *v = elem(m, (uint32_t)best);
    struct wbpf_bucket *vb = bucket(m, v->hash & (m->h->nbuckets - 1));
    if (vb != held && !wbpf_trylock(m, &vb->lock)) continue;
    /* still linked (or leaked) in this bucket? Its hash is read after its state: a thread reusing it for
     * another bucket wrote the new hash before marking it, and holds that other bucket's lock */
    int ok = atomic_load(&v->state) == 1;
    atomic_thread_fence(memory_order_acquire);
    ok = ok && bucket(m, __atomic_load_n(&v->hash, __ATOMIC_RELAXED) & (m->h->nbuckets - 1)) == vb;
    if (ok) {
      unlink_elem(m, vb, (uint32_t)best);
      atomic_store(&v->state, 0);
      atomic_fetch_sub(&m->h->count, 1);
    }
    if (vb != held) wbpf_unlock(&vb->lock);
    if (ok) return best;
    int64_t f = pop_free(m);
    if (f >= 0) return f;
  }
  return -1;
}

/* insert or replace; prog: a program's update (its CPU's value; a new per-CPU element's others zeroed) */
static int upsert(struct wbpf_map *m, const void *key, const void *value, uint64_t flags, int prog) {
  if (bad_update_flags(flags)) return -EINVAL;
  const struct wbpf_map_hdr *H = m->h;
  uint32_t h = hash_key(key, H->key_size);
  struct wbpf_bucket *b = bucket(m, h & (H->nbuckets - 1));
  int percpu = is_percpu(H->type);
  wbpf_lock(m, &b->lock);
  struct wbpf_elem *e = find(m, b, h, key);
  int fresh = 0;
  if (e) {
    if ((flags & 3) == UF_NOEXIST) {
      wbpf_unlock(&b->lock);
      return -EEXIST;
    }
  } else {
    if ((flags & 3) == UF_EXIST) {
      wbpf_unlock(&b->lock);
      return -ENOENT;
    }
    int64_t i = pop_free(m);
    if (i < 0 && is_lru(H->type)) {
      i = evict(m, b);
      if (i < 0) {
        /* every candidate's bucket was busy EVICT_TRIES times: the kernel's LRU answers ENOMEM too */
        wbpf_unlock(&b->lock);
        return -ENOMEM;
      }
    }
    if (i < 0) {
      wbpf_unlock(&b->lock);
      return -E2BIG;
    }
    e = elem(m, (uint32_t)i);
    __atomic_store_n(&e->hash, h, __ATOMIC_RELAXED); /* read unlocked by evict() */
    memcpy(key_of(e), key, H->key_size);
    fresh = 1;
  }
  uint8_t *v = val_of(m, e);
  if (!percpu) memcpy(v, value, H->value_size);
  else if (prog) {
    if (fresh) memset(v, 0, H->stride);
    memcpy(v + (uint32_t)wbpf_cpu(m) * H->vsz8, value, H->value_size);
  } else
    for (uint32_t c = 0; c < H->ncpus; c++) memcpy(v + c * H->vsz8, (const uint8_t *)value + c * H->vsz8, H->value_size);
  touch(m, e);
  if (fresh) {
    /* marked before it is linked: an LRU scan reclaims it if this thread dies in between */
    atomic_store(&e->state, 1);
    atomic_store(&e->next, atomic_load(&b->head));
    atomic_store_explicit(&b->head, index_of(m, e) + 1, memory_order_release);
    atomic_fetch_add(&m->h->count, 1);
  }
  wbpf_unlock(&b->lock);
  return 0;
}

int wbpf_hash_sys_update(struct wbpf_map *m, const void *key, const void *value, uint64_t flags) { return upsert(m, key, value, flags, 0); }
long wbpf_hash_update(struct wbpf_map *m, const void *key, const void *value, uint64_t flags) { return upsert(m, key, value, flags, 1); }

/* under the bucket's lock: take the element out of its chain; its slot goes back to the free list after the unlock */
static uint32_t remove_locked(struct wbpf_map *m, struct wbpf_bucket *b, struct wbpf_elem *e) {
  uint32_t i = index_of(m, e);
  unlink_elem(m, b, i);
  atomic_store(&e->state, 0);
  atomic_fetch_sub(&m->h->count, 1);
  return i;
}

/* the syscall side's lookup (value: NULL for a delete), and lookup-and-delete */
static int lookup_or_remove(struct wbpf_map *m, const void *key, void *value, int remove) {
  uint32_t h = hash_key(key, m->h->key_size);
  struct wbpf_bucket *b = bucket(m, h & (m->h->nbuckets - 1));
  wbpf_lock(m, &b->lock);
  struct wbpf_elem *e = find(m, b, h, key);
  if (!e) {
    wbpf_unlock(&b->lock);
    return -ENOENT;
  }
  if (value) memcpy(value, val_of(m, e), is_percpu(m->h->type) ? m->h->stride : m->h->value_size);
  uint32_t i = remove ? remove_locked(m, b, e) : 0;
  wbpf_unlock(&b->lock);
  if (remove) push_free(m, i);
  return 0;
}

int wbpf_hash_sys_lookup(struct wbpf_map *m, const void *key, void *value, int and_delete) {
  return lookup_or_remove(m, key, value, and_delete);
}

int wbpf_hash_delete(struct wbpf_map *m, const void *key) { return lookup_or_remove(m, key, NULL, 1); }

/* the kernel's walk: the key's successor in its chain, then the following buckets; a missing key restarts */
int wbpf_hash_sys_next_key(struct wbpf_map *m, const void *key, void *next) {
  uint32_t start = 0, ks = m->h->key_size;
  if (key) {
    uint32_t h = hash_key(key, ks), bi = h & (m->h->nbuckets - 1);
    struct wbpf_bucket *b = bucket(m, bi);
    wbpf_lock(m, &b->lock);
    struct wbpf_elem *e = find(m, b, h, key);
    if (e) {
      uint32_t n1 = atomic_load(&e->next);
      if (n1) {
        memcpy(next, key_of(elem(m, n1 - 1)), ks);
        wbpf_unlock(&b->lock);
        return 0;
      }
      start = bi + 1;
    }
    wbpf_unlock(&b->lock);
  }
  for (uint32_t bi = start; bi < m->h->nbuckets; bi++) {
    struct wbpf_bucket *b = bucket(m, bi);
    if (!atomic_load(&b->head)) continue;
    wbpf_lock(m, &b->lock);
    uint32_t i1 = atomic_load(&b->head);
    if (i1) memcpy(next, key_of(elem(m, i1 - 1)), ks);
    wbpf_unlock(&b->lock);
    if (i1) return 0;
  }
  return -ENOENT;
}

void *wbpf_hash_lookup(struct wbpf_map *m, const void *key) {
  uint32_t h = hash_key(key, m->h->key_size);
  struct wbpf_bucket *b = bucket(m, h & (m->h->nbuckets - 1));
  wbpf_lock(m, &b->lock);
  struct wbpf_elem *e = find(m, b, h, key);
  if (e) touch(m, e);
  wbpf_unlock(&b->lock);
  if (!e) return NULL;
  return val_of(m, e) + (is_percpu(m->h->type) ? (uint32_t)wbpf_cpu(m) * m->h->vsz8 : 0);
}
