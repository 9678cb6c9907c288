/* The agent's eBPF helpers, with the kernel's semantics and errnos; helper_of lists them
 * (backends/userspace/attach/agent-helpers.ts mirrors the list), map_ref resolves lddw map references. A
 * pointer argument outside the run's memory (or a map argument that is not a map) stops the run. None reads
 * the call's pc or id or the run's budget, and none replaces the run's stack: the agent loads its programs
 * with ebpf_vm_env.plain_helpers (the JIT skips those stores). */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <string.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#include "agent.h"

/* agent.c's agent_trace (the chan side) sends the text to the host; until it exists this stub drops it */
__attribute__((weak)) void agent_trace(struct session *s, uint32_t hook_id, const char *text, uint32_t len)
{
	(void)s, (void)hook_id, (void)text, (void)len;
}

/* the session of the program making call c: its map references name that session's maps only */
#define SESS(c) ((c)->user ? ((const struct prog_refs *)(c)->user)->sess : (struct session *)NULL)

/* the map an lddw src 1 value names, for call c: first among the maps its program names (resolved at load,
 * map_ref: a map is never freed while a program names it), else any map of the program's session (find_map) */
static inline struct amap *call_map(const ebpf_vm_call *c, uint64_t ref)
{
	const struct prog_refs *refs = c->user;
	if (refs && (ref & 0xffffffff00000000ull) == MAPREF_TAG)
		for (unsigned k = 0; k < refs->nmaps; k++)
			if (refs->map_ids[k] == (uint32_t)ref) return refs->maps[k];
	return find_map(refs ? refs->sess : NULL, ref);
}

static struct amap *ring_arg(const ebpf_vm_call *c, uint64_t ref)
{
	struct amap *m = call_map(c, ref);
	return m && wbpf_map_type(&m->m) == WBPF_MAP_RINGBUF ? m : NULL;
}

static int h_lookup(ebpf_vm_call *c)
{
	struct amap *m = call_map(c, c->args[0]);
	if (!m || !ptr_ok(c->run, c->args[1], wbpf_map_key_size(&m->m), 0)) return 1;
	void *v = wbpf_map_lookup_elem(&m->m, (const void *)(uintptr_t)c->args[1]);
	if (v && region_add_dyn(c->run, (uintptr_t)v, wbpf_map_value_size(&m->m), value_flags(m)) < 0) v = NULL;
	c->r0 = (uint64_t)(uintptr_t)v;
	return 0;
}
static int h_update(ebpf_vm_call *c)
{
	struct amap *m = call_map(c, c->args[0]);
	if (!m || !ptr_ok(c->run, c->args[1], wbpf_map_key_size(&m->m), 0)) return 1;
	if (!ptr_ok(c->run, c->args[2], wbpf_map_value_size(&m->m), 0)) return 1;
	c->r0 = (uint64_t)wbpf_map_update_elem(&m->m, (const void *)(uintptr_t)c->args[1],
					      (const void *)(uintptr_t)c->args[2], c->args[3]);
	return 0;
}
static int h_delete(ebpf_vm_call *c)
{
	struct amap *m = call_map(c, c->args[0]);
	if (!m || !ptr_ok(c->run, c->args[1], wbpf_map_key_size(&m->m), 0)) return 1;
	c->r0 = (uint64_t)wbpf_map_delete_elem(&m->m, (const void *)(uintptr_t)c->args[1]);
	return 0;
}

/* probe_read 4, probe_read_user 112: any address of the process; unreadable: dst zeroed, -EFAULT */
static int h_probe_read(ebpf_vm_call *c)
{
	uint32_t size = (uint32_t)c->args[1];
	uint8_t *dst = (uint8_t *)(uintptr_t)c->args[0];
	if (!ptr_ok(c->run, c->args[0], size, 1)) return 1;
	int r = safe_read(dst, c->args[2], size);
	if (r < 0) memset(dst, 0, size);
	c->r0 = (uint64_t)(int64_t)r;
	return 0;
}
/* probe_read_str 45, probe_read_user_str 114 */
static int h_probe_read_str(ebpf_vm_call *c)
{
	uint32_t size = (uint32_t)c->args[1];
	if (!ptr_ok(c->run, c->args[0], size, 1)) return 1;
	c->r0 = (uint64_t)safe_read_str((uint8_t *)(uintptr_t)c->args[0], c->args[2], size);
	return 0;
}
static uint64_t clock_ns(clockid_t id);

/* ---- the task_struct image (bpf_get_current_task): the thread's and its parent's, laid out as the TASK frame
 * says, zero but for the fields filled here; the only "kernel memory" probe_read_kernel reads ---- */
static struct wbpf_agent_task task_layout; /* size 0: no layout (get_current_task returns NULL) */
static __thread uint8_t *task_img __attribute__((tls_model("initial-exec")));  /* 2 * task_img_size: self, parent */
static __thread uint32_t task_img_size __attribute__((tls_model("initial-exec")));
static __thread int32_t task_exit_code __attribute__((tls_model("initial-exec")));
static __thread int32_t task_stat_tid __attribute__((tls_model("initial-exec")));
static __thread uint64_t task_start_boot __attribute__((tls_model("initial-exec")));
static pthread_key_t task_key;
static pthread_once_t task_once = PTHREAD_ONCE_INIT;

static void task_free(void *p)
{
	if (p) munmap(p, 2 * (size_t)task_img_size);
	task_img = NULL;
}
static void task_key_init(void) { (void)pthread_key_create(&task_key, task_free); }

int agent_task_layout_set(const struct wbpf_agent_task *t, char *msg, size_t n)
{
	if (t->size == 0 || t->size > WBPF_AGENT_TASK_MAX) {
		snprintf(msg, n, "task layout: a %u-byte task_struct (1..%u)", t->size, WBPF_AGENT_TASK_MAX);
		return EINVAL;
	}
	const uint32_t off[8] = { t->pid, t->tgid, t->real_parent, t->parent, t->comm, t->exit_code, t->start_time, t->start_boottime };
	const uint32_t width[8] = { 4, 4, 8, 8, 16, 4, 8, 8 };
	for (int i = 0; i < 8; i++)
		if (off[i] != WBPF_AGENT_TASK_NONE && ((uint64_t)off[i] + width[i] > t->size || off[i] % (width[i] == 16 ? 1 : width[i]))) {
			snprintf(msg, n, "task layout: field %d at %u does not fit a %u-byte task_struct", i, off[i], t->size);
			return EINVAL;
		}
	task_layout = *t;
	snprintf(msg, n, "task layout: %u-byte task_struct image", t->size);
	return 0;
}

/* the thread's images (2 * *size bytes), freed when it exits (a key's destructor); task_img stays NULL on failure */
static void slow_task_alloc(void *arg)
{
	uint32_t size = *(const uint32_t *)arg;
	void *p = mmap(NULL, 2 * (size_t)size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (p == MAP_FAILED) return;
	task_img = p, task_img_size = size;
	pthread_once(&task_once, task_key_init);
	(void)pthread_setspecific(task_key, p);
}

void agent_task_exit(long status) { task_exit_code = (int32_t)((status & 0xff) << 8); }

static void put32(uint8_t *img, uint32_t off, uint32_t v)
{
	if (off != WBPF_AGENT_TASK_NONE) memcpy(img + off, &v, 4);
}
static void put64(uint8_t *img, uint32_t off, uint64_t v)
{
	if (off != WBPF_AGENT_TASK_NONE) memcpy(img + off, &v, 8);
}

/* the thread's start in ns since boot, from /proc/thread-self/stat's starttime (clock ticks): 0 unknown */
static uint64_t start_boot_ns(void)
{
	char buf[1024];
	int fd = open("/proc/thread-self/stat", O_RDONLY | O_CLOEXEC);
	if (fd < 0) return 0;
	ssize_t r = read(fd, buf, sizeof buf - 1);
	close(fd);
	if (r <= 0) return 0;
	buf[r] = 0;
	char *p = NULL; /* comm may hold spaces and parentheses: fields count from the last ')' (no libc string
			 * function here: it may use the vector registers a hit must not touch) */
	for (char *q = buf; *q; q++)
		if (*q == ')') p = q;
	if (!p) return 0;
	int field = 2; /* ')' ends field 2 */
	uint64_t v = 0;
	for (p++; *p && field < 22; p++)
		if (*p == ' ') field++;
	while (*p >= '0' && *p <= '9') v = v * 10 + (uint64_t)(*p++ - '0');
	return v * (1000000000ull / 100); /* USER_HZ: 100 on every Linux arch */
}

/* the calling thread's image, refilled (it may have forked, exec'd or be exiting since): its address, or 0 */
static uintptr_t task_current(void)
{
	const struct wbpf_agent_task *t = &task_layout;
	uint32_t size = __atomic_load_n(&t->size, __ATOMIC_ACQUIRE);
	if (!size) return 0;
	if (task_img && task_img_size != size) {
		munmap(task_img, 2 * (size_t)task_img_size);
		task_img = NULL;
	}
	if (!task_img) {
		vec_guarded(slow_task_alloc, &size); /* once per thread: pthread's key functions are libc's, not vector-free */
		if (!task_img) return 0;
	}
	uint8_t *self = task_img, *parent = task_img + size;
	memset(task_img, 0, 2 * (size_t)size);
	int32_t tid = (int32_t)gettid(), pid = (int32_t)getpid(), ppid = (int32_t)getppid();
	put32(self, t->pid, (uint32_t)tid);
	put32(self, t->tgid, (uint32_t)pid);
	put64(self, t->real_parent, (uintptr_t)parent);
	put64(self, t->parent, (uintptr_t)parent);
	put32(self, t->exit_code, (uint32_t)task_exit_code);
	if (t->comm != WBPF_AGENT_TASK_NONE) {
		char comm[17] = { 0 };
		if (prctl(PR_GET_NAME, comm) == 0) memcpy(self + t->comm, comm, 16);
	}
	if (t->start_time != WBPF_AGENT_TASK_NONE || t->start_boottime != WBPF_AGENT_TASK_NONE) {
		if (task_stat_tid != tid) task_start_boot = start_boot_ns(), task_stat_tid = tid;
		/* start_time is CLOCK_MONOTONIC at the fork: boottime less the time suspended since */
		uint64_t mono = clock_ns(CLOCK_MONOTONIC), boot = clock_ns(CLOCK_BOOTTIME);
		put64(self, t->start_boottime, task_start_boot);
		put64(self, t->start_time, task_start_boot - (boot - mono));
	}
	put32(parent, t->pid, (uint32_t)ppid);
	put32(parent, t->tgid, (uint32_t)ppid);
	return (uintptr_t)self;
}

/* get_current_task 35, get_current_task_btf 158: the image (read-only to the program), or 0 without a layout */
static int h_current_task(ebpf_vm_call *c)
{
	uintptr_t a = task_current();
	if (a && region_add_dyn(c->run, a, 2ull * task_img_size, 0) < 0) a = 0;
	c->r0 = a;
	return 0;
}

/* src within one of the thread's images (as last built) */
static int task_readable(uint64_t src, uint64_t len)
{
	uintptr_t a = (uintptr_t)task_img;
	return a && len <= 2ull * task_img_size && src >= a && src - a <= 2ull * task_img_size - len;
}

/* probe_read_kernel 113: the task images only (no other kernel memory in a process): elsewhere dst zeroed, -EFAULT */
static int h_probe_read_kernel(ebpf_vm_call *c)
{
	uint32_t size = (uint32_t)c->args[1];
	if (!ptr_ok(c->run, c->args[0], size, 1)) return 1;
	if (task_readable(c->args[2], size)) {
		memcpy((void *)(uintptr_t)c->args[0], (const void *)(uintptr_t)c->args[2], size);
		c->r0 = 0;
		return 0;
	}
	memset((void *)(uintptr_t)c->args[0], 0, size);
	c->r0 = (uint64_t)(int64_t)-EFAULT;
	return 0;
}
/* probe_read_kernel_str 115: no string lives in the images but comm: as 113, up to the NUL */
static int h_probe_read_kernel_str(ebpf_vm_call *c)
{
	uint32_t size = (uint32_t)c->args[1];
	if (!ptr_ok(c->run, c->args[0], size, 1)) return 1;
	uint8_t *dst = (uint8_t *)(uintptr_t)c->args[0];
	if (size && task_readable(c->args[2], 1)) {
		uintptr_t end = (uintptr_t)task_img + 2ull * task_img_size;
		const uint8_t *src = (const uint8_t *)(uintptr_t)c->args[2];
		uint32_t i = 0;
		while (i + 1 < size && (uintptr_t)(src + i) < end && src[i]) dst[i] = src[i], i++;
		dst[i] = 0;
		c->r0 = i + 1;
		return 0;
	}
	memset(dst, 0, size);
	c->r0 = (uint64_t)(int64_t)-EFAULT;
	return 0;
}

static uint64_t clock_ns(clockid_t id)
{
	struct timespec ts;
	clock_gettime(id, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}
static int h_ktime(ebpf_vm_call *c)
{
	c->r0 = clock_ns(CLOCK_MONOTONIC);
	return 0;
}
static int h_ktime_boot(ebpf_vm_call *c)
{
	c->r0 = clock_ns(CLOCK_BOOTTIME);
	return 0;
}
static int h_ktime_coarse(ebpf_vm_call *c)
{
	c->r0 = clock_ns(CLOCK_MONOTONIC_COARSE);
	return 0;
}

/* xorshift128+ per thread, seeded from getrandom (not cryptographic, as the kernel's) */
static __thread uint64_t rnd[2] __attribute__((tls_model("initial-exec")));
static int h_prandom(ebpf_vm_call *c)
{
	if (!rnd[0] && !rnd[1]) {
		if (getrandom(rnd, sizeof rnd, GRND_NONBLOCK) != (ssize_t)sizeof rnd) {
			rnd[0] = clock_ns(CLOCK_MONOTONIC) ^ ((uint64_t)gettid() << 32);
			rnd[1] = (uintptr_t)&rnd;
		}
		rnd[0] |= 1;
	}
	uint64_t x = rnd[0], y = rnd[1];
	rnd[0] = y;
	x ^= x << 23;
	rnd[1] = x ^ y ^ (x >> 17) ^ (y >> 26);
	c->r0 = (uint32_t)((rnd[1] + y) >> 16);
	return 0;
}
/* the CPU the maps library uses for this thread (per-CPU values, perf BPF_F_CURRENT_CPU) */
static int h_smp_id(ebpf_vm_call *c)
{
	c->r0 = (uint32_t)wbpf_map_current_cpu(0);
	return 0;
}

/* pid and tid cached per thread: two system calls per hit otherwise (~220 ns of a ~380 ns hit, measured by
 * bench/uprobe). A fork child's threads copy the parent's cache: the generation, bumped in the child by an
 * atfork handler, makes them read the ids again. */
static volatile uint32_t ids_gen = 1;
static __thread uint32_t tls_ids_gen __attribute__((tls_model("initial-exec")));
static __thread uint64_t tls_pid_tgid __attribute__((tls_model("initial-exec")));
static pthread_once_t ids_once = PTHREAD_ONCE_INIT;
static void ids_forked(void) { ids_gen++; }
/* a vfork child shares its parent's thread-local cache (dash runs commands by vfork + execve): forgotten around
 * an execve's programs, so that neither side reads the other's ids */
void agent_ids_forget(void) { tls_ids_gen = 0; }
static void ids_init(void) { pthread_atfork(NULL, NULL, ids_forked); }

/* the ids read (again): out of line, so that the cached path saves no register */
__attribute__((noinline)) static uint64_t ids_read(uint32_t gen)
{
	pthread_once(&ids_once, ids_init);
	tls_pid_tgid = ((uint64_t)getpid() << 32) | (uint32_t)gettid();
	tls_ids_gen = gen;
	return tls_pid_tgid;
}

uint64_t agent_pid_tgid(void)
{
	uint32_t gen = ids_gen;
	if (__builtin_expect(tls_ids_gen != gen, 0)) return ids_read(gen);
	return tls_pid_tgid;
}

static int h_pid_tgid(ebpf_vm_call *c)
{
	c->r0 = agent_pid_tgid();
	return 0;
}
static int h_uid_gid(ebpf_vm_call *c)
{
	c->r0 = ((uint64_t)getgid() << 32) | (uint32_t)getuid();
	return 0;
}
/* the calling thread's name (TASK_COMM_LEN 16), NUL-terminated and zero-padded to size (strscpy_pad) */
static int h_comm(ebpf_vm_call *c)
{
	uint32_t size = (uint32_t)c->args[1];
	uint8_t *dst = (uint8_t *)(uintptr_t)c->args[0];
	char comm[17] = { 0 };
	if (!ptr_ok(c->run, c->args[0], size, 1)) return 1;
	c->r0 = 0;
	if (size == 0) return 0;
	if (prctl(PR_GET_NAME, comm) != 0) comm[0] = 0;
	size_t n = strnlen(comm, 15);
	if (n > size - 1) n = size - 1;
	memset(dst, 0, size);
	memcpy(dst, comm, n);
	return 0;
}

static int h_perf_output(ebpf_vm_call *c)
{
	struct amap *m = call_map(c, c->args[1]);
	if (!m || !ptr_ok(c->run, c->args[3], c->args[4], 0)) return 1;
	c->r0 = (uint64_t)wbpf_perf_event_output(&m->m, c->args[2], (const void *)(uintptr_t)c->args[3], c->args[4]);
	return 0;
}
static int h_ringbuf_output(ebpf_vm_call *c)
{
	struct amap *m = call_map(c, c->args[0]);
	if (!m || wbpf_map_type(&m->m) != WBPF_MAP_RINGBUF || !ptr_ok(c->run, c->args[1], c->args[2], 0)) return 1;
	c->r0 = (uint64_t)wbpf_ringbuf_output(&m->m, (const void *)(uintptr_t)c->args[1], c->args[2], c->args[3]);
	return 0;
}
/* ringbuf_reserve 131: the record's data becomes a writable region until submit/discard (or the run's end);
 * region 0: the record variant (ebpf_vm_env.record) for a program the engine proved (vm/recproof.c), whose
 * machine code accesses the record unchecked: no region, tracked for hit_end only */
static int reserve(ebpf_vm_call *c, int region)
{
	struct amap *m = ring_arg(c, c->args[0]);
	struct hit *x = c->run->data;
	if (!m) return 1;
	c->r0 = 0;
	if (x->nrecords >= HIT_MAX_RECORDS || (region && x->ndyn >= HIT_MAX_DYN)) return 0;
	uint8_t *p = wbpf_ringbuf_reserve(&m->m, c->args[1], c->args[2]);
	if (!p) return 0;
	if (region && c->args[1] > 0 && region_add_dyn(c->run, (uintptr_t)p, c->args[1], EBPF_VM_REGION_WRITABLE) < 0) {
		wbpf_ringbuf_discard(&m->m, p, 0);
		return 0;
	}
	x->records[x->nrecords].m = m;
	x->records[x->nrecords++].data = (uintptr_t)p;
	c->r0 = (uintptr_t)p;
	return 0;
}
/* submit 132 / discard 133 of a record this run reserved; any other pointer: nothing happens (region 0: the
 * record variant, the record is no region) */
static int finish_record(ebpf_vm_call *c, int discard, int region)
{
	struct hit *x = c->run->data;
	c->r0 = 0;
	for (uint32_t i = 0; i < x->nrecords; i++) {
		if (x->records[i].data != c->args[0]) continue;
		struct amap *m = x->records[i].m;
		x->records[i] = x->records[--x->nrecords];
		if (region) region_remove_dyn(c->run, (uintptr_t)c->args[0]);
		if (discard) wbpf_ringbuf_discard(&m->m, (void *)(uintptr_t)c->args[0], c->args[1]);
		else wbpf_ringbuf_submit(&m->m, (void *)(uintptr_t)c->args[0], c->args[1]);
		break;
	}
	return 0;
}
static int h_ringbuf_reserve(ebpf_vm_call *c) { return reserve(c, 1); }
static int h_ringbuf_submit(ebpf_vm_call *c) { return finish_record(c, 0, 1); }
static int h_ringbuf_discard(ebpf_vm_call *c) { return finish_record(c, 1, 1); }
static int h_ringbuf_reserve_rec(ebpf_vm_call *c) { return reserve(c, 0); }
static int h_ringbuf_submit_rec(ebpf_vm_call *c) { return finish_record(c, 0, 0); }
static int h_ringbuf_discard_rec(ebpf_vm_call *c) { return finish_record(c, 1, 0); }
static int h_ringbuf_query(ebpf_vm_call *c)
{
	struct amap *m = ring_arg(c, c->args[0]);
	if (!m) return 1;
	c->r0 = wbpf_ringbuf_query(&m->m, c->args[1]);
	return 0;
}

/* trace_printk 6: fmt must hold a NUL within fmt_size (else -EINVAL); the text goes to the host */
static int h_trace_printk(ebpf_vm_call *c)
{
	uint32_t size = (uint32_t)c->args[1];
	if (size == 0) {
		c->r0 = (uint64_t)(int64_t)-EINVAL;
		return 0;
	}
	if (!ptr_ok(c->run, c->args[0], size, 0)) return 1;
	const uint8_t *fmt = (const uint8_t *)(uintptr_t)c->args[0];
	const uint8_t *nul = memchr(fmt, 0, size);
	char out[PRINTK_SIZE];
	long n = nul ? format_printk(fmt, (size_t)(nul - fmt), &c->args[2], out) : -1;
	if (n < 0) {
		c->r0 = (uint64_t)(int64_t)-EINVAL;
		return 0;
	}
	struct hit *x = c->run->data;
	agent_trace(SESS(c), x->hook_id, out, (uint32_t)(n < PRINTK_SIZE - 1 ? n : PRINTK_SIZE - 1));
	c->r0 = (uint64_t)n;
	return 0;
}

/* every helper the agent implements; the rest are refused at load. get_current_task(_btf) give the task_struct
 * image above (NULL until the host sent its layout) */
ebpf_vm_helper_fn helper_of(void *user, uint32_t id)
{
	(void)user;
	switch (id) {
	case 1: return h_lookup;
	case 2: return h_update;
	case 3: return h_delete;
	case 4: return h_probe_read;
	case 5: return h_ktime;
	case 6: return h_trace_printk;
	case 7: return h_prandom;
	case 8: return h_smp_id;
	case 14: return h_pid_tgid;
	case 15: return h_uid_gid;
	case 16: return h_comm;
	case 25: return h_perf_output;
	case 35: return h_current_task;
	case 45: return h_probe_read_str;
	case 112: return h_probe_read;
	case 113: return h_probe_read_kernel;
	case 114: return h_probe_read_str;
	case 115: return h_probe_read_kernel_str;
	case 125: return h_ktime_boot;
	case 130: return h_ringbuf_output;
	case 131: return h_ringbuf_reserve;
	case 132: return h_ringbuf_submit;
	case 133: return h_ringbuf_discard;
	case 134: return h_ringbuf_query;
	case 158: return h_current_task;
	case 160: return h_ktime_coarse;
	default: return NULL;
	}
}

/* the helpers the JIT may call directly (ebpf_vm_env.leaf): bpf_get_current_pid_tgid 14 (a per-thread cache:
 * the helper dispatch around it cost more than its work) */
ebpf_vm_leaf_fn leaf_of(void *user, uint32_t id)
{
	(void)user;
	return id == 14 ? agent_pid_tgid : NULL;
}

/* the record variants (ebpf_vm_env.record) of reserve 131, submit 132 and discard 133: the JIT calls them in a
 * program the engine proved never to touch a record outside it (vm/recproof.c) */
ebpf_vm_helper_fn record_of(void *user, uint32_t id)
{
	(void)user;
	return id == 131 ? h_ringbuf_reserve_rec : id == 132 ? h_ringbuf_submit_rec : id == 133 ? h_ringbuf_discard_rec : NULL;
}

/* lddw src 1: the map (MAPREF_TAG | id); src 2: the address of element 0's value of an array map (global
 * data; the engine adds the second imm), recorded in the program's prog_refs for its runs' regions */
int map_ref(void *user, uint32_t src, int32_t imm, uint64_t *value)
{
	struct prog_refs *refs = user;
	struct amap *m = find_map(refs ? refs->sess : NULL, MAPREF_TAG | (uint32_t)imm);
	if (!m) return 1;
	if (refs) {
		unsigned k = 0;
		while (k < refs->nmaps && refs->map_ids[k] != (uint32_t)imm) k++;
		if (k == refs->nmaps) {
			if (refs->nmaps >= PROG_MAX_MAPS) return 1;
			refs->maps[refs->nmaps] = m; /* written before the count: call_map reads maps[0..nmaps) */
			refs->map_ids[refs->nmaps++] = (uint32_t)imm;
		}
	}
	if (src == 1) {
		*value = MAPREF_TAG | (uint32_t)imm;
		return 0;
	}
	void *v = src == 2 ? wbpf_map_direct_value(&m->m) : NULL;
	if (!v || !refs) return 1;
	unsigned i = 0;
	while (i < refs->n && refs->globals[i] != m) i++;
	if (i == refs->n) {
		if (refs->n >= HIT_MAX_GLOBALS) return 1;
		refs->globals[refs->n++] = m;
	}
	*value = (uintptr_t)v;
	return 0;
}
