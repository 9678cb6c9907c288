/* The mechanisms the bench compares (one file each): set up in the process that then runs the loop. */
#pragma once
#include "common.h"

int mech_trap(const int *nrs, int n);                /* (a) mech_trap.c */
int mech_sud(const int *nrs, int n, int block);      /* (b) mech_sud.c */
void mech_sud_off(void);
/* (c) seccomp RET_TRACE + tracer, (d) PTRACE_SYSCALL: fork, the child runs the loop, the parent traces (mech_ptrace.c) */
int mech_ptrace_run(int seccomp, const int *nrs, int n, enum workload w, uint64_t calls, struct result *r);
int mech_rewrite(enum workload w, const int *nrs, int n); /* (e) mech_rewrite.c: rewritten libc sites + (a) */
/* the kernel's tracepoint + ringbuf program (mech_kernel.c, libbpf) */
int mech_kernel_start(const char *obj_path, enum workload w);
uint64_t mech_kernel_stop(void);
