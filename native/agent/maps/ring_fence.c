/* The ring's wake-up fence, moved from every commit to the consumer's sleep: a producer whose process is
 * registered for membarrier's global expedited barrier commits with a plain release store, and the consumer,
 * before it sleeps, runs that barrier in every registered process (so a commit and the consumer's `waiting`
 * flag still see one another, as with the full barrier of the kernel's xchg). Unregistered producers and
 * kernels without it keep the full barrier (ring.c). */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "internal.h"

#define MB_GLOBAL_EXPEDITED (1 << 1)          /* MEMBARRIER_CMD_GLOBAL_EXPEDITED (Linux 4.16) */
#define MB_REGISTER_GLOBAL_EXPEDITED (1 << 2) /* MEMBARRIER_CMD_REGISTER_GLOBAL_EXPEDITED */

static long mb(int cmd) {
#ifdef SYS_membarrier
  return syscall(SYS_membarrier, cmd, 0, 0);
#else
  (void)cmd;
  errno = ENOSYS;
  return -1;
#endif
}

/* this process is registered (1) or cannot be (-1); 0 not tried. Keyed by pid: a fork child registers again */
static pid_t reg_pid; /* atomic */
static int reg_state; /* atomic */

/* this process's first look (or a fork child's): registers */
__attribute__((noinline)) static int fence_register(pid_t me) {
  int saved = errno; /* this runs in traced processes */
  int ok = mb(MB_REGISTER_GLOBAL_EXPEDITED) == 0;
  errno = saved;
  __atomic_store_n(&reg_state, ok ? 1 : -1, __ATOMIC_RELAXED);
  __atomic_store_n(&reg_pid, me, __ATOMIC_RELEASE);
  return ok;
}

int wbpf_ring_fence_producer(void) {
  pid_t me = wbpf_ring_self_pid();
  if (__builtin_expect(__atomic_load_n(&reg_pid, __ATOMIC_ACQUIRE) == me, 1)) return __atomic_load_n(&reg_state, __ATOMIC_RELAXED) > 0;
  return fence_register(me);
}

int wbpf_ring_fence_host(void) {
  if (!wbpf_ring_fence_producer()) return 0;
  int saved = errno;
  int ok = mb(MB_GLOBAL_EXPEDITED) == 0;
  errno = saved;
  return ok;
}

int wbpf_ring_fence_consumer(void) {
  int saved = errno;
  int r = mb(MB_GLOBAL_EXPEDITED) == 0 ? 0 : -errno;
  errno = saved;
  return r;
}
