/* x86-64 trampoline template: trampoline.c copies wbpf_x86_tramp_start.._end near the function,
 * fills the movabs immediates (function, cookie, handler), appends the relocated prologue and jump. */

/* Entered by the jmp at the function's first byte (or from the int3 handler), in the function-entry
 * state: (%rsp) = return address. It skips the 128-byte red zone, saves the flags and every GPR into
 * a struct pt_regs laid out as the kernel's (r15 at +0 ... ss at +160), saves xmm0-15 (the argument
 * registers, and xmm8-15: a caller built with -fipa-ra may keep values there across a call it knows
 * leaves them alone), calls handler(&regs, cookie) with %rsp 16-byte aligned, restores and falls through (the
 * flags restored without popfq: DF, OF and sahf's five, all the handler can change).
 * Assembled twice: wbpf_x86_tramp_* as above, and wbpf_x86_tramp_gp_* without the xmm saves, for handlers
 * that touch no vector register (wbpf_hook_set_vector_free: the agent, built -mgeneral-regs-only).
 *
 * Frame (E = %rsp at entry):  E-128..E: red zone, untouched;  pt_regs at B = E-296:
 *   +160 ss  +152 rsp (= E)  +144 eflags  +136 cs  +128 rip (= function)  +120 orig_rax (= -1)
 *   +112 rdi +104 rsi +96 rdx +88 rcx +80 rax +72 r8 +64 r9 +56 r10 +48 r11
 *   +40 rbx +32 rbp +24 r12 +16 r13 +8 r14 +0 r15
 * then, below B rounded down to 16: 256 bytes of xmm0-15 (not in _gp).
 */
	.section .rodata
	.p2align 4
.macro tramp sfx, vec
	.globl wbpf_x86_tramp\sfx\()_start, wbpf_x86_tramp\sfx\()_ip, wbpf_x86_tramp\sfx\()_cookie
	.globl wbpf_x86_tramp\sfx\()_handler, wbpf_x86_tramp\sfx\()_end
	.p2align 4
wbpf_x86_tramp\sfx\()_start:
	lea -144(%rsp), %rsp		/* red zone + the ss and rsp slots (lea: flags untouched) */
	pushfq				/* eflags slot */
	lea -144(%rsp), %rsp		/* r15 .. cs */
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
	movq $-1, 120(%rsp)		/* orig_rax: not a syscall */
	movq $0x33, 136(%rsp)		/* cs: __USER_CS */
	movq $0x2b, 160(%rsp)		/* ss: __USER_DS */
	lea 296(%rsp), %rax
	mov %rax, 152(%rsp)		/* rsp at entry */
	.byte 0x48, 0xb8		/* movabs $function, %rax */
wbpf_x86_tramp\sfx\()_ip:
	.quad 0
	mov %rax, 128(%rsp)		/* rip: the probed address, as a uprobe reports it */
	mov %rsp, %rbx			/* B, kept across the call (callee-saved) */
	and $-16, %rsp			/* aligned even if the caller broke the ABI */
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
	cld				/* the C ABI's direction flag, whatever the caller left */
	mov %rbx, %rdi			/* struct pt_regs * */
	.byte 0x48, 0xbe		/* movabs $cookie, %rsi */
wbpf_x86_tramp\sfx\()_cookie:
	.quad 0
	.byte 0x48, 0xb8		/* movabs $handler, %rax */
wbpf_x86_tramp\sfx\()_handler:
	.quad 0
	call *%rax
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
	/* the flags without popfq (~10 ns; as ret_tramp.S): only DF and the arithmetic flags can have
	 * changed here. DF; then OF (add of 0x7f overflows iff the saved bit is 1); then SF ZF AF PF CF (sahf) */
	testw $0x400, 144(%rsp)
	jz 1\@f
	std
1\@:	movzbl 145(%rsp), %eax		/* flags bits 8-15: OF is bit 3 */
	shr $3, %al
	and $1, %al
	add $0x7f, %al
	movb 144(%rsp), %ah
	sahf
	mov 80(%rsp), %rax		/* mov and lea from here on: the flags stay as restored */
	mov 88(%rsp), %rcx
	mov 96(%rsp), %rdx
	mov 104(%rsp), %rsi
	mov 112(%rsp), %rdi
	mov 72(%rsp), %r8
	mov 64(%rsp), %r9
	mov 56(%rsp), %r10
	mov 48(%rsp), %r11
	mov 40(%rsp), %rbx
	lea 296(%rsp), %rsp		/* back to the entry %rsp; the relocated prologue follows */
wbpf_x86_tramp\sfx\()_end:

.endm

/* the template for any handler: xmm0-15 saved around it */
	tramp "", 1
/* for a vector-free handler (wbpf_hook_set_vector_free: libwbpf_agent.so, built -mgeneral-regs-only with its
 * own mem*, lib/mem.c): no vector register saved, the handler touches none */
	tramp _gp, 0

	.section .note.GNU-stack,"",@progbits
