/* Reading any address of the process without ever faulting: process_vm_readv on our own pid (a bad
 * address is -EFAULT, never a signal), and strings in chunks that stop at the NUL (probe_read_*). */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <string.h>
#include <sys/uio.h>
#include <unistd.h>

#include "agent.h"

#ifndef WBPF_READ_PID
/* this process's pid, cached (reset in a forked child: hooks live on in children) */
static pid_t self_pid;
static pthread_once_t self_once = PTHREAD_ONCE_INIT;
static void self_reset(void) { self_pid = getpid(); }
static void self_init(void)
{
	self_reset();
	pthread_atfork(NULL, NULL, self_reset);
}
#endif

/* the process read: ours; the ptrace tier's tracer (ptrace/) builds this file with -DWBPF_READ_PID=cur_tgid,
 * the traced process of the current hit */
#ifdef WBPF_READ_PID
extern pid_t WBPF_READ_PID;
#define READ_PID() WBPF_READ_PID
#else
#define READ_PID() (pthread_once(&self_once, self_init), self_pid)
/* a vfork child and its parent share self_pid: re-read around an execve's programs (lib/syscalls.c) */
void agent_read_pid_reset(void)
{
	pthread_once(&self_once, self_init);
	self_reset();
}
#endif

/* copy [src, src+len) into dst: 0, or -EFAULT (unmapped or unreadable: process_vm_readv fails, never faults) */
int safe_read(void *dst, uint64_t src, size_t len)
{
	if (len == 0) return 0;
	struct iovec l = { dst, len }, r = { (void *)(uintptr_t)src, len };
	return process_vm_readv(READ_PID(), &l, 1, &r, 1, 0) == (ssize_t)len ? 0 : -EFAULT;
}

/* strncpy_from_user_nofault: up to size - 1 bytes then a NUL, nothing written past the NUL; the length with
 * the NUL, or -EFAULT (dst zeroed) when the string runs into unreadable memory first. Reads in chunks that
 * never cross a 4 KiB boundary, so a readable prefix is never refused for what lies beyond it. */
long safe_read_str(uint8_t *dst, uint64_t src, uint32_t size)
{
	uint8_t tmp[256];
	uint32_t n = 0;
	if (size == 0) return 0;
	while (n < size - 1) {
		uint64_t a = src + n;
		uint32_t chunk = 4096 - (uint32_t)(a & 4095);
		if (chunk > sizeof tmp) chunk = sizeof tmp;
		if (chunk > size - 1 - n) chunk = size - 1 - n;
		if (a < src || safe_read(tmp, a, chunk) < 0) {
			memset(dst, 0, size);
			return -EFAULT;
		}
		uint8_t *z = memchr(tmp, 0, chunk);
		uint32_t k = z ? (uint32_t)(z - tmp) + 1 : chunk;
		memcpy(dst + n, tmp, k);
		n += k;
		if (z) return n;
	}
	dst[n] = 0;
	return n + 1;
}
