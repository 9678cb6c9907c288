/* arm64 return probes: not implemented yet. Every arm is refused (wbpf_hook_ret_arm returns -1: the
 * call runs untraced and unharmed); the x86-64 side's design (a stub per real return address, put in
 * x30 through the entry trampoline's saved regs[30]) is the plan. */
#include "a64.h"

uintptr_t wbpf_arch_ret_stub(uintptr_t orig) { (void)orig; return 0; }
uintptr_t wbpf_arch_ret_orig(uintptr_t addr) { (void)addr; return 0; }
int wbpf_arch_ret_blocked(void) { return 1; }
