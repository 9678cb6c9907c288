/* arm64 internals shared by relocate.c, trampoline.c, poke.c and trap.c. */
#ifndef WBPF_HOOK_A64_H
#define WBPF_HOOK_A64_H
#include <stddef.h>
#include <stdint.h>
#include "../internal.h"

#define A64_NOP 0xd503201fu

/* Relocates the one instruction `insn` that ran at `pc` to dst (cap words), which runs at dst_addr:
 * re-bases pc-relative operands (adr, adrp, ldr literal) and re-encodes branches (b, bl, b.cond,
 * cbz/cbnz, tbz/tbnz) to reach from there; copies position-independent ones. Returns the words
 * written, or -1 with why (e.g. "brk #0x5 (another breakpoint: a kernel uprobe, a debugger?)"). */
int a64_relocate(uint32_t insn, uintptr_t pc, uint32_t *dst, size_t cap, uintptr_t dst_addr, char *why, size_t whylen);

/* b target from dst_addr when it reaches (1 word), else ldr x16, .+8; br x16; .quad target (4 words) */
int a64_emit_b(uint32_t *dst, uintptr_t dst_addr, uintptr_t target);

/* b target from at, or 0 if out of +-128 MiB */
uint32_t a64_b(uintptr_t at, uintptr_t target);

/* landing pads (bti, paciasp, pacibsp): kept in place on a BTI-guarded page */
int a64_is_landing_pad(uint32_t insn);

/* 1 if the page holding addr is BTI-guarded (VmFlags "bt" in /proc/self/smaps) */
int wbpf_a64_bti_guarded(uintptr_t addr);
/* trampoline.c: the checks both arm64 tiers make of an entry (aligned, long enough for the 4 bytes the
 * patch `takes`); *off = 4 past a landing pad kept on a BTI-guarded page, else 0; a wbpf_fail code or 0 */
int wbpf_a64_entry(uintptr_t fn, size_t fn_size, size_t readable, const char *takes, size_t *off, struct wbpf_hook_error *err);

/* poke.c: stores one instruction at addr with every other thread parked (park.c) */
int wbpf_a64_poke(uintptr_t addr, uint32_t insn, struct wbpf_hook_error *err);

/* trap.c: the trap tier's hits so far (atomic) */
extern uint64_t wbpf_a64_trap_hits;

#endif
