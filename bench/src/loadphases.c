/* loadphases: where a native libbpf app's start-up time goes, for the start-up benchmark's breakdown.
 *
 *   loadphases OBJ.bpf.o     prints `open_ms=.. load_ms=.. attach_ms=.. ringbuf_ms=.. total_ms=..`
 *
 * open: bpf_object__open_file (ELF + BTF parsing); load: bpf_object__load (kernel feature probes, vmlinux
 * BTF for CO-RE, map creation, verification); attach: every program by its section; ringbuf: ring_buffer__new
 * on the first RINGBUF map. Both wasm-bpf and the native baseline pay all of these.
 */
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

static double now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

static int on_rec(void *ctx, void *data, size_t size) { return 0; }

int main(int argc, char **argv)
{
	if (argc < 2)
		return 2;
	double t0 = now_ms();
	struct bpf_object *obj = bpf_object__open_file(argv[1], NULL);
	if (!obj)
		return fprintf(stderr, "open: %s\n", strerror(errno)), 1;
	double t1 = now_ms();
	int err = bpf_object__load(obj);
	if (err)
		return fprintf(stderr, "load: %s\n", strerror(-err)), 1;
	double t2 = now_ms();
	struct bpf_program *p;
	bpf_object__for_each_program(p, obj)
	{
		if (!bpf_program__autoattach(p))
			continue;
		if (!bpf_program__attach(p))
			return fprintf(stderr, "attach %s: %s\n", bpf_program__name(p), strerror(errno)), 1;
	}
	double t3 = now_ms();
	struct bpf_map *m;
	struct ring_buffer *rb = NULL;
	bpf_object__for_each_map(m, obj)
	{
		if (bpf_map__type(m) == BPF_MAP_TYPE_RINGBUF) {
			rb = ring_buffer__new(bpf_map__fd(m), on_rec, NULL, NULL);
			break;
		}
	}
	double t4 = now_ms();
	printf("open_ms=%.2f load_ms=%.2f attach_ms=%.2f ringbuf_ms=%.2f total_ms=%.2f\n", t1 - t0, t2 - t1, t3 - t2,
	       t4 - t3, t4 - t0);
	ring_buffer__free(rb);
	bpf_object__close(obj);
	return 0;
}
