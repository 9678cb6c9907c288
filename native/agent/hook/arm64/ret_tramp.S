/* arm64 return code: where a diverted return lands (through a stub of ../ret_stubs.c, written by ret_stub.c). It saves every
 * register and NZCV, builds a struct user_pt_regs at the return, calls wbpf_a64_ret_entered (which
 * reports the return and answers the real return address), restores everything and branches there.
 *
 * Entered by a stub's `br x17`, right after the function's `ret`: x16 = the stub's number k, x17 this
 * code's address, sp = R, the stack pointer after the return (= the entry's), x30 = the stub. x16 and
 * x17 are the intra-procedure-call scratch registers: nothing a caller may expect after a return.
 * Frame (B = R - 416, the stack under R is free: the function that returned owned it):
 *   B+0 .. B+240 x0..x30   B+248 sp (= R)   B+256 pc (the C side sets it)   B+264 pstate (NZCV)
 *   B+272 .. B+400 q0..q7 (return values: an HFA/HVA comes back in v0-v3)
 */
#define FRAME 416
	.text
	.globl wbpf_a64_ret_common
	.hidden wbpf_a64_ret_common
	.type wbpf_a64_ret_common, %function
	.p2align 4
wbpf_a64_ret_common:
	.cfi_startproc
	.cfi_undefined x30		/* an unwinder stops here (no caller it could use) */
	sub sp, sp, #FRAME
	stp x0, x1, [sp, #0]
	stp x2, x3, [sp, #16]
	stp x4, x5, [sp, #32]
	stp x6, x7, [sp, #48]
	stp x8, x9, [sp, #64]
	stp x10, x11, [sp, #80]
	stp x12, x13, [sp, #96]
	stp x14, x15, [sp, #112]
	stp x16, x17, [sp, #128]
	stp x18, x19, [sp, #144]
	stp x20, x21, [sp, #160]
	stp x22, x23, [sp, #176]
	stp x24, x25, [sp, #192]
	stp x26, x27, [sp, #208]
	stp x28, x29, [sp, #224]
	add x0, sp, #FRAME
	stp x30, x0, [sp, #240]		/* x30 (the stub), sp = R */
	mrs x1, nzcv
	stp xzr, x1, [sp, #256]		/* pc: set by the C side; pstate */
	stp q0, q1, [sp, #272]
	stp q2, q3, [sp, #304]
	stp q4, q5, [sp, #336]
	stp q6, q7, [sp, #368]
	mov x0, sp			/* struct user_pt_regs * */
	mov x1, x16			/* k */
	bl wbpf_a64_ret_entered
	mov x16, x0			/* the real return address */
	ldp q0, q1, [sp, #272]
	ldp q2, q3, [sp, #304]
	ldp q4, q5, [sp, #336]
	ldp q6, q7, [sp, #368]
	ldr x0, [sp, #264]
	msr nzcv, x0
	ldp x0, x1, [sp, #0]
	ldp x2, x3, [sp, #16]
	ldp x4, x5, [sp, #32]
	ldp x6, x7, [sp, #48]
	ldp x8, x9, [sp, #64]
	ldp x10, x11, [sp, #80]
	ldp x12, x13, [sp, #96]
	ldp x14, x15, [sp, #112]
	ldp x18, x19, [sp, #144]
	ldp x20, x21, [sp, #160]
	ldp x22, x23, [sp, #176]
	ldp x24, x25, [sp, #192]
	ldp x26, x27, [sp, #208]
	ldp x28, x29, [sp, #224]
	add sp, sp, #FRAME		/* R */
	mov x30, x16			/* as a `ret` to the real address leaves it */
	br x16
	.cfi_endproc
	.size wbpf_a64_ret_common, .-wbpf_a64_ret_common

	.section .note.GNU-stack,"",@progbits
