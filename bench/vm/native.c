// Native baseline: the same kernels (kernels.c) built by gcc -O2, timed with the same inputs the VM
// gets. Prints one line per kernel: name median_ns min_ns result.
//   native <kernel> <input file> <runs>
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "kernels.c"

static double now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec * 1e9 + ts.tv_nsec;
}

static int cmp(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return x < y ? -1 : x > y;
}

typedef u64 (*kernel_fn)(u8 *, u64);

int main(int argc, char **argv) {
  if (argc != 4) {
    fprintf(stderr, "usage: native <kernel> <input> <runs>\n");
    return 2;
  }
  const char *name = argv[1];
  kernel_fn fn = !strcmp(name, "primes") ? primes : !strcmp(name, "memcpy") ? copy : !strcmp(name, "log2") ? log2_sum
               : !strcmp(name, "strcmp") ? str_cmp : !strcmp(name, "switch") ? dispatch : NULL;
  if (!fn) {
    fprintf(stderr, "unknown kernel %s\n", name);
    return 2;
  }
  FILE *f = fopen(argv[2], "rb");
  if (!f) {
    perror(argv[2]);
    return 1;
  }
  fseek(f, 0, SEEK_END);
  long size = ftell(f);
  fseek(f, 0, SEEK_SET);
  u8 *mem = aligned_alloc(64, (size + 63) / 64 * 64);
  if (fread(mem, 1, size, f) != (size_t)size) return 1;
  fclose(f);
  u8 *pristine = malloc(size);
  memcpy(pristine, mem, size);
  int runs = atoi(argv[3]);
  double *t = malloc(sizeof(double) * runs);
  u64 result = 0;
  for (int i = 0; i < runs; i++) {
    memcpy(mem, pristine, size);
    double t0 = now_ns();
    result = fn(mem, (u64)size);
    t[i] = now_ns() - t0;
    __asm__ volatile("" ::: "memory");
  }
  qsort(t, runs, sizeof(double), cmp);
  printf("%s %.0f %.0f %llu\n", name, t[runs / 2], t[0], result);
  return 0;
}
