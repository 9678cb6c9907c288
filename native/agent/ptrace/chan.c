/* The tracer's side of the agent's channel (lib/proto.h): the same requests and replies as the in-process
 * agent, so the host's AgentSession drives the ptrace tier unchanged. MAP, PROG, HOOK, UNHOOK go to the
 * tables, SYSCALL to sys.c; START lets a launched command run (main.c). Notices (EVENT, TRACE) are sent at once. */
#define _GNU_SOURCE
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "../lib/frames.h"
#include "tracer.h"

int chan = 3;
int started;

static int send_frame(uint32_t type, uint32_t seq, const void *a, size_t alen, const void *b, size_t blen)
{
	struct wbpf_agent_frame f = { (uint32_t)(alen + blen), type, seq };
	struct iovec iov[3] = { { &f, sizeof f }, { (void *)a, alen }, { (void *)b, blen } };
	int n = 3;
	struct iovec *v = iov;
	while (n > 0) {
		struct msghdr mh = { .msg_iov = v, .msg_iovlen = (size_t)n };
		ssize_t w = sendmsg(chan, &mh, MSG_NOSIGNAL);
		if (w < 0 && errno == EINTR) continue;
		if (w < 0) return -1;
		while (n > 0 && (size_t)w >= v->iov_len) w -= (ssize_t)(v++)->iov_len, n--;
		if (n > 0) v->iov_base = (uint8_t *)v->iov_base + w, v->iov_len -= (size_t)w;
	}
	return 0;
}

static void reply(uint32_t seq, int32_t status, const char *msg)
{
	(void)send_frame(WBPF_AGENT_REPLY, seq, &status, sizeof status, msg, strlen(msg));
}

void chan_event(uint32_t hook, const char *msg)
{
	(void)send_frame(WBPF_AGENT_EVENT, 0, &hook, sizeof hook, msg, strlen(msg));
}

void chan_trace(uint32_t hook, const char *text, uint32_t len)
{
	(void)send_frame(WBPF_AGENT_TRACE, 0, &hook, sizeof hook, text, len);
}

int chan_serve_one(void)
{
	struct wbpf_agent_frame f;
	int fds[WBPF_FRAME_MAX_FDS], nfds = 0;
	char msg[512];
	uint8_t *p;
	int rc = wbpf_frame_read(chan, &f, &p, fds, &nfds);
	if (!rc) {
		switch (f.type) {
		case WBPF_AGENT_MAP: {
			struct wbpf_agent_map r;
			if (f.len < sizeof r) {
				reply(f.seq, EINVAL, "map: short request");
				break;
			}
			memcpy(&r, p, sizeof r);
			int fd = nfds > 0 ? fds[0] : r.fd, nfd = nfds > 1 ? fds[1] : r.notify_fd;
			int st = tables_map_add(r.id, fd, nfd, msg, sizeof msg);
			if (st == 0) nfds = 0; /* mapped: the fds stay open (the map's notify fd is used at each submit) */
			reply(f.seq, st, msg);
			break;
		}
		case WBPF_AGENT_PROG: reply(f.seq, tables_prog_add(p, f.len, msg, sizeof msg), msg); break;
		case WBPF_AGENT_HOOK: {
			struct wbpf_agent_hook r;
			if (f.len < sizeof r) {
				reply(f.seq, EINVAL, "hook: short request");
				break;
			}
			memcpy(&r, p, sizeof r);
			reply(f.seq, tables_hook_add(&r, msg, sizeof msg), msg);
			break;
		}
		case WBPF_AGENT_UNHOOK: {
			uint32_t id;
			if (f.len < sizeof id) {
				reply(f.seq, EINVAL, "unhook: short request");
				break;
			}
			memcpy(&id, p, sizeof id);
			reply(f.seq, tables_unhook(id, msg, sizeof msg), msg);
			break;
		}
		case WBPF_AGENT_SYSCALL: {
			struct wbpf_agent_syscall r;
			if (f.len < sizeof r + 64) {
				reply(f.seq, EINVAL, "syscall: short request");
				break;
			}
			memcpy(&r, p, sizeof r);
			reply(f.seq, sys_add(&r, p + sizeof r, msg, sizeof msg), msg);
			break;
		}
		case WBPF_AGENT_DROP: reply(f.seq, tables_drop(p, f.len, msg, sizeof msg), msg); break;
		case WBPF_AGENT_TASK: reply(f.seq, task_layout_set(p, f.len, msg, sizeof msg), msg); break; /* sched.c */
		case WBPF_AGENT_START:
			reply(f.seq, 0, "start");
			started = 1;
			break;
		default: snprintf(msg, sizeof msg, "unknown request type %u", f.type); reply(f.seq, EINVAL, msg);
		}
	}
	for (int i = 0; i < nfds; i++) close(fds[i]);
	free(p);
	return rc;
}
