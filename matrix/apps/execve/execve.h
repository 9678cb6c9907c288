/* execve.h: the record execve.bpf.c sends through its perf event array. */
#ifndef EXECVE_H
#define EXECVE_H

#define TASK_COMM_LEN 16
#define MAX_STR_LEN 128

struct event {
	__s32 pid;
	__s32 ppid;
	__u32 uid;
	__s32 ret; /* execve()'s result: 0 or -errno */
	char comm[TASK_COMM_LEN];
	char filename[MAX_STR_LEN];
	char arg1[MAX_STR_LEN]; /* argv[1], "" if there is none */
};

_Static_assert(sizeof(struct event) == 288, "struct event layout");

#endif
