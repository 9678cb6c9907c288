/* dlopen and dlmopen interposed: once the real one has loaded a library, the hooks waiting for its file
 * (pending) are set in this process, and the syscall sites of the traced numbers in it rewritten (lib/syscalls.c). Every agent (root or descendant) does the same for itself. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <pthread.h>

#include "agent.h"

static void *loaded(void *h)
{
	if (h && (agent_npending() || agent_sys_live())) {
		pthread_mutex_lock(&agent_lock);
		if (agent_npending()) agent_hooks_retry();
		agent_sys_loaded();
		pthread_mutex_unlock(&agent_lock);
	}
	return h;
}

__attribute__((visibility("default"))) void *dlopen(const char *file, int mode)
{
	static void *(*real)(const char *, int);
	if (!real) real = (void *(*)(const char *, int))dlsym(RTLD_NEXT, "dlopen");
	return real ? loaded(real(file, mode)) : NULL;
}

/* a library in another link-map namespace is mapped all the same: /proc/self/maps shows it */
__attribute__((visibility("default"))) void *dlmopen(Lmid_t lmid, const char *file, int mode)
{
	static void *(*real)(Lmid_t, const char *, int);
	if (!real) real = (void *(*)(Lmid_t, const char *, int))dlsym(RTLD_NEXT, "dlmopen");
	return real ? loaded(real(lmid, file, mode)) : NULL;
}
