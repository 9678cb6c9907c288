// The shape of an arch's syscall register convention (abi/x86_64.ts, abi/arm64.ts).

/** register names (as ptrace's user_regs_struct / the agent's saved frame call them) */
export interface SyscallAbi {
  nr: string;
  args: readonly [string, string, string, string, string, string];
  ret: string;
}
