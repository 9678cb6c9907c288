/* lsm.h: the record lsm.bpf.c sends for each program execution checked by the LSM hook. */
#ifndef LSM_H
#define LSM_H

#define TASK_COMM_LEN 16
#define MAX_FILENAME_LEN 256

struct event {
	__s32 pid;
	char comm[TASK_COMM_LEN];
	char filename[MAX_FILENAME_LEN];
};

_Static_assert(sizeof(struct event) == 276, "struct event layout");

#endif
