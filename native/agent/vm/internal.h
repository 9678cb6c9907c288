/* internal.h: the engine's decoded program, shared by the interpreter (ebpf_vm.c) and the JIT (jit.c,
 * jit_<arch>.c): decoded instructions, basic-block costs, resolved helpers, and the JIT's hook. */
#ifndef EBPF_VM_INTERNAL_H
#define EBPF_VM_INTERNAL_H

#include "ebpf_vm.h"

/* decoded kinds */
enum { K_PLAIN, K_LDDW, K_LDDW2, K_HELPER, K_LOCAL, K_TAIL, K_CALLX };

/* handler ids: the opcode, or one of these (opcodes load never admits) */
#define H_LEADER 0x00
#define H_LOCAL 0x01
#define H_TAIL 0x02

typedef struct insn {
  uint8_t h;    /* what dispatch jumps to: H_LEADER at basic-block leaders, else `real` */
  uint8_t real; /* the handler of the instruction itself */
  uint8_t dst;  /* callx: the register holding the target */
  uint8_t src;
  int16_t off;
  uint8_t kind;
  uint8_t pad;
  int32_t imm;
} insn;

struct ebpf_vm_prog {
  uint32_t n;
  insn *code;
  int32_t *cost;              /* at leaders: instructions charged on arrival (negative at loop headers) */
  uint64_t *k;                /* lddw values */
  ebpf_vm_helper_fn *helpers; /* resolved helpers by slot */
  uint8_t *addr_taken;        /* functions whose address is taken (valid callx targets) */
  ebpf_vm_env env;
  struct ebpf_jit_code *jit;  /* the program's machine code (jit.c), or NULL: the interpreter runs it */
  const char *jit_note;       /* why the JIT left it to the interpreter (not for WBPF_JIT=0 or an arch without one) */
  uint8_t *proof;             /* while the JIT compiles: recproof.h's per-slot marks of a proven program, else NULL */
  int proven;                 /* the compiled code accesses ring records unchecked (ebpf_vm_record_proof) */
  char proof_note[112];       /* why not (empty: never tried) */
};

/* the JIT, when one is linked in (jit.c registers it from a constructor; NULL: interpreter only) */
typedef struct ebpf_vm_jit_ops {
  void (*compile)(ebpf_vm_prog *p);                                     /* at load: sets p->jit or leaves it NULL */
  void (*release)(ebpf_vm_prog *p);                                     /* at free */
  int (*exec)(const ebpf_vm_prog *p, ebpf_vm_run *run, const uint64_t args[5]); /* a run: run->status */
} ebpf_vm_jit_ops;
extern const ebpf_vm_jit_ops *ebpf_vm_jit;

#endif
