/* The rewriter's arch-neutral part: attach (scan an object's functions, build the trampolines of new
 * sites near it, patch each site through the hook's site table), detach (restore), and the callbacks'
 * dispatch the trampolines call (owner, errno kept, no re-entry on one thread). */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <link.h>
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
	if (r->nr < 0 && ((unsigned long)nr >= WBPF_SYS_NR_MAX || !(__atomic_load_n(&h->traced[nr / 64], __ATOMIC_RELAXED) >> (nr % 64) & 1) || unsafe_nr(nr)))
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

static int by_at(const void *a, const void *b)
{
	const struct wbpf_sys_rec *x = *(struct wbpf_sys_rec *const *)a, *y = *(struct wbpf_sys_rec *const *)b;
	return x->at < y->at ? -1 : x->at > y->at;
}

/* the sites currently rewritten (some attach owns them), sorted by address; NULL when none (or no memory) */
static struct wbpf_sys_rec **sorted_recs(size_t *n)
{
	size_t k = 0;
	for (struct wbpf_sys_rec *r = recs; r; r = r->next) k += __atomic_load_n(&r->owner, __ATOMIC_ACQUIRE) != NULL;
	*n = 0;
	if (!k) return NULL;
	struct wbpf_sys_rec **a = malloc(k * sizeof *a);
	if (!a) return NULL;
	for (struct wbpf_sys_rec *r = recs; r && *n < k; r = r->next)
		if (__atomic_load_n(&r->owner, __ATOMIC_ACQUIRE)) a[(*n)++] = r;
	qsort(a, *n, sizeof *a, by_at);
	return a;
}

/* the first of a[0..n) at or after addr */
static size_t lower(struct wbpf_sys_rec **a, size_t n, uintptr_t addr)
{
	size_t lo = 0, hi = n;
	while (lo < hi) {
		size_t mid = (lo + hi) / 2;
		if (a[mid]->at < addr) lo = mid + 1;
		else hi = mid;
	}
	return lo;
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

/* the loaded objects "*" scans: every one with a path but this library (and the vDSO: no file) */
struct objs { char **names; int n, cap; uintptr_t self; };

static int objs_cb(struct dl_phdr_info *info, size_t size, void *data)
{
	(void)size;
	struct objs *o = data;
	const char *name = info->dlpi_name && info->dlpi_name[0] ? info->dlpi_name : NULL;
	if (name && (strstr(name, "linux-vdso") || strstr(name, "linux-gate"))) return 0;
	for (int i = 0; i < info->dlpi_phnum; i++) { /* this library: its own calls must never be rewritten */
		const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
		if (ph->p_type == PT_LOAD && o->self >= info->dlpi_addr + ph->p_vaddr && o->self < info->dlpi_addr + ph->p_vaddr + ph->p_memsz) return 0;
	}
	if (o->n == o->cap) {
		int cap = o->cap ? o->cap * 2 : 16;
		char **g = realloc(o->names, cap * sizeof *g);
		if (!g) return 1;
		o->names = g;
		o->cap = cap;
	}
	o->names[o->n] = strdup(name ? name : "");
	if (o->names[o->n]) o->n++;
	return 0;
}

static int attach_one(const char *object, int generic, struct wbpf_sys *h, struct wbpf_sys_report *rep,
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
	size_t ndone = 0;
	struct wbpf_sys_rec **done = NULL; /* the sites rewritten already, sorted */
	struct wbpf_sys_rec **sites = malloc(cap * sizeof *sites), **news = malloc(cap * sizeof *news);
	if (!sites || !news) { rc = wbpf_fail(err, WBPF_HOOK_ENOMEM, "out of memory"); goto out; }
	uintptr_t lo = 0, hi = 0; /* the readable range last looked up in /proc/self/maps (functions come sorted) */
	done = sorted_recs(&ndone);
	for (int i = 0; i < nf; i++) {
		if (fns[i].addr < lo || fns[i].addr >= hi) {
			lo = fns[i].addr;
			hi = lo + wbpf_readable_from(lo);
		}
		if (fns[i].addr + fns[i].size > hi) continue; /* not mapped (a symbol outside the loaded segments) */
		/* a site rewritten already (another attach's) is scanned as its original bytes */
		const uint8_t *code = (const uint8_t *)fns[i].addr;
		uint8_t *copy = NULL;
		for (size_t q = lower(done, ndone, fns[i].addr); q < ndone && done[q]->at < fns[i].addr + fns[i].size; q++) {
			if (!copy && !(copy = malloc(fns[i].size))) break;
			if (code != copy) memcpy(copy, code, fns[i].size);
			code = copy;
			if (done[q]->at + WBPF_SYS_REPLACED <= fns[i].addr + fns[i].size) memcpy(copy + (done[q]->at - fns[i].addr), done[q]->orig, WBPF_SYS_REPLACED);
		}
		int k = wbpf_sys_scan(code, fns[i].size, h->traced, generic, found, MAX_FOUND);
		rep->others += wbpf_sys_scan_others(code, fns[i].size);
		free(copy);
		for (int j = 0; j < k; j++) {
			uintptr_t at = fns[i].addr + found[j].off;
			if (found[j].refused) { note(rep, at, found[j].why); continue; }
			if (found[j].nr >= 0 && unsafe_nr(found[j].nr)) {
				note(rep, at, "its syscall returns on another stack or not at all (clone, fork, vfork, clone3, rt_sigreturn)");
				continue;
			}
			struct wbpf_sys_rec *r = rec_find(at);
			if (r && __atomic_load_n(&r->owner, __ATOMIC_ACQUIRE)) { rep->held++; note(rep, at, "another attach holds it"); continue; }
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
	rep->objects++;
	struct wbpf_sys_rec **all = realloc(h->recs, (h->nrecs + n + 1) * sizeof *all); /* h's sites so far, then these */
	if (!all) { rc = wbpf_fail(err, WBPF_HOOK_ENOMEM, "out of memory"); goto out; }
	h->recs = all;
	for (int i = 0; i < n; i++) {
		struct wbpf_sys_rec *r = sites[i];
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
	free(done);
	free(sites);
	free(news);
	free(fns);
	return rc;
}

static int attach_locked(const char *object, int generic, struct wbpf_sys *h, struct wbpf_sys_report *rep,
			 struct wbpf_hook_error *err)
{
	if (!object || strcmp(object, "*")) return attach_one(object, generic, h, rep, err);
	struct objs o = { .self = (uintptr_t)&attach_locked };
	dl_iterate_phdr(objs_cb, &o);
	int rc = 0;
	for (int i = 0; i < o.n; i++) {
		/* the main program's needle is "", another object's its full path (its own name, not a substring of another's) */
		struct wbpf_hook_error e;
		if (!rc) {
			int r1 = attach_one(o.names[i], generic, h, rep, &e);
			if (r1 && e.code != WBPF_HOOK_EINVAL) { rc = r1; if (err) *err = e; } /* EINVAL: no readable file: skipped */
		}
		free(o.names[i]);
	}
	free(o.names);
	return rc;
}

int wbpf_sys_set_traced(struct wbpf_sys *h, int nr, int on)
{
	if (!h || nr < 0 || nr >= WBPF_SYS_NR_MAX) return -1;
	if (on) __atomic_or_fetch(&h->traced[nr / 64], 1ULL << (nr % 64), __ATOMIC_SEQ_CST);
	else __atomic_and_fetch(&h->traced[nr / 64], ~(1ULL << (nr % 64)), __ATOMIC_SEQ_CST);
	return 0;
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
