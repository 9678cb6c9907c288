/* For ret_test: a function that returns with chosen flags, and a caller that reads the flags right
 * after the call returns (the return code must give back DF, OF, SF, ZF, AF, PF and CF exactly). */
	.text

/* r_flags(f): returns with RFLAGS = f */
	.globl r_flags
	.p2align 4, 0xcc
	.type r_flags, @function
r_flags:
	mov %rdi, %rax			/* 48 89 f8 */
	mov %rdi, %rcx			/* 48 89 f9: 6 bytes the hook relocates */
	.byte 0xe9			/* jmp rel32 (the decoder does not know popfq: kept out of the body) */
	.long set_flags - . - 4
	.size r_flags, .-r_flags
	.p2align 4, 0xcc
	.type set_flags, @function
set_flags:
	push %rax
	popfq
	ret
	.size set_flags, .-set_flags

/* call_flags(f, fn): fn(f), then returns the flags seen right after its return */
	.globl call_flags
	.p2align 4, 0xcc
	.type call_flags, @function
call_flags:
	sub $8, %rsp
	call *%rsi
	pushfq
	pop %rax
	cld
	add $8, %rsp
	ret
	.size call_flags, .-call_flags

	.section .note.GNU-stack,"",@progbits
