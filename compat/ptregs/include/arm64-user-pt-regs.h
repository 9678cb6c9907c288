/* arm64-user-pt-regs.h: the one arm64 type bpf_tracing.h needs under -D__TARGET_ARCH_arm64 that an
 * x86 vmlinux.h lacks. Force-include it (clang -include ...) when building an arm64 object against
 * an x86 vmlinux.h, to get what an arm64 vmlinux.h would give:
 *   - by default with preserve_access_index (CO-RE), like every struct of a bpftool vmlinux.h;
 *   - with -DPTREGS_NO_CORE, a plain struct: the offsets are baked into the ctx loads.
 * Layout: arch/arm64/include/uapi/asm/ptrace.h. */
#ifndef WASM_BPF_ARM64_USER_PT_REGS_H
#define WASM_BPF_ARM64_USER_PT_REGS_H
#ifdef PTREGS_NO_CORE
struct user_pt_regs {
#else
struct __attribute__((preserve_access_index)) user_pt_regs {
#endif
	unsigned long long regs[31];
	unsigned long long sp;
	unsigned long long pc;
	unsigned long long pstate;
};
#endif
