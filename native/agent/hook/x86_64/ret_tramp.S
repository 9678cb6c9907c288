/* x86-64 return code: where a diverted return lands (through a stub of ../ret_stubs.c, written by ret_stub.c). It saves every
 * register and the flags, builds a struct pt_regs at the return, calls wbpf_x86_ret_entered (which
 * reports the return and answers the real return address), restores everything and jumps there.
 *
 * Entered by a stub's jmp, right after the function's `ret` and the stub's `push $k`: R = the stack
 * pointer after the return, (R-8) = k. Frame:  R-8: k, replaced by the real return address for the
 * final `jmp *-8(%rsp)` (R-8 is then in the red zone, which signal delivery skips);  R-16: flags;
 * pt_regs at B = R-184 (kernel layout, as trampoline.S: +152 rsp = R, +144 eflags, +128 rip = set by
 * the C side);  below B rounded down to 16: xmm0-15 (not in _gp). The stack under R is free: the function
 * that returned owned it. Assembled twice: wbpf_x86_ret_common as above, and wbpf_x86_ret_common_gp without
 * the xmm saves, for handlers that touch no vector register (wbpf_hook_set_vector_free: the agent).
 */
	.text
.macro ret_common sfx, vec
	.globl wbpf_x86_ret_common\sfx
	.type wbpf_x86_ret_common\sfx, @function
	.p2align 4
wbpf_x86_ret_common\sfx:
	.cfi_startproc
	.cfi_undefined rip		/* an unwinder stops here (no caller it could use) */
	pushfq
	lea -168(%rsp), %rsp
	mov %rax, 80(%rsp)
	mov %rcx, 88(%rsp)
	mov %rdx, 96(%rsp)
	mov %rsi, 104(%rsp)
	mov %rdi, 112(%rsp)
	mov %r8, 72(%rsp)
	mov %r9, 64(%rsp)
	mov %r10, 56(%rsp)
	mov %r11, 48(%rsp)
	mov %rbx, 40(%rsp)
	mov %rbp, 32(%rsp)
	mov %r12, 24(%rsp)
	mov %r13, 16(%rsp)
	mov %r14, 8(%rsp)
	mov %r15, 0(%rsp)
	mov 168(%rsp), %rax
	mov %rax, 144(%rsp)		/* eflags */
	lea 184(%rsp), %rax
	mov %rax, 152(%rsp)		/* rsp after the return */
	movq $-1, 120(%rsp)		/* orig_rax */
					/* +128 rip: the C side sets it before any handler reads it */
	movq $0x33, 136(%rsp)		/* cs */
	movq $0x2b, 160(%rsp)		/* ss */
	cld				/* the C ABI's direction flag, whatever the function left */
	mov %rsp, %rbx			/* B (callee-saved) */
	and $-16, %rsp
	.if \vec
	lea -256(%rsp), %rsp
	movaps %xmm0, 0(%rsp)
	movaps %xmm1, 16(%rsp)
	movaps %xmm2, 32(%rsp)
	movaps %xmm3, 48(%rsp)
	movaps %xmm4, 64(%rsp)
	movaps %xmm5, 80(%rsp)
	movaps %xmm6, 96(%rsp)
	movaps %xmm7, 112(%rsp)
	movaps %xmm8, 128(%rsp)
	movaps %xmm9, 144(%rsp)
	movaps %xmm10, 160(%rsp)
	movaps %xmm11, 176(%rsp)
	movaps %xmm12, 192(%rsp)
	movaps %xmm13, 208(%rsp)
	movaps %xmm14, 224(%rsp)
	movaps %xmm15, 240(%rsp)
	.endif
	mov %rbx, %rdi			/* struct pt_regs * */
	mov 176(%rbx), %rsi		/* k */
	call wbpf_x86_ret_entered@PLT
	mov %rax, 176(%rbx)		/* the real return address, for the final jmp */
	.if \vec
	movaps 0(%rsp), %xmm0
	movaps 16(%rsp), %xmm1
	movaps 32(%rsp), %xmm2
	movaps 48(%rsp), %xmm3
	movaps 64(%rsp), %xmm4
	movaps 80(%rsp), %xmm5
	movaps 96(%rsp), %xmm6
	movaps 112(%rsp), %xmm7
	movaps 128(%rsp), %xmm8
	movaps 144(%rsp), %xmm9
	movaps 160(%rsp), %xmm10
	movaps 176(%rsp), %xmm11
	movaps 192(%rsp), %xmm12
	movaps 208(%rsp), %xmm13
	movaps 224(%rsp), %xmm14
	movaps 240(%rsp), %xmm15
	.endif
	mov %rbx, %rsp
	/* the flags without popfq (~10 ns): only DF and the arithmetic flags can have changed here.
	 * DF; then OF (add of 0x7f overflows iff the saved bit is 1); then SF ZF AF PF CF (sahf) */
	testw $0x400, 168(%rsp)
	jz 1\@f
	std
1\@:	movzbl 169(%rsp), %eax		/* flags bits 8-15: OF is bit 3 */
	shr $3, %al
	and $1, %al
	add $0x7f, %al
	movb 168(%rsp), %ah
	sahf
	mov 80(%rsp), %rax
	mov 88(%rsp), %rcx
	mov 96(%rsp), %rdx
	mov 104(%rsp), %rsi
	mov 112(%rsp), %rdi
	mov 72(%rsp), %r8
	mov 64(%rsp), %r9
	mov 56(%rsp), %r10
	mov 48(%rsp), %r11
	mov 40(%rsp), %rbx		/* B's register; rbp and r12-r15 the call preserved (no handler writes the
					 * saved ones: a handler that may gets a copy, wbpf_ret_fire) */
	lea 184(%rsp), %rsp		/* R (lea: flags untouched) */
	jmp *-8(%rsp)			/* the real return address */
	.cfi_endproc
	.size wbpf_x86_ret_common\sfx, .-wbpf_x86_ret_common\sfx

.endm

/* for any return handler: xmm0-15 saved around it */
	ret_common "", 1
/* for a vector-free one (wbpf_hook_set_vector_free): no vector register saved */
	ret_common _gp, 0

	.section .note.GNU-stack,"",@progbits
