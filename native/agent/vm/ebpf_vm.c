/* ebpf_vm.c: the agent's eBPF engine: load (decode, check, resolve, basic-block costs) and a computed-goto
 * interpreter whose results, faults and step counts are those of backends/userspace/vm/interp.ts (the
 * load checks and their messages follow backends/userspace/vm/program.ts, in the same order). */
#include "ebpf_vm.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"
#include "ops.h"

uint32_t ebpf_vm_length(const ebpf_vm_prog *p) { return p->n; }
void *ebpf_vm_user(const ebpf_vm_prog *p) { return p->env.user; }
const char *ebpf_vm_engine_note(const ebpf_vm_prog *p) { return p->jit_note; }
int ebpf_vm_record_proof(const ebpf_vm_prog *p, const char **why) {
  if (why != NULL) *why = p->proven ? "" : p->proof_note[0] ? p->proof_note : "interpreter";
  return p->proven;
}

const ebpf_vm_jit_ops *ebpf_vm_jit;

void ebpf_vm_free(ebpf_vm_prog *p) {
  if (p == NULL) return;
  if (p->jit != NULL && ebpf_vm_jit != NULL) ebpf_vm_jit->release(p);
  free(p->code);
  free(p->cost);
  free(p->k);
  free(p->helpers);
  free(p->addr_taken);
  free(p);
}

/* ---- load ------------------------------------------------------------------------------------------ */

static int fail(ebpf_vm_error *err, int code, int32_t pc, const char *fmt, ...) {
  if (err != NULL) {
    va_list ap;
    va_start(ap, fmt);
    err->code = code;
    err->pc = pc;
    vsnprintf(err->message, sizeof err->message, fmt, ap);
    va_end(ap);
  }
  return code;
}

/* "0x%x" as JavaScript's `0x${n.toString(16)}` prints an int32 (negative: 0x-5) */
static const char *jshex(char *buf, int32_t v) {
  if (v < 0) snprintf(buf, 16, "0x-%x", (unsigned)(-(int64_t)v));
  else snprintf(buf, 16, "0x%x", (unsigned)v);
  return buf;
}

static int callx_reg(const insn *i) {
  if (i->imm == 0) return i->dst;
  if (i->imm < 0 || i->imm > 10) return -1;
  if (i->dst != 0 && i->dst != i->imm) return -1;
  return i->imm;
}

int ebpf_vm_load(const void *bytes, size_t len, const ebpf_vm_env *env, ebpf_vm_prog **out, ebpf_vm_error *err) {
  static const ebpf_vm_env none = {0};
  const uint8_t *b = (const uint8_t *)bytes;
  char hx[16];
  *out = NULL;
  if (env == NULL) env = &none;
  if (len == 0) return fail(err, EBPF_VM_E_INVALID, -1, "empty program");
  if (len % 8 != 0) return fail(err, EBPF_VM_E_INVALID, -1, "program length %zu is not a multiple of 8 (truncated instruction)", len);
  size_t n = len / 8;
  if (n > EBPF_VM_MAX_INSNS) return fail(err, EBPF_VM_E_INVALID, -1, "program has %zu instructions (limit %u)", n, EBPF_VM_MAX_INSNS);

  ebpf_vm_prog *p = (ebpf_vm_prog *)calloc(1, sizeof *p);
  if (p == NULL) return fail(err, EBPF_VM_E_NOMEM, -1, "out of memory");
  p->n = (uint32_t)n;
  p->env = *env;
  p->code = (insn *)calloc(n, sizeof(insn));
  p->cost = (int32_t *)calloc(n, sizeof(int32_t));
  p->k = (uint64_t *)calloc(n, sizeof(uint64_t));
  p->helpers = (ebpf_vm_helper_fn *)calloc(n, sizeof(ebpf_vm_helper_fn));
  p->addr_taken = (uint8_t *)calloc(n, 1);
  uint8_t *leader = (uint8_t *)calloc(n, 1);
  uint8_t *jt = (uint8_t *)calloc(n, 1);
  int rc = EBPF_VM_OK;
  if (!p->code || !p->cost || !p->k || !p->helpers || !p->addr_taken || !leader || !jt) {
    rc = fail(err, EBPF_VM_E_NOMEM, -1, "out of memory");
    goto done;
  }
  insn *c = p->code;
  for (size_t pc = 0; pc < n; pc++) {
    const uint8_t *s = b + pc * 8;
    c[pc].real = s[0];
    c[pc].dst = s[1] & 0xf;
    c[pc].src = s[1] >> 4;
    c[pc].off = (int16_t)(uint16_t)(s[2] | (s[3] << 8));
    c[pc].imm = (int32_t)((uint32_t)s[4] | ((uint32_t)s[5] << 8) | ((uint32_t)s[6] << 16) | ((uint32_t)s[7] << 24));
  }
#define FAIL(code, pc, ...)                       \
  do {                                            \
    rc = fail(err, code, (int32_t)(pc), __VA_ARGS__); \
    goto done;                                    \
  } while (0)
#define CHECK_TARGET(pc, t, what)                                                                         \
  do {                                                                                                    \
    int64_t t_ = (t);                                                                                     \
    if (t_ < 0 || t_ >= (int64_t)n) FAIL(EBPF_VM_E_INVALID, pc, "%s target %lld out of range (program has %zu slots)", what, (long long)t_, n); \
    if (c[t_].kind == K_LDDW2 || (t_ > 0 && c[t_ - 1].real == 0x18 && c[t_ - 1].kind == K_LDDW))            \
      FAIL(EBPF_VM_E_INVALID, pc, "%s target %lld is the middle of an lddw", what, (long long)t_);         \
  } while (0)

  /* lddw second slots first */
  for (size_t pc = 0; pc < n; pc++) {
    if (c[pc].kind == K_LDDW2) continue;
    if (c[pc].real == 0x18) {
      if (pc + 1 >= n) FAIL(EBPF_VM_E_INVALID, pc, "lddw is truncated (no second slot)");
      if (c[pc + 1].real != 0 || c[pc + 1].dst != 0 || c[pc + 1].src != 0 || c[pc + 1].off != 0)
        FAIL(EBPF_VM_E_INVALID, pc, "lddw second slot must have opcode, registers and offset zero");
      c[pc].kind = K_LDDW;
      c[pc + 1].kind = K_LDDW2;
      pc++;
    }
  }
  /* functions: slot 0, call targets, code_addr targets (marked in leader[] below) */
  leader[0] = 1;
  for (size_t pc = 0; pc < n; pc++) {
    insn *i = &c[pc];
    const uint8_t op = i->real;
    const int d = i->dst, s = i->src;
    const int16_t off = i->off;
    const int32_t imm = i->imm;
    if (i->kind == K_LDDW2) continue;
    if (d > 10) FAIL(EBPF_VM_E_INVALID, pc, "bad destination register r%d", d);
    if (s > 10) FAIL(EBPF_VM_E_INVALID, pc, "bad source register r%d", s);
    const int cls = op & 7;
    switch (cls) {
      case 0x04: /* ALU */
      case 0x07: /* ALU64 */ {
        const int code = op & 0xf0;
        const int x = (op & 0x08) != 0;
        if (d == 10) FAIL(EBPF_VM_E_INVALID, pc, "r10 (the frame pointer) is read-only");
        if (code == 0xd0) {
          if (cls == 0x07 && x) FAIL(EBPF_VM_E_INVALID, pc, "bswap with the source bit set");
          if (imm != 16 && imm != 32 && imm != 64) FAIL(EBPF_VM_E_INVALID, pc, "byte swap width %d (16, 32 or 64)", imm);
          break;
        }
        if (code > 0xd0) FAIL(EBPF_VM_E_INVALID, pc, "unknown ALU opcode %s", jshex(hx, op));
        if (code == 0x80 && x) FAIL(EBPF_VM_E_INVALID, pc, "neg with the source bit set");
        if (code == 0x30 || code == 0x90) {
          if (off != 0 && off != 1) FAIL(EBPF_VM_E_INVALID, pc, "div/mod offset %d (0 unsigned, 1 signed)", off);
        } else if (code == 0xb0) {
          if (off != 0) {
            if (!x) FAIL(EBPF_VM_E_INVALID, pc, "movsx needs a register source");
            if (!(off == 8 || off == 16 || (off == 32 && cls == 0x07))) FAIL(EBPF_VM_E_INVALID, pc, "movsx width %d", off);
          }
        } else if (off != 0) FAIL(EBPF_VM_E_INVALID, pc, "ALU offset %d must be 0", off);
        break;
      }
      case 0x05: /* JMP */
      case 0x06: /* JMP32 */ {
        const int code = op & 0xf0;
        const int x = (op & 0x08) != 0;
        if (code == 0x00) {
          if (x) FAIL(EBPF_VM_E_INVALID, pc, "ja with the source bit set");
          int64_t t = (int64_t)pc + 1 + (cls == 0x05 ? off : imm);
          CHECK_TARGET(pc, t, "jump");
          jt[t] = 1;
        } else if (code == 0x90) {
          if (cls != 0x05 || x) FAIL(EBPF_VM_E_INVALID, pc, "bad exit encoding");
        } else if (code == 0x80) {
          if (cls != 0x05) FAIL(EBPF_VM_E_INVALID, pc, "call in the JMP32 class");
          if (x) {
            int r = callx_reg(i);
            if (r < 0) FAIL(EBPF_VM_E_INVALID, pc, "callx register is not valid");
            i->kind = K_CALLX;
            i->dst = (uint8_t)r;
          } else if (s == 1) {
            int64_t t = (int64_t)pc + 1 + imm;
            CHECK_TARGET(pc, t, "call");
            leader[t] = 1;
            i->kind = K_LOCAL;
          } else if (s == 2) {
            FAIL(EBPF_VM_E_UNSUPPORTED, pc, "calls of kernel functions by BTF id (kfunc %d) are not supported by the userspace VM", imm);
          } else if (s != 0) {
            FAIL(EBPF_VM_E_INVALID, pc, "call with src_reg %d", s);
          } else {
            ebpf_vm_helper_fn h = env->helper ? env->helper(env->user, (uint32_t)imm) : NULL;
            if (h != NULL) {
              p->helpers[pc] = h;
              i->kind = K_HELPER;
            } else if ((uint32_t)imm == EBPF_VM_HELPER_TAIL_CALL && env->tail_call != NULL) {
              i->kind = K_TAIL;
            } else FAIL(EBPF_VM_E_UNSUPPORTED, pc, "unknown helper %d", imm);
          }
        } else if (code > 0xd0) {
          FAIL(EBPF_VM_E_INVALID, pc, "unknown jump opcode %s", jshex(hx, op));
        } else {
          int64_t t = (int64_t)pc + 1 + off;
          CHECK_TARGET(pc, t, "jump");
          jt[t] = 1;
        }
        break;
      }
      case 0x00: /* LD */ {
        if (op == 0x18) {
          if (d == 10) FAIL(EBPF_VM_E_INVALID, pc, "r10 (the frame pointer) is read-only");
          const int32_t next = c[pc + 1].imm;
          uint64_t v = 0;
          switch (s) {
            case 0:
              v = ((uint64_t)(uint32_t)next << 32) | (uint32_t)imm;
              break;
            case 1:
            case 5:
              if (env->map == NULL || env->map(env->user, (uint32_t)s, imm, &v) != 0)
                FAIL(EBPF_VM_E_UNSUPPORTED, pc, "unknown map %s %d", s == 1 ? "fd" : "index", imm);
              if (next != 0) FAIL(EBPF_VM_E_INVALID, pc, "lddw map reference with a nonzero second imm");
              break;
            case 2:
            case 6:
              if (env->map == NULL || env->map(env->user, (uint32_t)s, imm, &v) != 0)
                FAIL(EBPF_VM_E_UNSUPPORTED, pc, "no direct value for map %s %d", s == 2 ? "fd" : "index", imm);
              v += (uint64_t)(int64_t)next;
              break;
            case 4: {
              int64_t t = (int64_t)pc + 1 + imm;
              CHECK_TARGET(pc, t, "code_addr");
              if (next != 0) FAIL(EBPF_VM_E_INVALID, pc, "lddw code_addr with a nonzero second imm");
              leader[t] = 1;
              p->addr_taken[t] = 1;
              v = EBPF_VM_CODE_BASE + (uint64_t)t * 8;
              break;
            }
            case 3:
              FAIL(EBPF_VM_E_UNSUPPORTED, pc, "lddw of a kernel variable by BTF id (src 3) is not supported by the userspace VM");
            default:
              FAIL(EBPF_VM_E_INVALID, pc, "lddw with src_reg %d", s);
          }
          p->k[pc] = v;
          break;
        }
        const int mode = op & 0xe0;
        if ((mode != 0x20 && mode != 0x40) || (op & 0x18) == 0x18) FAIL(EBPF_VM_E_INVALID, pc, "unknown load opcode %s", jshex(hx, op));
        break;
      }
      case 0x01: /* LDX */ {
        if (d == 10) FAIL(EBPF_VM_E_INVALID, pc, "r10 (the frame pointer) is read-only");
        const int mode = op & 0xe0;
        if (mode != 0x60 && !(mode == 0x80 && (op & 0x18) != 0x18)) FAIL(EBPF_VM_E_INVALID, pc, "unknown load opcode %s", jshex(hx, op));
        break;
      }
      case 0x02: /* ST */
        if ((op & 0xe0) != 0x60) FAIL(EBPF_VM_E_INVALID, pc, "unknown store opcode %s", jshex(hx, op));
        break;
      case 0x03: /* STX */ {
        const int mode = op & 0xe0;
        if (mode == 0x60) break;
        if (mode != 0xc0 || ((op & 0x18) != 0x00 && (op & 0x18) != 0x18)) FAIL(EBPF_VM_E_INVALID, pc, "unknown store opcode %s", jshex(hx, op));
        const int32_t base = imm & ~1;
        if (!(imm == 0xe1 || imm == 0xf1 || ((base == 0x00 || base == 0x40 || base == 0x50 || base == 0xa0) && (imm & ~0xf1) == 0)))
          FAIL(EBPF_VM_E_INVALID, pc, "unknown atomic operation %s", jshex(hx, imm));
        if ((imm & 1) != 0 && s == 10) FAIL(EBPF_VM_E_INVALID, pc, "atomic fetch into r10");
        break;
      }
    }
    /* falling off the end */
    if (pc == n - 1 || (i->kind == K_LDDW && pc + 1 == n - 1)) {
      const int is_exit = op == 0x95;
      const int is_ja = (cls == 0x05 || cls == 0x06) && (op & 0xf0) == 0x00;
      if (!is_exit && !is_ja) FAIL(EBPF_VM_E_INVALID, pc, "the last instruction can fall through past the end of the program");
    }
    if (i->kind == K_LDDW) pc++;
  }

  /* leaders: entry, functions (marked above), jump targets, every slot after a jump/exit/branch */
  for (size_t pc = 0; pc < n; pc++) {
    if (jt[pc]) leader[pc] = 1;
    if (c[pc].kind == K_LDDW2) continue;
    const int cls = c[pc].real & 7;
    if ((cls == 0x05 || cls == 0x06) && (c[pc].real & 0xf0) != 0x80 && pc + 1 < n) leader[pc + 1] = 1;
  }
  {
    int64_t start = -1;
    int32_t count = 0;
    for (size_t pc = 0; pc < n; pc++) {
      if (leader[pc]) {
        if (start >= 0) p->cost[start] = count;
        start = (int64_t)pc;
        count = 0;
      }
      if (c[pc].kind != K_LDDW2) count++;
    }
    if (start >= 0) p->cost[start] = count;
  }
  /* loop headers: targets of backward jumps */
  for (size_t pc = 0; pc < n; pc++) {
    if (c[pc].kind == K_LDDW2) continue;
    const uint8_t op = c[pc].real;
    const int cls = op & 7;
    if ((cls != 0x05 && cls != 0x06) || (op & 0xf0) == 0x80 || (op & 0xf0) == 0x90) continue;
    int64_t t = (int64_t)pc + 1 + (cls == 0x06 && (op & 0xf0) == 0x00 ? c[pc].imm : c[pc].off);
    if (t <= (int64_t)pc && p->cost[t] > 0) p->cost[t] = -p->cost[t];
  }
  /* handlers */
  for (size_t pc = 0; pc < n; pc++) {
    insn *i = &c[pc];
    if (i->kind == K_LOCAL) i->real = H_LOCAL;
    else if (i->kind == K_TAIL) i->real = H_TAIL;
    i->h = p->cost[pc] != 0 ? H_LEADER : i->real;
  }
#undef FAIL
#undef CHECK_TARGET
done:
  free(leader);
  free(jt);
  if (rc != EBPF_VM_OK) {
    ebpf_vm_free(p);
    return rc;
  }
  if (ebpf_vm_jit != NULL) ebpf_vm_jit->compile(p);
  *out = p;
  if (err != NULL) {
    err->code = EBPF_VM_OK;
    err->pc = -1;
    err->message[0] = 0;
  }
  return EBPF_VM_OK;
}

/* ---- run ------------------------------------------------------------------------------------------- */

/* where a run's memory is: the stack frames in use and a one-region cache for loads and for stores */
typedef struct mview {
  const ebpf_vm_run *run;
  uint64_t stack_lo, stack_top, stack_addr;
  uint8_t *stack;
  uint64_t rc_addr, rc_size, wc_addr, wc_size;
  uint8_t *rc_host, *wc_host;
} mview;

static inline __attribute__((always_inline)) void mview_reset(mview *m) {
  m->stack = m->run->stack;
  m->rc_size = 0;
  m->wc_size = 0;
}

/* the region an access may use (writable for a store), or NULL */
static const ebpf_vm_region *slow(const ebpf_vm_run *run, uint64_t a, uint32_t w, int write) {
  const ebpf_vm_region *r = find(run, a, w);
  return r == NULL || (write && !(r->flags & EBPF_VM_REGION_WRITABLE)) ? NULL : r;
}

/* the host address of [a, a + w), or NULL (always inlined, so that the view stays in registers) */
static inline __attribute__((always_inline)) uint8_t *at(mview *m, uint64_t a, uint32_t w, int write) {
  if (a - m->stack_lo <= m->stack_top - m->stack_lo - w) return m->stack + (a - m->stack_addr);
  if (write) {
    uint64_t d = a - m->wc_addr;
    if (d < m->wc_size && m->wc_size - d >= w) return m->wc_host + d;
  } else {
    uint64_t d = a - m->rc_addr;
    if (d < m->rc_size && m->rc_size - d >= w) return m->rc_host + d;
  }
  const ebpf_vm_region *r = slow(m->run, a, w, write);
  if (r == NULL) return NULL;
  if (write) {
    m->wc_addr = r->addr;
    m->wc_size = r->size;
    m->wc_host = r->host;
  } else {
    m->rc_addr = r->addr;
    m->rc_size = r->size;
    m->rc_host = r->host;
  }
  return r->host + (a - r->addr);
}


/* LD_ABS / LD_IND: a network-order load from the packet; 0 and *ok = 0 outside it */
static uint32_t packet_load(const ebpf_vm_run *run, int32_t off, uint32_t w, int *ok) {
  *ok = 0;
  if (off < 0 || (uint64_t)off + w > run->packet_size) return 0;
  uint64_t a = run->packet_addr + (uint64_t)off;
  const uint8_t *h;
  if (a - run->stack_addr < EBPF_VM_STACK_SIZE && EBPF_VM_STACK_SIZE - (a - run->stack_addr) >= w) h = run->stack + (a - run->stack_addr);
  else {
    const ebpf_vm_region *r = find(run, a, w);
    if (r == NULL) return 0;
    h = r->host + (a - r->addr);
  }
  *ok = 1;
  if (w == 1) return h[0];
  if (w == 2) return ((uint32_t)h[0] << 8) | h[1];
  return ((uint32_t)h[0] << 24) | ((uint32_t)h[1] << 16) | ((uint32_t)h[2] << 8) | h[3];
}

static int run_prog(const ebpf_vm_prog *p, ebpf_vm_run *run, const uint64_t args[5], uint32_t depth0);

static int fail_at(ebpf_vm_run *run, const ebpf_vm_prog *p, uint32_t pc, int status) {
  run->fault.prog = p;
  run->fault.pc = pc;
  return status;
}

static int fail_mem(ebpf_vm_run *run, const ebpf_vm_prog *p, uint32_t pc, uint64_t a, uint32_t w, int write, uint64_t stack_lo, int64_t budget) {
  run->budget = budget;
  run->fault.addr = a;
  run->fault.width = w;
  run->fault.write = write;
  run->fault.stack_lo = stack_lo;
  return fail_at(run, p, pc, EBPF_VM_F_MEMORY);
}

static const uint64_t zero_args[5] = {0};

/* the interpreter's run (out of line: the JIT's path below stays a few instructions and a jump) */
__attribute__((noinline)) static int interp_exec(const ebpf_vm_prog *p, ebpf_vm_run *run, const uint64_t args[5]) {
  run->tail_calls = 0;
  run->r0 = 0;
  memset(&run->fault, 0, sizeof run->fault);
  run->status = run_prog(p, run, args ? args : zero_args, 0);
  return run->status;
}

int ebpf_vm_exec(const ebpf_vm_prog *p, ebpf_vm_run *run, const uint64_t args[5]) {
  if (p->jit != NULL) return ebpf_vm_jit->exec(p, run, args ? args : zero_args);
  return interp_exec(p, run, args);
}

static int run_prog(const ebpf_vm_prog *p, ebpf_vm_run *run, const uint64_t args[5], uint32_t depth0) {
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Woverride-init"
#pragma GCC diagnostic ignored "-Wpedantic"
  static const void *const T[256] = {
      [0 ... 255] = &&bad,
      [H_LEADER] = &&leader, [H_LOCAL] = &&call_local, [H_TAIL] = &&call_tail,
      [0x07] = &&add64k, [0x17] = &&sub64k, [0x27] = &&mul64k, [0x37] = &&div64k, [0x47] = &&or64k,
      [0x57] = &&and64k, [0x67] = &&lsh64k, [0x77] = &&rsh64k, [0x87] = &&neg64, [0x97] = &&mod64k,
      [0xa7] = &&xor64k, [0xb7] = &&mov64k, [0xc7] = &&arsh64k, [0xd7] = &&bswap,
      [0x0f] = &&add64x, [0x1f] = &&sub64x, [0x2f] = &&mul64x, [0x3f] = &&div64x, [0x4f] = &&or64x,
      [0x5f] = &&and64x, [0x6f] = &&lsh64x, [0x7f] = &&rsh64x, [0x9f] = &&mod64x, [0xaf] = &&xor64x,
      [0xbf] = &&mov64x, [0xcf] = &&arsh64x,
      [0x04] = &&add32k, [0x14] = &&sub32k, [0x24] = &&mul32k, [0x34] = &&div32k, [0x44] = &&or32k,
      [0x54] = &&and32k, [0x64] = &&lsh32k, [0x74] = &&rsh32k, [0x84] = &&neg32, [0x94] = &&mod32k,
      [0xa4] = &&xor32k, [0xb4] = &&mov32k, [0xc4] = &&arsh32k, [0xd4] = &&le,
      [0x0c] = &&add32x, [0x1c] = &&sub32x, [0x2c] = &&mul32x, [0x3c] = &&div32x, [0x4c] = &&or32x,
      [0x5c] = &&and32x, [0x6c] = &&lsh32x, [0x7c] = &&rsh32x, [0x9c] = &&mod32x, [0xac] = &&xor32x,
      [0xbc] = &&mov32x, [0xcc] = &&arsh32x, [0xdc] = &&bswap,
      [0x05] = &&ja, [0x06] = &&ja32,
      [0x15] = &&jeqk, [0x1d] = &&jeqx, [0x55] = &&jnek, [0x5d] = &&jnex, [0x45] = &&jsetk, [0x4d] = &&jsetx,
      [0x25] = &&jgtk, [0x2d] = &&jgtx, [0x35] = &&jgek, [0x3d] = &&jgex, [0xa5] = &&jltk, [0xad] = &&jltx,
      [0xb5] = &&jlek, [0xbd] = &&jlex, [0x65] = &&jsgtk, [0x6d] = &&jsgtx, [0x75] = &&jsgek, [0x7d] = &&jsgex,
      [0xc5] = &&jsltk, [0xcd] = &&jsltx, [0xd5] = &&jslek, [0xdd] = &&jslex,
      [0x16] = &&jeq32k, [0x1e] = &&jeq32x, [0x56] = &&jne32k, [0x5e] = &&jne32x, [0x46] = &&jset32k,
      [0x4e] = &&jset32x, [0x26] = &&jgt32k, [0x2e] = &&jgt32x, [0x36] = &&jge32k, [0x3e] = &&jge32x,
      [0xa6] = &&jlt32k, [0xae] = &&jlt32x, [0xb6] = &&jle32k, [0xbe] = &&jle32x, [0x66] = &&jsgt32k,
      [0x6e] = &&jsgt32x, [0x76] = &&jsge32k, [0x7e] = &&jsge32x, [0xc6] = &&jslt32k, [0xce] = &&jslt32x,
      [0xd6] = &&jsle32k, [0xde] = &&jsle32x,
      [0x85] = &&call_helper, [0x8d] = &&callx, [0x95] = &&exit_,
      [0x18] = &&lddw,
      [0x20] = &&ldabs, [0x28] = &&ldabs, [0x30] = &&ldabs, [0x40] = &&ldabs, [0x48] = &&ldabs, [0x50] = &&ldabs,
      [0x61] = &&ldxw, [0x69] = &&ldxh, [0x71] = &&ldxb, [0x79] = &&ldxdw,
      [0x81] = &&ldxsw, [0x89] = &&ldxsh, [0x91] = &&ldxsb,
      [0x62] = &&stw, [0x6a] = &&sth, [0x72] = &&stb, [0x7a] = &&stdw,
      [0x63] = &&stxw, [0x6b] = &&stxh, [0x73] = &&stxb, [0x7b] = &&stxdw,
      [0xc3] = &&atomic32, [0xdb] = &&atomic64,
  };
#pragma GCC diagnostic pop
  const insn *const code = p->code;
  uint64_t R[11] = {0};
  uint64_t saved[EBPF_VM_MAX_FRAMES][9];
  uint32_t ret[EBPF_VM_MAX_FRAMES];
  uint32_t sp = 0;
  uint32_t depth = depth0;
  int64_t budget = run->budget;
  uint32_t pc = 0;
  uint8_t *h;
  uint64_t a;
  mview m;
  ebpf_vm_call call;
  for (int k = 0; k < 5; k++) R[k + 1] = args[k];
  memset(&m, 0, sizeof m);
  m.run = run;
  m.stack_addr = run->stack_addr;
  m.stack_top = run->stack_addr + EBPF_VM_STACK_SIZE;
  R[10] = m.stack_top - (uint64_t)depth * EBPF_VM_FRAME_SIZE;
  m.stack_lo = R[10] - EBPF_VM_FRAME_SIZE;
  mview_reset(&m);

#define DISPATCH() goto *T[code[pc].h]
#define NEXT()    \
  do {            \
    pc++;         \
    DISPATCH();   \
  } while (0)
#define I (&code[pc])
#define DST R[I->dst]
#define SRC R[I->src]
#define KS ((uint64_t)(int64_t)I->imm)
#define KU ((uint32_t)I->imm)
#define BR(cond)                      \
  do {                                \
    if (cond) pc += (uint32_t)(int32_t)I->off; \
    NEXT();                           \
  } while (0)
#define W32(expr)                     \
  do {                                \
    DST = (uint32_t)(expr);           \
    NEXT();                           \
  } while (0)
#define ADDR(reg) ((reg) + (uint64_t)(int64_t)I->off)
#define LOAD(w, reg)                         \
  a = ADDR(reg);                             \
  h = at(&m, a, w, 0);                       \
  if (h == NULL) goto fault_memory_##w##_r;
#define STORE(w, reg)                        \
  a = ADDR(reg);                             \
  h = at(&m, a, w, 1);                       \
  if (h == NULL) goto fault_memory_##w##_w;

  DISPATCH();

leader: {
  int32_t c = p->cost[pc];
  if (c > 0) budget -= c;
  else {
    budget += c;
    if (budget < 0) goto fault_budget;
  }
  goto *T[code[pc].real];
}

  /* ALU64 */
add64k: DST += KS; NEXT();
sub64k: DST -= KS; NEXT();
mul64k: DST *= KS; NEXT();
div64k: DST = div64(DST, KS, I->off == 1); NEXT();
or64k: DST |= KS; NEXT();
and64k: DST &= KS; NEXT();
lsh64k: DST <<= (I->imm & 63); NEXT();
rsh64k: DST >>= (I->imm & 63); NEXT();
neg64: DST = (uint64_t)0 - DST; NEXT();
mod64k: DST = mod64(DST, KS, I->off == 1); NEXT();
xor64k: DST ^= KS; NEXT();
mov64k: DST = KS; NEXT();
arsh64k: DST = (uint64_t)((int64_t)DST >> (I->imm & 63)); NEXT();
add64x: DST += SRC; NEXT();
sub64x: DST -= SRC; NEXT();
mul64x: DST *= SRC; NEXT();
div64x: DST = div64(DST, SRC, I->off == 1); NEXT();
or64x: DST |= SRC; NEXT();
and64x: DST &= SRC; NEXT();
lsh64x: DST <<= (SRC & 63); NEXT();
rsh64x: DST >>= (SRC & 63); NEXT();
mod64x: DST = mod64(DST, SRC, I->off == 1); NEXT();
xor64x: DST ^= SRC; NEXT();
mov64x:
  switch (I->off) {
    case 0: DST = SRC; break;
    case 8: DST = (uint64_t)(int64_t)(int8_t)SRC; break;
    case 16: DST = (uint64_t)(int64_t)(int16_t)SRC; break;
    default: DST = (uint64_t)(int64_t)(int32_t)SRC; break;
  }
  NEXT();
arsh64x: DST = (uint64_t)((int64_t)DST >> (SRC & 63)); NEXT();
bswap:
  if (I->imm == 16) DST = bswap16((uint16_t)DST);
  else if (I->imm == 32) DST = bswap32((uint32_t)DST);
  else DST = bswap64(DST);
  NEXT();
  /* ALU32 */
add32k: W32((uint32_t)DST + KU);
sub32k: W32((uint32_t)DST - KU);
mul32k: W32((uint32_t)DST * KU);
div32k: W32(div32((uint32_t)DST, KU, I->off == 1));
or32k: W32((uint32_t)DST | KU);
and32k: W32((uint32_t)DST & KU);
lsh32k: W32((uint32_t)DST << (KU & 31));
rsh32k: W32((uint32_t)DST >> (KU & 31));
neg32: W32((uint32_t)0 - (uint32_t)DST);
mod32k: W32(mod32((uint32_t)DST, KU, I->off == 1));
xor32k: W32((uint32_t)DST ^ KU);
mov32k: W32(KU);
arsh32k: W32((int32_t)(uint32_t)DST >> (KU & 31));
le:
  if (I->imm == 16) DST = (uint16_t)DST;
  else if (I->imm == 32) DST = (uint32_t)DST;
  NEXT();
add32x: W32((uint32_t)DST + (uint32_t)SRC);
sub32x: W32((uint32_t)DST - (uint32_t)SRC);
mul32x: W32((uint32_t)DST * (uint32_t)SRC);
div32x: W32(div32((uint32_t)DST, (uint32_t)SRC, I->off == 1));
or32x: W32((uint32_t)DST | (uint32_t)SRC);
and32x: W32((uint32_t)DST & (uint32_t)SRC);
lsh32x: W32((uint32_t)DST << (SRC & 31));
rsh32x: W32((uint32_t)DST >> (SRC & 31));
mod32x: W32(mod32((uint32_t)DST, (uint32_t)SRC, I->off == 1));
xor32x: W32((uint32_t)DST ^ (uint32_t)SRC);
mov32x:
  if (I->off == 8) W32((int32_t)(int8_t)SRC);
  if (I->off == 16) W32((int32_t)(int16_t)SRC);
  W32(SRC);
arsh32x: W32((int32_t)(uint32_t)DST >> (SRC & 31));

  /* JMP */
ja: pc += (uint32_t)(int32_t)I->off; NEXT();
ja32: pc += (uint32_t)I->imm; NEXT();
jeqk: BR(DST == KS);
jeqx: BR(DST == SRC);
jnek: BR(DST != KS);
jnex: BR(DST != SRC);
jsetk: BR((DST & KS) != 0);
jsetx: BR((DST & SRC) != 0);
jgtk: BR(DST > KS);
jgtx: BR(DST > SRC);
jgek: BR(DST >= KS);
jgex: BR(DST >= SRC);
jltk: BR(DST < KS);
jltx: BR(DST < SRC);
jlek: BR(DST <= KS);
jlex: BR(DST <= SRC);
jsgtk: BR((int64_t)DST > (int64_t)KS);
jsgtx: BR((int64_t)DST > (int64_t)SRC);
jsgek: BR((int64_t)DST >= (int64_t)KS);
jsgex: BR((int64_t)DST >= (int64_t)SRC);
jsltk: BR((int64_t)DST < (int64_t)KS);
jsltx: BR((int64_t)DST < (int64_t)SRC);
jslek: BR((int64_t)DST <= (int64_t)KS);
jslex: BR((int64_t)DST <= (int64_t)SRC);
  /* JMP32 */
jeq32k: BR((uint32_t)DST == KU);
jeq32x: BR((uint32_t)DST == (uint32_t)SRC);
jne32k: BR((uint32_t)DST != KU);
jne32x: BR((uint32_t)DST != (uint32_t)SRC);
jset32k: BR(((uint32_t)DST & KU) != 0);
jset32x: BR(((uint32_t)DST & (uint32_t)SRC) != 0);
jgt32k: BR((uint32_t)DST > KU);
jgt32x: BR((uint32_t)DST > (uint32_t)SRC);
jge32k: BR((uint32_t)DST >= KU);
jge32x: BR((uint32_t)DST >= (uint32_t)SRC);
jlt32k: BR((uint32_t)DST < KU);
jlt32x: BR((uint32_t)DST < (uint32_t)SRC);
jle32k: BR((uint32_t)DST <= KU);
jle32x: BR((uint32_t)DST <= (uint32_t)SRC);
jsgt32k: BR((int32_t)DST > I->imm);
jsgt32x: BR((int32_t)DST > (int32_t)SRC);
jsge32k: BR((int32_t)DST >= I->imm);
jsge32x: BR((int32_t)DST >= (int32_t)SRC);
jslt32k: BR((int32_t)DST < I->imm);
jslt32x: BR((int32_t)DST < (int32_t)SRC);
jsle32k: BR((int32_t)DST <= I->imm);
jsle32x: BR((int32_t)DST <= (int32_t)SRC);

  /* calls and exit */
call_helper: {
  ebpf_vm_helper_fn fn = p->helpers[pc];
  call.id = (uint32_t)I->imm;
helper_call:
  call.run = run;
  call.prog = p;
  call.user = p->env.user;
  call.pc = pc;
  for (int k = 0; k < 5; k++) call.args[k] = R[k + 1];
  call.r0 = 0;
  run->budget = budget;
  if (fn(&call) != 0) goto fault_helper;
  R[0] = call.r0;
  mview_reset(&m);
  NEXT();
callx: {
  uint64_t v = DST;
  uint64_t rel = v - EBPF_VM_CODE_BASE;
  if ((rel & 7) == 0 && rel / 8 < p->n && p->addr_taken[rel / 8]) {
    a = rel / 8;
    goto do_call;
  }
  fn = v <= 0x7fffffffu && p->env.helper != NULL ? p->env.helper(p->env.user, (uint32_t)v) : NULL;
  if (fn == NULL) {
    run->fault.value = v;
    run->budget = budget;
    return fail_at(run, p, pc, EBPF_VM_F_CALL);
  }
  call.id = (uint32_t)v;
  goto helper_call;
}
}
call_local:
  a = pc + 1 + (uint32_t)I->imm;
do_call:
  if (depth + 1 >= EBPF_VM_MAX_FRAMES) {
    run->budget = budget;
    return fail_at(run, p, pc, EBPF_VM_F_STACK);
  }
  for (int r = 0; r < 9; r++) saved[sp][r] = R[r + 1];
  ret[sp] = pc + 1;
  sp++;
  depth++;
  R[0] = 0;
  R[6] = R[7] = R[8] = R[9] = 0;
  R[10] = m.stack_top - (uint64_t)depth * EBPF_VM_FRAME_SIZE;
  m.stack_lo = R[10] - EBPF_VM_FRAME_SIZE;
  pc = (uint32_t)a;
  DISPATCH();
call_tail: {
  const ebpf_vm_prog *target = NULL;
  if (run->tail_calls < EBPF_VM_MAX_TAIL_CALLS) {
    call.run = run;
    call.prog = p;
    call.user = p->env.user;
    call.pc = pc;
    call.id = EBPF_VM_HELPER_TAIL_CALL;
    for (int k = 0; k < 5; k++) call.args[k] = R[k + 1];
    call.r0 = 0;
    run->budget = budget;
    if (p->env.tail_call(&call, R[2], (uint32_t)R[3], &target) != 0) goto fault_helper;
    if (target != NULL) run->tail_calls++;
  }
  if (target == NULL) {
    R[0] = (uint64_t)-2;
    mview_reset(&m);
    NEXT();
  }
  uint64_t targs[5] = {R[1], 0, 0, 0, 0};
  run->budget = budget;
  int st = run_prog(target, run, targs, depth);
  if (st != EBPF_VM_DONE) return st;
  budget = run->budget;
  mview_reset(&m);
  R[0] = run->r0;
  /* the current frame ends here with the target's r0 */
  if (sp == 0) return EBPF_VM_DONE;
  goto pop;
}
exit_:
  if (budget < 0) goto fault_budget;
  if (sp == 0) {
    run->budget = budget;
    run->r0 = R[0];
    return EBPF_VM_DONE;
  }
pop:
  sp--;
  for (int r = 0; r < 9; r++) R[r + 1] = saved[sp][r];
  pc = ret[sp];
  depth--;
  R[10] = m.stack_top - (uint64_t)depth * EBPF_VM_FRAME_SIZE;
  m.stack_lo = R[10] - EBPF_VM_FRAME_SIZE;
  DISPATCH();

lddw:
  DST = p->k[pc];
  pc += 2;
  DISPATCH();
ldabs: {
  const uint8_t op = I->real;
  const uint32_t w = op & 0x10 ? 1 : op & 0x08 ? 2 : 4;
  const int32_t off = op & 0x40 ? (int32_t)((uint32_t)SRC + (uint32_t)I->imm) : I->imm;
  int ok;
  run->budget = budget;
  uint32_t v = packet_load(run, off, w, &ok);
  if (!ok) {
    run->r0 = 0;
    return EBPF_VM_PACKET_EXIT;
  }
  R[0] = v;
  NEXT();
}

  /* LDX */
ldxw: LOAD(4, SRC) DST = ld32(h); NEXT();
ldxh: LOAD(2, SRC) DST = ld16(h); NEXT();
ldxb: LOAD(1, SRC) DST = *h; NEXT();
ldxdw: LOAD(8, SRC) DST = ld64(h); NEXT();
ldxsw: LOAD(4, SRC) DST = (uint64_t)(int64_t)(int32_t)ld32(h); NEXT();
ldxsh: LOAD(2, SRC) DST = (uint64_t)(int64_t)(int16_t)ld16(h); NEXT();
ldxsb: LOAD(1, SRC) DST = (uint64_t)(int64_t)(int8_t)*h; NEXT();
  /* ST, STX */
stw: STORE(4, DST) st32(h, KU); NEXT();
sth: STORE(2, DST) st16(h, (uint16_t)KU); NEXT();
stb: STORE(1, DST) *h = (uint8_t)KU; NEXT();
stdw: STORE(8, DST) st64(h, KS); NEXT();
stxw: STORE(4, DST) st32(h, (uint32_t)SRC); NEXT();
stxh: STORE(2, DST) st16(h, (uint16_t)SRC); NEXT();
stxb: STORE(1, DST) *h = (uint8_t)SRC; NEXT();
stxdw: STORE(8, DST) st64(h, SRC); NEXT();
atomic32: {
  STORE(4, DST)
  const int32_t op = I->imm;
  uint32_t old = rmw32(h, op, (uint32_t)SRC, (uint32_t)R[0]);
  if (op == 0xf1) R[0] = old;
  else if (op & 1) SRC = old;
  NEXT();
}
atomic64: {
  STORE(8, DST)
  const int32_t op = I->imm;
  uint64_t old = rmw64(h, op, SRC, R[0]);
  if (op == 0xf1) R[0] = old;
  else if (op & 1) SRC = old;
  NEXT();
}

fault_memory_1_r: return fail_mem(run, p, pc, a, 1, 0, m.stack_lo, budget);
fault_memory_2_r: return fail_mem(run, p, pc, a, 2, 0, m.stack_lo, budget);
fault_memory_4_r: return fail_mem(run, p, pc, a, 4, 0, m.stack_lo, budget);
fault_memory_8_r: return fail_mem(run, p, pc, a, 8, 0, m.stack_lo, budget);
fault_memory_1_w: return fail_mem(run, p, pc, a, 1, 1, m.stack_lo, budget);
fault_memory_2_w: return fail_mem(run, p, pc, a, 2, 1, m.stack_lo, budget);
fault_memory_4_w: return fail_mem(run, p, pc, a, 4, 1, m.stack_lo, budget);
fault_memory_8_w: return fail_mem(run, p, pc, a, 8, 1, m.stack_lo, budget);
fault_budget:
  run->budget = budget;
  return fail_at(run, p, pc, EBPF_VM_F_BUDGET);
fault_helper:
  return fail_at(run, p, pc, EBPF_VM_F_HELPER);
bad: /* load admits nothing else */
  run->budget = budget;
  return fail_at(run, p, pc, EBPF_VM_F_CALL);
#undef DISPATCH
#undef NEXT
#undef I
#undef DST
#undef SRC
#undef KS
#undef KU
#undef BR
#undef W32
#undef ADDR
#undef LOAD
#undef STORE
}
