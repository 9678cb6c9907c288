/* The rewriter's arch-neutral part: attach (scan an object's functions, build the trampolines of new
 * sites near it, patch each site through the hook's site table), detach (restore), and the callbacks'
 * dispatch the trampolines call (owner, errno kept, no re-entry on one thread). */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include "internal.h"
#include "symbols.h"

#define MAX_FOUND 64 /* sites per function */

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static struct wbpf_sys_rec *recs; /* every site ever rewritten, never freed */
static __thread int in_callback __attribute__((tls_model("initial-exec")));

/* numbers whose syscall returns on another stack, or never returns to the code that issued it */
static int unsafe_nr(long nr)
{
	return nr == 56 || nr == 57 || nr == 58 || nr == 435 || nr == 15; /* clone fork vfork clone3 rt_sigreturn */
}

struct wbpf_sys *wbpf_sys_enter_c(struct wbpf_sys_rec *r, long nr, const uint64_t *args)
{
	struct wbpf_sys *h = __atomic_load_n(&r->owner, __ATOMIC_ACQUIRE);
	if (!h || in_callback) return NULL;
	if (r->nr < 0 && ((unsigned long)nr >= WBPF_SYS_NR_MAX || !(h->traced[nr / 64] >> (nr % 64) & 1) || unsafe_nr(nr)))
		return NULL;
	int e = errno;
	in_callback = 1;
	if (h->enter) h->enter(nr, args, h->cookie);
	in_callback = 0;
	errno = e;
	return h;
}

void wbpf_sys_exit_c(struct wbpf_sys *h, long nr, const uint64_t *args, long ret)
{
	if (!h->exit) return;
	int e = errno;
	in_callback = 1;
	h->exit(nr, args, ret, h->cookie);
	in_callback = 0;
	errno = e;
}

static struct wbpf_sys_rec *rec_find(uintptr_t at)
{
	for (struct wbpf_sys_rec *r = recs; r; r = r->next)
		if (r->at == at) return r;
	return NULL;
}

static void note(struct wbpf_sys_report *rep, uintptr_t at, const char *why)
{
	rep->refused++;
	if (!rep->refusal[0]) snprintf(rep->refusal, sizeof rep->refusal, "site %#lx: %s", (unsigned long)at, why);
}

/* the trampolines of the new sites news[0..n), in near pages written once then made R+X */
static int build_stubs(struct wbpf_sys_rec **news, int n, struct wbpf_hook_error *err)
{
	uint8_t *page = NULL;
	size_t used = WBPF_TRAMP_PAGE;
	for (int i = 0; i < n; i++) {
		struct wbpf_sys_rec *r = news[i];
		if (page && used + WBPF_SYS_STUB <= WBPF_TRAMP_PAGE) {
			long d = (long)((uintptr_t)page - r->at);
			if (d < -(1L << 30) || d > (1L << 30)) used = WBPF_TRAMP_PAGE; /* too far: a new page */
		}
		if (used + WBPF_SYS_STUB > WBPF_TRAMP_PAGE) {
			if (page && mprotect(page, WBPF_TRAMP_PAGE, PROT_READ | PROT_EXEC))
				return wbpf_fail(err, WBPF_HOOK_EPROTECT, "mprotect(R+X) of a syscall trampoline page failed");
			if (!(page = wbpf_near_page(r->at)))
				return wbpf_fail(err, WBPF_HOOK_ENOMEM, "no free page within " WBPF_NEAR_REACH " of %#lx", (unsigned long)r->at);
			used = 0;
		}
		used += wbpf_sys_arch_stub(page + used, r);
		used = (used + 15) & ~(size_t)15;
	}
	if (page && mprotect(page, WBPF_TRAMP_PAGE, PROT_READ | PROT_EXEC))
		return wbpf_fail(err, WBPF_HOOK_EPROTECT, "mprotect(R+X) of a syscall trampoline page failed");
	return 0;
}

static void unpatch(struct wbpf_sys *h)
{
	for (int i = 0; i < h->nrecs; i++) {
		struct wbpf_sys_rec *r = h->recs[i];
		__atomic_store_n(&r->hs->state, WBPF_SITE_UNPATCHING, __ATOMIC_RELEASE);
		struct wbpf_hook_error e;
		if (wbpf_sys_arch_patch(r, 0, &e)) { /* the page could not be opened: the site stays, its calls pass through */
			__atomic_store_n(&r->owner, NULL, __ATOMIC_RELEASE);
			wbpf_site_release(r->hs, WBPF_SITE_ACTIVE);
			continue;
		}
		__atomic_store_n(&r->owner, NULL, __ATOMIC_RELEASE);
		wbpf_site_release(r->hs, WBPF_SITE_IDLE);
	}
	h->nrecs = 0;
}

static int attach_locked(const char *object, int generic, struct wbpf_sys *h, struct wbpf_sys_report *rep,
			 struct wbpf_hook_error *err)
{
	struct wbpf_sys_fn *fns = NULL;
	char path[512];
	int nf = wbpf_sys_functions(object ? object : "libc.so", &fns, path, sizeof path);
	if (nf < 0)
		return wbpf_fail(err, WBPF_HOOK_EINVAL, "no loaded object's path contains \"%s\", or its file cannot be read",
				 object ? object : "libc.so");
	struct wbpf_sys_found found[MAX_FOUND];
	int cap = 16, n = 0, nnew = 0, rc = 0;
	struct wbpf_sys_rec **sites = malloc(cap * sizeof *sites), **news = malloc(cap * sizeof *news);
	if (!sites || !news) { rc = wbpf_fail(err, WBPF_HOOK_ENOMEM, "out of memory"); goto out; }
	uintptr_t lo = 0, hi = 0; /* the readable range last looked up in /proc/self/maps (functions come sorted) */
	for (int i = 0; i < nf; i++) {
		if (fns[i].addr < lo || fns[i].addr >= hi) {
			lo = fns[i].addr;
			hi = lo + wbpf_readable_from(lo);
		}
		if (fns[i].addr + fns[i].size > hi) continue; /* not mapped (a symbol outside the loaded segments) */
		int k = wbpf_sys_scan((const uint8_t *)fns[i].addr, fns[i].size, h->traced, generic, found, MAX_FOUND);
		for (int j = 0; j < k; j++) {
			uintptr_t at = fns[i].addr + found[j].off;
			if (found[j].refused) { note(rep, at, found[j].why); continue; }
			if (found[j].nr >= 0 && unsafe_nr(found[j].nr)) {
				note(rep, at, "its syscall returns on another stack or not at all (clone, fork, vfork, clone3, rt_sigreturn)");
				continue;
			}
			struct wbpf_sys_rec *r = rec_find(at);
			if (r && __atomic_load_n(&r->owner, __ATOMIC_ACQUIRE)) { note(rep, at, "another attach holds it"); continue; }
			if (n == cap || nnew == cap) {
				cap *= 2;
				struct wbpf_sys_rec **a = realloc(sites, cap * sizeof *a);
				if (a) sites = a;
				struct wbpf_sys_rec **b = realloc(news, cap * sizeof *b);
				if (b) news = b;
				if (!a || !b) { rc = wbpf_fail(err, WBPF_HOOK_ENOMEM, "out of memory"); goto out; }
			}
			if (!r) {
				if (!(r = calloc(1, sizeof *r))) { rc = wbpf_fail(err, WBPF_HOOK_ENOMEM, "out of memory"); goto out; }
				r->at = at;
				r->nr = found[j].nr;
				memcpy(r->orig, (const void *)at, WBPF_SYS_REPLACED);
				news[nnew++] = r;
			}
			int dup = 0; /* overlapping symbols: one site met twice */
			for (int q = 0; q < n && !dup; q++) dup = sites[q] == r;
			if (dup) continue;
			if (found[j].shared) rep->shared++;
			sites[n++] = r;
		}
	}
	if ((rc = build_stubs(news, nnew, err))) { /* the new records were never reachable */
		for (int i = 0; i < nnew; i++) free(news[i]);
		goto out;
	}
	for (int i = 0; i < nnew; i++) { news[i]->next = recs; recs = news[i]; }
	h->recs = sites;
	sites = NULL;
	for (int i = 0; i < n; i++) {
		struct wbpf_sys_rec *r = h->recs[i];
		r->hs = wbpf_site_claim(r->at, WBPF_SYS_REPLACED);
		if (!r->hs) { note(rep, r->at, "a function hook holds it (or the hook's site table is full)"); continue; }
		__atomic_store_n(&r->owner, h, __ATOMIC_RELEASE);
		struct wbpf_hook_error e;
		if (wbpf_sys_arch_patch(r, 1, &e)) {
			__atomic_store_n(&r->owner, NULL, __ATOMIC_RELEASE);
			wbpf_site_release(r->hs, WBPF_SITE_IDLE);
			note(rep, r->at, e.reason);
			continue;
		}
		wbpf_site_release(r->hs, WBPF_SITE_ACTIVE);
		h->recs[h->nrecs++] = r;
		rep->rewritten++;
	}
out:
	free(sites);
	free(news);
	free(fns);
	return rc;
}

int wbpf_sys_attach(const char *object, const int *nrs, int n, int generic, wbpf_sys_enter_fn enter,
		    wbpf_sys_exit_fn exit, void *cookie, struct wbpf_sys **out, struct wbpf_sys_report *rep,
		    struct wbpf_hook_error *err)
{
	struct wbpf_sys_report dummy;
	if (!rep) rep = &dummy;
	memset(rep, 0, sizeof *rep);
	if (err) { err->code = 0; err->reason[0] = 0; }
	if (!out || (!enter && !exit) || n < 0 || (n && !nrs))
		return wbpf_fail(err, WBPF_HOOK_EINVAL, "null out pointer, no callback or no numbers");
	/* never freed: a thread blocked in a syscall entered under this attach calls its exit callback later */
	struct wbpf_sys *h = calloc(1, sizeof *h);
	if (!h) return wbpf_fail(err, WBPF_HOOK_ENOMEM, "out of memory");
	h->enter = enter;
	h->exit = exit;
	h->cookie = cookie;
	for (int i = 0; i < n; i++) {
		if (nrs[i] < 0 || nrs[i] >= WBPF_SYS_NR_MAX) {
			free(h);
			return wbpf_fail(err, WBPF_HOOK_EINVAL, "syscall number %d is out of 0..%d", nrs[i], WBPF_SYS_NR_MAX - 1);
		}
		h->traced[nrs[i] / 64] |= 1ULL << (nrs[i] % 64);
	}
	pthread_mutex_lock(&lock);
	int rc = attach_locked(object, generic, h, rep, err);
	if (rc) unpatch(h);
	pthread_mutex_unlock(&lock);
	if (rc) { free(h->recs); h->recs = NULL; return rc; }
	*out = h;
	return 0;
}

int wbpf_sys_detach(struct wbpf_sys *h, struct wbpf_hook_error *err)
{
	if (err) { err->code = 0; err->reason[0] = 0; }
	if (!h) return wbpf_fail(err, WBPF_HOOK_EINVAL, "null handle");
	pthread_mutex_lock(&lock);
	unpatch(h);
	free(h->recs);
	h->recs = NULL;
	pthread_mutex_unlock(&lock);
	return 0;
}
