/* Reading the channel's frames (lib/proto.h), shared by the in-process agent (lib/agent.c) and the ptrace
 * tier's tracer (ptrace/chan.c): one whole frame, its payload and the fds sent with it. */
#ifndef WBPF_AGENT_FRAMES_H
#define WBPF_AGENT_FRAMES_H
#include <stdint.h>

#include "proto.h"

#pragma GCC visibility push(hidden)
#define WBPF_FRAME_MAX_FDS 4 /* fds kept from one frame (SCM_RIGHTS); more are closed */

/* reads one frame from chan: its header into *f, its payload (malloc'ed, at least 1 byte) into *payload,
 * the fds attached to it into fds[0..*nfds) (the caller owns both). 0, or -1 at EOF, on an error or a
 * frame larger than WBPF_AGENT_MAX_PAYLOAD (then nothing is left to free or close) */
int wbpf_frame_read(int chan, struct wbpf_agent_frame *f, uint8_t **payload, int fds[WBPF_FRAME_MAX_FDS], int *nfds);
#pragma GCC visibility pop
#endif
