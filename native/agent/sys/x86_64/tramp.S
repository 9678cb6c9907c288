/* The part every x86-64 syscall trampoline calls (site.c writes the per-site part): saves the argument
 * and SSE registers, asks wbpf_sys_enter_c, issues the syscall from here and calls wbpf_sys_exit_c, or
 * hands it back untraced (r11 = 1: the site's own `syscall` runs). In: eax = nr, args in rdi rsi rdx r10
 * r8 r9, 8(%rsp) = the site's record. Out: rax = the result, r11 = 0; every other register kept but rcx. */
        .text
        .globl wbpf_sys_common
        .hidden wbpf_sys_common
        .type wbpf_sys_common, @function
wbpf_sys_common:
        push %rbp
        mov %rsp, %rbp
        push %r9
        push %r8
        push %r10
        push %rdx
        push %rsi
        push %rdi               /* -48(%rbp): args[0..5] */
        push %rax               /* -56(%rbp): nr (eax, sign-extended below) */
        push %rax               /* -64(%rbp): the owner */
        push %rax               /* -72(%rbp): the result */
        sub $264, %rsp
        and $-16, %rsp
        movdqu %xmm0, 0(%rsp)
        movdqu %xmm1, 16(%rsp)
        movdqu %xmm2, 32(%rsp)
        movdqu %xmm3, 48(%rsp)
        movdqu %xmm4, 64(%rsp)
        movdqu %xmm5, 80(%rsp)
        movdqu %xmm6, 96(%rsp)
        movdqu %xmm7, 112(%rsp)
        movdqu %xmm8, 128(%rsp)
        movdqu %xmm9, 144(%rsp)
        movdqu %xmm10, 160(%rsp)
        movdqu %xmm11, 176(%rsp)
        movdqu %xmm12, 192(%rsp)
        movdqu %xmm13, 208(%rsp)
        movdqu %xmm14, 224(%rsp)
        movdqu %xmm15, 240(%rsp)
        mov 16(%rbp), %rdi      /* the record */
        movslq -56(%rbp), %rsi
        lea -48(%rbp), %rdx
        call wbpf_sys_enter_c
        test %rax, %rax
        jz 1f
        mov %rax, -64(%rbp)
        mov -56(%rbp), %rax
        mov -48(%rbp), %rdi
        mov -40(%rbp), %rsi
        mov -32(%rbp), %rdx
        mov -24(%rbp), %r10
        mov -16(%rbp), %r8
        mov -8(%rbp), %r9
        syscall
        mov %rax, -72(%rbp)
        mov -64(%rbp), %rdi
        movslq -56(%rbp), %rsi
        lea -48(%rbp), %rdx
        mov %rax, %rcx
        call wbpf_sys_exit_c
        xor %r11d, %r11d
        jmp 2f
1:      mov $1, %r11d           /* untraced: the site's own syscall runs */
        mov -56(%rbp), %rax
        mov %rax, -72(%rbp)
2:      movdqu 0(%rsp), %xmm0
        movdqu 16(%rsp), %xmm1
        movdqu 32(%rsp), %xmm2
        movdqu 48(%rsp), %xmm3
        movdqu 64(%rsp), %xmm4
        movdqu 80(%rsp), %xmm5
        movdqu 96(%rsp), %xmm6
        movdqu 112(%rsp), %xmm7
        movdqu 128(%rsp), %xmm8
        movdqu 144(%rsp), %xmm9
        movdqu 160(%rsp), %xmm10
        movdqu 176(%rsp), %xmm11
        movdqu 192(%rsp), %xmm12
        movdqu 208(%rsp), %xmm13
        movdqu 224(%rsp), %xmm14
        movdqu 240(%rsp), %xmm15
        mov -72(%rbp), %rax
        mov -48(%rbp), %rdi
        mov -40(%rbp), %rsi
        mov -32(%rbp), %rdx
        mov -24(%rbp), %r10
        mov -16(%rbp), %r8
        mov -8(%rbp), %r9
        leave
        ret
        .size wbpf_sys_common, . - wbpf_sys_common
        .section .note.GNU-stack, "", @progbits
