/* A run's memory: the sorted, disjoint regions a program may touch (ctx, global data, lookup values,
 * reserved records; see agent.h), kept in a small table on the hooked thread's stack; the pointer checks
 * helpers make against it. */
#include <string.h>

#include "agent.h"

uint32_t value_flags(const struct amap *m)
{
	return (wbpf_map_flags(&m->m) & 0x80 /* BPF_F_RDONLY_PROG */) ? 0 : EBPF_VM_REGION_WRITABLE;
}

/* insert [addr, addr+size) keeping the table sorted and disjoint: 1 already there (the same range and
 * flags), 0 added, -1 no room or overlapping another region (refused: nothing may alias) */
static int region_insert(struct hit *x, uintptr_t addr, uint64_t size, uint32_t flags)
{
	uint32_t i = 0, n = x->nregions;
	if (size == 0 || addr + size < addr) return -1;
	while (i < n && x->regions[i].addr <= addr) i++;
	if (i > 0) {
		const ebpf_vm_region *p = &x->regions[i - 1];
		if (p->addr == addr && p->size == size && p->flags == flags) return 1;
		if (p->addr + p->size > addr) return -1;
	}
	if (i < n && addr + size > x->regions[i].addr) return -1;
	if (n >= sizeof x->regions / sizeof x->regions[0]) return -1;
	for (uint32_t k = n; k > i; k--) x->regions[k] = x->regions[k - 1]; /* a few entries: no memmove call */
	x->regions[i] = (ebpf_vm_region){ addr, size, (uint8_t *)addr, flags };
	x->nregions = n + 1;
	return 0;
}

int region_add_dyn(ebpf_vm_run *run, uintptr_t addr, uint64_t size, uint32_t flags)
{
	struct hit *x = run->data;
	if (x->ndyn >= HIT_MAX_DYN) {
		for (uint32_t i = 0; i < x->nregions; i++) /* a repeat of one held */
			if (x->regions[i].addr == addr && x->regions[i].size == size && x->regions[i].flags == flags) return 0;
		return -1;
	}
	int r = region_insert(x, addr, size, flags);
	if (r < 0) return -1;
	if (r == 0) x->ndyn++;
	run->regions = x->regions;
	run->nregions = x->nregions;
	return 0;
}

void region_remove_dyn(ebpf_vm_run *run, uintptr_t addr)
{
	struct hit *x = run->data;
	for (uint32_t i = 0; i < x->nregions; i++)
		if (x->regions[i].addr == addr) {
			for (uint32_t k = i + 1; k < x->nregions; k++) x->regions[k - 1] = x->regions[k];
			x->nregions--;
			x->ndyn--;
			break;
		}
	run->nregions = x->nregions;
}

/* the program's global data (hit_start's slow part: most programs have none) */
void hit_add_globals(struct hit *x, const struct prog_refs *refs)
{
	for (unsigned i = 0; i < refs->n; i++) {
		struct amap *m = refs->globals[i];
		region_insert(x, (uintptr_t)wbpf_map_direct_value(&m->m), wbpf_map_value_size(&m->m), value_flags(m));
	}
}

void hit_begin(struct hit *x, ebpf_vm_run *run, uint32_t hook_id, const ebpf_vm_prog *prog, void *ctx, size_t ctx_size)
{
	hit_start(x, run, hook_id, prog ? ebpf_vm_user(prog) : NULL, ctx, ctx_size);
}

void hit_end(struct hit *x)
{
	for (uint32_t i = 0; i < x->nrecords; i++) wbpf_ringbuf_discard(&x->records[i].m->m, (void *)x->records[i].data, 0);
	x->nrecords = 0;
}

int ptr_ok(const ebpf_vm_run *run, uint64_t addr, uint64_t len, int write)
{
	if (addr + len < addr) return 0;
	if (addr >= run->stack_addr && addr + len <= run->stack_addr + EBPF_VM_STACK_SIZE) return 1;
	for (uint32_t i = 0; i < run->nregions; i++) {
		const ebpf_vm_region *r = &run->regions[i];
		if (addr >= r->addr && addr + len <= r->addr + r->size)
			return !write || (r->flags & EBPF_VM_REGION_WRITABLE);
	}
	return 0;
}
