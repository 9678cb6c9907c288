/* libc calls a hit can make that may use vector registers (AVX string functions, malloc), kept as libc's but
 * run under vec_guarded (the thread's vector state saved around them) and hidden in the agent, so its calls bind
 * here: snprintf (a ring lock's dead-holder check, a disabled hook's message), pthread_atfork (a first hit's). */
#include <stdarg.h>
#include <stdio.h>

#include "agent.h"

#if defined(__x86_64__) /* arm64: the agent keeps libc's (its trampolines save q0-q7) */

struct fmt_call {
	char *s;
	size_t n;
	const char *f;
	va_list *ap;
	int r;
};

static void slow_vsnprintf(void *arg)
{
	struct fmt_call *c = arg;
	c->r = vsnprintf(c->s, c->n, c->f, *c->ap);
}

/* integers, strings and pointers only: the agent is built without floating point (-mgeneral-regs-only) */
__attribute__((visibility("hidden"))) int snprintf(char *s, size_t n, const char *f, ...)
{
	va_list ap;
	va_start(ap, f);
	struct fmt_call c = { s, n, f, &ap, 0 };
	vec_guarded(slow_vsnprintf, &c);
	va_end(ap);
	return c.r;
}

/* pthread_atfork, as libc_nonshared's (a hit's first pid or ring lock registers its fork handler: malloc) */
extern void *__dso_handle __attribute__((weak));
int __register_atfork(void (*prepare)(void), void (*parent)(void), void (*child)(void), void *dso);

struct atfork_call {
	void (*prepare)(void), (*parent)(void), (*child)(void);
	int r;
};

static void slow_register_atfork(void *arg)
{
	struct atfork_call *c = arg;
	c->r = __register_atfork(c->prepare, c->parent, c->child, &__dso_handle ? __dso_handle : NULL);
}

__attribute__((visibility("hidden"))) int pthread_atfork(void (*prepare)(void), void (*parent)(void), void (*child)(void))
{
	struct atfork_call c = { prepare, parent, child, 0 };
	vec_guarded(slow_register_atfork, &c);
	return c.r;
}

#endif
