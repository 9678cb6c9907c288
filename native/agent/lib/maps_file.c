/* wbpf_maps_find, wbpf_maps_has (maps_file.h): one pass over /proc/PID/maps for the executable mappings
 * of a file that cover a hook's file offset. */
#define _GNU_SOURCE
#include <stdio.h>
#include <sys/sysmacros.h>

#include "maps_file.h"

/* the address of r's file offset in the first executable mapping of r's file listed after `after` that
 * covers it, or 0 */
static uint64_t maps_next(pid_t pid, const struct wbpf_agent_hook *r, uint64_t after)
{
	char path[64];
	if (pid) snprintf(path, sizeof path, "/proc/%d/maps", (int)pid);
	else snprintf(path, sizeof path, "/proc/self/maps");
	FILE *f = fopen(path, "re");
	if (!f) return 0;
	char line[512];
	uint64_t found = 0;
	while (!found && fgets(line, sizeof line, f)) {
		unsigned long start, end, off, ino;
		unsigned maj, min;
		char perms[8];
		if (sscanf(line, "%lx-%lx %7s %lx %x:%x %lu", &start, &end, perms, &off, &maj, &min, &ino) != 7) continue;
		if (perms[2] != 'x' || ino != r->ino || maj != gnu_dev_major(r->dev) || min != gnu_dev_minor(r->dev)) continue;
		if (r->file_offset >= off && r->file_offset < off + (end - start) && start + (r->file_offset - off) > after) found = start + (r->file_offset - off);
	}
	fclose(f);
	return found;
}

uint64_t wbpf_maps_find(pid_t pid, const struct wbpf_agent_hook *r)
{
	return maps_next(pid, r, 0);
}

int wbpf_maps_has(pid_t pid, const struct wbpf_agent_hook *r, uint64_t addr)
{
	return addr && maps_next(pid, r, addr - 1) == addr;
}
