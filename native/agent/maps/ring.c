/* Ring buffer (kernel/bpf/ringbuf.c semantics) and perf event array (one ring per CPU, lost counts) in
 * shared memory: producers in any process reserve under a per-ring lock (ring_lock.c) and commit with one
 * store of the record header (a release store, or an exchange where the wake-up needs a full barrier:
 * ring_fence.c); the single consumer (the host) drains in batches and sleeps in poll(2). */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/types.h>
#include <unistd.h>

#include "internal.h"

#define PERF_INDEX_MASK 0xffffffffull
#define PERF_CURRENT_CPU 0xffffffffull

static struct wbpf_ring *ring(struct wbpf_map *m, uint32_t i) { return (struct wbpf_ring *)(map_base(m) + m->h->off_a) + i; }
static uint8_t *data_of(struct wbpf_map *m, struct wbpf_ring *r) { return map_base(m) + r->data_off; }
static uint8_t *perf_open(struct wbpf_map *m) { return map_base(m) + m->h->off_b; }

/* the ring's capacity: a power of two; perf: the smallest one holding perf_bytes */
static uint64_t ring_cap(const struct wbpf_map_hdr *h, uint32_t perf_bytes) {
  if (h->type == WBPF_MAP_RINGBUF) return h->max_entries;
  uint64_t c = 4096;
  while (c < perf_bytes) c <<= 1;
  return c;
}

uint64_t wbpf_ring_layout(struct wbpf_map_hdr *h, uint32_t perf_bytes) {
  h->nrings = h->type == WBPF_MAP_RINGBUF ? 1 : h->ncpus;
  h->perf_bytes = perf_bytes;
  h->off_a = ROUNDA(sizeof *h);
  h->off_b = ROUNDA(h->off_a + (uint64_t)h->nrings * sizeof(struct wbpf_ring));
  uint64_t data = ROUNDA(h->off_b + (h->type == WBPF_MAP_PERF_EVENT_ARRAY ? h->max_entries : 0));
  return data + (uint64_t)h->nrings * 2 * ring_cap(h, perf_bytes);
}

int wbpf_ring_init(struct wbpf_map *m) {
  struct wbpf_map_hdr *h = m->h;
  uint64_t cap = ring_cap(h, h->perf_bytes);
  uint64_t data = ROUNDA(h->off_b + (h->type == WBPF_MAP_PERF_EVENT_ARRAY ? h->max_entries : 0));
  for (uint32_t i = 0; i < h->nrings; i++) {
    struct wbpf_ring *r = ring(m, i);
    r->mask = cap - 1;
    r->limit = h->type == WBPF_MAP_RINGBUF ? cap - 1 : h->perf_bytes;
    r->data_off = data + (uint64_t)i * 2 * cap;
    atomic_store(&r->lock, 0);
  }
  return 0;
}

/* this process's pid, cached (reset in a forked child) */
static pid_t cached_pid;
static int pid_ready; /* atomic: cached_pid set (a reserve calls no pthread_once) */
static pthread_once_t pid_once = PTHREAD_ONCE_INIT;
static void reset_pid(void) { cached_pid = getpid(); }
static void init_pid(void) {
  reset_pid();
  pthread_atfork(NULL, NULL, reset_pid);
  __atomic_store_n(&pid_ready, 1, __ATOMIC_RELEASE);
}
static pid_t my_pid(void) {
  if (!__atomic_load_n(&pid_ready, __ATOMIC_ACQUIRE)) pthread_once(&pid_once, init_pid);
  return cached_pid;
}
pid_t wbpf_ring_self_pid(void) { return my_pid(); }

/* reserve len bytes for a record of `size`: its data, or NULL (full: counted in drops) */
static uint8_t *reserve(struct wbpf_map *m, struct wbpf_ring *r, uint32_t size) {
  uint64_t len = ROUND8((uint64_t)size + RB_HDR);
  if (len > r->mask + 1) return NULL;
  uint8_t *d = data_of(m, r);
  if (wbpf_ring_lock(m, &r->lock) != 0) { /* this thread holds it (a hit in a signal handler): no deadlock */
    atomic_fetch_add(&m->h->drops, 1);
    return NULL;
  }
  uint64_t prod = atomic_load_explicit(&r->prod, memory_order_relaxed);
  uint64_t pend = atomic_load_explicit(&r->pending, memory_order_relaxed);
  while (pend < prod) {
    uint32_t l = atomic_load_explicit((_Atomic uint32_t *)(d + (pend & r->mask)), memory_order_acquire);
    if (l & RB_BUSY) break;
    pend += ROUND8((uint64_t)(l & ~(RB_BUSY | RB_DISCARD)) + RB_HDR);
  }
  atomic_store_explicit(&r->pending, pend, memory_order_relaxed);
  uint64_t np = prod + len;
  /* cons only grows: a stale one only makes the ring look fuller than it is */
  uint64_t cons = atomic_load_explicit(&r->cons_seen, memory_order_relaxed);
  if (np - cons > r->limit) {
    cons = atomic_load_explicit(&r->cons, memory_order_acquire);
    atomic_store_explicit(&r->cons_seen, cons, memory_order_relaxed);
  }
  if (np - cons > r->limit || np - pend > r->limit) {
    wbpf_ring_unlock(&r->lock);
    atomic_fetch_add(&m->h->drops, 1);
    return NULL;
  }
  uint8_t *hdr = d + (prod & r->mask);
  /* the second word is the kernel's page offset; here the producer's pid (a dead producer's record is discarded) */
  atomic_store_explicit((_Atomic uint32_t *)(hdr + 4), (uint32_t)my_pid(), memory_order_relaxed);
  atomic_store_explicit((_Atomic uint32_t *)hdr, size | RB_BUSY, memory_order_release);
  atomic_store_explicit(&r->prod, np, memory_order_release);
  wbpf_ring_unlock(&r->lock);
  return hdr + RB_HDR;
}

/* after a commit: the commit is ordered before this load of `waiting` (by the header's exchange, a full
 * barrier, or by the consumer's membarrier: ring_fence.c), as the consumer's store of `waiting` is before its
 * look at the ring (wbpf_ring_wait): one of them sees the other. One producer per sleep writes the eventfd:
 * the one whose exchange takes `waiting` from 1 (the others, seeing 0, know a write is on its way: the
 * consumer wakes and drains their records too), not every commit until the consumer runs */
static void wake(struct wbpf_map *m, uint64_t flags) {
  if ((flags & RB_NO_WAKEUP) || m->notify_fd < 0) return;
  if ((flags & RB_FORCE_WAKEUP) || (atomic_load(&m->h->waiting) && atomic_exchange(&m->h->waiting, 0))) {
    uint64_t one = 1;
    ssize_t w = write(m->notify_fd, &one, 8);
    (void)w;
  }
}

/* a record's data pointer of this map, still busy? */
static _Atomic uint32_t *busy_hdr(struct wbpf_map *m, void *p) {
  uint8_t *q = p;
  if (q < map_base(m) + m->h->off_a || q >= map_base(m) + m->size || ((uintptr_t)q & 7)) return NULL;
  _Atomic uint32_t *hdr = (_Atomic uint32_t *)(q - RB_HDR);
  return (atomic_load(hdr) & RB_BUSY) ? hdr : NULL;
}

static void commit(struct wbpf_map *m, void *p, int discard, uint64_t flags) {
  _Atomic uint32_t *hdr = busy_hdr(m, p);
  if (!hdr) return; /* not a reserved record (the verifier would have refused the program) */
  uint32_t l = (atomic_load(hdr) & ~RB_BUSY) | (discard ? RB_DISCARD : 0);
  /* the consumer fences before it sleeps (a registered process: its threads take part in that barrier) */
  if (atomic_load_explicit(&m->h->light, memory_order_relaxed) && wbpf_ring_fence_producer())
    atomic_store_explicit(hdr, l, memory_order_release);
  else
    atomic_exchange_explicit(hdr, l, memory_order_seq_cst); /* a full barrier (the kernel's xchg): see wake() */
  if (!discard) wake(m, flags);
}

void *wbpf_ringbuf_reserve(struct wbpf_map *m, uint64_t size, uint64_t flags) {
  if (m->h->type != WBPF_MAP_RINGBUF || flags != 0 || size > 0x3fffffff) return NULL;
  return reserve(m, ring(m, 0), (uint32_t)size);
}
void wbpf_ringbuf_submit(struct wbpf_map *m, void *data, uint64_t flags) { commit(m, data, 0, flags); }
void wbpf_ringbuf_discard(struct wbpf_map *m, void *data, uint64_t flags) { commit(m, data, 1, flags); }

long wbpf_ringbuf_output(struct wbpf_map *m, const void *data, uint64_t size, uint64_t flags) {
  if (flags & ~(uint64_t)(RB_NO_WAKEUP | RB_FORCE_WAKEUP)) return -EINVAL;
  if (m->h->type != WBPF_MAP_RINGBUF || size > 0x3fffffff) return -EINVAL;
  uint8_t *p = reserve(m, ring(m, 0), (uint32_t)size);
  if (!p) return -EAGAIN;
  memcpy(p, data, size);
  commit(m, p, 0, flags);
  return 0;
}

uint64_t wbpf_ringbuf_query(struct wbpf_map *m, uint64_t flags) {
  if (m->h->type != WBPF_MAP_RINGBUF) return 0;
  struct wbpf_ring *r = ring(m, 0);
  uint64_t cons = atomic_load(&r->cons), prod = atomic_load(&r->prod);
  switch (flags) {
    case 0: return prod - cons; /* BPF_RB_AVAIL_DATA */
    case 1: return r->mask + 1; /* BPF_RB_RING_SIZE */
    case 2: return cons;        /* BPF_RB_CONS_POS */
    case 3: return prod;        /* BPF_RB_PROD_POS */
    default: return 0;
  }
}

long wbpf_perf_event_output(struct wbpf_map *m, uint64_t flags, const void *data, uint64_t size) {
  if (m->h->type != WBPF_MAP_PERF_EVENT_ARRAY) return -EINVAL;
  if (flags & ~PERF_INDEX_MASK) return -EINVAL;
  uint32_t cpu = (uint32_t)wbpf_cpu(m);
  uint64_t index = flags == PERF_CURRENT_CPU ? cpu : flags;
  if (index >= m->h->max_entries) return -E2BIG;
  if (!atomic_load((_Atomic uint8_t *)&perf_open(m)[index])) return -ENOENT;
  if (index != cpu) return -EOPNOTSUPP;
  if (size > 0x3fffff00) return -E2BIG;
  /* the raw sample: data padded so that size + 4 is 8-aligned; its cost 8 + raw + 4 = round8(raw + 8) */
  uint32_t raw = (uint32_t)(ROUND8(size + 4) - 4);
  uint8_t *p = reserve(m, ring(m, (uint32_t)index), raw);
  if (!p) return -ENOSPC;
  memcpy(p, data, size);
  memset(p + size, 0, raw - size);
  commit(m, p, 0, 0);
  return 0;
}

void wbpf_perf_open_readers(struct wbpf_map *m) {
  uint32_t n = m->h->ncpus < m->h->max_entries ? m->h->ncpus : m->h->max_entries;
  for (uint32_t i = 0; i < n; i++) atomic_store((_Atomic uint8_t *)&perf_open(m)[i], 1);
}

static int slot(struct wbpf_map *m, const void *key, uint32_t *i) {
  memcpy(i, key, 4);
  return *i < m->h->max_entries;
}
int wbpf_perf_sys_update(struct wbpf_map *m, const void *key) {
  uint32_t i;
  if (!slot(m, key, &i)) return -E2BIG;
  return -EBADF; /* the value would be a perf event fd; a userspace run has none */
}
int wbpf_perf_sys_delete(struct wbpf_map *m, const void *key) {
  uint32_t i;
  if (!slot(m, key, &i)) return -E2BIG;
  if (!atomic_exchange((_Atomic uint8_t *)&perf_open(m)[i], 0)) return -ENOENT;
  return 0;
}

/* ---- the consumer ---- */

/* a busy record whose producer's process is gone (and reaped) will never be committed: discard it */
static int owner_dead(uint8_t *hdr) {
  pid_t pid = (pid_t)atomic_load((_Atomic uint32_t *)(hdr + 4));
  return pid > 0 && kill(pid, 0) < 0 && errno == ESRCH;
}

/* the consumer frees space in steps of at most this many bytes (or a quarter of the ring), not per record */
#define CONS_STEP 16384u

/* a record at cons, busy: its producer's process is dead, it is discarded now (1), or it is still to
 * come (0). Its header word in *l */
static int take_dead(uint8_t *hdr, uint32_t *l) {
  _Atomic uint32_t *lp = (_Atomic uint32_t *)hdr;
  if (!owner_dead(hdr) || !atomic_compare_exchange_strong(lp, l, (*l & ~RB_BUSY) | RB_DISCARD)) return 0;
  *l = (*l & ~RB_BUSY) | RB_DISCARD;
  return 1;
}

/* walk ring r from cons: deliver each committed record to out (NULL: stop at the first, its size in *first),
 * skip discarded ones. prod is read once, and again only when the walk reaches it; cons is stored every
 * CONS_STEP bytes (so that producers see space freed during a long batch) and at the end. The records
 * copied (*full set when the next did not fit), or -ENOBUFS when the first of the whole drain does not */
static int walk(struct wbpf_map *m, struct wbpf_ring *r, uint8_t *out, size_t out_len, size_t *off, uint32_t *first,
                int *full) {
  uint8_t *d = data_of(m, r);
  uint64_t cons = atomic_load_explicit(&r->cons, memory_order_relaxed), stored = cons;
  uint64_t step = (r->mask + 1) / 4 < CONS_STEP ? (r->mask + 1) / 4 : CONS_STEP;
  uint64_t prod = atomic_load_explicit(&r->prod, memory_order_acquire);
  int n = 0;
  for (;;) {
    if (cons == prod && (prod = atomic_load_explicit(&r->prod, memory_order_acquire)) == cons) break;
    uint8_t *hdr = d + (cons & r->mask);
    uint32_t l = atomic_load_explicit((_Atomic uint32_t *)hdr, memory_order_acquire);
    if ((l & RB_BUSY) && !take_dead(hdr, &l)) break;
    uint32_t sz = l & ~(RB_BUSY | RB_DISCARD);
    if (!(l & RB_DISCARD)) {
      if (!out) {
        *first = sz;
        break;
      }
      size_t need = 8 + ROUND8((size_t)sz);
      if (*off + need > out_len) {
        *full = 1;
        if (*off == 0) n = -ENOBUFS;
        break;
      }
      uint32_t h2[2] = {sz, 0};
      memcpy(out + *off, h2, 8);
      memcpy(out + *off + 8, hdr + RB_HDR, sz);
      memset(out + *off + 8 + sz, 0, need - 8 - sz);
      *off += need;
      n++;
    }
    cons += ROUND8((uint64_t)sz + RB_HDR);
    if (cons - stored >= step) {
      atomic_store_explicit(&r->cons, cons, memory_order_release);
      stored = cons;
    }
  }
  if (cons != stored) atomic_store_explicit(&r->cons, cons, memory_order_release);
  return n;
}

uint32_t wbpf_ring_pending_size(struct wbpf_map *m) {
  for (uint32_t i = 0; i < m->h->nrings; i++) {
    uint32_t sz = 0;
    size_t off = 0;
    int full = 0;
    walk(m, ring(m, i), NULL, 0, &off, &sz, &full);
    if (sz) return sz;
  }
  return 0;
}

int wbpf_ring_drain(struct wbpf_map *m, uint8_t *out, size_t out_len) {
  size_t off = 0;
  int n = 0, full = 0;
  for (uint32_t i = 0; i < m->h->nrings && !full; i++) {
    int k = walk(m, ring(m, i), out, out_len, &off, NULL, &full);
    if (k < 0) return k; /* nothing copied before it (off was 0) */
    n += k;
  }
  return n;
}

int wbpf_ring_wait(struct wbpf_map *m, int timeout_ms, int stop_fd) {
  if (wbpf_ring_pending_size(m)) return 1;
  atomic_store(&m->h->waiting, 1);
  /* light commits carry no barrier: this one, in every registered process, orders each commit before its
   * producer's look at `waiting`, or after this store (then the look below sees it). Not when the poll
   * does not sleep (timeout 0): nothing to wake. Failing (it worked when the map was made): commits go back
   * to the full barrier, and this sleep is cut short in case one was missed */
  if (timeout_ms != 0 && atomic_load(&m->h->light) && wbpf_ring_fence_consumer() < 0) {
    atomic_store(&m->h->light, 0);
    if (timeout_ms < 0 || timeout_ms > 10) timeout_ms = 10;
  }
  /* a producer that committed before the flag was visible did not write the eventfd: look again */
  if (wbpf_ring_pending_size(m)) {
    atomic_store(&m->h->waiting, 0);
    return 1;
  }
  struct pollfd p[2] = {{.fd = m->notify_fd, .events = POLLIN}, {.fd = stop_fd, .events = POLLIN}};
  int r = poll(p, stop_fd >= 0 ? 2 : 1, timeout_ms);
  atomic_store(&m->h->waiting, 0);
  if (r <= 0) return 0;
  if (stop_fd >= 0 && (p[1].revents & POLLIN)) return -EINTR;
  if (p[0].revents & POLLIN) {
    uint64_t v;
    ssize_t rd = read(m->notify_fd, &v, 8);
    (void)rd;
    return 1;
  }
  return 0;
}
