/* opensnoop.h: the record opensnoop.bpf.c sends through its ring buffer. */
#ifndef OPENSNOOP_H
#define OPENSNOOP_H

#define TASK_COMM_LEN 16
#define NAME_MAX 255

struct event {
	__s32 pid;
	__s32 ret;   /* the fd, or -errno */
	__s32 flags; /* open flags (O_*) */
	char comm[TASK_COMM_LEN];
	char filename[NAME_MAX + 1];
};

_Static_assert(sizeof(struct event) == 284, "struct event layout");

#endif
