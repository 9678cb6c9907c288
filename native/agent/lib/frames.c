/* Reading the channel's frames (frames.h): whole reads across short ones and EINTR, the fds a frame
 * carries (close-on-exec), the payload's allocation; a reply's message. Used by lib/agent.c, lib/syscalls.c and the
 * ptrace tier (chan.c, tables.c). */
#define _GNU_SOURCE
#include <stdarg.h>
#include <stdio.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "frames.h"

static int read_full(int chan, void *buf, size_t len, int *fds, int *nfds)
{
	uint8_t *b = buf;
	while (len > 0) {
		char cbuf[CMSG_SPACE(sizeof(int) * WBPF_FRAME_MAX_FDS)];
		struct iovec iov = { b, len };
		struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = cbuf, .msg_controllen = sizeof cbuf };
		ssize_t n = recvmsg(chan, &mh, MSG_CMSG_CLOEXEC);
		if (n < 0 && errno == EINTR) continue;
		if (n <= 0) return -1;
		for (struct cmsghdr *c = CMSG_FIRSTHDR(&mh); c; c = CMSG_NXTHDR(&mh, c))
			if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_RIGHTS) {
				int k = (int)((c->cmsg_len - CMSG_LEN(0)) / sizeof(int));
				for (int i = 0; i < k; i++) {
					int fd;
					memcpy(&fd, CMSG_DATA(c) + i * sizeof(int), sizeof(int));
					if (*nfds < WBPF_FRAME_MAX_FDS) fds[(*nfds)++] = fd;
					else close(fd);
				}
			}
		b += n;
		len -= (size_t)n;
	}
	return 0;
}

int wbpf_frame_read(int chan, struct wbpf_agent_frame *f, uint8_t **payload, int fds[WBPF_FRAME_MAX_FDS], int *nfds)
{
	uint8_t *p = NULL;
	*nfds = 0;
	int rc = read_full(chan, f, sizeof *f, fds, nfds) < 0 || f->len > WBPF_AGENT_MAX_PAYLOAD ? -1 : 0;
	if (!rc && (!(p = malloc(f->len ? f->len : 1)) || read_full(chan, p, f->len, fds, nfds) < 0)) rc = -1;
	if (rc) {
		for (int i = 0; i < *nfds; i++) close(fds[i]);
		*nfds = 0;
		free(p);
		p = NULL;
	}
	*payload = p;
	return rc;
}

int wbpf_frame_msg(char *msg, size_t n, int rc, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, n, fmt, ap);
	va_end(ap);
	return rc;
}
