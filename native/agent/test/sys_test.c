/* The syscall site rewriter (sys/) in this process's glibc: getppid, openat and close (and the generic
 * syscall()) rewritten, 8 threads calling them: exact counts, the arguments and results the callbacks see,
 * errno kept, no re-entry; detach restores every byte and the calls keep working; 100 attach/detach
 * rounds under calling threads. Prints one "ok"/"not ok" line per check (check.h). */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <link.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>
#include "check.h"
#include "../sys/internal.h"

#define THREADS 8
#define CALLS 2000
static const char *missing = "/nonexistent/wbpf-sys-test";

static __thread int counting;
static __thread long pending_fd = -2;
static long n_enter[512], n_exit[512], bad;
static pid_t ppid;

static void on_enter(long nr, const uint64_t a[6], void *cookie)
{
	if (cookie != (void *)&n_enter) __atomic_fetch_add(&bad, 1, __ATOMIC_RELAXED);
	errno = 12345; /* the rewriter must give the caller its own errno back */
	if (!counting) return;
	__atomic_fetch_add(&n_enter[nr], 1, __ATOMIC_RELAXED);
	/* the whole register, as the kernel stores it: glibc's openat passes its int dfd zero-extended */
	if (nr == SYS_openat && (a[0] != (uint32_t)AT_FDCWD || (a[2] & O_ACCMODE) != O_RDONLY)) __atomic_fetch_add(&bad, 1, __ATOMIC_RELAXED);
	if (nr == SYS_close) {
		if ((long)a[0] != pending_fd) __atomic_fetch_add(&bad, 1, __ATOMIC_RELAXED);
		if (getppid() != ppid) __atomic_fetch_add(&bad, 1, __ATOMIC_RELAXED); /* a callback's own syscall: untraced */
	}
}

static void on_exit_cb(long nr, const uint64_t a[6], long ret, void *cookie)
{
	(void)cookie;
	if (!counting) return;
	__atomic_fetch_add(&n_exit[nr], 1, __ATOMIC_RELAXED);
	if (nr == SYS_getppid && ret != ppid) __atomic_fetch_add(&bad, 1, __ATOMIC_RELAXED);
	if (nr == SYS_openat && !strcmp((const char *)a[1], missing) && ret != -ENOENT) __atomic_fetch_add(&bad, 1, __ATOMIC_RELAXED);
	if (nr == SYS_openat && strcmp((const char *)a[1], missing) && ret < 0) __atomic_fetch_add(&bad, 1, __ATOMIC_RELAXED);
	if (nr == SYS_close && ret != 0) __atomic_fetch_add(&bad, 1, __ATOMIC_RELAXED);
}

/* one round of calls; returns the wrong results it saw */
static long calls(int generic)
{
	long wrong = 0;
	errno = 0;
	if (getppid() != ppid || errno != 0) wrong++;
	if (openat(AT_FDCWD, missing, O_RDONLY) != -1 || errno != ENOENT) wrong++;
	int fd = openat(AT_FDCWD, "/dev/null", O_RDONLY);
	if (fd < 0) wrong++;
	pending_fd = fd;
	errno = 0;
	if (close(fd) != 0 || errno != 0) wrong++;
	if (generic && syscall(SYS_getppid) != ppid) wrong++;
	return wrong;
}

static long worker_wrong;
static void *worker(void *arg)
{
	counting = 1;
	long w = 0;
	for (int i = 0; i < CALLS; i++) w += calls(arg != NULL);
	counting = 0;
	__atomic_fetch_add(&worker_wrong, w, __ATOMIC_RELAXED);
	return NULL;
}

static volatile int stop;
static void *hammer(void *arg)
{
	(void)arg;
	long w = 0;
	counting = 1; /* the checks of the callbacks run under the rounds too */
	while (!__atomic_load_n(&stop, __ATOMIC_ACQUIRE)) w += calls(1);
	__atomic_fetch_add(&worker_wrong, w, __ATOMIC_RELAXED);
	return NULL;
}

/* the scan on byte strings: a branch into the replaced `mov`, a branch to the `syscall`, an undecodable
 * instruction before a site, an untraced number */
static void check_scan(void)
{
	uint64_t traced[WBPF_SYS_NR_MAX / 64] = { 0 };
	traced[0] = 1ULL << 39; /* getpid */
	struct wbpf_sys_found f[4];
	static const uint8_t plain[] = { 0xb8, 39, 0, 0, 0, 0x0f, 0x05, 0xc3 };
	int n = wbpf_sys_scan(plain, sizeof plain, traced, 0, f, 4);
	CHECK(n == 1 && f[0].off == 0 && f[0].nr == 39 && !f[0].refused && !f[0].shared, "scan: mov $39,%%eax; syscall found at +0");
	/* jmp +1 lands at the mov's second byte: 0xeb 0x01 then b8 27 00 00 00 0f 05 */
	static const uint8_t into[] = { 0xeb, 0x01, 0xb8, 39, 0, 0, 0, 0x0f, 0x05, 0xc3 };
	n = wbpf_sys_scan(into, sizeof into, traced, 0, f, 4);
	CHECK(n == 1 && f[0].refused && strstr(f[0].why, "a branch lands inside"), "scan: refused when a branch lands inside the mov (%s)", n ? f[0].why : "");
	/* je +5 skips the mov to the syscall: rewritten, counted as shared */
	static const uint8_t skip[] = { 0x74, 0x05, 0xb8, 39, 0, 0, 0, 0x0f, 0x05, 0xc3 };
	n = wbpf_sys_scan(skip, sizeof skip, traced, 0, f, 4);
	CHECK(n == 1 && !f[0].refused && f[0].shared, "scan: a branch to the syscall itself leaves the site rewritable, marked shared");
	/* rdtsc (0f 31) is not one the decoder knows: the site after it is found, refused */
	static const uint8_t unk[] = { 0x0f, 0x31, 0xb8, 39, 0, 0, 0, 0x0f, 0x05, 0xc3 };
	n = wbpf_sys_scan(unk, sizeof unk, traced, 0, f, 4);
	CHECK(n == 1 && f[0].refused && strstr(f[0].why, "unconfirmed"), "scan: a site past an undecodable instruction is refused (%s)", n ? f[0].why : "");
	static const uint8_t other[] = { 0xb8, 40, 0, 0, 0, 0x0f, 0x05, 0xc3 };
	CHECK(wbpf_sys_scan(other, sizeof other, traced, 0, f, 4) == 0, "scan: an untraced number is no site");
	static const uint8_t gen[] = { 0x4c, 0x8b, 0x4c, 0x24, 0x08, 0x0f, 0x05, 0xc3 };
	n = wbpf_sys_scan(gen, sizeof gen, traced, 1, f, 4);
	CHECK(n == 1 && f[0].nr == -1 && !f[0].refused, "scan: the generic syscall()'s mov 8(%%rsp),%%r9; syscall found");
}

static long cpu_ns(void)
{
	struct timespec t;
	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t);
	return t.tv_sec * 1000000000L + t.tv_nsec;
}

/* CPU ns per getppid() on this thread, best of 5 runs of 100000 */
static double getppid_ns(void)
{
	double best = 1e9;
	for (int r = 0; r < 5; r++) {
		long t0 = cpu_ns();
		for (int i = 0; i < 100000; i++) getppid();
		double ns = (double)(cpu_ns() - t0) / 100000;
		if (ns < best) best = ns;
	}
	return best;
}

/* a raw site in the main program (not libc): found through its .symtab */
long sys_test_raw_getpid(void);
__asm__(".text\n.globl sys_test_raw_getpid\n.type sys_test_raw_getpid, @function\n"
	"sys_test_raw_getpid:\n\tmov $39, %eax\n\tsyscall\n\tret\n.size sys_test_raw_getpid, . - sys_test_raw_getpid\n");

/* a site one byte into a function: a function hook of its entry would replace the nop and the mov (the
 * hook is given 6 bytes as the size: its decoder does not know `syscall` and would refuse the body) */
long sys_test_nop_getpid(void);
__asm__(".text\n.globl sys_test_nop_getpid\n.type sys_test_nop_getpid, @function\n"
	"sys_test_nop_getpid:\n\tnop\n\tmov $39, %eax\n\tsyscall\n\tret\n.size sys_test_nop_getpid, . - sys_test_nop_getpid\n");

static void on_hook(struct wbpf_pt_regs *regs, void *cookie) { (void)regs; (void)cookie; }

static void check_main_program(void)
{
	uint8_t copy[8];
	memcpy(copy, (void *)sys_test_raw_getpid, sizeof copy);
	int nr = SYS_getpid;
	struct wbpf_sys *h;
	struct wbpf_sys_report rep;
	struct wbpf_hook_error err;
	int rc = wbpf_sys_attach("", &nr, 1, 0, on_enter, on_exit_cb, &n_enter, &h, &rep, &err);
	CHECK(rc == 0 && rep.rewritten == 2, "main program: its two getpid sites rewritten (rc %d, %d sites; %s)", rc, rep.rewritten, err.reason);
	if (rc) return;
	long before = n_enter[SYS_getpid], wrong = 0;
	counting = 1;
	for (int i = 0; i < 1000; i++) wrong += sys_test_raw_getpid() != getpid();
	counting = 0;
	CHECK(wrong == 0 && n_enter[SYS_getpid] - before == 1000 && n_exit[SYS_getpid] - before == 1000,
	      "main program: 1000 raw getpid calls traced (%ld enters), results right (%ld wrong)", n_enter[SYS_getpid] - before, wrong);
	/* a function hook and a rewritten site never patch the same bytes */
	struct wbpf_hook *fh;
	rc = wbpf_hook_attach_sized((void *)sys_test_nop_getpid, 6, on_hook, NULL, &fh, &err);
	CHECK(rc == WBPF_HOOK_EBUSY && strstr(err.reason, "overlap a rewritten syscall site"),
	      "a function hook whose entry bytes overlap a rewritten site is refused (%s)", err.reason);
	rc = wbpf_sys_detach(h, &err);
	CHECK(rc == 0 && !memcmp(copy, (void *)sys_test_raw_getpid, sizeof copy), "main program: detach restored its bytes");
	rc = wbpf_hook_attach_sized((void *)sys_test_nop_getpid, 6, on_hook, NULL, &fh, &err);
	CHECK(rc == 0, "the site restored, the function hook attaches (%s)", err.reason);
	if (rc) return;
	rc = wbpf_sys_attach("", &nr, 1, 0, on_enter, on_exit_cb, &n_enter, &h, &rep, &err);
	CHECK(rc == 0 && rep.rewritten == 1, "with the hook in place only the other site is rewritten (%d; its bytes are the hook's jump now)", rep.rewritten);
	if (!rc) wbpf_sys_detach(h, &err);
	CHECK(sys_test_nop_getpid() == getpid() && wbpf_hook_detach(fh, &err) == 0 && sys_test_nop_getpid() == getpid(), "the hooked function still works, then unhooked");
}

struct fn { const char *name; uint8_t *p; size_t size; uint8_t *copy; };

int main(void)
{
	setvbuf(stdout, NULL, _IOLBF, 0);
	check_scan();
	ppid = getppid();
	struct fn fns[] = { { .name = "getppid" }, { .name = "openat" }, { .name = "close" }, { .name = "syscall" } };
	for (size_t i = 0; i < sizeof fns / sizeof fns[0]; i++) {
		Dl_info info;
		const ElfW(Sym) *sym = NULL;
		fns[i].p = dlsym(RTLD_DEFAULT, fns[i].name);
		if (!fns[i].p || !dladdr1(fns[i].p, &info, (void **)&sym, RTLD_DL_SYMENT) || !sym) {
			printf("not ok - %s found\n", fns[i].name);
			return 1;
		}
		fns[i].size = sym->st_size;
		fns[i].copy = malloc(fns[i].size);
		memcpy(fns[i].copy, fns[i].p, fns[i].size);
	}
	int nrs[] = { SYS_getppid, SYS_openat, SYS_close };
	double untraced = getppid_ns();
	struct wbpf_sys *h;
	struct wbpf_sys_report rep;
	struct wbpf_hook_error err;
	int rc = wbpf_sys_attach("libc.so", nrs, 3, 1, on_enter, on_exit_cb, &n_enter, &h, &rep, &err);
	CHECK(rc == 0, "attach: rc %d %s", rc, err.reason);
	if (rc) { printf("sys_test: %d failed\n", failures); return 1; }
	printf("# %d sites rewritten, %d refused (%s), %d shared\n", rep.rewritten, rep.refused, rep.refusal, rep.shared);
	CHECK(rep.rewritten >= 5, "getppid's, openat's (2), close's (2) and syscall()'s sites rewritten (%d)", rep.rewritten);
	CHECK(fns[0].p[0] == 0xe9, "getppid's `mov $0x6e,%%eax` is a jmp now (%02x)", fns[0].p[0]);
	CHECK(memcmp(fns[3].p, fns[3].copy, fns[3].size) != 0, "syscall()'s bytes are rewritten");

	/* the mechanism's own cost: a rewritten getppid whose callbacks return at once (not counting) */
	double traced = getppid_ns();
	printf("cost: getppid %.0f ns untraced, +%.0f ns rewritten (trampoline, both callbacks, no program)\n", untraced, traced - untraced);

	pthread_t t[THREADS];
	for (int i = 0; i < THREADS; i++) pthread_create(&t[i], NULL, worker, (void *)1);
	for (int i = 0; i < THREADS; i++) pthread_join(t[i], NULL);
	long total = (long)THREADS * CALLS;
	CHECK(worker_wrong == 0, "every call returned what it should, errno kept (%ld wrong)", worker_wrong);
	CHECK(n_enter[SYS_getppid] == 2 * total && n_exit[SYS_getppid] == 2 * total,
	      "getppid: %ld enters, %ld exits, want %ld each (getppid() and syscall(SYS_getppid))",
	      n_enter[SYS_getppid], n_exit[SYS_getppid], 2 * total);
	CHECK(n_enter[SYS_openat] == 2 * total && n_exit[SYS_openat] == 2 * total, "openat: %ld enters, %ld exits, want %ld each",
	      n_enter[SYS_openat], n_exit[SYS_openat], 2 * total);
	CHECK(n_enter[SYS_close] == total && n_exit[SYS_close] == total, "close: %ld enters, %ld exits, want %ld each",
	      n_enter[SYS_close], n_exit[SYS_close], total);
	CHECK(bad == 0, "the callbacks saw the right arguments and results (openat of a missing file: -ENOENT), a callback's own getppid untraced (%ld wrong)", bad);

	rc = wbpf_sys_detach(h, &err);
	CHECK(rc == 0, "detach: %s", err.reason);
	int same = 1;
	for (size_t i = 0; i < sizeof fns / sizeof fns[0]; i++)
		if (memcmp(fns[i].p, fns[i].copy, fns[i].size)) { same = 0; printf("# %s differs\n", fns[i].name); }
	CHECK(same, "detach restored every byte of getppid, openat, close and syscall");
	memset(n_enter, 0, sizeof n_enter);
	memset(n_exit, 0, sizeof n_exit);
	counting = 1;
	long w = 0;
	for (int i = 0; i < 100; i++) w += calls(1);
	counting = 0;
	CHECK(w == 0 && n_enter[SYS_getppid] + n_enter[SYS_openat] + n_enter[SYS_close] == 0,
	      "after detach the calls work (%ld wrong) and no callback runs", w);

	/* attach/detach under calling threads */
	worker_wrong = 0;
	for (int i = 0; i < THREADS; i++) pthread_create(&t[i], NULL, hammer, NULL);
	int fails = 0;
	for (int round = 0; round < 100; round++) {
		if (wbpf_sys_attach(NULL, nrs, 3, 1, on_enter, on_exit_cb, &n_enter, &h, &rep, &err)) { fails++; printf("# %s\n", err.reason); continue; }
		if (rep.rewritten < 5) fails++;
		if (wbpf_sys_detach(h, &err)) fails++;
	}
	__atomic_store_n(&stop, 1, __ATOMIC_RELEASE);
	for (int i = 0; i < THREADS; i++) pthread_join(t[i], NULL);
	CHECK(fails == 0 && worker_wrong == 0, "100 attach/detach rounds under %d calling threads: %d failed, %ld wrong results", THREADS, fails, worker_wrong);
	same = 1;
	for (size_t i = 0; i < sizeof fns / sizeof fns[0]; i++)
		if (memcmp(fns[i].p, fns[i].copy, fns[i].size)) same = 0;
	CHECK(same, "after the rounds every byte is the original");
	CHECK(bad == 0, "no callback saw a wrong argument or result under the rounds (%ld)", bad);
	check_main_program();
	printf("sys_test: %d failed\n", failures);
	return failures ? 1 : 0;
}
