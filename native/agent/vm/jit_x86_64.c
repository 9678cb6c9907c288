/* jit_x86_64.c: the x86-64 template JIT: machine code per eBPF instruction, with the interpreter's budget
 * (charged at the same basic-block leaders), inline memory checks (the frame, the region used last, then the
 * run's region table), helpers called directly, and the C slow path (jit.c) for division, atomics, byte swaps
 * and packet loads.
 * Programs with bpf-to-bpf calls, tail calls or callx are refused here and stay on the interpreter. */
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "jit.h"
#include "recproof.h"

/* x86-64 registers */
enum { RAX, RCX, RDX, RBX, RSP, RBP, RSI, RDI, R8, R9, R10, R11, R12, R13, R14, R15 };
/* eBPF r0..r10: r1..r5 in the argument registers (the helper ABI's order), r6..r9 callee-saved, r10 in rbp.
 * r12 holds the state; r9, r10, r11 are scratch. */
static const uint8_t M[11] = {RAX, RDI, RSI, RDX, RCX, R8, RBX, R13, R14, R15, RBP};
#define ST R12
#define OFF(f) ((int32_t)offsetof(ebpf_jit_state, f))

typedef struct buf {
  uint8_t *b;
  size_t n, cap;
  int oom;
} buf;

static void put(buf *b, const void *p, size_t n) {
  if (b->oom) return;
  if (b->n + n > b->cap) {
    size_t cap = b->cap ? b->cap * 2 : 4096;
    while (cap < b->n + n) cap *= 2;
    uint8_t *nb = (uint8_t *)realloc(b->b, cap);
    if (nb == NULL) {
      b->oom = 1;
      return;
    }
    b->b = nb;
    b->cap = cap;
  }
  memcpy(b->b + b->n, p, n);
  b->n += n;
}
static void u8(buf *b, uint8_t v) { put(b, &v, 1); }
static void u32(buf *b, uint32_t v) { put(b, &v, 4); }
static void u64(buf *b, uint64_t v) { put(b, &v, 8); }

static void rex(buf *b, int w, int reg, int index, int base) {
  u8(b, (uint8_t)(0x40 | (w ? 8 : 0) | ((reg & 8) ? 4 : 0) | ((index & 8) ? 2 : 0) | ((base & 8) ? 1 : 0)));
}
/* op reg, rm (register direct) */
static void rr(buf *b, int w, uint8_t op, int reg, int rm) {
  rex(b, w, reg, 0, rm);
  u8(b, op);
  u8(b, (uint8_t)(0xc0 | ((reg & 7) << 3) | (rm & 7)));
}
static void rr2(buf *b, int w, uint8_t op1, uint8_t op2, int reg, int rm) { /* 0F xx */
  rex(b, w, reg, 0, rm);
  u8(b, op1);
  u8(b, op2);
  u8(b, (uint8_t)(0xc0 | ((reg & 7) << 3) | (rm & 7)));
}
/* the modrm/sib/disp32 of [base + index + disp] (index < 0: none) */
static void modrm_mem(buf *b, int reg, int base, int index, int32_t disp) {
  if (index < 0 && (base & 7) != 4) {
    u8(b, (uint8_t)(0x80 | ((reg & 7) << 3) | (base & 7)));
  } else {
    u8(b, (uint8_t)(0x80 | ((reg & 7) << 3) | 4));
    u8(b, (uint8_t)(((index < 0 ? 4 : index) & 7) << 3 | (base & 7)));
  }
  u32(b, (uint32_t)disp);
}
/* [prefix] REX op... modrm(mem) */
static void mem(buf *b, int pfx66, int w, const uint8_t *op, int nop, int reg, int base, int index, int32_t disp) {
  if (pfx66) u8(b, 0x66);
  rex(b, w, reg, index < 0 ? 0 : index, base);
  put(b, op, (size_t)nop);
  modrm_mem(b, reg, base, index, disp);
}
static void mem1(buf *b, int w, uint8_t op, int reg, int base, int32_t disp) { mem(b, 0, w, &op, 1, reg, base, -1, disp); }

static void mov_rr(buf *b, int w, int dst, int src) { rr(b, w, 0x89, src, dst); }
static void ld_st(buf *b, int dst, int32_t off) { mem1(b, 1, 0x8b, dst, ST, off); }   /* mov dst, [st+off] */
static void st_st(buf *b, int src, int32_t off) { mem1(b, 1, 0x89, src, ST, off); }   /* mov [st+off], src */
static void alu_ri(buf *b, int w, int digit, int rm, int32_t imm) {
  rex(b, w, 0, 0, rm);
  u8(b, 0x81);
  u8(b, (uint8_t)(0xc0 | (digit << 3) | (rm & 7)));
  u32(b, (uint32_t)imm);
}
static void mov_ri32(buf *b, int dst, uint32_t imm) { /* zero-extends */
  rex(b, 0, 0, 0, dst);
  u8(b, (uint8_t)(0xb8 | (dst & 7)));
  u32(b, imm);
}
static void mov_ri64(buf *b, int dst, uint64_t imm) {
  rex(b, 1, 0, 0, dst);
  u8(b, (uint8_t)(0xb8 | (dst & 7)));
  u64(b, imm);
}
/* jcc/jmp rel32 to be patched: returns where the rel32 is */
static size_t jcc(buf *b, int cc) {
  u8(b, 0x0f);
  u8(b, (uint8_t)(0x80 | cc));
  u32(b, 0);
  return b->n - 4;
}
static size_t jmp(buf *b) {
  u8(b, 0xe9);
  u32(b, 0);
  return b->n - 4;
}
static void patch(buf *b, size_t at, size_t target) {
  if (b->oom) return;
  int32_t rel = (int32_t)((int64_t)target - (int64_t)(at + 4));
  memcpy(b->b + at, &rel, 4);
}
static void here(buf *b, size_t at) { patch(b, at, b->n); }

enum { CC_B = 2, CC_AE = 3, CC_E = 4, CC_NE = 5, CC_BE = 6, CC_A = 7, CC_S = 8, CC_NS = 9, CC_L = 0xc, CC_GE = 0xd, CC_LE = 0xe, CC_G = 0xf };

/* fixups: jumps to eBPF slots, and to the shared exits */
typedef struct fix {
  size_t at;
  uint32_t target;
} fix;

typedef struct jit {
  buf b;
  size_t *pos; /* machine code offset of each slot */
  fix *fx;
  size_t nfx;
  size_t spill, ret, miss[4][2]; /* the slow-path stub, the common return, the memory-miss stubs */
  const uint8_t *proof;          /* a proven program's per-slot marks (recproof.h), or NULL */
} jit;

static void to_slot(jit *j, size_t at, uint32_t target) { j->fx[j->nfx++] = (fix){at, target}; }

/* the slow path for slot pc: spill, call ebpf_jit_slow(st, pc), reload (or leave with its status) */
static void slow(jit *j, uint32_t pc) {
  mov_ri32(&j->b, R11, pc);
  u8(&j->b, 0xe8);
  u32(&j->b, (uint32_t)(int32_t)((int64_t)j->spill - (int64_t)(j->b.n + 4)));
}

static void mov_m32_imm(buf *b, int base, int32_t off, uint32_t imm) { /* mov dword [base+off], imm */
  rex(b, 0, 0, 0, base);
  u8(b, 0xc7);
  modrm_mem(b, 0, base, -1, off);
  u32(b, imm);
}
static void mov_m64_imm(buf *b, int base, int32_t off, int32_t imm) { /* mov qword [base+off], imm (sign-extended) */
  rex(b, 1, 0, 0, base);
  u8(b, 0xc7);
  modrm_mem(b, 0, base, -1, off);
  u32(b, (uint32_t)imm);
}

static void leave(jit *j, uint32_t pc, int status);

/* a helper (a leaf: a direct call, see ebpf_vm_env.leaf), as the interpreter calls it: r1..r5 to call.args (and back from there after the call: the interpreter keeps them), the
 * call's slot and id, the budget to run->budget, the helper through its pointer (resolved at load); nonzero
 * ends the run (EBPF_VM_F_HELPER); then the view is reset (the helper may have changed the regions or the
 * stack: caches dropped, the stack re-read), r0 = call.r0 and r1..r5 back. call.run/prog/user are set once
 * per run (jit.c). */
static void helper(jit *j, const ebpf_vm_prog *p, uint32_t pc) {
  buf *b = &j->b;
  ebpf_vm_leaf_fn leaf = p->env.leaf ? p->env.leaf(p->env.user, (uint32_t)p->code[pc].imm) : NULL;
  if (leaf) { /* r1..r5 kept around a plain call (rsp stays 16-byte aligned: 5 pushes + 8), r0 = its result */
    static const uint8_t save[] = {0x57, 0x56, 0x52, 0x51, 0x41, 0x50}; /* push rdi rsi rdx rcx r8 */
    static const uint8_t restore[] = {0x41, 0x58, 0x59, 0x5a, 0x5e, 0x5f}; /* pop r8 rcx rdx rsi rdi */
    put(b, save, sizeof save);
    alu_ri(b, 1, 5, RSP, 8);
    mov_ri64(b, RAX, (uint64_t)(uintptr_t)leaf);
    u8(b, 0xff); /* call rax */
    u8(b, 0xd0);
    alu_ri(b, 1, 0, RSP, 8);
    put(b, restore, sizeof restore);
    return;
  }
  const int plain = p->env.plain_helpers; /* no pc, id or budget for the helper, no stack change (ebpf_vm.h) */
  for (int r = 1; r <= 5; r++) st_st(b, M[r], OFF(call.args) + 8 * (r - 1)); /* r1..r5 come back from here */
  if (!plain) {
    mov_m32_imm(b, ST, OFF(call.pc), pc);
    mov_m32_imm(b, ST, OFF(call.id), (uint32_t)p->code[pc].imm);
  }
  mov_m64_imm(b, ST, OFF(call.r0), 0);
  if (!plain) {
    ld_st(b, R11, OFF(run));
    ld_st(b, RAX, OFF(budget));
    mem1(b, 1, 0x89, RAX, R11, (int32_t)offsetof(ebpf_vm_run, budget)); /* run->budget = budget */
  }
  mem1(b, 1, 0x8d, RDI, ST, OFF(call)); /* lea rdi, [st+call] */
  /* a proven program's reserve/submit/discard: the host's record variant (no region for the record) */
  ebpf_vm_helper_fn fn = j->proof && j->proof[pc] == RP_RECORD ? p->env.record(p->env.user, (uint32_t)p->code[pc].imm) : p->helpers[pc];
  mov_ri64(b, RAX, (uint64_t)(uintptr_t)fn);
  u8(b, 0xff); /* call rax */
  u8(b, 0xd0);
  rr(b, 0, 0x85, RAX, RAX);
  size_t ok = jcc(b, CC_E);
  leave(j, pc, EBPF_VM_F_HELPER);
  here(b, ok);
  if (!plain) {
    ld_st(b, R11, OFF(run));
    mem1(b, 1, 0x8b, RAX, R11, (int32_t)offsetof(ebpf_vm_run, stack)); /* stack_delta = run->stack - stack_addr */
    mem1(b, 1, 0x2b, RAX, ST, OFF(stack_addr));
    st_st(b, RAX, OFF(stack_delta));
  }
  for (int k = 0; k < 4; k++) {
    mov_m64_imm(b, ST, OFF(rc_end) + 8 * k, 0);
    mov_m64_imm(b, ST, OFF(wc_end) + 8 * k, 0);
  }
  ld_st(b, RAX, OFF(call.r0));
  for (int r = 1; r <= 5; r++) ld_st(b, M[r], OFF(call.args) + 8 * (r - 1)); /* a helper never writes args (ebpf_vm.h) */
}

/* end the run at pc with a status (budget) */
static void leave(jit *j, uint32_t pc, int status) {
  buf *b = &j->b;
  rex(b, 0, 0, 0, ST); /* mov dword [st+fault_pc], pc */
  u8(b, 0xc7);
  modrm_mem(b, 0, ST, -1, OFF(fault_pc));
  u32(b, pc);
  mov_ri32(b, RAX, (uint32_t)status);
  patch(b, jmp(b), j->ret);
}

#define RUN_OFF(f) ((int32_t)offsetof(ebpf_vm_run, f))
#define REG_OFF(f) ((int32_t)offsetof(ebpf_vm_region, f))

static void miss_stub(jit *j, int wl, int write) {
  buf *b = &j->b;
  const int32_t w = 1 << wl;
  const int32_t ca = write ? OFF(wc_addr) : OFF(rc_addr);
  const int32_t cd = write ? OFF(wc_delta) : OFF(rc_delta);
  const int32_t ce = write ? OFF(wc_end) : OFF(rc_end);
  j->miss[wl][write] = b->n;
  rex(b, 0, 0, 0, R10); /* push r10 (pc) */
  u8(b, 0x52);
  u8(b, 0x50); /* push rax */
  ld_st(b, R9, OFF(run));
  mem1(b, 0, 0x8b, R10, R9, RUN_OFF(nregions)); /* mov r10d, [r9+nregions] */
  mem1(b, 1, 0x8b, R9, R9, RUN_OFF(regions));   /* mov r9, [r9+regions] */
  rex(b, 1, 0, 0, R10); /* shl r10, 5 */
  u8(b, 0xc1);
  u8(b, (uint8_t)(0xc0 | (4 << 3) | (R10 & 7)));
  u8(b, 5);
  rr(b, 1, 0x01, R10, R9); /* add r9, r10: the end of the table */
  const size_t loop = b->n;
  rr(b, 1, 0x85, R10, R10); /* test r10, r10 */
  size_t none1 = jcc(b, CC_E);
  alu_ri(b, 1, 5, R9, (int32_t)sizeof(ebpf_vm_region));
  alu_ri(b, 1, 5, R10, (int32_t)sizeof(ebpf_vm_region));
  mem1(b, 1, 0x3b, R11, R9, REG_OFF(addr)); /* cmp r11, [r9+addr] */
  patch(b, jcc(b, CC_B), loop);
  mov_rr(b, 1, RAX, R11);
  mem1(b, 1, 0x2b, RAX, R9, REG_OFF(addr)); /* d = a - addr */
  mem1(b, 1, 0x3b, RAX, R9, REG_OFF(size));
  size_t none2 = jcc(b, CC_AE);
  alu_ri(b, 1, 0, RAX, w); /* d + w <= size */
  mem1(b, 1, 0x3b, RAX, R9, REG_OFF(size));
  size_t none3 = jcc(b, CC_A);
  size_t none4 = 0;
  if (write) { /* test dword [r9+flags], WRITABLE */
    rex(b, 0, 0, 0, R9);
    u8(b, 0xf7);
    modrm_mem(b, 0, R9, -1, REG_OFF(flags));
    u32(b, EBPF_VM_REGION_WRITABLE);
    none4 = jcc(b, CC_E);
  }
  /* a hit: the cache, and the host address */
  mem1(b, 1, 0x8b, RAX, R9, REG_OFF(host));
  mem1(b, 1, 0x2b, RAX, R9, REG_OFF(addr));
  st_st(b, RAX, cd);
  rr(b, 1, 0x01, RAX, R11); /* add r11, rax */
  mem1(b, 1, 0x8b, RAX, R9, REG_OFF(addr));
  st_st(b, RAX, ca);
  mem1(b, 1, 0x8b, RAX, R9, REG_OFF(size));
  st_st(b, RAX, ce);
  rr(b, 0, 0x31, R10, R10);
  static const int32_t step[3] = {1, 2, 4};
  for (int k = 0; k < 3; k++) { /* end[k+1] = size - (2^(k+1) - 1), or 0 */
    alu_ri(b, 1, 5, RAX, step[k]);
    rr2(b, 1, 0x0f, 0x42, RAX, R10); /* cmovb rax, r10 */
    st_st(b, RAX, ce + 8 * (k + 1));
  }
  u8(b, 0x58); /* pop rax */
  rex(b, 0, 0, 0, R10); /* pop r10 */
  u8(b, 0x5a);
  rr(b, 0, 0x31, R10, R10); /* xor r10d, r10d */
  u8(b, 0xc3);
  /* none: the fault, recorded as the interpreter does */
  here(b, none1);
  here(b, none2);
  here(b, none3);
  if (write) here(b, none4);
  u8(b, 0x58); /* pop rax */
  rex(b, 0, 0, 0, R10); /* pop r10 */
  u8(b, 0x5a);
  alu_ri(b, 1, 4, RSP, -16); /* and rsp, -16: the run ends, the return restores rsp */
  mov_rr(b, 1, RDI, ST);
  mov_rr(b, 1, RSI, R11);
  mov_rr(b, 0, RDX, R10);
  alu_ri(b, 0, 1, RDX, (int32_t)((uint32_t)wl << 28 | (uint32_t)write << 27)); /* or edx, how */
  mov_ri64(b, RAX, (uint64_t)(uintptr_t)&ebpf_jit_miss);
  u8(b, 0xff); /* call rax */
  u8(b, 0xd0);
  mov_ri32(b, RAX, EBPF_VM_F_MEMORY);
  patch(b, jmp(b), j->ret);
}

static void prologue(jit *j) {
  buf *b = &j->b;
  static const uint8_t push[] = {0x53, 0x55, 0x41, 0x54, 0x41, 0x55, 0x41, 0x56, 0x41, 0x57}; /* rbx rbp r12-r15 */
  put(b, push, sizeof push);
  alu_ri(b, 1, 5, RSP, 8); /* sub rsp, 8: 16-byte aligned */
  mov_rr(b, 1, ST, RDI);
  st_st(b, RSP, OFF(saved_sp));
  /* r1..r5 from args (rsi): rsi, r2's register, last */
  for (int r = 1; r <= 5; r++)
    if (M[r] != RSI) mem1(b, 1, 0x8b, M[r], RSI, 8 * (r - 1));
  for (int r = 1; r <= 5; r++)
    if (M[r] == RSI) mem1(b, 1, 0x8b, RSI, RSI, 8 * (r - 1));
  ld_st(b, M[10], OFF(R) + 8 * 10); /* st is in r12 */
  rr(b, 0, 0x31, RAX, RAX); /* r0, r6..r9 = 0 */
  for (int r = 6; r <= 9; r++) rr(b, 0, 0x31, M[r], M[r]);
  size_t over = jmp(b);
  /* the common return: status in eax */
  j->ret = b->n;
  ld_st(b, RSP, OFF(saved_sp));
  alu_ri(b, 1, 0, RSP, 8);
  static const uint8_t pop[] = {0x41, 0x5f, 0x41, 0x5e, 0x41, 0x5d, 0x41, 0x5c, 0x5d, 0x5b, 0xc3};
  put(b, pop, sizeof pop);
  /* the slow-path stub: r11d = pc; called (rsp = 8 mod 16) */
  j->spill = b->n;
  for (int r = 0; r < 10; r++) st_st(b, M[r], OFF(R) + 8 * r);
  mov_rr(b, 1, RDI, ST);
  mov_rr(b, 0, RSI, R11);
  alu_ri(b, 1, 5, RSP, 8);
  mov_ri64(b, RAX, (uint64_t)(uintptr_t)&ebpf_jit_slow);
  u8(b, 0xff); /* call rax */
  u8(b, 0xd0);
  alu_ri(b, 1, 0, RSP, 8);
  rr(b, 0, 0x85, RAX, RAX); /* test eax, eax */
  patch(b, jcc(b, CC_NE), j->ret);
  for (int r = 0; r < 10; r++) ld_st(b, M[r], OFF(R) + 8 * r);
  u8(b, 0xc3);
  /* the memory-miss stubs, one per width and direction: r11 = the address, r10d = pc; called. The region
   * table is searched as the interpreter's find() does (from the last region, the first whose addr <= a must
   * hold [a, a + w), and be writable for a store); a hit refills the cache and returns the host address in
   * r11 with r10 = 0; a miss records the fault (ebpf_jit_miss, as the interpreter) and leaves the run. */
  for (int wl = 0; wl < 4; wl++)
    for (int write = 0; write < 2; write++) miss_stub(j, wl, write);
  here(b, over);
}

/* a load or store of width w at [base + off]: kind 0 load into dst (sx: sign-extending), 1 store of reg
 * src, 2 store of imm */
static void access(jit *j, uint32_t pc, int kind, uint32_t w, int sx, int base, int16_t off, int reg, int32_t imm) {
  buf *b = &j->b;
  const int wl = w == 1 ? 0 : w == 2 ? 1 : w == 4 ? 2 : 3;
  size_t to_do = 0, to_do2 = 0;
  int through_stack = base == M[10] && off >= -(int32_t)EBPF_VM_FRAME_SIZE && off <= -(int32_t)w;
  int abase, aindex;
  int32_t adisp;
  if (j->proof && j->proof[pc] == RP_DIRECT) { /* a proven record access, in bounds (recproof.c): [base + off] */
    abase = base;
    aindex = -1;
    adisp = off;
  } else if (through_stack) { /* r10 + off: in the entry frame, always (r10 is read-only; no calls here) */
    ld_st(b, R10, OFF(stack_delta));
    abase = M[10];
    aindex = R10;
    adisp = off;
  } else {
    mem1(b, 1, 0x8d, R11, base, off); /* lea r11, [base + off] */
    mov_rr(b, 1, R10, R11);
    mem1(b, 1, 0x2b, R10, ST, OFF(stack_lo)); /* sub r10, [st+stack_lo] */
    mem1(b, 1, 0x3b, R10, ST, OFF(stack_end) + 8 * wl);
    size_t not_stack = jcc(b, CC_AE);
    ld_st(b, R10, OFF(stack_delta));
    to_do = jmp(b);
    here(b, not_stack);
    mov_rr(b, 1, R10, R11);
    const int32_t ca = kind == 0 ? OFF(rc_addr) : OFF(wc_addr);
    const int32_t cd = kind == 0 ? OFF(rc_delta) : OFF(wc_delta);
    const int32_t ce = kind == 0 ? OFF(rc_end) : OFF(wc_end);
    mem1(b, 1, 0x2b, R10, ST, ca);
    mem1(b, 1, 0x3b, R10, ST, ce + 8 * wl);
    size_t miss = jcc(b, CC_AE);
    ld_st(b, R10, cd);
    to_do2 = jmp(b);
    here(b, miss);
    mov_ri32(b, R10, pc);
    u8(b, 0xe8); /* call the miss stub: r11 = the host address, r10 = 0 */
    u32(b, (uint32_t)(int32_t)((int64_t)j->miss[wl][kind != 0] - (int64_t)(b->n + 4)));
    here(b, to_do);
    here(b, to_do2);
    abase = R11;
    aindex = R10;
    adisp = 0;
  }
  if (kind == 0) {
    if (w == 8) mem(b, 0, 1, (const uint8_t[]){0x8b}, 1, reg, abase, aindex, adisp);
    else if (w == 4) mem(b, 0, sx, (const uint8_t[]){sx ? 0x63 : 0x8b}, 1, reg, abase, aindex, adisp);
    else if (w == 2) mem(b, 0, sx, (const uint8_t[]){0x0f, sx ? 0xbf : 0xb7}, 2, reg, abase, aindex, adisp);
    else mem(b, 0, sx, (const uint8_t[]){0x0f, sx ? 0xbe : 0xb6}, 2, reg, abase, aindex, adisp);
  } else if (kind == 1) {
    mem(b, w == 2, w == 8, (const uint8_t[]){w == 1 ? 0x88 : 0x89}, 1, reg, abase, aindex, adisp);
  } else {
    mem(b, w == 2, w == 8, (const uint8_t[]){w == 1 ? 0xc6 : 0xc7}, 1, 0, abase, aindex, adisp);
    if (w == 1) u8(b, (uint8_t)imm);
    else if (w == 2) {
      uint16_t v = (uint16_t)imm;
      put(b, &v, 2);
    } else u32(b, (uint32_t)imm);
  }
}

/* shift dst by src (x86 masks the count as eBPF does: 63, or 31 for 32 bits) through cl */
static void shift_x(buf *b, int w, int digit, int dst, int src) {
  mov_rr(b, 1, R10, dst);
  mov_rr(b, 1, R11, RCX);
  mov_rr(b, 1, RCX, src);
  rex(b, w, 0, 0, R10);
  u8(b, 0xd3);
  u8(b, (uint8_t)(0xc0 | (digit << 3) | (R10 & 7)));
  mov_rr(b, 1, RCX, R11);
  mov_rr(b, w, dst, R10);
}

static const uint8_t ALU_RR[16] = {[0x0] = 0x01, [0x1] = 0x29, [0x4] = 0x09, [0x5] = 0x21, [0xa] = 0x31};
static const int ALU_DIGIT[16] = {[0x0] = 0, [0x1] = 5, [0x4] = 1, [0x5] = 4, [0xa] = 6};
static const int SHIFT_DIGIT[16] = {[0x6] = 4, [0x7] = 5, [0xc] = 7};
static const int JCC[16] = {[0x1] = CC_E, [0x2] = CC_A, [0x3] = CC_AE, [0x4] = CC_NE, [0x5] = CC_NE, [0x6] = CC_G, [0x7] = CC_GE,
                            [0xa] = CC_B, [0xb] = CC_BE, [0xc] = CC_L, [0xd] = CC_LE};

static int insn_emit(jit *j, const ebpf_vm_prog *p, uint32_t pc) {
  buf *b = &j->b;
  const insn *i = &p->code[pc];
  const uint8_t op = i->real;
  const int cls = op & 7, code = op >> 4, x = (op & 8) != 0;
  const int d = M[i->dst], s = M[i->src];
  const int32_t c = p->cost[pc];
  if (i->kind == K_LOCAL || i->kind == K_TAIL || i->kind == K_CALLX) return EBPF_JIT_UNSUPPORTED;
  if (c > 0) { /* sub qword [st+budget], c */
    rex(b, 1, 0, 0, ST);
    u8(b, 0x81);
    modrm_mem(b, 5, ST, -1, OFF(budget));
    u32(b, (uint32_t)c);
  } else if (c < 0) { /* a loop header: add, and stop when it went negative */
    rex(b, 1, 0, 0, ST);
    u8(b, 0x81);
    modrm_mem(b, 0, ST, -1, OFF(budget));
    u32(b, (uint32_t)c);
    size_t ok = jcc(b, CC_NS);
    leave(j, pc, EBPF_VM_F_BUDGET);
    here(b, ok);
  }
  switch (cls) {
    case 0x07: /* ALU64 */
    case 0x04: { /* ALU */
      const int w = cls == 0x07;
      switch (code) {
        case 0x0: case 0x1: case 0x4: case 0x5: case 0xa:
          if (x) rr(b, w, ALU_RR[code], s, d);
          else alu_ri(b, w, ALU_DIGIT[code], d, i->imm);
          return 0;
        case 0x2: /* mul */
          if (x) rr2(b, w, 0x0f, 0xaf, d, s);
          else {
            rex(b, w, d, 0, d);
            u8(b, 0x69);
            u8(b, (uint8_t)(0xc0 | ((d & 7) << 3) | (d & 7)));
            u32(b, (uint32_t)i->imm);
          }
          return 0;
        case 0x6: case 0x7: case 0xc: /* lsh, rsh, arsh */
          if (x) shift_x(b, w, SHIFT_DIGIT[code], d, s);
          else {
            rex(b, w, 0, 0, d);
            u8(b, 0xc1);
            u8(b, (uint8_t)(0xc0 | (SHIFT_DIGIT[code] << 3) | (d & 7)));
            u8(b, (uint8_t)(i->imm & (w ? 63 : 31)));
          }
          return 0;
        case 0x8: /* neg */
          rex(b, w, 0, 0, d);
          u8(b, 0xf7);
          u8(b, (uint8_t)(0xc0 | (3 << 3) | (d & 7)));
          return 0;
        case 0xb: /* mov */
          if (x) {
            if (i->off != 0) break; /* movsx: the slow path */
            mov_rr(b, w, d, s);
          } else if (w) { /* mov r64, imm32 (sign-extended) */
            rex(b, 1, 0, 0, d);
            u8(b, 0xc7);
            u8(b, (uint8_t)(0xc0 | (d & 7)));
            u32(b, (uint32_t)i->imm);
          } else mov_ri32(b, d, (uint32_t)i->imm);
          return 0;
        default: break; /* div, mod, movsx, byte swaps: the slow path */
      }
      slow(j, pc);
      return 0;
    }
    case 0x05: /* JMP */
    case 0x06: { /* JMP32 */
      const int w = cls == 0x05;
      if (code == 0x0) { /* ja */
        to_slot(j, jmp(b), pc + 1 + (uint32_t)(cls == 0x05 ? (int32_t)i->off : i->imm));
        return 0;
      }
      if (code == 0x8) { /* a helper (local calls, tail calls and callx are refused above) */
        helper(j, p, pc);
        return 0;
      }
      if (code == 0x9) { /* exit */
        rex(b, 1, 0, 0, ST); /* cmp qword [st+budget], 0 */
        u8(b, 0x81);
        modrm_mem(b, 7, ST, -1, OFF(budget));
        u32(b, 0);
        size_t ok = jcc(b, CC_GE);
        leave(j, pc, EBPF_VM_F_BUDGET);
        here(b, ok);
        st_st(b, RAX, OFF(R));
        rr(b, 0, 0x31, RAX, RAX); /* xor eax, eax: DONE */
        patch(b, jmp(b), j->ret);
        return 0;
      }
      if (code == 0x4) { /* jset: test */
        if (x) rr(b, w, 0x85, s, d);
        else {
          rex(b, w, 0, 0, d);
          u8(b, 0xf7);
          u8(b, (uint8_t)(0xc0 | (d & 7)));
          u32(b, (uint32_t)i->imm);
        }
      } else if (x) rr(b, w, 0x39, s, d);
      else alu_ri(b, w, 7, d, i->imm);
      to_slot(j, jcc(b, JCC[code]), pc + 1 + (uint32_t)(int32_t)i->off);
      return 0;
    }
    case 0x00: /* lddw, LD_ABS, LD_IND */
      if (op == 0x18) mov_ri64(b, d, p->k[pc]);
      else slow(j, pc);
      return 0;
    case 0x01: { /* LDX */
      static const uint32_t W[4] = {4, 2, 1, 8};
      access(j, pc, 0, W[(op >> 3) & 3], (op & 0xe0) == 0x80, s, i->off, d, 0);
      return 0;
    }
    case 0x02: { /* ST */
      static const uint32_t W[4] = {4, 2, 1, 8};
      access(j, pc, 2, W[(op >> 3) & 3], 0, d, i->off, 0, i->imm);
      return 0;
    }
    case 0x03: { /* STX; atomics on the slow path */
      static const uint32_t W[4] = {4, 2, 1, 8};
      if ((op & 0xe0) == 0xc0) slow(j, pc);
      else access(j, pc, 1, W[(op >> 3) & 3], 0, d, i->off, s, 0);
      return 0;
    }
  }
  return EBPF_JIT_UNSUPPORTED;
}

int ebpf_jit_emit(const ebpf_vm_prog *p, uint8_t **code, size_t *len) {
  jit j;
  memset(&j, 0, sizeof j);
  j.proof = p->proof;
  j.pos = (size_t *)calloc(p->n, sizeof(size_t));
  j.fx = (fix *)calloc(p->n, sizeof(fix));
  int rc = j.pos == NULL || j.fx == NULL ? EBPF_JIT_NOMEM : EBPF_JIT_OK;
  if (rc == EBPF_JIT_OK) prologue(&j);
  for (uint32_t pc = 0; pc < p->n && rc == EBPF_JIT_OK; pc++) {
    j.pos[pc] = j.b.n;
    if (p->code[pc].kind == K_LDDW2) continue;
    rc = insn_emit(&j, p, pc);
  }
  if (rc == EBPF_JIT_OK && j.b.oom) rc = EBPF_JIT_NOMEM;
  if (rc == EBPF_JIT_OK)
    for (size_t k = 0; k < j.nfx; k++) patch(&j.b, j.fx[k].at, j.pos[j.fx[k].target]);
  free(j.pos);
  free(j.fx);
  if (rc != EBPF_JIT_OK) {
    free(j.b.b);
    return rc;
  }
  *code = j.b.b;
  *len = j.b.n;
  return EBPF_JIT_OK;
}
