/* The hit benchmark's traced function (test/hit_bench.c), compiled once per entry kind with -DNAME=... and
 * the flags of bench/uprobe/Makefile's targets (the same body as bench/uprobe/target.c's bench_fn). */
extern volatile int hb_sink;

__attribute__((noinline, used))
#if defined(__GNUC__) && !defined(__clang__)
__attribute__((noipa))
#endif
int NAME(int a)
{
	hb_sink = a;
	return a + 1;
}
