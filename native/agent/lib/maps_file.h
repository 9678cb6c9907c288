/* Where a hooked function is in a process: its file's (dev, ino) and offset looked up in /proc/PID/maps.
 * Shared by the in-process agent (lib/agent.c, its own process) and the ptrace tier (ptrace/bp.c). */
#ifndef WBPF_AGENT_MAPS_FILE_H
#define WBPF_AGENT_MAPS_FILE_H
#include <stdint.h>
#include <sys/types.h>

#include "proto.h"

#pragma GCC visibility push(hidden)
/* the address of r's file_offset of (dev, ino) in an executable mapping of process pid (0: this process),
 * the first one listed, or 0 (not mapped, or the maps file unreadable) */
uint64_t wbpf_maps_find(pid_t pid, const struct wbpf_agent_hook *r);
/* whether r's file offset is at addr in an executable mapping of r's file in process pid (0: this one) */
int wbpf_maps_has(pid_t pid, const struct wbpf_agent_hook *r, uint64_t addr);
#pragma GCC visibility pop
#endif
