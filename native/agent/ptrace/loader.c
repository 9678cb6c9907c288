/* Libraries loaded after a hook was set (dlopen, and in a launched command the ones its loader maps
 * before main): a breakpoint on the dynamic loader's debugger hook (r_debug.r_brk, _dl_debug_state), which
 * the loader calls after each change to its list of objects; at each hit the run's hooks whose file is now
 * mapped are set and the sites whose mapping went (dlclose) are forgotten. All read from the process's
 * memory (auxv, the program's PT_DYNAMIC, DT_DEBUG): no file is parsed. A static binary has no loader. */
#define _GNU_SOURCE
#include <elf.h>
#include <fcntl.h>
#include <link.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "../lib/maps_file.h"
#include "tracer.h"

#define LOADER_SITE 0xffffffffu /* the site of the loader's hook, or of the program's entry until the loader ran */
#define ENTRY_SITE 0xfffffffeu

static uint64_t auxv(pid_t pid, uint64_t type)
{
	char path[64];
	snprintf(path, sizeof path, "/proc/%d/auxv", (int)pid);
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) return 0;
	uint64_t a[2], v = 0;
	while (read(fd, a, sizeof a) == (ssize_t)sizeof a && a[0] != AT_NULL)
		if (a[0] == type) v = a[1];
	close(fd);
	return v;
}

/* r_debug.r_brk through the program's DT_DEBUG (filled in by the loader once it has run), or 0 */
static uint64_t loader_brk(struct proc *p)
{
	uint64_t phdr = auxv(p->pid, AT_PHDR), phnum = auxv(p->pid, AT_PHNUM);
	if (!phdr || !phnum || phnum > 64) return 0;
	Elf64_Phdr ph[64];
	if (mem_read(p, phdr, ph, phnum * sizeof ph[0]) < 0) return 0;
	uint64_t bias = 0, dyn = 0, ndyn = 0;
	int have_phdr = 0;
	for (unsigned i = 0; i < phnum; i++) {
		if (ph[i].p_type == PT_PHDR) bias = phdr - ph[i].p_vaddr, have_phdr = 1;
		if (ph[i].p_type == PT_DYNAMIC) dyn = ph[i].p_vaddr, ndyn = ph[i].p_memsz / sizeof(Elf64_Dyn);
	}
	if (!have_phdr || !dyn) return 0;
	for (uint64_t i = 0; i < ndyn && i < 4096; i++) {
		Elf64_Dyn d;
		if (mem_read(p, bias + dyn + i * sizeof d, &d, sizeof d) < 0 || d.d_tag == DT_NULL) return 0;
		if (d.d_tag != DT_DEBUG) continue;
		struct r_debug r;
		if (!d.d_un.d_ptr || mem_read(p, d.d_un.d_ptr, &r, sizeof r) < 0) return 0;
		return (uint64_t)r.r_brk;
	}
	return 0;
}

static struct site *site_of(struct proc *p, uint32_t id)
{
	for (unsigned i = 0; i < p->nsites; i++)
		if (p->sites[i].hook == id) return &p->sites[i];
	return NULL;
}

static void add_site(struct proc *p, uint32_t id, uint64_t addr)
{
	if (!addr || p->nsites >= MAX_SITES || site_of(p, id)) return;
	struct bp *b = bp_get(p, addr, 0);
	if (!b) return;
	if (arch_bp_foreign(b->orig)) { /* someone else's breakpoint (a debugger's): left alone */
		bp_put(p, addr, 0);
		return;
	}
	p->sites[p->nsites++] = (struct site){ id, addr };
	tlog("process %d: %s breakpoint at 0x%llx", (int)p->pid, id == LOADER_SITE ? "loader" : "entry", (unsigned long long)addr);
}

void loader_watch(struct proc *p)
{
	if (!auxv(p->pid, AT_BASE)) return; /* no interpreter: a static program */
	uint64_t brk = loader_brk(p);
	if (brk) add_site(p, LOADER_SITE, brk);
	else add_site(p, ENTRY_SITE, auxv(p->pid, AT_ENTRY)); /* the loader has not run yet (an exec): its end */
}

/* the sites whose file's mapping went (a dlclose): forgotten without writing (the memory is no longer
 * theirs); then every live hook not set yet is set where its file is now mapped */
static void rescan(struct proc *p)
{
	for (unsigned i = 0; i < p->nsites;) {
		struct thook *h = tables_hook(p->sites[i].hook);
		if (!h || wbpf_maps_has(p->pid, &h->req, p->sites[i].addr)) {
			i++;
			continue;
		}
		struct bp *b = bp_find(p, p->sites[i].addr);
		if (b && b->nsites && --b->nsites == 0 && b->nrets == 0) b->inserted = 0;
		tlog("process %d: hook %u's mapping went", (int)p->pid, p->sites[i].hook);
		p->sites[i] = p->sites[--p->nsites];
	}
	for (unsigned i = 0; i < MAX_THOOKS; i++)
		if (thooks[i].live) (void)proc_hook(p, &thooks[i]);
}

int loader_event(struct proc *p, uint64_t addr)
{
	struct site *s = site_of(p, LOADER_SITE);
	if (s && s->addr == addr) {
		rescan(p);
		return 1;
	}
	s = site_of(p, ENTRY_SITE);
	if (!s || s->addr != addr) return 0;
	/* the program's entry: the loader has mapped its libraries and filled in DT_DEBUG; the entry's
	 * breakpoint goes (the hit runs the original instruction: hit.c) */
	*s = p->sites[--p->nsites];
	bp_put(p, addr, 0);
	add_site(p, LOADER_SITE, loader_brk(p));
	rescan(p);
	return 1;
}
