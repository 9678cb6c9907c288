/* hist.h: a log2 histogram in the layout of bcc/libbpf-tools (runqlat, biolatency, ...):
 * a header `     usecs               : count    distribution`, then one row per slot up to the last
 * non-empty one, `low -> high : count |****   |`, the bar 40 stars wide for the largest count. */
#ifndef MATRIX_HIST_H
#define MATRIX_HIST_H

#include <stdio.h>

#define HIST_BAR 40

/* slots[i] counts values of [2^i, 2^(i+1)) (slot 0 also holds 0); unit names them ("usecs"). */
static inline void print_log2_hist(const unsigned *slots, int n, const char *unit)
{
	unsigned max = 0;
	int last = -1;
	for (int i = 0; i < n; i++) {
		if (slots[i])
			last = i;
		if (slots[i] > max)
			max = slots[i];
	}
	if (last < 0)
		return; /* nothing counted: no histogram */
	printf("%5s%-19s : count    distribution\n", "", unit);
	for (int i = 0; i <= last; i++) {
		unsigned long long low = i ? 1ULL << i : 0, high = (1ULL << (i + 1)) - 1;
		int stars = (int)((unsigned long long)slots[i] * HIST_BAR / max);
		printf("%10llu -> %-10llu : %-8u |", low, high, slots[i]);
		for (int s = 0; s < HIST_BAR; s++)
			putchar(s < stars ? '*' : ' ');
		printf("|\n");
	}
	fflush(stdout);
}

#endif /* MATRIX_HIST_H */
