/* The part every x86-64 syscall trampoline calls (site.c writes the per-site part): saves the argument
 * and SSE registers, asks wbpf_sys_enter_c, issues the syscall from here and calls wbpf_sys_exit_c, or
 * hands it back untraced (r11 = 1: the site's own `syscall` runs). In: eax = nr, args in rdi rsi rdx r10
 * r8 r9, 8(%rsp) = the site's record. Out: rax = the result, r11 = 0; every other register kept but rcx. */
/* xmm0-15 to (save) or from (restore) 0..255(%rsp) */
        .macro xmm_all op, dir
        .irp i, 0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15
        .ifc \dir, save
        \op %xmm\i, 16*\i(%rsp)
        .else
        \op 16*\i(%rsp), %xmm\i
        .endif
        .endr
        .endm
/* the syscall's arguments back in rdi rsi rdx r10 r8 r9 from -48..-8(%rbp) */
        .macro load_args
        mov -48(%rbp), %rdi
        mov -40(%rbp), %rsi
        mov -32(%rbp), %rdx
        mov -24(%rbp), %r10
        mov -16(%rbp), %r8
        mov -8(%rbp), %r9
        .endm
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
        xmm_all movdqu, save
        mov 16(%rbp), %rdi      /* the record */
        movslq -56(%rbp), %rsi
        lea -48(%rbp), %rdx
        call wbpf_sys_enter_c
        test %rax, %rax
        jz 1f
        mov %rax, -64(%rbp)
        mov -56(%rbp), %rax
        load_args
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
2:      xmm_all movdqu, restore
        mov -72(%rbp), %rax
        load_args
        leave
        ret
        .size wbpf_sys_common, . - wbpf_sys_common
        .section .note.GNU-stack, "", @progbits
