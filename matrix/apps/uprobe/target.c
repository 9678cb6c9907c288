// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/* uprobe-target: the process the uprobe app traces.
 *
 *   uprobe-target A B COUNT [DELAY_MS]
 *
 * Waits DELAY_MS (default 500) so a tracer can attach first, calls uprobe_target_add(A, B) COUNT
 * times, then prints "uprobe-target: uprobe_target_add(A, B) = SUM, COUNT calls" and exits.
 */
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

/* Out of line and not optimized across calls: a uprobe on an inlined function never fires, and a
 * call to a function the compiler proves pure could be hoisted out of the loop. The function starts
 * with a nop (patchable_function_entry), which the kernel emulates when the uprobe hits (<1 us)
 * instead of single-stepping the real first instruction (7-9 us on x86). */
__attribute__((noinline, used, patchable_function_entry(1)))
#if defined(__GNUC__) && !defined(__clang__)
__attribute__((noipa))
#endif
int uprobe_target_add(int a, int b)
{
	asm volatile("" ::: "memory");
	return a + b;
}

int main(int argc, char **argv)
{
	if (argc < 4 || argc > 5) {
		fprintf(stderr, "usage: uprobe-target A B COUNT [DELAY_MS]\n");
		return 1;
	}
	int a = atoi(argv[1]), b = atoi(argv[2]);
	long count = atol(argv[3]);
	long delay_ms = argc > 4 ? atol(argv[4]) : 500;
	struct timespec ts = { delay_ms / 1000, (delay_ms % 1000) * 1000000L };
	nanosleep(&ts, NULL);

	int sum = 0;
	for (long i = 0; i < count; i++)
		sum = uprobe_target_add(a, b);
	printf("uprobe-target: uprobe_target_add(%d, %d) = %d, %ld calls\n", a, b, sum, count);
	return 0;
}
