/* The tracer's breakpoints: one breakpoint instruction (the arch's bp_insn) per address in a traced
 * process's memory (written through /proc/PID/mem, which reaches read-only text and keeps arm64's
 * instruction cache coherent), reference-counted by hook sites and armed returns, the original bytes kept
 * to restore; a thread's registers; and where a hook's file offset is mapped in a process. */
#define _GNU_SOURCE
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <elf.h>
#include <string.h>
#include <sys/ptrace.h>
#include <sys/uio.h>
#include <unistd.h>

#include "../lib/maps_file.h"
#include "tracer.h"

int mem_read(struct proc *p, uint64_t addr, void *buf, size_t n)
{
	return pread(p->mem, buf, n, (off_t)addr) == (ssize_t)n ? 0 : -EFAULT;
}

int mem_write(struct proc *p, uint64_t addr, const void *buf, size_t n)
{
	ssize_t w = pwrite(p->mem, buf, n, (off_t)addr);
	if (w == (ssize_t)n) return 0;
	tlog("process %d: writing %zu bytes at 0x%llx: %s", (int)p->pid, n, (unsigned long long)addr, w < 0 ? strerror(errno) : "short write");
	return -EFAULT;
}

int regs_get(pid_t tid, struct user_regs_struct *r)
{
	struct iovec v = { r, sizeof *r };
	return ptrace(PTRACE_GETREGSET, tid, (void *)NT_PRSTATUS, &v) == 0 && v.iov_len == sizeof *r ? 0 : -1;
}

int regs_set(pid_t tid, const struct user_regs_struct *r)
{
	struct iovec v = { (void *)r, sizeof *r };
	return ptrace(PTRACE_SETREGSET, tid, (void *)NT_PRSTATUS, &v) == 0 ? 0 : -1;
}

struct bp *bp_find(struct proc *p, uint64_t addr)
{
	for (unsigned i = 0; i < p->nbps; i++)
		if (p->bps[i].addr == addr) return &p->bps[i];
	return NULL;
}

struct bp *bp_get(struct proc *p, uint64_t addr, int ret)
{
	struct bp *b = bp_find(p, addr);
	if (!b) {
		if (p->nbps >= MAX_BPS) return NULL;
		b = &p->bps[p->nbps];
		memset(b, 0, sizeof *b);
		b->addr = addr;
		if (mem_read(p, addr, b->orig, bp_len) < 0) return NULL;
		p->nbps++;
	}
	if (!b->inserted) {
		if (mem_read(p, addr, b->orig, bp_len) < 0 || mem_write(p, addr, bp_insn, bp_len) < 0) return NULL;
		b->inserted = 1;
	}
	if (ret) {
		b->nrets++;
		b->ret_site = 1;
	} else {
		b->nsites++;
	}
	return b;
}

/* A return site's breakpoint is written once and stays while the process has a return hook, even when
 * no armed return is left: never removed and written again under running threads. The threads' next
 * calls arm it again at once, and a thread that ran the original instruction while it was out may keep
 * a stale copy of it (seen in the emulated arm64 guest: threads that armed a return ran through the
 * re-inserted breakpoint without trapping). A pass without an armed return costs one trap and a step. */
static int ret_hooks(const struct proc *p)
{
	for (unsigned i = 0; i < p->nsites; i++) {
		const struct thook *h = tables_hook(p->sites[i].hook);
		if (h && h->flags == WBPF_AGENT_HOOK_RETURN) return 1;
	}
	return 0;
}

int bp_needed(const struct proc *p, const struct bp *b)
{
	return b->nsites || b->nrets || (b->ret_site && ret_hooks(p));
}

/* return sites no longer needed (the process's last return hook went) get their bytes back */
static void bp_sweep(struct proc *p)
{
	for (unsigned i = 0; i < p->nbps; i++) {
		struct bp *b = &p->bps[i];
		if (b->inserted && !bp_needed(p, b)) {
			(void)mem_write(p, b->addr, b->orig, bp_len);
			b->inserted = 0;
		}
	}
}

void bp_put(struct proc *p, uint64_t addr, int ret)
{
	struct bp *b = bp_find(p, addr);
	if (!b) return;
	if (ret && b->nrets) b->nrets--;
	if (!ret && b->nsites) b->nsites--;
	if (b->inserted && !bp_needed(p, b)) {
		(void)mem_write(p, addr, b->orig, bp_len);
		b->inserted = 0; /* the entry stays: a thread already trapped there is still recognized (hit.c) */
	}
}

void bp_restore_all(struct proc *p)
{
	for (unsigned i = 0; i < p->nbps; i++)
		if (p->bps[i].inserted) {
			(void)mem_write(p, p->bps[i].addr, p->bps[i].orig, bp_len);
			p->bps[i].inserted = 0;
			p->bps[i].nrets = p->bps[i].nsites = 0;
		}
}

void bp_copy(struct proc *dst, const struct proc *src)
{
	memcpy(dst->bps, src->bps, src->nbps * sizeof src->bps[0]);
	dst->nbps = src->nbps;
	for (unsigned i = 0; i < dst->nbps; i++) dst->bps[i].nrets = 0; /* the returns a copied thread armed come back with it (tasks.c) */
	memcpy(dst->sites, src->sites, src->nsites * sizeof src->sites[0]);
	dst->nsites = src->nsites;
}

int proc_hook(struct proc *p, const struct thook *h)
{
	for (unsigned i = 0; i < p->nsites; i++)
		if (p->sites[i].hook == h->id) return 1;
	uint64_t addr = wbpf_maps_find(p->pid, &h->req);
	if (!addr) return 0;
	if (p->nsites >= MAX_SITES) return -ENOSPC;
	struct bp *b = bp_get(p, addr, 0);
	if (!b) return -EFAULT;
	if (arch_bp_foreign(b->orig)) {
		bp_put(p, addr, 0);
		return -EBUSY; /* someone else's breakpoint (a debugger's) */
	}
	p->sites[p->nsites++] = (struct site){ h->id, addr };
	return 1;
}

void proc_unhook(struct proc *p, uint32_t hook)
{
	for (unsigned i = 0; i < p->nsites; i++) {
		if (p->sites[i].hook != hook) continue;
		uint64_t addr = p->sites[i].addr;
		p->sites[i] = p->sites[--p->nsites];
		bp_put(p, addr, 0);
		bp_sweep(p);
		return;
	}
}
