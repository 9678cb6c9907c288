/* The syscall bench's target: `sysbench MECHANISM WORKLOAD CALLS [tp.bpf.o]` sets up one mechanism, runs the loop,
 * prints one line of key=value results. Mechanisms: none, kernel, trap (a), sud (b), sud-allow, seccomp-trace (c),
 * ptrace-syscall (d), rewrite (e). Workloads: getppid, openat (openat+close, openat traced), getpid (untraced while
 * getppid is traced), raw-getppid (libc's syscall(), rewritten by (e) with a number check), asm-getppid (a `syscall`
 * instruction in this binary: (e)'s catch-all), raw-getpid (libc's syscall() of an untraced number while getppid is
 * traced). x86_64 only. */
#define _GNU_SOURCE
#include "common.h"
#include "mech.h"
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int parse_workload(const char *s, enum workload *w) {
  for (int i = W_GETPPID; i <= W_RAW_GETPID; i++) {
    if (!strcmp(s, workload_name((enum workload)i)) || (i == W_OPENAT && !strcmp(s, "openat"))) { *w = (enum workload)i; return 0; }
  }
  return -1;
}

int main(int argc, char **argv) {
  enum workload w;
  if (argc < 4 || parse_workload(argv[2], &w)) {
    fprintf(stderr, "usage: sysbench none|kernel|trap|sud|sud-allow|seccomp-trace|ptrace-syscall|rewrite getppid|openat|getpid|raw-getppid|asm-getppid|raw-getpid CALLS [tp.bpf.o]\n");
    return 2;
  }
  const char *m = argv[1];
  uint64_t calls = strtoull(argv[3], 0, 10);
  int nrs[1] = { traced_nr(w) };
  struct result r = { 0 };
  int rc = 0;
  if (!strcmp(m, "seccomp-trace") || !strcmp(m, "ptrace-syscall")) {
    consumer_start();
    rc = mech_ptrace_run(!strcmp(m, "seccomp-trace"), nrs, 1, w, calls, &r);
    consumer_stop();
    r.records = stub_records();
  } else if (!strcmp(m, "kernel")) {
    rc = mech_kernel_start(argc > 4 ? argv[4] : "build/tp.bpf.o", w);
    if (!rc) {
      run_loop(w, calls, &r);
      r.records = mech_kernel_stop();
    }
  } else {
    consumer_start(); /* before the mechanism: its clone must not be dispatched */
    if (!strcmp(m, "trap")) rc = mech_trap(nrs, 1);
    else if (!strcmp(m, "sud")) rc = mech_sud(nrs, 1, 1);
    else if (!strcmp(m, "sud-allow")) rc = mech_sud(nrs, 1, 0);
    else if (!strcmp(m, "rewrite")) rc = mech_rewrite(w, nrs, 1);
    else if (strcmp(m, "none")) { fprintf(stderr, "sysbench: unknown mechanism '%s'\n", m); return 2; }
    if (!rc) run_loop(w, calls, &r);
    if (!strcmp(m, "sud") || !strcmp(m, "sud-allow")) mech_sud_off();
    consumer_stop();
    r.records = stub_records();
  }
  if (rc) {
    fprintf(stderr, "sysbench: %s could not be set up: %s\n", m, strerror(errno));
    return 3;
  }
  printf("mechanism=%s workload=%s calls=%llu thread_cpu_ns=%llu wall_ns=%llu tracer_cpu_ns=%llu records=%llu\n", m,
         workload_name(w), (unsigned long long)r.calls, (unsigned long long)r.thread_cpu_ns, (unsigned long long)r.wall_ns,
         (unsigned long long)r.tracer_cpu_ns, (unsigned long long)r.records);
  return 0;
}
