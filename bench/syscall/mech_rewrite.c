/* (e) libc's `mov $nr,%eax; syscall` sites of the traced wrappers become `jmp trampoline` (5 bytes + 2 nops); the
 * trampoline, within rel32 reach of libc, calls tramp_common (gadget.S: stub, syscall, stub) and jumps back.
 * libc's syscall() is rewritten too (its number arrives in rax: tramp_dyn checks it). Sites not rewritten (the
 * program's own `syscall` instructions, other libraries) fall to (a), the seccomp catch-all. */
#define _GNU_SOURCE
#include "common.h"
#include "mech.h"
#include <dlfcn.h>
#include <link.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

extern char tramp_common[], tramp_dyn[];

static uint8_t *near_page(uint8_t *site) {
  uintptr_t base = ((uintptr_t)site & ~(uintptr_t)0xffff);
  for (uintptr_t d = 0x100000; d < 0x70000000; d += 0x100000) {
    void *p = mmap((void *)(base - d), 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0);
    if (p != MAP_FAILED) return p;
  }
  return 0;
}

/* the trampoline for one site: the displaced instruction (if any), past the red zone, [mov $nr,%eax], call the
 * common part, back; returns its length */
static size_t emit(uint8_t *t, const uint8_t *pre, size_t npre, int nr, void *common, uint8_t *back) {
  size_t k = 0;
  static const uint8_t lea_down[] = { 0x48, 0x8d, 0x64, 0x24, 0x80 };          /* lea -128(%rsp),%rsp: past the red zone */
  static const uint8_t lea_up[] = { 0x48, 0x8d, 0xa4, 0x24, 0x80, 0, 0, 0 };   /* lea 128(%rsp),%rsp */
  memcpy(t + k, pre, npre); k += npre;
  memcpy(t + k, lea_down, sizeof lea_down); k += sizeof lea_down;
  if (nr >= 0) { t[k++] = 0xb8; memcpy(t + k, &nr, 4); k += 4; }              /* mov $nr,%eax */
  t[k++] = 0x49; t[k++] = 0xbb; uint64_t c = (uint64_t)common; memcpy(t + k, &c, 8); k += 8; /* movabs $common,%r11 */
  t[k++] = 0x41; t[k++] = 0xff; t[k++] = 0xd3;                                 /* call *%r11 */
  memcpy(t + k, lea_up, sizeof lea_up); k += sizeof lea_up;
  t[k++] = 0xff; t[k++] = 0x25; memset(t + k, 0, 4); k += 4;                    /* jmp *0(%rip) */
  uint64_t b = (uint64_t)back; memcpy(t + k, &b, 8); k += 8;
  return k;
}

static uint8_t *page;
static size_t used;

/* every 7-byte `pat` in function fn: `pat` minus its final syscall (2 bytes) is re-executed in the trampoline
 * unless nr >= 0 (then it was `mov $nr,%eax`, which the trampoline sets itself) */
static int rewrite(const char *fn, const uint8_t pat[7], int nr, void *common) {
  void *addr = dlsym(RTLD_DEFAULT, fn);
  Dl_info info;
  const ElfW(Sym) *sym = 0;
  if (!addr || !dladdr1(addr, &info, (void **)&sym, RTLD_DL_SYMENT) || !sym) return -1;
  uint8_t *f = addr;
  int sites = 0;
  for (size_t i = 0; i + 7 <= sym->st_size; i++) {
    if (memcmp(f + i, pat, 7)) continue;
    uint8_t *site = f + i;
    if (!page && !(page = near_page(site))) return -1;
    mprotect(page, 4096, PROT_READ | PROT_WRITE);
    uint8_t *t = page + used;
    used += emit(t, pat, nr >= 0 ? 0 : 5, nr, common, site + 7);
    mprotect(page, 4096, PROT_READ | PROT_EXEC);
    long rel = (long)(t - (site + 5));
    if (rel != (int32_t)rel) return -1;
    uintptr_t pg = (uintptr_t)site & ~(uintptr_t)4095;
    size_t len = ((uintptr_t)site + 7 - pg + 4095) & ~(size_t)4095;
    if (mprotect((void *)pg, len, PROT_READ | PROT_WRITE | PROT_EXEC)) return -1;
    uint8_t jmp[7] = { 0xe9, 0, 0, 0, 0, 0x66, 0x90 };
    int32_t r32 = (int32_t)rel;
    memcpy(jmp + 1, &r32, 4);
    memcpy(site, jmp, 7);
    mprotect((void *)pg, len, PROT_READ | PROT_EXEC);
    sites++;
  }
  return sites;
}

int mech_rewrite(enum workload w, const int *nrs, int n) {
  uint8_t fixed[7] = { 0xb8, 0, 0, 0, 0, 0x0f, 0x05 };                        /* mov $nr,%eax; syscall */
  static const uint8_t generic[7] = { 0x4c, 0x8b, 0x4c, 0x24, 0x08, 0x0f, 0x05 }; /* syscall(): mov 0x8(%rsp),%r9; syscall */
  memcpy(fixed + 1, &nrs[0], 4);
  if (rewrite(w == W_OPENAT ? "openat" : "getppid", fixed, nrs[0], tramp_common) <= 0) return -1;
  if (rewrite("syscall", generic, -1, tramp_dyn) <= 0) return -1;
  for (int i = 0; i < n; i++) stub_trace(nrs[i]);
  return mech_trap(nrs, n);
}
