/* fentry.h: the record fentry.bpf.c sends on entry to / return from do_unlinkat(). */
#ifndef FENTRY_H
#define FENTRY_H

#define MAX_FILENAME_LEN 256

struct event {
	__s64 ret;   /* the result (fexit) */
	__s32 pid;
	__u8 is_ret;
	__u8 pad[3];
	char filename[MAX_FILENAME_LEN];
};

_Static_assert(sizeof(struct event) == 272, "struct event layout");

#endif
