/* selftest.c: the engine as the agent uses it, without Node: VM addresses are host pointers (ctx, a map
 * value, a read-only region, a stack buffer), helpers from a table, a tail call, and every fault kind.
 * Built and run by test/vm-native.test.ts: cc -O2 -Wall -Wextra ebpf_vm.c selftest.c && ./a.out */
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "ebpf_vm.h"

#define INSN(op, dst, src, off, imm) \
  { (uint8_t)(op), (uint8_t)((dst) | ((src) << 4)), (int16_t)(off), (int32_t)(imm) }

struct insn {
  uint8_t op, regs;
  int16_t off;
  int32_t imm;
};

static int failures;
#define CHECK(cond, ...)                 \
  do {                                   \
    if (!(cond)) {                       \
      failures++;                        \
      printf("FAIL line %d: ", __LINE__); \
      printf(__VA_ARGS__);               \
      printf("\n");                      \
    }                                    \
  } while (0)

static int double_it(ebpf_vm_call *c) {
  c->r0 = c->args[0] * 2;
  return 0;
}
static int refuse(ebpf_vm_call *c) {
  (void)c;
  return 1;
}
static ebpf_vm_helper_fn helpers(void *user, uint32_t id) {
  (void)user;
  return id == 1 ? double_it : id == 2 ? refuse : NULL;
}

static uint64_t value_addr;
static int maps(void *user, uint32_t src, int32_t imm, uint64_t *value) {
  (void)user;
  if (imm != 5) return -1;
  *value = src == 1 || src == 5 ? 1000 : value_addr;
  return 0;
}

static ebpf_vm_prog *tail_target;
static int tail(ebpf_vm_call *c, uint64_t map, uint32_t index, const ebpf_vm_prog **target) {
  (void)c;
  *target = map == 77 && index == 0 ? tail_target : NULL;
  return 0;
}

static ebpf_vm_prog *load(const struct insn *p, size_t n, const ebpf_vm_env *env) {
  ebpf_vm_prog *out;
  ebpf_vm_error err;
  if (ebpf_vm_load(p, n * 8, env, &out, &err) != EBPF_VM_OK) {
    printf("FAIL load: %s at %d\n", err.message, err.pc);
    failures++;
    return NULL;
  }
  return out;
}

int main(void) {
  struct { uint64_t pid; uint32_t comm[4]; } ctx = {4242, {1, 2, 3, 4}};
  uint64_t value[2] = {10, 20};
  const uint32_t rodata = 99;
  static uint8_t stack[EBPF_VM_STACK_SIZE];
  ebpf_vm_region regions[3] = {
      {(uintptr_t)&ctx, sizeof ctx, (uint8_t *)&ctx, 0},
      {(uintptr_t)value, sizeof value, (uint8_t *)value, EBPF_VM_REGION_WRITABLE},
      {(uintptr_t)&rodata, sizeof rodata, (uint8_t *)(uintptr_t)&rodata, 0},
  };
  /* sorted by address, as the engine requires */
  for (int i = 0; i < 3; i++)
    for (int j = i + 1; j < 3; j++)
      if (regions[j].addr < regions[i].addr) {
        ebpf_vm_region t = regions[i];
        regions[i] = regions[j];
        regions[j] = t;
      }
  ebpf_vm_env env = {.helper = helpers, .map = maps, .tail_call = tail, .user = NULL};
  value_addr = (uintptr_t)value;
  ebpf_vm_run run;
  memset(&run, 0, sizeof run);
  run.regions = regions;
  run.nregions = 3;
  run.stack = stack;
  run.stack_addr = (uintptr_t)stack;
  uint64_t args[5] = {(uintptr_t)&ctx, (uintptr_t)value, (uintptr_t)&rodata, 0, 0};

  /* r0 = ctx->pid + value[1] + helper1(*(u32 *)rodata) via the stack */
  const struct insn sum[] = {
      INSN(0x79, 6, 1, 0, 0),    /* ldxdw r6, [r1+0] */
      INSN(0x79, 7, 2, 8, 0),    /* ldxdw r7, [r2+8] */
      INSN(0x61, 1, 3, 0, 0),    /* ldxw r1, [r3+0] */
      INSN(0x85, 0, 0, 0, 1),    /* call 1 */
      INSN(0x7b, 10, 0, -8, 0),  /* stxdw [r10-8], r0 */
      INSN(0x79, 0, 10, -8, 0),  /* ldxdw r0, [r10-8] */
      INSN(0x0f, 0, 6, 0, 0),    /* add r0, r6 */
      INSN(0x0f, 0, 7, 0, 0),    /* add r0, r7 */
      INSN(0x95, 0, 0, 0, 0),    /* exit */
  };
  ebpf_vm_prog *p = load(sum, 9, &env);
  run.budget = 1000;
  CHECK(p && ebpf_vm_exec(p, &run, args) == EBPF_VM_DONE && run.r0 == 4242 + 20 + 198, "sum: status %d r0 %llu", run.status, (unsigned long long)run.r0);
  CHECK(run.budget == 1000 - 9, "sum: 9 steps (budget left %lld)", (long long)run.budget);
  ebpf_vm_free(p);

  /* a store into the read-only region faults, naming the address */
  const struct insn ro[] = {INSN(0x62, 3, 0, 0, 1), INSN(0xb7, 0, 0, 0, 0), INSN(0x95, 0, 0, 0, 0)};
  p = load(ro, 3, &env);
  run.budget = 1000;
  CHECK(p && ebpf_vm_exec(p, &run, args) == EBPF_VM_F_MEMORY && run.fault.addr == (uintptr_t)&rodata && run.fault.write && run.fault.width == 4 && run.fault.pc == 0,
        "read-only store: status %d", run.status);
  CHECK(rodata == 99, "read-only region unchanged");
  ebpf_vm_free(p);

  /* one byte past ctx, NULL, below the frame, far away: all faults, never a crash */
  const int32_t offs[] = {(int32_t)sizeof ctx - 7, 0, 0, 0};
  const uint8_t bases[] = {1, 4, 10, 5};
  for (int k = 0; k < 4; k++) {
    const struct insn bad[] = {
        INSN(0xb7, 4, 0, 0, 0),                         /* mov r4, 0 */
        INSN(0x18, 5, 0, 0, 0), INSN(0, 0, 0, 0, 0x7fff), /* lddw r5, 0x7fff00000000 */
        INSN(0x79, 0, bases[k], k == 2 ? -520 : offs[k], 0), /* ldxdw r0, [base+off] */
        INSN(0x95, 0, 0, 0, 0),
    };
    p = load(bad, 5, &env);
    run.budget = 1000;
    CHECK(p && ebpf_vm_exec(p, &run, args) == EBPF_VM_F_MEMORY && run.fault.pc == 3 && !run.fault.write, "bad access %d: status %d", k, run.status);
    ebpf_vm_free(p);
  }

  /* an endless loop stops at the budget; the loop header is named */
  const struct insn loop[] = {INSN(0xb7, 0, 0, 0, 0), INSN(0x07, 0, 0, 0, 1), INSN(0x05, 0, 0, -2, 0), INSN(0x95, 0, 0, 0, 0)};
  p = load(loop, 4, &env);
  run.budget = 100000;
  CHECK(p && ebpf_vm_exec(p, &run, args) == EBPF_VM_F_BUDGET && run.fault.pc == 1, "loop: status %d pc %u", run.status, run.fault.pc);
  ebpf_vm_free(p);

  /* a helper that refuses aborts the run */
  const struct insn abort_[] = {INSN(0x85, 0, 0, 0, 2), INSN(0x95, 0, 0, 0, 0)};
  p = load(abort_, 2, &env);
  run.budget = 1000;
  CHECK(p && ebpf_vm_exec(p, &run, args) == EBPF_VM_F_HELPER && run.fault.pc == 0, "helper abort: status %d", run.status);
  ebpf_vm_free(p);

  /* recursion past 8 frames */
  const struct insn rec[] = {INSN(0x85, 0, 1, 0, -1), INSN(0x95, 0, 0, 0, 0)};
  p = load(rec, 2, &env);
  run.budget = 1000;
  CHECK(p && ebpf_vm_exec(p, &run, args) == EBPF_VM_F_STACK, "recursion: status %d", run.status);
  ebpf_vm_free(p);

  /* a tail call: the target reads ctx; its r0 ends the caller */
  const struct insn target[] = {INSN(0x79, 0, 1, 0, 0), INSN(0x07, 0, 0, 0, 1), INSN(0x95, 0, 0, 0, 0)};
  const struct insn caller[] = {INSN(0xb7, 2, 0, 0, 77), INSN(0xb7, 3, 0, 0, 0), INSN(0x85, 0, 0, 0, 12), INSN(0xb7, 0, 0, 0, 5), INSN(0x95, 0, 0, 0, 0)};
  tail_target = load(target, 3, &env);
  p = load(caller, 5, &env);
  run.budget = 1000;
  CHECK(p && ebpf_vm_exec(p, &run, args) == EBPF_VM_DONE && run.r0 == 4243 && run.tail_calls == 1, "tail call: status %d r0 %llu", run.status, (unsigned long long)run.r0);
  ebpf_vm_free(p);
  ebpf_vm_free(tail_target);

  /* lddw map_by_fd(5) and map_val(5)+8 through env.map */
  const struct insn mapref[] = {
      INSN(0x18, 1, 1, 0, 5), INSN(0, 0, 0, 0, 0),  /* lddw r1, map_by_fd(5) */
      INSN(0x18, 2, 2, 0, 5), INSN(0, 0, 0, 0, 8),  /* lddw r2, map_val(5)+8 */
      INSN(0x79, 0, 2, 0, 0),                       /* ldxdw r0, [r2+0] */
      INSN(0x0f, 0, 1, 0, 0),                       /* add r0, r1 */
      INSN(0x95, 0, 0, 0, 0),
  };
  p = load(mapref, 7, &env);
  run.budget = 1000;
  CHECK(p && ebpf_vm_exec(p, &run, args) == EBPF_VM_DONE && run.r0 == 1020, "map references: status %d r0 %llu", run.status, (unsigned long long)run.r0);
  ebpf_vm_free(p);

  /* load refuses what it cannot run, naming the instruction */
  const struct insn nomap[] = {INSN(0x18, 1, 1, 0, 6), INSN(0, 0, 0, 0, 0), INSN(0x95, 0, 0, 0, 0)};
  ebpf_vm_error err0;
  CHECK(ebpf_vm_load(nomap, sizeof nomap, &env, &p, &err0) == EBPF_VM_E_UNSUPPORTED && err0.pc == 0 && strcmp(err0.message, "unknown map fd 6") == 0, "unknown map: %s", err0.message);
  const struct insn unknown[] = {INSN(0xb7, 0, 0, 0, 0), INSN(0x85, 0, 0, 0, 7), INSN(0x95, 0, 0, 0, 0)};
  ebpf_vm_error err;
  CHECK(ebpf_vm_load(unknown, sizeof unknown, &env, &p, &err) == EBPF_VM_E_UNSUPPORTED && err.pc == 1 && strcmp(err.message, "unknown helper 7") == 0, "unknown helper: %s", err.message);
  const struct insn out[] = {INSN(0x05, 0, 0, 5, 0), INSN(0x95, 0, 0, 0, 0)};
  CHECK(ebpf_vm_load(out, sizeof out, &env, &p, &err) == EBPF_VM_E_INVALID && err.pc == 0 && strstr(err.message, "out of range"), "jump out: %s", err.message);

  if (failures == 0) printf("ok\n");
  return failures != 0;
}
