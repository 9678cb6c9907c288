/* arm64 probed functions for test/hook_test_arm64.c: one per kind of entry instruction the relocator
 * handles (pc-relative loads and addresses, every branch kind, landing pads) or refuses. Each takes
 * (a, b) in w0/w1 (x0/x1, d0/d1) and its C model in the test computes the same. */
	.text
	.p2align 2
	.globl t_plain, t_frame, t_adrp, t_adr, t_ldrw, t_ldrx, t_ldrsw, t_ldrs, t_ldrd, t_ldrq, t_prfm
	.globl t_b, t_bl_call, t_bl, t_bcond_call, t_bcond, t_cbz, t_tbnz, t_pac, t_bti, t_loop, t_svc, t_svc_call
	.globl t_brk, t_udf, t_ret_only
	.type t_plain, %function
t_plain:	/* a * 9 + b + 1000 */
	mov w2, #9
	madd w0, w0, w2, w1
	add w0, w0, #1000
	ret
	.size t_plain, .-t_plain
	.type t_frame, %function
t_frame:	/* a + b, with a frame record */
	stp x29, x30, [sp, #-16]!
	mov x29, sp
	add w0, w0, w1
	ldp x29, x30, [sp], #16
	ret
	.size t_frame, .-t_frame
	.type t_adrp, %function
t_adrp:		/* a + b + t_data (1234) */
	adrp x2, t_data
	ldr w2, [x2, :lo12:t_data]
	add w0, w0, w1
	add w0, w0, w2
	ret
	.size t_adrp, .-t_adrp
	.type t_adr, %function
t_adr:		/* a + b + 77 */
	adr x2, 1f
	ldr w2, [x2]
	add w0, w0, w1
	add w0, w0, w2
	ret
1:	.word 77
	.size t_adr, .-t_adr
	.type t_ldrw, %function
t_ldrw:		/* a + b + 1000 */
	ldr w2, 1f
	add w0, w0, w1
	add w0, w0, w2
	ret
1:	.word 1000
	.size t_ldrw, .-t_ldrw
	.type t_ldrx, %function
t_ldrx:		/* (long)a + b + 0x100000000 */
	ldr x2, 1f
	add x0, x0, x1
	add x0, x0, x2
	ret
	.p2align 3
1:	.quad 0x100000000
	.size t_ldrx, .-t_ldrx
	.type t_ldrsw, %function
t_ldrsw:	/* a + b - 5 (64-bit) */
	ldrsw x2, 1f
	add x0, x0, x1
	add x0, x0, x2
	ret
1:	.word -5
	.size t_ldrsw, .-t_ldrsw
	.type t_ldrs, %function
t_ldrs:		/* a + b + 0x40490fdb (the bits of 3.14159f) */
	ldr s2, 1f
	fmov w2, s2
	add w0, w0, w1
	add w0, w0, w2
	ret
1:	.word 0x40490fdb
	.size t_ldrs, .-t_ldrs
	.type t_ldrd, %function
t_ldrd:		/* x * y + 0.5 (doubles) */
	ldr d2, 1f
	fmadd d0, d0, d1, d2
	ret
	.p2align 3
1:	.double 0.5
	.size t_ldrd, .-t_ldrd
	.type t_ldrq, %function
t_ldrq:		/* a + b + 42 (the upper half of a 128-bit literal) */
	ldr q2, 1f
	mov x2, v2.d[1]
	add x0, x0, x1
	add x0, x0, x2
	ret
	.p2align 4
1:	.quad 7, 42
	.size t_ldrq, .-t_ldrq
	.type t_prfm, %function
t_prfm:		/* a + b */
	prfm pldl1keep, 1f
	add w0, w0, w1
	ret
1:	.word 0
	.size t_prfm, .-t_prfm
	.type t_b, %function
t_b:		/* a tail call: a + b */
	b t_b_body
	.size t_b, .-t_b
t_b_body:
	add w0, w0, w1
	ret
	/* t_bl starts with bl (its own return address is gone): entered by a branch from t_bl_call,
	 * which keeps the frame t_bl returns through */
	.type t_bl_call, %function
t_bl_call:	/* a + b + 100 */
	stp x29, x30, [sp, #-16]!
	mov x29, sp
	b t_bl
	.size t_bl_call, .-t_bl_call
	.type t_bl, %function
t_bl:
	bl t_add100
	ldp x29, x30, [sp], #16
	ret
	.size t_bl, .-t_bl
t_add100:
	add w0, w0, w1
	add w0, w0, #100
	ret
	/* t_bcond starts with b.lt on the flags of t_bcond_call's cmp a, #0 */
	.type t_bcond_call, %function
t_bcond_call:	/* a < 0 ? b - a : a + b */
	cmp w0, #0
	b t_bcond
	.size t_bcond_call, .-t_bcond_call
	.type t_bcond, %function
t_bcond:
	b.lt 1f
	add w0, w0, w1
	ret
1:	sub w0, w1, w0
	ret
	.size t_bcond, .-t_bcond
	.type t_cbz, %function
t_cbz:		/* a == 0 ? 77 : a + b */
	cbz w0, 1f
	add w0, w0, w1
	ret
1:	mov w0, #77
	ret
	.size t_cbz, .-t_cbz
	.type t_tbnz, %function
t_tbnz:		/* a < 0 ? -a : a + b */
	tbnz w0, #31, 1f
	add w0, w0, w1
	ret
1:	neg w0, w0
	ret
	.size t_tbnz, .-t_tbnz
	.type t_pac, %function
t_pac:		/* a + b, with return address signing */
	hint #25		/* paciasp */
	stp x29, x30, [sp, #-16]!
	mov x29, sp
	add w0, w0, w1
	ldp x29, x30, [sp], #16
	hint #29		/* autiasp */
	ret
	.size t_pac, .-t_pac
	.type t_bti, %function
t_bti:		/* a + b */
	hint #34		/* bti c */
	add w0, w0, w1
	ret
	.size t_bti, .-t_bti
	.type t_loop, %function
t_loop:		/* a loop whose head is the entry: b - a hits, returns max(a, b) (a < b: b) */
	add w0, w0, #1
	cmp w0, w1
	b.lt t_loop
	ret
	.size t_loop, .-t_loop
	.type t_svc_call, %function
t_svc_call:	/* getpid() through t_svc */
	stp x29, x30, [sp, #-16]!
	mov x29, sp
	mov x8, #172
	bl t_svc
	ldp x29, x30, [sp], #16
	ret
	.size t_svc_call, .-t_svc_call
	.type t_svc, %function
t_svc:		/* getpid() through a raw svc as the first instruction (x8 = 172 set by the caller) */
	svc #0
	ret
	.size t_svc, .-t_svc
	.type t_brk, %function
t_brk:		/* refused: a breakpoint at the entry */
	brk #5
	ret
	.size t_brk, .-t_brk
	.type t_udf, %function
t_udf:		/* refused: unallocated */
	.word 0
	ret
	.size t_udf, .-t_udf
	.type t_ret_only, %function
t_ret_only:	/* the whole function is ret */
	ret
	.size t_ret_only, .-t_ret_only

	.data
	.p2align 2
	.globl t_data
t_data:	.word 1234

	.section .note.GNU-stack,"",@progbits
