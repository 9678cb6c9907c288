/* (a) seccomp SECCOMP_RET_TRAP for the traced numbers only; the SIGSYS handler runs the stub and re-issues the
 * syscall from the gadget, whose address range the filter exempts. Also the catch-all under (e). */
#define _GNU_SOURCE
#include "common.h"
#include "mech.h"
#include <linux/seccomp.h>
#include <signal.h>
#include <ucontext.h>

static void on_sigsys(int sig, void *si_, void *uc_) {
  (void)sig;
  siginfo_t *si = si_;
  greg_t *g = ((ucontext_t *)uc_)->uc_mcontext.gregs;
  long nr = si->si_syscall;
  long a[6] = { g[REG_RDI], g[REG_RSI], g[REG_RDX], g[REG_R10], g[REG_R8], g[REG_R9] };
  stub_enter(nr, a);
  long r = gadget_syscall(nr, a[0], a[1], a[2], a[3], a[4], a[5]);
  stub_exit(nr, r);
  g[REG_RAX] = r;
}

int mech_trap(const int *nrs, int n) {
  if (install_sigsys(on_sigsys)) return -1;
  struct ip_range gadget = { (uint64_t)gadget_start, (uint64_t)gadget_end };
  return install_seccomp(nrs, n, &gadget, 1, SECCOMP_RET_TRAP);
}
