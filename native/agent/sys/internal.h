/* What sys/'s files share: a rewritten site's record, the scan's findings, and what sys/<arch>/ provides
 * (the function scan, the per-site trampoline, the patch in and out). */
#ifndef WBPF_SYS_INTERNAL_H
#define WBPF_SYS_INTERNAL_H
#include <stddef.h>
#include <stdint.h>
#include "sys.h"
#include "../hook/internal.h"

#define WBPF_SYS_REPLACED 5 /* the one instruction before `syscall` that becomes a jmp rel32 */

/* One site ever rewritten. Never freed: its trampoline stays mapped (a thread may be inside it). */
struct wbpf_sys_rec {
	uintptr_t at;               /* the replaced instruction; its `syscall` is at at + 5 */
	int nr;                     /* the number it sets; -1: the generic syscall() (number in rax) */
	uint8_t orig[WBPF_SYS_REPLACED];
	uintptr_t entry;            /* the trampoline */
	uintptr_t orig_path;        /* the replaced instruction out of line, then jmp at + 5 */
	struct wbpf_site *hs;       /* the hook's site record (SIGTRAP during a patch) */
	struct wbpf_sys *owner;     /* atomic: the attach whose callbacks run; NULL: the syscall passes through */
	struct wbpf_sys_rec *next;
};

struct wbpf_sys {
	wbpf_sys_enter_fn enter;
	wbpf_sys_exit_fn exit;
	void *cookie;
	uint64_t traced[WBPF_SYS_NR_MAX / 64];
	struct wbpf_sys_rec **recs;
	int nrecs;
};

/* a site the scan found */
struct wbpf_sys_found {
	size_t off;    /* of the replaced instruction in the function */
	int nr;        /* -1: the generic syscall() */
	int refused;   /* nonzero: why[] says why */
	int shared;    /* a branch reaches its `syscall` directly */
	char why[120];
};

/* sys/<arch>/scan.c: the sites in fn (size bytes) of the numbers set in traced (and the generic
 * syscall() pattern if generic); up to max in out; returns how many */
int wbpf_sys_scan(const uint8_t *fn, size_t size, const uint64_t *traced, int generic, struct wbpf_sys_found *out, int max);

/* sys/<arch>/scan.c: the `syscall` instructions of fn, at decoded boundaries, that are no site's (their number
 * is not loaded by the instruction right before them): calls there are never rewritten */
int wbpf_sys_scan_others(const uint8_t *fn, size_t size);

/* sys/<arch>/site.c: writes r's trampoline at p (it runs at the same address), sets r->entry and
 * r->orig_path; returns its length (at most WBPF_SYS_STUB) */
#define WBPF_SYS_STUB 128
size_t wbpf_sys_arch_stub(uint8_t *p, struct wbpf_sys_rec *r);
/* patches r->at to jump to its trampoline (in = 1) or restores it (in = 0); r->hs is PATCHING/UNPATCHING */
int wbpf_sys_arch_patch(struct wbpf_sys_rec *r, int in, struct wbpf_hook_error *err);

/* rewrite.c, called by the trampoline: the owner to run (NULL: pass the syscall through untraced),
 * then the exit callback with the owner enter returned */
struct wbpf_sys *wbpf_sys_enter_c(struct wbpf_sys_rec *r, long nr, const uint64_t *args);
void wbpf_sys_exit_c(struct wbpf_sys *h, long nr, const uint64_t *args, long ret);

#endif
