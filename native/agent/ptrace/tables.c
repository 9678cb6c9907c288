/* The tracer's tables: the shared maps it mapped, the programs it loaded into the C engine, the run's hooks
 * (set in every traced process that maps their file); and a program's run at a hit, on a copy of the
 * stopped thread's registers as ctx (read-only, the kernel's pt_regs layout). */
#define _GNU_SOURCE
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/sysmacros.h>

#include "../hook/hook.h"
#include "../lib/agent.h"
#include "tracer.h"
#include "../lib/frames.h"

#define MAX_MAPS 64
#define MAX_PROGS 64
#define RUN_BUDGET 1000000

static struct amap maps[MAX_MAPS];
static unsigned nmaps;
static struct {
	uint32_t id;
	ebpf_vm_prog *prog;
} progs[MAX_PROGS];
static unsigned nprogs;
struct thook thooks[MAX_THOOKS];


/* the tracer serves one host: the session the agent's helpers pass is ignored */
struct amap *find_map(const struct session *s, uint64_t ref)
{
	(void)s;
	if ((ref & 0xffffffff00000000ull) != MAPREF_TAG || (uint32_t)ref == 0) return NULL;
	for (unsigned i = nmaps; i-- > 0;)
		if (maps[i].id == (uint32_t)ref) return &maps[i];
	return NULL;
}

/* into a dropped map's slot (id 0), else a new one */
int tables_map_add(uint32_t id, int fd, int nfd, char *msg, size_t n)
{
	if (!id) return wbpf_frame_msg(msg, n, EINVAL, "map 0: id 0 is reserved");
	unsigned i = 0;
	while (i < nmaps && maps[i].id) i++;
	if (i >= MAX_MAPS) return wbpf_frame_msg(msg, n, ENOSPC, "map %u: the tracer holds %u maps already", id, MAX_MAPS);
	int rc = wbpf_map_open(fd, nfd, &maps[i].m);
	if (rc < 0) return wbpf_frame_msg(msg, n, -rc, "map %u: opening fd %d: %s", id, fd, strerror(-rc));
	maps[i].id = id;
	if (i == nmaps) nmaps++;
	return wbpf_frame_msg(msg, n, 0, "map %u", id);
}

/* DROP (proto.h): a program no hook runs, then a map no program names; the tracer's one thread runs every
 * program, so nothing can be inside them */
int tables_drop(const uint8_t *p, uint32_t len, char *msg, size_t n)
{
	struct wbpf_agent_drop r;
	if (len < sizeof r) return wbpf_frame_msg(msg, n, EINVAL, "drop: short request");
	memcpy(&r, p, sizeof r);
	if (!r.id) return wbpf_frame_msg(msg, n, ENOENT, "drop: no object 0");
	if (r.kind == WBPF_AGENT_DROP_PROG) {
		for (unsigned i = 0; i < nprogs; i++) {
			if (progs[i].id != r.id) continue;
			for (unsigned k = 0; k < MAX_THOOKS; k++)
				if (thooks[k].live && thooks[k].prog == r.id) return wbpf_frame_msg(msg, n, EBUSY, "drop prog %u: hook %u still runs it", r.id, thooks[k].id);
			if (sys_uses_prog(r.id) || sched_uses_prog(r.id)) return wbpf_frame_msg(msg, n, EBUSY, "drop prog %u: a syscall hook still runs it", r.id);
			free(ebpf_vm_user(progs[i].prog));
			ebpf_vm_free(progs[i].prog);
			progs[i].id = 0, progs[i].prog = NULL;
			return wbpf_frame_msg(msg, n, 0, "drop prog %u", r.id);
		}
		return wbpf_frame_msg(msg, n, ENOENT, "drop prog %u: no program %u", r.id, r.id);
	}
	if (r.kind != WBPF_AGENT_DROP_MAP) return wbpf_frame_msg(msg, n, EINVAL, "drop: unknown kind %u", r.kind);
	for (unsigned i = 0; i < nmaps; i++) {
		if (maps[i].id != r.id) continue;
		for (unsigned k = 0; k < nprogs; k++) {
			const struct prog_refs *refs = progs[k].prog ? ebpf_vm_user(progs[k].prog) : NULL;
			for (unsigned j = 0; refs && j < refs->nmaps; j++)
				if (refs->map_ids[j] == r.id) return wbpf_frame_msg(msg, n, EBUSY, "drop map %u: program %u still names it", r.id, progs[k].id);
		}
		maps[i].id = 0;
		wbpf_map_close(&maps[i].m, 1);
		return wbpf_frame_msg(msg, n, 0, "drop map %u", r.id);
	}
	return wbpf_frame_msg(msg, n, ENOENT, "drop map %u: no map %u", r.id, r.id);
}

int tables_prog_add(const uint8_t *p, uint32_t len, char *msg, size_t n)
{
	struct wbpf_agent_prog r;
	if (len < sizeof r) return wbpf_frame_msg(msg, n, EINVAL, "prog: short request");
	memcpy(&r, p, sizeof r);
	if ((uint64_t)sizeof r + 4ull * r.nhelpers + r.insn_len != len) return wbpf_frame_msg(msg, n, EINVAL, "prog %u: bad length", r.id);
	if (!r.id) return wbpf_frame_msg(msg, n, EINVAL, "prog 0: id 0 is reserved");
	unsigned slot = 0;
	while (slot < nprogs && progs[slot].prog) slot++;
	if (slot >= MAX_PROGS) return wbpf_frame_msg(msg, n, ENOSPC, "prog %u: the tracer holds %u programs already", r.id, MAX_PROGS);
	const uint8_t *helpers = p + sizeof r, *insns = helpers + 4 * r.nhelpers;
	for (uint32_t i = 0; i < r.nhelpers; i++) {
		uint32_t h;
		memcpy(&h, helpers + 4 * i, 4);
		if (!helper_of(NULL, h)) return wbpf_frame_msg(msg, n, EOPNOTSUPP, "prog %u: helper %u is not implemented by the agent", r.id, h);
	}
	struct prog_refs *refs = calloc(1, sizeof *refs);
	if (!refs) return wbpf_frame_msg(msg, n, ENOMEM, "prog %u: out of memory", r.id);
	ebpf_vm_env env = { .helper = helper_of, .map = map_ref, .user = refs };
	ebpf_vm_error err;
	ebpf_vm_prog *prog;
	if (ebpf_vm_load(insns, r.insn_len, &env, &prog, &err) != EBPF_VM_OK) {
		free(refs);
		return wbpf_frame_msg(msg, n, EINVAL, "%s", err.message);
	}
	progs[slot].id = r.id;
	progs[slot].prog = prog;
	if (slot == nprogs) nprogs++;
	return wbpf_frame_msg(msg, n, 0, "prog %u", r.id);
}

static ebpf_vm_prog *find_prog(uint32_t id)
{
	for (unsigned i = nprogs; id && i-- > 0;)
		if (progs[i].id == id) return progs[i].prog;
	return NULL;
}

struct thook *tables_hook(uint32_t id)
{
	for (unsigned i = 0; i < MAX_THOOKS; i++)
		if (thooks[i].live && thooks[i].id == id) return &thooks[i];
	return NULL;
}

/* sets the hook in every traced process; answered as the agent does (pending when no process maps the file) */
int tables_hook_add(const struct wbpf_agent_hook *r, char *msg, size_t n)
{
	if (!r->id || r->id >= 0xfffffffeu) /* 0 and the loader's two sites (loader.c) */
		return wbpf_frame_msg(msg, n, EINVAL, "hook %u: ids 0, 0xfffffffe and 0xffffffff are reserved", r->id);
	if (!find_prog(r->prog_id)) return wbpf_frame_msg(msg, n, ENOENT, "hook %u: no program %u", r->id, r->prog_id);
	if (tables_hook(r->id) || sys_has(r->id) || sched_has(r->id)) return wbpf_frame_msg(msg, n, EEXIST, "hook %u: the tracer has a hook %u already", r->id, r->id);
	struct thook *h = NULL;
	for (unsigned i = 0; i < MAX_THOOKS && !h; i++)
		if (!thooks[i].live) h = &thooks[i];
	if (!h) return wbpf_frame_msg(msg, n, ENOSPC, "hook %u: the tracer holds %u hooks already", r->id, MAX_THOOKS);
	*h = (struct thook){ .id = r->id, .prog = r->prog_id, .flags = r->flags & WBPF_AGENT_HOOK_RETURN, .live = 1, .req = *r };
	int set = 0;
	uint64_t where = 0;
	pid_t in = 0;
	for (unsigned i = 0; i < nprocs; i++) {
		int rc = proc_hook(procs[i], h);
		if (rc < 0) {
			for (unsigned j = 0; j < nprocs; j++) proc_unhook(procs[j], h->id);
			h->live = 0;
			return wbpf_frame_msg(msg, n, -rc, "hook %u: %s in process %d", r->id,
				   rc == -EBUSY ? "the entry holds an int3 already (another debugger's breakpoint)" : strerror(-rc), (int)procs[i]->pid);
		}
		if (rc > 0 && !set) {
			set = 1;
			in = procs[i]->pid;
			for (unsigned k = 0; k < procs[i]->nsites; k++)
				if (procs[i]->sites[k].hook == h->id) where = procs[i]->sites[k].addr;
		}
	}
	if (!set)
		return wbpf_frame_msg(msg, n, 0, "hook %u pending: file offset 0x%" PRIx64 " of dev %u:%u inode %" PRIu64 " is not mapped executable",
			   r->id, r->file_offset, gnu_dev_major(r->dev), gnu_dev_minor(r->dev), r->ino);
	return wbpf_frame_msg(msg, n, 0, "hook %u at 0x%" PRIx64 " in process %d (ptrace tier)", r->id, where, (int)in);
}

int tables_unhook(uint32_t id, char *msg, size_t n)
{
	struct thook *h = tables_hook(id);
	int st;
	if (!h && (sys_remove(id, &st, msg, n) || sched_remove(id, &st, msg, n))) return st;
	if (!h) return wbpf_frame_msg(msg, n, ENOENT, "unhook %u: no hook %u", id, id);
	for (unsigned i = 0; i < nprocs; i++) proc_unhook(procs[i], id);
	h->live = 0;
	return wbpf_frame_msg(msg, n, 0, "unhook %u", id);
}

const void *tables_prog(uint32_t id) { return find_prog(id); }

int tables_exec(uint32_t id, uint32_t prog_id, struct task *t, void *ctx, size_t size, char *why, size_t n)
{
	ebpf_vm_prog *prog = find_prog(prog_id);
	if (!prog) {
		snprintf(why, n, "program %u is gone", prog_id);
		return EBPF_VM_F_HELPER;
	}
	cur_tid = t->tid;
	cur_tgid = task_tgid(t); /* not t->p->pid: a vfork child shares its parent's memory, not its pid */
	cur_task = t;
	cur_ctx = (uintptr_t)ctx, cur_ctx_size = size;
	struct hit mem;
	uint8_t stack[EBPF_VM_STACK_SIZE] __attribute__((aligned(16)));
	ebpf_vm_run run = { .stack = stack, .stack_addr = (uintptr_t)stack, .budget = RUN_BUDGET };
	hit_begin(&mem, &run, id, prog, ctx, size);
	uint64_t args[5] = { (uintptr_t)ctx, 0, 0, 0, 0 };
	int st = ebpf_vm_exec(prog, &run, args);
	hit_end(&mem);
	if (st != EBPF_VM_DONE)
		snprintf(why, n, "program %u stopped with status %d at pc %u (addr 0x%" PRIx64 ")", prog_id, st, run.fault.pc, run.fault.addr);
	return st;
}

int tables_run(struct thook *h, struct task *t, struct user_regs_struct *regs)
{
	struct wbpf_pt_regs ctx;
	_Static_assert(sizeof ctx <= sizeof *regs, "pt_regs is a prefix of user_regs_struct");
	memcpy(&ctx, regs, sizeof ctx);
	char why[160];
	int st = tables_exec(h->id, h->prog, t, &ctx, sizeof ctx, why, sizeof why);
	if (st != EBPF_VM_DONE) {
		h->disabled = 1;
		char msg[200];
		snprintf(msg, sizeof msg, "hook %u disabled: %s", h->id, why);
		chan_event(h->id, msg);
	}
	return st;
}
