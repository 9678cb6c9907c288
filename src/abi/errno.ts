// Linux errno values the ABI returns to guests (negated).
export const EPERM = 1;
export const ENOENT = 2;
export const EINTR = 4;
export const EBADF = 9;
export const ENOMEM = 12;
export const EFAULT = 14;
export const EBUSY = 16;
export const EEXIST = 17;
export const EINVAL = 22;
export const E2BIG = 7;
export const ENOSPC = 28;
export const ENOBUFS = 105;
export const EOPNOTSUPP = 95;
export const ENOTSUP = 95;

const NAMES: Record<number, string> = {
  1: 'EPERM', 2: 'ENOENT', 3: 'ESRCH', 4: 'EINTR', 5: 'EIO', 7: 'E2BIG', 9: 'EBADF', 12: 'ENOMEM',
  13: 'EACCES', 14: 'EFAULT', 16: 'EBUSY', 17: 'EEXIST', 19: 'ENODEV', 22: 'EINVAL', 24: 'EMFILE',
  28: 'ENOSPC', 95: 'EOPNOTSUPP', 105: 'ENOBUFS', 524: 'ENOTSUPP',
};

export function errnoName(errno: number): string {
  return NAMES[Math.abs(errno)] ?? `errno ${Math.abs(errno)}`;
}
