/* Writing code that other threads may be running: opens the text page(s) RW+X only for the
 * duration of a patch (restoring their protection after), stores bytes atomically, and
 * serialises every core after a write (membarrier SYNC_CORE, else fallbacks). */
#define _GNU_SOURCE
#include <errno.h>
#include <linux/membarrier.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>
#include "internal.h"

#define PAGE 4096UL
#define WBPF_PROT_BTI 0x10 /* arm64 PROT_BTI (asm/mman.h) */

enum { SYNC_UNSET, SYNC_CORE, SYNC_EXPEDITED, SYNC_MPROTECT };
static int sync_method;
static uint8_t *sync_page;
static pthread_once_t sync_once = PTHREAD_ONCE_INIT;

static long membarrier(int cmd) { return syscall(SYS_membarrier, cmd, 0, 0); }

static void sync_init(void)
{
	const char *force = getenv("WBPF_HOOK_SYNC"); /* tests: "membarrier" or "mprotect" */
	long q = membarrier(MEMBARRIER_CMD_QUERY);
	if (q < 0) q = 0;
	if ((!force || !strcmp(force, "membarrier-sync-core")) && (q & MEMBARRIER_CMD_PRIVATE_EXPEDITED_SYNC_CORE) &&
	    membarrier(MEMBARRIER_CMD_REGISTER_PRIVATE_EXPEDITED_SYNC_CORE) == 0) {
		sync_method = SYNC_CORE;
	} else if ((!force || !strcmp(force, "membarrier")) && (q & MEMBARRIER_CMD_PRIVATE_EXPEDITED) &&
		   membarrier(MEMBARRIER_CMD_REGISTER_PRIVATE_EXPEDITED) == 0) {
		/* an IPI to every core running this process; returning from it (iret) serialises on x86 */
		sync_method = SYNC_EXPEDITED;
	} else {
		/* revoking write access to a touched page shoots down the TLB of every core running
		 * this process: the same IPIs, on kernels without membarrier */
		sync_page = mmap(NULL, PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		sync_method = SYNC_MPROTECT;
	}
}

void wbpf_sync_cores(void)
{
	pthread_once(&sync_once, sync_init);
	__atomic_thread_fence(__ATOMIC_SEQ_CST);
	if (sync_method == SYNC_CORE) {
		membarrier(MEMBARRIER_CMD_PRIVATE_EXPEDITED_SYNC_CORE);
	} else if (sync_method == SYNC_EXPEDITED) {
		membarrier(MEMBARRIER_CMD_PRIVATE_EXPEDITED);
	} else if (sync_page != MAP_FAILED && sync_page) {
		*(volatile uint8_t *)sync_page = 1;
		mprotect(sync_page, PAGE, PROT_READ);
		mprotect(sync_page, PAGE, PROT_READ | PROT_WRITE);
	}
}

const char *wbpf_sync_method_name(void)
{
	pthread_once(&sync_once, sync_init);
	return sync_method == SYNC_CORE ? "membarrier-sync-core" : sync_method == SYNC_EXPEDITED ? "membarrier" : "mprotect";
}

/* the protection of the mapping holding addr, from /proc/self/maps; -1 if not mapped. *end: where
 * the readable memory from addr on ends (contiguous readable mappings, e.g. a text mapping split by
 * an earlier patch's mprotect) */
static int mapping_of(uintptr_t addr, uintptr_t *end)
{
	FILE *f = fopen("/proc/self/maps", "re");
	char line[512], perm[8];
	unsigned long lo, hi;
	int prot = -1;
	if (!f) return -1;
	while (fgets(line, sizeof line, f)) {
		if (sscanf(line, "%lx-%lx %7s", &lo, &hi, perm) != 3) continue;
		if (prot >= 0) { /* the mappings after addr's */
			if (!end || lo != *end || perm[0] != 'r') break;
			*end = hi;
			continue;
		}
		if (addr < lo || addr >= hi) continue;
		prot = (perm[0] == 'r' ? PROT_READ : 0) | (perm[1] == 'w' ? PROT_WRITE : 0) | (perm[2] == 'x' ? PROT_EXEC : 0);
		if (!end) break;
		*end = hi;
	}
	fclose(f);
	return prot;
}

size_t wbpf_readable_from(uintptr_t addr)
{
	uintptr_t end = 0;
	int prot = mapping_of(addr, &end);
	return prot >= 0 && (prot & PROT_READ) ? end - addr : 0;
}

int wbpf_text_open(struct wbpf_text *t, uintptr_t addr, size_t len, struct wbpf_hook_error *err)
{
	t->start = addr & ~(PAGE - 1);
	t->len = ((addr + len + PAGE - 1) & ~(PAGE - 1)) - t->start;
	for (size_t i = 0; i * PAGE < t->len; i++) {
		uintptr_t pg = t->start + i * PAGE;
		t->prot[i] = mapping_of(pg, NULL);
		if (t->prot[i] < 0) {
			while (i--) mprotect((void *)(t->start + i * PAGE), PAGE, t->prot[i]);
			return wbpf_fail(err, WBPF_HOOK_EPROTECT, "%#lx is not mapped", (unsigned long)pg);
		}
#if defined(__aarch64__)
		if ((t->prot[i] & PROT_EXEC) && wbpf_a64_bti_guarded(pg)) t->prot[i] |= WBPF_PROT_BTI; /* kept when restored */
#endif
		if (mprotect((void *)pg, PAGE, PROT_READ | PROT_WRITE | PROT_EXEC)) {
			int e = errno;
			while (i--) mprotect((void *)(t->start + i * PAGE), PAGE, t->prot[i]);
			return wbpf_fail(err, WBPF_HOOK_EPROTECT,
					 "mprotect(RW+X) of the text page %#lx: %s (W^X enforced: SELinux execmod, a hardened kernel?)",
					 (unsigned long)pg, strerror(e));
		}
	}
	return 0;
}

void wbpf_text_close(struct wbpf_text *t)
{
	for (size_t i = 0; i * PAGE < t->len; i++) mprotect((void *)(t->start + i * PAGE), PAGE, t->prot[i]);
}

void wbpf_text_store(uintptr_t addr, const uint8_t *bytes, size_t n)
{
	for (size_t i = 0; i < n; i++) __atomic_store_n((uint8_t *)addr + i, bytes[i], __ATOMIC_SEQ_CST);
	__builtin___clear_cache((char *)addr, (char *)addr + n); /* a no-op on x86; arm64 needs it */
}
