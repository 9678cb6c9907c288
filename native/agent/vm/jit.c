/* jit.c: the JIT's arch-neutral side: compile at load (WBPF_JIT=0 turns it off; executable memory is mapped
 * RW, written, then made RX, never RWX; any refusal leaves the program on the interpreter, counted), free
 * with the program, the run wrapper, and the slow paths compiled code calls (interpreter semantics). */
#include "jit.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "ops.h"
#include "recproof.h"

struct ebpf_jit_code {
  ebpf_jit_entry entry;
  void *mem;
  size_t size;
};

static ebpf_vm_jit_stats stats;

void ebpf_vm_jit_get_stats(ebpf_vm_jit_stats *out) {
  out->compiled = __atomic_load_n(&stats.compiled, __ATOMIC_RELAXED);
  out->unsupported = __atomic_load_n(&stats.unsupported, __ATOMIC_RELAXED);
  out->nomem = __atomic_load_n(&stats.nomem, __ATOMIC_RELAXED);
  out->disabled = __atomic_load_n(&stats.disabled, __ATOMIC_RELAXED);
}

static void count(uint64_t *c) { __atomic_fetch_add(c, 1, __ATOMIC_RELAXED); }

static void jit_compile(ebpf_vm_prog *p) {
  const char *env = getenv("WBPF_JIT");
  if (env != NULL && strcmp(env, "0") == 0) {
    count(&stats.disabled);
    return;
  }
  /* the ring-record proof (recproof.c), when the host has the record variants of every ring helper it calls */
  uint8_t *marks = NULL;
  if (p->env.record == NULL) snprintf(p->proof_note, sizeof p->proof_note, "no record variants in the environment");
  else if ((marks = (uint8_t *)calloc(p->n ? p->n : 1, 1)) == NULL) snprintf(p->proof_note, sizeof p->proof_note, "out of memory");
  else if (ebpf_recproof(p, marks, p->proof_note, sizeof p->proof_note)) {
    p->proof = marks;
    for (uint32_t pc = 0; pc < p->n; pc++)
      if (marks[pc] == RP_RECORD && p->env.record(p->env.user, (uint32_t)p->code[pc].imm) == NULL) {
        snprintf(p->proof_note, sizeof p->proof_note, "slot %u: no record variant of helper %d", pc, p->code[pc].imm);
        p->proof = NULL;
        break;
      }
  }
  uint8_t *code = NULL;
  size_t len = 0;
  int rc = ebpf_jit_emit(p, &code, &len);
  const int proven = rc == EBPF_JIT_OK && p->proof != NULL;
  p->proof = NULL;
  free(marks);
  if (rc != EBPF_JIT_OK) p->proof_note[0] = 0;
  if (rc != EBPF_JIT_OK) {
    free(code);
    count(rc == EBPF_JIT_NOARCH ? &stats.disabled : rc == EBPF_JIT_NOMEM ? &stats.nomem : &stats.unsupported);
    if (rc == EBPF_JIT_UNSUPPORTED) p->jit_note = "interpreter: the JIT does not compile bpf-to-bpf calls, tail calls or callx";
    else if (rc == EBPF_JIT_NOMEM) p->jit_note = "interpreter: out of memory for the JIT";
    return;
  }
  struct ebpf_jit_code *j = (struct ebpf_jit_code *)calloc(1, sizeof *j);
  size_t size = (len + 4095) & ~(size_t)4095;
  void *mem = j != NULL ? mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0) : MAP_FAILED;
  if (mem == MAP_FAILED) {
    free(j);
    free(code);
    count(&stats.nomem);
    p->jit_note = "interpreter: no executable memory (mmap refused)";
    return;
  }
  memcpy(mem, code, len);
  free(code);
  if (mprotect(mem, size, PROT_READ | PROT_EXEC) != 0) {
    munmap(mem, size);
    free(j);
    count(&stats.nomem);
    p->jit_note = "interpreter: no executable memory (mprotect to read-execute refused)";
    return;
  }
  j->mem = mem;
  j->size = size;
  j->entry = (ebpf_jit_entry)mem;
  p->jit = j;
  p->proven = proven; /* only for machine code that runs: on the interpreter the regions path is the only one */
  count(&stats.compiled);
}

static void jit_release(ebpf_vm_prog *p) {
  munmap(p->jit->mem, p->jit->size);
  free(p->jit);
  p->jit = NULL;
}

static inline void set_end(uint64_t end[4], uint64_t size) {
  if (__builtin_expect(size >= 8, 1)) { /* every width fits: no compare per entry */
    end[0] = size;
    end[1] = size - 1;
    end[2] = size - 3;
    end[3] = size - 7;
    return;
  }
  end[0] = size >= 1 ? size : 0;
  end[1] = size >= 2 ? size - 1 : 0;
  end[2] = size >= 4 ? size - 3 : 0;
  end[3] = size >= 8 ? size - 7 : 0;
}

static int jit_exec(const ebpf_vm_prog *p, ebpf_vm_run *run, const uint64_t args[5]) {
  /* the run's set-up, in as few stores as the compiled code needs (a hit's path: native/agent/test/hit_bench.c,
   * bench/uprobe/ANALYSIS.md): written out field by field (the compiler turned loops and memsets here into
   * loops of their own); a cache whose ends are all 0 never matches, so its addr and delta are left unset
   * (the miss path fills all four before a use); the run's outputs are written once, at the end, and the
   * fault's fields only when the run did not finish */
  ebpf_jit_state st; /* r1..r5: the prologue loads them from args; it zeroes r0, r6..r9 */
  const uint64_t sa = run->stack_addr;
  st.stack_addr = sa;
  st.stack_top = sa + EBPF_VM_STACK_SIZE;
  st.R[10] = st.stack_top;
  st.stack_lo = st.stack_top - EBPF_VM_FRAME_SIZE;
  set_end(st.stack_end, EBPF_VM_FRAME_SIZE);
  st.stack_delta = (uint64_t)(uintptr_t)run->stack - sa;
  st.run = run;
  st.prog = p;
  st.call.run = run;
  st.call.prog = p;
  st.call.user = p->env.user;
  /* the caches start on the first region (a hit's ctx: its first load would miss), else empty */
  if (__builtin_expect(run->nregions > 0, 1)) {
    const ebpf_vm_region *r = &run->regions[0];
    const uint64_t size = r->size, delta = (uint64_t)(uintptr_t)r->host - r->addr;
    st.rc_addr = r->addr;
    st.rc_delta = delta;
    set_end(st.rc_end, size);
    if (r->flags & EBPF_VM_REGION_WRITABLE) {
      st.wc_addr = r->addr;
      st.wc_delta = delta;
      set_end(st.wc_end, size);
    } else {
      st.wc_end[0] = st.wc_end[1] = st.wc_end[2] = st.wc_end[3] = 0;
    }
  } else {
    st.rc_end[0] = st.rc_end[1] = st.rc_end[2] = st.rc_end[3] = 0;
    st.wc_end[0] = st.wc_end[1] = st.wc_end[2] = st.wc_end[3] = 0;
  }
  st.budget = run->budget;
  st.fault_pc = 0;
  int s = p->jit->entry(&st, args);
  run->budget = st.budget;
  run->tail_calls = 0;
  run->status = s;
  if (__builtin_expect(s == EBPF_VM_DONE, 1)) {
    run->r0 = st.R[0];
    return s;
  }
  run->r0 = 0;
  if (s != EBPF_VM_F_MEMORY) { /* fault_mem wrote a memory fault's fields (and only ever ends the run with it) */
    run->fault.width = 0;
    run->fault.write = 0;
    run->fault.addr = run->fault.stack_lo = 0;
  }
  run->fault.value = 0; /* no callx here */
  run->fault.prog = s >= EBPF_VM_F_MEMORY ? p : NULL;
  run->fault.pc = s >= EBPF_VM_F_MEMORY ? st.fault_pc : 0;
  return s;
}

static const ebpf_vm_jit_ops ops = {jit_compile, jit_release, jit_exec};

/* linking this file in turns the JIT on for every program the engine loads */
__attribute__((constructor)) static void jit_register(void) { ebpf_vm_jit = &ops; }

/* ---- the slow path ------------------------------------------------------------------------------------ */

/* the host address of [a, a + w) (the interpreter's at()), refilling the cache the inline check reads */
static uint8_t *jat(ebpf_jit_state *st, uint64_t a, uint32_t w, int write) {
  if (a - st->stack_lo <= st->stack_top - st->stack_lo - w) return (uint8_t *)(uintptr_t)(a + st->stack_delta);
  const ebpf_vm_region *r = find(st->run, a, w);
  if (r == NULL || (write && !(r->flags & EBPF_VM_REGION_WRITABLE))) return NULL;
  if (write) {
    st->wc_addr = r->addr;
    st->wc_delta = (uint64_t)(uintptr_t)r->host - r->addr;
    set_end(st->wc_end, r->size);
  } else {
    st->rc_addr = r->addr;
    st->rc_delta = (uint64_t)(uintptr_t)r->host - r->addr;
    set_end(st->rc_end, r->size);
  }
  return r->host + (a - r->addr);
}

static int fault_mem(ebpf_jit_state *st, uint32_t pc, uint64_t a, uint32_t w, int write) {
  ebpf_vm_run *run = st->run;
  run->fault.addr = a;
  run->fault.width = w;
  run->fault.write = write;
  run->fault.stack_lo = st->stack_lo;
  st->fault_pc = pc;
  return EBPF_VM_F_MEMORY;
}

uint8_t *ebpf_jit_miss(ebpf_jit_state *st, uint64_t a, uint32_t how) {
  const uint32_t w = 1u << (how >> 28), write = (how >> 27) & 1;
  uint8_t *h = jat(st, a, w, (int)write);
  if (h == NULL) fault_mem(st, how & 0x7ffffff, a, w, (int)write);
  return h;
}

int ebpf_jit_slow(ebpf_jit_state *st, uint32_t pc) {
  const ebpf_vm_prog *p = st->prog;
  const insn *i = &p->code[pc];
  uint64_t *R = st->R;
  uint64_t *D = &R[i->dst], *S = &R[i->src];
  const uint64_t KS = (uint64_t)(int64_t)i->imm;
  const uint32_t KU = (uint32_t)i->imm;
  const uint8_t op = i->real;
  const int cls = op & 7;
  uint8_t *h;
  if (cls == 0x01 || cls == 0x02 || cls == 0x03) { /* LDX, ST, STX (atomics too) */
    static const uint32_t W[4] = {4, 2, 1, 8};
    const uint32_t w = W[(op >> 3) & 3];
    const int write = cls != 0x01;
    const uint64_t a = (write ? *D : *S) + (uint64_t)(int64_t)i->off;
    h = jat(st, a, w, write);
    if (h == NULL) return fault_mem(st, pc, a, w, write);
    if (cls == 0x01) {
      uint64_t v = w == 1 ? *h : w == 2 ? ld16(h) : w == 4 ? ld32(h) : ld64(h);
      if ((op & 0xe0) == 0x80) v = w == 1 ? (uint64_t)(int64_t)(int8_t)v : w == 2 ? (uint64_t)(int64_t)(int16_t)v : (uint64_t)(int64_t)(int32_t)v;
      *D = v;
      return 0;
    }
    if ((op & 0xe0) == 0xc0) { /* atomic */
      const int32_t aop = i->imm;
      uint64_t old = w == 4 ? rmw32(h, aop, (uint32_t)*S, (uint32_t)R[0]) : rmw64(h, aop, *S, R[0]);
      if (aop == 0xf1) R[0] = old;
      else if (aop & 1) *S = old;
      return 0;
    }
    const uint64_t v = cls == 0x02 ? KS : *S;
    if (w == 1) *h = (uint8_t)v;
    else if (w == 2) st16(h, (uint16_t)v);
    else if (w == 4) st32(h, (uint32_t)v);
    else st64(h, v);
    return 0;
  }
  if (cls == 0x00) { /* LD_ABS / LD_IND */
    const uint32_t w = op & 0x10 ? 1 : op & 0x08 ? 2 : 4;
    const int32_t off = op & 0x40 ? (int32_t)((uint32_t)*S + (uint32_t)i->imm) : i->imm;
    const ebpf_vm_run *run = st->run;
    if (off < 0 || (uint64_t)off + w > run->packet_size) return EBPF_VM_PACKET_EXIT;
    const uint64_t a = run->packet_addr + (uint64_t)off;
    const uint8_t *ph;
    if (a - run->stack_addr < EBPF_VM_STACK_SIZE && EBPF_VM_STACK_SIZE - (a - run->stack_addr) >= w) ph = run->stack + (a - run->stack_addr);
    else {
      const ebpf_vm_region *r = find(run, a, w);
      if (r == NULL) return EBPF_VM_PACKET_EXIT;
      ph = r->host + (a - r->addr);
    }
    R[0] = w == 1 ? ph[0] : w == 2 ? ((uint32_t)ph[0] << 8) | ph[1] : ((uint32_t)ph[0] << 24) | ((uint32_t)ph[1] << 16) | ((uint32_t)ph[2] << 8) | ph[3];
    return 0;
  }
  const uint64_t s64 = op & 0x08 ? *S : KS;
  const uint32_t s32 = op & 0x08 ? (uint32_t)*S : KU;
  const int sgn = i->off == 1;
  switch (op) {
    case 0x37: case 0x3f: *D = div64(*D, s64, sgn); return 0;
    case 0x97: case 0x9f: *D = mod64(*D, s64, sgn); return 0;
    case 0x34: case 0x3c: *D = div32((uint32_t)*D, s32, sgn); return 0;
    case 0x94: case 0x9c: *D = mod32((uint32_t)*D, s32, sgn); return 0;
    case 0xbf:
      *D = i->off == 8 ? (uint64_t)(int64_t)(int8_t)*S : i->off == 16 ? (uint64_t)(int64_t)(int16_t)*S : i->off == 32 ? (uint64_t)(int64_t)(int32_t)*S : *S;
      return 0;
    case 0xbc:
      *D = i->off == 8 ? (uint32_t)(int32_t)(int8_t)*S : i->off == 16 ? (uint32_t)(int32_t)(int16_t)*S : (uint32_t)*S;
      return 0;
    case 0xd7: case 0xdc:
      *D = i->imm == 16 ? bswap16((uint16_t)*D) : i->imm == 32 ? bswap32((uint32_t)*D) : bswap64(*D);
      return 0;
    case 0xd4:
      if (i->imm == 16) *D = (uint16_t)*D;
      else if (i->imm == 32) *D = (uint32_t)*D;
      return 0;
  }
  st->fault_pc = pc; /* the emitter sends nothing else here */
  return EBPF_VM_F_CALL;
}
