/* (c) seccomp SECCOMP_RET_TRACE + a ptrace tracer and (d) PTRACE_SYSCALL: the child runs the loop; the tracer (this
 * process) reads the registers at the stops and runs the stub for the traced numbers, at entry and at exit. */
#define _GNU_SOURCE
#include "common.h"
#include "mech.h"
#include <linux/seccomp.h>
#include <signal.h>
#include <stdio.h>
#include <sys/ptrace.h>
#include <sys/resource.h>
#include <sys/user.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static uint64_t self_cpu_ns(void) {
  struct rusage ru;
  getrusage(RUSAGE_SELF, &ru);
  return (uint64_t)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1000000000ull + (uint64_t)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) * 1000ull;
}

static int is_traced(const int *nrs, int n, long nr) {
  for (int i = 0; i < n; i++) if (nrs[i] == nr) return 1;
  return 0;
}

static void args_of(const struct user_regs_struct *u, long a[6]) {
  a[0] = (long)u->rdi; a[1] = (long)u->rsi; a[2] = (long)u->rdx; a[3] = (long)u->r10; a[4] = (long)u->r8; a[5] = (long)u->r9;
}

int mech_ptrace_run(int seccomp, const int *nrs, int n, enum workload w, uint64_t calls, struct result *r) {
  int fds[2];
  if (pipe(fds)) return -1;
  uint64_t cpu0 = self_cpu_ns();
  pid_t pid = fork();
  if (pid < 0) return -1;
  if (pid == 0) {
    close(fds[0]);
    if (ptrace(PTRACE_TRACEME, 0, 0, 0)) _exit(91);
    raise(SIGSTOP);
    if (seccomp && install_seccomp(nrs, n, 0, 0, SECCOMP_RET_TRACE)) _exit(92);
    struct result cr = { 0 };
    run_loop(w, calls, &cr);
    if (write(fds[1], &cr, sizeof cr) != sizeof cr) _exit(93);
    _exit(0);
  }
  close(fds[1]);
  int st;
  if (waitpid(pid, &st, 0) != pid || !WIFSTOPPED(st)) return -1;
  long opts = PTRACE_O_EXITKILL | PTRACE_O_TRACESYSGOOD | (seccomp ? PTRACE_O_TRACESECCOMP : 0);
  if (ptrace(PTRACE_SETOPTIONS, pid, 0, opts)) return -1;
  int resume = seccomp ? PTRACE_CONT : PTRACE_SYSCALL, entering = 1, exit_pending = 0;
  long nr = -1;
  ptrace(resume, pid, 0, 0);
  for (;;) {
    if (waitpid(pid, &st, __WALL) != pid) return -1;
    if (WIFEXITED(st) || WIFSIGNALED(st)) break;
    int sig = WSTOPSIG(st), event = st >> 16, deliver = 0;
    struct user_regs_struct u;
    long a[6];
    if (seccomp && sig == SIGTRAP && event == PTRACE_EVENT_SECCOMP) {
      ptrace(PTRACE_GETREGS, pid, 0, &u);
      nr = (long)u.orig_rax;
      args_of(&u, a);
      stub_enter(nr, a);
      exit_pending = 1;
      ptrace(PTRACE_SYSCALL, pid, 0, 0); /* the next stop is this syscall's exit */
      continue;
    }
    if (sig == (SIGTRAP | 0x80)) {
      ptrace(PTRACE_GETREGS, pid, 0, &u);
      if (seccomp) {
        if (exit_pending) stub_exit(nr, (long)u.rax);
        exit_pending = 0;
      } else {
        nr = (long)u.orig_rax;
        if (is_traced(nrs, n, nr)) {
          if (entering) { args_of(&u, a); stub_enter(nr, a); }
          else stub_exit(nr, (long)u.rax);
        }
        entering = !entering;
      }
    } else if (sig != SIGTRAP) {
      deliver = sig;
    }
    ptrace(resume, pid, 0, deliver);
  }
  if (read(fds[0], r, sizeof *r) != sizeof *r) return -1;
  close(fds[0]);
  r->tracer_cpu_ns = self_cpu_ns() - cpu0;
  return 0;
}
