/* The syscall bench's shared parts (common.h): loops, stub + ring + consumer, SIGSYS install, seccomp filters. */
#define _GNU_SOURCE
#include "common.h"
#include <errno.h>
#include <fcntl.h>
#include <linux/audit.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

uint64_t now_ns(int clock) {
  struct timespec ts;
  clock_gettime(clock, &ts);
  return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

const char *workload_name(enum workload w) {
  switch (w) {
  case W_GETPPID: return "getppid";
  case W_OPENAT: return "openat+close";
  case W_GETPID: return "getpid";
  case W_RAW_GETPPID: return "raw-getppid";
  case W_ASM_GETPPID: return "asm-getppid";
  case W_RAW_GETPID: return "raw-getpid";
  }
  return "?";
}

int traced_nr(enum workload w) { return w == W_OPENAT ? SYS_openat : SYS_getppid; }

void run_loop(enum workload w, uint64_t n, struct result *r) {
  uint64_t c0 = now_ns(CLOCK_THREAD_CPUTIME_ID), w0 = now_ns(CLOCK_MONOTONIC);
  switch (w) {
  case W_GETPPID:
    for (uint64_t i = 0; i < n; i++) getppid();
    break;
  case W_OPENAT:
    for (uint64_t i = 0; i < n; i++) {
      int fd = openat(AT_FDCWD, "/dev/null", O_RDONLY);
      if (fd < 0) _exit(90);
      close(fd);
    }
    break;
  case W_GETPID:
    for (uint64_t i = 0; i < n; i++) getpid();
    break;
  case W_RAW_GETPPID:
    for (uint64_t i = 0; i < n; i++) syscall(SYS_getppid);
    break;
  case W_RAW_GETPID: /* an untraced number through libc's syscall(), rewritten for the traced getppid */
    for (uint64_t i = 0; i < n; i++) syscall(SYS_getpid);
    break;
  case W_ASM_GETPPID:
    for (uint64_t i = 0; i < n; i++) {
      long rax = SYS_getppid;
      __asm__ volatile("syscall" : "+a"(rax) : : "rcx", "r11", "memory");
    }
    break;
  }
  r->thread_cpu_ns = now_ns(CLOCK_THREAD_CPUTIME_ID) - c0;
  r->wall_ns = now_ns(CLOCK_MONOTONIC) - w0;
  r->calls = n;
}

/* ---- the stub: a record per traced syscall into a single-producer ring the consumer drains ---- */
struct rec { uint64_t nr, a0, a1; };
#define RING (1u << 18)
static struct rec ring[RING];
static _Atomic uint64_t head, tail, records;
static _Atomic int stop;
static pthread_t consumer;

void stub_enter(long nr, const long args[6]) {
  uint64_t h = atomic_load_explicit(&head, memory_order_relaxed);
  if (h - atomic_load_explicit(&tail, memory_order_acquire) >= RING) return; /* full: dropped, as a full ringbuf */
  ring[h & (RING - 1)] = (struct rec){ (uint64_t)nr, (uint64_t)args[0], (uint64_t)args[1] };
  atomic_store_explicit(&head, h + 1, memory_order_release);
  atomic_fetch_add_explicit(&records, 1, memory_order_relaxed);
}

void stub_exit(long nr, long ret) { (void)nr; (void)ret; }

/* the traced set as a bitmap, for sites whose number arrives in a register (tramp_dyn) */
static uint64_t traced_set[8];
void stub_trace(long nr) { if (nr >= 0 && nr < 512) traced_set[nr >> 6] |= 1ull << (nr & 63); }
static int is_traced(long nr) { return nr >= 0 && nr < 512 && (traced_set[nr >> 6] >> (nr & 63)) & 1; }
void stub_enter_dyn(long nr, const long args[6]) { if (is_traced(nr)) stub_enter(nr, args); }
void stub_exit_dyn(long nr, long ret) { if (is_traced(nr)) stub_exit(nr, ret); }

uint64_t stub_records(void) { return atomic_load(&records); }

static void *drain(void *arg) {
  (void)arg;
  while (!atomic_load(&stop)) {
    atomic_store_explicit(&tail, atomic_load_explicit(&head, memory_order_acquire), memory_order_release);
    usleep(10000);
  }
  return 0;
}

void consumer_start(void) { pthread_create(&consumer, 0, drain, 0); }
void consumer_stop(void) {
  atomic_store(&stop, 1);
  pthread_join(consumer, 0);
}

/* ---- SIGSYS with our restorer ---- */
struct ksigaction { void *handler; unsigned long flags; void *restorer; uint64_t mask; };
#define SA_RESTORER_ 0x04000000

int install_sigsys(void (*h)(int, void *, void *)) {
  struct ksigaction sa = { (void *)h, SA_SIGINFO | SA_RESTORER_ | SA_NODEFER, (void *)gadget_restorer, 0 };
  return (int)syscall(SYS_rt_sigaction, SIGSYS, &sa, 0, 8);
}

/* ---- seccomp ---- */
int install_seccomp(const int *nrs, int n_nrs, const struct ip_range *ranges, int n_ranges, uint32_t action) {
  struct sock_filter f[128];
  int k = 0;
  const uint32_t ip_lo = offsetof(struct seccomp_data, instruction_pointer), ip_hi = ip_lo + 4;
  /* 0 */ f[k++] = (struct sock_filter)BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, arch));
  /* 1 */ f[k++] = (struct sock_filter)BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, AUDIT_ARCH_X86_64, 1, 0);
  /* 2 */ f[k++] = (struct sock_filter)BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW);
  f[k++] = (struct sock_filter)BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr));
  for (int i = 0; i < n_nrs; i++) f[k++] = (struct sock_filter)BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, (uint32_t)nrs[i], (uint8_t)(n_nrs - i), 0);
  f[k++] = (struct sock_filter)BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW); /* untraced: allowed after n_nrs compares */
  /* traced: allowed from inside a range (the re-issue), else the action. Each range: 5 insns */
  for (int i = 0; i < n_ranges; i++) {
    uint32_t hi = (uint32_t)(ranges[i].lo >> 32);
    if ((ranges[i].hi - 1) >> 32 != hi) return -EINVAL; /* one 4 GiB window per range */
    f[k++] = (struct sock_filter)BPF_STMT(BPF_LD | BPF_W | BPF_ABS, ip_hi);
    f[k++] = (struct sock_filter)BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, hi, 0, 3);
    f[k++] = (struct sock_filter)BPF_STMT(BPF_LD | BPF_W | BPF_ABS, ip_lo);
    f[k++] = (struct sock_filter)BPF_JUMP(BPF_JMP | BPF_JGE | BPF_K, (uint32_t)ranges[i].lo, 0, 1);
    f[k++] = (struct sock_filter)BPF_JUMP(BPF_JMP | BPF_JGE | BPF_K, (uint32_t)ranges[i].hi, 0, (uint8_t)(5 * (n_ranges - i - 1) + 1));
  }
  f[k++] = (struct sock_filter)BPF_STMT(BPF_RET | BPF_K, action);
  f[k++] = (struct sock_filter)BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW);
  struct sock_fprog prog = { (unsigned short)k, f };
  if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0)) return -errno;
  if (syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, SECCOMP_FILTER_FLAG_TSYNC, &prog)) return -errno;
  return 0;
}
