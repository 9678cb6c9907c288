/* Join mode: wbpf_agent_join, the entry the injector (inject/wbpf-inject.c) calls in a running process
 * after dlopen'ing the agent (or finding it loaded: a launched command, an earlier join). It must not block:
 * it claims a session, makes a socketpair and a thread that waits (10 s) for the host's channel, passed in
 * by the injector over the pair (SCM_RIGHTS), then serves it as that session (agent.c). Several joins at
 * once each get their own session and pair. */
#define _GNU_SOURCE
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <stdint.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "agent.h"

#define HANDOFF_MS 10000

/* one join's hand-off: the session it claimed and its pair ([0] the agent's end, [1] the end the injector
 * takes with pidfd_getfd to send the channel on) */
struct handoff {
	struct session *s;
	int pair[2];
};

/* the channel fd sent on pair[0] within HANDOFF_MS, or -1 */
static int receive_channel(const int pair[2])
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
	struct handoff *h = arg;
	sigset_t all;
	sigfillset(&all);
	sigdelset(&all, SIGTRAP); /* never blocked: a trap hook hit would be fatal (hook/sigtrap.c) */
	pthread_sigmask(SIG_BLOCK, &all, NULL);
	int fd = receive_channel(h->pair);
	close(h->pair[0]);
	close(h->pair[1]);
	struct session *s = h->s;
	free(h);
	if (fd < 0) {
		agent_unclaim(s);
		return NULL;
	}
	agent_serve_joined(s, fd);
	return NULL;
}

/* the fd (in this process) the injector takes to send the host's channel on, or -errno (EBUSY: the agent
 * serves WBPF_AGENT_MAX_SESSIONS hosts already). Runs on a thread the injector borrowed: no blocking, its
 * signal mask untouched */
__attribute__((visibility("default"))) int wbpf_agent_join(void)
{
	struct handoff *h = malloc(sizeof *h);
	if (!h) return -ENOMEM;
	if (!(h->s = agent_claim())) {
		free(h);
		return -EBUSY;
	}
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, h->pair) < 0) {
		int e = errno;
		agent_unclaim(h->s);
		free(h);
		return -e;
	}
	int fd = h->pair[1];
	sigset_t all, old;
	sigfillset(&all);
	sigdelset(&all, SIGTRAP);
	pthread_sigmask(SIG_BLOCK, &all, &old); /* the thread starts with every signal blocked but SIGTRAP */
	pthread_t t;
	int rc = pthread_create(&t, NULL, handoff, h);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (rc != 0) {
		close(h->pair[0]);
		close(h->pair[1]);
		agent_unclaim(h->s);
		free(h);
		return -rc;
	}
	pthread_detach(t);
	return fd;
}
