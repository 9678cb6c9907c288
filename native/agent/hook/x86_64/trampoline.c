/* x86-64 trampoline builder: the register-saving template (trampoline.S) with its immediates
 * filled, then the relocated prologue and the jump back, in one page near the function. */
#include <string.h>
#include "x86.h"

extern const uint8_t wbpf_x86_tramp_start[], wbpf_x86_tramp_ip[], wbpf_x86_tramp_cookie[],
	wbpf_x86_tramp_handler[], wbpf_x86_tramp_end[];
/* the same without the xmm saves, for vector-free handlers (wbpf_hook_set_vector_free) */
extern const uint8_t wbpf_x86_tramp_gp_start[], wbpf_x86_tramp_gp_ip[], wbpf_x86_tramp_gp_cookie[],
	wbpf_x86_tramp_gp_handler[], wbpf_x86_tramp_gp_end[];

const int wbpf_arch_patch_len = 5; /* jmp rel32 */

/* the slots trampoline.S writes (kernel x86-64 struct pt_regs) */
_Static_assert(__builtin_offsetof(struct wbpf_pt_regs, r15) == 0, "r15");
_Static_assert(__builtin_offsetof(struct wbpf_pt_regs, rbx) == 40, "rbx");
_Static_assert(__builtin_offsetof(struct wbpf_pt_regs, r11) == 48, "r11");
_Static_assert(__builtin_offsetof(struct wbpf_pt_regs, rax) == 80, "rax");
_Static_assert(__builtin_offsetof(struct wbpf_pt_regs, rdi) == 112, "rdi");
_Static_assert(__builtin_offsetof(struct wbpf_pt_regs, orig_rax) == 120, "orig_rax");
_Static_assert(__builtin_offsetof(struct wbpf_pt_regs, rip) == 128, "rip");
_Static_assert(__builtin_offsetof(struct wbpf_pt_regs, eflags) == 144, "eflags");
_Static_assert(__builtin_offsetof(struct wbpf_pt_regs, rsp) == 152, "rsp");
_Static_assert(sizeof(struct wbpf_pt_regs) == 168, "struct pt_regs");

int wbpf_arch_build(struct wbpf_tramp *t, uint8_t *page, uintptr_t fn, size_t fn_size, size_t readable,
		    wbpf_hook_handler handler, void *cookie, struct wbpf_hook_error *err)
{
	int gp = __atomic_load_n(&wbpf_hook_vector_free, __ATOMIC_RELAXED);
	const uint8_t *start = gp ? wbpf_x86_tramp_gp_start : wbpf_x86_tramp_start;
	const uint8_t *ip = gp ? wbpf_x86_tramp_gp_ip : wbpf_x86_tramp_ip;
	const uint8_t *ck = gp ? wbpf_x86_tramp_gp_cookie : wbpf_x86_tramp_cookie;
	const uint8_t *hd = gp ? wbpf_x86_tramp_gp_handler : wbpf_x86_tramp_handler;
	size_t tl = (size_t)((gp ? wbpf_x86_tramp_gp_end : wbpf_x86_tramp_end) - start);
	uint64_t v;
	memcpy(page, start, tl);
	v = fn;
	memcpy(page + (ip - start), &v, 8);
	v = (uint64_t)(uintptr_t)cookie;
	memcpy(page + (ck - start), &v, 8);
	v = (uint64_t)(uintptr_t)handler;
	memcpy(page + (hd - start), &v, 8);
	/* the original path is also entered on its own (int3 during unpatching, evacuated threads) */
	int n = x86_relocate((const uint8_t *)fn, fn_size, readable, wbpf_arch_patch_len, page + tl, WBPF_TRAMP_PAGE - tl,
			     (uintptr_t)page + tl, t, err);
	if (n < 0) return -n;
	int64_t rel = (int64_t)(uintptr_t)page - (int64_t)(fn + 5);
	if (rel != (int32_t)rel)
		return wbpf_fail(err, WBPF_HOOK_ENOMEM, "trampoline %p is out of rel32 reach of %#lx", (void *)page,
				 (unsigned long)fn);
	t->page = page;
	t->entry = (uintptr_t)page;
	t->orig = (uintptr_t)page + tl;
	t->handler = handler;
	t->cookie = cookie;
	return 0;
}
