/* The hit path's deterministic benchmark (bench/uprobe/ANALYSIS.md): the agent's real hit path in-process,
 * linked as libwbpf_agent.so is (LTO, general registers only): a session (agent_claim), a real shared ring
 * buffer map (agent_map_add), bench/uprobe/ubench.bpf.c's entry and return programs (their bytecode below, as
 * the host sends them: lddw src 1 naming the map), hooked (agent_hook_add) on a target function of one entry
 * kind (test/hit_target.c, compiled as bench/uprobe/Makefile's targets); the target is called N times per
 * round, the ring drained (and each record checked) between rounds, outside the timed calls.
 *
 *   hit_bench KIND MODE [ROUNDS [N]]
 *     KIND  nop5 | endbr64 | push | plain
 *     MODE  none (not hooked) | entry | return | both
 *   -> per round the thread's CPU ns per call; then "min X median Y ns per call"
 *
 * Instruction counts: `valgrind --tool=callgrind --smc-check=all --toggle-collect=hb_calls hit_bench KIND
 * MODE 1 100000`: the calls' instructions (hb_calls and what it calls: the target, the trampoline, the agent);
 * MODE none's count subtracted, divided by N, is a hit's instructions. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <elf.h>
#include <link.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/sysmacros.h>
#include <time.h>
#include <unistd.h>

#include "agent.h"

int hb_nop5(int), hb_endbr64(int), hb_push(int), hb_plain(int);
volatile int hb_sink; /* the targets store their argument here */

struct insn {
	uint8_t op, regs;
	int16_t off;
	int32_t imm;
};
#define I(op, d, s, off, imm) { (op), (uint8_t)((d) | ((s) << 4)), (off), (imm) }
#define MAP_ID 7
/* ubench.bpf.o's bench_entry and bench_return (clang-16 -O2, llvm-objdump of the built object) */
static const struct insn ENTRY[] = {
	I(0x79, 7, 1, 0x70, 0), I(0xb7, 8, 0, 0, 0), I(0x18, 1, 1, 0, MAP_ID), I(0, 0, 0, 0, 0), I(0xb7, 2, 0, 0, 16),
	I(0xb7, 3, 0, 0, 0), I(0x85, 0, 0, 0, 131), I(0xbf, 6, 0, 0, 0), I(0x15, 6, 0, 7, 0), I(0x85, 0, 0, 0, 14),
	I(0x63, 6, 7, 8, 0), I(0x7b, 6, 0, 0, 0), I(0x63, 6, 8, 12, 0), I(0xbf, 1, 6, 0, 0), I(0xb7, 2, 0, 0, 0),
	I(0x85, 0, 0, 0, 132), I(0xb7, 0, 0, 0, 0), I(0x95, 0, 0, 0, 0),
};
static const struct insn RETURN[] = {
	I(0x79, 7, 1, 0x50, 0), I(0x18, 1, 1, 0, MAP_ID), I(0, 0, 0, 0, 0), I(0xb7, 2, 0, 0, 16), I(0xb7, 3, 0, 0, 0),
	I(0x85, 0, 0, 0, 131), I(0xbf, 6, 0, 0, 0), I(0x15, 6, 0, 8, 0), I(0x85, 0, 0, 0, 14), I(0xb7, 1, 0, 0, 1),
	I(0x63, 6, 1, 12, 0), I(0x63, 6, 7, 8, 0), I(0x7b, 6, 0, 0, 0), I(0xbf, 1, 6, 0, 0), I(0xb7, 2, 0, 0, 0),
	I(0x85, 0, 0, 0, 132), I(0xb7, 0, 0, 0, 0), I(0x95, 0, 0, 0, 0),
};
static const uint32_t HELPERS[] = { 131, 14, 132 };

struct record {
	uint64_t pid_tgid;
	uint32_t value, is_ret;
};

static double cpu_ns(void)
{
	struct timespec t;
	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t);
	return (double)t.tv_sec * 1e9 + (double)t.tv_nsec;
}

static void die(const char *what, const char *msg)
{
	fprintf(stderr, "hit_bench: %s: %s\n", what, msg);
	exit(1);
}

/* the timed calls (callgrind's --toggle-collect) */
__attribute__((noinline)) void hb_calls(int (*fn)(int), int n)
{
	for (int i = 0; i < n; i++) fn(i);
}

/* the hook request for fn: the file mapped at its address (this executable), its file offset there */
static void hook_req(void *fn, struct wbpf_agent_hook *r)
{
	FILE *f = fopen("/proc/self/maps", "re");
	char line[512];
	int found = 0;
	while (!found && f && fgets(line, sizeof line, f)) {
		unsigned long start, end, off, ino;
		unsigned maj, min;
		char perms[8];
		if (sscanf(line, "%lx-%lx %7s %lx %x:%x %lu", &start, &end, perms, &off, &maj, &min, &ino) != 7) continue;
		if ((uintptr_t)fn >= start && (uintptr_t)fn < end && ino) {
			r->dev = makedev(maj, min);
			r->ino = ino;
			r->file_offset = off + ((uintptr_t)fn - start);
			found = 1;
		}
	}
	if (f) fclose(f);
	if (!found) die("hook", "the target's mapping not found");
	Dl_info info;
	const ElfW(Sym) *sym = NULL;
	if (dladdr1(fn, &info, (void **)&sym, RTLD_DL_SYMENT) && sym) r->size = sym->st_size; /* -rdynamic */
}

static int cmp(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}

int main(int argc, char **argv)
{
	if (argc < 3) {
		fprintf(stderr, "usage: hit_bench nop5|endbr64|push|plain none|entry|return|both [ROUNDS [N]]\n");
		return 2;
	}
	int (*fn)(int) = !strcmp(argv[1], "nop5") ? hb_nop5 : !strcmp(argv[1], "endbr64") ? hb_endbr64
		: !strcmp(argv[1], "push") ? hb_push : !strcmp(argv[1], "plain") ? hb_plain : NULL;
	const char *mode = argv[2];
	int entry = !strcmp(mode, "entry") || !strcmp(mode, "both"), ret = !strcmp(mode, "return") || !strcmp(mode, "both");
	if (!fn || (!entry && !ret && strcmp(mode, "none"))) die("usage", "unknown kind or mode");
	int rounds = argc > 3 ? atoi(argv[3]) : 21, n = argc > 4 ? atoi(argv[4]) : 100000;
	if (rounds < 1 || rounds > 1000 || n < 1 || n > 1000000) die("usage", "ROUNDS 1-1000, N 1-1000000");

	struct session *s = agent_claim();
	if (!s) die("session", "none free");
	struct wbpf_map_spec spec = { .type = WBPF_MAP_RINGBUF, .max_entries = 64u << 20, .ncpus = 2, .name = "rb" };
	struct wbpf_map rb;
	if (wbpf_map_create(&spec, &rb) != 0) die("ring", "create");
	char msg[256];
	pthread_mutex_lock(&agent_lock);
	if (agent_map_add(s, MAP_ID, rb.fd, rb.notify_fd, msg, sizeof msg)) die("map", msg);
	if (agent_prog_add(s, 1, (const uint8_t *)HELPERS, 3, (const uint8_t *)ENTRY, sizeof ENTRY, msg, sizeof msg)) die("prog", msg);
	if (agent_prog_add(s, 2, (const uint8_t *)HELPERS, 3, (const uint8_t *)RETURN, sizeof RETURN, msg, sizeof msg)) die("prog", msg);
	struct wbpf_agent_hook req = { 0 };
	hook_req((void *)fn, &req);
	int pending;
	if (entry) {
		req.id = 1, req.prog_id = 1, req.flags = 0;
		if (agent_hook_add(s, &req, &pending, msg, sizeof msg) || pending) die("hook", msg);
		fprintf(stderr, "# %s\n", msg);
	}
	if (ret) {
		req.id = 2, req.prog_id = 2, req.flags = WBPF_AGENT_HOOK_RETURN;
		if (agent_hook_add(s, &req, &pending, msg, sizeof msg) || pending) die("hook", msg);
		fprintf(stderr, "# %s\n", msg);
	}
	pthread_mutex_unlock(&agent_lock);

	size_t cap = (size_t)n * 2 * (sizeof(struct record) + 8) + 4096;
	uint8_t *buf = malloc(cap);
	double *per = malloc(sizeof(double) * (size_t)rounds);
	uint64_t me = ((uint64_t)getpid() << 32) | (uint32_t)gettid();
	unsigned long bad = 0;
	for (int k = 0; k < rounds; k++) {
		double t0 = cpu_ns();
		hb_calls(fn, n);
		per[k] = (cpu_ns() - t0) / n;
		int got = wbpf_ring_drain(&rb, buf, cap);
		int want = (entry + ret) * n;
		if (got != want) bad++;
		size_t off = 0;
		int ent = 0, rets = 0;
		for (int i = 0; i < got; i++) {
			uint32_t sz;
			memcpy(&sz, buf + off, 4);
			struct record r;
			memcpy(&r, buf + off + 8, sizeof r);
			if (sz != sizeof r || r.pid_tgid != me) bad++;
			if (r.is_ret) rets++;
			else ent++;
			off += 8 + ((sz + 7) & ~7u);
		}
		if (ent != entry * n || rets != ret * n) bad++;
	}
	qsort(per, (size_t)rounds, sizeof per[0], cmp);
	printf("%s %s: %d rounds x %d calls: min %.1f median %.1f ns per call; records %s\n", argv[1], mode, rounds, n, per[0],
	       per[rounds / 2], bad ? "WRONG" : "all arrived");
	return bad ? 1 : 0;
}
