/* x86-64 instruction decoder for function entries: the length, a rip-relative displacement's place,
 * and relative branches, for what compilers emit there; anything else is reported unknown. */
#include <stdio.h>
#include <string.h>
#include "x86.h"

/* bytes of modrm + sib + displacement at p; sets *riprel for mod=00 rm=101 (no SIB) */
static int modrm_len(const uint8_t *p, int *riprel)
{
	uint8_t mod = p[0] >> 6, rm = p[0] & 7;
	int n = 1;
	*riprel = 0;
	if (mod == 3) return n;
	if (rm == 4) {
		n++;
		if (mod == 0 && (p[1] & 7) == 5) n += 4;
	} else if (mod == 0 && rm == 5) {
		*riprel = 1;
		return n + 4;
	}
	if (mod == 1) n += 1;
	else if (mod == 2) n += 4;
	return n;
}

static int unknown(const uint8_t *p, int n, char *why, size_t whylen)
{
	int k = snprintf(why, whylen, "unknown instruction");
	for (int i = 0; i < n && k > 0 && (size_t)k < whylen; i++) k += snprintf(why + k, whylen - k, " %02x", p[i]);
	return -1;
}

int x86_decode(const uint8_t *p, struct x86_insn *in, char *why, size_t whylen)
{
	int i = 0, rexw = 0, opsz16 = 0, riprel = 0, ml, imm = 0, has_modrm = 0;
	memset(in, 0, sizeof *in);
	in->disp_off = -1;
	in->kind = X86_PLAIN;
	/* legacy prefixes: operand size, rep/repne (endbr64, pause), segment (cs nops, %fs canary), lock */
	for (;;) {
		uint8_t b = p[i];
		if (b == 0x66) opsz16 = 1;
		else if (b == 0xf2 || b == 0xf3 || b == 0x2e || b == 0x3e || b == 0x26 || b == 0x36 ||
			 b == 0x64 || b == 0x65 || b == 0xf0) ;
		else break;
		if (++i > 6) return unknown(p, i, why, whylen);
	}
	if ((p[i] & 0xf0) == 0x40) { rexw = (p[i] & 8) != 0; i++; }
	int immz = rexw ? 4 : (opsz16 ? 2 : 4); /* imm16/32 */
	uint8_t op = p[i++];
	switch (op) {
	/* ALU r/m,r and r,r/m: add or adc sbb and sub xor cmp */
	case 0x00: case 0x01: case 0x02: case 0x03: case 0x08: case 0x09: case 0x0a: case 0x0b:
	case 0x10: case 0x11: case 0x12: case 0x13: case 0x18: case 0x19: case 0x1a: case 0x1b:
	case 0x20: case 0x21: case 0x22: case 0x23: case 0x28: case 0x29: case 0x2a: case 0x2b:
	case 0x30: case 0x31: case 0x32: case 0x33: case 0x38: case 0x39: case 0x3a: case 0x3b:
	case 0x63:                                      /* movsxd */
	case 0x84: case 0x85: case 0x86: case 0x87:     /* test, xchg */
	case 0x88: case 0x89: case 0x8a: case 0x8b:     /* mov */
	case 0xd0: case 0xd1: case 0xd2: case 0xd3:     /* shifts by 1 / cl */
		has_modrm = 1; break;
	case 0x8d: /* lea: a register operand is invalid */
		if ((p[i] >> 6) == 3) return unknown(p, i + 1, why, whylen);
		has_modrm = 1; break;
	case 0x8f: /* pop r/m (/0 only) */
		if ((p[i] >> 3 & 7) != 0) return unknown(p, i + 1, why, whylen);
		has_modrm = 1; break;
	case 0x04: case 0x0c: case 0x14: case 0x1c: case 0x24: case 0x2c: case 0x34: case 0x3c:
	case 0xa8: case 0x6a:                           /* al,imm8; test al,imm8; push imm8 */
		imm = 1; break;
	case 0x05: case 0x0d: case 0x15: case 0x1d: case 0x25: case 0x2d: case 0x35: case 0x3d:
	case 0xa9: case 0x68:                           /* eax,imm32; test; push imm32 */
		imm = immz; break;
	case 0x50 ... 0x5f:                             /* push / pop r64 */
	case 0x90 ... 0x99:                             /* nop (and 66 90), xchg eax, cwde/cdq */
	case 0xc9:                                      /* leave */
		break;
	case 0xb0 ... 0xb7: imm = 1; break;             /* mov r8, imm8 */
	case 0xb8 ... 0xbf: imm = rexw ? 8 : immz; break; /* mov r, imm32 / movabs imm64 */
	case 0x69: has_modrm = 1; imm = immz; break;    /* imul r, r/m, imm32 */
	case 0x6b: case 0x80: case 0x83: case 0xc0: case 0xc1: case 0xc6: /* imm8 forms */
		has_modrm = 1; imm = 1; break;
	case 0x81: case 0xc7: has_modrm = 1; imm = immz; break;
	case 0xf6: case 0xf7: /* grp3: /0 /1 test has an immediate */
		has_modrm = 1;
		if ((p[i] >> 3 & 7) < 2) imm = op == 0xf6 ? 1 : immz;
		break;
	case 0xfe: /* inc/dec r/m8 */
		if ((p[i] >> 3 & 7) > 1) return unknown(p, i + 1, why, whylen);
		has_modrm = 1; break;
	case 0xff: {
		int reg = p[i] >> 3 & 7;
		if (reg == 3 || reg == 5 || reg == 7) return unknown(p, i + 1, why, whylen); /* far, invalid */
		has_modrm = 1;
		if (reg == 4) in->kind = X86_END; /* jmp *r/m; call *r/m (/2) returns into the trampoline */
		break;
	}
	case 0xc3: in->kind = X86_END; break;           /* ret */
	case 0xc2: in->kind = X86_END; imm = 2; break;  /* ret imm16 */
	case 0x70 ... 0x7f:
		in->kind = X86_JCC; in->cc = op & 0xf; in->rel = (int8_t)p[i]; imm = 1; break;
	case 0xeb: in->kind = X86_JMP; in->rel = (int8_t)p[i]; imm = 1; break;
	case 0xe8: case 0xe9: {
		int32_t r;
		if (opsz16) return unknown(p, i, why, whylen);
		memcpy(&r, p + i, 4);
		in->kind = op == 0xe8 ? X86_CALL : X86_JMP;
		in->rel = r;
		imm = 4;
		break;
	}
	case 0x0f: {
		uint8_t op2 = p[i++];
		if (op2 >= 0x80 && op2 <= 0x8f) {
			int32_t r;
			memcpy(&r, p + i, 4);
			in->kind = X86_JCC; in->cc = op2 & 0xf; in->rel = r; imm = 4;
		} else if ((op2 >= 0x18 && op2 <= 0x1f) ||   /* hint nops, nopl/nopw r/m, endbr64 (f3 0f 1e fa) */
			   (op2 >= 0x40 && op2 <= 0x4f) ||   /* cmovcc */
			   (op2 >= 0x90 && op2 <= 0x9f) ||   /* setcc */
			   op2 == 0xb6 || op2 == 0xb7 || op2 == 0xbe || op2 == 0xbf || op2 == 0xaf || /* movzx/movsx, imul */
			   op2 == 0x10 || op2 == 0x11 || op2 == 0x28 || op2 == 0x29 || op2 == 0x57 || /* movups/ss/sd/aps, xorps */
			   op2 == 0x6e || op2 == 0x7e || op2 == 0x6f || op2 == 0x7f || op2 == 0xd6 || op2 == 0xef ||
			   (op2 >= 0x12 && op2 <= 0x17) || (op2 >= 0x2a && op2 <= 0x2f) || /* movlps.., cvt, (u)comis */
			   (op2 >= 0x51 && op2 <= 0x5f)) {                  /* sqrt and or xor add mul cvt sub min div max */
			has_modrm = 1;
		} else {
			return unknown(p, i, why, whylen);
		}
		break;
	}
	default:
		return unknown(p, i, why, whylen);
	}
	if (has_modrm) {
		ml = modrm_len(p + i, &riprel);
		if (riprel) in->disp_off = i + 1;
		i += ml;
	}
	in->len = i + imm;
	if (in->len > 15) return unknown(p, 15, why, whylen);
	return 0;
}
