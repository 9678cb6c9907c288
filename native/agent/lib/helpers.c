/* The agent's eBPF helpers, with the kernel's semantics and errnos; helper_of lists them
 * (backends/userspace/attach/agent-helpers.ts mirrors the list), map_ref resolves lddw map references. A
 * pointer argument outside the run's memory (or a map argument that is not a map) stops the run. */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <string.h>
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

static struct amap *ring_arg(const struct session *s, uint64_t ref)
{
	struct amap *m = find_map(s, ref);
	return m && wbpf_map_type(&m->m) == WBPF_MAP_RINGBUF ? m : NULL;
}

static int h_lookup(ebpf_vm_call *c)
{
	struct amap *m = find_map(SESS(c), c->args[0]);
	if (!m || !ptr_ok(c->run, c->args[1], wbpf_map_key_size(&m->m), 0)) return 1;
	void *v = wbpf_map_lookup_elem(&m->m, (const void *)(uintptr_t)c->args[1]);
	if (v && region_add_dyn(c->run, (uintptr_t)v, wbpf_map_value_size(&m->m), value_flags(m)) < 0) v = NULL;
	c->r0 = (uint64_t)(uintptr_t)v;
	return 0;
}
static int h_update(ebpf_vm_call *c)
{
	struct amap *m = find_map(SESS(c), c->args[0]);
	if (!m || !ptr_ok(c->run, c->args[1], wbpf_map_key_size(&m->m), 0)) return 1;
	if (!ptr_ok(c->run, c->args[2], wbpf_map_value_size(&m->m), 0)) return 1;
	c->r0 = (uint64_t)wbpf_map_update_elem(&m->m, (const void *)(uintptr_t)c->args[1],
					      (const void *)(uintptr_t)c->args[2], c->args[3]);
	return 0;
}
static int h_delete(ebpf_vm_call *c)
{
	struct amap *m = find_map(SESS(c), c->args[0]);
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
/* probe_read_kernel 113, probe_read_kernel_str 115: no kernel memory in a process: dst zeroed, -EFAULT */
static int h_probe_read_kernel(ebpf_vm_call *c)
{
	uint32_t size = (uint32_t)c->args[1];
	if (!ptr_ok(c->run, c->args[0], size, 1)) return 1;
	memset((void *)(uintptr_t)c->args[0], 0, size);
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
static void ids_init(void) { pthread_atfork(NULL, NULL, ids_forked); }

uint64_t agent_pid_tgid(void)
{
	uint32_t gen = ids_gen;
	if (__builtin_expect(tls_ids_gen != gen, 0)) {
		pthread_once(&ids_once, ids_init);
		tls_pid_tgid = ((uint64_t)getpid() << 32) | (uint32_t)gettid();
		tls_ids_gen = gen;
	}
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
	struct amap *m = find_map(SESS(c), c->args[1]);
	if (!m || !ptr_ok(c->run, c->args[3], c->args[4], 0)) return 1;
	c->r0 = (uint64_t)wbpf_perf_event_output(&m->m, c->args[2], (const void *)(uintptr_t)c->args[3], c->args[4]);
	return 0;
}
static int h_ringbuf_output(ebpf_vm_call *c)
{
	struct amap *m = find_map(SESS(c), c->args[0]);
	if (!m || wbpf_map_type(&m->m) != WBPF_MAP_RINGBUF || !ptr_ok(c->run, c->args[1], c->args[2], 0)) return 1;
	c->r0 = (uint64_t)wbpf_ringbuf_output(&m->m, (const void *)(uintptr_t)c->args[1], c->args[2], c->args[3]);
	return 0;
}
/* ringbuf_reserve 131: the record's data becomes a writable region until submit/discard (or the run's end) */
static int h_ringbuf_reserve(ebpf_vm_call *c)
{
	struct amap *m = ring_arg(SESS(c), c->args[0]);
	struct hit *x = c->run->data;
	if (!m) return 1;
	c->r0 = 0;
	if (x->nrecords >= HIT_MAX_RECORDS || x->ndyn >= HIT_MAX_DYN) return 0;
	uint8_t *p = wbpf_ringbuf_reserve(&m->m, c->args[1], c->args[2]);
	if (!p) return 0;
	if (c->args[1] > 0 && region_add_dyn(c->run, (uintptr_t)p, c->args[1], EBPF_VM_REGION_WRITABLE) < 0) {
		wbpf_ringbuf_discard(&m->m, p, 0);
		return 0;
	}
	x->records[x->nrecords].m = m;
	x->records[x->nrecords++].data = (uintptr_t)p;
	c->r0 = (uintptr_t)p;
	return 0;
}
/* submit 132 / discard 133 of a record this run reserved; any other pointer: nothing happens */
static int finish_record(ebpf_vm_call *c, int discard)
{
	struct hit *x = c->run->data;
	c->r0 = 0;
	for (uint32_t i = 0; i < x->nrecords; i++) {
		if (x->records[i].data != c->args[0]) continue;
		struct amap *m = x->records[i].m;
		x->records[i] = x->records[--x->nrecords];
		region_remove_dyn(c->run, (uintptr_t)c->args[0]);
		if (discard) wbpf_ringbuf_discard(&m->m, (void *)(uintptr_t)c->args[0], c->args[1]);
		else wbpf_ringbuf_submit(&m->m, (void *)(uintptr_t)c->args[0], c->args[1]);
		break;
	}
	return 0;
}
static int h_ringbuf_submit(ebpf_vm_call *c) { return finish_record(c, 0); }
static int h_ringbuf_discard(ebpf_vm_call *c) { return finish_record(c, 1); }
static int h_ringbuf_query(ebpf_vm_call *c)
{
	struct amap *m = ring_arg(SESS(c), c->args[0]);
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

/* every helper the agent implements; get_current_task (35) and the rest are refused at load (no
 * task_struct in a process) */
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
	case 45: return h_probe_read_str;
	case 112: return h_probe_read;
	case 113: return h_probe_read_kernel;
	case 114: return h_probe_read_str;
	case 115: return h_probe_read_kernel;
	case 125: return h_ktime_boot;
	case 130: return h_ringbuf_output;
	case 131: return h_ringbuf_reserve;
	case 132: return h_ringbuf_submit;
	case 133: return h_ringbuf_discard;
	case 134: return h_ringbuf_query;
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
