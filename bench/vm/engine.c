/* engine.c: the agent's eBPF engine (native/agent/vm/) timed alone, as the agent calls it: a program
 * (raw instructions, file argv[1]) on a ctx region of argv[2] bytes (host pointers as VM addresses),
 * argv[3] runs; prints the median ns per run of 15 batches and r0. Built by bench/vm/engines.ts. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "../../native/agent/vm/ebpf_vm.h"

static int cmp(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return x < y ? -1 : x > y;
}

int main(int argc, char **argv) {
  if (argc < 4) return 2;
  FILE *f = fopen(argv[1], "rb");
  if (!f) return 2;
  static uint8_t code[1 << 20];
  size_t len = fread(code, 1, sizeof code, f);
  fclose(f);
  size_t size = strtoul(argv[2], NULL, 10);
  long runs = strtol(argv[3], NULL, 10);
  uint8_t *ctx = calloc(size ? size : 1, 1);
  for (size_t i = 0; i < size; i++) ctx[i] = (uint8_t)(i * 7 + 1);
  static uint8_t stack[EBPF_VM_STACK_SIZE];
  ebpf_vm_prog *p;
  ebpf_vm_error err;
  if (ebpf_vm_load(code, len, NULL, &p, &err) != EBPF_VM_OK) {
    fprintf(stderr, "%s at %d\n", err.message, err.pc);
    return 1;
  }
  ebpf_vm_region r = {(uintptr_t)ctx, size, ctx, EBPF_VM_REGION_WRITABLE};
  ebpf_vm_run run;
  memset(&run, 0, sizeof run);
  run.regions = &r;
  run.nregions = 1;
  run.stack = stack;
  run.stack_addr = (uintptr_t)stack;
  uint64_t args[5] = {(uintptr_t)ctx, size, 0, 0, 0};
  double ns[15];
  uint64_t r0 = 0;
  for (int b = 0; b < 15; b++) {
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    for (long i = 0; i < runs; i++) {
      run.budget = 100000000;
      if (ebpf_vm_exec(p, &run, args) != EBPF_VM_DONE) return 1;
      r0 += run.r0;
    }
    clock_gettime(CLOCK_MONOTONIC, &t1);
    ns[b] = ((t1.tv_sec - t0.tv_sec) * 1e9 + (t1.tv_nsec - t0.tv_nsec)) / runs;
  }
  qsort(ns, 15, sizeof ns[0], cmp);
  printf("%.1f %llx\n", ns[7], (unsigned long long)run.r0);
  ebpf_vm_free(p);
  free(ctx);
  return 0;
}
