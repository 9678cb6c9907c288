/* The agent's helpers and a run's regions (native/agent/lib/helpers.c, regions.c, probe_read.c, printk.c)
 * without a launch: this program stands in for agent.c (its map table, find_map, agent_trace), builds
 * shared maps in-process and runs small programs in the engine, or calls helpers directly. Prints
 * "ok - ..." / "not ok - ..." lines and "# ..." measurements; exit 0 when every check holds. */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include "agent.h"
#include "check.h"

/* ---- what agent.c provides ---- */
static struct amap maps[16];
static unsigned nmaps;
struct amap *find_map(const struct session *s, uint64_t ref)
{
	(void)s; /* one table here: the programs' env.user names no session */
	if ((ref & 0xffffffff00000000ull) != MAPREF_TAG) return NULL;
	for (unsigned i = 0; i < nmaps; i++)
		if (maps[i].id == (uint32_t)ref) return &maps[i];
	return NULL;
}
static char traced[PRINTK_SIZE + 16];
static uint32_t traced_len, traced_hook;
void agent_trace(struct session *s, uint32_t hook_id, const char *text, uint32_t len)
{
	(void)s;
	traced_hook = hook_id;
	traced_len = len;
	memcpy(traced, text, len);
	traced[len] = 0;
}

static struct amap *mkmap(uint32_t id, uint32_t type, uint32_t k, uint32_t v, uint32_t n, uint32_t flags)
{
	struct wbpf_map_spec s = { .type = type, .key_size = k, .value_size = v, .max_entries = n, .map_flags = flags, .ncpus = 2, .name = "t" };
	struct amap *m = &maps[nmaps];
	m->id = id;
	if (wbpf_map_create(&s, &m->m) != 0) {
		printf("not ok - create map %u\n", id);
		failures++;
		return NULL;
	}
	nmaps++;
	return m;
}
#define REF(id) (MAPREF_TAG | (id))

/* ---- instructions ---- */
struct insn {
	uint8_t op, regs;
	int16_t off;
	int32_t imm;
};
#define I(op, d, s, off, imm) ((struct insn){ (op), (uint8_t)((d) | ((s) << 4)), (off), (imm) })
#define MOVI(d, v) I(0xb7, d, 0, 0, v)
#define MOV(d, s) I(0xbf, d, s, 0, 0)
#define ADDI(d, v) I(0x07, d, 0, 0, v)
#define STW(d, off, v) I(0x62, d, 0, off, v)
#define STXDW(d, s, off) I(0x7b, d, s, off, 0)
#define LDXDW(d, s, off) I(0x79, d, s, off, 0)
#define CALL(id) I(0x85, 0, 0, 0, id)
#define JEQI(d, v, off) I(0x15, d, 0, off, v)
#define EXIT I(0x95, 0, 0, 0, 0)
#define LDDW(d, src, imm, imm2) I(0x18, d, src, 0, imm), I(0, 0, 0, 0, imm2)

struct loaded {
	ebpf_vm_prog *prog;
	char err[192];
};
static struct loaded load(const struct insn *p, size_t n)
{
	struct loaded l = { 0 };
	ebpf_vm_env env = { .helper = helper_of, .map = map_ref, .user = calloc(1, sizeof(struct prog_refs)) };
	ebpf_vm_error e;
	if (ebpf_vm_load(p, n * sizeof *p, &env, &l.prog, &e) != EBPF_VM_OK) {
		snprintf(l.err, sizeof l.err, "%s", e.message);
		l.prog = NULL;
	}
	return l;
}
#define LOAD(...) ({ struct insn p_[] = { __VA_ARGS__ }; load(p_, sizeof p_ / sizeof p_[0]); })

static uint8_t ctx[168];
static struct hit last; /* the last run's memory, for checks after it */
/* one run at a hit of hook 9 with ctx: its status, r0 in *r0 */
static int run(const struct loaded *l, uint64_t *r0, ebpf_vm_run *out)
{
	uint8_t stack[EBPF_VM_STACK_SIZE] __attribute__((aligned(16)));
	ebpf_vm_run r = { .stack = stack, .stack_addr = (uintptr_t)stack, .budget = 100000 };
	hit_begin(&last, &r, 9, l->prog, ctx, sizeof ctx);
	uint64_t args[5] = { (uintptr_t)ctx };
	int st = ebpf_vm_exec(l->prog, &r, args);
	hit_end(&last);
	if (r0) *r0 = r.r0;
	if (out) *out = r;
	return st;
}

/* a helper called directly, inside a run's memory set up by hit_begin for prog (NULL: no globals) */
static uint8_t hstack[EBPF_VM_STACK_SIZE] __attribute__((aligned(16)));
static ebpf_vm_run hrun;
static struct hit hmem;
static void hbegin(const ebpf_vm_prog *prog)
{
	hrun = (ebpf_vm_run){ .stack = hstack, .stack_addr = (uintptr_t)hstack, .budget = 1000 };
	hit_begin(&hmem, &hrun, 9, prog, ctx, sizeof ctx);
}
/* the helper's status (0, or 1: the run stops) and r0 */
static int hcall(uint32_t id, uint64_t a1, uint64_t a2, uint64_t a3, uint64_t a4, uint64_t a5, uint64_t *r0)
{
	ebpf_vm_helper_fn f = helper_of(NULL, id);
	ebpf_vm_call c = { .run = &hrun, .id = id, .args = { a1, a2, a3, a4, a5 } };
	if (!f) return -1;
	int st = f(&c);
	*r0 = c.r0;
	return st;
}
#define P(x) ((uint64_t)(uintptr_t)(x))
#define NEG(e) ((uint64_t)(int64_t)-(e))

static void table(void)
{
	static const uint32_t ids[] = { 1, 2, 3, 4, 5, 6, 7, 8, 14, 15, 16, 25, 35, 45, 112, 113, 114, 115, 125, 130, 131, 132, 133, 134, 158, 160 };
	int all = 1;
	for (size_t i = 0; i < sizeof ids / sizeof ids[0]; i++) all &= helper_of(NULL, ids[i]) != NULL;
	CHECK(all, "helper_of: every listed helper");
	CHECK(!helper_of(NULL, 36) && !helper_of(NULL, 12) && !helper_of(NULL, 0) && !helper_of(NULL, 1u << 31),
	      "probe_write_user (36), tail_call, 0 and unknown ids: none");
}

static void regions(void)
{
	struct amap *arr = mkmap(1, WBPF_MAP_ARRAY, 4, 8, 4, 0);
	struct amap *hash = mkmap(2, WBPF_MAP_HASH, 4, 12, 64, 0);
	struct amap *ro = mkmap(3, WBPF_MAP_ARRAY, 4, 16, 1, 0x80);
	struct amap *pca = mkmap(4, WBPF_MAP_PERCPU_ARRAY, 4, 8, 1, 0);
	uint64_t r0;
	ebpf_vm_run r;
	/* lookup [key 1], write value[off] = 7, return it */
#define LOOKUP_WRITE(map, key, off)                                                                          \
	STW(10, -4, key), LDDW(1, 1, map, 0), MOV(2, 10), ADDI(2, -4), CALL(1), JEQI(0, 0, 3), MOVI(1, 7), \
		STXDW(0, 1, off), LDXDW(0, 0, off), EXIT
	struct loaded ok = LOAD(LOOKUP_WRITE(1, 1, 0));
	CHECK(ok.prog && run(&ok, &r0, NULL) == EBPF_VM_DONE && r0 == 7, "a lookup value is writable (%s)", ok.err);
	uint32_t k = 1;
	CHECK(*(uint64_t *)wbpf_map_lookup_elem(&arr->m, &k) == 7, "the write landed in the shared map");
	struct loaded past = LOAD(LOOKUP_WRITE(1, 1, 8));
	void *v1 = wbpf_map_lookup_elem(&arr->m, &k);
	CHECK(run(&past, NULL, &r) == EBPF_VM_F_MEMORY && r.fault.addr == P(v1) + 8 && r.fault.write,
	      "a write just past a lookup value (value_size 8) faults at value + 8");
	struct loaded before = LOAD(LOOKUP_WRITE(1, 1, -8));
	CHECK(run(&before, NULL, &r) == EBPF_VM_F_MEMORY && r.fault.addr == P(v1) - 8, "a write before it faults (element 0's value)");
	struct loaded hdr = LOAD(LOOKUP_WRITE(1, 0, -64));
	CHECK(run(&hdr, NULL, &r) == EBPF_VM_F_MEMORY, "the map's header before the values is out of reach");
	/* the hash's value is 12 bytes: a store of 8 at +8 crosses its end */
	uint64_t hv[2] = { 0 };
	k = 5;
	wbpf_map_sys_update(&hash->m, &k, hv, 0);
	struct loaded hpast = LOAD(LOOKUP_WRITE(2, 5, 8));
	CHECK(run(&hpast, NULL, &r) == EBPF_VM_F_MEMORY, "a hash value's last 4 bytes + 4 more: fault");
	struct loaded hin = LOAD(LOOKUP_WRITE(2, 5, 0));
	CHECK(run(&hin, &r0, NULL) == EBPF_VM_DONE && r0 == 7, "inside the hash value: fine");
	uint32_t zero = 0;
	wbpf_map_sys_update(&ro->m, &zero, hv, 0);
	struct loaded rov = LOAD(LOOKUP_WRITE(3, 0, 0));
	CHECK(run(&rov, NULL, &r) == EBPF_VM_F_MEMORY && r.fault.write, "BPF_F_RDONLY_PROG: the lookup value is read-only");
	struct loaded ctxw = LOAD(MOVI(2, 1), STXDW(1, 2, 0), MOVI(0, 0), EXIT);
	CHECK(run(&ctxw, NULL, &r) == EBPF_VM_F_MEMORY && r.fault.addr == P(ctx), "the ctx is read-only");
	struct loaded ctxr = LOAD(LDXDW(0, 1, 160), EXIT);
	memset(ctx, 0, sizeof ctx);
	ctx[160] = 42;
	CHECK(run(&ctxr, &r0, NULL) == EBPF_VM_DONE && r0 == 42, "the ctx is readable (168 bytes)");
	struct loaded ctxp = LOAD(LDXDW(0, 1, 168), EXIT);
	CHECK(run(&ctxp, NULL, &r) == EBPF_VM_F_MEMORY, "and no further");

	/* global data: lddw src 2 (element 0's value + the second imm) */
	struct amap *data = mkmap(10, WBPF_MAP_ARRAY, 4, 24, 1, 0);
	struct amap *rodata = mkmap(11, WBPF_MAP_ARRAY, 4, 16, 1, 0x80);
	struct loaded g = LOAD(LDDW(1, 2, 10, 16), MOVI(2, 5), STXDW(1, 2, 0), LDDW(3, 2, 11, 8), LDXDW(0, 3, 0), LDXDW(2, 1, 0), ADDI(0, 0),
			       I(0x0f, 0, 2, 0, 0), EXIT);
	uint64_t rod[2] = { 0, 100 };
	wbpf_map_sys_update(&rodata->m, &zero, rod, 0);
	CHECK(g.prog && run(&g, &r0, NULL) == EBPF_VM_DONE && r0 == 105, "global data: .data writable at +16, .rodata readable at +8 (%s)", g.err);
	CHECK(*(uint64_t *)((uint8_t *)wbpf_map_direct_value(&data->m) + 16) == 5, "the .data write is in the shared map");
	struct loaded gro = LOAD(LDDW(1, 2, 11, 0), MOVI(2, 5), STXDW(1, 2, 0), MOVI(0, 0), EXIT);
	CHECK(run(&gro, NULL, &r) == EBPF_VM_F_MEMORY && r.fault.write, ".rodata (BPF_F_RDONLY_PROG) is read-only");
	struct loaded gpast = LOAD(LDDW(1, 2, 10, 24), LDXDW(0, 1, 0), EXIT);
	CHECK(run(&gpast, NULL, &r) == EBPF_VM_F_MEMORY, "global data ends at value_size");
	struct loaded gnone = LOAD(LDDW(1, 2, 4, 0), MOVI(0, 0), EXIT);
	CHECK(!gnone.prog && strstr(gnone.err, "no direct value for map fd 4"), "no direct value of a per-CPU array: refused at load (%s)", gnone.err);
	struct loaded gh = LOAD(LDDW(1, 2, 2, 0), MOVI(0, 0), EXIT);
	CHECK(!gh.prog, "nor of a hash");
	struct loaded gother = LOAD(LDXDW(0, 1, 0), EXIT);
	hbegin(gother.prog);
	CHECK(hmem.nregions == 1, "a program without global data gets the ctx only");
	hbegin(g.prog);
	CHECK(hmem.nregions == 3, "one with .data and .rodata gets both (3 regions)");
	(void)pca;

	/* dedupe and the table's limit */
	hbegin(NULL);
	uint32_t *key = (uint32_t *)(hstack + 64);
	uint64_t first = 0, again = 0;
	*key = 1;
	hcall(1, REF(1), P(key), 0, 0, 0, &first);
	for (int i = 0; i < 100; i++) hcall(1, REF(1), P(key), 0, 0, 0, &again);
	CHECK(first && again == first && hmem.ndyn == 1 && hmem.nregions == 2, "100 repeat lookups of one value hold one region");
	hbegin(NULL);
	for (uint32_t i = 0; i < 40; i++) wbpf_map_sys_update(&hash->m, &i, hv, 0);
	int got = 0, nulls = 0;
	for (uint32_t i = 0; i < 40; i++) {
		uint64_t p;
		*key = i;
		hcall(1, REF(2), P(key), 0, 0, 0, &p);
		if (p) got++;
		else nulls++;
	}
	CHECK(got == HIT_MAX_DYN && nulls == 40 - HIT_MAX_DYN, "a full table: lookups return NULL (%d values, %d NULL)", got, nulls);
	uint64_t p3;
	*key = 3;
	hcall(1, REF(2), P(key), 0, 0, 0, &p3);
	CHECK(p3 != 0, "a full table still answers a value it holds");
	int sorted = 1;
	for (uint32_t i = 1; i < hmem.nregions; i++) sorted &= hmem.regions[i - 1].addr + hmem.regions[i - 1].size <= hmem.regions[i].addr;
	CHECK(sorted, "regions sorted and disjoint");
	uint64_t st;
	CHECK(hcall(1, REF(99), P(key), 0, 0, 0, &st) == 1, "a lookup of no map stops the run");
	CHECK(hcall(1, REF(1), P(ctx) + 164, 0, 0, 0, &st) == 0, "a key in the ctx is readable");
	CHECK(hcall(1, REF(1), 0x1000, 0, 0, 0, &st) == 1 && hcall(1, REF(1), P(&p3), 0, 0, 0, &st) == 1,
	      "a key outside the run's memory stops the run");
}

static void ring(void)
{
	struct amap *rb = mkmap(20, WBPF_MAP_RINGBUF, 0, 0, 4096, 0);
	uint8_t out[4096];
	uint64_t r0, a, b;
	hbegin(NULL);
	hcall(131, REF(20), 16, 0, 0, 0, &a);
	CHECK(a && hmem.ndyn == 1 && ptr_ok(&hrun, a, 16, 1) && !ptr_ok(&hrun, a, 17, 1) && !ptr_ok(&hrun, a - 8, 8, 0),
	      "a reserved record's data (16 bytes) is a writable region, its header is not");
	memset((void *)(uintptr_t)a, 0xab, 16);
	hcall(131, REF(20), 8, 0, 0, 0, &b);
	CHECK(hcall(132, P(ctx), 0, 0, 0, 0, &r0) == 0 && r0 == 0 && hmem.nrecords == 2, "submit of a pointer that is no record: nothing");
	CHECK(hcall(132, a + 8, 0, 0, 0, 0, &r0) == 0 && hmem.nrecords == 2, "submit inside a record: nothing");
	hcall(132, a, 0, 0, 0, 0, &r0);
	CHECK(hmem.nrecords == 1 && !ptr_ok(&hrun, a, 1, 0), "submitted: no longer a region");
	hcall(132, a, 0, 0, 0, 0, &r0);
	CHECK(hmem.nrecords == 1, "a second submit of it: nothing");
	CHECK(wbpf_ring_drain(&rb->m, out, sizeof out) == 1 && out[0] == 16 && out[8] == 0xab, "the consumer gets the submitted record");
	hit_end(&hmem);
	CHECK(wbpf_ring_drain(&rb->m, out, sizeof out) == 0 && wbpf_ring_pending_size(&rb->m) == 0,
	      "the record left reserved is discarded at the run's end (the consumer does not stall)");
	hbegin(NULL);
	hcall(131, REF(20), 8, 0, 0, 0, &a);
	hcall(133, a, 0, 0, 0, 0, &r0);
	hcall(131, REF(20), 8, 0, 0, 0, &b);
	hcall(132, b, 0, 0, 0, 0, &r0);
	CHECK(wbpf_ring_drain(&rb->m, out, sizeof out) == 1 && hmem.ndyn == 0, "discarded, then one submitted: one record");
	hcall(131, REF(20), 8, 1, 0, 0, &a);
	CHECK(a == 0, "reserve flags must be 0: NULL");
	hcall(131, REF(20), 5000, 0, 0, 0, &a);
	CHECK(a == 0, "larger than the ring: NULL");
	CHECK(hcall(131, REF(1), 8, 0, 0, 0, &a) == 1, "reserve on an array stops the run");
	int n = 0;
	for (int i = 0; i < 20; i++) {
		hcall(131, REF(20), 8, 0, 0, 0, &a);
		n += a != 0;
	}
	CHECK(n == HIT_MAX_RECORDS, "at most %d records reserved at once (%d)", HIT_MAX_RECORDS, n);
	hit_end(&hmem);
	CHECK(wbpf_ring_drain(&rb->m, out, sizeof out) == 0, "all discarded at the end");
	hbegin(NULL);
	hcall(134, REF(20), 1, 0, 0, 0, &r0);
	CHECK(r0 == 4096, "ringbuf_query RING_SIZE");
	/* a program: reserve, fill, submit; one reserve left over at exit; one write after submit faults */
	struct loaded p = LOAD(LDDW(1, 1, 20, 0), MOVI(2, 8), MOVI(3, 0), CALL(131), JEQI(0, 0, 6), MOVI(1, 77), STXDW(0, 1, 0), MOV(1, 0),
			       MOVI(2, 0), CALL(132), MOVI(0, 1), LDDW(1, 1, 20, 0), MOVI(2, 8), MOVI(3, 0), CALL(131), MOVI(0, 0), EXIT);
	CHECK(p.prog && run(&p, &r0, NULL) == EBPF_VM_DONE, "reserve/submit program runs (%s)", p.err);
	CHECK(wbpf_ring_drain(&rb->m, out, sizeof out) == 1 && out[8] == 77 && wbpf_ring_pending_size(&rb->m) == 0,
	      "one record (77); the leftover reserve was discarded");
	struct loaded after = LOAD(LDDW(1, 1, 20, 0), MOVI(2, 8), MOVI(3, 0), CALL(131), JEQI(0, 0, 6), MOV(6, 0), MOV(1, 0), MOVI(2, 0),
				   CALL(133), MOVI(1, 1), STXDW(6, 1, 0), MOVI(0, 0), EXIT);
	ebpf_vm_run rr;
	CHECK(after.prog && run(&after, NULL, &rr) == EBPF_VM_F_MEMORY, "a write to a discarded record faults (%s)", after.err);
	struct loaded fault = LOAD(LDDW(1, 1, 20, 0), MOVI(2, 8), MOVI(3, 0), CALL(131), LDXDW(0, 1, 4096), EXIT);
	CHECK(run(&fault, NULL, &rr) != EBPF_VM_DONE && wbpf_ring_pending_size(&rb->m) == 0 && wbpf_ring_drain(&rb->m, out, sizeof out) == 0,
	      "a run that faults holding a record: discarded, the ring flows");
}

/* ---- the ring-record proof (vm/recproof.c): programs the engine proves run their record accesses unchecked
 * (and reserve with the record variants, no region); every other program runs as before, and each hostile
 * one below faults exactly there, its record discarded at the run's end ---- */
static struct loaded load_rec(const struct insn *p, size_t n)
{
	struct loaded l = { 0 };
	ebpf_vm_env env = { .helper = helper_of, .map = map_ref, .user = calloc(1, sizeof(struct prog_refs)), .leaf = leaf_of, .record = record_of };
	ebpf_vm_error e;
	if (ebpf_vm_load(p, n * sizeof *p, &env, &l.prog, &e) != EBPF_VM_OK) {
		snprintf(l.err, sizeof l.err, "%s", e.message);
		l.prog = NULL;
	}
	return l;
}
#define LOADR(...) ({ struct insn p_[] = { __VA_ARGS__ }; load_rec(p_, sizeof p_ / sizeof p_[0]); })
#define STWI(d, off, v) I(0x62, d, 0, off, v)
#define STXW(d, s, off) I(0x63, d, s, off, 0)
#define LDXW(d, s, off) I(0x61, d, s, off, 0)
#define JNEI(d, v, off) I(0x55, d, 0, off, v)
#define JLTI(d, v, off) I(0xa5, d, 0, off, v)
#define JA(off) I(0x05, 0, 0, off, 0)
#define ADD(d, s) I(0x0f, d, s, 0, 0)
#define SUBI(d, v) I(0x17, d, 0, 0, v)
/* r9 = ctx; r6 = reserve(ring 21, SIZE); if r6 == 0 goto +SKIP (SKIP: slots to the program's null exit) */
#define RESERVE(size) MOV(9, 1), LDDW(1, 1, 21, 0), MOVI(2, size), MOVI(3, 0), CALL(131), MOV(6, 0)
#define SUBMIT6 MOV(1, 6), MOVI(2, 0), CALL(132)

static const char *why_not(const struct loaded *l)
{
	const char *why = "";
	if (l->prog) ebpf_vm_record_proof(l->prog, &why);
	return why;
}

static void proof_random(struct amap *rb, int jit_on);

static void proof(void)
{
	struct amap *rb = mkmap(21, WBPF_MAP_RINGBUF, 0, 0, 4096, 0);
	struct amap *arr = mkmap(22, WBPF_MAP_ARRAY, 4, 8, 1, 0);
	uint8_t out[4096];
	uint64_t r0;
	ebpf_vm_run r;
	const char *jit = getenv("WBPF_JIT");
#if defined(__x86_64__)
	const int jit_on = !(jit && strcmp(jit, "0") == 0); /* the proof is the JIT's: arm64 and WBPF_JIT=0 keep the regions */
#else
	const int jit_on = 0;
	(void)jit;
#endif
	memset(ctx, 0, sizeof ctx);
	if (!rb || !arr) return;

	/* bench/uprobe's programs (hit_bench.c's bytecode, the ring as map 21): proven */
	struct loaded entry = LOADR(I(0x79, 7, 1, 0x70, 0), I(0xb7, 8, 0, 0, 0), LDDW(1, 1, 21, 0), I(0xb7, 2, 0, 0, 16),
		I(0xb7, 3, 0, 0, 0), I(0x85, 0, 0, 0, 131), I(0xbf, 6, 0, 0, 0), I(0x15, 6, 0, 7, 0), I(0x85, 0, 0, 0, 14),
		I(0x63, 6, 7, 8, 0), I(0x7b, 6, 0, 0, 0), I(0x63, 6, 8, 12, 0), I(0xbf, 1, 6, 0, 0), I(0xb7, 2, 0, 0, 0),
		I(0x85, 0, 0, 0, 132), I(0xb7, 0, 0, 0, 0), I(0x95, 0, 0, 0, 0));
	struct loaded ret = LOADR(I(0x79, 7, 1, 0x50, 0), LDDW(1, 1, 21, 0), I(0xb7, 2, 0, 0, 16), I(0xb7, 3, 0, 0, 0),
		I(0x85, 0, 0, 0, 131), I(0xbf, 6, 0, 0, 0), I(0x15, 6, 0, 8, 0), I(0x85, 0, 0, 0, 14), I(0xb7, 1, 0, 0, 1),
		I(0x63, 6, 1, 12, 0), I(0x63, 6, 7, 8, 0), I(0x7b, 6, 0, 0, 0), I(0xbf, 1, 6, 0, 0), I(0xb7, 2, 0, 0, 0),
		I(0x85, 0, 0, 0, 132), I(0xb7, 0, 0, 0, 0), I(0x95, 0, 0, 0, 0));
	CHECK(entry.prog && ebpf_vm_record_proof(entry.prog, NULL) == jit_on, "proof: bench/uprobe's entry program %s (%s)",
	      jit_on ? "proven" : "not proven without the JIT", why_not(&entry));
	CHECK(ret.prog && ebpf_vm_record_proof(ret.prog, NULL) == jit_on, "proof: bench/uprobe's return program %s (%s)",
	      jit_on ? "proven" : "not proven without the JIT", why_not(&ret));
	/* matrix/apps/uprobe's uprobe_add and uretprobe_add (clang-16 -O2, llvm-objdump of matrix/build/uprobe.bpf.o;
	 * a 20-byte event, a byte store at 16): proven */
	struct loaded mx_entry = LOADR(I(0x79, 9, 1, 0x68, 0), I(0x79, 8, 1, 0x70, 0), MOVI(7, 0), LDDW(1, 1, 21, 0), MOVI(2, 20), MOVI(3, 0),
		CALL(131), MOV(6, 0), JEQI(6, 0, 10), CALL(14), STXW(6, 9, 8), STXW(6, 8, 4), I(0x77, 0, 0, 0, 32), STXW(6, 0, 0),
		I(0x73, 6, 7, 16, 0), STXW(6, 7, 12), MOV(1, 6), MOVI(2, 0), CALL(132), MOVI(0, 0), EXIT);
	struct loaded mx_ret = LOADR(I(0x79, 8, 1, 0x50, 0), MOVI(7, 0), LDDW(1, 1, 21, 0), MOVI(2, 20), MOVI(3, 0), CALL(131), MOV(6, 0),
		JEQI(6, 0, 11), CALL(14), MOVI(1, 1), I(0x73, 6, 1, 16, 0), STXW(6, 8, 12), I(0x77, 0, 0, 0, 32), STXW(6, 0, 0), STXW(6, 7, 8),
		STXW(6, 7, 4), MOV(1, 6), MOVI(2, 0), CALL(132), MOVI(0, 0), EXIT);
	CHECK(mx_entry.prog && ebpf_vm_record_proof(mx_entry.prog, NULL) == jit_on && mx_ret.prog && ebpf_vm_record_proof(mx_ret.prog, NULL) == jit_on,
	      "proof: matrix/apps/uprobe's uprobe_add and uretprobe_add %s (%s; %s)", jit_on ? "proven" : "not proven without the JIT",
	      why_not(&mx_entry), why_not(&mx_ret));
	ctx[0x68] = 3, ctx[0x70] = 4;
	CHECK(mx_entry.prog && run(&mx_entry, &r0, &r) == EBPF_VM_DONE && wbpf_ring_drain(&rb->m, out, sizeof out) == 1 && out[0] == 20 &&
	      ((uint32_t *)(out + 8))[0] == (uint32_t)getpid() && ((uint32_t *)(out + 8))[1] == 4 && ((uint32_t *)(out + 8))[2] == 3 && out[8 + 16] == 0,
	      "proof: uprobe_add's event arrives (pid, a 4, b 3, is_ret 0)");
	ebpf_vm_free(mx_entry.prog);
	ebpf_vm_free(mx_ret.prog);
	ctx[0x68] = 0;
	ctx[0x70] = 42;
	int ok = 1;
	for (int i = 0; i < 3 && entry.prog; i++) {
		ok &= run(&entry, &r0, &r) == EBPF_VM_DONE && r0 == 0;
		ok &= wbpf_ring_drain(&rb->m, out, sizeof out) == 1 && out[0] == 16 && out[8 + 8] == 42 && ((uint32_t *)(out + 8))[3] == 0 &&
		      *(uint64_t *)(out + 8) == ((uint64_t)getpid() << 32 | (uint32_t)gettid());
	}
	CHECK(ok && last.ndyn == 0 && last.nregions == 1, "proof: the entry program's records arrive (pid_tgid, 42, 0), 3 runs");
	ctx[0x70] = 0;

	/* a constant moved on the pointer, and back; a load from it */
	struct loaded moved = LOADR(RESERVE(16), JEQI(6, 0, 9), ADDI(6, 8), STWI(6, 0, 5), STWI(6, 4, 6), LDXW(7, 6, 4), SUBI(6, 8),
				    STXW(6, 7, 0), SUBMIT6, MOVI(0, 0), EXIT);
	CHECK(moved.prog && ebpf_vm_record_proof(moved.prog, NULL) == jit_on, "proof: add/sub of constants, loads and stores in bounds: proven (%s)", why_not(&moved));
	CHECK(moved.prog && run(&moved, &r0, &r) == EBPF_VM_DONE && wbpf_ring_drain(&rb->m, out, sizeof out) == 1 && out[0] == 16 &&
	      ((uint32_t *)(out + 8))[0] == 6 && ((uint32_t *)(out + 8))[2] == 5 && ((uint32_t *)(out + 8))[3] == 6,
	      "proof: and its record holds 6, 0, 5, 6");
	/* a proven program that faults elsewhere (a ctx write) holding a record: discarded at the end */
	struct loaded ctxw = LOADR(RESERVE(16), JEQI(6, 0, 5), STWI(6, 0, 1), STWI(9, 0, 1), SUBMIT6, MOVI(0, 0), EXIT);
	CHECK(ctxw.prog && ebpf_vm_record_proof(ctxw.prog, NULL) == jit_on && run(&ctxw, NULL, &r) == EBPF_VM_F_MEMORY && r.fault.pc == 9 &&
	      wbpf_ring_drain(&rb->m, out, sizeof out) == 0 && wbpf_ring_pending_size(&rb->m) == 0,
	      "proof: a proven program faulting on the ctx: its record discarded, the ring flows (%s)", why_not(&ctxw));

	/* not proven: each runs the regions path and faults where it did before */
	struct {
		struct loaded l;
		const char *what, *why;
		int status, write;
		uint32_t pc;
		int records; /* arriving */
	} bad[] = {
		{ LOADR(RESERVE(16), JEQI(6, 0, 4), STWI(6, 16, 1), SUBMIT6, EXIT), "a store past the record", "outside the record", EBPF_VM_F_MEMORY, 1, 8, 0 },
		{ LOADR(RESERVE(16), JEQI(6, 0, 4), STWI(6, -4, 1), SUBMIT6, EXIT), "a negative offset", "outside the record", EBPF_VM_F_MEMORY, 1, 8, 0 },
		{ LOADR(RESERVE(16), JEQI(6, 0, 4), STXDW(6, 7, 12), SUBMIT6, EXIT), "an 8-byte store crossing the end", "outside the record", EBPF_VM_F_MEMORY, 1, 8, 0 },
		{ LOADR(RESERVE(16), JEQI(6, 0, 4), LDXDW(0, 6, 9), SUBMIT6, EXIT), "an 8-byte load crossing the end", "outside the record", EBPF_VM_F_MEMORY, 0, 8, 0 },
		{ LOADR(RESERVE(8000), STWI(6, 0, 1), JEQI(6, 0, 3), SUBMIT6, EXIT), "a maybe-NULL record written (the reserve fails: NULL)", "may be NULL",
		  EBPF_VM_F_MEMORY, 1, 7, 0 },
		{ LOADR(RESERVE(16), JEQI(6, 0, 4), SUBMIT6, STWI(6, 0, 1), EXIT), "a store after submit (the record arrives)", "after submit", EBPF_VM_F_MEMORY, 1, 11, 1 },
		{ LOADR(RESERVE(16), JEQI(6, 0, 6), STXDW(10, 6, -8), LDXDW(7, 10, -8), STWI(7, 16, 1), SUBMIT6, EXIT),
		  "spilled to the stack, reloaded, written past its end", "stored to memory", EBPF_VM_F_MEMORY, 1, 10, 0 },
		{ LOADR(RESERVE(16), JEQI(6, 0, 7), MOV(1, 6), MOVI(2, 32), MOV(3, 9), CALL(112), SUBMIT6, EXIT),
		  "the destination of probe_read_user (32 bytes into 16)", "passed to a helper", EBPF_VM_F_HELPER, 0, 11, 0 },
		{ LOADR(RESERVE(16), JEQI(6, 0, 6), LDXW(7, 9, 4), ADD(6, 7), STWI(6, 0, 1), SUBMIT6, EXIT), "a variable offset (16 from the ctx)",
		  "arithmetic on a record", EBPF_VM_F_MEMORY, 1, 10, 0 },
		{ LOADR(MOV(9, 1), LDDW(1, 1, 21, 0), LDXW(2, 9, 4), MOVI(3, 0), CALL(131), MOV(6, 0), JEQI(6, 0, 4), STWI(6, 16, 1), SUBMIT6, EXIT),
		  "a size from the ctx (16), written at 16", "known constant", EBPF_VM_F_MEMORY, 1, 8, 0 },
		{ LOADR(RESERVE(16), JEQI(6, 0, 8), MOVI(7, 0), STWI(6, 0, 1), ADDI(6, 4), ADDI(7, 1), JLTI(7, 5, -4), SUBMIT6, EXIT),
		  "a loop moving the pointer 4 bytes a turn, 5 turns", "join of different record pointers", EBPF_VM_F_MEMORY, 1, 9, 0 },
		{ LOADR(RESERVE(16), JNEI(6, 0, 2), MOVI(0, 0), EXIT, LDDW(1, 1, 21, 0), MOVI(2, 8), MOVI(3, 0), CALL(131), MOV(7, 0), JNEI(7, 0, 4),
			MOV(1, 6), MOVI(2, 0), CALL(133), EXIT, LDXW(1, 9, 0), MOV(8, 6), JEQI(1, 1, 1), MOV(8, 7), STXDW(8, 1, 8), SUBMIT6,
			MOV(1, 7), MOVI(2, 0), CALL(132), MOVI(0, 0), EXIT),
		  "two records (16 and 8 bytes) merged at a join, 8 bytes written at 8", "join of different record pointers", EBPF_VM_F_MEMORY, 1, 25, 0 },
		{ LOADR(RESERVE(16), JEQI(6, 0, 14), MOVI(1, 0), STXW(10, 1, -4), MOV(2, 10), ADDI(2, -4), LDDW(1, 1, 22, 0), CALL(1), JEQI(0, 0, 3),
			STXDW(0, 6, 0), LDXDW(7, 0, 0), STWI(7, 16, 1), SUBMIT6, EXIT),
		  "stored into a map value, reloaded, written past its end", "stored to memory", EBPF_VM_F_MEMORY, 1, 18, 0 },
	};
	*(uint32_t *)(ctx + 4) = 16;
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		const char *why = "";
		int proven = bad[i].l.prog ? ebpf_vm_record_proof(bad[i].l.prog, &why) : -1;
		CHECK(proven == 0 && (!jit_on || strstr(why, bad[i].why)), "proof: not proven: %s (%s)", bad[i].what, bad[i].l.prog ? why : bad[i].l.err);
		memset(&r, 0, sizeof r);
		int st = bad[i].l.prog ? run(&bad[i].l, NULL, &r) : -1;
		CHECK(st == bad[i].status && r.fault.pc == bad[i].pc && (st != EBPF_VM_F_MEMORY || r.fault.write == bad[i].write) &&
		      wbpf_ring_drain(&rb->m, out, sizeof out) == bad[i].records && wbpf_ring_pending_size(&rb->m) == 0,
		      "proof: ... and it stops as before: status %d at slot %u (expected %d at %u), %s", st, r.fault.pc, bad[i].status, bad[i].pc,
		      bad[i].records ? "its record arrived" : "its record discarded");
		ebpf_vm_free(bad[i].l.prog);
	}
	*(uint32_t *)(ctx + 4) = 0;
	/* more the pass refuses (load only: each runs the regions path as above) */
	struct {
		struct loaded l;
		const char *what, *why;
	} refused[] = {
		{ LOADR(RESERVE(16), EXIT), "a record left unsubmitted at exit", "unsubmitted at exit" },
		{ LOADR(RESERVE(16), MOVI(6, 0), MOVI(0, 0), EXIT), "a record overwritten (leaked), then exit", "unsubmitted at exit" },
		{ LOADR(RESERVE(16), JEQI(6, 0, 4), I(0xbc, 7, 6, 0, 0), SUBMIT6, EXIT), "a 32-bit copy of a record pointer", "32 bits" },
		{ LOADR(RESERVE(16), I(0x45, 6, 0, 4, 1), JEQI(6, 0, 3), SUBMIT6, EXIT), "jset on a maybe-NULL record", "null test" },
		{ LOADR(RESERVE(16), JEQI(6, 0, 4), I(0x3d, 6, 9, 0, 0), SUBMIT6, EXIT), "a record compared with another pointer", "null test" },
		{ LOADR(RESERVE(16), JEQI(6, 0, 5), MOVI(1, 1), I(0xdb, 6, 1, 0, 0), SUBMIT6, EXIT), "an atomic add on a record", "atomic" },
		{ LOADR(RESERVE(16), JEQI(6, 0, 4), ADDI(6, 8), SUBMIT6, EXIT), "submit of the record plus 8", "record's start" },
		{ LOADR(RESERVE(16), JEQI(6, 0, 3), MOV(1, 9), MOV(2, 6), CALL(132), EXIT), "a record in r2 of submit", "passed to a helper" },
		{ LOADR(RESERVE(16), JEQI(6, 0, 4), SUBMIT6, MOV(0, 6), EXIT), "a submitted record returned", "record pointer returned" },
		{ LOADR(MOVI(7, 0), RESERVE(16), ADDI(7, 1), JLTI(7, 3, -8), JEQI(6, 0, 3), SUBMIT6, EXIT), "reserved again in a loop before the record is finished",
		  "live on one path only" },
		{ LOADR(RESERVE(16), JEQI(6, 0, 5), SUBMIT6, I(0x85, 0, 1, 0, 1), EXIT, MOVI(0, 0), EXIT), "a bpf-to-bpf call (the JIT leaves it to the interpreter)", "interpreter" },
	};
	for (size_t i = 0; i < sizeof refused / sizeof refused[0]; i++) {
		const char *why = "";
		int proven = refused[i].l.prog ? ebpf_vm_record_proof(refused[i].l.prog, &why) : -1;
		CHECK(proven == 0 && (!jit_on || strstr(why, refused[i].why)), "proof: not proven: %s (%s)", refused[i].what, refused[i].l.prog ? why : refused[i].l.err);
		ebpf_vm_free(refused[i].l.prog);
	}
	/* a loop that reserves, writes and submits a record per turn (4 turns): proven, 4 records */
	struct loaded loop = LOADR(MOVI(7, 0), RESERVE(16), JEQI(6, 0, 4), STXDW(6, 7, 8), SUBMIT6, ADDI(7, 1), JLTI(7, 4, -14), MOVI(0, 0), EXIT);
	int got = loop.prog && run(&loop, &r0, &r) == EBPF_VM_DONE ? wbpf_ring_drain(&rb->m, out, sizeof out) : -1;
	CHECK(loop.prog && ebpf_vm_record_proof(loop.prog, NULL) == jit_on && got == 4 && out[16] == 0 && out[16 + 24 * 3] == 3,
	      "proof: a loop reserving and submitting a record per turn: %s, 4 records (%d) (%s)", jit_on ? "proven" : "not proven", got, why_not(&loop));
	ebpf_vm_free(loop.prog);
	proof_random(rb, jit_on);
	if (jit) setenv("WBPF_JIT", jit, 1);
	ebpf_vm_free(entry.prog);
	ebpf_vm_free(ret.prog);
	ebpf_vm_free(moved.prog);
	ebpf_vm_free(ctxw.prog);
}

/* random programs around one record (size 8, 16 or 24): accesses in and out of bounds through the pointer and
 * a copy, constant moves, spills, skips over one instruction (joins), helper calls, the record passed to
 * probe_read_user; each loaded with the JIT (the proof) and with WBPF_JIT=0 (the regions path) must stop the
 * same way: status, fault slot, width and direction, records delivered. A wrongly proven access out of
 * bounds would end DONE on the JIT and F_MEMORY on the interpreter */
static uint64_t rnd_state = 0x9e3779b97f4a7c15ull;
static uint32_t rnd(uint32_t n)
{
	rnd_state ^= rnd_state << 13, rnd_state ^= rnd_state >> 7, rnd_state ^= rnd_state << 17;
	return (uint32_t)(rnd_state % n);
}
static struct insn one_op(int32_t size)
{
	const int reg = rnd(2) ? 6 : 7;
	const int16_t off = (int16_t)((int32_t)rnd((uint32_t)size + 13) - 6);
	switch (rnd(4)) {
	case 0: return STWI(reg, off, (int32_t)rnd(1000));
	case 1: return LDXW(8, reg, off);
	case 2: return ADDI(7, ((int32_t)rnd(5) - 2) * 4);
	default: return MOV(7, 6);
	}
}
static void proof_random(struct amap *rb, int jit_on)
{
	uint8_t out[4096];
	int proven = 0, refused = 0, differ = 0, done = 0;
	for (int t = 0; t < 3000; t++) {
		struct insn p[96];
		uint32_t n = 0;
		const int32_t size = 8 * (int32_t)(1 + rnd(3));
		p[n++] = MOV(9, 1);
		p[n++] = I(0x18, 1, 1, 0, 21);
		p[n++] = I(0, 0, 0, 0, 0);
		p[n++] = MOVI(2, size);
		p[n++] = MOVI(3, 0);
		p[n++] = CALL(131);
		p[n++] = MOV(6, 0);
		const uint32_t null_jump = n++;
		p[n++] = MOVI(8, 5);
		p[n++] = MOV(7, 6);
		for (int32_t k = 0; k < size; k += 4) p[n++] = STWI(6, (int16_t)k, 0); /* the record's bytes: known (branches read them) */
		for (uint32_t k = 0, ops = 2 + rnd(10); k < ops; k++) {
			const int reg = rnd(2) ? 6 : 7;
			const int16_t off = (int16_t)((int32_t)rnd((uint32_t)size + 13) - 6);
			switch (rnd(10)) {
			case 0: case 1: case 2: case 3: p[n++] = one_op(size); break;
			case 4: p[n++] = STXDW(reg, 8, off); break;
			case 5: p[n++] = STXDW(10, 7, -8), p[n++] = LDXDW(7, 10, -8); break;
			case 6: p[n++] = JEQI(8, 0, 1), p[n++] = one_op(size); break;
			case 7: p[n++] = CALL(14), p[n++] = MOV(8, 0); break;
			case 8: if (rnd(4) == 0) p[n++] = MOV(1, 7), p[n++] = MOVI(2, 4), p[n++] = MOV(3, 9), p[n++] = CALL(112); break;
			default: p[n++] = LDXW(8, 9, (int16_t)(4 * rnd(2))); break;
			}
		}
		p[n++] = MOV(1, rnd(8) ? 6 : 7);
		p[n++] = MOVI(2, 0);
		p[n++] = CALL(rnd(3) ? 132 : 133);
		if (rnd(4) == 0) p[n++] = one_op(size); /* a use after submit (or not: a move) */
		p[n++] = MOVI(0, 0);
		p[n++] = EXIT;
		p[null_jump] = JEQI(6, 0, (int16_t)(n - 2 - (null_jump + 1)));
		setenv("WBPF_JIT", "0", 1);
		struct loaded a = load_rec(p, n);
		unsetenv("WBPF_JIT");
		struct loaded b = load_rec(p, n);
		if (!a.prog || !b.prog) {
			differ++;
			printf("# random program %d: not loaded (%s%s)\n", t, a.err, b.err);
			ebpf_vm_free(a.prog), ebpf_vm_free(b.prog);
			continue;
		}
		int pr = ebpf_vm_record_proof(b.prog, NULL);
		proven += pr, refused += !pr;
		ebpf_vm_run ra, rb_;
		memset(&ra, 0, sizeof ra), memset(&rb_, 0, sizeof rb_);
		int sa = run(&a, NULL, &ra);
		int na = wbpf_ring_drain(&rb->m, out, sizeof out);
		int sb = run(&b, NULL, &rb_);
		int nb = wbpf_ring_drain(&rb->m, out, sizeof out);
		done += sa == EBPF_VM_DONE;
		if (sa != sb || na != nb || (sa != EBPF_VM_DONE && (ra.fault.pc != rb_.fault.pc || ra.fault.write != rb_.fault.write || ra.fault.width != rb_.fault.width))) {
			if (differ++ < 5)
				printf("# random program %d (%s): interpreter %d at %u (%d records), JIT %d at %u (%d records)\n", t, pr ? "proven" : "not proven",
				       sa, ra.fault.pc, na, sb, rb_.fault.pc, nb);
		}
		ebpf_vm_free(a.prog), ebpf_vm_free(b.prog);
	}
	CHECK(differ == 0 && (!jit_on || (proven > 100 && refused > 100)) && done > 100 && wbpf_ring_pending_size(&rb->m) == 0,
	      "proof: 3000 random record programs, JIT (%d proven, %d not) and interpreter stop alike (%d ran to exit): %d differ", proven, refused, done, differ);
}

static void probe(void)
{
	uint64_t r0;
	uint8_t *dst = hstack + 100;
	long pg = sysconf(_SC_PAGESIZE);
	uint8_t *two = mmap(NULL, (size_t)pg * 2, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	mprotect(two + pg, (size_t)pg, PROT_NONE);
	static const char msg[] = "hello, agent";
	hbegin(NULL);
	memset(dst, 0x55, 64);
	CHECK(hcall(112, P(dst), 8, P(msg), 0, 0, &r0) == 0 && r0 == 0 && memcmp(dst, msg, 8) == 0, "probe_read_user: 8 bytes");
	memset(dst, 0x55, 64);
	CHECK(hcall(112, P(dst), 16, 0, 0, 0, &r0) == 0 && r0 == NEG(EFAULT) && dst[0] == 0 && dst[15] == 0 && dst[16] == 0x55,
	      "probe_read_user of NULL: -EFAULT, size bytes zeroed");
	CHECK(hcall(112, P(dst), 16, P(two) + pg - 8, 0, 0, &r0) == 0 && r0 == NEG(EFAULT), "across into a PROT_NONE page: -EFAULT");
	CHECK(hcall(4, P(dst), 8, 0xffff800000000000ull, 0, 0, &r0) == 0 && r0 == NEG(EFAULT), "probe_read of a kernel address: -EFAULT");
	CHECK(hcall(112, P(dst), 0, 0, 0, 0, &r0) == 0 && r0 == 0, "size 0: 0");
	CHECK(hcall(112, P(ctx), 8, P(msg), 0, 0, &r0) == 1, "a destination in the read-only ctx stops the run");
	CHECK(hcall(112, P(msg), 8, P(msg), 0, 0, &r0) == 1, "a destination outside the run's memory stops the run");
	CHECK(hcall(112, P(dst), EBPF_VM_STACK_SIZE, P(msg), 0, 0, &r0) == 1, "a destination running off the stack stops the run");

	memset(dst, 0x55, 64);
	CHECK(hcall(114, P(dst), 32, P(msg), 0, 0, &r0) == 0 && r0 == sizeof msg && strcmp((char *)dst, msg) == 0 && dst[sizeof msg] == 0x55,
	      "probe_read_user_str: the length with the NUL; nothing written past the NUL");
	memset(dst, 0x55, 64);
	CHECK(hcall(114, P(dst), 6, P(msg), 0, 0, &r0) == 0 && r0 == 6 && memcmp(dst, "hello\0", 6) == 0 && dst[6] == 0x55,
	      "a string longer than size: size - 1 bytes and a NUL, returns size");
	CHECK(hcall(45, P(dst), 1, P(msg), 0, 0, &r0) == 0 && r0 == 1 && dst[0] == 0, "size 1: just the NUL");
	memset(two + pg - 5, 'x', 5);
	memset(dst, 0x55, 64);
	CHECK(hcall(114, P(dst), 32, P(two) + pg - 5, 0, 0, &r0) == 0 && r0 == NEG(EFAULT) && dst[0] == 0 && dst[31] == 0 && dst[32] == 0x55,
	      "a string running into a PROT_NONE page: -EFAULT, dst zeroed");
	two[pg - 1] = 0;
	CHECK(hcall(114, P(dst), 32, P(two) + pg - 5, 0, 0, &r0) == 0 && r0 == 5 && strcmp((char *)dst, "xxxx") == 0,
	      "a string whose NUL is the page's last byte: read whole");
	char longs[600];
	memset(longs, 'y', sizeof longs - 1);
	longs[sizeof longs - 1] = 0;
	CHECK(hcall(114, P(dst), 1000, P(longs), 0, 0, &r0) == 0 && r0 == 600 && strlen((char *)dst) == 599, "a 599-byte string (several chunks)");
	CHECK(hcall(114, P(dst), 16, 1, 0, 0, &r0) == 0 && r0 == NEG(EFAULT), "a wild pointer: -EFAULT");
	memset(dst, 0x55, 64);
	CHECK(hcall(113, P(dst), 8, P(msg), 0, 0, &r0) == 0 && r0 == NEG(EFAULT) && dst[0] == 0 && dst[7] == 0 && dst[8] == 0x55,
	      "probe_read_kernel: no kernel memory here: zeroed, -EFAULT");
	CHECK(hcall(115, P(dst), 8, P(msg), 0, 0, &r0) == 0 && r0 == NEG(EFAULT), "probe_read_kernel_str: the same");
	CHECK(hcall(115, P(ctx), 8, P(msg), 0, 0, &r0) == 1, "probe_read_kernel_str into the ctx stops the run");

	/* cost: process_vm_readv per read (a syscall) against a plain copy */
	struct timespec t0, t1;
	const int N = 200000;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (int i = 0; i < N; i++) hcall(112, P(dst), 8, P(msg), 0, 0, &r0);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	double ns = ((double)(t1.tv_sec - t0.tv_sec) * 1e9 + (double)(t1.tv_nsec - t0.tv_nsec)) / N;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (int i = 0; i < N; i++) hcall(5, 0, 0, 0, 0, 0, &r0);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	double ns5 = ((double)(t1.tv_sec - t0.tv_sec) * 1e9 + (double)(t1.tv_nsec - t0.tv_nsec)) / N;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (int i = 0; i < N; i++) hcall(114, P(dst), 32, P(msg), 0, 0, &r0);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	double nss = ((double)(t1.tv_sec - t0.tv_sec) * 1e9 + (double)(t1.tv_nsec - t0.tv_nsec)) / N;
	printf("# probe_read_user of 8 bytes: %.0f ns; probe_read_user_str of 13: %.0f ns; ktime_get_ns: %.0f ns (per call)\n", ns, nss, ns5);
	CHECK(ns < 20000, "probe_read_user costs one syscall (%.0f ns)", ns);
	munmap(two, (size_t)pg * 2);
}

static void *named(void *arg)
{
	uint64_t r0;
	uint8_t *dst = arg;
	pthread_setname_np(pthread_self(), "helpers-thr");
	hcall(16, P(dst), 16, 0, 0, 0, &r0);
	return (void *)(uintptr_t)r0;
}

static void task(void)
{
	uint64_t r0;
	uint8_t *dst = hstack + 200;
	hbegin(NULL);
	memset(dst, 0x55, 32);
	pthread_t t;
	void *res;
	pthread_create(&t, NULL, named, dst);
	pthread_join(t, &res);
	CHECK(res == NULL && strcmp((char *)dst, "helpers-thr") == 0 && dst[11] == 0 && dst[15] == 0 && dst[16] == 0x55,
	      "get_current_comm: the calling thread's name, zero-padded to size (%s)", dst);
	pthread_setname_np(pthread_self(), "maintest");
	memset(dst, 0x55, 32);
	CHECK(hcall(16, P(dst), 4, 0, 0, 0, &r0) == 0 && r0 == 0 && memcmp(dst, "mai\0", 4) == 0 && dst[4] == 0x55, "size 4: 3 bytes and a NUL");
	CHECK(hcall(16, P(ctx), 16, 0, 0, 0, &r0) == 1, "into the ctx: the run stops");
	hcall(14, 0, 0, 0, 0, 0, &r0);
	CHECK(r0 == ((uint64_t)getpid() << 32 | (uint32_t)gettid()), "get_current_pid_tgid: tgid << 32 | tid");
	hcall(15, 0, 0, 0, 0, 0, &r0);
	CHECK(r0 == ((uint64_t)getgid() << 32 | getuid()), "get_current_uid_gid: gid << 32 | uid");
	wbpf_map_set_thread_cpu(1);
	hcall(8, 0, 0, 0, 0, 0, &r0);
	CHECK(r0 == 1, "get_smp_processor_id: the maps library's CPU for this thread");
	wbpf_map_set_thread_cpu(-1);
	uint64_t a, b, c;
	hcall(7, 0, 0, 0, 0, 0, &a);
	hcall(7, 0, 0, 0, 0, 0, &b);
	hcall(7, 0, 0, 0, 0, 0, &c);
	CHECK(a <= 0xffffffffu && b <= 0xffffffffu && !(a == b && b == c), "get_prandom_u32: 32-bit values that change");
	uint64_t m, bt, co;
	hcall(5, 0, 0, 0, 0, 0, &m);
	hcall(125, 0, 0, 0, 0, 0, &bt);
	hcall(160, 0, 0, 0, 0, 0, &co);
	CHECK(bt >= m && co <= m + 20000000ull && co + 20000000ull >= m, "ktime_get_boot_ns >= ktime_get_ns; coarse within a tick");
}

static void perf(void)
{
	struct amap *pa = mkmap(30, WBPF_MAP_PERF_EVENT_ARRAY, 4, 4, 2, 0);
	uint8_t out[256];
	uint64_t r0, data = 0x1122334455667788ull;
	hbegin(NULL);
	wbpf_perf_open_readers(&pa->m);
	wbpf_map_set_thread_cpu(1);
	CHECK(hcall(25, P(ctx), REF(30), 0xffffffffull, P(&data), 8, &r0) == 1, "perf_event_output of data outside the run's memory: the run stops");
	uint64_t *d = (uint64_t *)(hstack + 300);
	*d = data;
	CHECK(hcall(25, P(ctx), REF(30), 0xffffffffull, P(d), 8, &r0) == 0 && r0 == 0, "perf_event_output BPF_F_CURRENT_CPU: 0");
	CHECK(hcall(25, P(ctx), REF(30), 0, P(d), 8, &r0) == 0 && r0 == NEG(EOPNOTSUPP), "another CPU's slot: -EOPNOTSUPP");
	CHECK(hcall(25, P(ctx), REF(30), 1ull << 32, P(d), 8, &r0) == 0 && r0 == NEG(EINVAL), "flags outside the index mask: -EINVAL");
	CHECK(hcall(25, P(ctx), REF(20), 0xffffffffull, P(d), 8, &r0) == 0 && r0 == NEG(EINVAL), "a ring buffer is no perf array: -EINVAL");
	wbpf_map_set_thread_cpu(-1);
	CHECK(wbpf_ring_drain(&pa->m, out, sizeof out) == 1 && memcmp(out + 8, &data, 8) == 0, "the sample reaches the consumer");
}

/* trace_printk of fmt with up to 3 args: r0, the text in traced */
static uint64_t printk(const char *fmt, uint64_t a, uint64_t b, uint64_t c)
{
	uint64_t r0;
	char *f = (char *)hstack + 1024;
	size_t n = strlen(fmt) + 1;
	memcpy(f, fmt, n);
	traced[0] = 0;
	traced_len = 0;
	if (hcall(6, P(f), n, a, b, c, &r0) != 0) return 1234;
	return r0;
}

static void trace(void)
{
	static const char s[] = "str";
	hbegin(NULL);
	uint64_t r = printk("a=%d b=%u c=%x", (uint64_t)-5, 7, 255);
	CHECK(r == strlen(traced) && strcmp(traced, "a=-5 b=7 c=ff") == 0 && traced_hook == 9, "%%d %%u %%x, the length returned, the hook's id (%s, %d)", traced, (int)r);
	printk("%ld %lu %lx", (uint64_t)-5, (uint64_t)-1, 0xabcdef0123ull);
	CHECK(strcmp(traced, "-5 18446744073709551615 abcdef0123") == 0, "%%ld %%lu %%lx (%s)", traced);
	r = printk("%s|%c|%%|%p", P(s), 'Z', 0x1234);
	CHECK(strcmp(traced, "str|Z|%|0000000000001234") == 0 && r == strlen(traced), "%%s %%c %%%% %%p (%s)", traced);
	printk("[%5d|%-4u|%05x]", 42, 7, 0xab);
	CHECK(strcmp(traced, "[   42|7   |000ab]") == 0, "widths and flags (%s)", traced);
	printk("%lld %llu %i", (uint64_t)-1, (uint64_t)-1, 0xffffffffu);
	CHECK(strcmp(traced, "-1 18446744073709551615 -1") == 0, "%%lld %%llu, %%i of a 32-bit -1 (%s)", traced);
	printk("[%s]", 1, 0, 0);
	CHECK(strcmp(traced, "[]") == 0, "%%s of a wild pointer: empty (%s)", traced);
	CHECK(printk("%d %d %d %d", 1, 2, 3) == NEG(EINVAL) && traced_len == 0, "4 conversions: -EINVAL, nothing traced");
	CHECK(printk("%q", 1, 2, 3) == NEG(EINVAL), "an unknown conversion: -EINVAL");
	CHECK(printk("bad\x01", 0, 0, 0) == NEG(EINVAL), "a control character: -EINVAL");
	uint64_t r0;
	char *f = (char *)hstack + 1024;
	memcpy(f, "abc", 3);
	CHECK(hcall(6, P(f), 3, 0, 0, 0, &r0) == 0 && r0 == NEG(EINVAL), "no NUL within fmt_size: -EINVAL");
	CHECK(hcall(6, P(f), 0, 0, 0, 0, &r0) == 0 && r0 == NEG(EINVAL), "fmt_size 0: -EINVAL");
	CHECK(hcall(6, 0x1000, 8, 0, 0, 0, &r0) == 1, "fmt outside the run's memory: the run stops");
	char big[1100];
	memset(big, 'z', sizeof big - 1);
	big[sizeof big - 1] = 0;
	r = printk("%s", P(big), 0, 0);
	CHECK(traced_len == PRINTK_SIZE - 1, "a long text is truncated to %d bytes (%u; returns %d)", PRINTK_SIZE - 1, traced_len, (int)r);
}

int main(void)
{
	setvbuf(stdout, NULL, _IOLBF, 0);
	table();
	regions();
	ring();
	proof();
	probe();
	task();
	perf();
	trace();
	printf("agent_helpers_test: %d failed\n", failures);
	return failures ? 1 : 0;
}
