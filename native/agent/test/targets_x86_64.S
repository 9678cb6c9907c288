/* Probed functions whose exact entry bytes matter, for the hook tests (x86-64, AT&T). Each takes
 * (int a, int b) in edi, esi and returns in eax. */
	.text

/* a short conditional jump in the entry: a >= 0 ? a + b : b - a */
	.globl t_jshort
	.p2align 4, 0xcc
	.type t_jshort, @function
t_jshort:
	test %edi, %edi			/* 85 ff */
	js 1f				/* 78 xx: relocated as js rel32 */
	lea (%rdi,%rsi), %eax
	ret
1:	mov %esi, %eax
	sub %edi, %eax
	ret
	.size t_jshort, .-t_jshort

/* a call rel32 in the entry: 2 * a + b */
	.globl t_call
	.p2align 4, 0xcc
	.type t_call, @function
t_call:
	sub $8, %rsp			/* 48 83 ec 08 */
	call t_twice			/* e8 rel32: returns into the trampoline */
	add %esi, %eax
	add $8, %rsp
	ret
	.size t_call, .-t_call
	.p2align 4, 0xcc
	.type t_twice, @function
t_twice:
	lea (%rdi,%rdi), %eax
	ret

/* the whole entry is a jmp rel32 (a tail call): a + b */
	.globl t_tail
	.p2align 4, 0xcc
	.type t_tail, @function
t_tail:
	.byte 0xe9			/* jmp rel32 (gas would relax a plain jmp to rel8) */
	.long t_tail_impl - . - 4
	.size t_tail, .-t_tail
	.p2align 4, 0xcc
	.type t_tail_impl, @function
t_tail_impl:
	lea (%rdi,%rsi), %eax
	ret

/* rip-relative lea at entry: t_table[a & 3] + b. It ends on a 16-byte boundary, right before
 * t_unknown: without its size the body check runs into rdtsc and refuses (never guess) */
	.globl t_riplea
	.p2align 4, 0xcc
	.type t_riplea, @function
t_riplea:
	lea t_table(%rip), %rax		/* 48 8d 05 disp32 */
	and $3, %edi
	mov (%rax,%rdi,4), %eax
	add %esi, %eax
	ret
	.size t_riplea, .-t_riplea

/* refused: an instruction the relocator does not know (rdtsc) */
	.globl t_unknown
	.p2align 4, 0xcc
	.type t_unknown, @function
t_unknown:
	rdtsc
	lea (%rdi,%rsi), %eax
	ret
	.size t_unknown, .-t_unknown

/* refused: a loop branches back into the replaced bytes: a * b (b > 0) */
	.globl t_loop
	.p2align 4, 0xcc
	.type t_loop, @function
t_loop:
	xor %eax, %eax			/* +0 */
1:	add %edi, %eax			/* +2: the jnz's target */
	dec %esi			/* +4 */
	jnz 1b
	ret
	.size t_loop, .-t_loop

/* the trap tier's targets (trap_test; with t_loop, a loop head at +2): entries the inline hook refuses
 * but whose first instruction moves alone. t_tiny: 4 bytes long, a + b (ESHORT) */
	.globl t_tiny
	.p2align 4, 0xcc
	.type t_tiny, @function
t_tiny:
	lea (%rdi,%rsi), %eax		/* 8d 04 37 */
	ret
	.size t_tiny, .-t_tiny

/* an instruction the decoder does not know at +2 (lfence: 0f ae e8, harmless): a + b (EDECODE) */
	.globl t_lfence
	.p2align 4, 0xcc
	.type t_lfence, @function
t_lfence:
	mov %edi, %eax			/* 89 f8 */
	lfence
	add %esi, %eax
	ret
	.size t_lfence, .-t_lfence

/* an empty function of one byte, `ret` (ESHORT), called as void (void) */
	.globl t_empty
	.p2align 4, 0xcc
	.type t_empty, @function
t_empty:
	ret
	.size t_empty, .-t_empty

/* where the evacuation test's parked thread returns to: eax = the probed function's result */
	.globl t_landing
	.weak t_landed
	.p2align 4, 0xcc
	.type t_landing, @function
t_landing:
	mov %eax, %edi
	call t_landed			/* does not return (pthread_exit); weak: only hook_test has it */
	ud2

	.section .rodata
	.p2align 4
	.globl t_table
t_table:
	.long 100, 200, 300, 400

	.section .note.GNU-stack,"",@progbits
