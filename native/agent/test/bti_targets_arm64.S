/* Probed functions on a BTI-guarded page (arm64): linked alone into a shared library whose property
 * note (BTI, PAC) makes the dynamic loader map its text with PROT_BTI, where an indirect call must
 * land on a landing pad. b_add starts with `bti c`, b_pac with `paciasp`, b_adr with `bti c` then a
 * pc-relative instruction (the one the hook then replaces). */
	.text
	.p2align 2
	.globl b_add, b_pac, b_adr
	.type b_add, %function
b_add:		/* a + b */
	hint #34		/* bti c */
	add w0, w0, w1
	ret
	.size b_add, .-b_add
	.type b_pac, %function
b_pac:		/* a + b */
	hint #25		/* paciasp */
	stp x29, x30, [sp, #-16]!
	mov x29, sp
	add w0, w0, w1
	ldp x29, x30, [sp], #16
	hint #29		/* autiasp */
	ret
	.size b_pac, .-b_pac
	.type b_adr, %function
b_adr:		/* a + b + 5 */
	hint #34		/* bti c */
	adr x2, 1f
	ldr w2, [x2]
	add w0, w0, w1
	add w0, w0, w2
	ret
1:	.word 5
	.size b_adr, .-b_adr

	.section .note.gnu.property, "a"
	.p2align 3
	.word 4			/* namesz */
	.word 16		/* descsz */
	.word 5			/* NT_GNU_PROPERTY_TYPE_0 */
	.asciz "GNU"
	.word 0xc0000000	/* GNU_PROPERTY_AARCH64_FEATURE_1_AND */
	.word 4
	.word 3			/* BTI | PAC */
	.word 0

	.section .note.GNU-stack,"",@progbits
