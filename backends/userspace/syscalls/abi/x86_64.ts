// x86_64's syscall convention (arch/x86/entry/entry_64.S): the number in rax (orig_rax once inside the
// kernel), arguments in rdi, rsi, rdx, r10, r8, r9, the result in rax.
import type { SyscallAbi } from './types.js';

export const ABI: SyscallAbi = { nr: 'orig_rax', args: ['rdi', 'rsi', 'rdx', 'r10', 'r8', 'r9'], ret: 'rax' };
