/* The re-issue gadget: the one place a SIGSYS handler issues the trapped syscall from (its address range is
 * exempt from the seccomp filter and from Syscall User Dispatch), and a signal restorer inside the same range
 * (Syscall User Dispatch would otherwise trap libc's rt_sigreturn). x86_64 System V in, syscall ABI out. */
        .section .text.wbgadget, "ax", @progbits
        .p2align 12
        .globl gadget_start, gadget_end, gadget_syscall, gadget_restorer
gadget_start:
gadget_syscall:                 /* long gadget_syscall(nr, a0, a1, a2, a3, a4, a5) */
        mov %rdi, %rax
        mov %rsi, %rdi
        mov %rdx, %rsi
        mov %rcx, %rdx
        mov %r8, %r10
        mov %r9, %r8
        mov 8(%rsp), %r9
        syscall
        ret
gadget_restorer:
        mov $15, %eax           /* rt_sigreturn */
        syscall
        ud2

/* tramp_common / tramp_dyn: what a rewritten libc site's trampoline calls (mech_rewrite.c), with the number in eax
 * and the arguments in the syscall registers: the enter stub, the syscall itself (from inside this range, so the
 * seccomp catch-all lets it through), the exit stub; preserves every register but rax, rcx, r11. tramp_common
 * serves sites of a traced number (mov $nr,%eax; syscall); tramp_dyn libc's syscall(), whose number arrives in
 * a register: its stubs check the number against the traced set. */
        .macro TRAMP name, enter, exit
        .globl \name
\name:
        push %rbp
        mov %rsp, %rbp
        push %r9
        push %r8
        push %r10
        push %rdx
        push %rsi
        push %rdi               /* -48(%rbp): args[0..5] */
        push %rax               /* -56(%rbp): nr */
        push %rax               /* -64(%rbp): the result */
        and $-16, %rsp
        movslq %eax, %rdi
        lea -48(%rbp), %rsi
        call \enter
        mov -56(%rbp), %rax
        mov -48(%rbp), %rdi
        mov -40(%rbp), %rsi
        mov -32(%rbp), %rdx
        mov -24(%rbp), %r10
        mov -16(%rbp), %r8
        mov -8(%rbp), %r9
        syscall
        mov %rax, -64(%rbp)
        mov -56(%rbp), %rdi
        mov %rax, %rsi
        call \exit
        mov -64(%rbp), %rax
        mov -48(%rbp), %rdi
        mov -40(%rbp), %rsi
        mov -32(%rbp), %rdx
        mov -24(%rbp), %r10
        mov -16(%rbp), %r8
        mov -8(%rbp), %r9
        leave
        ret
        ud2
        .endm

        TRAMP tramp_common, stub_enter, stub_exit
        TRAMP tramp_dyn, stub_enter_dyn, stub_exit_dyn
gadget_end:
        .section .note.GNU-stack, "", @progbits
