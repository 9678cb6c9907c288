/* The ptrace tier's arch part (ptrace/ARCH/arch.c) on its own: the breakpoint instruction, foreign
 * breakpoints, and each entry instruction it emulates applied to registers and to this process's own
 * stack through /proc/self/mem (as the tracer writes a traced one's), against what the CPU would do;
 * instructions it must not emulate are refused (the tracer single-steps them). Runs on x86-64 and arm64. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../ptrace/tracer.h"

static int fails;
#define CHECK(c, ...) do { if (c) { printf("ok "); printf(__VA_ARGS__); printf("\n"); } else { printf("not ok "); printf(__VA_ARGS__); printf("\n"); fails++; } } while (0)

/* what arch.c needs from bp.c, over this process's memory */
int mem_read(struct proc *p, uint64_t addr, void *buf, size_t n) { return pread(p->mem, buf, n, (off_t)addr) == (ssize_t)n ? 0 : -EFAULT; }
int mem_write(struct proc *p, uint64_t addr, const void *buf, size_t n) { return pwrite(p->mem, buf, n, (off_t)addr) == (ssize_t)n ? 0 : -EFAULT; }
struct bp *bp_find(struct proc *p, uint64_t addr) { (void)p; (void)addr; return NULL; }

static struct proc proc;
static uint64_t stack[64] __attribute__((aligned(16)));

static int emulate(struct user_regs_struct *r, const uint8_t *insn, unsigned len)
{
	static uint8_t code[16] __attribute__((aligned(16)));
	struct bp b = { .addr = (uintptr_t)code };
	memset(code, 0, sizeof code);
	memcpy(code, insn, len);
	memcpy(b.orig, insn, len < BP_MAX ? len : BP_MAX);
	regs_set_pc(r, (uintptr_t)code);
	return arch_emulate(&proc, r, &b);
}

int main(void)
{
	proc.mem = open("/proc/self/mem", O_RDWR | O_CLOEXEC);
	if (proc.mem < 0) return perror("/proc/self/mem"), 1;
	struct user_regs_struct r;
	uint64_t top = (uintptr_t)&stack[48];
#if defined(__x86_64__)
	CHECK(bp_len == 1 && bp_insn[0] == 0xcc, "the breakpoint is int3");
	CHECK(arch_bp_foreign((const uint8_t[]){ 0xcc }) && !arch_bp_foreign((const uint8_t[]){ 0x55 }), "an int3 already there is foreign");
	memset(&r, 0, sizeof r);
	r.rsp = top, r.rbp = 0x1111;
	CHECK(emulate(&r, (const uint8_t[]){ 0x55 }, 1) && r.rsp == top - 8 && stack[47] == 0x1111 && r.rip == (uint64_t)regs_pc(&r), "push %%rbp: stored below rsp, rsp - 8");
	memset(&r, 0, sizeof r);
	r.rsp = top, r.r12 = 0x2222;
	CHECK(emulate(&r, (const uint8_t[]){ 0x41, 0x54 }, 2) && r.rsp == top - 8 && stack[47] == 0x2222, "push %%r12");
	memset(&r, 0, sizeof r);
	r.rsp = top;
	CHECK(emulate(&r, (const uint8_t[]){ 0x48, 0x89, 0xe5 }, 3) && r.rbp == top, "mov %%rsp,%%rbp");
	uint64_t at;
	memset(&r, 0, sizeof r);
	CHECK(emulate(&r, (const uint8_t[]){ 0xf3, 0x0f, 0x1e, 0xfa }, 4) && (at = r.rip, 1), "endbr64");
	memset(&r, 0, sizeof r);
	CHECK(!emulate(&r, (const uint8_t[]){ 0x8d, 0x04, 0x37 }, 3), "lea (%%rdi,%%rsi),%%eax: stepped, not emulated");
	(void)at;
#elif defined(__aarch64__)
#define I(x) (const uint8_t[]){ (x) & 0xff, ((x) >> 8) & 0xff, ((x) >> 16) & 0xff, (uint8_t)((x) >> 24) }
	CHECK(bp_len == 4 && !memcmp(bp_insn, I(0xd4200000u), 4), "the breakpoint is brk #0");
	CHECK(arch_bp_foreign(I(0xd4200000u)) && arch_bp_foreign(I(0xd42000a0u)) && !arch_bp_foreign(I(0xd503201fu)), "any brk #imm already there is foreign");
	struct { const char *name; uint32_t insn; } pass[] = { { "nop", 0xd503201fu }, { "bti c", 0xd503245fu }, { "bti j", 0xd503249fu }, { "bti jc", 0xd50324dfu }, { "bti", 0xd503241fu } };
	for (unsigned i = 0; i < sizeof pass / sizeof pass[0]; i++) {
		memset(&r, 0, sizeof r);
		r.sp = top;
		uint64_t pc0;
		int ok = emulate(&r, I(pass[i].insn), 4);
		pc0 = r.pc;
		CHECK(ok && r.sp == top, "%s: the next instruction (pc +4: %d)", pass[i].name, (int)(pc0 & 0xf) == 4);
	}
	memset(&r, 0, sizeof r);
	r.sp = top;
	CHECK(emulate(&r, I(0x910003fdu), 4) && r.regs[29] == top, "mov x29, sp");
	for (int n = 1; n <= 8; n *= 2) {
		memset(&r, 0, sizeof r);
		r.sp = top, r.regs[29] = 0x2929, r.regs[30] = 0x3030;
		memset(stack, 0, sizeof stack);
		uint32_t imm7 = (uint32_t)(-2 * n) & 0x7f; /* sp -= 16 * n */
		CHECK(emulate(&r, I(0xa9807bfdu | imm7 << 15), 4) && r.sp == top - 16 * (uint64_t)n && stack[48 - 2 * n] == 0x2929 && stack[49 - 2 * n] == 0x3030,
		      "stp x29, x30, [sp, #-%d]!: both stored at the new sp, sp moved", 16 * n);
	}
	memset(&r, 0, sizeof r);
	r.sp = top;
	CHECK(!emulate(&r, I(0xd503233fu), 4) && r.sp == top, "paciasp: stepped (it signs x30 with the kernel's key)");
	CHECK(!emulate(&r, I(0x0b010000u), 4), "add w0, w0, w1: stepped");
	CHECK(!emulate(&r, I(0xa9bf7bf3u), 4), "stp x19, x30, [sp, #-16]!: stepped (not the frame pair)");
	CHECK(!emulate(&r, I(0xa9007bfdu), 4), "stp x29, x30, [sp] without writeback: stepped");
#endif
	close(proc.mem);
	printf("ptrace_arch_test: %s\n", fails ? "FAILED" : "OK");
	return fails != 0;
}
