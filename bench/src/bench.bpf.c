// eBPF side of the wasm-bpf benchmarks (bench/): maps for the lookup benchmark and a ring buffer fed
// by a tracepoint on getppid(2), filtered by the producer's tgid (set by the consumer after load).
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

char LICENSE[] SEC("license") = "GPL";

/* the record: 32 bytes, fixed size */
struct rec {
	__u32 pid;
	__u32 pad;
	__u64 seq;
	__u64 ts;
	__u64 extra;
};

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 16);
	__type(key, __u32);
	__type(value, __u64);
} array SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 4096);
	__type(key, __u32);
	__type(value, __u64);
} hash SEC(".maps");

/* cfg[0] = producer tgid (0: nobody), cfg[1] = records emitted so far */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 2);
	__type(key, __u32);
	__type(value, __u64);
} cfg SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 64 * 1024 * 1024);
} rb SEC(".maps");

SEC("tp/syscalls/sys_enter_getppid")
int on_getppid(void *ctx)
{
	__u32 k = 0;
	__u64 *target = bpf_map_lookup_elem(&cfg, &k);
	__u32 pid = bpf_get_current_pid_tgid() >> 32;
	if (!target || *target == 0 || *target != pid)
		return 0;
	k = 1;
	__u64 *count = bpf_map_lookup_elem(&cfg, &k);
	__u64 seq = 0;
	if (count)
		seq = __sync_fetch_and_add(count, 1);
	struct rec r = { .pid = pid, .seq = seq, .ts = bpf_ktime_get_ns() };
	bpf_ringbuf_output(&rb, &r, sizeof(r), 0);
	return 0;
}
