/* A ring's producer lock: one shared word, 0 or the holder's (pid << 32) | tid; a taker that finds it held
 * spins, then yields and checks that the holder still lives, and takes the lock of a dead one over (as
 * the robust mutex it replaces did through the kernel's robust list, at a fraction of the cost). */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <fcntl.h>
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "internal.h"

/* this thread's (pid << 32) | tid, cached; a fork child (atfork handler) reads the ids again */
static volatile uint32_t ids_gen = 1;
static __thread uint32_t tls_gen;
static __thread uint64_t tls_id;
static pthread_once_t ids_once = PTHREAD_ONCE_INIT;
static void ids_forked(void) { ids_gen++; }
static void ids_init(void) { pthread_atfork(NULL, NULL, ids_forked); }

__attribute__((noinline)) static uint64_t ids_read(uint32_t gen) {
  pthread_once(&ids_once, ids_init);
  tls_id = ((uint64_t)(uint32_t)getpid() << 32) | (uint32_t)syscall(SYS_gettid);
  tls_gen = gen;
  return tls_id;
}

static inline uint64_t self_id(void) {
  uint32_t gen = ids_gen;
  if (__builtin_expect(tls_gen != gen, 0)) return ids_read(gen);
  return tls_id;
}

/* the holder's thread is gone (ESRCH), or a zombie / dead task (its process killed, not yet reaped: a
 * parent that is itself waiting here would never reap it). Saves errno: this runs in traced processes */
static int holder_dead(uint64_t id) {
  int saved = errno, dead = 0;
  pid_t pid = (pid_t)(id >> 32), tid = (pid_t)(uint32_t)id;
  if (syscall(SYS_tgkill, pid, tid, 0) < 0) {
    dead = errno == ESRCH;
  } else {
    char path[64], buf[256];
    snprintf(path, sizeof path, "/proc/%d/task/%d/stat", (int)pid, (int)tid);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd >= 0) {
      ssize_t n = read(fd, buf, sizeof buf - 1);
      close(fd);
      if (n > 0) {
        buf[n] = 0;
        char *p = strrchr(buf, ')'); /* "tid (comm) S ...": comm may hold anything */
        dead = p && p[1] == ' ' && (p[2] == 'Z' || p[2] == 'X' || p[2] == 'x');
      }
    }
  }
  errno = saved;
  return dead;
}

/* the lock was held (cur: by whom) */
__attribute__((noinline)) static int lock_slow(struct wbpf_map *m, _Atomic uint64_t *l, uint64_t me, uint64_t cur) {
  if (cur == me) return -EDEADLK; /* a hit inside this thread's own reserve (a signal handler) */
  for (unsigned spins = 0;; spins++) {
    cur = atomic_load_explicit(l, memory_order_relaxed);
    if (cur == 0) {
      if (atomic_compare_exchange_weak_explicit(l, &cur, me, memory_order_acquire, memory_order_relaxed)) return 0;
      continue;
    }
    if (spins < 128) {
#if defined(__x86_64__) || defined(__i386__)
      __builtin_ia32_pause();
#endif
      continue;
    }
    /* held long: the holder may be preempted (yield to it) or dead (take over) */
    if ((spins & 15) == 0 && holder_dead(cur) &&
        atomic_compare_exchange_strong_explicit(l, &cur, me, memory_order_acquire, memory_order_relaxed)) {
      atomic_fetch_add(&m->h->recoveries, 1);
      return 0;
    }
    sched_yield();
  }
}

/* the uncontended take is a compare-exchange and a return: the waits, and the ids' first read, are out of line */
int wbpf_ring_lock(struct wbpf_map *m, _Atomic uint64_t *l) {
  uint64_t me = self_id(), cur = 0;
  if (__builtin_expect(atomic_compare_exchange_strong_explicit(l, &cur, me, memory_order_acquire, memory_order_relaxed), 1)) return 0;
  return lock_slow(m, l, me, cur);
}

void wbpf_ring_unlock(_Atomic uint64_t *l) { atomic_store_explicit(l, 0, memory_order_release); }
