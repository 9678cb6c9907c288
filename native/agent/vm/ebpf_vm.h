/* ebpf_vm: a self-contained eBPF engine (RFC 9669) for running programs inside any process (the uprobe
 * agent) with no verifier: load checks every instruction once; a run checks every memory access against
 * the regions it was given and is bounded by an instruction budget. Same semantics as the TypeScript VM. */
#ifndef EBPF_VM_H
#define EBPF_VM_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define EBPF_VM_FRAME_SIZE 512u                 /* bytes of stack per call frame */
#define EBPF_VM_MAX_FRAMES 8u                   /* the entry plus 7 nested bpf-to-bpf calls */
#define EBPF_VM_STACK_SIZE (EBPF_VM_FRAME_SIZE * EBPF_VM_MAX_FRAMES)
#define EBPF_VM_MAX_TAIL_CALLS 33u              /* successful tail calls per run */
#define EBPF_VM_MAX_INSNS 1000000u              /* instruction slots per program */
#define EBPF_VM_CODE_BASE 0xc0de000000000000ull /* lddw code_addr value: CODE_BASE + 8 * slot */
#define EBPF_VM_HELPER_TAIL_CALL 12u            /* bpf_tail_call */

/* load results (ebpf_vm_error.code) */
enum {
  EBPF_VM_OK = 0,
  EBPF_VM_E_INVALID = 1,     /* malformed: bad opcode or register, jump out of range, ... */
  EBPF_VM_E_UNSUPPORTED = 2, /* well formed, but needs what the engine or its environment lacks */
  EBPF_VM_E_NOMEM = 3,
};

/* run results (ebpf_vm_run.status) */
enum {
  EBPF_VM_DONE = 0,        /* the program exited: r0 is the result */
  EBPF_VM_PACKET_EXIT = 1, /* LD_ABS/LD_IND outside the packet: the run ends with r0 = 0 (as the kernel) */
  EBPF_VM_F_MEMORY = 2,    /* a load or store outside every region it may touch (fault.addr/width/write) */
  EBPF_VM_F_BUDGET = 3,    /* the budget ran out (checked at loop headers and exits) */
  EBPF_VM_F_STACK = 4,     /* a call past EBPF_VM_MAX_FRAMES frames */
  EBPF_VM_F_CALL = 5,      /* callx of a value that is neither a function nor a known helper (fault.value) */
  EBPF_VM_F_HELPER = 6,    /* a helper (or the tail-call hook) returned nonzero: the host knows why */
};

#define EBPF_VM_REGION_WRITABLE 1u

/* A range of VM addresses [addr, addr + size) a program may touch, and where its bytes are. In the agent
 * addr == (uintptr_t)host; a host with a separate address space (the Node binding) maps them apart. */
typedef struct ebpf_vm_region {
  uint64_t addr;
  uint64_t size;
  uint8_t *host;
  uint32_t flags; /* EBPF_VM_REGION_WRITABLE */
} ebpf_vm_region;

typedef struct ebpf_vm_prog ebpf_vm_prog;
typedef struct ebpf_vm_run ebpf_vm_run;

/* What a helper (or the tail-call hook) is told about the call it serves. */
typedef struct ebpf_vm_call {
  ebpf_vm_run *run;          /* the helper may replace run->regions / run->stack (see ebpf_vm_run) */
  const ebpf_vm_prog *prog;  /* the program executing the call */
  void *user;                /* that program's env.user */
  uint32_t pc;               /* the call instruction's slot */
  uint32_t id;               /* the helper id (call imm, or the callx value) */
  uint64_t args[5];          /* r1..r5: read-only to the helper (the JIT restores r1..r5 from here after it) */
  uint64_t r0;               /* out: the result */
} ebpf_vm_call;

/* A helper: reads call->args, sets call->r0 and returns 0; nonzero aborts the run (EBPF_VM_F_HELPER).
 * Helpers must check every pointer they are given themselves (against the run's regions). */
typedef int (*ebpf_vm_helper_fn)(ebpf_vm_call *call);
/* A leaf helper (ebpf_vm_env.leaf): r0, from nothing the call passes */
typedef uint64_t (*ebpf_vm_leaf_fn)(void);

/* What a program's external references resolve to; copied at load. Every callback may be NULL. */
typedef struct ebpf_vm_env {
  /* the helper with this id, or NULL: asked at load for every `call id` (unknown ids are refused there)
   * and at run time for callx of a value that is not a function address */
  ebpf_vm_helper_fn (*helper)(void *user, uint32_t id);
  /* lddw src 1/5 (map by fd/index: the value dst receives) and 2/6 (the address of the map's value, to
   * which the engine adds the second imm): 0 and *value set, or nonzero for unknown */
  int (*map)(void *user, uint32_t src, int32_t imm, uint64_t *value);
  /* bpf_tail_call (helper 12 when helper(12) is NULL): *target = the program in slot `index` of prog
   * array `map`, or NULL (the call falls through with r0 = -ENOENT); return nonzero to abort the run.
   * The target must share the caller's address space (it runs on the same regions and stack). */
  int (*tail_call)(ebpf_vm_call *call, uint64_t map, uint32_t index, const ebpf_vm_prog **target);
  void *user;
  /* optional: for helper id, a leaf the JIT may call instead, directly (no ebpf_vm_call): it reads no
   * argument, changes no region or stack, cannot fail and returns what helper(user, id) would set as r0
   * (e.g. bpf_get_current_pid_tgid from a per-thread cache); NULL: none. The interpreter calls the helper */
  ebpf_vm_leaf_fn (*leaf)(void *user, uint32_t id);
  /* optional: for bpf_ringbuf_reserve 131, submit 132 and discard 133, the record variants the JIT calls in a
   * program whose every use of a reserved record the engine proved in bounds at load (vm/recproof.c; the
   * JIT then accesses the record without checks): reserve returns 0 or a record of exactly r2 bytes, writable
   * at VM address == host address, and does NOT make it a region of the run; submit/discard finish such a
   * record (r1 is always one this run reserved and did not finish). NULL (or NULL for an id): no proof, every
   * program keeps the regions path. The interpreter never calls them */
  ebpf_vm_helper_fn (*record)(void *user, uint32_t id);
  /* nonzero: no helper reads call->pc, call->id or run->budget, and none replaces run->stack (the agent's):
   * the JIT then neither stores those three nor re-reads the stack after a call (run->budget is still
   * written when the run ends). 0: every helper call sees them all, as from the interpreter */
  int plain_helpers;
} ebpf_vm_env;

typedef struct ebpf_vm_error {
  int code;          /* EBPF_VM_E_* */
  int32_t pc;        /* the instruction refused, or -1 */
  char message[192]; /* e.g. "jump target 9 out of range (program has 4 slots)" */
} ebpf_vm_error;

/* Decode and check every instruction once (opcodes, registers, r10 read-only, jump/call targets, lddw
 * pairs, no fall-through past the end), resolve helpers and lddw map references through env, and
 * precompute the budget's basic-block costs. Returns EBPF_VM_OK and *out, or an error in *err. */
int ebpf_vm_load(const void *insns, size_t len, const ebpf_vm_env *env, ebpf_vm_prog **out, ebpf_vm_error *err);
void ebpf_vm_free(ebpf_vm_prog *prog);
uint32_t ebpf_vm_length(const ebpf_vm_prog *prog);
/* NULL, or why a JIT linked in left this program to the interpreter ("interpreter: ...") */
const char *ebpf_vm_engine_note(const ebpf_vm_prog *prog);
/* 1 when the JIT runs this program's ring-record accesses unchecked (the record proof held, env.record gave
 * the variants); 0 when not, with *why (if why != NULL) saying why ("slot 12: a record pointer stored to
 * memory", "no bpf_ringbuf_reserve", "interpreter", ...) */
int ebpf_vm_record_proof(const ebpf_vm_prog *prog, const char **why);
void *ebpf_vm_user(const ebpf_vm_prog *prog);

/* One run. The host fills the inputs; the engine writes the outputs. No allocation, no libc calls
 * beyond memcpy; reentrant (state lives here and on the C stack: ~1 KiB per tail call level). */
struct ebpf_vm_run {
  /* inputs */
  const ebpf_vm_region *regions; /* sorted by addr, disjoint; the stack is not one of them */
  uint32_t nregions;
  uint8_t *stack;                /* EBPF_VM_STACK_SIZE bytes (frame 0 at the top); not zeroed by the engine */
  uint64_t stack_addr;           /* the VM address of stack[0] */
  uint64_t packet_addr;          /* what LD_ABS/LD_IND read (size 0: every such load exits) */
  uint64_t packet_size;
  int64_t budget;                /* in: instructions allowed; out: left (steps = in - out) */
  void *data;                    /* the host's, for helpers */
  /* outputs */
  int status;                    /* EBPF_VM_DONE, EBPF_VM_PACKET_EXIT or EBPF_VM_F_* */
  uint64_t r0;
  uint32_t tail_calls;           /* engine-owned: set to 0 by ebpf_vm_exec */
  struct {                       /* written when status != EBPF_VM_DONE (the JIT leaves it alone after DONE) */
    const ebpf_vm_prog *prog;    /* the program that faulted (a tail-call target, maybe) */
    uint32_t pc;
    uint32_t width;              /* memory: bytes accessed */
    int write;                   /* memory: a store */
    uint64_t addr;               /* memory: the 64-bit address */
    uint64_t stack_lo;           /* memory: the lowest stack address the faulting frame could touch */
    uint64_t value;              /* call: the callx value */
  } fault;
};

/* Run prog from its entry with r1..r5 = args (NULL: zeros), r10 = the top of the stack's frame 0.
 * Returns run->status. A helper that changes regions or stack pointers must update run->regions,
 * run->nregions and run->stack before returning; the engine re-reads them after every helper call. */
int ebpf_vm_exec(const ebpf_vm_prog *prog, ebpf_vm_run *run, const uint64_t args[5]);

#ifdef __cplusplus
}
#endif

#endif
