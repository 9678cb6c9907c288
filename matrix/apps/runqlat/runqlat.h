/* runqlat.h: the value of the `hists` map of runqlat.bpf.c (key: u32, 0 or a pid). */
#ifndef RUNQLAT_H
#define RUNQLAT_H

#define MAX_SLOTS 26

/* slots[i]: number of run-queue waits of [2^i, 2^(i+1)) microseconds (slot 0 also holds 0 us). */
struct hist {
	__u32 slots[MAX_SLOTS];
};

_Static_assert(sizeof(struct hist) == 104, "struct hist layout");

#endif
