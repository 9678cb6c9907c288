/* A syscall event's context record from the field table the host sends (backends/userspace/syscalls/
 * fieldtable.ts): the C twin of the host's syscallRecord (context.ts), for the agent's syscall programs. */
#ifndef WBPF_SYS_RECORD_H
#define WBPF_SYS_RECORD_H
#include <stddef.h>
#include <stdint.h>

#define WBPF_SYS_TABLE_SIZE 64
#define WBPF_SYS_TABLE_VERSION 1

struct wbpf_sys_slot { uint16_t offset, size; };
struct wbpf_sys_table {
	int exit;
	uint32_t size;
	uint16_t id;
	int nargs;
	struct wbpf_sys_slot type, flags, preempt, pid, nr, ret, args[6];
};

/* decodes the 64 bytes; 0, or -1 with why (a wrong version, a slot past the record, a size not 1/2/4/8) */
int wbpf_sys_table_decode(const uint8_t *b, size_t len, struct wbpf_sys_table *t, char *why, size_t whylen);

/* the record into out (t->size bytes, cap at least that): header (common_type = id, flags and preempt 0,
 * common_pid = tid), the number, the argument registers or the result, each truncated to its slot; then,
 * if has_regs, regs over the first 8 bytes (what the kernel does before a program runs). Returns t->size. */
size_t wbpf_sys_record(const struct wbpf_sys_table *t, uint8_t *out, size_t cap, int32_t tid, int has_regs, uint64_t regs,
		       long nr, const uint64_t args[6], long ret);

#endif
