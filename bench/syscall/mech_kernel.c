/* The kernel rows: tp.bpf.o's program for the workload attached to its syscall tracepoint, a consumer thread
 * draining the ring buffer every 10 ms (libbpf). Needs root (CAP_BPF + CAP_PERFMON). */
#define _GNU_SOURCE
#include "common.h"
#include "mech.h"
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <pthread.h>
#include <stdatomic.h>
#include <unistd.h>

static struct bpf_object *obj;
static struct bpf_link *tp_link;
static struct ring_buffer *rb;
static pthread_t consumer;
static _Atomic int stop;
static uint64_t count;

static int on_rec(void *ctx, void *data, size_t len) { (void)ctx; (void)data; (void)len; count++; return 0; }

static void *drain(void *arg) {
  (void)arg;
  while (!atomic_load(&stop)) {
    ring_buffer__consume(rb);
    usleep(10000);
  }
  ring_buffer__consume(rb);
  return 0;
}

int mech_kernel_start(const char *path, enum workload w) {
  libbpf_set_print(0);
  obj = bpf_object__open_file(path, 0);
  if (!obj || bpf_object__load(obj)) return -1;
  __u32 k = 0, tgid = (__u32)getpid();
  if (bpf_map_update_elem(bpf_object__find_map_fd_by_name(obj, "ctl"), &k, &tgid, BPF_ANY)) return -1;
  struct bpf_program *p = bpf_object__find_program_by_name(obj, w == W_OPENAT ? "enter_openat" : "enter_getppid");
  if (!p || !(tp_link = bpf_program__attach(p))) return -1;
  if (!(rb = ring_buffer__new(bpf_object__find_map_fd_by_name(obj, "rb"), on_rec, 0, 0))) return -1;
  pthread_create(&consumer, 0, drain, 0);
  return 0;
}

uint64_t mech_kernel_stop(void) {
  atomic_store(&stop, 1);
  pthread_join(consumer, 0);
  ring_buffer__free(rb);
  bpf_link__destroy(tp_link);
  bpf_object__close(obj);
  return count;
}
