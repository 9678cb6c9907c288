/* x86-64: a rewritten site's trampoline (the replaced instruction's work, a call of wbpf_sys_common, back
 * past the site's `syscall`, or to it when the call passes through untraced) and the patch of the site's
 * one replaced instruction, int3 first (the hook's SIGTRAP handler sends a thread that meets the int3 to
 * the trampoline while patching in, to the instruction out of line while patching out). */
#define _GNU_SOURCE
#include <stddef.h>
#include <string.h>
#include "../internal.h"
#include "../../hook/x86_64/x86.h"

extern char wbpf_sys_common[];

/* the generic site's fast path reads these with 8-bit displacements */
_Static_assert(offsetof(struct wbpf_sys_rec, owner) < 128, "owner beyond a disp8");
_Static_assert(offsetof(struct wbpf_sys, traced) < 128, "traced beyond a disp8");

static size_t put(uint8_t *p, size_t k, const void *b, size_t n) { memcpy(p + k, b, n); return k + n; }

static size_t jmp_rel32(uint8_t *p, size_t k, uintptr_t target)
{
	int32_t rel = (int32_t)((int64_t)target - (int64_t)((uintptr_t)p + k + 5));
	p[k] = 0xe9;
	memcpy(p + k + 1, &rel, 4);
	return k + 5;
}

size_t wbpf_sys_arch_stub(uint8_t *p, struct wbpf_sys_rec *r)
{
	static const uint8_t lea_down[] = { 0x48, 0x8d, 0x64, 0x24, 0x80 };             /* lea -128(%rsp),%rsp: past the red zone */
	static const uint8_t lea_up[] = { 0x48, 0x8d, 0xa4, 0x24, 0x88, 0, 0, 0 };      /* lea 136(%rsp),%rsp: + the record */
	static const uint8_t push_r11[] = { 0x41, 0x53 }, call_r11[] = { 0x41, 0xff, 0xd3 };
	static const uint8_t test_r11[] = { 0x4d, 0x85, 0xdb }, jnz5[] = { 0x75, 0x05 };
	uint64_t rec = (uint64_t)(uintptr_t)r, common = (uint64_t)(uintptr_t)wbpf_sys_common;
	size_t k = 0;
	r->entry = (uintptr_t)p;
	size_t fix[4];
	int nfix = 0;
	if (r->nr < 0) {
		k = put(p, k, r->orig, WBPF_SYS_REPLACED); /* the generic syscall()'s `mov 8(%rsp),%r9` */
		/* an untraced number goes straight to the site's own syscall, before any register is saved (rcx and
		 * r11 are free: the syscall clobbers them): nr > 511, no owner, or its bit clear in the owner's set */
		static const uint8_t cmp_rax[] = { 0x48, 0x3d, 0xff, 0x01, 0x00, 0x00 };          /* cmp $511,%rax */
		static const uint8_t ld_owner[] = { 0x4d, 0x8b, 0x5b, (uint8_t)offsetof(struct wbpf_sys_rec, owner) }; /* mov owner(%r11),%r11 */
		static const uint8_t bt_rax[] = { 0x49, 0x0f, 0xa3, 0x43, (uint8_t)offsetof(struct wbpf_sys, traced) }; /* bt %rax,traced(%r11) */
		k = put(p, k, cmp_rax, sizeof cmp_rax);
		p[k++] = 0x77; fix[nfix++] = k++;                          /* ja untraced */
		p[k++] = 0x49; p[k++] = 0xbb; k = put(p, k, &rec, 8);     /* movabs $rec,%r11 */
		k = put(p, k, ld_owner, sizeof ld_owner);
		k = put(p, k, test_r11, sizeof test_r11);
		p[k++] = 0x74; fix[nfix++] = k++;                          /* jz untraced */
		k = put(p, k, bt_rax, sizeof bt_rax);
		p[k++] = 0x73; fix[nfix++] = k++;                          /* jnc untraced */
	}
	k = put(p, k, lea_down, sizeof lea_down);
	if (r->nr >= 0) { p[k++] = 0xb8; k = put(p, k, &r->nr, 4); } /* mov $nr,%eax */
	p[k++] = 0x49; p[k++] = 0xbb; k = put(p, k, &rec, 8);        /* movabs $rec,%r11 */
	k = put(p, k, push_r11, sizeof push_r11);
	p[k++] = 0x49; p[k++] = 0xbb; k = put(p, k, &common, 8);     /* movabs $wbpf_sys_common,%r11 */
	k = put(p, k, call_r11, sizeof call_r11);
	k = put(p, k, lea_up, sizeof lea_up);
	k = put(p, k, test_r11, sizeof test_r11);
	k = put(p, k, jnz5, sizeof jnz5);
	k = jmp_rel32(p, k, r->at + WBPF_SYS_REPLACED + 2);          /* done: past the site's syscall */
	for (int i = 0; i < nfix; i++) p[fix[i]] = (uint8_t)(k - (fix[i] + 1)); /* the fast path's exits: here */
	k = jmp_rel32(p, k, r->at + WBPF_SYS_REPLACED);              /* untraced: the site's own syscall */
	r->orig_path = (uintptr_t)p + k;
	k = put(p, k, r->orig, WBPF_SYS_REPLACED);
	k = jmp_rel32(p, k, r->at + WBPF_SYS_REPLACED);
	return k;
}

int wbpf_sys_arch_patch(struct wbpf_sys_rec *r, int in, struct wbpf_hook_error *err)
{
	int rc = wbpf_x86_signals_init(err);
	if (rc) return rc;
	uint8_t bytes[WBPF_SYS_REPLACED], int3 = 0xcc;
	if (in) {
		bytes[0] = 0xe9;
		int32_t rel = (int32_t)((int64_t)r->entry - (int64_t)(r->at + 5));
		memcpy(bytes + 1, &rel, 4);
	} else {
		memcpy(bytes, r->orig, sizeof bytes);
	}
	struct wbpf_text tx;
	if ((rc = wbpf_text_open(&tx, r->at, WBPF_SYS_REPLACED, err))) return rc;
	/* one instruction is replaced by one: a thread is before it, past it or in the trampoline, never
	 * inside; one that meets the int3 meanwhile does what the site will do (in) or did (out) */
	__atomic_store_n(&r->hs->trap_target, in ? r->entry : r->orig_path, __ATOMIC_RELEASE);
	wbpf_text_store(r->at, &int3, 1);
	wbpf_sync_cores();
	wbpf_text_store(r->at + 1, bytes + 1, WBPF_SYS_REPLACED - 1);
	wbpf_sync_cores();
	wbpf_text_store(r->at, bytes, 1);
	wbpf_sync_cores();
	wbpf_text_close(&tx);
	return 0;
}
