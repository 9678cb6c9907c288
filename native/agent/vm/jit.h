/* jit.h: the arch-neutral side of the engine's JIT: the state a compiled program runs on (its registers'
 * spill slots, budget, memory view, a helper call), the emitter each arch provides (jit_<arch>.c) and the C
 * slow paths compiled code calls for what it does not inline (a fault's record, division, atomics, ...). */
#ifndef EBPF_VM_JIT_H
#define EBPF_VM_JIT_H

#include <stddef.h>
#include <stdint.h>

#include "internal.h"

/* What compiled code reads and writes while it runs (one per run, on the C stack). The emitter addresses
 * the fields by offsetof. Memory checks: an access of width w at VM address a is
 *   in the stack   when a - stack_lo < stack_end[log2 w]  (host: a + stack_delta)
 *   in the region a load (rc_*) or a store (wc_*) used last when a - addr < end[log2 w] (host: a + delta)
 * where end = size - w + 1 (0 when nothing is cached or the region is smaller than w); anything else searches
 * the run's region table as the interpreter does and refills the cache (ebpf_jit_miss records a fault). */
typedef struct ebpf_jit_state {
  uint64_t R[11];       /* r0..r10 while the slow path runs */
  int64_t budget;       /* as the interpreter's: charged at basic-block leaders */
  uint64_t stack_lo, stack_delta, stack_end[4];
  uint64_t rc_addr, rc_delta, rc_end[4];
  uint64_t wc_addr, wc_delta, wc_end[4];
  uint64_t saved_sp;    /* the machine stack pointer after the prologue (fault exits restore it) */
  uint32_t fault_pc;    /* the instruction that ended the run with a fault */
  uint32_t pad;
  uint64_t stack_addr, stack_top;
  ebpf_vm_run *run;
  const ebpf_vm_prog *prog;
  ebpf_vm_call call;    /* a helper's: compiled code fills it (r1..r5, slot, id) and calls the helper */
} ebpf_jit_state;

/* compiled code: int entry(ebpf_jit_state *st, const uint64_t args[5]), r1..r5 = args (st->R[1..5] are not
 * read: the slow paths write them before they read them), returns the run status (r0 in st->R[0] when DONE) */
typedef int (*ebpf_jit_entry)(ebpf_jit_state *st, const uint64_t *args);

/* The arch's emitter: the program's machine code in *code (malloc'ed, position independent), or nonzero
 * when it cannot compile this program (local calls, tail calls, callx) or this arch has no JIT. */
enum { EBPF_JIT_OK = 0, EBPF_JIT_UNSUPPORTED = 1, EBPF_JIT_NOMEM = 2, EBPF_JIT_NOARCH = 3 };
int ebpf_jit_emit(const ebpf_vm_prog *p, uint8_t **code, size_t *len);

/* A load's or store's miss of the inline checks: the host address of [a, a + w) checked as the interpreter
 * checks it (and the cache refilled), or NULL after recording the fault. how = pc | log2(w) << 28 | write << 27. */
uint8_t *ebpf_jit_miss(ebpf_jit_state *st, uint64_t a, uint32_t how);

/* Runs instruction pc on st->R with the interpreter's semantics (the instruction's own charge is already
 * taken); 0, or the run's status when it ends the run (a fault, the packet exit). */
int ebpf_jit_slow(ebpf_jit_state *st, uint32_t pc);

/* What the JIT did with the programs loaded so far in this process (for --verbose and the tests). */
typedef struct ebpf_vm_jit_stats {
  uint64_t compiled;    /* programs that run as machine code */
  uint64_t unsupported; /* programs the emitter refused (they run on the interpreter) */
  uint64_t nomem;       /* no executable memory (mmap or mprotect refused): the interpreter runs them */
  uint64_t disabled;    /* loaded with WBPF_JIT=0, or on an arch without a JIT */
} ebpf_vm_jit_stats;
void ebpf_vm_jit_get_stats(ebpf_vm_jit_stats *out);

#endif
