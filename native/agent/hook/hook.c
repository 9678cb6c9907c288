/* The hook API (hook.h): attach and detach under one lock, the choice of tier (inline, else the trap
 * tier for an entry the relocator refuses), the table of probe sites the signal handlers consult, and
 * the trampolines' lifetime (never unmapped; reused for the same handler). */
#define _GNU_SOURCE
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include "internal.h"

#define MAX_SITES 1024

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static struct wbpf_site sites[MAX_SITES];

int wbpf_fail(struct wbpf_hook_error *err, int code, const char *fmt, ...)
{
	if (err) {
		va_list ap;
		va_start(ap, fmt);
		err->code = code;
		vsnprintf(err->reason, sizeof err->reason, fmt, ap);
		va_end(ap);
	}
	return code;
}

/* async-signal-safe */
struct wbpf_site *wbpf_site_find(uintptr_t fn)
{
	for (int i = 0; i < MAX_SITES; i++) {
		uintptr_t f = __atomic_load_n(&sites[i].fn, __ATOMIC_ACQUIRE);
		if (f == fn) return &sites[i];
		if (!f) break; /* entries are taken in order and never freed */
	}
	return NULL;
}

/* another site in use whose bytes overlap [at, at+len): a function hook's entry and a syscall site
 * (sys/) must never patch the same bytes (each restores its own original bytes at removal) */
static struct wbpf_site *overlap(uintptr_t at, int len, const struct wbpf_site *self)
{
	for (int i = 0; i < MAX_SITES; i++) {
		struct wbpf_site *s = &sites[i];
		uintptr_t f = __atomic_load_n(&s->fn, __ATOMIC_ACQUIRE);
		if (!f) break;
		if (s == self || __atomic_load_n(&s->state, __ATOMIC_ACQUIRE) == WBPF_SITE_IDLE) continue;
		if (f < at + (uintptr_t)len && at < f + (uintptr_t)s->replaced) return s;
	}
	return NULL;
}

/* sys/ (the syscall site rewriter): a one-instruction rewrite at `at` (len bytes) gets the site record the
 * SIGTRAP handler reads (state, trap_target), marked PATCHING; NULL if at is hooked, its bytes overlap a
 * hooked entry's, or the table is full.
 * wbpf_site_release sets its state (IDLE: its bytes are original again) under the same lock. */
struct wbpf_site *wbpf_site_claim(uintptr_t at, int len)
{
	pthread_mutex_lock(&lock);
	struct wbpf_site *s = wbpf_site_find(at);
	if (s && __atomic_load_n(&s->state, __ATOMIC_ACQUIRE) != WBPF_SITE_IDLE) s = NULL;
	else if (overlap(at, len, s)) s = NULL;
	else if (!s) {
		for (int i = 0; i < MAX_SITES && !s; i++)
			if (!sites[i].fn) s = &sites[i];
		if (s) {
			s->replaced = len;
			memcpy(s->orig_bytes, (const void *)at, len);
			__atomic_store_n(&s->fn, at, __ATOMIC_RELEASE);
		}
	}
	if (s) __atomic_store_n(&s->state, WBPF_SITE_PATCHING, __ATOMIC_RELEASE);
	pthread_mutex_unlock(&lock);
	return s;
}

void wbpf_site_release(struct wbpf_site *s, int state)
{
	pthread_mutex_lock(&lock);
	__atomic_store_n(&s->state, state, __ATOMIC_RELEASE);
	pthread_mutex_unlock(&lock);
}

static struct wbpf_tramp *take_retired(struct wbpf_site *s, size_t size, int trap, wbpf_hook_handler handler, void *cookie)
{
	for (struct wbpf_tramp **p = &s->retired; *p; p = &(*p)->next) {
		struct wbpf_tramp *t = *p;
		if (t->handler == handler && t->cookie == cookie && t->fn_size == size && t->trap == trap) {
			*p = t->next;
			t->next = NULL;
			return t;
		}
	}
	return NULL;
}

static void retire(struct wbpf_site *s, struct wbpf_tramp *t)
{
	t->next = s->retired;
	s->retired = t;
}

static int build(uintptr_t fn, size_t size, int trap, wbpf_hook_handler handler, void *cookie, struct wbpf_tramp **out,
		 struct wbpf_hook_error *err)
{
	size_t readable = wbpf_readable_from(fn);
	if (!readable) return wbpf_fail(err, WBPF_HOOK_EINVAL, "%#lx is not in a readable mapping", (unsigned long)fn);
	uint8_t *page = wbpf_near_page(fn);
	if (!page && trap) { /* the out-of-line copy may live anywhere (an absolute jump back), unless rip-relative */
		page = mmap(NULL, WBPF_TRAMP_PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		if (page == MAP_FAILED) page = NULL;
	}
	if (!page) return wbpf_fail(err, WBPF_HOOK_ENOMEM, "no free page within " WBPF_NEAR_REACH " of %#lx", (unsigned long)fn);
	struct wbpf_tramp *t = calloc(1, sizeof *t);
	int rc = !t ? wbpf_fail(err, WBPF_HOOK_ENOMEM, "out of memory")
		 : trap ? wbpf_arch_trap_build(t, page, fn, size, readable, handler, cookie, err)
			: wbpf_arch_build(t, page, fn, size, readable, handler, cookie, err);
	if (!rc && mprotect(page, WBPF_TRAMP_PAGE, PROT_READ | PROT_EXEC))
		rc = wbpf_fail(err, WBPF_HOOK_EPROTECT, "mprotect(R+X) of the trampoline page failed");
	if (rc) { /* never reachable yet: safe to free */
		munmap(page, WBPF_TRAMP_PAGE);
		free(t);
		return rc;
	}
	t->fn_size = size;
	*out = t;
	return 0;
}

static int attach_locked(uintptr_t fn, size_t size, int trap, wbpf_hook_handler handler, void *cookie,
			 struct wbpf_hook **out, struct wbpf_hook_error *err)
{
	struct wbpf_site *s = wbpf_site_find(fn);
	if (s && __atomic_load_n(&s->state, __ATOMIC_ACQUIRE) != WBPF_SITE_IDLE)
		return wbpf_fail(err, WBPF_HOOK_EBUSY, "%#lx is already hooked", (unsigned long)fn);
	struct wbpf_tramp *t = s ? take_retired(s, size, trap, handler, cookie) : NULL;
	int rc;
	if (!t && (rc = build(fn, size, trap, handler, cookie, &t, err))) return rc;
	struct wbpf_site *o = overlap(fn, t->replaced, s);
	if (o) {
		if (s) retire(s, t); /* else t stays mapped, unreached */
		return wbpf_fail(err, WBPF_HOOK_EBUSY, "the entry's bytes %#lx..%#lx overlap a rewritten syscall site or another hook at %#lx",
				 (unsigned long)fn, (unsigned long)(fn + t->replaced), (unsigned long)o->fn);
	}
	struct wbpf_hook *h = malloc(sizeof *h);
	if (!h) {
		if (s) retire(s, t);
		return wbpf_fail(err, WBPF_HOOK_ENOMEM, "out of memory");
	}
	if (!s) {
		for (int i = 0; i < MAX_SITES && !s; i++)
			if (!sites[i].fn) s = &sites[i];
		if (!s) {
			free(h); /* t stays mapped (unreached); rare enough not to matter */
			return wbpf_fail(err, WBPF_HOOK_ENOMEM, "more than %d hooked functions", MAX_SITES);
		}
		s->replaced = t->replaced;
		memcpy(s->orig_bytes, (const void *)fn, t->replaced);
		__atomic_store_n(&s->fn, fn, __ATOMIC_RELEASE);
	} else if (s->replaced < t->replaced) { /* first hooked by the trap tier (1 byte): idle, so fn is original */
		memcpy(s->orig_bytes, (const void *)fn, t->replaced);
		s->replaced = t->replaced;
	}
	__atomic_store_n(&s->state, WBPF_SITE_PATCHING, __ATOMIC_RELEASE);
	if (t->trap) wbpf_hook_signals_check(); /* the handler the int3 needs is still ours */
	rc = t->trap ? wbpf_arch_trap_in(s, t, err) : wbpf_arch_patch_in(s, t, err);
	if (rc) {
		__atomic_store_n(&s->state, WBPF_SITE_IDLE, __ATOMIC_RELEASE);
		retire(s, t); /* a thread may have been sent into it during the attempt */
		free(h);
		return rc;
	}
	s->tramp = t;
	__atomic_store_n(&s->state, WBPF_SITE_ACTIVE, __ATOMIC_RELEASE);
	h->site = s;
	h->tramp = t;
	*out = h;
	return 0;
}

int wbpf_hook_attach(void *fn, wbpf_hook_handler handler, void *cookie, struct wbpf_hook **out,
		     struct wbpf_hook_error *err)
{
	return wbpf_hook_attach_sized(fn, 0, handler, cookie, out, err);
}

int wbpf_hook_attach_sized(void *fn, size_t size, wbpf_hook_handler handler, void *cookie,
			   struct wbpf_hook **out, struct wbpf_hook_error *err)
{
	if (err) { err->code = 0; err->reason[0] = 0; }
	if (!fn || !handler || !out) return wbpf_fail(err, WBPF_HOOK_EINVAL, "null function, handler or out pointer");
	pthread_mutex_lock(&lock);
	int rc = attach_locked((uintptr_t)fn, size, 0, handler, cookie, out, err);
	pthread_mutex_unlock(&lock);
	return rc;
}

/* the relocator's refusals of the entry: the trap tier may still hook it */
static int relocator_refused(int code)
{
	return code == WBPF_HOOK_EDECODE || code == WBPF_HOOK_ESHORT || code == WBPF_HOOK_EBRANCH ||
	       code == WBPF_HOOK_ERANGE || code == WBPF_HOOK_ENOMEM;
}

int wbpf_hook_attach_any(void *fn, size_t size, wbpf_hook_handler handler, void *cookie, struct wbpf_hook **out,
			 struct wbpf_hook_error *err)
{
	struct wbpf_hook_error e1, e2;
	if (err) { err->code = 0; err->reason[0] = 0; }
	if (!fn || !handler || !out) return wbpf_fail(err, WBPF_HOOK_EINVAL, "null function, handler or out pointer");
	pthread_mutex_lock(&lock);
	int rc = attach_locked((uintptr_t)fn, size, 0, handler, cookie, out, &e1);
	if (rc && relocator_refused(rc)) {
		int rc2 = attach_locked((uintptr_t)fn, size, 1, handler, cookie, out, &e2);
		if (!rc2) wbpf_fail(err, WBPF_HOOK_OK, "the inline hook was refused: %s: %s", wbpf_hook_code_name(rc), e1.reason);
		else wbpf_fail(err, rc, "%s; nor can the trap hook take it: %s", e1.reason, e2.reason);
		rc = rc2 ? rc : 0;
	} else if (rc && err) {
		*err = e1;
	}
	pthread_mutex_unlock(&lock);
	return rc;
}

int wbpf_hook_attach_trap(void *fn, size_t size, wbpf_hook_handler handler, void *cookie, struct wbpf_hook **out,
			  struct wbpf_hook_error *err)
{
	if (err) { err->code = 0; err->reason[0] = 0; }
	if (!fn || !handler || !out) return wbpf_fail(err, WBPF_HOOK_EINVAL, "null function, handler or out pointer");
	pthread_mutex_lock(&lock);
	int rc = attach_locked((uintptr_t)fn, size, 1, handler, cookie, out, err);
	pthread_mutex_unlock(&lock);
	return rc;
}

int wbpf_hook_tier(const struct wbpf_hook *h) { return h->tramp->trap ? WBPF_HOOK_TIER_TRAP : WBPF_HOOK_TIER_INLINE; }

const char *wbpf_hook_tier_name(int tier)
{
	return tier == WBPF_HOOK_TIER_TRAP ? "trap hook" : tier == WBPF_HOOK_TIER_INLINE ? "inline hook" : "no hook";
}

int wbpf_hook_detach(struct wbpf_hook *h, struct wbpf_hook_error *err)
{
	if (err) { err->code = 0; err->reason[0] = 0; }
	if (!h) return wbpf_fail(err, WBPF_HOOK_EINVAL, "null hook");
	pthread_mutex_lock(&lock);
	struct wbpf_site *s = h->site;
	int rc;
	if (__atomic_load_n(&s->state, __ATOMIC_ACQUIRE) != WBPF_SITE_ACTIVE || s->tramp != h->tramp) {
		rc = wbpf_fail(err, WBPF_HOOK_ENOENT, "%#lx is not hooked by this hook", (unsigned long)s->fn);
	} else {
		__atomic_store_n(&s->state, WBPF_SITE_UNPATCHING, __ATOMIC_RELEASE);
		rc = h->tramp->trap ? wbpf_arch_trap_out(s, h->tramp, err) : wbpf_arch_patch_out(s, h->tramp, err);
		if (rc) {
			__atomic_store_n(&s->state, WBPF_SITE_ACTIVE, __ATOMIC_RELEASE);
		} else {
			__atomic_store_n(&s->state, WBPF_SITE_IDLE, __ATOMIC_RELEASE);
			s->tramp = NULL;
			retire(s, h->tramp); /* a thread may still be inside it: kept mapped, reused later */
			free(h);
		}
	}
	pthread_mutex_unlock(&lock);
	return rc;
}

int wbpf_hook_replaced_len(const struct wbpf_hook *h) { return h->tramp->replaced; }

const char *wbpf_hook_sync_method(void) { return wbpf_sync_method_name(); }

int wbpf_hook_vector_free;
void wbpf_hook_set_vector_free(int on) { __atomic_store_n(&wbpf_hook_vector_free, !!on, __ATOMIC_RELAXED); }

const char *wbpf_hook_code_name(int code)
{
	static const char *const names[] = {
		"WBPF_HOOK_OK", "WBPF_HOOK_EINVAL", "WBPF_HOOK_EBUSY", "WBPF_HOOK_EDECODE", "WBPF_HOOK_ESHORT",
		"WBPF_HOOK_EBRANCH", "WBPF_HOOK_ERANGE", "WBPF_HOOK_ENOMEM", "WBPF_HOOK_EPROTECT",
		"WBPF_HOOK_ESIGNAL", "WBPF_HOOK_ETHREADS", "WBPF_HOOK_ENOENT",
	};
	return code >= 0 && code < (int)(sizeof names / sizeof names[0]) ? names[code] : "WBPF_HOOK_?";
}
