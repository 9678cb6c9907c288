/* sys_record_tool TABLE_HEX TID NR RET A0..A5 [REGS]: prints the record sys/record.c builds, in hex (or
 * "error: why"), for test/syscall-record-agent.test.ts to compare with the host's syscallRecord. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "../sys/record.h"

int main(int argc, char **argv)
{
	if (argc < 11) { fprintf(stderr, "usage: sys_record_tool TABLE_HEX TID NR RET A0 A1 A2 A3 A4 A5 [REGS]\n"); return 2; }
	uint8_t tb[256];
	size_t n = strlen(argv[1]) / 2;
	if (n > sizeof tb) n = sizeof tb;
	for (size_t i = 0; i < n; i++) { unsigned v; sscanf(argv[1] + 2 * i, "%2x", &v); tb[i] = (uint8_t)v; }
	struct wbpf_sys_table t;
	char why[200];
	if (wbpf_sys_table_decode(tb, n, &t, why, sizeof why)) { printf("error: %s\n", why); return 1; }
	uint64_t args[6];
	for (int i = 0; i < 6; i++) args[i] = strtoull(argv[5 + i], NULL, 0);
	uint8_t rec[4096];
	size_t len = wbpf_sys_record(&t, rec, sizeof rec, (int32_t)strtol(argv[2], NULL, 0), argc > 11, argc > 11 ? strtoull(argv[11], NULL, 0) : 0,
				     strtol(argv[3], NULL, 0), args, strtol(argv[4], NULL, 0));
	for (size_t i = 0; i < len; i++) printf("%02x", rec[i]);
	printf("\n");
	return 0;
}
