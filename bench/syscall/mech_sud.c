/* (b) Syscall User Dispatch: with the selector byte at BLOCK every syscall of this thread outside the gadget's
 * range raises SIGSYS (no per-number filter: untraced ones are re-issued without the stub); at ALLOW none does. */
#define _GNU_SOURCE
#include "common.h"
#include "mech.h"
#include <signal.h>
#include <sys/prctl.h>
#include <ucontext.h>

#ifndef PR_SET_SYSCALL_USER_DISPATCH
#define PR_SET_SYSCALL_USER_DISPATCH 59
#define PR_SYS_DISPATCH_ON 1
#endif
#define SEL_ALLOW 0
#define SEL_BLOCK 1

static volatile char selector = SEL_ALLOW;
static int traced[8], n_traced;

static void on_sigsys(int sig, void *si_, void *uc_) {
  (void)sig;
  siginfo_t *si = si_;
  greg_t *g = ((ucontext_t *)uc_)->uc_mcontext.gregs;
  long nr = si->si_syscall;
  long a[6] = { g[REG_RDI], g[REG_RSI], g[REG_RDX], g[REG_R10], g[REG_R8], g[REG_R9] };
  int hit = 0;
  for (int i = 0; i < n_traced; i++) hit |= traced[i] == nr;
  if (hit) stub_enter(nr, a);
  long r = gadget_syscall(nr, a[0], a[1], a[2], a[3], a[4], a[5]);
  if (hit) stub_exit(nr, r);
  g[REG_RAX] = r;
}

int mech_sud(const int *nrs, int n, int block) {
  for (int i = 0; i < n && i < 8; i++) traced[n_traced++] = nrs[i];
  if (install_sigsys(on_sigsys)) return -1;
  if (prctl(PR_SET_SYSCALL_USER_DISPATCH, PR_SYS_DISPATCH_ON, (unsigned long)gadget_start,
            (unsigned long)(gadget_end - gadget_start), (unsigned long)&selector))
    return -1;
  selector = block ? SEL_BLOCK : SEL_ALLOW;
  return 0;
}

void mech_sud_off(void) { selector = SEL_ALLOW; }
