/* A syscall event's record from the host's field table (record.h): decoding the table, filling a record. */
#include <stdio.h>
#include <string.h>
#include "record.h"

static uint16_t u16(const uint8_t *p) { return (uint16_t)(p[0] | p[1] << 8); }

int wbpf_sys_table_decode(const uint8_t *b, size_t len, struct wbpf_sys_table *t, char *why, size_t whylen)
{
	memset(t, 0, sizeof *t);
	if (len < WBPF_SYS_TABLE_SIZE || u16(b) != WBPF_SYS_TABLE_VERSION) {
		snprintf(why, whylen, "a syscall field table of version %u, %zu bytes: this agent reads version %d, %d bytes (host and agent from different builds?)",
			 len >= 2 ? u16(b) : 0, len, WBPF_SYS_TABLE_VERSION, WBPF_SYS_TABLE_SIZE);
		return -1;
	}
	t->exit = u16(b + 2) & 1;
	t->size = (uint32_t)(b[4] | b[5] << 8 | b[6] << 16 | (uint32_t)b[7] << 24);
	t->id = u16(b + 8);
	t->nargs = u16(b + 10);
	if (t->nargs > 6 || t->size > 4096) {
		snprintf(why, whylen, "a syscall field table with %d arguments and a %u-byte record (at most 6 and 4096)", t->nargs, t->size);
		return -1;
	}
	struct wbpf_sys_slot *slots[12] = { &t->type, &t->flags, &t->preempt, &t->pid, &t->nr, &t->ret,
					    &t->args[0], &t->args[1], &t->args[2], &t->args[3], &t->args[4], &t->args[5] };
	for (int i = 0; i < 6 + t->nargs; i++) {
		slots[i]->offset = u16(b + 12 + i * 4);
		slots[i]->size = u16(b + 14 + i * 4);
		uint16_t s = slots[i]->size;
		if ((s && s != 1 && s != 2 && s != 4 && s != 8) || slots[i]->offset + s > t->size) {
			snprintf(why, whylen, "slot %d of a syscall field table: %u bytes at %u in a %u-byte record", i, s, slots[i]->offset, t->size);
			return -1;
		}
	}
	return 0;
}

static void put(uint8_t *out, struct wbpf_sys_slot s, uint64_t v)
{
	/* little-endian (the arches the agent runs on), truncated to the slot: one store of its size */
	switch (s.size) {
	case 8: memcpy(out + s.offset, &v, 8); break;
	case 4: { uint32_t x = (uint32_t)v; memcpy(out + s.offset, &x, 4); break; }
	case 2: { uint16_t x = (uint16_t)v; memcpy(out + s.offset, &x, 2); break; }
	case 1: out[s.offset] = (uint8_t)v; break;
	default: break; /* 0: no such field */
	}
}

size_t wbpf_sys_record(const struct wbpf_sys_table *t, uint8_t *out, size_t cap, int32_t tid, int has_regs, uint64_t regs,
		       long nr, const uint64_t args[6], long ret)
{
	if (cap < t->size) return 0;
	memset(out, 0, t->size);
	put(out, t->type, t->id);
	put(out, t->pid, (uint64_t)(int64_t)tid);
	put(out, t->nr, (uint64_t)nr);
	if (t->exit) put(out, t->ret, (uint64_t)ret);
	else
		for (int i = 0; i < t->nargs; i++) put(out, t->args[i], args[i]);
	if (has_regs && t->size >= 8) memcpy(out, &regs, 8);
	return t->size;
}
