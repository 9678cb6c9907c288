/* Program-side semantics of the shared-memory maps (native/agent/maps/), single-threaded, as
 * test/userspace-maps.test.ts checks the TypeScript maps: LRU eviction order, per-CPU program updates,
 * in-place values, ring buffer reserve/submit/discard order, pending positions, wrap-around, query-free
 * accounting. Prints "ok - ..." / "not ok - ..." lines; exit 0 when every check holds. */
#define _GNU_SOURCE
#include <stdio.h>
#include <string.h>

#include "wbpf_maps.h"
#include "check.h"


static struct wbpf_map mk(uint32_t type, uint32_t k, uint32_t v, uint32_t n) {
  struct wbpf_map m;
  struct wbpf_map_spec s = {.type = type, .key_size = k, .value_size = v, .max_entries = n, .ncpus = 2, .name = "unit"};
  if (wbpf_map_create(&s, &m) != 0) {
    printf("not ok - create type %u\n", type);
    failures++;
  }
  return m;
}
static int sysupd(struct wbpf_map *m, uint32_t k, uint64_t v, uint64_t f) { return wbpf_map_sys_update(m, &k, &v, f); }
static int present(struct wbpf_map *m, uint32_t k) {
  uint64_t v[2];
  return wbpf_map_sys_lookup(m, &k, v, 0) == 0;
}
/* the keys present among 1..9, as a digit string */
static void keys(struct wbpf_map *m, char *out) {
  for (uint32_t k = 1; k <= 9; k++)
    if (present(m, k)) *out++ = (char)('0' + k);
  *out = 0;
}

static void lru(void) {
  struct wbpf_map m = mk(9, 4, 8, 3);
  char s[16];
  for (uint32_t k = 1; k <= 3; k++) sysupd(&m, k, k, 0);
  CHECK(sysupd(&m, 4, 4, 0) == 0, "full LRU: no E2BIG");
  keys(&m, s);
  CHECK(strcmp(s, "234") == 0, "the least recently used (1) was evicted (%s)", s);
  uint32_t k = 2;
  CHECK(wbpf_map_lookup_elem(&m, &k) != NULL, "program lookup of 2 (refreshes it)");
  CHECK(present(&m, 3), "syscall lookup of 3 (does not refresh it)");
  sysupd(&m, 5, 5, 0);
  keys(&m, s);
  CHECK(strcmp(s, "245") == 0, "3 evicted next: syscall lookups do not refresh (%s)", s);
  CHECK(sysupd(&m, 4, 44, 2) == 0, "update of 4 refreshes it");
  uint64_t six = 6;
  k = 6;
  CHECK(wbpf_map_update_elem(&m, &k, &six, 0) == 0, "program update of a new key");
  keys(&m, s);
  CHECK(strcmp(s, "456") == 0, "program update evicts 2, the least recent (%s)", s);
  CHECK(sysupd(&m, 4, 1, 1) == -17, "flags still apply: NOEXIST EEXIST");
  CHECK(sysupd(&m, 9, 1, 2) == -2, "EXIST on a missing key: ENOENT");
  wbpf_map_close(&m, 1);
}

static void percpu(void) {
  for (uint32_t type = 5; type <= 10; type += 5) {
    struct wbpf_map m = mk(type, 4, 4, 4);
    uint32_t both[4] = {100, 0, 200, 0}, k = 1;
    CHECK(wbpf_map_op_value_size(&m) == 16, "type %u: op value size round8(4) * 2 CPUs", type);
    wbpf_map_sys_update(&m, &k, both, 0);
    wbpf_map_set_thread_cpu(1);
    uint32_t *p = wbpf_map_lookup_elem(&m, &k);
    CHECK(p && *p == 200, "type %u: a program sees its own CPU's value", type);
    uint32_t seven = 7;
    k = 2;
    wbpf_map_update_elem(&m, &k, &seven, 0);
    uint32_t out[4];
    wbpf_map_sys_lookup(&m, &k, out, 0);
    CHECK(out[0] == 0 && out[2] == 7, "type %u: a new element's other CPUs zeroed", type);
    wbpf_map_set_thread_cpu(0);
    uint32_t nine = 9;
    wbpf_map_update_elem(&m, &k, &nine, 0);
    wbpf_map_sys_lookup(&m, &k, out, 0);
    CHECK(out[0] == 9 && out[2] == 7, "type %u: only this CPU's value changes", type);
    wbpf_map_close(&m, 1);
  }
  struct wbpf_map a = mk(6, 4, 8, 2);
  uint32_t k = 1;
  uint64_t five = 5, out[2];
  wbpf_map_set_thread_cpu(1);
  wbpf_map_update_elem(&a, &k, &five, 0);
  wbpf_map_set_thread_cpu(0);
  wbpf_map_sys_lookup(&a, &k, out, 0);
  CHECK(out[0] == 0 && out[1] == 5, "per-CPU array: program update on CPU 1");
  wbpf_map_close(&a, 1);
}

static void inplace(void) {
  struct wbpf_map m = mk(1, 4, 8, 2);
  uint32_t k = 1;
  sysupd(&m, 1, 1, 0);
  uint64_t *p = wbpf_map_lookup_elem(&m, &k);
  *p = 77;
  uint64_t v = 0;
  wbpf_map_sys_lookup(&m, &k, &v, 0);
  CHECK(v == 77, "an in-place write through the lookup pointer is seen by the syscall side");
  wbpf_map_sys_delete(&m, &k, 0);
  sysupd(&m, 2, 2, 0);
  k = 2;
  CHECK(wbpf_map_lookup_elem(&m, &k) == (void *)p, "a deleted element's slot stays mapped and is reused");
  CHECK(sysupd(&m, 3, 3, 0) == 0 && sysupd(&m, 4, 4, 0) == -7, "a new key in a full hash: E2BIG");
  CHECK(wbpf_map_delete_elem(&m, &k) == 0 && wbpf_map_delete_elem(&m, &k) == -2, "program delete, then ENOENT");
  wbpf_map_close(&m, 1);
}

static void ring(void) {
  struct wbpf_map rb = mk(27, 0, 0, 4096);
  uint8_t out[8192];
  CHECK(wbpf_ringbuf_reserve(&rb, 8, 1) == NULL, "reserve flags must be 0");
  CHECK(wbpf_ringbuf_reserve(&rb, 5000, 0) == NULL, "larger than the ring: NULL");
  uint8_t *a = wbpf_ringbuf_reserve(&rb, 10, 0), *b = wbpf_ringbuf_reserve(&rb, 3, 0);
  CHECK(a && b && b - a == 24, "records are round8(size + 8) apart");
  memcpy(b, "\1\2\3", 3);
  wbpf_ringbuf_submit(&rb, b, 0);
  CHECK(wbpf_ring_drain(&rb, out, sizeof out) == 0, "the first record is still reserved: nothing to consume");
  wbpf_ringbuf_discard(&rb, a, 0);
  CHECK(wbpf_ring_pending_size(&rb) == 3, "after the discard, the next record is the 3-byte one");
  uint8_t want[16] = {3, 0, 0, 0, 0, 0, 0, 0, 1, 2, 3, 0, 0, 0, 0, 0};
  CHECK(wbpf_ring_drain(&rb, out, sizeof out) == 1 && memcmp(out, want, 16) == 0, "discarded records are skipped; [u32 size][u32 0][data padded to 8]");
  /* a record left reserved holds the producer back (Linux 6.8+ pending_pos) */
  uint8_t *held = wbpf_ringbuf_reserve(&rb, 8, 0);
  int n = 0;
  uint64_t v = 0;
  while (wbpf_ringbuf_output(&rb, &v, 8, 0) == 0) n++;
  CHECK(n == 254, "with one record reserved, 254 more fit (%d)", n);
  CHECK(wbpf_ring_drain(&rb, out, sizeof out) == 0, "nothing deliverable past the reserved record");
  wbpf_ringbuf_submit(&rb, held, 0);
  CHECK(wbpf_ring_drain(&rb, out, sizeof out) == 255, "all delivered once it is submitted");
  for (int k = 0; k < 3; k++) {
    uint8_t *p = wbpf_ringbuf_reserve(&rb, 1000, 0);
    memset(p, k + 1, 1000);
    wbpf_ringbuf_submit(&rb, p, 0);
    int whole = wbpf_ring_drain(&rb, out, sizeof out) == 1;
    for (int i = 0; i < 1000; i++) whole &= out[8 + i] == k + 1;
    CHECK(whole, "record %d crossing the end of the ring stays contiguous", k);
  }
  CHECK(wbpf_map_drops(&rb) == 1, "one drop: the output that found the ring full");
  wbpf_map_close(&rb, 1);
}

/* what the agent's regions and helpers need: flags, global data's value, the current CPU, ringbuf_query */
static void agent_api(void) {
  struct wbpf_map a = mk(2, 4, 12, 3), pa = mk(6, 4, 8, 1), h = mk(1, 4, 8, 2), rb = mk(27, 0, 0, 4096);
  uint32_t k = 0;
  CHECK(wbpf_map_direct_value(&a) == wbpf_map_lookup_elem(&a, &k), "an array's direct value is element 0's value");
  CHECK(wbpf_map_direct_value(&pa) == NULL && wbpf_map_direct_value(&h) == NULL && wbpf_map_direct_value(&rb) == NULL,
        "no direct value for a per-CPU array, a hash, a ring buffer");
  struct wbpf_map ro;
  struct wbpf_map_spec s = {.type = 2, .key_size = 4, .value_size = 4, .max_entries = 1, .map_flags = 0x80, .ncpus = 2, .name = "ro"};
  CHECK(wbpf_map_create(&s, &ro) == 0 && wbpf_map_flags(&ro) == 0x80 && wbpf_map_flags(&a) == 0, "map_flags as created");
  wbpf_map_set_thread_cpu(3);
  CHECK(wbpf_map_current_cpu(0) == 3 && wbpf_map_current_cpu(2) == 1, "the current CPU: the thread's override, modulo ncpus");
  k = 0;
  wbpf_map_set_thread_cpu(0);
  uint8_t *c0 = wbpf_map_lookup_elem(&pa, &k);
  wbpf_map_set_thread_cpu(1);
  uint8_t *c1 = wbpf_map_lookup_elem(&pa, &k);
  CHECK(c0 && c1 - c0 == 8, "per-CPU lookups follow that CPU (values round8 apart)");
  wbpf_map_set_thread_cpu(-1);
  CHECK(wbpf_ringbuf_query(&rb, 1) == 4096 && wbpf_ringbuf_query(&rb, 0) == 0 && wbpf_ringbuf_query(&rb, 3) == 0,
        "ringbuf_query of an empty ring: size 4096, no data, prod 0");
  uint8_t *r1 = wbpf_ringbuf_reserve(&rb, 10, 0);
  CHECK(wbpf_ringbuf_query(&rb, 0) == 24 && wbpf_ringbuf_query(&rb, 3) == 24 && wbpf_ringbuf_query(&rb, 2) == 0,
        "after a reserve of 10: 24 bytes available, prod 24, cons 0");
  wbpf_ringbuf_submit(&rb, r1, 0);
  uint8_t out[64];
  wbpf_ring_drain(&rb, out, sizeof out);
  CHECK(wbpf_ringbuf_query(&rb, 0) == 0 && wbpf_ringbuf_query(&rb, 2) == 24 && wbpf_ringbuf_query(&rb, 9) == 0,
        "consumed: cons 24, nothing available; unknown flags 0");
  CHECK(wbpf_ringbuf_query(&a, 1) == 0, "ringbuf_query of an array: 0");
  wbpf_map_close(&a, 1);
  wbpf_map_close(&pa, 1);
  wbpf_map_close(&h, 1);
  wbpf_map_close(&rb, 1);
  wbpf_map_close(&ro, 1);
}

int main(void) {
  setvbuf(stdout, NULL, _IOLBF, 0);
  lru();
  percpu();
  inplace();
  ring();
  agent_api();
  printf("maps_unit: %d failed\n", failures);
  return failures ? 1 : 0;
}
