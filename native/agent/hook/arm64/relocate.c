/* arm64 entry relocator: moves the one instruction the hook's `b` replaces into the trampoline,
 * re-basing pc-relative operands and re-encoding branches so they reach from there, and refuses
 * (with the reason) what it cannot move exactly. */
#include <stdio.h>
#include <string.h>
#include "a64.h"

#define X16 16
#define X30 30

static int64_t sext(uint64_t v, int bits) { return (int64_t)(v << (64 - bits)) >> (64 - bits); }

uint32_t a64_b(uintptr_t at, uintptr_t target)
{
	int64_t rel = (int64_t)target - (int64_t)at;
	if (rel < -(1LL << 27) || rel >= (1LL << 27)) return 0;
	return 0x14000000u | (((uint64_t)rel >> 2) & 0x3ffffffu);
}

static void put64(uint32_t *dst, uint64_t v)
{
	dst[0] = (uint32_t)v;
	dst[1] = (uint32_t)(v >> 32);
}

int a64_emit_b(uint32_t *dst, uintptr_t dst_addr, uintptr_t target)
{
	uint32_t b = a64_b(dst_addr, target);
	if (b) {
		dst[0] = b;
		return 1;
	}
	/* x16 (IP0) is the intra-procedure-call scratch register: code reached by a branch may not
	 * expect it preserved (a veneer or PLT stub may have clobbered it the same way) */
	dst[0] = 0x58000040u | X16; /* ldr x16, .+8 */
	dst[1] = 0xd61f0000u | (X16 << 5); /* br x16 */
	put64(dst + 2, target);
	return 4;
}

/* movz/movk: Xd = v (4 words) */
static int emit_mov64(uint32_t *dst, int rd, uint64_t v)
{
	dst[0] = 0xd2800000u | (uint32_t)((v & 0xffff) << 5) | (uint32_t)rd;
	for (int hw = 1; hw < 4; hw++)
		dst[hw] = 0xf2800000u | ((uint32_t)hw << 21) | (uint32_t)(((v >> (16 * hw)) & 0xffff) << 5) | (uint32_t)rd;
	return 4;
}

int a64_is_landing_pad(uint32_t insn)
{
	return (insn & 0xffffff3fu) == 0xd503241fu /* bti, bti c, bti j, bti jc */
	       || insn == 0xd503233fu /* paciasp */ || insn == 0xd503237fu /* pacibsp */;
}

/* a conditional branch `skip` (already re-encoded to jump over the next block when NOT taken) then
 * the block branching to target: the branch's sense is inverted so the block is the taken path */
static int emit_cond(uint32_t *dst, size_t cap, uintptr_t dst_addr, uint32_t inverted_no_imm, int imm_shift,
		     uint32_t imm_mask, uintptr_t target)
{
	uint32_t blk[4];
	int n = a64_emit_b(blk, dst_addr + 4, target);
	if ((size_t)(1 + n) > cap) return -1;
	dst[0] = inverted_no_imm | ((uint32_t)(1 + n) & imm_mask) << imm_shift;
	memcpy(dst + 1, blk, 4u * (unsigned)n);
	return 1 + n;
}

#define REFUSE(...) do { snprintf(why, whylen, __VA_ARGS__); return -1; } while (0)

int a64_relocate(uint32_t insn, uintptr_t pc, uint32_t *dst, size_t cap, uintptr_t dst_addr, char *why, size_t whylen)
{
	if (cap < 12) REFUSE("no room in the trampoline");
	uint32_t op0 = (insn >> 25) & 0xf;
	int rd = (int)(insn & 31);

	if (op0 == 0 || op0 == 1 || op0 == 3)
		REFUSE("instruction %08x is unallocated or SME (not relocated)", insn);

	if ((op0 & 0xe) == 0x8) { /* data processing (immediate) */
		if ((insn & 0x1f000000u) == 0x10000000u) { /* adr, adrp */
			int64_t imm = sext(((insn >> 5) & 0x7ffff) << 2 | ((insn >> 29) & 3), 21);
			uint64_t target = (insn & 0x80000000u) ? (pc & ~(uintptr_t)0xfff) + (uint64_t)(imm * 4096)
							       : pc + (uint64_t)imm;
			return emit_mov64(dst, rd, target);
		}
		dst[0] = insn;
		return 1;
	}

	if ((op0 & 0xe) == 0xa) { /* branches, exception generation, system */
		if ((insn & 0x7c000000u) == 0x14000000u) { /* b, bl */
			uintptr_t target = pc + (uint64_t)(sext(insn & 0x3ffffff, 26) * 4);
			int n = 0;
			/* bl: the return goes straight back to the function (pc + 4), as if called there */
			if (insn & 0x80000000u) n = emit_mov64(dst, X30, pc + 4);
			return n + a64_emit_b(dst + n, dst_addr + 4u * (unsigned)n, target);
		}
		if ((insn & 0xff000010u) == 0x54000000u) { /* b.cond */
			uintptr_t target = pc + (uint64_t)(sext((insn >> 5) & 0x7ffff, 19) * 4);
			uint32_t cond = insn & 0xf;
			if (cond >= 14) return a64_emit_b(dst, dst_addr, target); /* al, nv: always */
			return emit_cond(dst, cap, dst_addr, 0x54000000u | (cond ^ 1), 5, 0x7ffff, target);
		}
		if ((insn & 0x7e000000u) == 0x34000000u) { /* cbz, cbnz */
			uintptr_t target = pc + (uint64_t)(sext((insn >> 5) & 0x7ffff, 19) * 4);
			return emit_cond(dst, cap, dst_addr, (insn & 0xff00001fu) ^ (1u << 24), 5, 0x7ffff, target);
		}
		if ((insn & 0x7e000000u) == 0x36000000u) { /* tbz, tbnz */
			uintptr_t target = pc + (uint64_t)(sext((insn >> 5) & 0x3fff, 14) * 4);
			return emit_cond(dst, cap, dst_addr, (insn & 0xfff8001fu) ^ (1u << 24), 5, 0x3fff, target);
		}
		if ((insn & 0xffe0001fu) == 0xd4000001u) { /* svc */
			dst[0] = insn;
			return 1;
		}
		if ((insn & 0xff000000u) == 0xd4000000u) {
			if ((insn & 0xffe0001fu) == 0xd4200000u)
				REFUSE("brk #%#x (another breakpoint: a kernel uprobe, a debugger?)", (insn >> 5) & 0xffff);
			REFUSE("exception-generating instruction %08x (hlt, hvc, smc, dcps) is not relocated", insn);
		}
		if ((insn & 0xffc00000u) == 0xd5000000u) { /* system: hints (nop, bti, pac*), barriers, mrs/msr */
			dst[0] = insn;
			return 1;
		}
		if ((insn & 0xfffffc1fu) == 0xd61f0000u || (insn & 0xfffffc1fu) == 0xd65f0000u ||
		    insn == 0xd65f0bffu || insn == 0xd65f0fffu) { /* br, ret, retaa, retab */
			dst[0] = insn;
			return 1;
		}
		if ((insn & 0xfffffc1fu) == 0xd63f0000u) { /* blr xn: return straight to the function */
			int n = (insn >> 5) & 31;
			if (n == X30) REFUSE("blr x30 at the entry is not relocated");
			int k = emit_mov64(dst, X30, pc + 4);
			dst[k] = 0xd61f0000u | ((uint32_t)n << 5); /* br xn */
			return k + 1;
		}
		REFUSE("branch or system instruction %08x is not one the relocator knows", insn);
	}

	if ((op0 & 0x5) == 0x4) { /* loads and stores */
		if ((insn & 0x3b000000u) == 0x18000000u) { /* ldr (literal): w, x, ldrsw, prfm; s, d, q */
			uintptr_t target = pc + (uint64_t)(sext((insn >> 5) & 0x7ffff, 19) * 4);
			int opc = (int)(insn >> 30), simd = (insn >> 26) & 1, n = 0;
			if (!simd) {
				static const uint32_t via[3] = { 0xb9400000u /* ldr wt */, 0xf9400000u /* ldr xt */,
								 0xb9800000u /* ldrsw xt */ };
				if (opc == 3) { /* prfm: a hint, dropped */
					dst[0] = A64_NOP;
					return 1;
				}
				n = emit_mov64(dst, rd, target);
				dst[n++] = via[opc] | ((uint32_t)rd << 5) | (uint32_t)rd;
				return n;
			}
			static const uint32_t vvia[3] = { 0xbd400000u /* ldr st */, 0xfd400000u /* ldr dt */,
							  0x3dc00000u /* ldr qt */ };
			if (opc == 3) REFUSE("unallocated ldr (literal) %08x", insn);
			/* a vector load needs an address register: x16 borrowed on the stack (no red zone on Linux) */
			dst[n++] = 0xa9bf47f0u; /* stp x16, x17, [sp, #-16]! */
			n += emit_mov64(dst + n, X16, target);
			dst[n++] = vvia[opc] | (X16 << 5) | (uint32_t)rd;
			dst[n++] = 0xa8c147f0u; /* ldp x16, x17, [sp], #16 */
			return n;
		}
		dst[0] = insn;
		return 1;
	}

	/* data processing (register), SIMD and FP, SVE: nothing pc-relative */
	dst[0] = insn;
	return 1;
}
