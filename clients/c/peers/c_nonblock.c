/*
 * c_nonblock: receivers given a non-blocking descriptor (a socket made with
 * SOCK_NONBLOCK, a POSIX queue opened O_NONBLOCK, as an event loop or a Go
 * program has them) must wait as their timeout says, not spin on EAGAIN nor
 * return it. The header's poll and recvmsg are wrapped: the first poll a
 * receive makes is where the message arrives (sent from here, so that no
 * timing is involved), and a receive that calls recvmsg again and again
 * without polling is reported as a busy loop. It prints one line per case.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <mqueue.h>
#include <poll.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

static void (*on_poll)(void);    /* what happens at a receive's next poll */
static void (*after_poll)(void); /* and once that poll has returned */
static int eagains;           /* recvmsg's EAGAINs since the last poll */
static jmp_buf spinning;      /* where a receive that busy-loops is abandoned */

static int test_poll(struct pollfd *p, nfds_t n, int ms) {
	void (*f)(void) = on_poll;
	on_poll = NULL;
	eagains = 0;
	if (f != NULL)
		f();
	int res = poll(p, n, ms);
	f = after_poll;
	after_poll = NULL;
	if (f != NULL)
		f();
	return res;
}

static ssize_t test_recvmsg(int fd, struct msghdr *m, int flags) {
	ssize_t got = recvmsg(fd, m, flags);
	if (got < 0 && errno == EAGAIN && ++eagains > 1000) {
		eagains = 0;
		longjmp(spinning, 1);
	}
	return got;
}

#define poll(p, n, ms) test_poll(p, n, ms)
#define recvmsg(fd, m, flags) test_recvmsg(fd, m, flags)
#include "ipcchan.h"

static const char *errname(int e) {
	return e == EAGAIN ? "EAGAIN" : e == ETIMEDOUT ? "ETIMEDOUT" : strerror(e);
}

static int peer_fd;
static void send_late(void) {
	if (send(peer_fd, "\0\0\0\7late", 8, 0) != 8)
		perror("send");
}

static void packets(const char *what, int type) {
	int sv[2];
	struct ipcchan_packet_receiver r;
	memset(&r, 0, sizeof r); /* gcc -O2 cannot see that an unused hello is never read */
	char buf[64];
	size_t n = 0;
	uint32_t tag = 0;
	if (socketpair(AF_UNIX, type | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv) < 0 ||
	    ipcchan_packet_receiver_init(&r, sv[0], "bytes", 0, 0, 1) < 0) {
		printf("%s: setup: %s\n", what, strerror(errno));
		return;
	}
	peer_fd = sv[1];
	on_poll = send_late;
	int got;
	if (setjmp(spinning) != 0)
		printf("%s: busy loop: recvmsg returned EAGAIN 1000 times without a poll\n", what);
	else if ((got = ipcchan_packet_recv(&r, &tag, buf, sizeof buf, &n, -1)) == 1)
		printf("%s 1 %u %.*s\n", what, tag, (int)n, buf);
	else
		printf("%s %d %s\n", what, got, errname(errno));
	on_poll = NULL;
	ipcchan_packet_receiver_close(&r);
	close(sv[1]);
}

static mqd_t mq_in, mq_thief;
static void mq_send_late(void) {
	if (mq_send(mq_in, "late", 4, 3) < 0)
		perror("mq_send");
}
/* The message arrives, poll says so, and another reader takes it first;
 * it comes again at the receive's next poll. */
static void mq_steal(void) {
	char b[64];
	if (mq_receive(mq_thief, b, sizeof b, NULL) < 0)
		perror("mq_receive (thief)");
	on_poll = mq_send_late;
}
static void mq_send_then_steal(void) {
	mq_send_late();
	after_poll = mq_steal;
}

static void mqueue(const char *what, int timeout_ms, void (*arrive)(void)) {
	char name[64], buf[64];
	struct mq_attr a = {0, 4, 64, 0, {0}};
	struct ipcchan_mq_receiver r;
	size_t n = 0;
	unsigned prio = 0;
	snprintf(name, sizeof name, "/ipcchan-%d-cnonblock", (int)getpid());
	mqd_t q = mq_open(name, O_RDONLY | O_NONBLOCK | O_CREAT | O_EXCL | O_CLOEXEC, 0600, &a);
	if (q == (mqd_t)-1) {
		printf("%s: mq_open: %s\n", what, strerror(errno));
		return;
	}
	mq_in = mq_open(name, O_WRONLY | O_CLOEXEC);
	mq_thief = mq_open(name, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
	mq_unlink(name); /* nothing left behind, whatever happens */
	if (mq_in == (mqd_t)-1 || mq_thief == (mqd_t)-1 || ipcchan_mq_receiver_init(&r, q, 1) < 0) {
		printf("%s: setup: %s\n", what, strerror(errno));
		return;
	}
	on_poll = arrive;
	int got = ipcchan_mq_recv(&r, &prio, buf, sizeof buf, &n, timeout_ms);
	if (got == 1)
		printf("%s 1 %u %.*s\n", what, prio, (int)n, buf);
	else
		printf("%s %d %s\n", what, got, errname(errno));
	on_poll = NULL;
	ipcchan_mq_receiver_close(&r);
	mq_close(mq_in);
	mq_close(mq_thief);
}

int main(void) {
	setvbuf(stdout, NULL, _IOLBF, 0);
	packets("seqpacket", SOCK_SEQPACKET);
	packets("unixgram", SOCK_DGRAM);
	mqueue("mq-blocking", -1, mq_send_late);
	mqueue("mq-timeout-taken", 10000, mq_send_then_steal);
	return 0;
}
