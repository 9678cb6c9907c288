/* arm64 trampoline builder: the register-saving template (trampoline.S) with its literals filled,
 * then the relocated entry instruction and the branch back, in one page within +-128 MiB of the
 * function; and where the `b` goes (after a landing pad on a BTI-guarded page). */
#define _GNU_SOURCE
#include <stdio.h>
#include <string.h>
#include "a64.h"

extern const uint8_t wbpf_a64_tramp_start[], wbpf_a64_tramp_entry[], wbpf_a64_tramp_end[];

const int wbpf_arch_patch_len = 4; /* one b */

/* the slots trampoline.S writes (kernel arm64 struct user_pt_regs) */
_Static_assert(__builtin_offsetof(struct wbpf_pt_regs, regs[30]) == 240, "x30");
_Static_assert(__builtin_offsetof(struct wbpf_pt_regs, sp) == 248, "sp");
_Static_assert(__builtin_offsetof(struct wbpf_pt_regs, pc) == 256, "pc");
_Static_assert(__builtin_offsetof(struct wbpf_pt_regs, pstate) == 264, "pstate");
_Static_assert(sizeof(struct wbpf_pt_regs) == 272, "struct user_pt_regs");

/* an indirect call must land on a landing pad on a guarded page, so a landing pad at the entry stays
 * and the `b` goes after it; patch.c keeps the guard when it restores the text's protection */
int wbpf_a64_bti_guarded(uintptr_t addr)
{
	FILE *f = fopen("/proc/self/smaps", "re");
	char line[512];
	unsigned long lo, hi;
	int in = 0, guarded = 0;
	if (!f) return 0;
	while (fgets(line, sizeof line, f)) {
		if (sscanf(line, "%lx-%lx ", &lo, &hi) == 2 && strchr(line, '-') < strchr(line, ' ')) {
			in = addr >= lo && addr < hi;
			continue;
		}
		if (in && !strncmp(line, "VmFlags:", 8)) {
			guarded = strstr(line, " bt") != NULL;
			break;
		}
	}
	fclose(f);
	return guarded;
}

int wbpf_a64_entry(uintptr_t fn, size_t fn_size, size_t readable, const char *takes, size_t *off, struct wbpf_hook_error *err)
{
	if (fn & 3) return wbpf_fail(err, WBPF_HOOK_EINVAL, "%#lx is not 4-byte aligned (not an arm64 function)", (unsigned long)fn);
	if (readable < 4 || (fn_size && fn_size < 4))
		return wbpf_fail(err, WBPF_HOOK_ESHORT, "the function is shorter than the 4 bytes %s", takes);
	*off = 0;
	if (a64_is_landing_pad(*(const uint32_t *)fn) && wbpf_a64_bti_guarded(fn)) {
		if (readable < 8 || (fn_size && fn_size < 8))
			return wbpf_fail(err, WBPF_HOOK_ESHORT, "the function is a lone landing pad (bti/paciasp) on a BTI-guarded page");
		*off = 4;
	}
	return 0;
}

int wbpf_arch_build(struct wbpf_tramp *t, uint8_t *page, uintptr_t fn, size_t fn_size, size_t readable,
		    wbpf_hook_handler handler, void *cookie, struct wbpf_hook_error *err)
{
	size_t off;
	int rc = wbpf_a64_entry(fn, fn_size, readable, "the branch needs", &off, err);
	if (rc) return rc;
	const uint32_t *code = (const uint32_t *)fn;
	size_t tl = (size_t)(wbpf_a64_tramp_end - wbpf_a64_tramp_start);
	memcpy(page, wbpf_a64_tramp_start, tl);
	uint64_t v = fn;
	memcpy(page + 0, &v, 8);
	v = (uint64_t)(uintptr_t)cookie;
	memcpy(page + 8, &v, 8);
	v = (uint64_t)(uintptr_t)handler;
	memcpy(page + 16, &v, 8);
	uintptr_t at = fn + off, orig = (uintptr_t)page + tl;
	uint32_t *dst = (uint32_t *)(page + tl);
	size_t cap = (WBPF_TRAMP_PAGE - tl) / 4;
	char why[120];
	int n = a64_relocate(code[off / 4], at, dst, cap - 4, orig, why, sizeof why);
	if (n < 0) return wbpf_fail(err, WBPF_HOOK_EDECODE, "%s at +%zu", why, off);
	n += a64_emit_b(dst + n, orig + 4u * (unsigned)n, at + 4);
	if (!a64_b(at, (uintptr_t)page + (size_t)(wbpf_a64_tramp_entry - wbpf_a64_tramp_start)))
		return wbpf_fail(err, WBPF_HOOK_ENOMEM, "trampoline %p is out of the b's +-128 MiB reach of %#lx", (void *)page,
				 (unsigned long)fn);
	/* the new code reaches the instruction cache before any thread can branch to it */
	__builtin___clear_cache((char *)page, (char *)(dst + n));
	memset(t->map, 0xff, sizeof t->map);
	t->map[off] = 0;
	t->replaced = (int)off + 4;
	t->page = page;
	t->entry = (uintptr_t)page + (size_t)(wbpf_a64_tramp_entry - wbpf_a64_tramp_start);
	t->orig = orig;
	t->handler = handler;
	t->cookie = cookie;
	return 0;
}
