/* jit_diff_test.c: the engine's JIT against its interpreter: every program is loaded twice (WBPF_JIT=0 and
 * on) and run on identical memory; results, faults (kind, slot, address, width, direction), budget left and
 * every byte of stack and regions must agree. Directed hostile programs (wild pointers, huge stack offsets,
 * endless loops, division by zero, read-only stores, failing helpers) and seeded random ones; optionally a
 * file of programs (argv[1]: records of u32 length + bytes, e.g. the conformance fixtures). Also: the JIT
 * compiled what it should, WBPF_JIT=0 turns it off, and freeing programs unmaps their code. */
#include <errno.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "../vm/ebpf_vm.h"
#include "../vm/jit.h"
#include "check.h"

typedef struct { uint8_t op, regs; int16_t off; int32_t imm; } raw;
#define I_(op, d, s, off, imm) ((raw){(uint8_t)(op), (uint8_t)((d) | ((s) << 4)), (int16_t)(off), (int32_t)(imm)})

static uint8_t ctx0[64], map0[64], stack0[EBPF_VM_STACK_SIZE];

static int plain; /* ebpf_vm_env.plain_helpers for the next loads: these helpers read no pc, id or budget */
static int h_pure(ebpf_vm_call *c) { c->r0 = c->args[0] + c->args[1] * 3 + c->args[4]; return 0; }
static int h_value(ebpf_vm_call *c) { /* the map value's address (the second region) */
  c->r0 = c->run->regions[1].addr;
  return 0;
}
static int h_abort(ebpf_vm_call *c) { if ((c->args[2] & 3) == 0) return 1; c->r0 = 5; return 0; }
/* helper 4 and its leaf (ebpf_vm_env.leaf: the JIT calls the leaf directly, the interpreter the helper) */
static uint64_t leaf_calls;
static uint64_t l_count(void) { return 0x5a5a000000000000ull + ++leaf_calls; }
static int h_count(ebpf_vm_call *c) { c->r0 = l_count(); return 0; }
static ebpf_vm_helper_fn helper(void *user, uint32_t id) {
  (void)user;
  return id == 1 ? h_pure : id == 2 ? h_value : id == 3 ? h_abort : id == 4 ? h_count : NULL;
}
static ebpf_vm_leaf_fn leaf(void *user, uint32_t id) {
  (void)user;
  return id == 4 ? l_count : NULL;
}

typedef struct outcome {
  int load, status;
  uint64_t r0;
  int64_t budget;
  uint32_t pc, width;
  int write, self;
  uint64_t addr, stack_lo, value;
  uint8_t ctx[64], map[64], stack[EBPF_VM_STACK_SIZE];
} outcome;

/* both engines run on the same buffers (so that addresses agree), copied out after each run */
static struct { uint8_t ctx[64], map[64], stack[EBPF_VM_STACK_SIZE]; } live;

static int run_one(const raw *prog, size_t n, int jit, outcome *o, int *compiled) {
  memset(o, 0, sizeof *o);
  if (jit) unsetenv("WBPF_JIT");
  else setenv("WBPF_JIT", "0", 1);
  ebpf_vm_jit_stats before, after;
  ebpf_vm_jit_get_stats(&before);
  ebpf_vm_env env = {.helper = helper, .leaf = leaf, .plain_helpers = plain};
  ebpf_vm_prog *p;
  ebpf_vm_error err;
  leaf_calls = 0; /* both engines see the same values */
  o->load = ebpf_vm_load(prog, n * 8, &env, &p, &err);
  if (o->load != EBPF_VM_OK) return 0;
  ebpf_vm_jit_get_stats(&after);
  *compiled = after.compiled > before.compiled;
  memcpy(live.ctx, ctx0, 64);
  memcpy(live.map, map0, 64);
  memcpy(live.stack, stack0, sizeof stack0);
  ebpf_vm_region regions[2] = {{(uintptr_t)live.ctx, 64, live.ctx, 0}, {(uintptr_t)live.map, 64, live.map, EBPF_VM_REGION_WRITABLE}};
  if (regions[0].addr > regions[1].addr) { /* sorted by address */
    ebpf_vm_region t = regions[0];
    regions[0] = regions[1];
    regions[1] = t;
  }
  ebpf_vm_run run = {.regions = regions, .nregions = 2, .stack = live.stack, .stack_addr = (uintptr_t)live.stack,
                     .packet_addr = (uintptr_t)live.ctx, .packet_size = 60, .budget = 4000};
  uint64_t args[5] = {(uintptr_t)live.ctx, (uintptr_t)live.map, 0x1234567890abcdefull, (uint64_t)-3, 7};
  o->status = ebpf_vm_exec(p, &run, args);
  o->r0 = run.r0;
  o->budget = run.budget;
  o->pc = run.fault.pc;
  o->width = run.fault.width;
  o->write = run.fault.write;
  o->self = run.fault.prog == p;
  o->value = run.fault.value;
  o->addr = run.fault.addr;
  o->stack_lo = run.fault.stack_lo;
  memcpy(o->ctx, live.ctx, 64);
  memcpy(o->map, live.map, 64);
  memcpy(o->stack, live.stack, sizeof live.stack);
  ebpf_vm_free(p);
  return 1;
}

static int compared, faulted; /* runs compared on machine code; of them, runs that ended in a fault */

static int diff(const char *name, const raw *prog, size_t n, int must_compile) {
  static outcome a, b;
  int ca = 0, cb = 0;
  run_one(prog, n, 0, &a, &ca);
  run_one(prog, n, 1, &b, &cb);
  if (a.load != b.load) { printf("# %s: load %d vs %d\n", name, a.load, b.load); return 0; }
  if (a.load != EBPF_VM_OK) return 1;
  if (ca) { printf("# %s: compiled with WBPF_JIT=0\n", name); return 0; }
  if (must_compile && !cb) { printf("# %s: not compiled\n", name); return 0; }
  const int same = a.status == b.status && a.r0 == b.r0 && a.budget == b.budget && a.pc == b.pc && a.width == b.width &&
                   a.write == b.write && a.self == b.self && a.addr == b.addr && a.stack_lo == b.stack_lo && a.value == b.value &&
                   !memcmp(a.ctx, b.ctx, 64) && !memcmp(a.map, b.map, 64) && !memcmp(a.stack, b.stack, sizeof a.stack);
  compared += cb;
  faulted += cb && a.status >= EBPF_VM_F_MEMORY;
  if (!same)
    printf("# %s: interp status %d r0 %#llx budget %lld pc %u w %u wr %d addr %#llx | jit status %d r0 %#llx budget %lld pc %u w %u wr %d addr %#llx%s\n",
           name, a.status, (unsigned long long)a.r0, (long long)a.budget, a.pc, a.width, a.write, (unsigned long long)a.addr, b.status,
           (unsigned long long)b.r0, (long long)b.budget, b.pc, b.width, b.write, (unsigned long long)b.addr,
           memcmp(a.stack, b.stack, sizeof a.stack) || memcmp(a.map, b.map, 64) ? " (memory differs)" : "");
  return same;
}

#define DIFF(name, ...)                                             \
  do {                                                              \
    const raw p_[] = {__VA_ARGS__};                                 \
    CHECK(diff(name, p_, sizeof p_ / sizeof p_[0], 1), "jit = interpreter: %s", name); \
  } while (0)

static uint64_t rng = 0x9e3779b97f4a7c15ull;
static uint32_t rnd(uint32_t n) {
  rng ^= rng << 13;
  rng ^= rng >> 7;
  rng ^= rng << 17;
  return (uint32_t)(rng % n);
}

/* a random valid program of n slots: ALU of every kind, jumps both ways (loops end on the budget), loads
 * and stores through r10, ctx (r1), the map value (r2) and any register, atomics, helpers, packet loads */
static size_t gen(raw *p, size_t n) {
  static const uint8_t alu[] = {0x00, 0x10, 0x20, 0x30, 0x40, 0x50, 0x60, 0x70, 0x80, 0x90, 0xa0, 0xb0, 0xc0};
  static const int32_t atom[] = {0x00, 0x01, 0x40, 0x41, 0x50, 0x51, 0xa0, 0xa1, 0xe1, 0xf1};
  static const uint8_t jc[] = {0x10, 0x20, 0x30, 0x40, 0x50, 0x60, 0x70, 0xa0, 0xb0, 0xc0, 0xd0};
  static const uint8_t sz[] = {0x00, 0x08, 0x10, 0x18};
  for (size_t pc = 0; pc + 1 < n; pc++) {
    const int d = (int)(rnd(10) == 0 ? rnd(10) : 3 + rnd(7)); /* mostly r0, r3..r9: r1, r2 stay pointers */
    const int dd = d == 3 ? 0 : d;
    const int s = (int)rnd(11);
    const int32_t k = rnd(4) == 0 ? (int32_t)(rnd(0xffffffffu)) : (int32_t)rnd(130) - 65;
    const uint32_t kind = rnd(100);
    if (kind < 35) {
      const uint8_t code = alu[rnd(sizeof alu)];
      const uint8_t cls = rnd(2) ? 0x07 : 0x04;
      const int x = code != 0x80 && rnd(2);
      int16_t off = 0;
      if ((code == 0x30 || code == 0x90) && rnd(2)) off = 1;
      if (code == 0xb0 && x && rnd(3) == 0) off = cls == 0x07 ? (int16_t)(8 << rnd(3)) : (int16_t)(8 << rnd(2));
      p[pc] = I_(code | cls | (x ? 8 : 0), dd, s, off, rnd(8) == 0 ? 0 : k);
    } else if (kind < 38) {
      const uint8_t ops[] = {0xd7, 0xd4, 0xdc};
      p[pc] = I_(ops[rnd(3)], dd, 0, 0, 16 << rnd(3));
    } else if (kind < 52) { /* forward or backward conditional jump */
      const int32_t t = (int32_t)rnd((uint32_t)n - 1);
      const uint8_t cls = rnd(2) ? 0x05 : 0x06;
      p[pc] = I_(jc[rnd(sizeof jc)] | cls | (rnd(2) ? 8 : 0), d, s, t - (int32_t)pc - 1, k);
    } else if (kind < 54) {
      const int32_t t = (int32_t)rnd((uint32_t)n - 1);
      p[pc] = I_(0x05, 0, 0, t - (int32_t)pc - 1, 0);
    } else if (kind < 80) { /* a load or a store */
      const int bases[] = {10, 10, 10, 1, 2, 2, (int)rnd(11)};
      const int base = bases[rnd(7)];
      int16_t off = base == 10 ? (int16_t)(rnd(20) == 0 ? (int)rnd(2000) - 1000 : -(int)rnd(522) + 8) : (int16_t)((int)rnd(76) - 6);
      const uint8_t w = sz[rnd(4)];
      const uint32_t m = rnd(10);
      if (m < 4) p[pc] = I_(0x61 | w, dd, base, off, 0);
      else if (m < 5 && w != 0x18) p[pc] = I_(0x81 | w, dd, base, off, 0);
      else if (m < 7) p[pc] = I_(0x62 | w, base, 0, off, k);
      else if (m < 9) p[pc] = I_(0x63 | w, base, s, off, 0);
      else p[pc] = I_(rnd(2) ? 0xc3 : 0xdb, base, (int)rnd(10), off & ~7, atom[rnd(10)]);
    } else if (kind < 86) {
      p[pc] = I_(0x85, 0, 0, 0, 1 + rnd(3));
    } else if (kind < 89) {
      const uint8_t ld[] = {0x20, 0x28, 0x30, 0x40, 0x48, 0x50};
      p[pc] = I_(ld[rnd(6)], 0, s, 0, (int32_t)rnd(72) - 4);
    } else if (kind < 91) {
      p[pc] = I_(0x95, 0, 0, 0, 0);
    } else {
      p[pc] = I_(0xb7, dd, 0, 0, k);
    }
  }
  p[n - 1] = I_(0x95, 0, 0, 0, 0);
  return n;
}

static int count_maps(void) {
  FILE *f = fopen("/proc/self/maps", "r");
  if (f == NULL) return -1;
  int n = 0, c;
  while ((c = fgetc(f)) != EOF) n += c == '\n';
  fclose(f);
  return n;
}

/* in a child that may not make memory executable (seccomp: mprotect with PROT_EXEC fails with EACCES, as
 * under a W^X policy): the program loads, is counted as without executable memory, and runs on the
 * interpreter with the same result. Exit status: 0 when all of that holds. */
static int no_exec_child(void) {
  struct sock_filter f[] = {
      BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)),
      BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, SYS_mprotect, 0, 3),
      BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, args[2])),
      BPF_JUMP(BPF_JMP | BPF_JSET | BPF_K, PROT_EXEC, 0, 1),
      BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | EACCES),
      BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
  };
  struct sock_fprog fp = {sizeof f / sizeof f[0], f};
  if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0 || prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &fp) != 0) return 10;
  const raw p[] = {I_(0xb7, 0, 0, 0, 41), I_(0x07, 0, 0, 0, 1), I_(0x95, 0, 0, 0, 0)};
  ebpf_vm_env env = {.helper = helper};
  ebpf_vm_prog *prog;
  ebpf_vm_jit_stats s0, s1;
  unsetenv("WBPF_JIT");
  ebpf_vm_jit_get_stats(&s0);
  if (ebpf_vm_load(p, sizeof p, &env, &prog, NULL) != EBPF_VM_OK) return 11;
  ebpf_vm_jit_get_stats(&s1);
  if (s1.nomem != s0.nomem + 1 || s1.compiled != s0.compiled) return 12;
  if (ebpf_vm_engine_note(prog) == NULL || strstr(ebpf_vm_engine_note(prog), "mprotect") == NULL) return 14;
  uint8_t stack[EBPF_VM_STACK_SIZE];
  ebpf_vm_run run = {.stack = stack, .stack_addr = (uintptr_t)stack, .budget = 100};
  if (ebpf_vm_exec(prog, &run, NULL) != EBPF_VM_DONE || run.r0 != 42) return 13;
  ebpf_vm_free(prog);
  return 0;
}

int main(int argc, char **argv) {
  for (size_t k = 0; k < sizeof ctx0; k++) ctx0[k] = (uint8_t)(k * 7 + 1);
  for (size_t k = 0; k < sizeof map0; k++) map0[k] = (uint8_t)(k * 13 + 5);
  for (size_t k = 0; k < sizeof stack0; k++) stack0[k] = (uint8_t)(k * 31 + 3);

  /* directed: what a hostile program tries */
  DIFF("alu and exit", I_(0xb7, 0, 0, 0, -5), I_(0x07, 0, 0, 0, 3), I_(0x27, 0, 0, 0, 7), I_(0x95, 0, 0, 0, 0));
  DIFF("wild pointer load", I_(0x18, 3, 0, 0, 0x1000), I_(0, 0, 0, 0, 0), I_(0x79, 0, 3, 8, 0), I_(0x95, 0, 0, 0, 0));
  DIFF("wild pointer store", I_(0xb7, 3, 0, 0, 0x4000), I_(0x7b, 3, 0, 0, 0), I_(0x95, 0, 0, 0, 0));
  DIFF("huge stack offset", I_(0x7a, 10, 0, 32000, 1), I_(0x95, 0, 0, 0, 0));
  DIFF("below the frame", I_(0x7a, 10, 0, -520, 1), I_(0x95, 0, 0, 0, 0));
  DIFF("the frame's top", I_(0x61, 0, 10, 0, 0), I_(0x95, 0, 0, 0, 0));
  DIFF("straddling the frame's top", I_(0x79, 0, 10, -4, 0), I_(0x95, 0, 0, 0, 0));
  DIFF("stack through a copy of r10", I_(0xbf, 3, 10, 0, 0), I_(0x7a, 3, 0, -8, 0x55), I_(0x79, 0, 3, -8, 0), I_(0x95, 0, 0, 0, 0));
  DIFF("endless loop", I_(0x05, 0, 0, -1, 0), I_(0x95, 0, 0, 0, 0));
  DIFF("counted loop", I_(0xb7, 0, 0, 0, 0), I_(0x07, 0, 0, 0, 1), I_(0xa5, 0, 0, -2, 1000), I_(0x95, 0, 0, 0, 0));
  DIFF("store to read-only ctx", I_(0x62, 1, 0, 0, 1), I_(0x95, 0, 0, 0, 0));
  DIFF("read ctx, write the map", I_(0x79, 3, 1, 8, 0), I_(0x7b, 2, 3, 56, 0), I_(0x61, 0, 2, 60, 0), I_(0x95, 0, 0, 0, 0));
  DIFF("straddling the map's end", I_(0x79, 0, 2, 60, 0), I_(0x95, 0, 0, 0, 0));
  DIFF("store straddling the map's end", I_(0x63, 2, 1, 62, 0), I_(0x95, 0, 0, 0, 0));
  DIFF("division by zero", I_(0xb7, 0, 0, 0, 77), I_(0xb7, 3, 0, 0, 0), I_(0x3f, 0, 3, 0, 0), I_(0x9f, 1, 3, 0, 0), I_(0x0f, 0, 1, 0, 0), I_(0x95, 0, 0, 0, 0));
  DIFF("INT64_MIN / -1", I_(0x18, 0, 0, 0, 0), I_(0, 0, 0, 0, (int32_t)0x80000000), I_(0x37, 0, 0, 1, -1), I_(0x95, 0, 0, 0, 0));
  DIFF("INT32_MIN % -1", I_(0xb4, 0, 0, 0, (int32_t)0x80000000), I_(0x94, 0, 0, 1, -1), I_(0x95, 0, 0, 0, 0));
  DIFF("shift by a register", I_(0xb7, 0, 0, 0, -1), I_(0xb7, 4, 0, 0, 77), I_(0x7f, 0, 4, 0, 0), I_(0xcc, 4, 4, 0, 0), I_(0x0f, 0, 4, 0, 0), I_(0x95, 0, 0, 0, 0));
  DIFF("shift r4 by itself", I_(0xb7, 4, 0, 0, 35), I_(0x6f, 4, 4, 0, 0), I_(0xbf, 0, 4, 0, 0), I_(0x95, 0, 0, 0, 0));
  DIFF("helper keeps r1..r5", I_(0x85, 0, 0, 0, 1), I_(0x0f, 0, 1, 0, 0), I_(0x0f, 0, 5, 0, 0), I_(0x95, 0, 0, 0, 0));
  DIFF("leaf helper keeps r1..r5", I_(0xb7, 3, 0, 0, 33), I_(0xb7, 4, 0, 0, 44), I_(0xb7, 5, 0, 0, 55), I_(0x85, 0, 0, 0, 4),
       I_(0x0f, 0, 1, 0, 0), I_(0x0f, 0, 2, 0, 0), I_(0x0f, 0, 3, 0, 0), I_(0x0f, 0, 4, 0, 0), I_(0x0f, 0, 5, 0, 0),
       I_(0xbf, 6, 0, 0, 0), I_(0x85, 0, 0, 0, 4), I_(0x0f, 0, 6, 0, 0), I_(0x79, 3, 1, 8, 0), I_(0x0f, 0, 3, 0, 0), I_(0x95, 0, 0, 0, 0));
  DIFF("helper aborts", I_(0xb7, 3, 0, 0, 4), I_(0x85, 0, 0, 0, 3), I_(0x95, 0, 0, 0, 0));
  DIFF("helper returns a region", I_(0x85, 0, 0, 0, 2), I_(0x7a, 0, 0, 8, 9), I_(0xdb, 0, 0, 8, 0x01), I_(0x79, 0, 0, 8, 0), I_(0x95, 0, 0, 0, 0));
  /* the same helper calls with plain_helpers (the agent's: no pc, id or budget stored for the helper, the stack
   * not re-read): the same results, the budget left the same */
  plain = 1;
  DIFF("plain helpers: keep r1..r5", I_(0x85, 0, 0, 0, 1), I_(0x0f, 0, 1, 0, 0), I_(0x0f, 0, 5, 0, 0), I_(0x95, 0, 0, 0, 0));
  DIFF("plain helpers: abort", I_(0xb7, 3, 0, 0, 4), I_(0x85, 0, 0, 0, 3), I_(0x95, 0, 0, 0, 0));
  DIFF("plain helpers: a region, a loop around calls", I_(0xb7, 6, 0, 0, 20), I_(0x85, 0, 0, 0, 2), I_(0x7a, 0, 0, 8, 9),
       I_(0xdb, 0, 0, 8, 0x01), I_(0x79, 7, 0, 8, 0), I_(0x7b, 10, 7, -8, 0), I_(0x85, 0, 0, 0, 1), I_(0x07, 6, 0, 0, -1),
       I_(0x55, 6, 0, -8, 0), I_(0x79, 0, 10, -8, 0), I_(0x95, 0, 0, 0, 0));
  plain = 0;
  DIFF("atomics", I_(0xb7, 3, 0, 0, 5), I_(0xdb, 2, 3, 0, 0x01), I_(0xc3, 2, 3, 4, 0xa1), I_(0xdb, 10, 3, -8, 0xe1), I_(0xdb, 2, 3, 16, 0xf1), I_(0x95, 0, 0, 0, 0));
  DIFF("unaligned atomics", I_(0xb7, 3, 0, 0, 5), I_(0xdb, 2, 3, 3, 0x01), I_(0x95, 0, 0, 0, 0));
  DIFF("packet loads", I_(0x30, 0, 0, 0, 3), I_(0x28, 0, 0, 0, 58), I_(0x20, 0, 0, 0, 57), I_(0x95, 0, 0, 0, 0));
  DIFF("packet load past the end", I_(0x20, 0, 0, 0, 58), I_(0x95, 0, 0, 0, 0));
  DIFF("byte swaps, movsx", I_(0x18, 0, 0, 0, 0x80818283), I_(0, 0, 0, 0, 0x84858687), I_(0xd7, 0, 0, 0, 32), I_(0xbf, 3, 0, 16, 0), I_(0xbc, 4, 0, 8, 0),
       I_(0x0f, 0, 3, 0, 0), I_(0x0f, 0, 4, 0, 0), I_(0xdc, 0, 0, 0, 64), I_(0xd4, 0, 0, 0, 16), I_(0x95, 0, 0, 0, 0));
  DIFF("signed loads", I_(0x7a, 10, 0, -8, -2), I_(0x81, 0, 10, -8, 0), I_(0x89, 3, 10, -8, 0), I_(0x91, 4, 10, -8, 0), I_(0x0f, 0, 3, 0, 0), I_(0x0f, 0, 4, 0, 0), I_(0x95, 0, 0, 0, 0));
  DIFF("byte stores from every register", I_(0x73, 10, 1, -1, 0), I_(0x73, 10, 2, -2, 0), I_(0x73, 10, 6, -3, 0), I_(0x73, 10, 7, -4, 0), I_(0x73, 10, 8, -5, 0),
       I_(0x6b, 10, 9, -8, 0), I_(0x79, 0, 10, -8, 0), I_(0x95, 0, 0, 0, 0));
  DIFF("jmp32 and signed compares", I_(0xb7, 0, 0, 0, -1), I_(0x66, 0, 0, 1, 0), I_(0xb7, 0, 0, 0, 9), I_(0x65, 0, 0, 1, -2), I_(0xb7, 0, 0, 0, 3),
       I_(0x46, 0, 0, 1, 1), I_(0x07, 0, 0, 0, 100), I_(0x95, 0, 0, 0, 0));
  DIFF("budget stops at exit", I_(0xb7, 0, 0, 0, 0), I_(0x07, 0, 0, 0, 1), I_(0x07, 0, 0, 0, 1), I_(0x95, 0, 0, 0, 0));

  /* the switch and the fallback */
  {
    ebpf_vm_jit_stats s0, s1;
    const raw p[] = {I_(0x85, 0, 1, 0, 1), I_(0x95, 0, 0, 0, 0), I_(0xb7, 0, 0, 0, 4), I_(0x95, 0, 0, 0, 0)}; /* a bpf-to-bpf call */
    ebpf_vm_prog *prog;
    ebpf_vm_env env = {.helper = helper};
    unsetenv("WBPF_JIT");
    ebpf_vm_jit_get_stats(&s0);
    CHECK(ebpf_vm_load(p, sizeof p, &env, &prog, NULL) == EBPF_VM_OK, "a program with a local call loads");
    ebpf_vm_jit_get_stats(&s1);
    CHECK(s1.unsupported == s0.unsupported + 1 && s1.compiled == s0.compiled, "it is counted as unsupported and runs on the interpreter");
    CHECK(ebpf_vm_engine_note(prog) != NULL && strstr(ebpf_vm_engine_note(prog), "bpf-to-bpf") != NULL, "its note says why: %s", ebpf_vm_engine_note(prog));
    ebpf_vm_free(prog);
    CHECK(diff("a local call", p, 4, 0), "jit = interpreter: a program the JIT refuses");
    setenv("WBPF_JIT", "0", 1);
    ebpf_vm_jit_get_stats(&s0);
    CHECK(ebpf_vm_load(p + 2, 16, &env, &prog, NULL) == EBPF_VM_OK, "loads with WBPF_JIT=0");
    ebpf_vm_jit_get_stats(&s1);
    CHECK(s1.disabled == s0.disabled + 1 && s1.compiled == s0.compiled, "WBPF_JIT=0: counted as disabled, not compiled");
    CHECK(ebpf_vm_engine_note(prog) == NULL, "WBPF_JIT=0: asked for, no note");
    ebpf_vm_free(prog);
    unsetenv("WBPF_JIT");
  }
  /* freeing a program unmaps its code */
  {
    const raw p[] = {I_(0xb7, 0, 0, 0, 1), I_(0x95, 0, 0, 0, 0)};
    ebpf_vm_env env = {.helper = helper};
    ebpf_vm_prog *prog;
    int before = count_maps(), ok = 1;
    for (int k = 0; k < 3000 && ok; k++) {
      ok = ebpf_vm_load(p, sizeof p, &env, &prog, NULL) == EBPF_VM_OK;
      ebpf_vm_free(prog);
    }
    CHECK(ok && count_maps() <= before + 2, "3000 loads and frees leave no code mapped (%d maps before, %d after)", before, count_maps());
  }

  /* no executable memory: the interpreter, counted */
  {
    fflush(stdout);
    pid_t pid = fork();
    if (pid == 0) _exit(no_exec_child());
    int st = -1;
    waitpid(pid, &st, 0);
    CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0, "mprotect(PROT_EXEC) refused: the program runs on the interpreter, counted (child status %d)", st);
  }

  /* random programs */
  {
    const int N = argc > 2 ? atoi(argv[2]) : 4000;
    int bad = 0, loaded = 0, c0 = compared, f0 = faulted;
    static raw p[96];
    char name[64];
    for (int k = 0; k < N && bad < 5; k++) {
      size_t n = 4 + rnd(90);
      gen(p, n);
      snprintf(name, sizeof name, "random program %d (%zu slots)", k, n);
      if (!diff(name, p, n, 1)) {
        bad++;
        for (size_t q = 0; q < n; q++) printf("#   %zu: %02x %02x %d %d\n", q, p[q].op, p[q].regs, p[q].off, p[q].imm);
      }
      loaded++;
    }
    CHECK(bad == 0 && compared - c0 > loaded / 2, "jit = interpreter on %d random programs (%d compiled, %d of them faulted)", loaded, compared - c0, faulted - f0);
  }

  /* programs from a file: u32 length, bytes */
  if (argc > 1 && strcmp(argv[1], "-") != 0) {
    FILE *f = fopen(argv[1], "rb");
    CHECK(f != NULL, "opens %s", argv[1]);
    uint32_t len;
    int k = 0, bad = 0;
    static raw p[65536];
    while (f != NULL && fread(&len, 4, 1, f) == 1 && len <= sizeof p) {
      if (fread(p, 1, len, f) != len) break;
      char name[32];
      snprintf(name, sizeof name, "file program %d", k++);
      if (!diff(name, p, len / 8, 0)) bad++;
    }
    if (f != NULL) fclose(f);
    CHECK(bad == 0 && k > 0, "jit = interpreter on the %d programs of %s", k, argv[1]);
  }
  return failures != 0;
}
