/* Unit test of the x86-64 decoder and relocator on byte strings: nop forms and prologue lengths,
 * branch re-encoding (rel32 near, absolute far), refusals (far rip-relative, branch into the entry).
 * Prints "hook_unit: OK"; exits 1 on the first failure. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "../hook/x86_64/x86.h"

#define FAIL(...) do { printf("FAIL "); printf(__VA_ARGS__); printf("\n"); exit(1); } while (0)

struct lencase { const char *what; int len; int disp_off; uint8_t b[16]; };

static const struct lencase cases[] = {
	{ "nop", 1, -1, { 0x90 } },
	{ "xchg %ax,%ax", 2, -1, { 0x66, 0x90 } },
	{ "nopl (%rax)", 3, -1, { 0x0f, 0x1f, 0x00 } },
	{ "nopl 0(%rax)", 4, -1, { 0x0f, 0x1f, 0x40, 0x00 } },
	{ "nopl 0(%rax,%rax)", 5, -1, { 0x0f, 0x1f, 0x44, 0x00, 0x00 } },
	{ "nopw 0(%rax,%rax)", 6, -1, { 0x66, 0x0f, 0x1f, 0x44, 0x00, 0x00 } },
	{ "nopl 0L(%rax)", 7, -1, { 0x0f, 0x1f, 0x80, 0, 0, 0, 0 } },
	{ "nopl 0L(%rax,%rax)", 8, -1, { 0x0f, 0x1f, 0x84, 0x00, 0, 0, 0, 0 } },
	{ "nopw 0L(%rax,%rax)", 9, -1, { 0x66, 0x0f, 0x1f, 0x84, 0x00, 0, 0, 0, 0 } },
	{ "nopw %cs:0L(%rax,%rax)", 10, -1, { 0x66, 0x2e, 0x0f, 0x1f, 0x84, 0x00, 0, 0, 0, 0 } },
	{ "data16 nopw %cs:0L(%rax,%rax)", 11, -1, { 0x66, 0x66, 0x2e, 0x0f, 0x1f, 0x84, 0x00, 0, 0, 0, 0 } },
	{ "endbr64", 4, -1, { 0xf3, 0x0f, 0x1e, 0xfa } },
	{ "push %rbp", 1, -1, { 0x55 } },
	{ "push %r15", 2, -1, { 0x41, 0x57 } },
	{ "mov %rsp,%rbp", 3, -1, { 0x48, 0x89, 0xe5 } },
	{ "sub $0x20,%rsp", 4, -1, { 0x48, 0x83, 0xec, 0x20 } },
	{ "sub $0x1000,%rsp", 7, -1, { 0x48, 0x81, 0xec, 0x00, 0x10, 0, 0 } },
	{ "mov %fs:0x28,%rax", 9, -1, { 0x64, 0x48, 0x8b, 0x04, 0x25, 0x28, 0, 0, 0 } },
	{ "mov x(%rip),%rax", 7, 3, { 0x48, 0x8b, 0x05, 1, 2, 3, 4 } },
	{ "lea x(%rip),%rdi", 7, 3, { 0x48, 0x8d, 0x3d, 1, 2, 3, 4 } },
	{ "movl $imm,x(%rip)", 10, 2, { 0xc7, 0x05, 1, 2, 3, 4, 9, 9, 9, 9 } },
	{ "cmpb $0,x(%rip)", 7, 2, { 0x80, 0x3d, 1, 2, 3, 4, 0 } },
	{ "movabs $imm64,%rax", 10, -1, { 0x48, 0xb8, 1, 2, 3, 4, 5, 6, 7, 8 } },
	{ "mov $imm32,%eax", 5, -1, { 0xb8, 1, 2, 3, 4 } },
	{ "mulsd %xmm1,%xmm0", 4, -1, { 0xf2, 0x0f, 0x59, 0xc1 } },
	{ "movaps %xmm0,0x10(%rsp)", 5, -1, { 0x0f, 0x29, 0x44, 0x24, 0x10 } },
};

static uint8_t buf[64], out[WBPF_RELOC_MAX];

static int reloc(const uint8_t *code, size_t n, uintptr_t dst_addr, struct wbpf_tramp *t, struct wbpf_hook_error *e)
{
	memset(buf, 0xcc, sizeof buf);
	memcpy(buf, code, n);
	memset(out, 0, sizeof out);
	memset(e, 0, sizeof *e);
	return x86_relocate(buf, 0, sizeof buf, 5, out, sizeof out, dst_addr, t, e);
}

int main(void)
{
	char why[96];
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		struct x86_insn in;
		if (x86_decode(cases[i].b, &in, why, sizeof why)) FAIL("%s: %s", cases[i].what, why);
		if (in.len != cases[i].len || in.disp_off != cases[i].disp_off || in.kind != X86_PLAIN)
			FAIL("%s: len %d disp_off %d kind %d, want %d %d plain", cases[i].what, in.len, in.disp_off, in.kind,
			     cases[i].len, cases[i].disp_off);
	}
	printf("ok decode: %zu prologue and nop forms\n", sizeof cases / sizeof cases[0]);

	struct wbpf_tramp t;
	struct wbpf_hook_error e;
	uintptr_t far = (uintptr_t)buf + (3UL << 30), near = (uintptr_t)buf + (1UL << 20);

	/* je +0x10; 3 nops; ret: far away the je becomes jne +14 over jmp *0(%rip); .quad target */
	static const uint8_t je[] = { 0x74, 0x10, 0x90, 0x90, 0x90, 0xc3 };
	int n = reloc(je, sizeof je, far, &t, &e);
	uint64_t q;
	memcpy(&q, out + 8, 8);
	if (n < 0 || out[0] != 0x75 || out[1] != 14 || out[2] != 0xff || out[3] != 0x25 || q != (uintptr_t)buf + 0x12 || t.replaced != 5)
		FAIL("far je: n %d %02x %02x %02x q %#lx (%s)", n, out[0], out[1], out[2], (unsigned long)q, e.reason);
	/* near: je rel32 to the same target */
	n = reloc(je, sizeof je, near, &t, &e);
	int32_t r32;
	memcpy(&r32, out + 2, 4);
	if (n < 0 || out[0] != 0x0f || out[1] != 0x84 || near + 6 + r32 != (uintptr_t)buf + 0x12)
		FAIL("near je: n %d %02x %02x (%s)", n, out[0], out[1], e.reason);
	printf("ok relocate: jcc rel8 -> jcc rel32 near, inverse jcc + absolute jmp far\n");

	/* call rel32 far: call *2(%rip); jmp +8; .quad target; then the jump back */
	static const uint8_t callr[] = { 0xe8, 0x00, 0x01, 0x00, 0x00, 0xc3 };
	n = reloc(callr, sizeof callr, far, &t, &e);
	memcpy(&q, out + 8, 8);
	if (n < 0 || out[0] != 0xff || out[1] != 0x15 || out[6] != 0xeb || out[7] != 8 || q != (uintptr_t)buf + 5 + 0x100)
		FAIL("far call: n %d (%s)", n, e.reason);
	printf("ok relocate: call rel32 -> absolute call far\n");

	/* jmp rel8 as the whole entry is not enough (2 bytes, then the function is over) */
	static const uint8_t jmp8[] = { 0xeb, 0x10, 0x90, 0x90, 0x90, 0xc3 };
	n = reloc(jmp8, sizeof jmp8, near, &t, &e);
	if (n >= 0 || e.code != WBPF_HOOK_ESHORT) FAIL("jmp rel8 entry: n %d code %d", n, e.code);

	/* mov x(%rip),%eax: re-based near, refused far */
	static const uint8_t riprel[] = { 0x8b, 0x05, 0x00, 0x10, 0x00, 0x00, 0xc3 };
	n = reloc(riprel, sizeof riprel, near, &t, &e);
	memcpy(&r32, out + 2, 4);
	if (n < 0 || near + 6 + r32 != (uintptr_t)buf + 6 + 0x1000) FAIL("near riprel: n %d (%s)", n, e.reason);
	n = reloc(riprel, sizeof riprel, far, &t, &e);
	if (n >= 0 || e.code != WBPF_HOOK_ERANGE) FAIL("far riprel: n %d code %d", n, e.code);
	printf("ok refused far rip-relative: %s\n", e.reason);

	/* a jcc in the entry that targets the replaced bytes */
	static const uint8_t into[] = { 0x31, 0xc0, 0x75, 0xfe, 0x90, 0xc3 };
	n = reloc(into, sizeof into, near, &t, &e);
	if (n >= 0 || e.code != WBPF_HOOK_EBRANCH) FAIL("branch into: n %d code %d", n, e.code);
	printf("ok refused branch into the entry: %s\n", e.reason);

	/* call +0 reads its own address */
	static const uint8_t call0[] = { 0xe8, 0, 0, 0, 0, 0x58, 0xc3 };
	n = reloc(call0, sizeof call0, near, &t, &e);
	if (n >= 0 || e.code != WBPF_HOOK_EBRANCH) FAIL("call +0: n %d code %d", n, e.code);
	printf("ok refused call +0: %s\n", e.reason);
	printf("hook_unit: OK\n");
	return 0;
}
