/* recproof.c: the ring-record proof (recproof.h). A forward dataflow pass over the decoded program, the
 * kernel verifier's idea kept small: per register r0..r9 an abstract value, per path the set of reserve
 * sites whose record may be live, iterated to a fixpoint over the control-flow graph.
 *
 *   UNK          anything that is not a record pointer (checked at every access, as always)
 *   CONST(v)     a known scalar (bpf_ringbuf_reserve's size must be one)
 *   NULLREC(s)   what reserve at site s returned: the record, or 0
 *   REC(s, off)  the record of site s plus off, known non-NULL and not yet submitted or discarded
 *   DEAD         was a record pointer, now submitted/discarded (or merged with one): any use but a copy fails
 *
 * Proven: every use of a record-derived value is a load/store [r + insn.off] inside the record (REC only), r1
 * of submit/discard at off 0 (every register of that site becomes DEAD), a null test (jeq/jne r, 0 on
 * NULLREC), a 64-bit copy, or a 64-bit add/sub of a constant on REC; no record live at exit. Anything else
 * (a spill, a store of the pointer anywhere, another helper's argument, other ALU, a variable offset, a
 * join of different record values, a non-constant size, loops moving a pointer, local/tail calls, callx)
 * fails the whole program: it then runs as before. */
#include "recproof.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { V_UNK, V_CONST, V_NULLREC, V_REC, V_DEAD };
#define IS_REC(a) ((a).kind >= V_NULLREC) /* record-derived: NULLREC, REC, DEAD */

typedef struct aval {
  uint8_t kind;
  uint8_t site;
  int64_t v; /* CONST: the value; REC: the offset into the record */
} aval;

typedef struct astate {
  aval r[10];
  uint64_t live; /* sites whose record may be reserved and not yet finished on this path */
} astate;

typedef struct pass {
  const ebpf_vm_prog *p;
  astate *in;
  uint8_t *seen, *queued;
  uint32_t *work, nwork;
  uint32_t site_pc[RP_MAX_SITES];
  int64_t site_size[RP_MAX_SITES];
  uint32_t nsites;
  uint8_t *mark;
  char *why;
  size_t n_why;
  int failed;
} pass;

static const aval UNK = {V_UNK, 0, 0};
static const aval DEAD = {V_DEAD, 0, 0};

static aval konst(int64_t v) { return (aval){V_CONST, 0, v}; }

static int fail(pass *s, uint32_t pc, const char *what) {
  if (!s->failed && s->n_why > 0) snprintf(s->why, s->n_why, "slot %u: %s", pc, what);
  s->failed = 1;
  return -1;
}

static int same(aval a, aval b) {
  if (a.kind != b.kind) return 0;
  if (a.kind == V_UNK || a.kind == V_DEAD) return 1;
  return a.site == b.site && a.v == b.v;
}

static aval get(const astate *st, uint32_t r) { return r < 10 ? st->r[r] : UNK; /* r10: the frame */ }

/* st flows from slot `from` into slot `to`: the first arrival sets the state, later ones join into it */
static int flow(pass *s, uint32_t from, uint64_t to, const astate *st) {
  const ebpf_vm_prog *p = s->p;
  if (to >= p->n || p->code[to].kind == K_LDDW2) return fail(s, from, "a jump out of the program");
  if (!s->seen[to]) {
    s->in[to] = *st;
    s->seen[to] = 1;
  } else {
    astate *d = &s->in[to];
    int changed = 0;
    if (d->live != st->live) return fail(s, from, "a join where a record is live on one path only");
    for (int r = 0; r < 10; r++) {
      aval a = d->r[r], b = st->r[r], j;
      if (same(a, b)) continue;
      if (a.kind <= V_CONST && b.kind <= V_CONST) j = UNK;
      else if ((a.kind <= V_CONST || a.kind == V_DEAD) && (b.kind <= V_CONST || b.kind == V_DEAD)) j = DEAD;
      else return fail(s, from, "a join of different record pointers");
      if (!same(j, a)) {
        d->r[r] = j;
        changed = 1;
      }
    }
    if (!changed) return 0;
  }
  if (!s->queued[to]) {
    s->queued[to] = 1;
    s->work[s->nwork++] = (uint32_t)to;
  }
  return 0;
}

/* a load or store of width w through base at slot pc: inside a proven record, or checked as always */
static int access(pass *s, uint32_t pc, aval base, int16_t off, uint32_t w, int plain) {
  if (base.kind == V_REC) {
    const int64_t at = base.v + off, size = s->site_size[base.site];
    if (!plain) return fail(s, pc, "an atomic or other special access to a record");
    if (at < 0 || at + (int64_t)w > size) return fail(s, pc, "a record access outside the record");
    if (s->mark[pc] == RP_CHECKED) return fail(s, pc, "a slot that accesses a record on one path only");
    s->mark[pc] = RP_DIRECT;
    return 0;
  }
  if (IS_REC(base)) return fail(s, pc, base.kind == V_NULLREC ? "a record that may be NULL dereferenced" : "a record used after submit or discard");
  if (s->mark[pc] == RP_DIRECT) return fail(s, pc, "a slot that accesses a record on one path only");
  s->mark[pc] = RP_CHECKED;
  return 0;
}

static int step(pass *s, uint32_t pc) {
  const ebpf_vm_prog *p = s->p;
  const insn *i = &p->code[pc];
  astate st = s->in[pc];
  const uint8_t op = i->real;
  const int cls = op & 7, x = (op & 8) != 0;
  const uint32_t d = i->dst, sr = i->src;
  static const uint32_t W[4] = {4, 2, 1, 8};
  if (i->kind == K_LOCAL || i->kind == K_TAIL || i->kind == K_CALLX) return fail(s, pc, "a local call, tail call or callx");
  if (i->kind == K_LDDW) {
    if (d >= 10) return fail(s, pc, "lddw into r10");
    st.r[d] = konst((int64_t)p->k[pc]);
    return flow(s, pc, (uint64_t)pc + 2, &st);
  }
  switch (cls) {
    case 0x04: /* ALU */
    case 0x07: { /* ALU64 */
      const int code = op & 0xf0;
      const aval dv = get(&st, d), sv = x ? get(&st, sr) : UNK;
      if (d >= 10) return fail(s, pc, "a write to r10");
      if (code == 0xb0) { /* mov */
        if (x && IS_REC(sv)) {
          if (cls != 0x07 || i->off != 0) return fail(s, pc, "a record pointer moved with 32 bits or sign extension");
          st.r[d] = sv;
        } else if (x) st.r[d] = cls == 0x07 && i->off == 0 && sv.kind == V_CONST ? sv : UNK;
        else st.r[d] = konst(cls == 0x07 ? (int64_t)i->imm : (int64_t)(uint32_t)i->imm);
      } else {
        if (IS_REC(sv)) return fail(s, pc, "a record pointer as an ALU operand");
        if (IS_REC(dv)) {
          if (cls != 0x07 || x || (code != 0x00 && code != 0x10) || dv.kind != V_REC)
            return fail(s, pc, "arithmetic on a record pointer other than adding a constant to a non-NULL one");
          const int64_t nv = code == 0x00 ? dv.v + i->imm : dv.v - i->imm;
          if (nv < -(1ll << 31) || nv > (1ll << 31)) return fail(s, pc, "a record offset out of range");
          st.r[d] = (aval){V_REC, dv.site, nv};
        } else st.r[d] = UNK;
      }
      return flow(s, pc, (uint64_t)pc + 1, &st);
    }
    case 0x00: /* LD_ABS / LD_IND: r0 = a packet byte, or the run ends */
      if ((op & 0xe0) == 0x40 && IS_REC(get(&st, sr))) return fail(s, pc, "a record pointer as LD_IND's index");
      st.r[0] = UNK;
      return flow(s, pc, (uint64_t)pc + 1, &st);
    case 0x01: /* LDX */
      if (d >= 10) return fail(s, pc, "a load into r10");
      if (access(s, pc, get(&st, sr), i->off, W[(op >> 3) & 3], (op & 0xe0) == 0x60 || (op & 0xe0) == 0x80) < 0) return -1;
      st.r[d] = UNK;
      return flow(s, pc, (uint64_t)pc + 1, &st);
    case 0x02: /* ST */
      if (access(s, pc, get(&st, d), i->off, W[(op >> 3) & 3], (op & 0xe0) == 0x60) < 0) return -1;
      return flow(s, pc, (uint64_t)pc + 1, &st);
    case 0x03: /* STX, atomics */
      if (IS_REC(get(&st, sr))) return fail(s, pc, "a record pointer stored to memory");
      if (access(s, pc, get(&st, d), i->off, W[(op >> 3) & 3], (op & 0xe0) == 0x60) < 0) return -1;
      if ((op & 0xe0) == 0xc0) {
        if (i->imm == 0xf1) {
          if (IS_REC(st.r[0])) return fail(s, pc, "a record pointer as cmpxchg's comparand");
          st.r[0] = UNK;
        } else if (i->imm & 1) {
          if (sr >= 10) return fail(s, pc, "a fetch into r10");
          st.r[sr] = UNK;
        }
      }
      return flow(s, pc, (uint64_t)pc + 1, &st);
    case 0x05: /* JMP */
    case 0x06: { /* JMP32 */
      const int code = op & 0xf0;
      if (code == 0x00) return flow(s, pc, (uint64_t)((int64_t)pc + 1 + (cls == 0x05 ? i->off : i->imm)), &st);
      if (code == 0x80) {
        if (i->kind != K_HELPER) return fail(s, pc, "a call the pass does not know");
        const uint32_t id = (uint32_t)i->imm;
        const int finish = id == 132 || id == 133;
        for (int r = 1; r <= 5; r++)
          if (IS_REC(st.r[r]) && !(r == 1 && finish)) return fail(s, pc, "a record pointer passed to a helper");
        aval r0 = UNK;
        if (id == 131) { /* bpf_ringbuf_reserve(map, size, flags) */
          const aval size = st.r[2];
          if (size.kind != V_CONST || size.v <= 0 || size.v > 0x7fffffff) return fail(s, pc, "bpf_ringbuf_reserve of a size that is not a known constant");
          uint32_t site = 0;
          while (site < s->nsites && s->site_pc[site] != pc) site++;
          if (site == s->nsites) {
            if (s->nsites >= RP_MAX_SITES) return fail(s, pc, "too many bpf_ringbuf_reserve calls");
            s->site_pc[site] = pc;
            s->site_size[site] = size.v;
            s->nsites++;
          } else if (s->site_size[site] != size.v) return fail(s, pc, "bpf_ringbuf_reserve of different sizes at one call");
          if (st.live & (1ull << site)) return fail(s, pc, "bpf_ringbuf_reserve again before the record is finished");
          st.live |= 1ull << site;
          r0 = (aval){V_NULLREC, (uint8_t)site, 0};
          s->mark[pc] = RP_RECORD;
        } else if (finish) { /* bpf_ringbuf_submit / discard(record, flags) */
          const aval rec = st.r[1];
          if (rec.kind != V_REC || rec.v != 0) return fail(s, pc, "bpf_ringbuf_submit/discard of something other than a non-NULL record's start");
          st.live &= ~(1ull << rec.site);
          for (int r = 0; r < 10; r++)
            if ((st.r[r].kind == V_REC || st.r[r].kind == V_NULLREC) && st.r[r].site == rec.site) st.r[r] = DEAD;
          s->mark[pc] = RP_RECORD;
        }
        for (int r = 1; r <= 5; r++) st.r[r] = UNK;
        st.r[0] = r0;
        return flow(s, pc, (uint64_t)pc + 1, &st);
      }
      if (code == 0x90) { /* exit */
        if (st.live) return fail(s, pc, "a record may be left unsubmitted at exit");
        if (IS_REC(st.r[0])) return fail(s, pc, "a record pointer returned");
        return 0;
      }
      if (code > 0xd0) return fail(s, pc, "a jump the pass does not know");
      const uint64_t target = (uint64_t)((int64_t)pc + 1 + i->off);
      const aval dv = get(&st, d), sv = x ? get(&st, sr) : UNK;
      if (!IS_REC(dv) && !IS_REC(sv)) {
        if (flow(s, pc, (uint64_t)pc + 1, &st) < 0) return -1;
        return flow(s, pc, target, &st);
      }
      if (cls != 0x05 || x || i->imm != 0 || (code != 0x10 && code != 0x50) || dv.kind != V_NULLREC)
        return fail(s, pc, "a record pointer compared other than by a null test");
      astate null = st, rec = st;
      for (int r = 0; r < 10; r++)
        if (st.r[r].kind == V_NULLREC && st.r[r].site == dv.site) {
          null.r[r] = konst(0);
          rec.r[r] = (aval){V_REC, dv.site, 0};
        }
      null.live &= ~(1ull << dv.site);
      if (flow(s, pc, (uint64_t)pc + 1, code == 0x10 ? &rec : &null) < 0) return -1;
      return flow(s, pc, target, code == 0x10 ? &null : &rec);
    }
  }
  return fail(s, pc, "an instruction the pass does not know");
}

int ebpf_recproof(const ebpf_vm_prog *p, uint8_t *mark, char *why, size_t n_why) {
  pass s;
  memset(&s, 0, sizeof s);
  s.p = p;
  s.mark = mark;
  s.why = why;
  s.n_why = n_why;
  if (n_why > 0) why[0] = 0;
  memset(mark, RP_NONE, p->n);
  if (p->n == 0 || p->n > RP_MAX_SLOTS) {
    fail(&s, 0, "a program too long for the proof");
    return 0;
  }
  s.in = (astate *)calloc(p->n, sizeof(astate));
  s.seen = (uint8_t *)calloc(p->n, 1);
  s.queued = (uint8_t *)calloc(p->n, 1);
  s.work = (uint32_t *)calloc(p->n, sizeof(uint32_t));
  if (s.in == NULL || s.seen == NULL || s.queued == NULL || s.work == NULL) fail(&s, 0, "out of memory for the proof");
  else {
    astate entry;
    memset(&entry, 0, sizeof entry); /* every register UNK, nothing live */
    flow(&s, 0, 0, &entry);
    /* each slot's state only rises (scalars to UNK, then DEAD; record values never change without failing):
     * the bound is a guard, not the expected cost */
    uint64_t steps = 0, max_steps = (uint64_t)p->n * 32u + 1024u;
    while (s.nwork > 0 && !s.failed) {
      const uint32_t pc = s.work[--s.nwork];
      s.queued[pc] = 0;
      if (++steps > max_steps) {
        fail(&s, pc, "no fixpoint within the pass's bound");
        break;
      }
      step(&s, pc);
    }
    if (!s.failed && s.nsites == 0) fail(&s, 0, "no bpf_ringbuf_reserve");
  }
  free(s.in);
  free(s.seen);
  free(s.queued);
  free(s.work);
  if (s.failed) {
    memset(mark, RP_NONE, p->n);
    return 0;
  }
  for (uint32_t pc = 0; pc < p->n; pc++)
    if (mark[pc] == RP_CHECKED) mark[pc] = RP_NONE;
  return 1;
}
