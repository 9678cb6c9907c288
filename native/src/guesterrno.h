// The errno a guest sees. bpf() can fail with kernel-internal numbers (include/linux/errno.h) that
// no userspace libc knows: a guest must only ever get errnos of the userspace ABI.
#pragma once

#include <cerrno>

namespace wbn {

/** ENOTSUPP (524, "operation not supported", e.g. any map_operate on a ring buffer) is EOPNOTSUPP to
 * a guest; the other internal numbers (ERESTARTSYS & co.) never leave the kernel through bpf() */
constexpr int kKernelEnotsupp = 524;

/** err (positive) as a guest may see it */
constexpr int GuestErrno(int err) { return err == kKernelEnotsupp ? EOPNOTSUPP : err; }

}  // namespace wbn
