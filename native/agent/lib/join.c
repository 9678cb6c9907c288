/* Join mode: wbpf_agent_join, the entry the injector (inject/wbpf-inject.c) calls in a running process
 * after dlopen'ing the agent. It must not block: it makes a socketpair and a thread that waits (10 s) for
 * the host's channel, passed in by the injector over the pair (SCM_RIGHTS), then serves it (agent.c). */
#define _GNU_SOURCE
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "agent.h"

#define HANDOFF_MS 10000

/* the pair: [0] the agent's end, [1] the end the injector takes (pidfd_getfd) to send the channel on */
static int pair[2] = { -1, -1 };

/* the channel fd sent on pair[0] within HANDOFF_MS, or -1 */
static int receive_channel(void)
{
	struct pollfd pf = { .fd = pair[0], .events = POLLIN };
	int r;
	while ((r = poll(&pf, 1, HANDOFF_MS)) < 0 && errno == EINTR) continue;
	if (r <= 0) return -1;
	char byte, cbuf[CMSG_SPACE(sizeof(int))];
	struct iovec iov = { &byte, 1 };
	struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = cbuf, .msg_controllen = sizeof cbuf };
	ssize_t n;
	while ((n = recvmsg(pair[0], &mh, MSG_CMSG_CLOEXEC | MSG_DONTWAIT)) < 0 && errno == EINTR) continue;
	if (n <= 0) return -1;
	struct cmsghdr *c = CMSG_FIRSTHDR(&mh);
	if (!c || c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS || c->cmsg_len != CMSG_LEN(sizeof(int))) return -1;
	int fd;
	memcpy(&fd, CMSG_DATA(c), sizeof fd);
	return fd;
}

static void *handoff(void *arg)
{
	(void)arg;
	sigset_t all;
	sigfillset(&all);
	sigdelset(&all, SIGTRAP); /* never blocked: a trap hook hit would be fatal (hook/sigtrap.c) */
	pthread_sigmask(SIG_BLOCK, &all, NULL);
	int fd = receive_channel();
	close(pair[0]);
	close(pair[1]);
	pair[0] = pair[1] = -1;
	if (fd < 0) {
		agent_unclaim();
		return NULL;
	}
	agent_serve_joined(fd);
	return NULL;
}

/* the fd (in this process) the injector takes to send the host's channel on, or -errno (EBUSY: a host is
 * served already). Runs on a thread the injector borrowed: no blocking, its signal mask untouched */
__attribute__((visibility("default"))) int wbpf_agent_join(void)
{
	if (agent_claim() < 0) return -EBUSY;
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, pair) < 0) {
		int e = errno;
		agent_unclaim();
		return -e;
	}
	sigset_t all, old;
	sigfillset(&all);
	sigdelset(&all, SIGTRAP);
	pthread_sigmask(SIG_BLOCK, &all, &old); /* the thread starts with every signal blocked but SIGTRAP */
	pthread_t t;
	int rc = pthread_create(&t, NULL, handoff, NULL);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (rc != 0) {
		close(pair[0]);
		close(pair[1]);
		pair[0] = pair[1] = -1;
		agent_unclaim();
		return -rc;
	}
	pthread_detach(t);
	return pair[1];
}
