/* ops.h: the instruction semantics the interpreter (ebpf_vm.c) and the JIT's slow path (jit.c) share:
 * division and modulo by zero, byte swaps, unaligned loads and stores, atomics, the region lookup. */
#ifndef EBPF_VM_OPS_H
#define EBPF_VM_OPS_H

#include <string.h>

#include "ebpf_vm.h"

/* the region holding [a, a + w), or NULL */
static inline const ebpf_vm_region *find(const ebpf_vm_run *run, uint64_t a, uint32_t w) {
  const ebpf_vm_region *r = run->regions;
  uint32_t lo = 0, hi = run->nregions;
  while (lo < hi) { /* first region with addr > a */
    uint32_t mid = (lo + hi) / 2;
    if (r[mid].addr <= a) lo = mid + 1;
    else hi = mid;
  }
  if (lo == 0) return NULL;
  const ebpf_vm_region *x = &r[lo - 1];
  uint64_t d = a - x->addr;
  return d < x->size && x->size - d >= w ? x : NULL;
}

static inline uint16_t bswap16(uint16_t x) { return (uint16_t)((x << 8) | (x >> 8)); }
static inline uint32_t bswap32(uint32_t x) { return __builtin_bswap32(x); }
static inline uint64_t bswap64(uint64_t x) { return __builtin_bswap64(x); }

static inline uint64_t div64(uint64_t a, uint64_t b, int sgn) {
  if (b == 0) return 0;
  if (!sgn) return a / b;
  if (b == UINT64_MAX) return (uint64_t)0 - a;
  return (uint64_t)((int64_t)a / (int64_t)b);
}
static inline uint64_t mod64(uint64_t a, uint64_t b, int sgn) {
  if (b == 0) return a;
  if (!sgn) return a % b;
  if (b == UINT64_MAX) return 0;
  return (uint64_t)((int64_t)a % (int64_t)b);
}
static inline uint32_t div32(uint32_t a, uint32_t b, int sgn) {
  if (b == 0) return 0;
  if (!sgn) return a / b;
  if (b == UINT32_MAX) return (uint32_t)0 - a;
  return (uint32_t)((int32_t)a / (int32_t)b);
}
static inline uint32_t mod32(uint32_t a, uint32_t b, int sgn) {
  if (b == 0) return a;
  if (!sgn) return a % b;
  if (b == UINT32_MAX) return 0;
  return (uint32_t)((int32_t)a % (int32_t)b);
}

static inline uint32_t ld32(const uint8_t *p) { uint32_t v; memcpy(&v, p, 4); return v; }
static inline uint64_t ld64(const uint8_t *p) { uint64_t v; memcpy(&v, p, 8); return v; }
static inline uint16_t ld16(const uint8_t *p) { uint16_t v; memcpy(&v, p, 2); return v; }
static inline void st32(uint8_t *p, uint32_t v) { memcpy(p, &v, 4); }
static inline void st64(uint8_t *p, uint64_t v) { memcpy(p, &v, 8); }
static inline void st16(uint8_t *p, uint16_t v) { memcpy(p, &v, 2); }

/* atomic read-modify-write (real atomics when aligned: maps are shared with other threads); one body
 * for both widths */
#define DEFINE_RMW(NAME, T, LD, ST)                                                                           \
  static inline T NAME(uint8_t *p, int32_t op, T v, T expect) {                                                    \
    if (((uintptr_t)p & (sizeof(T) - 1)) == 0) {                                                              \
      T *q = (T *)(void *)p;                                                                                  \
      switch (op) {                                                                                           \
        case 0xf1: __atomic_compare_exchange_n(q, &expect, v, 0, __ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST); return expect; \
        case 0xe1: return __atomic_exchange_n(q, v, __ATOMIC_SEQ_CST);                                        \
        case 0x00: case 0x01: return __atomic_fetch_add(q, v, __ATOMIC_SEQ_CST);                              \
        case 0x40: case 0x41: return __atomic_fetch_or(q, v, __ATOMIC_SEQ_CST);                               \
        case 0x50: case 0x51: return __atomic_fetch_and(q, v, __ATOMIC_SEQ_CST);                              \
        default: return __atomic_fetch_xor(q, v, __ATOMIC_SEQ_CST);                                           \
      }                                                                                                       \
    }                                                                                                         \
    T old = LD(p), nv;                                                                                        \
    switch (op) {                                                                                             \
      case 0xf1: if (old == expect) ST(p, v); return old;                                                     \
      case 0xe1: nv = v; break;                                                                               \
      case 0x00: case 0x01: nv = old + v; break;                                                              \
      case 0x40: case 0x41: nv = old | v; break;                                                              \
      case 0x50: case 0x51: nv = old & v; break;                                                              \
      default: nv = old ^ v;                                                                                  \
    }                                                                                                         \
    ST(p, nv);                                                                                                \
    return old;                                                                                               \
  }
DEFINE_RMW(rmw32, uint32_t, ld32, st32)
DEFINE_RMW(rmw64, uint64_t, ld64, st64)
#undef DEFINE_RMW

#endif
