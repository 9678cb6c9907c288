/* bootstrap.h: the record bootstrap.bpf.c sends to user space (shared by the eBPF program and both
 * user-space builds; fixed-width fields only, so the layout is the same for bpf, x86_64 and wasm32). */
#ifndef BOOTSTRAP_H
#define BOOTSTRAP_H

#define TASK_COMM_LEN 16
#define MAX_FILENAME_LEN 127

struct event {
	__u64 duration_ns;
	__s32 pid;
	__s32 ppid;
	__u32 exit_code;
	char comm[TASK_COMM_LEN];
	char filename[MAX_FILENAME_LEN];
	__u8 exit_event; /* 0: EXEC, 1: EXIT */
};

_Static_assert(sizeof(struct event) == 168, "struct event layout");

#endif
