/* The agent's syscall site rewriter (issue 18, backends/userspace/SYSCALLS.md): a loaded object's
 * `mov $nr,%eax; syscall` sites of chosen numbers (and libc's generic syscall()) jump to per-site
 * trampolines that call an enter callback, issue the syscall, call an exit callback and jump back. */
#ifndef WBPF_SYS_H
#define WBPF_SYS_H
#include <stdint.h>
#include "../hook/hook.h"

#define WBPF_SYS_NR_MAX 512 /* numbers 0..511 */

/* Run on the calling thread, errno kept, never re-entered on one thread (a syscall a callback makes is
 * issued untraced). args: the six argument registers (rdi rsi rdx r10 r8 r9), as the kernel stores them. */
typedef void (*wbpf_sys_enter_fn)(long nr, const uint64_t args[6], void *cookie);
typedef void (*wbpf_sys_exit_fn)(long nr, const uint64_t args[6], long ret, void *cookie);

/* what a scan found and did; refusals are named (the first one in full in `refusal`) */
struct wbpf_sys_report {
	int rewritten;   /* sites now jumping to a trampoline (the generic syscall() included) */
	int refused;     /* sites of a traced number left alone: their calls are missed */
	int shared;      /* rewritten sites whose `syscall` a branch also reaches past the rewritten mov: calls on that path are missed */
	int held;        /* sites of a traced number another attach holds (counted in refused too): its callbacks run there */
	int objects;     /* objects scanned */
	int others;      /* `syscall` instructions of the scanned functions that are no site (the number comes from a
			    register, or another instruction sits between): their calls are never seen */
	char refusal[200];
};

struct wbpf_sys; /* one attach; valid until wbpf_sys_detach */

/* Rewrites the sites of nrs[0..n) in the loaded object whose path contains `object` ("libc.so.6"; NULL:
 * libc; "": the main program; "*": every loaded object with a readable file but this library's own), and its generic syscall() if `generic` (the number checked at run time). Numbers whose call
 * does not return on the caller's stack (clone, clone3, fork, vfork, rt_sigreturn) are refused. A site
 * another attach or a function hook holds is refused (counted in rep). 0, or a WBPF_HOOK_* code. */
int wbpf_sys_attach(const char *object, const int *nrs, int n, int generic, wbpf_sys_enter_fn enter,
		    wbpf_sys_exit_fn exit, void *cookie, struct wbpf_sys **out, struct wbpf_sys_report *rep,
		    struct wbpf_hook_error *err);

/* Sets (on) or clears number nr in h's traced set, which its generic syscall() sites check at each call
 * (the `mov $nr` sites were chosen at attach). 0, or -1 (nr out of range). */
int wbpf_sys_set_traced(struct wbpf_sys *h, int nr, int on);

/* Restores every rewritten byte (the same int3-first order). A thread inside a syscall entered before
 * may still call the exit callback after this returns: the cookie must outlive that. */
int wbpf_sys_detach(struct wbpf_sys *h, struct wbpf_hook_error *err);

#endif
