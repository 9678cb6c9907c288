/* ubench.h: the 16-byte record ubench.bpf.c reserves and submits at each entry to / return from the
 * benchmarked function. */
#ifndef UBENCH_H
#define UBENCH_H

struct record {
	__u64 pid_tgid;
	__s32 value; /* the argument (entry) or the result (return) */
	__u32 is_ret;
};

_Static_assert(sizeof(struct record) == 16, "struct record layout");

#endif
