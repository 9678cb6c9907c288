// arm64's syscall convention (arch/arm64/kernel/syscall.c): `svc #0` with the number in x8, arguments in
// x0..x5, the result in x0 (which overwrites the first argument: sys_exit needs the saved orig_x0).
import type { SyscallAbi } from './types.js';

export const ABI: SyscallAbi = { nr: 'x8', args: ['x0', 'x1', 'x2', 'x3', 'x4', 'x5'], ret: 'x0' };
