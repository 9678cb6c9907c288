/* The kernel rows' programs: a 24-byte ringbuf record per sys_enter_getppid / sys_enter_openat of the bench's
 * process (tgid in ctl[0]), the same record the userspace stub writes. */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

char LICENSE[] SEC("license") = "GPL";

struct { __uint(type, BPF_MAP_TYPE_RINGBUF); __uint(max_entries, 1 << 23); } rb SEC(".maps");
struct { __uint(type, BPF_MAP_TYPE_ARRAY); __uint(max_entries, 1); __type(key, __u32); __type(value, __u32); } ctl SEC(".maps");

struct rec { __u64 nr, a0, a1; };

static __always_inline int record(long nr, __u64 a0, __u64 a1) {
  __u32 k = 0, *tgid = bpf_map_lookup_elem(&ctl, &k);
  if (!tgid || *tgid != (__u32)(bpf_get_current_pid_tgid() >> 32)) return 0;
  struct rec *r = bpf_ringbuf_reserve(&rb, sizeof(*r), 0);
  if (!r) return 0;
  r->nr = nr;
  r->a0 = a0;
  r->a1 = a1;
  bpf_ringbuf_submit(r, 0);
  return 0;
}

SEC("tp/syscalls/sys_enter_getppid")
int enter_getppid(__u64 *ctx) { return record(((int *)ctx)[2], 0, 0); }

SEC("tp/syscalls/sys_enter_openat")
int enter_openat(__u64 *ctx) { return record(((int *)ctx)[2], ctx[2], ctx[3]); }
