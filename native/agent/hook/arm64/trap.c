/* The trap tier on arm64: not built yet (a brk at the entry and the SIGTRAP path are x86-64 only). An entry the
 * inline hook refuses stays refused, with both reasons; hook.c never installs a trap hook here. */
#include "../internal.h"

int wbpf_arch_trap_build(struct wbpf_tramp *t, uint8_t *page, uintptr_t fn, size_t fn_size, size_t readable,
			 wbpf_hook_handler handler, void *cookie, struct wbpf_hook_error *err)
{
	(void)t, (void)page, (void)fn_size, (void)readable, (void)handler, (void)cookie;
	return wbpf_fail(err, WBPF_HOOK_EDECODE, "the trap tier is x86-64 only (entry %#lx)", (unsigned long)fn);
}

int wbpf_arch_trap_in(struct wbpf_site *s, struct wbpf_tramp *t, struct wbpf_hook_error *err)
{
	(void)s, (void)t;
	return wbpf_fail(err, WBPF_HOOK_EINVAL, "the trap tier is x86-64 only");
}

int wbpf_arch_trap_out(struct wbpf_site *s, struct wbpf_tramp *t, struct wbpf_hook_error *err)
{
	(void)s, (void)t;
	return wbpf_fail(err, WBPF_HOOK_EINVAL, "the trap tier is x86-64 only");
}
