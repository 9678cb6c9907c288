/* For ret_test: a function that returns with chosen flags, and a caller that reads the flags right
 * after the call returns (the return code must give back DF, OF, SF, ZF, AF, PF and CF exactly); a
 * function that returns the flags it was entered with, and a caller that sets them before the call
 * (the entry trampoline must hand the function's first instruction the caller's flags). */
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

/* e_flags(): returns the flags its body starts with (after the hook's trampoline) */
	.globl e_flags
	.p2align 4, 0xcc
	.type e_flags, @function
e_flags:
	mov %rdi, %rax			/* 48 89 f8: mov, unlike pushfq, is relocatable */
	mov %rdi, %rcx			/* 48 89 f9 */
	.byte 0xe9			/* jmp rel32 to the part the decoder need not know */
	.long get_flags - . - 4
	.size e_flags, .-e_flags
	.p2align 4, 0xcc
	.type get_flags, @function
get_flags:
	pushfq
	pop %rax
	cld
	ret
	.size get_flags, .-get_flags

/* call_with_flags(f, fn): fn() entered with RFLAGS = f; returns what fn returns */
	.globl call_with_flags
	.p2align 4, 0xcc
	.type call_with_flags, @function
call_with_flags:
	sub $8, %rsp
	push %rdi
	popfq
	call *%rsi
	cld
	add $8, %rsp
	ret
	.size call_with_flags, .-call_with_flags

	.section .note.GNU-stack,"",@progbits
