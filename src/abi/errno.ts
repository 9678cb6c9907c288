// Linux errno values the ABI returns to guests (negated), from the generated src/kernel/uapi.ts, and the
// names the ABI's messages use.
import { ERRNO } from '../kernel/uapi.js';

export const { EPERM, ENOENT, EINTR, EBADF, EFAULT, EBUSY, EINVAL, ENOBUFS } = ERRNO;

// the errnos these messages name; any other is `errno N`
const NAMED = [
  'EPERM', 'ENOENT', 'ESRCH', 'EINTR', 'EIO', 'E2BIG', 'EBADF', 'ENOMEM', 'EACCES', 'EFAULT', 'EBUSY', 'EEXIST',
  'ENODEV', 'EINVAL', 'EMFILE', 'ENOSPC', 'EOPNOTSUPP', 'ENOBUFS', 'ENOTSUPP',
] as const satisfies ReadonlyArray<keyof typeof ERRNO>;
const NAMES: Record<number, string> = Object.fromEntries(NAMED.map((n) => [ERRNO[n], n]));

export function errnoName(errno: number): string {
  return NAMES[Math.abs(errno)] ?? `errno ${Math.abs(errno)}`;
}
