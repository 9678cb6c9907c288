/* libwbpf_agent.so: loaded with LD_PRELOAD, serves the control channel named by WBPF_AGENT_FD (lib/proto.h):
 * maps the shared maps, loads programs into the C engine, hooks functions; each hit runs the program with
 * ctx = the trampoline's pt_regs. EOF on the channel unhooks everything; a fault disables its hook only. */
#define _GNU_SOURCE
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/sysmacros.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include "../hook/hook.h"
#include "../maps/wbpf_maps.h"
#include "../vm/ebpf_vm.h"
#include "agent.h"
#include "proto.h"

#define MAX_MAPS 64
#define MAX_PROGS 64
#define MAX_HOOKS 64
#define RUN_BUDGET 1000000

struct aprog {
	uint32_t id;
	ebpf_vm_prog *prog;
};
struct ahook {
	uint32_t id;
	const struct aprog *prog;
	struct wbpf_hook *hook;
	volatile int enabled;
	volatile int reported;
};

static int chan = -1;
static pthread_mutex_t send_lock = PTHREAD_MUTEX_INITIALIZER;
/* published with a release store of the count; entries never change once published */
static struct amap maps[MAX_MAPS];
static unsigned nmaps;
static struct aprog progs[MAX_PROGS];
static unsigned nprogs;
static struct ahook hooks[MAX_HOOKS];
static unsigned nhooks;

static void send_frame(uint32_t type, uint32_t seq, const void *a, size_t alen, const char *msg)
{
	size_t mlen = msg ? strlen(msg) : 0;
	struct wbpf_agent_frame f = { (uint32_t)(alen + mlen), type, seq };
	struct iovec iov[3] = { { &f, sizeof f }, { (void *)a, alen }, { (void *)msg, mlen } };
	struct msghdr mh = { .msg_iov = iov, .msg_iovlen = 3 };
	pthread_mutex_lock(&send_lock);
	(void)sendmsg(chan, &mh, MSG_NOSIGNAL); /* the host gone: EOF tells the reader */
	pthread_mutex_unlock(&send_lock);
}

static void reply(uint32_t seq, int32_t status, const char *fmt, ...)
{
	char msg[256];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	send_frame(WBPF_AGENT_REPLY, seq, &status, sizeof status, msg);
}

struct amap *find_map(uint64_t ref)
{
	unsigned n = __atomic_load_n(&nmaps, __ATOMIC_ACQUIRE);
	if ((ref & 0xffffffff00000000ull) != MAPREF_TAG) return NULL;
	for (unsigned i = 0; i < n; i++)
		if (maps[i].id == (uint32_t)ref) return &maps[i];
	return NULL;
}

/* ---- at each hit ---- */
/* a hit inside a hit (a helper or libc calling a hooked function) is skipped, not recursed into */
static __thread int in_hit __attribute__((tls_model("initial-exec")));

static void run_hit(struct ahook *h, struct wbpf_pt_regs *regs);

static void on_hit(struct wbpf_pt_regs *regs, void *cookie)
{
	struct ahook *h = cookie;
	if (!h->enabled || in_hit) return;
	in_hit = 1;
	run_hit(h, regs);
	in_hit = 0;
}

static void run_hit(struct ahook *h, struct wbpf_pt_regs *regs)
{
	struct hit mem;
	uint8_t stack[EBPF_VM_STACK_SIZE] __attribute__((aligned(16)));
	ebpf_vm_run run = { .stack = stack, .stack_addr = (uintptr_t)stack, .budget = RUN_BUDGET };
	hit_begin(&mem, &run, h->id, h->prog->prog, regs, sizeof *regs);
	uint64_t args[5] = { (uintptr_t)regs, 0, 0, 0, 0 };
	int st = ebpf_vm_exec(h->prog->prog, &run, args);
	hit_end(&mem);
	if (st == EBPF_VM_DONE) return;
	h->enabled = 0;
	if (__atomic_exchange_n(&h->reported, 1, __ATOMIC_ACQ_REL)) return;
	char msg[160];
	snprintf(msg, sizeof msg, "hook %u disabled: program %u stopped with status %d at pc %u (addr 0x%" PRIx64 ")",
		 h->id, h->prog->id, st, run.fault.pc, run.fault.addr);
	send_frame(WBPF_AGENT_EVENT, 0, &h->id, sizeof h->id, msg);
}

/* ---- requests ---- */
static void do_map(uint32_t seq, const uint8_t *p, uint32_t len, const int *fds, int nfds)
{
	struct wbpf_agent_map r;
	if (len < sizeof r) return reply(seq, EINVAL, "map: short request");
	memcpy(&r, p, sizeof r);
	if (nmaps >= MAX_MAPS) return reply(seq, ENOSPC, "map %u: the agent holds %u maps already", r.id, MAX_MAPS);
	int fd = nfds > 0 ? fds[0] : r.fd, nfd = nfds > 1 ? fds[1] : r.notify_fd;
	struct amap *m = &maps[nmaps];
	m->id = r.id;
	int rc = wbpf_map_open(fd, nfd, &m->m);
	if (rc < 0) return reply(seq, -rc, "map %u: opening fd %d: %s", r.id, fd, strerror(-rc));
	__atomic_store_n(&nmaps, nmaps + 1, __ATOMIC_RELEASE);
	reply(seq, 0, "map %u", r.id);
}

static void do_prog(uint32_t seq, const uint8_t *p, uint32_t len)
{
	struct wbpf_agent_prog r;
	if (len < sizeof r) return reply(seq, EINVAL, "prog: short request");
	memcpy(&r, p, sizeof r);
	if ((uint64_t)sizeof r + 4ull * r.nhelpers + r.insn_len != len) return reply(seq, EINVAL, "prog %u: bad length", r.id);
	if (nprogs >= MAX_PROGS) return reply(seq, ENOSPC, "prog %u: the agent holds %u programs already", r.id, MAX_PROGS);
	for (uint32_t i = 0; i < r.nhelpers; i++) {
		uint32_t id;
		memcpy(&id, p + sizeof r + 4 * i, 4);
		if (!helper_of(NULL, id)) return reply(seq, EOPNOTSUPP, "prog %u: helper %u is not implemented by the agent", r.id, id);
	}
	struct prog_refs *refs = calloc(1, sizeof *refs);
	if (!refs) return reply(seq, ENOMEM, "prog %u: out of memory", r.id);
	ebpf_vm_env env = { .helper = helper_of, .map = map_ref, .user = refs };
	ebpf_vm_error err;
	ebpf_vm_prog *prog;
	if (ebpf_vm_load(p + sizeof r + 4 * r.nhelpers, r.insn_len, &env, &prog, &err) != EBPF_VM_OK) {
		free(refs);
		return reply(seq, EINVAL, "%s", err.message);
	}
	progs[nprogs++] = (struct aprog){ r.id, prog };
	reply(seq, 0, "prog %u", r.id);
}

/* the address of file_offset of (dev, ino) in an executable mapping of this process, or 0 */
static uintptr_t find_address(const struct wbpf_agent_hook *r)
{
	FILE *f = fopen("/proc/self/maps", "re");
	if (!f) return 0;
	char line[512];
	uintptr_t found = 0;
	while (!found && fgets(line, sizeof line, f)) {
		unsigned long start, end, off, ino;
		unsigned maj, min;
		char perms[8];
		if (sscanf(line, "%lx-%lx %7s %lx %x:%x %lu", &start, &end, perms, &off, &maj, &min, &ino) != 7) continue;
		if (perms[2] != 'x' || ino != r->ino || maj != gnu_dev_major(r->dev) || min != gnu_dev_minor(r->dev)) continue;
		if (r->file_offset >= off && r->file_offset < off + (end - start)) found = start + (r->file_offset - off);
	}
	fclose(f);
	return found;
}

static void do_hook(uint32_t seq, const uint8_t *p, uint32_t len)
{
	struct wbpf_agent_hook r;
	if (len < sizeof r) return reply(seq, EINVAL, "hook: short request");
	memcpy(&r, p, sizeof r);
	const struct aprog *prog = NULL;
	for (unsigned i = 0; i < nprogs; i++)
		if (progs[i].id == r.prog_id) prog = &progs[i];
	if (!prog) return reply(seq, ENOENT, "hook %u: no program %u", r.id, r.prog_id);
	if (nhooks >= MAX_HOOKS) return reply(seq, ENOSPC, "hook %u: the agent holds %u hooks already", r.id, MAX_HOOKS);
	uintptr_t addr = find_address(&r);
	if (!addr)
		return reply(seq, ENOENT, "hook %u: file offset 0x%" PRIx64 " of dev %u:%u inode %" PRIu64 " is not mapped executable",
			     r.id, r.file_offset, gnu_dev_major(r.dev), gnu_dev_minor(r.dev), r.ino);
	struct ahook *h = &hooks[nhooks];
	*h = (struct ahook){ .id = r.id, .prog = prog, .enabled = 1 };
	struct wbpf_hook_error err;
	if (wbpf_hook_attach_sized((void *)addr, r.size, on_hit, h, &h->hook, &err) != 0)
		return reply(seq, err.code, "hook %u: %s: %s", r.id, wbpf_hook_code_name(err.code), err.reason);
	nhooks++;
	reply(seq, 0, "hook %u at 0x%" PRIxPTR, r.id, addr);
}

/* ---- the channel ---- */
static int read_full(void *buf, size_t len, int *fds, int *nfds)
{
	uint8_t *b = buf;
	while (len > 0) {
		char cbuf[CMSG_SPACE(sizeof(int) * 4)];
		struct iovec iov = { b, len };
		struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = cbuf, .msg_controllen = sizeof cbuf };
		ssize_t n = recvmsg(chan, &mh, MSG_CMSG_CLOEXEC);
		if (n < 0 && errno == EINTR) continue;
		if (n <= 0) return -1;
		for (struct cmsghdr *c = CMSG_FIRSTHDR(&mh); c; c = CMSG_NXTHDR(&mh, c))
			if (fds && c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_RIGHTS) {
				int k = (int)((c->cmsg_len - CMSG_LEN(0)) / sizeof(int));
				for (int i = 0; i < k && *nfds < 4; i++) memcpy(&fds[(*nfds)++], CMSG_DATA(c) + i * sizeof(int), sizeof(int));
			}
		b += n;
		len -= (size_t)n;
	}
	return 0;
}

static void *serve(void *arg)
{
	(void)arg;
	sigset_t all;
	sigfillset(&all);
	pthread_sigmask(SIG_BLOCK, &all, NULL); /* the target's signals go to its own threads */
	for (;;) {
		struct wbpf_agent_frame f;
		int fds[4], nfds = 0;
		if (read_full(&f, sizeof f, fds, &nfds) < 0) break;
		if (f.len > WBPF_AGENT_MAX_PAYLOAD) break;
		uint8_t *p = malloc(f.len ? f.len : 1);
		if (!p || read_full(p, f.len, fds, &nfds) < 0) { free(p); break; }
		switch (f.type) {
		case WBPF_AGENT_MAP: do_map(f.seq, p, f.len, fds, nfds); nfds = 0; break;
		case WBPF_AGENT_PROG: do_prog(f.seq, p, f.len); break;
		case WBPF_AGENT_HOOK: do_hook(f.seq, p, f.len); break;
		default: reply(f.seq, EINVAL, "unknown request type %u", f.type);
		}
		for (int i = 0; i < nfds; i++) close(fds[i]);
		free(p);
	}
	/* the host is gone: the process runs on unhooked (programs and maps stay: a thread may be in one) */
	for (unsigned i = 0; i < nhooks; i++) {
		struct wbpf_hook_error err;
		hooks[i].enabled = 0;
		wbpf_hook_detach(hooks[i].hook, &err);
	}
	close(chan);
	return NULL;
}

__attribute__((constructor)) static void wbpf_agent_init(void)
{
	const char *s = getenv("WBPF_AGENT_FD");
	if (!s || !*s) return;
	char *end;
	long fd = strtol(s, &end, 10);
	if (*end || fd < 0 || fd > 65535) return;
	/* children and exec'd programs must not serve this host's channel (they'd race on it) */
	unsetenv("WBPF_AGENT_FD");
	chan = (int)fd;
	pthread_t t;
	if (pthread_create(&t, NULL, serve, NULL) == 0) pthread_detach(t);
}
