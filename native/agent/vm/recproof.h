/* recproof.h: the ring-record proof (recproof.c), a conservative forward dataflow pass over a loaded program
 * that shows every use of a bpf_ringbuf_reserve record stays inside it, so the JIT may access the record
 * without checks and call the host's record variants of reserve/submit/discard (ebpf_vm_env.record), which
 * keep the record out of the run's region table. Anything the pass does not understand: not proven, and the
 * program runs exactly as before (regions, checked accesses). */
#ifndef EBPF_VM_RECPROOF_H
#define EBPF_VM_RECPROOF_H

#include "internal.h"

/* per-slot marks of a proven program */
enum {
  RP_NONE = 0,    /* as before */
  RP_DIRECT = 1,  /* a load/store through a proven record, in bounds: no check needed */
  RP_CHECKED = 2, /* a load/store through anything else (internal: a slot seen both ways is not proven) */
  RP_RECORD = 3,  /* a call of helper 131/132/133: the record variant */
};

#define RP_MAX_SLOTS 32768u /* longer programs are not proven (the pass keeps a state per slot) */
#define RP_MAX_SITES 64u    /* reserve call slots per program */

/* 1 and mark[0..n) filled when the program reserves records and every use of them is proven; 0 when not,
 * with why (at most n_why bytes, e.g. "slot 12: a record pointer stored to memory"). mark: p->n bytes. */
int ebpf_recproof(const ebpf_vm_prog *p, uint8_t *mark, char *why, size_t n_why);

#endif
