/* Stress and crash test of the shared-memory maps (native/agent/maps/): N processes x M threads (forked
 * after the maps are created) on one hash, one array and one ring buffer, totals checked exactly; then
 * processes SIGKILLed while holding a bucket lock, the ring's producer lock and a reserved record, and
 * the survivors must go on. Usage: maps_stress [procs threads iters]; exit 0 when every check holds. */
#define _GNU_SOURCE
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "internal.h"
#include "check.h"

static int NP = 4, NT = 4, ITERS = 20000;
#define HOT_KEYS 16
#define MAXP 16
#define MAXT 16

static struct wbpf_map hash, arr, rb, lru;
/* per producer: ring outputs attempted, failed with -EAGAIN; hash churn failures */
struct shared {
  _Atomic uint64_t attempts[MAXP][MAXT], eagain[MAXP][MAXT];
  _Atomic uint64_t churn_fail, done_procs, lru_fail;
};
static struct shared *sh;


struct rec {
  uint32_t proc, thread, seq, len;
  uint8_t fill[];
};

static void *worker(void *arg) {
  int p = (int)((long)arg >> 16), t = (int)((long)arg & 0xffff);
  wbpf_map_set_thread_cpu(t);
  uint8_t buf[256];
  uint32_t own = 1000 + (uint32_t)(p * MAXT + t);
  for (int i = 0; i < ITERS; i++) {
    uint32_t k = (uint32_t)(i % HOT_KEYS);
    uint64_t *v = wbpf_map_lookup_elem(&hash, &k);
    if (v) __atomic_fetch_add(v, 1, __ATOMIC_RELAXED);
    uint64_t *a = wbpf_map_lookup_elem(&arr, &k);
    __atomic_fetch_add(a, 1, __ATOMIC_RELAXED);
    /* churn: this thread's own key in and out of the hash (chains and the free list under contention) */
    uint64_t one = 1;
    if (wbpf_map_update_elem(&hash, &own, &one, 1) != 0 || !wbpf_map_lookup_elem(&hash, &own) || wbpf_map_delete_elem(&hash, &own) != 0)
      atomic_fetch_add(&sh->churn_fail, 1);
    /* an LRU hash 4 times too small for its keys: every update succeeds (eviction under contention) */
    uint32_t lk = (uint32_t)(i * 13 + p * 7 + t) % 256;
    uint64_t lv = lk;
    if (wbpf_map_update_elem(&lru, &lk, &lv, 0) != 0) atomic_fetch_add(&sh->lru_fail, 1);
    /* (a pointer from a lookup may already hold another key's value: elements are reused, as in the kernel) */
    wbpf_map_lookup_elem(&lru, &lk);
    if (i % 4 == 0) {
      struct rec *r = (struct rec *)buf;
      uint32_t len = (uint32_t)(i * 7 + t) % 200;
      r->proc = (uint32_t)p, r->thread = (uint32_t)t, r->seq = (uint32_t)i, r->len = len;
      memset(r->fill, (int)((p * 31 + t * 7 + i) & 0xff), len);
      atomic_fetch_add(&sh->attempts[p][t], 1);
      long e = wbpf_ringbuf_output(&rb, r, sizeof *r + len, 0);
      if (e == -EAGAIN) atomic_fetch_add(&sh->eagain[p][t], 1);
      else if (e != 0) atomic_fetch_add(&sh->churn_fail, 1000000);
    }
  }
  return NULL;
}

static void child(int p) {
  prctl(PR_SET_PDEATHSIG, SIGKILL);
  pthread_t th[MAXT];
  for (long t = 0; t < NT; t++) pthread_create(&th[t], NULL, worker, (void *)(((long)p << 16) | t));
  for (int t = 0; t < NT; t++) pthread_join(th[t], NULL);
  _exit(0);
}

/* the consumer: checks every record whole and in order per producer */
static uint64_t received, torn, disorder;
static uint32_t last_seq[MAXP][MAXT];
static int have_seq[MAXP][MAXT];
static void consume(uint8_t *out, int n) {
  size_t off = 0;
  for (int i = 0; i < n; i++) {
    uint32_t size;
    memcpy(&size, out + off, 4);
    struct rec *r = (struct rec *)(out + off + 8);
    received++;
    int ok = size == sizeof *r + r->len && r->proc < (uint32_t)NP && r->thread < (uint32_t)NT;
    for (uint32_t j = 0; ok && j < r->len; j++) ok = r->fill[j] == (uint8_t)((r->proc * 31 + r->thread * 7 + r->seq) & 0xff);
    if (!ok) torn++;
    else {
      if (have_seq[r->proc][r->thread] && r->seq <= last_seq[r->proc][r->thread]) disorder++;
      have_seq[r->proc][r->thread] = 1;
      last_seq[r->proc][r->thread] = r->seq;
    }
    off += 8 + ROUND8(size);
  }
}
static volatile int producers_done;
static void *consumer(void *arg) {
  (void)arg;
  static uint8_t out[1 << 16];
  for (;;) {
    int n = wbpf_ring_drain(&rb, out, sizeof out);
    if (n > 0) {
      consume(out, n);
      continue;
    }
    if (producers_done && wbpf_ring_pending_size(&rb) == 0) return NULL;
    wbpf_ring_wait(&rb, 50, -1);
  }
}

static int mk(struct wbpf_map *m, uint32_t type, uint32_t k, uint32_t v, uint32_t n) {
  struct wbpf_map_spec s = {.type = type, .key_size = k, .value_size = v, .max_entries = n, .ncpus = 4, .name = "stress"};
  return wbpf_map_create(&s, m);
}

static void stress(void) {
  CHECK(mk(&hash, WBPF_MAP_HASH, 4, 8, HOT_KEYS + MAXP * MAXT) == 0, "hash created");
  CHECK(mk(&arr, WBPF_MAP_ARRAY, 4, 8, HOT_KEYS) == 0, "array created");
  CHECK(mk(&rb, WBPF_MAP_RINGBUF, 0, 0, 16384) == 0, "ring buffer created");
  CHECK(mk(&lru, WBPF_MAP_LRU_HASH, 4, 8, 64) == 0, "LRU hash created");
  for (uint32_t k = 0; k < HOT_KEYS; k++) {
    uint64_t z = 0;
    wbpf_map_sys_update(&hash, &k, &z, 0);
  }
  pthread_t ct;
  pthread_create(&ct, NULL, consumer, NULL);
  pid_t pids[MAXP];
  for (int p = 0; p < NP; p++)
    if ((pids[p] = fork()) == 0) child(p);
  int clean = 1;
  for (int p = 0; p < NP; p++) {
    int st;
    waitpid(pids[p], &st, 0);
    clean &= WIFEXITED(st) && WEXITSTATUS(st) == 0;
  }
  producers_done = 1;
  pthread_join(ct, NULL);
  CHECK(clean, "%d processes x %d threads x %d iterations finished", NP, NT, ITERS);
  uint64_t want = (uint64_t)NP * NT * ITERS / HOT_KEYS, hsum = 0, asum = 0;
  int exact = 1;
  for (uint32_t k = 0; k < HOT_KEYS; k++) {
    uint64_t hv = 0, av = 0;
    wbpf_map_sys_lookup(&hash, &k, &hv, 0);
    wbpf_map_sys_lookup(&arr, &k, &av, 0);
    exact &= hv == want && av == want;
    hsum += hv, asum += av;
  }
  CHECK(exact, "no lost atomic adds: hash total %llu, array total %llu, want %llu", (unsigned long long)hsum, (unsigned long long)asum,
        (unsigned long long)want * HOT_KEYS);
  CHECK(atomic_load(&sh->churn_fail) == 0, "churn (insert NOEXIST, lookup, delete of each thread's key) never failed (%llu)",
        (unsigned long long)atomic_load(&sh->churn_fail));
  CHECK(atomic_load(&hash.h->count) == HOT_KEYS, "hash holds exactly the hot keys (%u)", atomic_load(&hash.h->count));
  uint32_t nk = 0;
  uint32_t key, *kp = NULL;
  while (wbpf_map_sys_next_key(&hash, kp, &key, 0) == 0 && nk < 10000) nk++, kp = &key;
  CHECK(nk == HOT_KEYS, "get_next_key walks %u keys", nk);
  uint32_t nl = 0, lkey, *lkp = NULL;
  int lvals = 1;
  while (wbpf_map_sys_next_key(&lru, lkp, &lkey, 0) == 0 && nl < 10000) {
    uint64_t v = 0;
    lvals &= wbpf_map_sys_lookup(&lru, &lkey, &v, 0) == 0 && v == lkey;
    nl++, lkp = &lkey;
  }
  CHECK(atomic_load(&sh->lru_fail) == 0 && nl == 64 && atomic_load(&lru.h->count) == 64 && lvals,
        "LRU hash under contention: every update succeeded, values match keys, 64 elements walked (%u, failures %llu)", nl,
        (unsigned long long)atomic_load(&sh->lru_fail));
  uint64_t att = 0, fails = 0;
  for (int p = 0; p < NP; p++)
    for (int t = 0; t < NT; t++) att += sh->attempts[p][t], fails += sh->eagain[p][t];
  CHECK(torn == 0 && disorder == 0, "ring records whole and in order per producer (torn %llu, out of order %llu)", (unsigned long long)torn,
        (unsigned long long)disorder);
  CHECK(received + fails == att, "every output received or refused: %llu + %llu == %llu", (unsigned long long)received, (unsigned long long)fails,
        (unsigned long long)att);
  CHECK(wbpf_map_drops(&rb) == fails && fails > 0, "drops counted exactly when full: %llu (outputs that got -EAGAIN: %llu)",
        (unsigned long long)wbpf_map_drops(&rb), (unsigned long long)fails);
}

/* a child takes what it is told, says so through a pipe, and waits to be SIGKILLed */
static void die_holding(void (*take)(void)) {
  int fds[2];
  if (pipe(fds) < 0) return;
  pid_t pid = fork();
  if (pid == 0) {
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    take();
    if (write(fds[1], "x", 1) != 1) _exit(1);
    for (;;) pause();
  }
  char c;
  if (read(fds[0], &c, 1) != 1) printf("# child did not report\n");
  kill(pid, SIGKILL);
  waitpid(pid, NULL, 0);
  close(fds[0]);
  close(fds[1]);
}
static void take_all_buckets(void) {
  struct wbpf_bucket *b = (struct wbpf_bucket *)((uint8_t *)hash.h + hash.h->off_a);
  for (uint32_t i = 0; i < hash.h->nbuckets; i++) wbpf_lock(&hash, &b[i].lock);
}
static void take_ring_lock(void) {
  struct wbpf_ring *r = (struct wbpf_ring *)((uint8_t *)rb.h + rb.h->off_a);
  if (wbpf_ring_lock(&rb, &r->lock) != 0) _exit(1);
}
static void reserve_and_hold(void) {
  if (!wbpf_ringbuf_reserve(&rb, 32, 0)) _exit(1);
}

static void *wait_thread(void *arg) {
  *(int *)arg = wbpf_ring_wait(&rb, 5000, -1);
  return NULL;
}

static void crashes(void) {
  uint64_t rec0 = wbpf_map_recoveries(&hash);
  die_holding(take_all_buckets);
  int ok = 1;
  for (uint32_t k = 0; k < HOT_KEYS; k++) {
    uint64_t v = 7;
    ok &= wbpf_map_sys_update(&hash, &k, &v, 2) == 0;
  }
  uint32_t nk = 5000;
  uint64_t v = 1;
  ok &= wbpf_map_update_elem(&hash, &nk, &v, 0) == 0 && wbpf_map_delete_elem(&hash, &nk) == 0;
  CHECK(ok && wbpf_map_recoveries(&hash) > rec0, "a process killed holding every bucket lock: the next takers recover (%llu recoveries)",
        (unsigned long long)(wbpf_map_recoveries(&hash) - rec0));

  uint8_t out[4096];
  while (wbpf_ring_drain(&rb, out, sizeof out) > 0) {}
  die_holding(take_ring_lock);
  uint64_t x = 42;
  CHECK(wbpf_ringbuf_output(&rb, &x, 8, 0) == 0, "a process killed holding the ring's producer lock: output works");
  {
    /* killed holding it and not reaped yet (a zombie): the parent, the taker here, must not wait for itself */
    int fds[2];
    if (pipe(fds) == 0) {
      pid_t pid = fork();
      if (pid == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        take_ring_lock();
        if (write(fds[1], "x", 1) != 1) _exit(1);
        for (;;) pause();
      }
      char c;
      if (read(fds[0], &c, 1) != 1) printf("# child did not report\n");
      while (wbpf_ring_drain(&rb, out, sizeof out) > 0) {}
      kill(pid, SIGKILL);
      siginfo_t si;
      waitid(P_PID, pid, &si, WEXITED | WNOWAIT);
      CHECK(wbpf_ringbuf_output(&rb, &x, 8, 0) == 0, "a process killed holding the ring's producer lock, not yet reaped: output works");
      waitpid(pid, NULL, 0);
      close(fds[0]);
      close(fds[1]);
    }
  }
  die_holding(reserve_and_hold);
  CHECK(wbpf_ringbuf_output(&rb, &x, 8, 0) == 0, "output after a record left reserved by a killed process");
  int n = wbpf_ring_drain(&rb, out, sizeof out);
  CHECK(n == 2, "the dead process's reserved record is discarded, the records around it delivered (%d)", n);

  /* wake-up: a consumer sleeping in poll(2) is woken by a producer in another process */
  int got = -9;
  pthread_t wt;
  pthread_create(&wt, NULL, wait_thread, &got);
  usleep(100000);
  pid_t pid = fork();
  if (pid == 0) _exit(wbpf_ringbuf_output(&rb, &x, 8, 0) == 0 ? 0 : 1);
  waitpid(pid, NULL, 0);
  pthread_join(wt, NULL);
  CHECK(got == 1 && wbpf_ring_drain(&rb, out, sizeof out) == 1, "a sleeping consumer is woken by another process's output (%d)", got);
}

/* SIGKILL at a random moment: processes churning the same keys (and the ring) lose one of them mid-update */
static void churn_forever(int p, int iters) {
  prctl(PR_SET_PDEATHSIG, SIGKILL);
  wbpf_map_set_thread_cpu(p);
  for (int i = 0; iters < 0 || i < iters; i++) {
    uint32_t k = 2000 + (uint32_t)(i * 7 + p) % 64;
    uint64_t v = (uint64_t)i;
    if (wbpf_map_update_elem(&hash, &k, &v, 0) == -E2BIG) _exit(3);
    uint64_t *q = wbpf_map_lookup_elem(&hash, &k);
    if (q) __atomic_fetch_add(q, 1, __ATOMIC_RELAXED);
    wbpf_map_delete_elem(&hash, &k);
    wbpf_ringbuf_output(&rb, &v, 8, 0);
  }
  _exit(0);
}
static void killed_mid_update(void) {
  struct wbpf_map_spec s = {.type = WBPF_MAP_HASH, .key_size = 4, .value_size = 8, .max_entries = 512, .ncpus = 4, .name = "churn"};
  wbpf_map_close(&hash, 1);
  if (wbpf_map_create(&s, &hash) != 0) return;
  pid_t victim = fork();
  if (victim == 0) churn_forever(0, -1);
  pid_t pids[4];
  for (int p = 0; p < 4; p++)
    if ((pids[p] = fork()) == 0) churn_forever(p + 1, 300000);
  uint8_t out[1 << 14];
  for (int i = 0; i < 5; i++) {
    usleep(3000 + (unsigned)rand() % 5000);
    while (wbpf_ring_drain(&rb, out, sizeof out) > 0) {}
  }
  kill(victim, SIGKILL);
  waitpid(victim, NULL, 0);
  int clean = 1;
  for (int p = 0; p < 4; p++) {
    for (;;) {
      int st;
      pid_t r = waitpid(pids[p], &st, WNOHANG);
      if (r == pids[p]) {
        clean &= WIFEXITED(st) && WEXITSTATUS(st) == 0;
        break;
      }
      while (wbpf_ring_drain(&rb, out, sizeof out) > 0) {}
      usleep(1000);
    }
  }
  while (wbpf_ring_drain(&rb, out, sizeof out) > 0) {}
  uint64_t x = 1;
  int after = wbpf_ringbuf_output(&rb, &x, 8, 0) == 0 && wbpf_ring_drain(&rb, out, sizeof out) == 1;
  uint32_t nk = 0, key, *kp = NULL;
  while (wbpf_map_sys_next_key(&hash, kp, &key, 0) == 0 && nk < 10000) nk++, kp = &key;
  CHECK(clean && after && nk <= 1, "a process SIGKILLed mid-update: the others finish 300000 updates each, the ring flows, "
        "the hash is whole (%u keys left, %llu lock recoveries)", nk, (unsigned long long)wbpf_map_recoveries(&hash));
}

/* every commit wakes a consumer that is going to sleep (no lost wake-up, light commits or not: ring_fence.c):
 * a producer process commits one record per round at a random moment after the go, racing the consumer,
 * which drains and sleeps until it has it; a sleep that times out (1 s) lost its wake-up */
static void wakeups(void) {
  enum { ROUNDS = 4000 };
  volatile uint32_t *go = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
  if (go == MAP_FAILED) return;
  uint8_t out[4096];
  while (wbpf_ring_drain(&rb, out, sizeof out) > 0) {}
  pid_t pid = fork();
  if (pid == 0) {
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    for (uint32_t r = 1; r <= ROUNDS; r++) {
      /* spin a little (the race), then yield: on one CPU (an arm64 guest) the consumer needs it to go on */
      for (unsigned spin = 0; __atomic_load_n(go, __ATOMIC_ACQUIRE) < r; spin++)
        if (spin > 2000) sched_yield();
      for (volatile unsigned spin = (unsigned)rand() % 3000; spin; spin--) {}
      uint64_t v = r;
      if (wbpf_ringbuf_output(&rb, &v, 8, 0) != 0) _exit(1);
    }
    _exit(0);
  }
  unsigned late = 0, got = 0;
  for (uint32_t r = 1; r <= ROUNDS; r++) {
    __atomic_store_n(go, r, __ATOMIC_RELEASE);
    for (;;) {
      int n = wbpf_ring_drain(&rb, out, sizeof out);
      if (n > 0) {
        got += (unsigned)n;
        break;
      }
      /* the record comes within microseconds: a sleep that times out missed its wake-up */
      if (wbpf_ring_wait(&rb, 1000, -1) == 0 && ++late > 3) break;
    }
    if (late > 3) break;
  }
  int st = -1;
  if (late > 3) kill(pid, SIGKILL);
  waitpid(pid, &st, 0);
  CHECK(late == 0 && got == ROUNDS && st == 0, "a consumer going to sleep is woken by every commit of another process "
        "(%u rounds racing its sleep, %u records, %u wake-ups lost; light commits %u)", ROUNDS, got, late, (unsigned)rb.h->light);
  /* the light commits are on wherever the kernel has membarrier's global expedited barrier (4.16+) */
  long q = syscall(SYS_membarrier, 0 /* MEMBARRIER_CMD_QUERY */, 0, 0);
  CHECK(rb.h->light == (q > 0 && (q & (1 << 1)) ? 1u : 0u), "ring commits skip the full barrier where the consumer can fence for them "
        "(membarrier commands %#lx, light %u)", (unsigned long)q, (unsigned)rb.h->light);
  munmap((void *)go, 4096);

  /* one eventfd write per sleep, not per record: the consumer asleep (`waiting` set), 100 outputs by two
   * processes leave the eventfd's counter at 1 and `waiting` cleared; BPF_RB_FORCE_WAKEUP still writes */
  while (wbpf_ring_drain(&rb, out, sizeof out) > 0) {}
  uint64_t cnt = 0;
  struct pollfd pf = {.fd = rb.notify_fd, .events = POLLIN};
  while (poll(&pf, 1, 0) == 1 && read(rb.notify_fd, &cnt, 8) == 8) {}
  atomic_store(&rb.h->waiting, 1);
  pid_t other = fork();
  if (other == 0) {
    for (uint64_t v = 0; v < 50; v++) wbpf_ringbuf_output(&rb, &v, 8, 0);
    _exit(0);
  }
  for (uint64_t v = 0; v < 50; v++) wbpf_ringbuf_output(&rb, &v, 8, 0);
  waitpid(other, &st, 0);
  cnt = 0;
  int rd = poll(&pf, 1, 0) == 1 ? (int)read(rb.notify_fd, &cnt, 8) : 0;
  uint32_t left = atomic_load(&rb.h->waiting);
  uint64_t forced = 0;
  wbpf_ringbuf_output(&rb, &cnt, 8, RB_FORCE_WAKEUP);
  wbpf_ringbuf_output(&rb, &cnt, 8, RB_FORCE_WAKEUP);
  int rd2 = poll(&pf, 1, 0) == 1 ? (int)read(rb.notify_fd, &forced, 8) : 0;
  int drained = 0, k;
  while ((k = wbpf_ring_drain(&rb, out, sizeof out)) > 0) drained += k;
  CHECK(rd == 8 && cnt == 1 && left == 0 && rd2 == 8 && forced == 2 && drained == 102,
        "a sleeping consumer costs one eventfd write, not one per record (100 outputs of 2 processes: counter %llu, "
        "waiting %u after; 2 forced wake-ups: %llu; %d records)", (unsigned long long)cnt, left, (unsigned long long)forced, drained);
}

/* the consumer's batches (maps/ring.c walk: prod read once per batch, cons stored per batch or every few KiB)
 * and the producers' cached cons: BP processes x BT threads reserve, fill and submit (or discard, or output)
 * records of varied sizes with sequence numbers into a 4 KiB ring that wraps thousands of times and fills
 * up, while the consumer drains with buffers of varied sizes (one record, a few, many), sometimes sleeping.
 * Every record a producer committed arrives exactly once, in its order, whole; nothing discarded or refused
 * arrives; the refusals are the drops */
enum { BP = 3, BT = 2, BITERS = 60000 };
struct batch_shared {
  _Atomic uint8_t accepted[BP][BT][BITERS / 8]; /* committed records' sequence numbers */
  _Atomic uint64_t refused;
};
static void batch_producer(struct batch_shared *bs, int p, int t) {
  uint8_t buf[128];
  for (uint32_t seq = 0; seq < BITERS; seq++) {
    uint32_t len = (seq * 7 + (uint32_t)t * 3) % 57, size = (uint32_t)sizeof(struct rec) + len;
    int how = (int)((seq ^ (uint32_t)p) % 7); /* 0: discard, 1-2: output, else reserve + submit */
    struct rec *r = how == 1 || how == 2 ? (struct rec *)buf : wbpf_ringbuf_reserve(&rb, size, 0);
    if (!r) {
      atomic_fetch_add(&bs->refused, 1);
      sched_yield(); /* let the consumer run (on one CPU) */
      continue;
    }
    r->proc = (uint32_t)p, r->thread = (uint32_t)t, r->seq = seq, r->len = len;
    for (uint32_t j = 0; j < len; j++) r->fill[j] = (uint8_t)((r->proc * 31 + r->thread * 7 + seq) & 0xff);
    if (how == 0) {
      wbpf_ringbuf_discard(&rb, r, 0);
      continue;
    }
    atomic_fetch_or_explicit(&bs->accepted[p][t][seq / 8], (uint8_t)(1u << (seq % 8)), memory_order_relaxed);
    if (how != 1 && how != 2) {
      wbpf_ringbuf_submit(&rb, r, 0);
      continue;
    }
    if (wbpf_ringbuf_output(&rb, r, size, 0) != 0) { /* refused: not accepted after all */
      atomic_fetch_and(&bs->accepted[p][t][seq / 8], (uint8_t) ~(1u << (seq % 8)));
      atomic_fetch_add(&bs->refused, 1);
      sched_yield();
    }
  }
}
struct batch_arg {
  struct batch_shared *bs;
  int p, t;
};
static void *batch_thread(void *a) {
  struct batch_arg *ba = a;
  batch_producer(ba->bs, ba->p, ba->t);
  return NULL;
}
static void batches(void) {
  struct batch_shared *bs = mmap(NULL, sizeof *bs, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
  struct wbpf_map small;
  if (bs == MAP_FAILED || mk(&small, WBPF_MAP_RINGBUF, 0, 0, 4096) != 0) {
    CHECK(0, "batches: setup");
    return;
  }
  struct wbpf_map saved = rb;
  rb = small; /* the producers (forked below) and the consumer use it */
  pid_t pids[BP];
  for (int p = 0; p < BP; p++)
    if ((pids[p] = fork()) == 0) {
      prctl(PR_SET_PDEATHSIG, SIGKILL);
      pthread_t th[BT];
      struct batch_arg args[BT];
      for (int t = 0; t < BT; t++) {
        args[t] = (struct batch_arg){bs, p, t};
        pthread_create(&th[t], NULL, batch_thread, &args[t]);
      }
      for (int t = 0; t < BT; t++) pthread_join(th[t], NULL);
      _exit(0);
    }
  static uint8_t out[8192];
  static const size_t lens[] = {40, 64, 100, 300, 1000, 8192};
  uint64_t got[BP][BT] = {{0}}, bad = 0, dup_or_order = 0, unaccepted = 0, rounds = 0;
  int64_t last[BP][BT];
  for (int p = 0; p < BP; p++)
    for (int t = 0; t < BT; t++) last[p][t] = -1;
  int live = BP, clean = 1;
  while (live > 0 || wbpf_ring_pending_size(&rb)) {
    int n = wbpf_ring_drain(&rb, out, lens[rounds++ % 6]);
    size_t off = 0;
    for (int i = 0; i < n; i++) {
      uint32_t size;
      memcpy(&size, out + off, 4);
      struct rec *r = (struct rec *)(out + off + 8);
      off += 8 + ROUND8(size);
      int ok = size >= sizeof *r && size == sizeof *r + r->len && r->proc < BP && r->thread < BT && r->seq < BITERS;
      for (uint32_t j = 0; ok && j < r->len; j++) ok = r->fill[j] == (uint8_t)((r->proc * 31 + r->thread * 7 + r->seq) & 0xff);
      if (!ok) {
        bad++;
        continue;
      }
      if ((int64_t)r->seq <= last[r->proc][r->thread]) dup_or_order++;
      last[r->proc][r->thread] = r->seq;
      if (!(atomic_load(&bs->accepted[r->proc][r->thread][r->seq / 8]) & (1u << (r->seq % 8)))) unaccepted++;
      got[r->proc][r->thread]++;
    }
    if (n == 0 && rounds % 3 == 0) wbpf_ring_wait(&rb, 5, -1);
    for (int p = 0; p < BP; p++) {
      int st;
      if (pids[p] > 0 && waitpid(pids[p], &st, WNOHANG) == pids[p]) {
        clean &= WIFEXITED(st) && WEXITSTATUS(st) == 0;
        pids[p] = 0;
        live--;
      }
    }
  }
  uint64_t missing = 0, total = 0;
  for (int p = 0; p < BP; p++)
    for (int t = 0; t < BT; t++) {
      uint64_t want = 0;
      for (int b = 0; b < BITERS / 8; b++) want += (uint64_t)__builtin_popcount(atomic_load(&bs->accepted[p][t][b]));
      missing += want > got[p][t] ? want - got[p][t] : got[p][t] - want;
      total += got[p][t];
    }
  uint64_t prod = wbpf_ringbuf_query(&rb, 3), cons = wbpf_ringbuf_query(&rb, 2);
  CHECK(clean && bad == 0 && dup_or_order == 0 && unaccepted == 0 && missing == 0,
        "batched draining of a 4 KiB ring, %d processes x %d threads x %d records: each committed record once, in order, whole "
        "(%llu received; torn %llu, duplicated or reordered %llu, discarded or refused yet received %llu, lost %llu)",
        BP, BT, BITERS, (unsigned long long)total, (unsigned long long)bad, (unsigned long long)dup_or_order,
        (unsigned long long)unaccepted, (unsigned long long)missing);
  CHECK(wbpf_map_drops(&rb) == atomic_load(&bs->refused) && atomic_load(&bs->refused) > 0 && prod / 4096 > 500 && cons == prod,
        "the small ring filled up (%llu refused, %llu drops) and wrapped %llu times; all consumed (cons %llu == prod %llu)",
        (unsigned long long)atomic_load(&bs->refused), (unsigned long long)wbpf_map_drops(&rb), (unsigned long long)(prod / 4096),
        (unsigned long long)cons, (unsigned long long)prod);
  wbpf_map_close(&small, 1);
  rb = saved;
  munmap(bs, sizeof *bs);
}

int main(int argc, char **argv) {
  if (argc == 4) NP = atoi(argv[1]), NT = atoi(argv[2]), ITERS = atoi(argv[3]);
  if (NP < 1 || NP > MAXP || NT < 1 || NT > MAXT || ITERS < HOT_KEYS || ITERS % HOT_KEYS) {
    fprintf(stderr, "usage: maps_stress [procs<=16 threads<=16 iters (a multiple of %d)]\n", HOT_KEYS);
    return 2;
  }
  setvbuf(stdout, NULL, _IOLBF, 0);
  sh = mmap(NULL, sizeof *sh, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
  alarm(120);
  stress();
  crashes();
  srand((unsigned)getpid());
  wakeups();
  batches();
  killed_mid_update();
  printf("maps_stress: %d failed\n", failures);
  return failures ? 1 : 0;
}
