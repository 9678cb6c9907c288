/* uprobe.h: the record uprobe.bpf.c sends on each entry to / return from the traced function. */
#ifndef UPROBE_H
#define UPROBE_H

struct event {
	__s32 pid;
	__s32 a, b; /* the arguments (entry) */
	__s32 ret;  /* the result (return) */
	__u8 is_ret;
	__u8 pad[3];
};

_Static_assert(sizeof(struct event) == 20, "struct event layout");

#endif
