/* x86-64 prologue relocator: copies the whole instructions the jump replaces to the trampoline,
 * re-bases rip-relative displacements, re-encodes relative branches as rel32 or absolute, and
 * refuses (with the reason) what it cannot move exactly. */
#include <stdio.h>
#include <string.h>
#include "x86.h"

static int fits32(int64_t v) { return v == (int32_t)v; }

int x86_emit_jmp(uint8_t *p, uintptr_t at, uintptr_t target)
{
	int64_t rel = (int64_t)target - (int64_t)(at + 5);
	if (fits32(rel)) {
		int32_t r = (int32_t)rel;
		p[0] = 0xe9;
		memcpy(p + 1, &r, 4);
		return 5;
	}
	static const uint8_t abs_jmp[6] = { 0xff, 0x25, 0, 0, 0, 0 }; /* jmp *0(%rip) */
	memcpy(p, abs_jmp, 6);
	memcpy(p + 6, &target, 8);
	return 14;
}

/* jcc to target: rel32 when it reaches, else the inverse jcc rel8 over an absolute jmp */
static int emit_jcc(uint8_t *p, uintptr_t at, int cc, uintptr_t target)
{
	int64_t rel = (int64_t)target - (int64_t)(at + 6);
	if (fits32(rel)) {
		int32_t r = (int32_t)rel;
		p[0] = 0x0f;
		p[1] = (uint8_t)(0x80 | cc);
		memcpy(p + 2, &r, 4);
		return 6;
	}
	static const uint8_t abs_jmp[6] = { 0xff, 0x25, 0, 0, 0, 0 }; /* jmp *0(%rip) */
	p[0] = (uint8_t)(0x70 | (cc ^ 1));
	p[1] = 14;
	memcpy(p + 2, abs_jmp, 6);
	memcpy(p + 8, &target, 8);
	return 16;
}

/* call target: rel32 when it reaches, else call *2(%rip); jmp +8; .quad target. The return address
 * is then in the trampoline, which goes on with the next relocated instruction. */
static int emit_call(uint8_t *p, uintptr_t at, uintptr_t target)
{
	int64_t rel = (int64_t)target - (int64_t)(at + 5);
	if (fits32(rel)) {
		int32_t r = (int32_t)rel;
		p[0] = 0xe8;
		memcpy(p + 1, &r, 4);
		return 5;
	}
	static const uint8_t abs_call[8] = { 0xff, 0x15, 2, 0, 0, 0, 0xeb, 8 };
	memcpy(p, abs_call, 8);
	memcpy(p + 8, &target, 8);
	return 16;
}

/* the next function's start after a ret or jmp: int3 padding, or (CET builds) its endbr64 */
static int is_boundary(const uint8_t *p, size_t left)
{
	return (left >= 1 && p[0] == 0xcc) || (left >= 4 && p[0] == 0xf3 && p[1] == 0x0f && p[2] == 0x1e && p[3] == 0xfa);
}

/* decodes at fn+s without reading past fn+readable */
static int decode_at(const uint8_t *fn, size_t s, size_t readable, struct x86_insn *in, char *why, size_t whylen)
{
	uint8_t tmp[16] = { 0 };
	const uint8_t *p = fn + s;
	if (readable - s < sizeof tmp) {
		memcpy(tmp, p, readable - s);
		p = tmp;
	}
	if (x86_decode(p, in, why, whylen)) return -1;
	if ((size_t)in->len > readable - s) {
		snprintf(why, whylen, "instruction past the end of the mapping");
		return -1;
	}
	return 0;
}

#define SCAN_MAX 4096

/* the rest of the function: no relative branch may target the replaced bytes (after the patch they
 * hold the jump's displacement). Its end: fn_size, or when unknown a ret or jmp followed by int3
 * padding or an endbr64 (nop padding also aligns loop heads inside functions: not an end) */
static int scan_body(const uint8_t *fn, size_t fn_size, size_t readable, int replaced, struct wbpf_hook_error *err)
{
	char why[96];
	size_t limit = fn_size ? fn_size : (readable < SCAN_MAX ? readable : SCAN_MAX);
	for (size_t s = (size_t)replaced; s < limit;) {
		struct x86_insn in;
		if (decode_at(fn, s, readable, &in, why, sizeof why))
			return wbpf_fail(err, WBPF_HOOK_EDECODE,
					 "%s at +%zu (the body is checked for branches into the entry)", why, s);
		if (in.kind == X86_JMP || in.kind == X86_JCC || in.kind == X86_CALL) {
			int64_t target = (int64_t)s + in.len + in.rel;
			if (target > 0 && target < replaced)
				return wbpf_fail(err, WBPF_HOOK_EBRANCH,
						 "the branch at +%zu targets +%d, inside the %d replaced bytes", s, (int)target, replaced);
		}
		s += in.len;
		if (!fn_size && (in.kind == X86_END || in.kind == X86_JMP) && s < readable && is_boundary(fn + s, readable - s))
			return 0;
	}
	if (fn_size) return 0;
	return wbpf_fail(err, WBPF_HOOK_EDECODE,
			 "no end of the function (ret or jmp, then int3 padding or an endbr64) within %zu bytes: "
			 "pass the symbol's size", limit);
}

int x86_relocate(const uint8_t *fn, size_t fn_size, size_t readable, int min_len, uint8_t *dst, size_t cap,
		 uintptr_t dst_addr, struct wbpf_tramp *t, struct wbpf_hook_error *err)
{
	uintptr_t src_addr = (uintptr_t)fn;
	uintptr_t targets[WBPF_REPLACED_MAX];
	int ntargets = 0, s = 0, d = 0, ended = 0;
	char why[96];
	memset(t->map, 0xff, sizeof t->map);
	if (fn_size > readable)
		return -wbpf_fail(err, WBPF_HOOK_EDECODE, "the function's %zu bytes run past its mapping (%zu bytes)",
				  fn_size, readable);
	if (fn_size && fn_size < (size_t)min_len)
		return -wbpf_fail(err, WBPF_HOOK_ESHORT, "the function is %zu bytes, shorter than the %d bytes the jump needs",
				  fn_size, min_len);
	while (s < min_len) {
		struct x86_insn in;
		if (ended)
			return -wbpf_fail(err, WBPF_HOOK_ESHORT,
					  "the function ends at +%d, before the %d bytes the jump needs", s, min_len);
		if (fn[s] == 0xcc)
			return -wbpf_fail(err, WBPF_HOOK_EDECODE, "int3 at +%d (another breakpoint?)", s);
		if ((size_t)s >= readable || decode_at(fn, s, readable, &in, why, sizeof why))
			return -wbpf_fail(err, WBPF_HOOK_EDECODE, "%s at +%d", (size_t)s >= readable ? "end of the mapping" : why, s);
		if (s + in.len > WBPF_REPLACED_MAX)
			return -wbpf_fail(err, WBPF_HOOK_EDECODE, "instruction at +%d is too long to replace", s);
		if (d + 16 + 14 > (int)cap)
			return -wbpf_fail(err, WBPF_HOOK_EDECODE, "relocated entry too long at +%d", s);
		t->map[s] = (uint8_t)d;
		uintptr_t end = src_addr + s + in.len, at = dst_addr + d;
		uintptr_t target = end + in.rel;
		switch (in.kind) {
		case X86_PLAIN:
		case X86_END:
			memcpy(dst + d, fn + s, in.len);
			if (in.disp_off >= 0) {
				int32_t disp;
				memcpy(&disp, fn + s + in.disp_off, 4);
				int64_t nd = (int64_t)(end + disp) - (int64_t)(at + in.len);
				if (!fits32(nd))
					return -wbpf_fail(err, WBPF_HOOK_ERANGE,
							  "rip-relative operand at +%d: %#lx is out of +-2 GiB of the trampoline %#lx",
							  s, (unsigned long)(end + disp), (unsigned long)at);
				int32_t nd32 = (int32_t)nd;
				memcpy(dst + d + in.disp_off, &nd32, 4);
			}
			d += in.len;
			if (in.kind == X86_END) ended = 1;
			break;
		case X86_JMP:
			targets[ntargets++] = target;
			d += x86_emit_jmp(dst + d, at, target);
			ended = 1;
			break;
		case X86_JCC:
			targets[ntargets++] = target;
			d += emit_jcc(dst + d, at, in.cc, target);
			break;
		case X86_CALL:
			if (in.rel == 0)
				return -wbpf_fail(err, WBPF_HOOK_EBRANCH,
						  "call +0 at +%d reads its own address (the copy would see the trampoline's)", s);
			targets[ntargets++] = target;
			d += emit_call(dst + d, at, target);
			break;
		}
		s += in.len;
	}
	if (fn_size && (size_t)s > fn_size)
		return -wbpf_fail(err, WBPF_HOOK_ESHORT, "the entry's instructions end at +%d, past the function's %zu bytes",
				  s, fn_size);
	for (int k = 0; k < ntargets; k++)
		if (targets[k] > src_addr && targets[k] < src_addr + s)
			return -wbpf_fail(err, WBPF_HOOK_EBRANCH, "a branch in the entry targets +%d, inside the %d replaced bytes",
					  (int)(targets[k] - src_addr), s);
	/* min_len 1 (the trap tier): only the first byte is replaced, and a branch to fn itself is fine */
	if (!ended) {
		int rc = min_len > 1 ? scan_body(fn, fn_size, readable, s, err) : 0;
		if (rc) return -rc;
		d += x86_emit_jmp(dst + d, dst_addr + d, src_addr + s);
	}
	t->replaced = s;
	return d;
}
