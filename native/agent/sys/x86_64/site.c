/* x86-64: a rewritten site's trampoline (the replaced instruction's work, a call of wbpf_sys_common, back
 * past the site's `syscall`, or to it when the call passes through untraced) and the patch of the site's
 * one replaced instruction, int3 first (the hook's SIGTRAP handler sends a thread that meets the int3 to
 * the trampoline while patching in, to the instruction out of line while patching out). */
#define _GNU_SOURCE
#include <string.h>
#include "../internal.h"
#include "../../hook/x86_64/x86.h"

extern char wbpf_sys_common[];

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
	if (r->nr < 0) k = put(p, k, r->orig, WBPF_SYS_REPLACED); /* the generic syscall()'s `mov 8(%rsp),%r9` */
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
