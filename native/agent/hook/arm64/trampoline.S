/* arm64 trampoline template: trampoline.c copies wbpf_a64_tramp_start.._end near the function, fills
 * the three literals (function, cookie, handler) and appends the relocated instruction and the
 * branch back.
 *
 * Entered by the `b` at the function's entry, in its entry state (x30 = return address; no red zone
 * on Linux: memory below sp is free). It saves x0-x30, sp, pc and NZCV into a struct user_pt_regs
 * (the kernel's arm64 layout, hook.h), q0-q7 (the FP/SIMD argument registers), links a frame record,
 * calls handler(&regs, cookie), restores everything (x0-x30 and NZCV from the struct) and falls
 * through. The handler is ordinary C: x19-x28, x29, d8-d15 it keeps itself; q16-q31 and the upper
 * halves of v8-v15 hold nothing a function entry may rely on (AAPCS64: caller-saved, not arguments).
 *
 * Frame (E = sp at entry, B = E - 416):
 *   B+0 .. B+240 x0..x30   B+248 sp (= E)   B+256 pc (= function)   B+264 pstate (NZCV)
 *   B+272 .. B+400 q0..q7   B+400 frame record {x29, x30}
 */
#define FRAME 416
	.section .rodata
	.p2align 3
	.globl wbpf_a64_tramp_start, wbpf_a64_tramp_entry, wbpf_a64_tramp_end
	.hidden wbpf_a64_tramp_start, wbpf_a64_tramp_entry, wbpf_a64_tramp_end /* the join build links without -Bsymbolic: ldr literal needs a local symbol */
wbpf_a64_tramp_start:
	.quad 0				/* +0  the function (pc) */
	.quad 0				/* +8  cookie */
	.quad 0				/* +16 handler */
	.quad 0
wbpf_a64_tramp_entry:
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
	stp x30, x0, [sp, #240]		/* x30, sp at entry */
	ldr x0, wbpf_a64_tramp_start
	mrs x1, nzcv
	stp x0, x1, [sp, #256]		/* pc: the probed address, as a uprobe reports it; pstate */
	stp q0, q1, [sp, #272]
	stp q2, q3, [sp, #304]
	stp q4, q5, [sp, #336]
	stp q6, q7, [sp, #368]
	stp x29, x30, [sp, #400]	/* a frame record: a backtrace from the handler reaches the caller */
	add x29, sp, #400
	mov x0, sp			/* struct user_pt_regs * */
	ldr x1, wbpf_a64_tramp_start + 8
	ldr x16, wbpf_a64_tramp_start + 16
	blr x16
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
	ldp x16, x17, [sp, #128]
	ldp x18, x19, [sp, #144]
	ldp x20, x21, [sp, #160]
	ldp x22, x23, [sp, #176]
	ldp x24, x25, [sp, #192]
	ldp x26, x27, [sp, #208]
	ldp x28, x29, [sp, #224]
	ldr x30, [sp, #240]
	add sp, sp, #FRAME		/* back to the entry sp; the relocated instruction follows */
wbpf_a64_tramp_end:

	.section .note.GNU-stack,"",@progbits
