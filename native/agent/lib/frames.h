/* Reading the channel's frames (lib/proto.h), shared by the in-process agent (lib/agent.c) and the ptrace
 * tier's tracer (ptrace/chan.c): one whole frame, its payload and the fds sent with it; a reply's message. */
#ifndef WBPF_AGENT_FRAMES_H
#define WBPF_AGENT_FRAMES_H
#include <stddef.h>
#include <stdint.h>

#include "proto.h"

#pragma GCC visibility push(hidden)
#define WBPF_FRAME_MAX_FDS 4 /* fds kept from one frame (SCM_RIGHTS); more are closed */

/* reads one frame from chan: its header into *f, its payload (malloc'ed, at least 1 byte) into *payload,
 * the fds attached to it into fds[0..*nfds) (the caller owns both). 0, or -1 at EOF, on an error or a
 * frame larger than WBPF_AGENT_MAX_PAYLOAD (then nothing is left to free or close) */
int wbpf_frame_read(int chan, struct wbpf_agent_frame *f, uint8_t **payload, int fds[WBPF_FRAME_MAX_FDS], int *nfds);
/* formats a reply's message into msg[0..n) and returns rc (the request's status): `return wbpf_frame_msg(...)` */
int wbpf_frame_msg(char *msg, size_t n, int rc, const char *fmt, ...) __attribute__((format(printf, 4, 5)));
#pragma GCC visibility pop
#endif
