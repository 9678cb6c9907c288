/* Ring microbenchmark (bench/uprobe/ANALYSIS.md, "the ring's shared words"): one producer thread reserving,
 * filling and submitting 16-byte records as the hit path does, one consumer thread draining as the host does
 * (eager, or with its sleep/wake protocol), on one CPU or two; ns per record, best and median of many rounds,
 * the configurations interleaved (drops count as records: a hit that finds the ring full costs too).
 * gap: the producer's own work between two records (iterations of a dependent multiply-add, ~1 ns each), as
 * the traced function's between two hits: the consumer then keeps up and drains beside the producer.
 * Usage: ring_bench [rounds [records [ring_kib [gap [raw]]]]]: raw prints each round (test/ring_ab.py pools runs). */
#define _GNU_SOURCE
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "internal.h"

static int ROUNDS = 31, RECORDS = 200000, RING_KIB = 256, GAP = 0, RAW;
static volatile uint64_t sink;

enum { C_NONE, C_EAGER, C_WAIT };
struct cfg {
  const char *name;
  int consumer; /* C_* */
  int same_cpu; /* consumer pinned on the producer's CPU */
};
static const struct cfg CFGS[] = {
    {"alone (drained after)", C_NONE, 0},
    {"eager, other CPU", C_EAGER, 0},
    {"eager, same CPU", C_EAGER, 1},
    {"sleep/wake, other CPU", C_WAIT, 0},
    {"sleep/wake, same CPU", C_WAIT, 1},
};
#define NCFG (sizeof CFGS / sizeof CFGS[0])

static struct wbpf_map rb;
static _Atomic int producing, started;
static uint64_t got, bad;
static double drain_ns_min = 1e30; /* alone: the consumer's drain, ns per record, its best round */

static double now_ns(clockid_t c) {
  struct timespec t;
  clock_gettime(c, &t);
  return (double)t.tv_sec * 1e9 + (double)t.tv_nsec;
}

static void pin(int cpu) {
  cpu_set_t s;
  CPU_ZERO(&s);
  CPU_SET(cpu, &s);
  pthread_setaffinity_np(pthread_self(), sizeof s, &s);
}

/* checks each record's sequence number: the next expected, or a gap after drops (never backwards) */
static uint64_t expect;
static void take(const uint8_t *buf, int n) {
  size_t off = 0;
  for (int i = 0; i < n; i++) {
    uint32_t sz;
    memcpy(&sz, buf + off, 4);
    uint64_t seq;
    memcpy(&seq, buf + off + 8, 8);
    if (sz != 16 || seq < expect) bad++;
    expect = seq + 1;
    got++;
    off += 8 + ROUND8(sz);
  }
}

static uint8_t cbuf[1 << 16];
static void drain_all(void) {
  int n;
  while ((n = wbpf_ring_drain(&rb, cbuf, sizeof cbuf)) > 0) take(cbuf, n);
}

struct carg {
  int mode, cpu;
};
static void *consumer(void *p) {
  struct carg *a = p;
  pin(a->cpu);
  atomic_store(&started, 1);
  while (atomic_load(&producing)) {
    int n = wbpf_ring_drain(&rb, cbuf, sizeof cbuf);
    if (n > 0) take(cbuf, n);
    else if (a->mode == C_WAIT) wbpf_ring_wait(&rb, 50, -1);
  }
  drain_all();
  return NULL;
}

/* one round of one configuration: the producer's ns per record (wall clock and its own CPU time) */
static void round_of(const struct cfg *c, double *wall, double *cpu) {
  got = bad = 0;
  expect = 0;
  pin(0);
  pthread_t th;
  struct carg a = {c->consumer, c->same_cpu ? 0 : 1};
  atomic_store(&producing, 1);
  atomic_store(&started, 0);
  if (c->consumer != C_NONE) {
    pthread_create(&th, NULL, consumer, &a);
    while (!atomic_load(&started)) sched_yield();
  }
  uint64_t drops0 = wbpf_map_drops(&rb);
  double w0 = now_ns(CLOCK_MONOTONIC), c0 = now_ns(CLOCK_THREAD_CPUTIME_ID);
  /* alone: the ring holds a slice of records, drained between slices outside the timing */
  uint64_t cap_recs = (uint64_t)RING_KIB * 1024 / 24 - 1, slice = c->consumer == C_NONE ? cap_recs : (uint64_t)RECORDS;
  double paused = 0, cpaused = 0;
  for (uint64_t s = 0; s < (uint64_t)RECORDS;) {
    uint64_t end = s + slice < (uint64_t)RECORDS ? s + slice : (uint64_t)RECORDS;
    uint64_t x = sink;
    for (uint64_t i = s; i < end; i++) {
      for (int g = 0; g < GAP; g++) x = x * 6364136223846793005ull + 1442695040888963407ull;
      uint64_t *p = wbpf_ringbuf_reserve(&rb, 16, 0);
      if (!p) continue; /* full: dropped, as at a hit */
      p[0] = i;
      p[1] = i ^ 0x5a5a5a5a5a5a5a5aull;
      wbpf_ringbuf_submit(&rb, p, 0);
    }
    sink = x;
    s = end;
    if (c->consumer == C_NONE) {
      double p0 = now_ns(CLOCK_MONOTONIC), q0 = now_ns(CLOCK_THREAD_CPUTIME_ID);
      drain_all();
      paused += now_ns(CLOCK_MONOTONIC) - p0;
      cpaused += now_ns(CLOCK_THREAD_CPUTIME_ID) - q0;
    }
  }
  double w1 = now_ns(CLOCK_MONOTONIC) - paused, c1 = now_ns(CLOCK_THREAD_CPUTIME_ID) - cpaused;
  if (c->consumer == C_NONE && cpaused / RECORDS < drain_ns_min) drain_ns_min = cpaused / RECORDS;
  atomic_store(&producing, 0);
  if (c->consumer != C_NONE) {
    uint64_t one = 1;
    if (write(rb.notify_fd, &one, 8) < 0) perror("write"); /* a sleeping consumer sees producing == 0 now */
    pthread_join(th, NULL);
  }
  drain_all();
  uint64_t drops = wbpf_map_drops(&rb) - drops0;
  if (bad || got + drops != (uint64_t)RECORDS) {
    fprintf(stderr, "ring_bench: %s: %llu records, %llu drops, %llu out of order (of %d)\n", c->name,
            (unsigned long long)got, (unsigned long long)drops, (unsigned long long)bad, RECORDS);
    exit(1);
  }
  *wall = (w1 - w0) / RECORDS;
  *cpu = (c1 - c0) / RECORDS;
}

static int cmpd(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return x < y ? -1 : x > y;
}

int main(int argc, char **argv) {
  if (argc > 1) ROUNDS = atoi(argv[1]);
  if (argc > 2) RECORDS = atoi(argv[2]);
  if (argc > 3) RING_KIB = atoi(argv[3]);
  if (argc > 4) GAP = atoi(argv[4]);
  if (argc > 5) RAW = strcmp(argv[5], "raw") == 0;
  struct wbpf_map_spec spec = {.type = WBPF_MAP_RINGBUF, .max_entries = (uint32_t)RING_KIB * 1024, .ncpus = 2, .name = "bench"};
  int r = wbpf_map_create(&spec, &rb);
  if (r) {
    fprintf(stderr, "ring_bench: create: %s\n", strerror(-r));
    return 1;
  }
  double (*wall)[NCFG] = calloc((size_t)ROUNDS, sizeof *wall), (*cpu)[NCFG] = calloc((size_t)ROUNDS, sizeof *cpu);
  uint64_t drops[NCFG] = {0};
  for (int k = 0; k < ROUNDS; k++)
    for (size_t c = 0; c < NCFG; c++) {
      uint64_t d0 = wbpf_map_drops(&rb);
      round_of(&CFGS[c], &wall[k][c], &cpu[k][c]);
      uint64_t d = wbpf_map_drops(&rb) - d0;
      drops[c] += d;
      if (RAW) printf("raw\t%s\t%.2f\t%.2f\t%.3f\n", CFGS[c].name, wall[k][c], cpu[k][c], 100.0 * (double)d / RECORDS);
    }
  printf("ring_bench: %d rounds x %d records of 16 bytes, ring %d KiB, gap %d, light commits %s\n", ROUNDS, RECORDS, RING_KIB, GAP,
         atomic_load(&rb.h->light) ? "on" : "off");
  printf("%-24s %9s %9s %9s %9s %8s\n", "consumer", "wall min", "wall med", "cpu min", "cpu med", "drops");
  for (size_t c = 0; c < NCFG; c++) {
    double w[ROUNDS], u[ROUNDS];
    for (int k = 0; k < ROUNDS; k++) w[k] = wall[k][c], u[k] = cpu[k][c];
    qsort(w, (size_t)ROUNDS, sizeof w[0], cmpd);
    qsort(u, (size_t)ROUNDS, sizeof u[0], cmpd);
    printf("%-24s %9.1f %9.1f %9.1f %9.1f %7.3f%%\n", CFGS[c].name, w[0], w[ROUNDS / 2], u[0], u[ROUNDS / 2],
           100.0 * (double)drops[c] / ((double)ROUNDS * RECORDS));
  }
  printf("the consumer's drain alone (a full ring, no producer running): %.1f ns per record at best\n", drain_ns_min);
  wbpf_map_close(&rb, 1);
  return 0;
}
