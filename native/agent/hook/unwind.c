/* The unwinder must never meet a diverted return address: the hook library interposes the entry
 * points that start a walk of the stack (C++ throw and rethrow, forced unwind, pthread_exit) and puts
 * this thread's real return addresses back (ret.c) before forwarding to the next definition. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <pthread.h>
#include <unistd.h>
#include <unwind.h>
#include "internal.h"

/* referenced by ret.c, so that a program linking libwbpf_hook.a for return probes gets these too */
const char wbpf_unwind_interposed = 1;

static void *next_fn(void **cache, const char *name)
{
	void *f = __atomic_load_n(cache, __ATOMIC_ACQUIRE);
	if (!f) {
		f = dlsym(RTLD_NEXT, name);
		__atomic_store_n(cache, f, __ATOMIC_RELEASE);
	}
	return f;
}

_Unwind_Reason_Code _Unwind_RaiseException(struct _Unwind_Exception *exc)
{
	static void *cache;
	_Unwind_Reason_Code (*real)(struct _Unwind_Exception *) = next_fn(&cache, "_Unwind_RaiseException");
	wbpf_ret_unwinding();
	return real ? real(exc) : _URC_FATAL_PHASE1_ERROR;
}

_Unwind_Reason_Code _Unwind_Resume_or_Rethrow(struct _Unwind_Exception *exc)
{
	static void *cache;
	_Unwind_Reason_Code (*real)(struct _Unwind_Exception *) = next_fn(&cache, "_Unwind_Resume_or_Rethrow");
	wbpf_ret_unwinding();
	return real ? real(exc) : _URC_FATAL_PHASE1_ERROR;
}

_Unwind_Reason_Code _Unwind_ForcedUnwind(struct _Unwind_Exception *exc, _Unwind_Stop_Fn stop, void *stop_arg)
{
	static void *cache;
	_Unwind_Reason_Code (*real)(struct _Unwind_Exception *, _Unwind_Stop_Fn, void *) =
		next_fn(&cache, "_Unwind_ForcedUnwind");
	wbpf_ret_unwinding();
	return real ? real(exc, stop, stop_arg) : _URC_FATAL_PHASE1_ERROR;
}

/* glibc's pthread_exit unwinds through its own handle on libgcc_s (not the interposed functions) */
void pthread_exit(void *retval)
{
	static void *cache;
	void (*real)(void *) = next_fn(&cache, "pthread_exit");
	wbpf_ret_unwinding();
	if (real) real(retval);
	for (;;) pause(); /* not reached: libc always has pthread_exit */
}
