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

/* call_keeping_xmm(in, out, fn): xmm0-15 = in[0..15] (16 bytes each), fn(), out[0..15] = xmm0-15: what a
 * caller built with -fipa-ra may rely on when it knows fn leaves vector registers alone (e_flags does) */
	.globl call_keeping_xmm
	.p2align 4, 0xcc
	.type call_keeping_xmm, @function
call_keeping_xmm:
	push %rbx
	push %r12
	sub $8, %rsp
	mov %rsi, %rbx
	mov %rdx, %r12
	movups 0(%rdi), %xmm0
	movups 16(%rdi), %xmm1
	movups 32(%rdi), %xmm2
	movups 48(%rdi), %xmm3
	movups 64(%rdi), %xmm4
	movups 80(%rdi), %xmm5
	movups 96(%rdi), %xmm6
	movups 112(%rdi), %xmm7
	movups 128(%rdi), %xmm8
	movups 144(%rdi), %xmm9
	movups 160(%rdi), %xmm10
	movups 176(%rdi), %xmm11
	movups 192(%rdi), %xmm12
	movups 208(%rdi), %xmm13
	movups 224(%rdi), %xmm14
	movups 240(%rdi), %xmm15
	call *%r12
	movups %xmm0, 0(%rbx)
	movups %xmm1, 16(%rbx)
	movups %xmm2, 32(%rbx)
	movups %xmm3, 48(%rbx)
	movups %xmm4, 64(%rbx)
	movups %xmm5, 80(%rbx)
	movups %xmm6, 96(%rbx)
	movups %xmm7, 112(%rbx)
	movups %xmm8, 128(%rbx)
	movups %xmm9, 144(%rbx)
	movups %xmm10, 160(%rbx)
	movups %xmm11, 176(%rbx)
	movups %xmm12, 192(%rbx)
	movups %xmm13, 208(%rbx)
	movups %xmm14, 224(%rbx)
	movups %xmm15, 240(%rbx)
	add $8, %rsp
	pop %r12
	pop %rbx
	ret
	.size call_keeping_xmm, .-call_keeping_xmm

/* call_keeping_gprs(in, out, fn): rbx rbp r12 r13 r14 r15 = in[0..5], fn(40, 2), out[0..5] = those registers
 * after fn's return: a caller relies on them surviving any call (the return code gives back what the
 * function left, i.e. the caller's values: the handler's C code preserves them too) */
	.globl call_keeping_gprs
	.p2align 4, 0xcc
	.type call_keeping_gprs, @function
call_keeping_gprs:
	push %rbx
	push %rbp
	push %r12
	push %r13
	push %r14
	push %r15
	push %rsi			/* out; rsp 16-byte aligned for the call */
	mov %rdx, %rax
	mov 0(%rdi), %rbx
	mov 8(%rdi), %rbp
	mov 16(%rdi), %r12
	mov 24(%rdi), %r13
	mov 32(%rdi), %r14
	mov 40(%rdi), %r15
	mov $40, %edi
	mov $2, %esi
	call *%rax
	pop %rdi
	mov %rbx, 0(%rdi)
	mov %rbp, 8(%rdi)
	mov %r12, 16(%rdi)
	mov %r13, 24(%rdi)
	mov %r14, 32(%rdi)
	mov %r15, 40(%rdi)
	pop %r15
	pop %r14
	pop %r13
	pop %r12
	pop %rbp
	pop %rbx
	ret
	.size call_keeping_gprs, .-call_keeping_gprs

	.section .note.GNU-stack,"",@progbits
